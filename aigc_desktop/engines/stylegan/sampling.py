"""From seeds to images, as NVIDIA's generate.py and visualizer do it.

- z for a seed is `np.random.RandomState(seed).randn(1, z_dim)`, so seeds people share reproduce.
- A conditional model without a class takes one from the same RandomState after z (the visualizer's
  rule); with a class it is one-hot.
- Truncation pulls w towards w_avg by psi, on the first `cutoff` layers when a cutoff is given.
- Style mixing replaces a range of layers' w by those of a second seed (coarse / middle / fine or A-B).
- 8-bit output is (x * 127.5 + 128).clamp(0, 255).
- Travels interpolate keyframe seeds: lerp in W (after mapping) or slerp in Z (before mapping, then
  mapping and truncation per frame), on the frame plan of core/interpolate.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np
import torch

from aigc_desktop.core import interpolate
from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.interpolate import lerp, slerp  # noqa: F401 - the one implementation, re-exported
from aigc_desktop.engines.stylegan.generator import Generator

MIX_PRESETS = ("coarse", "middle", "fine")
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


# ----------------------------------------------------------------------------------------- travel
# One interpolation core (core/interpolate.py): its lerp / slerp are re-exported here, not copied.


@torch.no_grad()
def ws_from_z(G: Generator, z: torch.Tensor, latent: Latent, device: torch.device | str = "cpu",
              mixed: torch.Tensor | None = None) -> torch.Tensor:
    """z [1, z_dim] -> ws, mapped and truncated as `latent` says, with its mixing layers from `mixed`."""
    c = class_vector(G, latent.class_idx, latent.seed)
    ws = G.mapping(z.to(device=device, dtype=torch.float32), None if c is None else c.to(device),
                   truncation_psi=latent.truncation_psi, truncation_cutoff=latent.truncation_cutoff)
    layers = mix_layer_indices(latent.mix_layers, G) if latent.mix_seed is not None else []
    if layers and mixed is not None:
        ws = ws.clone()
        ws[:, layers] = mixed[:, layers]
    return ws


class TravelLatents:
    """StyleGAN keyframes for a travel: lerp in W (after mapping, truncation per keyframe) or slerp in Z
    (before mapping; truncation applied to every frame, psi eased between the keyframes')."""

    def __init__(self, G: Generator, keys: Sequence[Latent], space: str = "w",
                 device: torch.device | str = "cpu") -> None:
        if space not in SPACES:
            raise InvalidParameter(f"Interpolation space must be one of {', '.join(SPACES)}")
        if len(keys) < 2:
            raise InvalidParameter("A walk needs at least two keyframe seeds")
        self.G, self.keys, self.space, self.device = G, list(keys), space, device
        self._ws: dict[int, torch.Tensor] = {}
        self._z: dict[int, torch.Tensor] = {}
        self._mixed: dict[int, torch.Tensor] = {}

    def key_ws(self, i: int) -> torch.Tensor:
        if i not in self._ws:
            self._ws[i] = latent_ws(self.G, self.keys[i], self.device)
        return self._ws[i]

    def key_z(self, i: int) -> torch.Tensor:
        if i not in self._z:
            self._z[i] = torch.from_numpy(z_from_seed(self.keys[i].seed, self.G.z_dim)).to(self.device,
                                                                                        torch.float32)
        return self._z[i]

    def _mix(self, i: int) -> torch.Tensor | None:
        k = self.keys[i]
        if k.mix_seed is None or not k.mix_layers:
            return None
        if i not in self._mixed:
            self._mixed[i] = map_seed(self.G, k.mix_seed, k.truncation_psi, k.truncation_cutoff, k.class_idx,
                                      self.device)
        return self._mixed[i]

    @torch.no_grad()
    def ws(self, a: int, b: int, t: float) -> torch.Tensor:
        """ws of the frame at eased position t from keyframe a to b; t = 0 / 1 give the keyframes' own ws."""
        if t <= 0.0 or t >= 1.0:
            return self.key_ws(a if t <= 0.0 else b)
        if self.space == "w":
            return interpolate.lerp(self.key_ws(a), self.key_ws(b), t)
        ka, kb = self.keys[a], self.keys[b]
        psi = float(interpolate.lerp(ka.truncation_psi, kb.truncation_psi, t))
        z = interpolate.slerp(self.key_z(a), self.key_z(b), t)
        return ws_from_z(self.G, z, replace(ka, truncation_psi=psi), self.device, self._mix(a))


@torch.no_grad()
def walk_ws(G: Generator, keys: Sequence[Latent], frames_per_transition: int, space: str = "w",
            loop: bool = False, easing: str = "linear", device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """ws for every frame of a walk with one frame count and easing for every segment (core.interpolate's
    frame plan), lerp in W or slerp in Z."""
    latents = TravelLatents(G, keys, space, device)
    timeline = interpolate.Timeline.uniform([interpolate.Keyframe(seed=k.seed) for k in keys],
                                            frames=int(frames_per_transition), easing=easing, loop=loop)
    for frame in interpolate.plan(timeline):
        yield latents.ws(frame.a, frame.b, frame.t)
