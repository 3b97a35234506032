"""A small convolutional VAE with one latent vector per image, for latent morphs between images.

Folder format: `vae_morph.json` (the config) + `model.safetensors` (keys encoder.*, fc_mu.*, fc_logvar.*,
fc_dec.*, decoder.*). `load_morph_vae(folder)` reads it; `MorphVAE.encode/decode` and `lerp`/`slerp` do the rest.
"""

from aigc_desktop.engines.vae_morph.model import (MorphVAE, MorphVAEConfig, lerp, load_morph_vae,  # noqa: F401
                                                  save_morph_vae, slerp)
