"""NovelAI: `Comment` JSON (settings), `Description` (prompt), `Source` (model), `Software`."""

from __future__ import annotations

from aigc_desktop.core.metadata.limits import RECORD_JSON_MAX
from aigc_desktop.core.metadata.samplers import NOVELAI_BASES, combine_sampler
from aigc_desktop.core.metadata.types import ImageMetadata, TextChunks, json_dict, to_float, to_int


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def parse_novelai(chunks: TextChunks) -> ImageMetadata | None:
    if "Comment" not in chunks or not ("NovelAI" in chunks.get("Software", "")[:200] or "Description" in chunks):
        return None
    data = json_dict(chunks["Comment"], "NovelAI's Comment", chunks.problems, RECORD_JSON_MAX)
    if not data:
        return None
    meta = ImageMetadata(source="NovelAI", prompt=chunks.get("Description") or _text(data.get("prompt")),
                         negative_prompt=_text(data.get("uc")), seed=to_int(data.get("seed")),
                         steps=to_int(data.get("steps")), cfg_scale=to_float(data.get("scale")),
                         width=to_int(data.get("width")), height=to_int(data.get("height")))
    sampler = _text(data.get("sampler"))
    if sampler:
        schedule = _text(data.get("noise_schedule"))
        meta.sampler = f"{sampler} / {schedule}" if schedule else sampler
        meta.scheduler, note = combine_sampler(NOVELAI_BASES.get(sampler), schedule, meta.sampler)
        meta.note(note or "")
    if chunks.get("Source"):
        meta.model_name = chunks["Source"][:500]
        meta.note(f"model {meta.model_name} (NovelAI's models run only on NovelAI)")
    if to_float(data.get("strength")) is not None and data.get("request_type") == "Img2ImgRequest":
        meta.mode, meta.strength = "img2img", to_float(data["strength"])
    if data.get("sm") or data.get("sm_dyn"):
        meta.note("SMEA")
    if to_float(data.get("cfg_rescale")):
        meta.note(f"CFG rescale {to_float(data['cfg_rescale'])}")
    meta.note("NovelAI prompt weights ({word} / [word]) differ from A1111's")
    return meta
