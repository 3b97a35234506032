"""Write diffusers models in the original single-file layouts (CompVis / Stability "LDM" key names), for tests.

diffusers ships only the original -> diffusers converters; these are the inverse, written from the key
layouts real checkpoints carry (SD 1.x, SD 2.x, SDXL; inpainting is the same with 9 input channels):

    model.diffusion_model.*                       UNet (input_blocks / middle_block / output_blocks)
    first_stage_model.*                           VAE (encoder.down.N.block.M, mid.block_1, mid.attn_1 ...)
    cond_stage_model.transformer.text_model.*     SD 1.x CLIP ViT-L (transformers layout)
    cond_stage_model.model.*                      SD 2.x OpenCLIP ViT-H (open_clip layout, one more block
                                                  than the diffusers text encoder: SD 2.x uses the penultimate)
    conditioner.embedders.0.transformer.text_model.*   SDXL CLIP ViT-L
    conditioner.embedders.1.model.*               SDXL OpenCLIP bigG (open_clip layout, with text_projection)

plus what real files carry beside the weights: int64 `position_ids`, `logit_scale`, the noise schedule
(`betas`, `alphas_cumprod`, ...) at the top level and, when asked, EMA entries (`model_ema.*`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

_RESNET = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "time_emb_proj.": "emb_layers.1.",
           "norm2.": "out_layers.0.", "conv2.": "out_layers.3.", "conv_shortcut.": "skip_connection."}
_UNET_TOP = {"time_embedding.linear_1.": "time_embed.0.", "time_embedding.linear_2.": "time_embed.2.",
             "add_embedding.linear_1.": "label_emb.0.0.", "add_embedding.linear_2.": "label_emb.0.2.",
             "conv_in.": "input_blocks.0.0.", "conv_norm_out.": "out.0.", "conv_out.": "out.2."}


def _swap_prefix(rest: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    return rest


def unet_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """A UNet2DConditionModel state dict in LDM names (without the `model.diffusion_model.` prefix)."""
    per = config["layers_per_block"] + 1  # input blocks per level: resnets + the downsampler
    up_attention = [t.startswith("CrossAttn") for t in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        p = key.split(".")
        if key.startswith(("down_blocks.", "up_blocks.")):
            down = key.startswith("down_blocks.")
            level, kind = int(p[1]), p[2]
            blocks, first = ("input_blocks", 1 + level * per) if down else ("output_blocks", level * per)
            if kind == "resnets":
                new = f"{blocks}.{first + int(p[3])}.0." + _swap_prefix(".".join(p[4:]), _RESNET)
            elif kind == "attentions":
                new = f"{blocks}.{first + int(p[3])}.1." + ".".join(p[4:])
            elif down:  # downsamplers.0.conv.*: an input block of its own after the level's resnets
                new = f"input_blocks.{(level + 1) * per}.0.op." + ".".join(p[5:])
            else:  # upsamplers.0.conv.*: in the level's last output block, after its resnet (and attention)
                new = f"output_blocks.{first + per - 1}.{2 if up_attention[level] else 1}.conv." + ".".join(p[5:])
        elif key.startswith("mid_block."):
            rest = ".".join(p[3:])
            if p[1] == "resnets":
                new = f"middle_block.{2 * int(p[2])}." + _swap_prefix(rest, _RESNET)
            else:
                new = "middle_block.1." + rest
        else:
            new = _swap_prefix(key, _UNET_TOP)
        out[new] = value
    return out


_VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def vae_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """An AutoencoderKL state dict in LDM names (without the `first_stage_model.` prefix); attention
    projections become the 1x1 convolutions the original VAE uses."""
    levels = len(config["block_out_channels"])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        side, _, rest = key.partition(".")  # encoder | decoder | quant_conv | post_quant_conv
        p = rest.split(".")
        if rest.startswith(("down_blocks.", "up_blocks.")):
            level = int(p[1]) if side == "encoder" else levels - 1 - int(p[1])
            group = "down" if side == "encoder" else "up"
            if p[2] == "resnets":
                tail = ".".join(p[4:]).replace("conv_shortcut.", "nin_shortcut.")
                new = f"{side}.{group}.{level}.block.{p[3]}.{tail}"
            else:  # downsamplers.0.conv.* / upsamplers.0.conv.*
                new = f"{side}.{group}.{level}.{'downsample' if side == 'encoder' else 'upsample'}.conv." + ".".join(p[5:])
        elif rest.startswith("mid_block.resnets."):
            new = f"{side}.mid.block_{int(p[2]) + 1}." + ".".join(p[3:])
        elif rest.startswith("mid_block.attentions.0."):
            new = f"{side}.mid.attn_1." + _swap_prefix(".".join(p[3:]), _VAE_ATTENTION)
            if value.ndim == 2:
                value = value[:, :, None, None]
        elif rest.startswith("conv_norm_out."):
            new = f"{side}.norm_out." + ".".join(p[1:])
        else:
            new = key
        out[new] = value
    return out


def clip_to_original(state: dict[str, torch.Tensor], positions: int) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModel state dict in the transformers-4 layout SD files use (`text_model.`
    level, with the int64 `position_ids` buffer those files carry)."""
    out = {("text_model." + k if not k.startswith("text_model.") else k): v for k, v in state.items()}
    out["text_model.embeddings.position_ids"] = torch.arange(positions, dtype=torch.int64)[None]
    return out


_OPEN_CLIP = {"layer_norm1.": "ln_1.", "layer_norm2.": "ln_2.", "mlp.fc1.": "mlp.c_fc.", "mlp.fc2.": "mlp.c_proj.",
              "self_attn.out_proj.": "attn.out_proj."}


def open_clip_to_original(state: dict[str, torch.Tensor], extra_block: bool = False,
                          seed: int = 0) -> dict[str, torch.Tensor]:
    """A CLIPTextModel(WithProjection) state dict in open_clip names. `extra_block` appends the final
    resblock (random weights) and a text projection that SD 2.x files carry but its pipeline never uses."""
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    width = state["embeddings.token_embedding.weight"].shape[1]
    out: dict[str, torch.Tensor] = {
        "token_embedding.weight": state["embeddings.token_embedding.weight"],
        "positional_embedding": state["embeddings.position_embedding.weight"],
        "ln_final.weight": state["final_layer_norm.weight"], "ln_final.bias": state["final_layer_norm.bias"],
        "logit_scale": torch.tensor(4.6052),
    }
    if "text_projection.weight" in state:
        out["text_projection"] = state["text_projection.weight"].T.contiguous()
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")})
    for i in layers:
        pre, new = f"encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[new + f"attn.in_proj_{kind}"] = torch.cat(
                [state[pre + f"self_attn.{q}_proj.{kind}"] for q in ("q", "k", "v")])
        for key, value in state.items():
            if key.startswith(pre) and ".q_proj." not in key and ".k_proj." not in key and ".v_proj." not in key:
                out[new + _swap_prefix(key[len(pre):], _OPEN_CLIP)] = value
    if extra_block:
        g = torch.Generator().manual_seed(seed)
        last = f"transformer.resblocks.{len(layers)}."
        template = {k[len(f"transformer.resblocks.{layers[-1]}."):]: v for k, v in out.items()
                    if k.startswith(f"transformer.resblocks.{layers[-1]}.")}
        meta = template[next(iter(template))].is_meta  # shape-only models (tests of real sizes)

        def noise(shape, dtype=torch.float32):
            return (torch.empty(shape, dtype=dtype, device="meta") if meta
                    else torch.randn(shape, generator=g, dtype=dtype) * 0.02)

        for rest, value in template.items():
            out[last + rest] = noise(value.shape, value.dtype)
        out["text_projection"] = noise((width, width))
    return out


def _noise_schedule() -> dict[str, torch.Tensor]:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    return {"betas": betas.float(), "alphas_cumprod": alphas_cumprod.float(),
            "alphas_cumprod_prev": torch.cat([torch.ones(1), alphas_cumprod[:-1].float()]),
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt().float()}


def checkpoint_state_dict(pipe: Any, family: str, ema: bool = False) -> dict[str, torch.Tensor]:
    """The whole model in its family's original single-file layout (as a pruned release carries it)."""
    unet = unet_to_original(pipe.unet.state_dict(), pipe.unet.config)
    out = {"model.diffusion_model." + k: v for k, v in unet.items()}
    out.update({"first_stage_model." + k: v for k, v in vae_to_original(pipe.vae.state_dict(), pipe.vae.config).items()})
    positions = pipe.text_encoder.config.max_position_embeddings
    if family == "sd1":
        te = clip_to_original(pipe.text_encoder.state_dict(), positions)
        out.update({"cond_stage_model.transformer." + k: v for k, v in te.items()})
    elif family == "sd2":
        te = open_clip_to_original(pipe.text_encoder.state_dict(), extra_block=True)
        out.update({"cond_stage_model.model." + k: v for k, v in te.items()})
    elif family == "sdxl":
        te = clip_to_original(pipe.text_encoder.state_dict(), positions)
        out.update({"conditioner.embedders.0.transformer." + k: v for k, v in te.items()})
        te2 = open_clip_to_original(pipe.text_encoder_2.state_dict())
        out.update({"conditioner.embedders.1.model." + k: v for k, v in te2.items()})
    else:
        raise ValueError(f"unknown family {family!r}")
    out.update(_noise_schedule())
    if ema:  # EMA entries in LDM's flattened names; a loader must not take them for the model
        for key in list(unet)[:120]:
            out["model_ema.diffusion_model" + key.replace(".", "")] = torch.zeros(1)
        out["model_ema.decay"] = torch.tensor(0.9999)
        out["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    return {k: v.detach().contiguous() for k, v in out.items()}


def save_checkpoint(pipe: Any, family: str, path: str | Path, dtype: torch.dtype | None = None,
                    global_step: int | None = None, ema: bool = False,
                    metadata: dict[str, str] | None = None) -> Path:
    """Write `pipe` as an original-layout checkpoint: .safetensors, or a torch zip (.ckpt/.pt) holding
    {"state_dict": ..., "global_step": N} like a Lightning checkpoint. `dtype` casts the float weights."""
    path = Path(path)
    state = checkpoint_state_dict(pipe, family, ema=ema)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata=metadata)
    else:
        torch.save({"state_dict": state, "global_step": global_step or 0, "epoch": 0}, str(path))
    return path


def save_vae(vae: Any, path: str | Path, layout: str = "original") -> Path:
    """A standalone VAE file: `original` (LDM names, as vae-ft-mse-840000 ships) or `diffusers`."""
    from safetensors.torch import save_file

    state = vae.state_dict()
    if layout == "original":
        state = vae_to_original(state, vae.config)
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return Path(path)
