"""Brush strokes in numpy (no Qt): dabs along the pointer path into a working copy of one layer.

A stroke keeps the layer's pixels from its start and a coverage buffer (the max of every dab's alpha), so
opacity caps the stroke instead of building up where dabs overlap (as in Krita / Photoshop). Each dab
touches only its own rectangle: the canvas redraws that rectangle, and the stroke's dirty rectangle (the
union) is what the undo command stores when the stroke ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

Rect = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class BrushSettings:
    size: float = 48.0  # diameter in document pixels
    hardness: float = 0.7  # 0 = soft edge over the whole radius, 1 = hard edge
    opacity: float = 1.0
    color: tuple[int, int, int] = (255, 255, 255)
    erase: bool = False

    def spacing(self) -> float:
        return max(1.0, self.size * 0.12)


def dab_alpha(size: float, hardness: float, cx: float, cy: float) -> tuple[np.ndarray, int, int]:
    """The coverage (float32 0..1) of a round dab centred at (cx, cy); returns (alpha, x0, y0)."""
    r = max(0.5, size / 2.0)
    x0, y0 = int(math.floor(cx - r)), int(math.floor(cy - r))
    x1, y1 = int(math.ceil(cx + r)) + 1, int(math.ceil(cy + r)) + 1
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
    d = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2) / r
    hard = min(0.999, max(0.0, hardness))
    a = np.clip((1.0 - d) / (1.0 - hard), 0.0, 1.0)
    a = a * a * (3.0 - 2.0 * a)  # smoothstep edge
    return a.astype(np.float32), x0, y0


class Stroke:
    """One stroke on a layer's pixels. `pixels` is (h, w, 4) RGBA or (h, w) L, uint8, in the layer's own
    coordinates with its top-left at document (ox, oy); the stroke paints into its own copy (`.pixels`)."""

    def __init__(self, pixels: np.ndarray, ox: int, oy: int, brush: BrushSettings) -> None:
        self.original = pixels  # the layer's pixels at the start (not written to)
        self.pixels = pixels.copy()
        self.ox, self.oy = ox, oy
        self.brush = brush
        self.coverage = np.zeros(pixels.shape[:2], dtype=np.float32)
        self.dirty: Rect | None = None
        self._last: tuple[float, float] | None = None
        self._residual = 0.0

    def to(self, x: float, y: float) -> list[Rect]:
        """Move the pointer to document (x, y): dabs every `spacing` pixels; returns the rects they touched."""
        if self._last is None:
            self._last = (x, y)
            return [r for r in [self.dab(x, y)] if r]
        lx, ly = self._last
        dist = math.hypot(x - lx, y - ly)
        spacing = self.brush.spacing()
        rects: list[Rect] = []
        t = spacing - self._residual
        while t <= dist:
            f = t / dist
            r = self.dab(lx + (x - lx) * f, ly + (y - ly) * f)
            if r:
                rects.append(r)
            t += spacing
        self._residual = dist - (t - spacing)
        self._last = (x, y)
        return rects

    def dab(self, x: float, y: float) -> Rect | None:
        b = self.brush
        alpha, dx0, dy0 = dab_alpha(b.size, b.hardness, x - self.ox, y - self.oy)
        h, w = self.coverage.shape
        x0, y0 = max(0, dx0), max(0, dy0)
        x1, y1 = min(w, dx0 + alpha.shape[1]), min(h, dy0 + alpha.shape[0])
        if x1 <= x0 or y1 <= y0:
            return None
        a = alpha[y0 - dy0:y1 - dy0, x0 - dx0:x1 - dx0]
        cov = self.coverage[y0:y1, x0:x1]
        np.maximum(cov, a, out=cov)
        self._apply(x0, y0, x1, y1)
        rect = (x0 + self.ox, y0 + self.oy, x1 - x0, y1 - y0)
        self.dirty = rect if self.dirty is None else _union(self.dirty, rect)
        return rect

    def _apply(self, x0: int, y0: int, x1: int, y1: int) -> None:
        b = self.brush
        a = self.coverage[y0:y1, x0:x1] * float(b.opacity)
        orig = self.original[y0:y1, x0:x1].astype(np.float32)
        if self.pixels.ndim == 2:  # mask: paint towards 255, erase towards 0
            out = orig * (1.0 - a) if b.erase else orig + (255.0 - orig) * a
        elif b.erase:
            out = orig.copy()
            out[..., 3] = orig[..., 3] * (1.0 - a)
        else:  # colour "over" the original, straight (not premultiplied) alpha
            src_a = a
            dst_a = orig[..., 3] / 255.0
            out_a = src_a + dst_a * (1.0 - src_a)
            safe = np.where(out_a > 0, out_a, 1.0)
            color = np.asarray(b.color, dtype=np.float32)
            rgb = (color[None, None, :] * src_a[..., None] + orig[..., :3] * (dst_a * (1.0 - src_a))[..., None]) \
                / safe[..., None]
            out = np.concatenate([rgb, (out_a * 255.0)[..., None]], axis=-1)
        self.pixels[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def patch(self) -> tuple[int, int, Image.Image] | None:
        """The changed rectangle as (x, y, PIL image in the layer's mode), for the undo command."""
        if self.dirty is None:
            return None
        x, y, w, h = self.dirty
        lx, ly = x - self.ox, y - self.oy
        part = np.ascontiguousarray(self.pixels[ly:ly + h, lx:lx + w])
        return x, y, Image.fromarray(part, "L" if part.ndim == 2 else "RGBA")


def _union(a: Rect, b: Rect) -> Rect:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0
