"""The original (CompVis / Stability, "LDM") single-file layout: key conversion to diffusers and the
architecture read from tensor shapes.

UNet and VAE keys go through diffusers' own converters (`diffusers.loaders.single_file_utils`), the text
encoders through the small functions below. Every size (channels per level, resnets per level, transformer
depths, in/out/latent channels, cross-attention width, text-encoder width/depth/MLP width, projection width)
comes from the shapes of the converted tensors; what shapes cannot tell (attention heads, activation,
norm groups, scaling factor) comes from the family's config (`families.py`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from aigc_desktop.core.detect import UNET_PREFIX
from aigc_desktop.core.errors import ModelLoadError

VAE_PREFIXES = ("first_stage_model.", "vae.")
# Text encoders by slot: (prefix, layout). "hf" = transformers' CLIP names, "open_clip" = OpenCLIP names.
TEXT_ENCODERS = {
    "sd1": {"text_encoder": ("cond_stage_model.transformer.", "hf")},
    "sd2": {"text_encoder": ("cond_stage_model.model.", "open_clip")},
    "sdxl": {"text_encoder": ("conditioner.embedders.0.transformer.", "hf"),
             "text_encoder_2": ("conditioner.embedders.1.model.", "open_clip")},
}
# Keys real files carry that are not weights of the networks we build.
_NOT_WEIGHTS = re.compile(r"(^|\.)(position_ids|logit_scale|attn_mask)$")

Shapes = Mapping[str, tuple[int, ...]]


def is_weight(key: str) -> bool:
    return not _NOT_WEIGHTS.search(key)


def _indices(shapes: Shapes, prefix: str) -> list[int]:
    """The distinct integers that follow `prefix` in the keys (block or layer numbers), sorted."""
    found = set()
    for key in shapes:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _first(shapes: Shapes, suffix: str, prefix: str = "") -> tuple[int, ...] | None:
    for key, shape in shapes.items():
        if key.startswith(prefix) and key.endswith(suffix):
            return shape
    return None


# ----------------------------------------------------------------------------------------------- UNet


def unet_to_diffusers(ldm: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """UNet weights (keys without `model.diffusion_model.`) in diffusers' names."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    shapes = {k: tuple(v.shape) for k, v in ldm.items()}
    blocks = _indices(shapes, "input_blocks.")
    downsamples = [i for i in blocks if f"input_blocks.{i}.0.op.weight" in shapes]
    if not blocks or "input_blocks.0.0.weight" not in shapes:
        raise ModelLoadError("the UNet has no input convolution (input_blocks.0.0)")
    # Resnets per level = input blocks before the first downsampling block, less the input convolution.
    layers_per_block = (downsamples[0] if downsamples else len(blocks)) - 1
    if layers_per_block < 1:
        raise ModelLoadError("the UNet's input blocks are in an unknown order")
    config = {"layers_per_block": layers_per_block,
              "addition_embed_type": "text_time" if "label_emb.0.0.weight" in shapes else None}
    prefixed = {UNET_PREFIX + k: v for k, v in ldm.items()}
    return convert_ldm_unet_checkpoint(prefixed, config)


def unet_config(shapes: Shapes, base: dict[str, Any], pooled_dim: int | None = None) -> dict[str, Any]:
    """A UNet2DConditionModel config: sizes from diffusers-layout `shapes`, conventions from `base`."""
    levels = _indices(shapes, "down_blocks.")
    if not levels or "conv_in.weight" not in shapes:
        raise ModelLoadError("the UNet has no down blocks")
    channels = [shapes[f"down_blocks.{i}.resnets.0.conv2.weight"][0] for i in levels]
    layers = len(_indices(shapes, "down_blocks.0.resnets."))
    attn = [bool(_indices(shapes, f"down_blocks.{i}.attentions.")) for i in levels]
    depth = [len(_indices(shapes, f"down_blocks.{i}.attentions.0.transformer_blocks.")) for i in levels]
    mid_depth = len(_indices(shapes, "mid_block.attentions.0.transformer_blocks."))
    if not mid_depth:
        raise ModelLoadError("the UNet has no attention in its middle block (not a Stable Diffusion UNet)")
    if attn[-1] and depth[-1] != mid_depth:
        raise ModelLoadError(f"the UNet's last level has {depth[-1]} transformer blocks and its middle block "
                             f"{mid_depth}; diffusers cannot build that")
    per_level = [d if a else 1 for a, d in zip(attn, depth)]
    per_level[-1] = mid_depth  # diffusers sizes the middle block from the last entry
    n = len(levels)
    up_depth = [len(_indices(shapes, f"up_blocks.{n - 1 - i}.attentions.0.transformer_blocks.")) for i in levels]
    if [d for d, a in zip(up_depth, attn) if a] != [d for d, a in zip(depth, attn) if a]:
        raise ModelLoadError("the UNet's up blocks are not the mirror of its down blocks")
    cross = _first(shapes, "attn2.to_k.weight")
    proj_in = _first(shapes, "proj_in.weight")
    conv_in = shapes["conv_in.weight"]
    config = {k: v for k, v in base.items() if not k.startswith("_")}
    config.update(
        in_channels=conv_in[1], out_channels=shapes["conv_out.weight"][0], block_out_channels=channels,
        layers_per_block=layers,
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)],
        transformer_layers_per_block=per_level if any(d != 1 for d in per_level) else 1,
        cross_attention_dim=cross[1] if cross else base.get("cross_attention_dim"),
        use_linear_projection=bool(proj_in and len(proj_in) == 2),
        attention_head_dim=unet_heads(base, channels),
        num_attention_heads=None, mid_block_type="UNetMidBlock2DCrossAttn",
    )
    time_dim = shapes["time_embedding.linear_1.weight"][0]
    config["time_embedding_dim"] = None if time_dim == 4 * channels[0] else time_dim
    add = shapes.get("add_embedding.linear_1.weight")
    if add:
        config["addition_embed_type"] = "text_time"
        config["projection_class_embeddings_input_dim"] = add[1]
        # The text-time input is the pooled text embedding and six size/crop numbers of t channels each.
        t = (add[1] - pooled_dim) / 6 if pooled_dim else base.get("addition_time_embed_dim")
        if not t or t != int(t):
            raise ModelLoadError(f"the UNet's text-time embedding takes {add[1]} inputs, which does not fit a "
                                 f"pooled text embedding of {pooled_dim}")
        config["addition_time_embed_dim"] = int(t)
    else:
        config.update(addition_embed_type=None, projection_class_embeddings_input_dim=None,
                      addition_time_embed_dim=None)
    return config


def unet_heads(base: dict[str, Any], channels: list[int]) -> int | list[int]:
    """Attention heads per level under the family's rule: a fixed head count (SD 1.x: diffusers'
    `attention_head_dim: 8` means 8 heads) or a fixed head width (SD 2.x / SDXL: 64 channels per head)."""
    rule = base.get("attention_head_dim", 8)
    if isinstance(rule, int):
        return rule
    head_width = base["block_out_channels"][0] // rule[0]
    return [max(1, c // head_width) for c in channels]


# ----------------------------------------------------------------------------------------------- VAE

# Attention names of diffusers' older VAE files (`query` / `key` / `value` / `proj_attn`).
_OLD_VAE_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def vae_to_diffusers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VAE weights (keys without a `first_stage_model.` prefix), original or diffusers layout, in
    diffusers' current names."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    if any(k.startswith("encoder.down_blocks.") for k in state):
        out = {}
        for key, value in state.items():
            for old, new in _OLD_VAE_ATTENTION.items():
                key = key.replace(old, new)
            if ".attentions." in key and value.ndim == 4:  # 1x1 convolutions saved as attention projections
                value = value[:, :, 0, 0]
            out[key] = value
        return out
    levels = len(_indices({k: () for k in state}, "encoder.down."))
    if not levels:
        raise ModelLoadError("no VAE encoder blocks found")
    config = {"down_block_types": ["DownEncoderBlock2D"] * levels, "up_block_types": ["UpDecoderBlock2D"] * levels}
    return convert_ldm_vae_checkpoint(state, config)


def vae_config(shapes: Shapes, base: dict[str, Any]) -> dict[str, Any]:
    levels = _indices(shapes, "encoder.down_blocks.")
    if not levels or "decoder.conv_in.weight" not in shapes:
        raise ModelLoadError("the VAE has no encoder blocks or no decoder")
    channels = [shapes[f"encoder.down_blocks.{i}.resnets.0.conv2.weight"][0] for i in levels]
    config = {k: v for k, v in base.items() if not k.startswith("_")}
    config.update(
        in_channels=shapes["encoder.conv_in.weight"][1], out_channels=shapes["decoder.conv_out.weight"][0],
        latent_channels=shapes["decoder.conv_in.weight"][1], block_out_channels=channels,
        layers_per_block=len(_indices(shapes, "encoder.down_blocks.0.resnets.")),
        down_block_types=["DownEncoderBlock2D"] * len(levels), up_block_types=["UpDecoderBlock2D"] * len(levels),
        mid_block_add_attention="encoder.mid_block.attentions.0.to_q.weight" in shapes,
        use_quant_conv="quant_conv.weight" in shapes, use_post_quant_conv="post_quant_conv.weight" in shapes,
    )
    return config


# ----------------------------------------------------------------------------------------------- text encoders

_OPEN_CLIP_LAYER = {"ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.", "mlp.c_fc.": "mlp.fc1.",
                    "mlp.c_proj.": "mlp.fc2.", "attn.out_proj.": "self_attn.out_proj."}


def clip_to_diffusers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers-layout CLIP text encoder (keys after the checkpoint prefix) in CLIPTextModel's names:
    `text_model.` is dropped (transformers >= 5.6 has no such level); very old files lack it already."""
    return {k.removeprefix("text_model."): v for k, v in state.items()}


def open_clip_to_diffusers(state: dict[str, torch.Tensor], drop_last_layer: bool) -> dict[str, torch.Tensor]:
    """An OpenCLIP text tower (keys after the checkpoint prefix) in CLIPTextModel's names.

    `drop_last_layer`: SD 2.x conditions on the penultimate layer, which is the output of a CLIPTextModel
    built one layer short (its final layer norm applies there, as in SD 2.x's FrozenOpenCLIPEmbedder).
    The text projection is kept, transposed (open_clip multiplies x @ P, a Linear holds P transposed)."""
    if "positional_embedding" not in state or "token_embedding.weight" not in state:
        raise ModelLoadError("the OpenCLIP text encoder has no token or position embedding")
    width = state["positional_embedding"].shape[1]
    blocks = _indices({k: () for k in state}, "transformer.resblocks.")
    keep = blocks[:-1] if drop_last_layer else blocks
    out = {"embeddings.token_embedding.weight": state["token_embedding.weight"],
           "embeddings.position_embedding.weight": state["positional_embedding"]}
    for name in ("weight", "bias"):
        if f"ln_final.{name}" in state:
            out[f"final_layer_norm.{name}"] = state[f"ln_final.{name}"]
    if "text_projection" in state:
        out["text_projection.weight"] = state["text_projection"].T.contiguous()
    kept = set(keep)
    for key, value in state.items():
        if not key.startswith("transformer.resblocks."):
            continue
        index, rest = key[len("transformer.resblocks."):].split(".", 1)
        if int(index) not in kept:
            continue
        layer = f"encoder.layers.{index}."
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = rest.rsplit("_", 1)[1]  # weight | bias
            for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):  # q, k, v stacked along the first axis
                out[f"{layer}self_attn.{proj}.{kind}"] = value[i * width:(i + 1) * width]
            continue
        for old, new in _OPEN_CLIP_LAYER.items():
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        out[layer + rest] = value
    return out


def text_config(shapes: Shapes, base: dict[str, Any]) -> dict[str, Any]:
    """A CLIPTextConfig dict: sizes from CLIPTextModel-layout `shapes`, activation, heads rule (the
    family's head width) and special-token ids from `base`."""
    try:
        vocab, width = shapes["embeddings.token_embedding.weight"]
        positions = shapes["embeddings.position_embedding.weight"][0]
        inner = shapes["encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise ModelLoadError(f"the text encoder lacks {exc.args[0]}") from None
    except (ValueError, IndexError):  # a tensor of another rank than CLIP's: damaged or another model
        found = {k.split(".")[-2]: tuple(shapes.get(k, ())) for k in ("embeddings.token_embedding.weight",
                                                                       "embeddings.position_embedding.weight")}
        raise ModelLoadError(f"the text encoder's embeddings have shapes {found}, where CLIP has (rows, width); "
                             "the file is damaged or not a Stable Diffusion checkpoint") from None
    if min(vocab, width, positions, inner) < 1:
        raise ModelLoadError("the text encoder has empty embeddings; the file is damaged")
    config = {k: v for k, v in base.items() if not k.startswith("_") and k != "architectures"}
    head_width = base["hidden_size"] // base["num_attention_heads"]
    projection = shapes.get("text_projection.weight")
    config.update(vocab_size=vocab, hidden_size=width, max_position_embeddings=positions, intermediate_size=inner,
                  num_hidden_layers=len(_indices(shapes, "encoder.layers.")),
                  num_attention_heads=max(1, width // head_width),
                  projection_dim=projection[0] if projection else width)
    return config
