"""Sampler names of every tool mapped to our schedulers (a key of params.SCHEDULERS), both ways for A1111.

A near match is used and its difference returned as a note ("Karras schedule of Euler (used Euler)").
"""

from __future__ import annotations

from aigc_desktop.core.params import SCHEDULERS

# Our scheduler -> (A1111 "Sampler", "Schedule type"), as A1111 1.9+ writes them. "Automatic" means the
# sampler's own default, which for DPM++ 2M / DPM++ SDE became Karras in 1.9, so plain dpmpp_2m says Uniform.
A1111_SAMPLERS: dict[str, tuple[str, str]] = {
    "euler": ("Euler", "Automatic"),
    "euler_a": ("Euler a", "Automatic"),
    "dpmpp_2m": ("DPM++ 2M", "Uniform"),
    "dpmpp_2m_karras": ("DPM++ 2M", "Karras"),
    "dpmpp_sde_karras": ("DPM++ SDE", "Karras"),
    "ddim": ("DDIM", "Automatic"),
    "unipc": ("UniPC", "Automatic"),
    "lms": ("LMS", "Automatic"),
    "heun": ("Heun", "Automatic"),
    "lcm": ("LCM", "Automatic"),
}
assert set(A1111_SAMPLERS) == set(SCHEDULERS)


def a1111_sampler(scheduler: str) -> tuple[str, str]:
    """(Sampler, Schedule type) for one of our scheduler names, as A1111 1.9+ writes them."""
    return A1111_SAMPLERS.get(scheduler, (SCHEDULERS.get(scheduler, scheduler), "Automatic"))


# Base algorithms we have; "karras" marks the Karras-sigma variant.
_KARRAS = {"dpmpp_2m": "dpmpp_2m_karras", "dpmpp_sde": "dpmpp_sde_karras"}
_PLAIN_SCHEDULES = {"automatic", "normal", "uniform", "simple", "sgm_uniform", "default", "discrete", "native",
                    "sgm uniform"}


def combine_sampler(base: str | None, schedule: str | None, shown: str) -> tuple[str | None, str | None]:
    """(our scheduler, note) for a base algorithm (our spelling) and a schedule ("karras", "normal", ...)."""
    schedule = (schedule or "").strip().lower()
    if base is None:
        return None, f"sampler {shown} (no equivalent here)"
    if schedule == "karras":
        if base in _KARRAS:
            return _KARRAS[base], None
        return base, f"Karras schedule of {shown} (used {SCHEDULERS[base]})"
    if base == "dpmpp_sde":  # we only have it with Karras sigmas
        return "dpmpp_sde_karras", f"schedule of {shown} (used DPM++ SDE Karras)"
    if schedule and schedule not in _PLAIN_SCHEDULES:
        return base, f"{schedule} schedule of {shown} (used {SCHEDULERS[base]})"
    return base, None


_A1111_BASES = {
    "euler a": "euler_a", "euler": "euler", "lms": "lms", "heun": "heun", "dpm++ 2m": "dpmpp_2m",
    "dpm++ sde": "dpmpp_sde", "ddim": "ddim", "unipc": "unipc", "lcm": "lcm",
}


def a1111_scheduler(sampler: str, schedule_type: str | None) -> tuple[str | None, str | None]:
    """Our scheduler for A1111's "Sampler" (+ "Schedule type"); old names such as "DPM++ 2M Karras" too."""
    name = sampler.strip()
    lower = name.lower()
    schedule = schedule_type
    for suffix in (" karras", " exponential"):
        if lower.endswith(suffix) and lower[: -len(suffix)] in _A1111_BASES:
            lower, schedule = lower[: -len(suffix)], suffix.strip()
    base = _A1111_BASES.get(lower)
    if base in _KARRAS and (schedule is None or schedule.lower() == "automatic"):
        # 1.9 (the version that added "Schedule type") made Karras the default of DPM++ 2M and DPM++ SDE.
        if schedule is not None:
            schedule = "karras"
    return combine_sampler(base, schedule, name + (f" / {schedule_type}" if schedule_type else ""))


_COMFY_BASES = {
    "euler": "euler", "euler_ancestral": "euler_a", "heun": "heun", "lms": "lms", "dpmpp_2m": "dpmpp_2m",
    "dpmpp_sde": "dpmpp_sde", "dpmpp_sde_gpu": "dpmpp_sde", "ddim": "ddim", "uni_pc": "unipc",
    "uni_pc_bh2": "unipc", "lcm": "lcm",
}


def comfy_scheduler(sampler_name: str, scheduler: str | None) -> tuple[str | None, str | None]:
    """Our scheduler for ComfyUI's sampler_name + scheduler ("dpmpp_2m" + "karras" -> dpmpp_2m_karras)."""
    shown = f"{sampler_name} / {scheduler}" if scheduler else sampler_name
    return combine_sampler(_COMFY_BASES.get(sampler_name.strip().lower()), scheduler, shown)


_INVOKE_BASES = {"euler": "euler", "euler_a": "euler_a", "heun": "heun", "lms": "lms", "dpmpp_2m": "dpmpp_2m",
                 "dpmpp_sde": "dpmpp_sde", "ddim": "ddim", "unipc": "unipc", "lcm": "lcm",
                 # InvokeAI 2.x names
                 "k_euler": "euler", "k_euler_a": "euler_a", "k_heun": "heun", "k_lms": "lms"}


def invoke_scheduler(name: str) -> tuple[str | None, str | None]:
    """Our scheduler for InvokeAI's names ("dpmpp_2m_k" = DPM++ 2M Karras)."""
    key = name.strip().lower()
    karras = key.endswith("_k")
    base = _INVOKE_BASES.get(key[:-2] if karras else key)
    return combine_sampler(base, "karras" if karras else None, name)


NOVELAI_BASES = {"k_euler": "euler", "k_euler_ancestral": "euler_a", "k_dpmpp_2m": "dpmpp_2m",
                 "k_dpmpp_sde": "dpmpp_sde", "ddim": "ddim", "ddim_v3": "ddim", "k_lms": "lms", "k_heun": "heun"}
