"""Non-finite values at VAE decode: retry once in float32, else fail; never a black image as a success.

A checkpoint with NaN/Inf weights, or a VAE that overflows in float16 (SDXL's original VAE is the classic),
decodes to NaN, which the image processor turns into black pixels without a word. While a pipeline runs,
`finite_decode` wraps its VAE's `decode`: a non-finite result from finite latents is decoded again with
the VAE in float32 (A1111's `--no-half-vae` fallback; the VAE is remembered as needing it), and if that
fails too, or the latents themselves were not finite (the UNet's doing), the job fails with one line.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

import torch

from aigc_desktop.core.errors import UserError

log = logging.getLogger(__name__)

FP32_FLAG = "_aigc_decode_in_fp32"  # set on a VAE that decoded NaN in half precision and fine in float32


class InvalidValues(UserError):
    """The model produced NaN or infinite values: no image is saved."""


def _sample(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out.sample


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def invalid_values(where: str, half: bool) -> InvalidValues:
    hint = ("try --dtype fp32 (Settings > Precision), another VAE, or another copy of the model" if half
            else "its weights are broken: use another copy of the model, or another VAE")
    return InvalidValues(f"The model produced invalid values (NaN) {where}; no image was saved: {hint}")


def _decode_fp32(vae: torch.nn.Module, decode: Callable[..., Any], z: torch.Tensor, args: tuple,
                 kwargs: dict) -> Any:
    dtype = vae.dtype
    vae.to(torch.float32)
    try:
        return decode(z.to(torch.float32), *args, **kwargs)
    finally:
        vae.to(dtype)


@contextlib.contextmanager
def finite_decode(vae: torch.nn.Module, on_retry: Callable[[], None] | None = None) -> Iterator[None]:
    """While the block runs, `vae.decode` checks its result for NaN/Inf (see the module docstring)."""
    decode = vae.decode  # the bound method, with diffusers' / accelerate's hooks

    def checked_decode(z: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        half = vae.dtype != torch.float32
        if half and getattr(vae, FP32_FLAG, False):
            return _decode_fp32(vae, decode, z, args, kwargs)
        out = decode(z, *args, **kwargs)
        if _finite(_sample(out)):
            return out
        if not _finite(z):
            raise invalid_values("in its latents, before the VAE", half)
        if not half:
            raise invalid_values("in the VAE decode", half)
        log.warning("VAE decode gave NaN/Inf in %s; decoding again in float32", vae.dtype)
        if on_retry is not None:
            on_retry()
        out32 = _decode_fp32(vae, decode, z, args, kwargs)
        if not _finite(_sample(out32)):
            raise invalid_values("in the VAE decode, in half precision and in float32", False)
        setattr(vae, FP32_FLAG, True)  # the next decodes go to float32 at once
        return out32  # float32 pixels: the image processor takes any float dtype

    vae.decode = checked_decode
    try:
        yield
    finally:
        if vae.__dict__.get("decode") is checked_decode:
            del vae.decode
