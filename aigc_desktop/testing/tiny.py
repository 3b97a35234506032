"""Tiny Stable Diffusion components with random weights, built in code (no download), seeded.

    save_tiny_sd(folder)            # a diffusers-format folder the app loads like a user's model
    tiny_sd_components(...)         # the components, for comparing against diffusers directly
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aigc_desktop  # noqa: F401 - offline flags before diffusers/transformers


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2 / CLIP byte-to-symbol table.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def byte_level_tokenizer(pad_token: str = "<|endoftext|>"):
    """A CLIP tokenizer over bytes: 256 byte symbols, the same with </w>, BOS, EOS (514 tokens), no merges.

    It tokenizes any prompt (any unicode) without a vocabulary file."""
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77, pad_token=pad_token)


def tiny_sd_components(seed: int = 0, cross_attention_dim: int = 32, in_channels: int = 4,
                       sd_layout: bool = False, sample_size: int = 8) -> dict[str, Any]:
    """UNet, VAE, text encoder, tokenizer and scheduler of an SD-1.x-like model with ~1.5 M parameters.

    sd_layout=True builds the 4-block, 2-resnets-per-block UNet that single-file converters assume."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    if sd_layout:
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=in_channels, out_channels=4, layers_per_block=2,
            block_out_channels=(32, 32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=cross_attention_dim, attention_head_dim=8, norm_num_groups=8)
    else:
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=in_channels, out_channels=4, layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=cross_attention_dim, attention_head_dim=8, norm_num_groups=8)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=8,
                        sample_size=sample_size * 8)
    torch.manual_seed(seed + 2)
    text_config = CLIPTextConfig(bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=cross_attention_dim,
                                 intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
                                 vocab_size=514, max_position_embeddings=77, projection_dim=cross_attention_dim)
    text_encoder = CLIPTextModel(text_config).eval()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, num_train_timesteps=1000, timestep_spacing="leading")
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder,
            "tokenizer": byte_level_tokenizer(), "scheduler": scheduler,
            "safety_checker": None, "feature_extractor": None, "image_encoder": None}


def tiny_sd_pipeline(seed: int = 0, **kwargs):
    from diffusers import StableDiffusionPipeline

    comps = tiny_sd_components(seed, **kwargs)
    pipe = StableDiffusionPipeline(**comps, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_sd(folder: str | Path, seed: int = 0, **kwargs) -> Path:
    """Write a tiny SD-1.x model as a diffusers folder (model_index.json + components)."""
    folder = Path(folder)
    tiny_sd_pipeline(seed, **kwargs).save_pretrained(str(folder), safe_serialization=True)
    return folder
