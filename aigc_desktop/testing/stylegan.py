"""Tiny StyleGAN generators and checkpoint writers for tests and benchmarks.

`write_nvidia_pickle` mimics NVIDIA's `torch_utils.persistence`: every network is pickled as
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with `meta` holding the module source, the
class name and the object's state, exactly the structure of a real network pickle. The module source it
embeds writes a marker file when executed, so a test can prove that loading never runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from aigc_desktop.engines.stylegan.generator import Generator

# Small enough for tests (about 0.1 s per 32x32 image on one CPU thread), real enough to exercise every
# layer type: 4 blocks for StyleGAN2, 6 filtered layers + to-RGB for StyleGAN3.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "sg2-skip": {"family": "stylegan2", "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32,
                 "img_channels": 3, "mapping_kwargs": {"num_layers": 2},
                 "synthesis_kwargs": {"channel_base": 512, "channel_max": 64, "architecture": "skip",
                                      "conv_clamp": 256, "num_fp16_res": 2}},
    "sg2-resnet": {"family": "stylegan2", "z_dim": 32, "c_dim": 4, "w_dim": 32, "img_resolution": 16,
                   "img_channels": 3, "mapping_kwargs": {"num_layers": 2},
                   "synthesis_kwargs": {"channel_base": 512, "channel_max": 64, "architecture": "resnet",
                                        "conv_clamp": 256}},
    "sg3-t": {"family": "stylegan3", "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32,
              "img_channels": 3, "mapping_kwargs": {"num_layers": 2},
              "synthesis_kwargs": {"channel_base": 1024, "channel_max": 32, "num_layers": 6, "margin_size": 4,
                                   "conv_clamp": 256, "num_fp16_res": 4, "magnitude_ema_beta": 0.999}},
    "sg3-r": {"family": "stylegan3", "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32,
              "img_channels": 3, "mapping_kwargs": {"num_layers": 2},
              "synthesis_kwargs": {"channel_base": 2048, "channel_max": 64, "num_layers": 6, "margin_size": 4,
                                   "conv_clamp": 256, "conv_kernel": 1, "use_radial_filters": True}},
}


def make_generator(config: dict[str, Any] | str, seed: int = 0) -> Generator:
    """A generator with random weights that make varied, non-trivial images: the parameters a fresh
    network leaves at zero or one (noise strengths, biases, w_avg, magnitudes) get random values too."""
    if isinstance(config, str):
        config = TINY_CONFIGS[config]
    torch.manual_seed(seed)
    G = Generator.from_config(config).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 1)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.copy_(torch.rand([], generator=gen) * 0.3)
        elif name.endswith("bias") and ".affine." not in name:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    for name, b in G.named_buffers():
        if name.endswith("w_avg"):
            b.copy_(torch.randn(b.shape, generator=gen) * 0.5)
        elif name.endswith("magnitude_ema"):
            b.fill_(float(0.5 + torch.rand([], generator=gen)))
    return G


# ----------------------------------------------------------------------------------------- NVIDIA pickles

MODULE_SOURCE = '''"""Stand-in for the network module that NVIDIA embeds in every pickle: unpickling runs it."""
import pathlib
pathlib.Path({marker!r}).write_text("the embedded module source was executed")
'''


class _EasyDictBase(dict):
    pass


@contextlib.contextmanager
def fake_nvidia_modules(marker: str | os.PathLike) -> Iterator[types.ModuleType]:
    """Register stand-ins for `torch_utils.persistence` and `dnnlib.util` while a pickle is written (pickle
    looks globals up by module name). Their `_reconstruct_persistent_obj` runs the embedded source like
    NVIDIA's does, so `pickle.load` with these modules present proves the payload is live."""
    names = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
    saved = {n: sys.modules.get(n) for n in names}
    torch_utils = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")
    dnnlib = types.ModuleType("dnnlib")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):
        exec(compile(meta["module_src"], "<embedded module>", "exec"), {})  # noqa: S102 - the behaviour under test
        return meta

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easy = type("EasyDict", (_EasyDictBase,), {"__module__": "dnnlib.util", "__qualname__": "EasyDict"})
    util.EasyDict = easy
    torch_utils.persistence = persistence
    dnnlib.util = util
    dnnlib.EasyDict = easy
    sys.modules.update({"torch_utils": torch_utils, "torch_utils.persistence": persistence, "dnnlib": dnnlib,
                        "dnnlib.util": util})
    persistence.marker = str(marker)
    try:
        yield persistence
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class _Persistent:
    """Pickles as NVIDIA's persistent objects do."""

    def __init__(self, reconstruct, class_name: str, state: dict[str, Any], module_src: str) -> None:
        self.reconstruct = reconstruct
        self.meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name,
                     "state": state}

    def __reduce__(self):
        return self.reconstruct, (self.meta,)


_ATTR_TYPES = (bool, int, float, str, type(None))


def _module_state(module: torch.nn.Module, modname: str, reconstruct, src: str,
                  init_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The `__dict__` of an nn.Module as torch pickles it, children wrapped as persistent objects."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": OrderedDict((k, v) for k, v in module._buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(), "_forward_hooks": OrderedDict(), "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(), "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict((name, _wrap(child, modname, reconstruct, src, None))
                                for name, child in module._modules.items()),
        "_init_args": (), "_init_kwargs": dict(init_kwargs or {}),
    }
    for k, v in module.__dict__.items():
        if not k.startswith("_") and isinstance(v, _ATTR_TYPES):
            state[k] = v
    spec = getattr(module, "spec", None)
    if spec is not None:  # StyleGAN3 layers keep numpy arrays and numpy floats as attributes
        state["in_size"] = np.broadcast_to(np.asarray(spec.in_size), [2])
        state["out_size"] = np.broadcast_to(np.asarray(spec.out_size), [2])
        state["in_cutoff"] = np.float64(spec.in_cutoff)
        state["out_half_width"] = np.float64(spec.out_half_width)
    return state


def _wrap(module: torch.nn.Module, modname: str, reconstruct, src: str,
          init_kwargs: dict[str, Any] | None) -> _Persistent:
    return _Persistent(reconstruct, f"{modname}.{type(module).__name__}",
                       _module_state(module, modname, reconstruct, src, init_kwargs), src)


def nvidia_init_kwargs(G: Generator, easy: type, flat: bool) -> dict[str, Any]:
    """What NVIDIA's training script passes to Generator(): StyleGAN2-ADA nests synthesis_kwargs (as an
    EasyDict); the StyleGAN3 repository passes them as flat keywords."""
    cfg = G.to_config()
    kwargs: dict[str, Any] = {"z_dim": cfg["z_dim"], "w_dim": cfg["w_dim"],
                              "mapping_kwargs": easy(cfg["mapping_kwargs"]), "c_dim": cfg["c_dim"],
                              "img_resolution": cfg["img_resolution"], "img_channels": cfg["img_channels"]}
    if flat:
        kwargs.update(cfg["synthesis_kwargs"])
    else:
        kwargs["synthesis_kwargs"] = easy(cfg["synthesis_kwargs"])
    return kwargs


def write_nvidia_pickle(G: Generator, path: str | os.PathLike, marker: str | os.PathLike,
                        flat_kwargs: bool | None = None) -> Path:
    """Write G in NVIDIA's network-pickle layout: {G, D, G_ema, augment_pipe, training_set_kwargs}.
    `marker` is the file the embedded module source creates if anything ever executes it."""
    path = Path(path)
    flat = (G.family == "stylegan3") if flat_kwargs is None else flat_kwargs
    modname = "training.networks_stylegan3" if G.family == "stylegan3" else "training.networks"
    src = MODULE_SOURCE.format(marker=str(marker))
    with fake_nvidia_modules(marker) as persistence:
        reconstruct = persistence._reconstruct_persistent_obj
        easy = sys.modules["dnnlib.util"].EasyDict
        g = _wrap(G, modname, reconstruct, src, nvidia_init_kwargs(G, easy, flat))
        disc = torch.nn.Module()
        disc.register_parameter("weight", torch.nn.Parameter(torch.randn(4, 3, 1, 1)))
        d = _wrap(disc, modname, reconstruct, src, {"c_dim": G.c_dim, "img_resolution": G.img_resolution})
        data = {"G": g, "D": d, "G_ema": g, "augment_pipe": None,
                "training_set_kwargs": easy(class_name="training.dataset.ImageFolderDataset", path="~/data.zip",
                                            use_labels=G.c_dim > 0, max_size=1000, xflip=False,
                                            resolution=G.img_resolution)}
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=3)  # the protocol of Python 3.7, NVIDIA's release environment
    return path


class _Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_malicious_pickle(path: str | os.PathLike, marker: str | os.PathLike) -> Path:
    """A pickle whose loading runs os.system (creating `marker`) — what a restricted unpickler must refuse."""
    path = Path(path)
    with open(path, "wb") as fh:
        pickle.dump({"G_ema": _Payload(f"touch {marker}")}, fh, protocol=3)
    return path


# ----------------------------------------------------------------------------------------- rosinality


def to_rosinality(G: Generator) -> dict[str, torch.Tensor]:
    """Our StyleGAN2 (skip) generator as a rosinality/stylegan2-pytorch `g_ema` state dict."""
    if G.family != "stylegan2" or G.synthesis_kwargs.get("architecture", "skip") != "skip" or G.c_dim:
        raise ValueError("rosinality's generator is an unconditional StyleGAN2 with the skip architecture")
    sd = G.state_dict()
    out: dict[str, torch.Tensor] = {}
    for i in range(G.mapping.num_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    kernel = sd["synthesis.b4.resample_filter"] * 4  # rosinality stores its blur kernels scaled by factor**2

    def conv(dst: str, src: str, noise_index: int, up: bool) -> None:
        w = sd[f"{src}.weight"]
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        out[f"{dst}.conv.weight"] = (w * math.sqrt(fan_in)).unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        out[f"noises.noise_{noise_index}"] = sd[f"{src}.noise_const"][None, None]
        if up:
            out[f"{dst}.conv.blur.kernel"] = kernel

    def torgb(dst: str, src: str, up: bool) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)
        if up:
            out[f"{dst}.upsample.kernel"] = kernel

    out["input.input"] = sd["synthesis.b4.const"].unsqueeze(0)
    conv("conv1", "synthesis.b4.conv1", 0, False)
    torgb("to_rgb1", "synthesis.b4.torgb", False)
    for k, res in enumerate(G.synthesis.block_resolutions[1:]):
        conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1, True)
        conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2, False)
        torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb", True)
    return {k: v.clone().contiguous() for k, v in out.items()}


def write_rosinality(G: Generator, path: str | os.PathLike, with_latent_avg: bool = True) -> Path:
    path = Path(path)
    args = argparse.Namespace(size=G.img_resolution, latent=G.w_dim, n_mlp=G.mapping.num_layers,
                              channel_multiplier=2, iter=800000)
    data: dict[str, Any] = {"g_ema": to_rosinality(G), "args": args}
    if with_latent_avg:
        data["latent_avg"] = G.mapping.w_avg.clone()
    torch.save(data, path)
    return path
