"""Our scheduler names -> diffusers scheduler classes, built from the model's own scheduler config.

`from_config` keeps the model's prediction type, beta schedule and timestep spacing; only the class
(and the options that define the A1111 sampler, such as Karras sigmas) change.
"""

from __future__ import annotations

from typing import Any

import diffusers

from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.params import SCHEDULERS

# name -> (diffusers class name, extra config)
_TABLE: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                 "use_karras_sigmas": False}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}),
    "dpmpp_sde_karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
assert set(_TABLE) == set(SCHEDULERS)


def scheduler_class_name(name: str) -> str:
    if name not in _TABLE:
        raise InvalidParameter(f"Unknown scheduler '{name}'; choose one of: {', '.join(SCHEDULERS)}")
    return _TABLE[name][0]


def make_scheduler(name: str, base_config: dict[str, Any], seeds: list[int] | None = None):
    """A fresh scheduler of kind `name` from the model's scheduler config (build one per run: a scheduler
    keeps state while it samples).

    `seeds` (one per image of the batch) fix the Brownian noise of the SDE sampler, which otherwise draws
    a random seed; one Brownian tree per image makes image i of a batch the same as image i alone.
    """
    cls_name = scheduler_class_name(name)
    extra = dict(_TABLE[name][1])
    if cls_name == "DPMSolverSDEScheduler" and seeds:
        extra["noise_sampler_seed"] = [int(s) for s in seeds]
    cls = getattr(diffusers, cls_name)
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    if cls_name == "DDIMScheduler" and "clip_sample" not in config:
        # DDIM's own default clips x0 to [-1, 1], wrong for latents; SD configs say false.
        extra["clip_sample"] = False
    return cls.from_config(config, **extra)
