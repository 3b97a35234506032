"""The generator: mapping network + StyleGAN2 or StyleGAN3 synthesis network.

    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                  mapping_kwargs={"num_layers": 8},
                  synthesis_kwargs={"channel_base": 16384, "architecture": "skip"})
    img = G(z, c, truncation_psi=0.7)                 # [N, C, R, R] in about [-1, 1]
    G2 = Generator.from_config(G.to_config())         # same architecture

The positional order and the keyword names are NVIDIA's (z_dim, c_dim, w_dim, img_resolution, img_channels,
mapping_kwargs, synthesis_kwargs), so their `_init_kwargs` build the same network and their state dicts
load by name. `family` picks the synthesis network: "stylegan2" (default) or "stylegan3".
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from aigc_desktop.engines.stylegan import stylegan2, stylegan3
from aigc_desktop.engines.stylegan.mapping import MappingNetwork

FAMILIES = ("stylegan2", "stylegan3")

# Keyword arguments each synthesis network understands (NVIDIA's names). Others in a checkpoint's
# init kwargs (training-time options such as channels_last or fused_modconv_default) are ignored.
SYNTHESIS_KWARGS = {
    "stylegan2": {"channel_base", "channel_max", "num_fp16_res", "architecture", "resample_filter", "conv_clamp",
                  "fp16_channels_last", "kernel_size", "use_noise", "activation"},
    "stylegan3": {"channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                  "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res", "conv_kernel", "filter_size",
                  "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta"},
}
MAPPING_KWARGS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}


def clean_kwargs(family: str, mapping_kwargs: dict[str, Any] | None,
                 synthesis_kwargs: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keyword arguments that shape the network at inference, as plain JSON values."""
    if family not in FAMILIES:
        raise ValueError(f"unknown generator family '{family}' (expected one of {', '.join(FAMILIES)})")
    mapping = {k: _plain(v) for k, v in (mapping_kwargs or {}).items() if k in MAPPING_KWARGS}
    synthesis = {k: _plain(v) for k, v in (synthesis_kwargs or {}).items() if k in SYNTHESIS_KWARGS[family]}
    return mapping, synthesis


def _plain(v: Any) -> Any:
    """numpy scalars and tuples -> JSON-friendly Python values."""
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


class Generator(torch.nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict[str, Any] | None = None, synthesis_kwargs: dict[str, Any] | None = None,
                 family: str = "stylegan2") -> None:
        super().__init__()
        mapping_kwargs, synthesis_kwargs = clean_kwargs(family, mapping_kwargs, synthesis_kwargs)
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.family = family
        self.mapping_kwargs = mapping_kwargs
        self.synthesis_kwargs = synthesis_kwargs
        net = stylegan3 if family == "stylegan3" else stylegan2
        self.synthesis = net.SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                              img_channels=self.img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        if family == "stylegan3":
            mapping_kwargs = {"num_layers": 2, **mapping_kwargs}  # StyleGAN3's default mapping depth
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                      **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    # -- configuration
    def to_config(self) -> dict[str, Any]:
        """Everything `from_config` needs to build the same network (plain JSON values)."""
        return {"family": self.family, "z_dim": self.z_dim, "c_dim": self.c_dim, "w_dim": self.w_dim,
                "img_resolution": self.img_resolution, "img_channels": self.img_channels,
                "mapping_kwargs": copy.deepcopy(self.mapping_kwargs),
                "synthesis_kwargs": copy.deepcopy(self.synthesis_kwargs)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Generator":
        keys = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
        missing = [k for k in keys if k not in config]
        if missing:
            raise ValueError(f"generator config lacks {', '.join(missing)}")
        return cls(**{k: config[k] for k in keys}, mapping_kwargs=config.get("mapping_kwargs"),
                   synthesis_kwargs=config.get("synthesis_kwargs"), family=config.get("family", "stylegan2"))

    @property
    def description(self) -> str:
        arch = self.synthesis_kwargs.get("architecture", "skip") if self.family == "stylegan2" else (
            "R" if self.synthesis_kwargs.get("use_radial_filters") else "T")
        cond = f", {self.c_dim} classes" if self.c_dim else ""
        return f"{self.family} ({arch}) {self.img_resolution}x{self.img_resolution}{cond}"

    def extra_repr(self) -> str:
        return f"family={self.family}, z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
