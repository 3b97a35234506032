"""Tiny LoRA and textual-inversion files for tests, written in the layouts real tools produce.

    deltas = lora_deltas(unet, text_encoder)        # random low-rank factors, seeded
    save_kohya_lora(path, deltas, alpha=2.0)        # kohya sd-scripts layout (what civitai LoRAs use)
    save_diffusers_lora(path, deltas, alpha=2.0)    # diffusers / PEFT layout, same effect

kohya names a LoRA module `lora_unet_` / `lora_te_` (SDXL: `lora_te1_`, `lora_te2_`) + the module path in the
diffusers U-Net (SD 1.x/2.x; `sgm=True` gives SDXL's `input_blocks_4_1_...` spelling) or the transformers-4
text-encoder path (`text_model.encoder.layers.0.self_attn.q_proj`) with dots turned into underscores, and
stores `.lora_down.weight` (rank x in), `.lora_up.weight` (out x rank) and `.alpha` (a 0-d tensor); the
delta is up @ down * alpha / rank. diffusers/PEFT stores `unet.<path>.lora_A.weight` / `.lora_B.weight`
with scale 1 (alpha = rank), so the alpha / rank factor is folded into lora_B here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aigc_desktop  # noqa: F401 - offline flags first

_UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
_TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


@dataclass
class LoraModule:
    down: Any  # rank x in (x 1 x 1 for 1x1 convolutions)
    up: Any  # out x rank (x 1 x 1)


@dataclass
class LoraDeltas:
    """Low-rank factors keyed by component ("unet", "text_encoder", "text_encoder_2") and module path."""

    modules: dict[str, dict[str, LoraModule]]
    rank: int


def lora_deltas(unet, text_encoder=None, text_encoder_2=None, rank: int = 4, seed: int = 0,
                strength: float = 1.0) -> LoraDeltas:
    """Random factors for the attention / projection / MLP layers kohya targets, as module paths."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, dict[str, LoraModule]] = {}
    parts = {"unet": (unet, _UNET_TARGETS), "text_encoder": (text_encoder, _TE_TARGETS),
             "text_encoder_2": (text_encoder_2, _TE_TARGETS)}
    for part, (model, targets) in parts.items():
        if model is None:
            continue
        found: dict[str, LoraModule] = {}
        for name, module in model.named_modules():
            if not name.endswith(targets) or not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            if part == "unet" and ".attentions." not in name:
                continue
            if isinstance(module, torch.nn.Conv2d) and module.kernel_size != (1, 1):
                continue
            fan_in, fan_out = module.weight.shape[1], module.weight.shape[0]
            down = torch.randn(rank, fan_in, generator=gen) / fan_in ** 0.5
            up = torch.randn(fan_out, rank, generator=gen) * strength / rank ** 0.5
            if isinstance(module, torch.nn.Conv2d):
                down, up = down[:, :, None, None], up[:, :, None, None]
            found[name] = LoraModule(down.contiguous(), up.contiguous())
        out[part] = found
    return LoraDeltas(out, rank)


def _te_path(name: str) -> str:
    # transformers >= 5 drops the `text_model.` level of CLIPTextModel; LoRA files keep the 4.x path.
    return name if name.startswith("text_model.") else "text_model." + name


def _sgm_unet_path(name: str, layers_per_block: int) -> str:
    """diffusers U-Net path -> the SGM/LDM path kohya uses for SDXL (`input_blocks.4.1.<rest>`)."""
    parts = name.split(".")
    if parts[0] == "down_blocks" and parts[2] == "attentions":
        block = int(parts[1]) * (layers_per_block + 1) + int(parts[3]) + 1
        return ".".join(["input_blocks", str(block), "1"] + parts[4:])
    if parts[0] == "up_blocks" and parts[2] == "attentions":
        block = int(parts[1]) * (layers_per_block + 1) + int(parts[3])
        return ".".join(["output_blocks", str(block), "1"] + parts[4:])
    if parts[0] == "mid_block" and parts[1] == "attentions":
        return ".".join(["middle_block", "1"] + parts[3:])
    raise ValueError(f"no SGM spelling for {name}")


def kohya_state_dict(deltas: LoraDeltas, alpha: float, sgm: bool = False, layers_per_block: int = 1,
                     te_prefixes: tuple[str, str] | None = None) -> dict[str, Any]:
    import torch

    if te_prefixes is None:
        te_prefixes = ("lora_te1", "lora_te2") if "text_encoder_2" in deltas.modules else ("lora_te", "lora_te2")
    out: dict[str, Any] = {}
    for part, modules in deltas.modules.items():
        for name, m in modules.items():
            if part == "unet":
                path = _sgm_unet_path(name, layers_per_block) if sgm else name
                key = "lora_unet_" + path.replace(".", "_")
            else:
                prefix = te_prefixes[0] if part == "text_encoder" else te_prefixes[1]
                key = prefix + "_" + _te_path(name).replace(".", "_")
            out[f"{key}.lora_down.weight"] = m.down
            out[f"{key}.lora_up.weight"] = m.up
            out[f"{key}.alpha"] = torch.tensor(float(alpha))
    return out


def diffusers_state_dict(deltas: LoraDeltas, alpha: float) -> dict[str, Any]:
    scale = alpha / deltas.rank
    out: dict[str, Any] = {}
    for part, modules in deltas.modules.items():
        for name, m in modules.items():
            path = name if part == "unet" else _te_path(name)
            out[f"{part}.{path}.lora_A.weight"] = m.down
            out[f"{part}.{path}.lora_B.weight"] = m.up * scale
    return out


def save_kohya_lora(path: str | Path, deltas: LoraDeltas, alpha: float = 2.0, **kwargs) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    save_file(kohya_state_dict(deltas, alpha, **kwargs), str(path),
              metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(deltas.rank),
                        "ss_network_alpha": str(alpha)})
    return path


def save_diffusers_lora(path: str | Path, deltas: LoraDeltas, alpha: float = 2.0) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    save_file(diffusers_state_dict(deltas, alpha), str(path))
    return path
