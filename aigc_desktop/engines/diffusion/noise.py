"""Seeds to noise: per-image CPU generators (the seed contract of core.params) and variation seeds.

A variation mixes the noise of the main seed with the noise of a variation seed by spherical linear
interpolation, as A1111 does with its "subseed": the interpolation runs per image over the (C, H, W) noise,
normalising along the height axis so that every (channel, column) vector is interpolated on its own arc.
"""

from __future__ import annotations

import torch


def generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image; diffusers' pipelines draw from a list like this image by image."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def draw(gens: list[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
    """Float32 noise of `shape` (C, H, W) for each generator, stacked; advances each generator once."""
    return torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in gens])


def slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of one image's noise (C, H, W) from `low` (t=0) to `high` (t=1)."""
    if t <= 0.0:
        return low
    if t >= 1.0:
        return high
    low32, high32 = low.float(), high.float()
    low_dir = low32 / low32.norm(dim=1, keepdim=True)
    high_dir = high32 / high32.norm(dim=1, keepdim=True)
    dot = (low_dir * high_dir).sum(dim=1)  # (C, W): cosine of the angle of each column pair
    if dot.mean() > 0.9995:  # nearly parallel: the arc is a line
        out = low32 * (1.0 - t) + high32 * t
    else:
        omega = torch.acos(dot.clamp(-1.0, 1.0))
        so = torch.sin(omega)
        arc = so.abs() > 1e-6  # a column whose two vectors are parallel takes the straight line
        so = torch.where(arc, so, torch.ones_like(so))
        w_low = torch.where(arc, torch.sin((1.0 - t) * omega) / so, torch.full_like(so, 1.0 - t))
        w_high = torch.where(arc, torch.sin(t * omega) / so, torch.full_like(so, t))
        out = w_low.unsqueeze(1) * low32 + w_high.unsqueeze(1) * high32
    return out.to(low.dtype)


class Variation:
    """The noise map of a variation: main noise -> slerp towards the variation seeds' noise, image by image.

    Called with every noise tensor a pipeline uses as its initial noise (the same tensor may come several
    times, e.g. the latent blend of inpainting); the variation noise is drawn once, from its own generators,
    so the main generators' draws stay exactly those of a run without a variation.
    """

    def __init__(self, seeds: list[int], strength: float) -> None:
        self.seeds = list(seeds)
        self.strength = float(strength)
        self._noise: torch.Tensor | None = None
        self._memo: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, noise: torch.Tensor) -> torch.Tensor:
        if self._memo is not None and self._memo[0] is noise:
            return self._memo[1]
        if self._noise is None or self._noise.shape[1:] != noise.shape[1:]:
            self._noise = draw(generators(self.seeds), tuple(noise.shape[1:]))
        if noise.shape[0] != len(self.seeds):
            raise ValueError(f"{noise.shape[0]} noise images for {len(self.seeds)} variation seeds")
        main = noise.detach().to("cpu", torch.float32)
        mixed = torch.stack([slerp(self.strength, main[i], self._noise[i]) for i in range(len(self.seeds))])
        out = mixed.to(noise.device, noise.dtype)
        self._memo = (noise, out)
        return out


def identity(noise: torch.Tensor) -> torch.Tensor:
    return noise
