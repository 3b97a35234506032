"""Fooocus: its parameters as JSON in the `parameters` chunk (metadata scheme "fooocus")."""

from __future__ import annotations

from pathlib import Path

from aigc_desktop.core.metadata.limits import RECORD_JSON_MAX
from aigc_desktop.core.metadata.samplers import comfy_scheduler
from aigc_desktop.core.metadata.types import ImageMetadata, LoraUse, json_dict, to_float, to_int


def _resolution(text: str) -> tuple[int, int] | None:
    """ "(1152, 896)" -> (1152, 896)."""
    parts = text.strip().strip("()[]").split(",")
    if len(parts) != 2:
        return None
    w, h = to_int(parts[0].strip()), to_int(parts[1].strip())
    return (w, h) if w and h else None


def parse_fooocus(text: str, problems: list[str] | None = None) -> ImageMetadata | None:
    data = json_dict(text, "the Fooocus JSON", problems, RECORD_JSON_MAX)
    if not data or "prompt" not in data:
        return None
    meta = ImageMetadata(source="Fooocus", prompt=str(data.get("prompt") or ""),
                         negative_prompt=str(data.get("negative_prompt") or ""), seed=to_int(data.get("seed")),
                         steps=to_int(data.get("steps")), cfg_scale=to_float(data.get("guidance_scale")),
                         model_name=_text(data.get("base_model")), model_hash=_text(data.get("base_model_hash")))
    size = _resolution(str(data.get("resolution", ""))[:40])
    if size:
        meta.width, meta.height = size
    if isinstance(data.get("sampler"), str):
        scheduler = data.get("scheduler") if isinstance(data.get("scheduler"), str) else None
        meta.sampler = f"{data['sampler']} / {scheduler or ''}".rstrip(" /")
        meta.scheduler, note = comfy_scheduler(data["sampler"], scheduler)
        meta.note(note or "")
    for item in data.get("loras") if isinstance(data.get("loras"), list) else []:
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            meta.loras.append(LoraUse(Path(item[0]).stem, to_float(item[1]) if len(item) > 1 else None,
                                      str(item[2]) if len(item) > 2 else None))
    if data.get("refiner_model") not in (None, "", "None"):
        meta.note(f"refiner {str(data['refiner_model'])[:200]}")
    if data.get("styles") not in (None, "", "[]", []):
        meta.note(f"Fooocus styles {str(data['styles'])[:200]}")
    meta.note("Fooocus prompt expansion and sharpness")
    return meta


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None
