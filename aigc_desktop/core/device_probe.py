"""Which compute devices this machine has, told cheaply and without importing torch (the window's process
never imports it; the engine process is the one that knows for sure).

    present_devices()        # e.g. ["cuda", "cpu"]
    device_problem("cuda")   # "" when fine, else one line saying why it cannot be used

CUDA needs two things: a GPU driver (Linux: /proc/driver/nvidia or /dev/nvidia*, ROCm: /dev/kfd; Windows:
nvcuda.dll) and a torch build for it (its version.py names a CUDA or HIP version; the CPU wheel says None).
MPS needs an Apple Silicon Mac. When torch is not installed at all, only the driver is checked.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import re
import sys
from functools import lru_cache
from pathlib import Path

_BUILD = re.compile(r"^(cuda|hip)\s*(?::[^=\n]*)?=\s*(None|'[^']*'|\"[^\"]*\")", re.MULTILINE)


def _gpu_driver() -> bool:
    if sys.platform.startswith("linux"):
        return (os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))
                or os.path.exists("/dev/kfd"))
    if sys.platform == "win32":
        root = os.environ.get("SystemRoot", r"C:\Windows")
        return os.path.exists(os.path.join(root, "System32", "nvcuda.dll"))
    return False


def torch_gpu_build() -> bool | None:
    """True: the installed torch is a CUDA / ROCm build; False: a CPU-only one; None: cannot tell (no torch,
    or an unreadable version file). Reads torch/version.py as text; torch is not imported."""
    try:
        spec = importlib.util.find_spec("torch")  # a top-level package: located, not imported
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return None
    found = dict(_BUILD.findall(text))
    if not found:
        return None
    return any(value != "None" for value in found.values())


@lru_cache(maxsize=1)
def present_devices() -> tuple[str, ...]:
    out = []
    if _gpu_driver() and torch_gpu_build() is not False:
        out.append("cuda")
    if sys.platform == "darwin" and platform.machine() == "arm64":
        out.append("mps")
    out.append("cpu")
    return tuple(out)


def expected_kind(preference: str) -> str:
    """The device kind the engine will pick for a setting ("auto": the best one present)."""
    pref = (preference or "auto").lower().split(":")[0]
    return present_devices()[0] if pref == "auto" else pref


def device_problem(preference: str) -> str:
    """One line when the chosen device is not on this machine, else ""."""
    pref = (preference or "auto").lower().split(":")[0]
    if pref in ("auto", "cpu") or pref in present_devices():
        return ""
    if pref == "cuda":
        if not _gpu_driver():
            return "No CUDA GPU found on this machine (no NVIDIA or ROCm driver); jobs would fail. Choose auto or cpu"
        return ("The installed PyTorch is a CPU-only build: CUDA cannot be used. Install the CUDA build of "
                "PyTorch (see the README), or choose auto or cpu")
    if pref == "mps":
        return "Apple MPS needs an Apple Silicon Mac; this machine has none. Choose auto or cpu"
    return f"Unknown device '{preference}'"
