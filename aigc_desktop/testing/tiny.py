"""Tiny Stable Diffusion components with random weights, built in code (no download), seeded.

    save_tiny_sd(folder)            # a diffusers-format folder the app loads like a user's model
    tiny_sd_components(...)         # the components, for comparing against diffusers directly
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aigc_desktop  # noqa: F401 - offline flags before diffusers/transformers


# The tokenizers are production code (engines/diffusion/tokenizers.py), imported when first used so that
# importing this module stays cheap (no diffusers).
def bytes_to_unicode() -> dict[int, str]:
    from aigc_desktop.engines.diffusion.tokenizers import bytes_to_unicode as table

    return table()


def byte_level_tokenizer(pad_token: str = "<|endoftext|>"):
    from aigc_desktop.engines.diffusion.tokenizers import byte_level_tokenizer as build

    return build(pad_token)


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


# ------------------------------------------------------------------------------------------ per-family tiny models
# Tiny models that follow each family's real conventions (the real CLIP vocabulary and pad tokens, activation
# functions, 32 norm groups, the attention-head rules: 8 heads in SD 1.x, 64-wide heads in SD 2.x / SDXL
# and their text encoders) with small widths, so that a loader which reads sizes from tensor shapes and takes
# the rest from the family's conventions rebuilds exactly the same network.

FAMILIES = ("sd1", "sd2", "sdxl")


def real_clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """The CLIP BPE tokenizer shipped in resources/tokenizer (SD 2.x and SDXL's second one pad with "!")."""
    from transformers import CLIPTokenizer

    from aigc_desktop.core.paths import resources_dir

    folder = resources_dir() / "tokenizer"
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"),
                         model_max_length=77, pad_token=pad_token)


def _heads_64(channels) -> list[int]:
    return [max(1, c // 64) for c in channels]


def _tiny_clip(width: int, layers: int, act: str, projection_dim: int | None = None, seed: int = 0):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    # bos/eos/pad ids 0/2/1 as in the released configs: eos 2 makes transformers pool at the highest id (EOS).
    config = CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=2 * width,
                            num_attention_heads=max(1, width // 64), num_hidden_layers=layers,
                            max_position_embeddings=77, hidden_act=act, projection_dim=projection_dim or width,
                            bos_token_id=0, eos_token_id=2, pad_token_id=1)
    cls = CLIPTextModelWithProjection if projection_dim else CLIPTextModel
    return cls(config).eval()


def _tiny_vae(seed: int, scaling_factor: float):
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(32, 32, 64, 64), layers_per_block=1, norm_num_groups=32,
                         sample_size=64, scaling_factor=scaling_factor).eval()


def tiny_family_components(family: str, seed: int = 0, inpaint: bool = False,
                           prediction_type: str | None = None) -> dict[str, Any]:
    """Components of a tiny `family` model (sd1 | sd2 | sdxl); `inpaint` gives the UNet 9 input channels.

    sd1: CLIP text encoder (quick_gelu) of width 32, SD-layout UNet (4 levels, 2 resnets, 8 heads).
    sd2: OpenCLIP-like text encoder (gelu, pad "!") of width 32, linear projections, 64-wide heads;
         v-prediction (epsilon when `inpaint`) unless `prediction_type` says otherwise.
    sdxl: CLIP-L-like (width 32) + bigG-like (width 64, 10 layers: diffusers recognises SDXL by block 9,
          projection 48) encoders, 3-level UNet with transformer depths 1/1/2 and the text-time embedding.
    """
    import torch
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler, UNet2DConditionModel

    in_channels = 9 if inpaint else 4
    betas = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 steps_offset=1, set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False)
    if family == "sd1":
        text_encoder = _tiny_clip(32, 2, "quick_gelu", seed=seed + 2)
        torch.manual_seed(seed)
        channels = (32, 32, 64, 64)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=2, block_out_channels=channels,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
        scheduler = PNDMScheduler.from_config({**betas, "prediction_type": prediction_type or "epsilon"})
        return {"unet": unet.eval(), "vae": _tiny_vae(seed + 1, 0.18215), "text_encoder": text_encoder,
                "tokenizer": real_clip_tokenizer(), "scheduler": scheduler,
                "safety_checker": None, "feature_extractor": None, "image_encoder": None}
    if family == "sd2":
        text_encoder = _tiny_clip(32, 2, "gelu", seed=seed + 2)
        torch.manual_seed(seed)
        channels = (32, 32, 64, 64)
        prediction_type = prediction_type or ("epsilon" if inpaint else "v_prediction")  # as SD 2 inpainting
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=2, block_out_channels=channels,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=32, attention_head_dim=_heads_64(channels), norm_num_groups=32,
            use_linear_projection=True, upcast_attention=prediction_type == "v_prediction")
        cls = DDIMScheduler if prediction_type == "v_prediction" else PNDMScheduler
        return {"unet": unet.eval(), "vae": _tiny_vae(seed + 1, 0.18215), "text_encoder": text_encoder,
                "tokenizer": real_clip_tokenizer("!"), "scheduler": cls.from_config({**betas, "prediction_type": prediction_type}),
                "safety_checker": None, "feature_extractor": None, "image_encoder": None}
    if family == "sdxl":
        text_encoder = _tiny_clip(32, 2, "quick_gelu", seed=seed + 2)
        text_encoder_2 = _tiny_clip(64, 10, "gelu", projection_dim=48, seed=seed + 3)
        torch.manual_seed(seed)
        channels = (32, 64, 64)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=2, block_out_channels=channels,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=[1, 1, 2], cross_attention_dim=32 + 64,
            attention_head_dim=_heads_64(channels), norm_num_groups=32, use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=48 + 6 * 8)
        scheduler = EulerDiscreteScheduler.from_config({**betas, "prediction_type": prediction_type or "epsilon",
                                                        "timestep_spacing": "leading", "interpolation_type": "linear"})
        return {"unet": unet.eval(), "vae": _tiny_vae(seed + 1, 0.13025), "text_encoder": text_encoder,
                "text_encoder_2": text_encoder_2, "tokenizer": real_clip_tokenizer(),
                "tokenizer_2": real_clip_tokenizer("!"), "scheduler": scheduler,
                "image_encoder": None, "feature_extractor": None}
    raise ValueError(f"unknown family {family!r}")


def tiny_family_pipeline(family: str, seed: int = 0, inpaint: bool = False, prediction_type: str | None = None):
    """The diffusers pipeline of a tiny family model (the inpainting pipeline when `inpaint`)."""
    import diffusers

    comps = tiny_family_components(family, seed, inpaint=inpaint, prediction_type=prediction_type)
    if family == "sdxl":
        name = "StableDiffusionXLInpaintPipeline" if inpaint else "StableDiffusionXLPipeline"
        pipe = getattr(diffusers, name)(**comps, force_zeros_for_empty_prompt=True, add_watermarker=False)
    else:
        name = "StableDiffusionInpaintPipeline" if inpaint else "StableDiffusionPipeline"
        pipe = getattr(diffusers, name)(**comps, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
