"""Restore generation parameters from an image's metadata into the app's parameters (no Qt: testable).

`restore_params(meta, current)` returns new GenerationParams with whatever the image says and the
target can show, and one line saying what was restored and what could not be (other tools' features,
values out of range, the model, which the user picks in the Models panel).

`regeneration(record)` is the job that makes one of our own images again, pixel for pixel on the machine
that made it: it runs the batch the image was part of and says which of its images is the one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from aigc_desktop.core import hashing
from aigc_desktop.core.metadata import ImageMetadata, num, read_image_metadata
from aigc_desktop.core.params import MAX_SEED, SCHEDULERS, GenerationParams, LoraRef

# What the prompt panel shows (and so can take back); other targets pass their own set.
PANEL_FIELDS = frozenset({"prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "scheduler"})
PROMPT_ENGINES = ("diffusion", "fake")


@dataclass(frozen=True)
class RestoreResult:
    params: GenerationParams
    restored: tuple[str, ...]
    not_restored: tuple[str, ...]
    model: str | None  # the image's model as "name [hash]", for the user to pick
    message: str  # one line for the user


def _model_label(meta: ImageMetadata) -> str | None:
    if not (meta.model_name or meta.model_hash):
        return None
    name = meta.model_name or "?"
    return f"{name} [{meta.model_hash[:10]}]" if meta.model_hash else name


def _size(value: int, label: str, notes: list[str]) -> int | None:
    if value < 64:
        notes.append(f"{label} {value} (below 64)")
        return None
    rounded = min(8192, value - value % 8)
    if rounded != value:
        notes.append(f"{label} {value} rounded to {rounded}")
    return rounded


def _with_lora_tags(prompt: str, meta: ImageMetadata) -> tuple[str, bool]:
    """LoRAs loaded by nodes (ComfyUI, InvokeAI) become A1111 `<lora:name:weight>` tags in the prompt."""
    tags = [f"<lora:{l.name}:{num(1.0 if l.weight is None else l.weight)}>" for l in meta.loras
            if f"<lora:{l.name}" not in prompt]
    if not tags:
        return prompt, False
    return (prompt.rstrip() + " " if prompt.strip() else "") + " ".join(tags), True


def restore_params(meta: ImageMetadata, current: GenerationParams,
                   fields: Iterable[str] = PANEL_FIELDS) -> RestoreResult:
    """`current` with the image's values put in where `fields` allow; what was left out is listed."""
    fields = frozenset(fields)
    if not meta.found:
        return RestoreResult(current, (), (), None, "No generation parameters found in this image.")
    if meta.engine not in PROMPT_ENGINES:
        return RestoreResult(current, (), (), _model_label(meta),
                             f"Made with the {meta.engine} engine by {meta.source}: nothing to restore here.")
    values: dict[str, object] = {}
    done: list[str] = []
    notes: list[str] = []

    def take(field: str, value, label: str) -> None:
        if value is None:
            return
        if field in fields:
            values[field] = value
            if label not in done:
                done.append(label)
        else:
            notes.append(f"{label} {value}")

    if meta.prompt is not None:
        prompt = meta.prompt
        if "loras" not in fields:
            prompt, tagged = _with_lora_tags(prompt, meta)
            if tagged:
                done.append("LoRAs")
        take("prompt", prompt, "prompt")
    take("negative_prompt", meta.negative_prompt, "negative prompt")
    if meta.seed is not None:
        if 0 <= meta.seed <= MAX_SEED:
            take("seed", meta.seed, "seed")
        else:
            notes.append(f"seed {meta.seed} (beyond {MAX_SEED})")
    if meta.steps is not None:
        if 1 <= meta.steps <= 1000:
            take("steps", meta.steps, "steps")
        else:
            notes.append(f"steps {meta.steps}")
    if meta.cfg_scale is not None:
        if 0 <= meta.cfg_scale <= 100:
            take("cfg_scale", meta.cfg_scale, "CFG scale")
        else:
            notes.append(f"CFG scale {num(meta.cfg_scale)}")
    if meta.width and meta.height:
        w, h = _size(meta.width, "width", notes), _size(meta.height, "height", notes)
        if w and h:
            if {"width", "height"} <= fields:
                values.update(width=w, height=h)
                done.append("size")
            else:
                notes.append(f"size {w}x{h}")
    if meta.scheduler in SCHEDULERS:
        take("scheduler", meta.scheduler, "sampler")
    if meta.mode and meta.mode != "txt2img":
        if "strength" in fields and meta.strength is not None:
            values["strength"] = float(meta.strength)
            done.append("denoising strength")
        notes.append(f"{meta.mode}" + (f" (strength {num(meta.strength)})" if meta.strength is not None else ""))
    if meta.variation_seed is not None and meta.variation_strength:
        if {"variation_seed", "variation_strength"} <= fields and 0 <= meta.variation_seed <= MAX_SEED:
            values.update(variation_seed=meta.variation_seed, variation_strength=float(meta.variation_strength))
            done.append("variation seed")
        else:
            notes.append(f"variation seed {meta.variation_seed} x{num(meta.variation_strength)}")
    if meta.clip_skip and meta.clip_skip > 1:
        if meta.clip_skip <= 12:
            take("clip_skip", meta.clip_skip, "clip skip")
        else:
            notes.append(f"clip skip {meta.clip_skip}")
    if "loras" in fields and meta.loras:
        refs = tuple(LoraRef(l.path, 1.0 if l.weight is None else l.weight) for l in meta.loras if l.path)
        if refs:
            values["loras"] = refs
            done.append("LoRAs")
    model = _model_label(meta)
    if model:
        notes.append(f"model {model} (pick it in Models)")
    if meta.vae:
        notes.append(f"VAE {meta.vae}")
    notes += [n for n in meta.not_restored if n not in notes]
    notes += [f"could not read {n}" for n in meta.unreadable]  # values the image holds but no reader could
    params = replace(current, **values) if values else current
    return RestoreResult(params, tuple(done), tuple(notes), model, _message(meta, done, notes))


def _message(meta: ImageMetadata, done: list[str], notes: list[str]) -> str:
    text = f"Restored from {meta.source}: {', '.join(done) if done else 'nothing'}."
    if notes:
        text += " Not restored: " + "; ".join(notes) + "."
    return " ".join(text.split())  # one line, whatever the notes hold


def restore_from_file(path: str | os.PathLike, current: GenerationParams,
                      fields: Iterable[str] = PANEL_FIELDS) -> tuple[RestoreResult, ImageMetadata]:
    """Read an image and restore from it; raises UnreadableImage (one line) for a bad file."""
    meta = read_image_metadata(path)
    result = restore_params(meta, current, fields)
    if not meta.found:
        unreadable = (" Could not read: " + "; ".join(meta.unreadable) + ".") if meta.unreadable else ""
        result = replace(result, message=f"No generation parameters found in {Path(path).name}.{unreadable}")
    return result, meta


def _normal_name(name: str | None) -> str:
    if not name:
        return ""
    base = re.split(r"[\\/]", name.strip())[-1]
    for suffix in (".safetensors", ".ckpt", ".pt", ".pth", ".bin"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return base.lower()


def find_model(meta: ImageMetadata, models: Iterable):
    """The model (catalog ModelInfo, anything with .path and .name) the image was made with, or None.

    Matches the hash against hashes already cached (never hashes every model), then the file name, then
    A1111's old 8-digit hash, which costs one 64 KiB read per file.
    """
    models = list(models)
    wanted = (meta.model_hash or "").lower().split(":")[-1]
    if len(wanted) >= 10:
        for m in models:
            full = hashing.cached_sha256(m.path)
            if full and full.startswith(wanted):
                return m
    name = _normal_name(meta.model_name)
    if name:
        for m in models:
            if _normal_name(m.name) == name or _normal_name(Path(m.path).name) == name:
                return m
    if len(wanted) == 8:
        for m in models:
            if os.path.isfile(m.path):
                try:
                    if hashing.legacy_model_hash(m.path) == wanted:
                        return m
                except OSError:
                    continue
    return None


# ------------------------------------------------------------------------------------------ regeneration


@dataclass(frozen=True)
class Regeneration:
    """A job that makes a recorded image again, and which of the job's images that is."""

    job: Any  # core.jobs.DiffusionJob
    index: int  # the recorded image among job's images
    batch_size: int  # the batch the job runs: the recorded one, or 1 when `alone`


def regeneration(record: dict[str, Any], init_image: str | bytes | None = None, mask: str | bytes | None = None,
                 exact_device: bool = False, alone: bool = False) -> Regeneration:
    """The job that regenerates the image of an `aigc-desktop` diffusion record.

    Float results depend on the batch shape (the kernels' blocking and reduction order change with it), so
    image i of a batch of n made alone comes out equal only within rounding (a level on a few pixels).
    Exactness on one machine therefore comes from running the same computation again: the batch the record
    names (`batch_size`; the image's place in it is `batch_index % batch_size`), from the first image's seed
    (or, with a variation seed, the first image's variation seed), one batch only. `alone=True` makes just the
    image, with its own seed, in a batch of one: cheaper, the same picture within rounding. Records without a
    batch size (older ones) regenerate alone. Raises UserError as `record_to_params` does.
    """
    from aigc_desktop.core.metadata import record_to_job
    from aigc_desktop.core.params import MAX_SEED

    job = record_to_job(record, init_image, mask, exact_device=exact_device)
    size = _positive_int(record.get("batch_size"))
    index = _positive_int(record.get("batch_index"), minimum=0)
    if size is not None and size > 64:  # core.params' batch-size range: a record from disk may claim any number
        from aigc_desktop.core.errors import InvalidParameter
        from aigc_desktop.core.params import shown

        raise InvalidParameter(f"the image's record: batch_size must be between 1 and 64, got {shown(size)}")
    if alone or size is None or size == 1 or index is None:
        return Regeneration(job, 0, 1)
    position = index % size
    p = job.params
    if p.has_variation:  # every image keeps the base seed; the variation seed steps with the image
        first = replace(p, variation_seed=(int(p.variation_seed) - position) % (MAX_SEED + 1))
    else:
        first = replace(p, seed=(int(p.seed) - position) % (MAX_SEED + 1))
    return Regeneration(replace(job, params=replace(first, batch_size=size, batch_count=1)), position, size)


def _positive_int(value: Any, minimum: int = 1) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return None
    return value
