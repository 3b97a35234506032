"""Device, dtype and thread choices: cuda > mps > cpu; fp16 on CUDA (bf16 by choice), fp32 on CPU."""

from __future__ import annotations

import os

import torch

from aigc_desktop.core.errors import UserError

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32,
           "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def available_devices() -> list[str]:
    out = []
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    out.append("cpu")
    return out


def resolve_device(preference: str = "auto") -> torch.device:
    pref = (preference or "auto").lower()
    devices = available_devices()
    if pref == "auto":
        return torch.device(devices[0])
    base = pref.split(":")[0]
    if base not in ("cuda", "mps", "cpu"):
        raise UserError(f"Unknown device '{preference}'; choose auto, cuda, mps or cpu")
    if base not in devices:
        raise UserError(f"Device '{preference}' is not available on this machine (available: {', '.join(devices)})")
    return torch.device(pref)


def resolve_dtype(device: torch.device, preference: str = "auto") -> torch.dtype:
    pref = (preference or "auto").lower()
    if pref == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    if pref not in _DTYPES:
        raise UserError(f"Unknown dtype '{preference}'; choose auto, fp16, bf16 or fp32")
    dtype = _DTYPES[pref]
    if device.type == "cpu" and dtype == torch.float16:
        raise UserError("fp16 is not supported on the CPU; use fp32 or bf16")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}.get(dtype, str(dtype))


def default_threads(requested: int = 0) -> int:
    """Torch CPU threads: with 4 cores or fewer, leave one core to the UI."""
    if requested and requested > 0:
        return requested
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if cores <= 4 else cores


def configure_threads(requested: int = 0) -> int:
    n = default_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory on the device, or None when unknown (CPU, MPS)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def empty_cache(device: torch.device | None = None) -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if getattr(torch, "mps", None) is not None and getattr(torch.backends, "mps", None) is not None \
            and torch.backends.mps.is_available():
        torch.mps.empty_cache()
