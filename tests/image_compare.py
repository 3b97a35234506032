"""Comparing images that two DIFFERENT computations made (see tests/README.md, "Machine dependence").

Floating-point results change with the CPU kernels torch picks (ATEN_CPU_CAPABILITY, oneDNN, MKL), the batch
shape, the memory alignment of the weights and the order of reductions. Where both sides run the same
computation (same shapes, same call order, same code path) a test compares exactly (`np.array_equal`);
everywhere else it compares through `assert_images_close`, with a bound measured under every capability and
explained in a comment at the call.

Values are compared in 8-bit levels: 8-bit images (PIL or integer arrays) as they are, float images in [0, 1]
(diffusers' `output_type="np"`) times 255. The default bound, "at most 1 level on 99.9% of the values, mean
below 0.05 level, none beyond 8 levels", holds what rounding did to the tiny test models' 8-bit images under
ATEN_CPU_CAPABILITY default and AVX2 here and AVX-512 elsewhere (0 or 1 level on at most a few values, mean at
most 0.0003), and fails for every convention error tried: a wrong timestep spacing or Karras sigmas, swapped
width and height (the shapes differ), a wrong seed or variation seed, a missed negative prompt, a wrong VAE
scale, another sampler each moved 18% to 98% of the values, mean 2.6 to 47 levels.

Set AIGC_IMAGE_DIFF_LOG to a file path and every comparison appends one line with its numbers (to measure a
bound under each capability before choosing it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

LOG_ENV = "AIGC_IMAGE_DIFF_LOG"


def levels(image: Any) -> np.ndarray:
    """An image as float64 8-bit levels: PIL images and integer arrays as they are, floats in [0, 1] x 255."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64) * 255.0
    return array.astype(np.float64)


@dataclass(frozen=True)
class ImageDiff:
    """How far two images are apart, in 8-bit levels."""

    values: int  # compared values (pixels x channels)
    worst: float  # largest absolute difference
    mean: float  # mean absolute difference
    over: int  # values that differ by more than `level`
    level: float

    def describe(self) -> str:
        return (f"{self.over} of {self.values} values differ by more than {self.level:g} level(s) "
                f"({self.over / max(1, self.values):.3%}), mean {self.mean:.4f}, worst {self.worst:.4g} levels")


def image_diff(a: Any, b: Any, level: float = 1.0) -> ImageDiff:
    x, y = levels(a), levels(b)
    if x.shape != y.shape:
        raise AssertionError(f"images of different shapes: {x.shape} and {y.shape}")
    d = np.abs(x - y)
    return ImageDiff(values=d.size, worst=float(d.max(initial=0.0)), mean=float(d.mean()) if d.size else 0.0,
                     over=int((d > level).sum()), level=level)


def _pairs(a: Any, b: Any) -> list[tuple[Any, Any]]:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
        if len(a) != len(b):
            raise AssertionError(f"{len(a)} images against {len(b)}")
        return list(zip(a, b))
    return [(a, b)]


def _log(what: str, diff: ImageDiff) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "native")
    threads = os.environ.get("OMP_NUM_THREADS", "?")
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{cap}\tthreads={threads}\t{test}\t{what}\tworst={diff.worst:.6g}\tmean={diff.mean:.6g}"
                f"\tover={diff.over}/{diff.values}\n")


def images_close(a: Any, b: Any, *, level: float = 1.0, share: float = 0.999, mean: float = 0.05,
                 worst: float | None = 8.0, what: str = "images") -> tuple[bool, str]:
    """(within the bound?, the numbers) for two images or two equally long lists of images."""
    notes = []
    ok = True
    for i, (x, y) in enumerate(_pairs(a, b)):
        diff = image_diff(x, y, level)
        _log(f"{what}[{i}]", diff)
        allowed = int(np.floor((1.0 - share) * diff.values + 1e-9))
        fine = diff.over <= allowed and diff.mean < mean and (worst is None or diff.worst <= worst)
        ok = ok and fine
        notes.append(f"image {i}: {diff.describe()}" + ("" if fine else
                     f" -- allowed: at most {allowed} beyond {level:g}, mean < {mean:g}"
                     + (f", worst <= {worst:g}" if worst is not None else "")))
    return ok, "; ".join(notes)


def assert_images_close(a: Any, b: Any, *, level: float = 1.0, share: float = 0.999, mean: float = 0.05,
                        worst: float | None = 8.0, what: str = "images") -> None:
    """Fail unless every value is within `worst` levels, at least `share` of them within `level`, and the mean
    absolute difference is below `mean` (per image pair; lists are compared pairwise)."""
    ok, text = images_close(a, b, level=level, share=share, mean=mean, worst=worst, what=what)
    assert ok, f"{what} are not the same within rounding: {text}"


def assert_images_differ(a: Any, b: Any, what: str = "images", **bound: Any) -> None:
    """Fail if two images are the same within the bound (a check that a changed input changes the image)."""
    ok, text = images_close(a, b, what=what, **bound)
    assert not ok, f"{what} should differ but are the same within rounding: {text}"


def same_pixels(a: Any, b: Any) -> bool:
    """Exactly equal 8-bit images (for two runs of the same computation)."""
    return all(np.array_equal(levels(x), levels(y)) for x, y in _pairs(a, b))


__all__: Sequence[str] = ("ImageDiff", "assert_images_close", "assert_images_differ", "image_diff", "images_close",
                          "levels", "same_pixels")
