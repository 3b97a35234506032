"""Human-readable lines of an image's metadata, for `aigc-desktop info` and tooltips."""

from __future__ import annotations

from aigc_desktop.core.metadata.types import ImageMetadata, num


def describe(meta: ImageMetadata) -> list[str]:
    """Human-readable lines for `aigc-desktop info` and tooltips."""
    lines = []
    if not meta.found:
        lines = ["No generation parameters found."]
        if meta.unreadable:
            lines.append("Could not read: " + "; ".join(meta.unreadable))
        return lines
    lines.append(f"Source:     {meta.source}" + (f" ({meta.engine} engine)" if meta.engine != "diffusion" else ""))
    if meta.prompt is not None:
        lines.append(f"Prompt:     {meta.prompt}")
    if meta.negative_prompt:
        lines.append(f"Negative:   {meta.negative_prompt}")
    settings = []
    for label, value in (("Seed", meta.seed), ("Steps", meta.steps), ("CFG scale", meta.cfg_scale)):
        if value is not None:
            settings.append(f"{label} {num(value)}")
    if meta.width and meta.height:
        settings.append(f"Size {meta.width}x{meta.height}")
    if settings:
        lines.append("Settings:   " + ", ".join(settings))
    if meta.sampler or meta.scheduler:
        mapped = f" -> {meta.scheduler}" if meta.scheduler else " (no equivalent here)"
        lines.append(f"Sampler:    {meta.sampler or meta.scheduler}{mapped}")
    if meta.mode and meta.mode != "txt2img":
        strength = f", strength {num(meta.strength)}" if meta.strength is not None else ""
        lines.append(f"Mode:       {meta.mode}{strength}")
    if meta.variation_seed is not None and meta.variation_strength:
        lines.append(f"Variation:  seed {meta.variation_seed}, strength {num(meta.variation_strength)}")
    if meta.clip_skip and meta.clip_skip > 1:
        lines.append(f"Clip skip:  {meta.clip_skip}")
    if meta.model_name or meta.model_hash:
        hash_text = f" [{meta.model_hash[:10]}]" if meta.model_hash else ""
        family = f" ({meta.family})" if meta.family else ""
        lines.append(f"Model:      {meta.model_name or '?'}{hash_text}{family}")
    if meta.vae:
        lines.append(f"VAE:        {meta.vae}")
    for lora in meta.loras:
        weight = f" x{num(lora.weight)}" if lora.weight is not None else ""
        lines.append(f"LoRA:       {lora.name}{weight}" + (f" [{lora.hash[:12]}]" if lora.hash else ""))
    for key, value in meta.extra.items():
        lines.append(f"{key + ':':<11} {value}")
    if meta.not_restored:
        lines.append("Not restored: " + "; ".join(meta.not_restored))
    if meta.unreadable:
        lines.append("Could not read: " + "; ".join(meta.unreadable))
    return lines
