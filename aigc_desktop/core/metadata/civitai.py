"""Civitai's on-site generator: a ComfyUI API graph plus `extraMetadata`, as JSON (in EXIF UserComment).

`extraMetadata` (a JSON string, or an object) holds what the user set in the generator: prompt and negative
prompt as typed, steps, cfgScale, sampler (A1111's names), seed, clipSkip and the Civitai resources used.
Those values win over the graph's, which Civitai rewrites (embeddings expanded, models named by AIR URNs).
"""

from __future__ import annotations

from typing import Any

from aigc_desktop.core.metadata.comfyui import metadata_from_graph
from aigc_desktop.core.metadata.limits import RECORD_JSON_MAX
from aigc_desktop.core.metadata.samplers import a1111_scheduler
from aigc_desktop.core.metadata.types import ImageMetadata, json_dict, to_float, to_int

_WHERE = "Civitai extraMetadata"


def is_civitai(data: Any) -> bool:
    return isinstance(data, dict) and "extraMetadata" in data


def parse_civitai(text: str, problems: list[str] | None = None) -> ImageMetadata | None:
    data = json_dict(text, "Civitai's generator JSON", problems)
    if not is_civitai(data):
        return None
    extra = data["extraMetadata"]
    if isinstance(extra, str):
        extra = json_dict(extra, "Civitai's extraMetadata", problems, RECORD_JSON_MAX)
    extra = extra if isinstance(extra, dict) else {}
    graph = {k: v for k, v in data.items() if isinstance(v, dict) and "class_type" in v}
    meta = metadata_from_graph(graph, source="Civitai") if graph else ImageMetadata(source="Civitai")
    if not graph:
        meta.not_restored.clear()
    for field, key, convert in (("prompt", "prompt", _text), ("negative_prompt", "negativePrompt", _text),
                                ("seed", "seed", to_int), ("steps", "steps", to_int),
                                ("cfg_scale", "cfgScale", to_float), ("clip_skip", "clipSkip", to_int),
                                ("width", "width", to_int), ("height", "height", to_int)):
        value = convert(extra.get(key))
        if value is not None:
            setattr(meta, field, value)
            meta.field_sources[field] = _WHERE
    sampler = _text(extra.get("sampler"))
    if sampler:
        meta.sampler = sampler
        scheduler, note = a1111_scheduler(sampler, None)
        meta.scheduler = scheduler
        meta.not_restored[:] = [n for n in meta.not_restored if not n.startswith(("sampler ", "Karras schedule"))]
        meta.note(note or "")
        meta.field_sources["sampler"] = meta.field_sources["scheduler"] = _WHERE
    resources = extra.get("resources")
    if isinstance(resources, list) and resources:
        ids = [str(r.get("modelVersionId"))[:20] for r in resources if isinstance(r, dict) and r.get("modelVersionId")]
        if ids:
            meta.note("Civitai resources (model versions " + ", ".join(ids[:20]) + ")")
    if meta.model_name and meta.model_name.startswith("urn:air:"):
        meta.note(f"model {meta.model_name} (a Civitai AIR: download it from Civitai)")
    return meta


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
