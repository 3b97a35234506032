"""From seeds to images, as NVIDIA's generate.py and visualizer do it.

- z for a seed is `np.random.RandomState(seed).randn(1, z_dim)`, so seeds people share reproduce.
- A conditional model without a class takes one from the same RandomState after z (the visualizer's
  rule); with a class it is one-hot.
- Truncation pulls w towards w_avg by psi, on the first `cutoff` layers when a cutoff is given.
- Style mixing replaces a range of layers' w by those of a second seed (coarse / middle / fine or A-B).
- 8-bit output is (x * 127.5 + 128).clamp(0, 255).
- Walks interpolate keyframe seeds: lerp in W (after mapping) or slerp in Z (before mapping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.engines.stylegan.generator import Generator
from aigc_desktop.engines.stylegan.mapping import truncate

MIX_PRESETS = ("coarse", "middle", "fine")
EASINGS = ("linear", "smooth")
SPACES = ("w", "z")


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """[1, z_dim] float64, exactly NVIDIA's draw."""
    return np.random.RandomState(int(seed)).randn(1, z_dim)


def seed_class(seed: int, z_dim: int, c_dim: int) -> int:
    """The class the visualizer gives a seed when none is chosen: the next draw after z."""
    rnd = np.random.RandomState(int(seed))
    rnd.randn(z_dim)
    return int(rnd.randint(c_dim))


def class_vector(G: Generator, class_idx: int | None, seed: int) -> torch.Tensor | None:
    """One-hot [1, c_dim] (None for unconditional models)."""
    if G.c_dim == 0:
        return None
    if class_idx is None:
        class_idx = seed_class(seed, G.z_dim, G.c_dim)
    if not 0 <= int(class_idx) < G.c_dim:
        raise InvalidParameter(f"Class {class_idx} is out of range: this model has classes 0-{G.c_dim - 1}")
    c = torch.zeros([1, G.c_dim])
    c[0, int(class_idx)] = 1
    return c


def mix_layer_indices(spec: str | Sequence[int] | None, G: Generator) -> list[int]:
    """Layer indices (into ws) that a mixing spec names: coarse | middle | fine | all | A-B | A | [i, ...]."""
    n = G.num_ws
    if spec is None or spec == "" or spec == "none":
        return []
    if not isinstance(spec, str):
        idx = sorted({int(i) for i in spec})
    else:
        text = spec.strip().lower()
        if text == "all":
            return list(range(n))
        if text in MIX_PRESETS:
            return list(range(*preset_range(text, G)))
        try:
            a, _, b = text.partition("-")
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            raise InvalidParameter(f"Mixing layers must be coarse, middle, fine, all or A-B, got '{spec}'") from None
        if lo > hi:
            lo, hi = hi, lo
        idx = list(range(lo, hi + 1))
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InvalidParameter(f"Mixing layer {bad[0]} is out of range: this model has layers 0-{n - 1}")
    return idx


def preset_range(name: str, G: Generator) -> tuple[int, int]:
    """[start, stop) of a preset. StyleGAN2 uses the paper's resolutions: coarse 4-8 px (w 0-3), middle
    16-32 px (w 4-7), fine 64 px and up (w 8-); models too small for that, and StyleGAN3 (whose layers
    have no single resolution), split their layers in the same 4 : 4 : 10 proportion as a 1024 px model."""
    n = G.num_ws
    if G.family == "stylegan2" and n >= 10:
        bounds = (0, 4, 8, n)
    else:
        a = max(1, round(n * 4 / 18))
        b = max(a + 1, round(n * 8 / 18))
        bounds = (0, a, b, n)
    i = MIX_PRESETS.index(name)
    return bounds[i], bounds[i + 1]


@dataclass(frozen=True)
class Latent:
    """What decides one image besides the model: seed, truncation, class, mixing."""

    seed: int
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None
    mix_seed: int | None = None
    mix_layers: str | None = None


@torch.no_grad()
def map_seed(G: Generator, seed: int, psi: float, cutoff: int | None, class_idx: int | None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    z = torch.from_numpy(z_from_seed(seed, G.z_dim)).to(device=device, dtype=torch.float32)
    c = class_vector(G, class_idx, seed)
    return G.mapping(z, None if c is None else c.to(device), truncation_psi=psi, truncation_cutoff=cutoff)


@torch.no_grad()
def latent_ws(G: Generator, latent: Latent, device: torch.device | str = "cpu") -> torch.Tensor:
    """ws [1, num_ws, w_dim] for a latent: mapped, truncated, with the mixing layers from mix_seed."""
    if latent.truncation_cutoff is not None and not 0 <= latent.truncation_cutoff <= G.num_ws:
        raise InvalidParameter(f"Truncation cutoff must be 0-{G.num_ws} for this model")
    ws = map_seed(G, latent.seed, latent.truncation_psi, latent.truncation_cutoff, latent.class_idx, device)
    layers = mix_layer_indices(latent.mix_layers, G) if latent.mix_seed is not None else []
    if layers:
        other = map_seed(G, latent.mix_seed, latent.truncation_psi, latent.truncation_cutoff, latent.class_idx,
                         device)
        ws = ws.clone()
        ws[:, layers] = other[:, layers]
    return ws


@torch.no_grad()
def synthesize(G: Generator, ws: torch.Tensor, noise_mode: str = "const", noise_seed: int | None = None,
               transform: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
    """ws -> float image [N, C, H, W]. Random noise is drawn from `noise_seed` (on the CPU), so even
    noise_mode='random' regenerates the same image when the seed is recorded."""
    gen = torch.Generator().manual_seed(int(noise_seed)) if noise_mode == "random" and noise_seed is not None else None
    kwargs: dict = {"force_fp32": force_fp32}
    if G.family == "stylegan2":
        kwargs.update(noise_mode=noise_mode, generator=gen)
    elif transform is not None:
        kwargs["transform"] = transform
    return G.synthesis(ws, **kwargs)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float -> [N, H, W, C] uint8 with NVIDIA's rounding: (x * 127.5 + 128).clamp(0, 255)."""
    x = (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(img: torch.Tensor) -> list:
    """[N, C, H, W] float -> PIL images (L for 1 channel, RGB for 3, RGBA for 4)."""
    from PIL import Image

    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    out = []
    for a in to_uint8(img):
        channels = a.shape[2]
        if channels not in modes:  # unusual channel counts: show the first one or three
            channels = 3 if channels > 3 else 1
            a = a[:, :, :channels]
        out.append(Image.fromarray(a[:, :, 0] if channels == 1 else np.ascontiguousarray(a), modes[channels]))
    return out


# ----------------------------------------------------------------------------------------- walks


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between two vectors (rows), keeping Gaussian samples typical in norm."""
    an = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    bn = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    dot = (an * bn).sum(dim=-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    if float(so.abs().min()) < eps:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def ease(t: float, easing: str) -> float:
    if easing == "smooth":
        return 0.5 - 0.5 * math.cos(math.pi * t)
    return t


def walk_positions(n_keys: int, frames_per_transition: int, loop: bool) -> list[tuple[int, int, float]]:
    """(from key, to key, t) for every frame. Without loop the last keyframe ends the walk."""
    if n_keys < 2:
        raise InvalidParameter("A walk needs at least two keyframe seeds")
    if frames_per_transition < 1:
        raise InvalidParameter("Frames per transition must be at least 1")
    transitions = n_keys if loop else n_keys - 1
    out = [(k, (k + 1) % n_keys, f / frames_per_transition)
           for k in range(transitions) for f in range(frames_per_transition)]
    if not loop:
        out.append((n_keys - 2, n_keys - 1, 1.0))
    return out


@torch.no_grad()
def walk_ws(G: Generator, keys: Sequence[Latent], frames_per_transition: int, space: str = "w",
            loop: bool = False, easing: str = "linear", device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """ws for every frame of a walk through keyframe latents: lerp in W, or slerp in Z (then map)."""
    if space not in SPACES:
        raise InvalidParameter(f"Interpolation space must be one of {', '.join(SPACES)}")
    if easing not in EASINGS:
        raise InvalidParameter(f"Easing must be one of {', '.join(EASINGS)}")
    positions = walk_positions(len(keys), frames_per_transition, loop)
    if space == "w":
        key_ws = [latent_ws(G, k, device) for k in keys]
        for a, b, t in positions:
            yield lerp(key_ws[a], key_ws[b], ease(t, easing))
        return
    zs = [torch.from_numpy(z_from_seed(k.seed, G.z_dim)).to(device=device, dtype=torch.float32) for k in keys]
    first = keys[0]
    layers = mix_layer_indices(first.mix_layers, G) if first.mix_seed is not None else []
    mixed = map_seed(G, first.mix_seed, first.truncation_psi, first.truncation_cutoff, first.class_idx,
                     device) if layers else None
    for a, b, t in positions:
        z = slerp(zs[a], zs[b], ease(t, easing))
        c = class_vector(G, keys[a].class_idx, keys[a].seed)
        ws = G.mapping(z, None if c is None else c.to(device))
        if first.truncation_psi != 1:
            ws = truncate(ws, G.mapping.w_avg, first.truncation_psi, first.truncation_cutoff)
        if mixed is not None:
            ws[:, layers] = mixed[:, layers]
        yield ws
