"""Memory savings chosen per job: VAE tiling, attention slicing, CPU offload.

The free accelerator memory (engines.device.free_memory_bytes) is compared with an estimate of what the
job needs; the first level of savings whose estimate fits is used:

    0 plain       everything on the device
    1 vae         VAE tiling + VAE slicing (the full-resolution decode is the largest single peak)
    2 attention   + attention slicing (torch 2's SDPA already saves most attention memory, so this comes late)
    3 offload     + model CPU offload (one component on the device at a time)
    4 sequential  + sequential CPU offload (layer by layer; slowest, smallest)

The estimates are coarse by design (constants measured on SD 1.5 / SDXL class models with a margin); after
an out-of-memory failure in "auto" mode the model is pushed one level further for the next job. On a
device whose free memory is unknown (CPU, MPS) nothing is switched on automatically.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from aigc_desktop.engines import device as devices
from aigc_desktop.engines.cache import module_bytes

log = logging.getLogger(__name__)

LEVELS = ("plain", "vae", "attention", "offload", "sequential")
POLICIES = ("auto", "never", "always")

# Working memory per latent token and UNet sample, in units of the element size (fp16: x2 bytes).
UNET_WORK_PER_TOKEN = 25_000
# VAE decode working memory per output pixel and image, in element-size units.
VAE_WORK_PER_PIXEL = 300
VAE_TILE_PIXELS = 512 * 512
ATTENTION_SLICING_FACTOR = 0.6
RESERVE_BYTES = 512 << 20  # CUDA context, allocator fragmentation
MARGIN = 1.2


@dataclass(frozen=True)
class Workload:
    width: int
    height: int
    images: int  # images denoised at once (batch size)
    cfg: bool  # classifier-free guidance doubles the UNet batch
    element_size: int  # bytes per element of the model dtype


@dataclass(frozen=True)
class MemoryPlan:
    level: str = "plain"
    reason: str = ""

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)

    @property
    def vae_tiling(self) -> bool:
        return self.rank >= 1

    @property
    def attention_slicing(self) -> bool:
        return self.rank >= 2

    @property
    def offload(self) -> str | None:
        return {3: "model", 4: "sequential"}.get(self.rank)


def work_bytes(job: Workload, rank: int) -> int:
    """Estimated working memory (activations) of one pipeline call at a level of savings."""
    tokens = (job.width // 8) * (job.height // 8)
    samples = job.images * (2 if job.cfg else 1)
    unet = UNET_WORK_PER_TOKEN * tokens * samples * job.element_size
    if rank >= 2:
        unet = int(unet * ATTENTION_SLICING_FACTOR)
    pixels = min(job.width * job.height, VAE_TILE_PIXELS) if rank >= 1 else job.width * job.height * job.images
    vae = VAE_WORK_PER_PIXEL * pixels * job.element_size
    return unet + vae


def need_bytes(rank: int, model_bytes: int, largest_bytes: int, job: Workload) -> int:
    """Device memory a job is estimated to need at a level: the weights resident there plus working memory."""
    resident = {3: largest_bytes, 4: largest_bytes // 8}.get(rank, model_bytes)
    return int((resident + work_bytes(job, rank)) * MARGIN) + RESERVE_BYTES


def choose(policy: str, available: int | None, model_bytes: int, largest_bytes: int, job: Workload,
           floor: int = 0, accelerator: bool = True) -> MemoryPlan:
    """The plan for a job. `available`: bytes the job may use on the device, counting this model's weights
    already there; None when unknown. `floor`: the lowest level allowed (raised after an out-of-memory)."""
    if policy not in POLICIES:
        raise ValueError(f"offload must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "never":
        return MemoryPlan("plain", "memory savings are off (Settings > Memory)")
    top = len(LEVELS) - 1 if accelerator else 2  # offloading to the CPU needs an accelerator
    if policy == "always":
        rank = max(3 if accelerator else 0, min(floor, top))
        return MemoryPlan(LEVELS[rank], "offload is always on (Settings > Memory)")
    floor = min(floor, top)
    if available is None:
        return MemoryPlan(LEVELS[floor], "after an out-of-memory error" if floor else "free memory unknown")
    for rank in range(floor, top + 1):
        need = need_bytes(rank, model_bytes, largest_bytes, job)
        if need <= available:
            reason = "fits" if rank == 0 else f"needs about {need / 2**30:.1f} GiB of {available / 2**30:.1f} GiB free"
            return MemoryPlan(LEVELS[rank], reason)
    return MemoryPlan(LEVELS[top], f"the job may not fit in {available / 2**30:.1f} GiB even with every saving")


# Per-model memory state, keyed by the UNet (shared by every pipeline built from the model).
_floors: "weakref.WeakKeyDictionary[torch.nn.Module, int]" = weakref.WeakKeyDictionary()
_applied: "weakref.WeakKeyDictionary[torch.nn.Module, MemoryPlan]" = weakref.WeakKeyDictionary()
_known_sizes: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], list[int]]]" = weakref.WeakKeyDictionary()


def note_out_of_memory(pipe: Any) -> None:
    """After an out-of-memory failure, the next auto plan for this model starts one level higher."""
    current = _applied.get(pipe.unet, MemoryPlan())
    _floors[pipe.unet] = min(len(LEVELS) - 1, max(_floors.get(pipe.unet, 0), current.rank + 1))
    log.warning("Out of memory at level %s; next jobs with this model use more savings", current.level)


def available_bytes(pipe: Any, device: torch.device) -> int | None:
    """Free device memory plus what this pipeline's weights (and torch's cached blocks) hold there now."""
    free = devices.free_memory_bytes(device)
    if free is None:
        return None
    resident = sum(size for m, size in zip(_modules(pipe), _sizes(pipe)) if _on(m, device))
    cached = 0
    if device.type == "cuda":
        cached = max(0, torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return free + resident + cached


def _sizes(pipe: Any) -> list[int]:
    """Bytes of each module, remembered per model (walking every parameter each job costs milliseconds)."""
    modules = _modules(pipe)
    ids = tuple(id(m) for m in modules)
    known = _known_sizes.get(pipe.unet)
    if known is None or known[0] != ids:
        known = (ids, [module_bytes(m) for m in modules])
        _known_sizes[pipe.unet] = known
    return known[1]


def plan_for(pipe: Any, device: torch.device, policy: str, job: Workload) -> MemoryPlan:
    sizes = _sizes(pipe)
    return choose(policy, available_bytes(pipe, device), sum(sizes), max(sizes, default=0), job,
                  floor=_floors.get(pipe.unet, 0) if policy == "auto" else 0,
                  accelerator=device.type not in ("cpu",))


def apply(pipe: Any, plan: MemoryPlan, device: torch.device) -> None:
    """Put a run pipeline (built from the model's shared components) into the plan's state."""
    previous = _applied.get(pipe.unet, MemoryPlan())
    vae = pipe.vae
    if plan.vae_tiling:
        vae.enable_tiling()
        vae.enable_slicing()
    else:
        vae.disable_tiling()
        vae.disable_slicing()
    if plan.attention_slicing != previous.attention_slicing:
        # Only on change: this swaps the UNet's attention processors.
        if plan.attention_slicing:
            pipe.enable_attention_slicing("auto")
        else:
            pipe.disable_attention_slicing()
    if previous.offload and previous.offload != plan.offload:
        pipe.remove_all_hooks()
    if plan.offload == "model":
        pipe.enable_model_cpu_offload(device=device)  # per run pipeline: it frees the models after the call
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif previous.offload:
        pipe.to(device)
    if plan.level != previous.level:
        log.info("Memory savings: %s (%s)", plan.level, plan.reason)
    _applied[pipe.unet] = plan


def _modules(pipe: Any) -> list[torch.nn.Module]:
    return [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]


def _on(module: torch.nn.Module, device: torch.device) -> bool:
    for p in module.parameters():
        return p.device.type == device.type
    return False
