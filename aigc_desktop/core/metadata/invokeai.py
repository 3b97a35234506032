"""InvokeAI: 3.x-5.x `invokeai_metadata` JSON (its Core Metadata node); 2.x `sd-metadata` and `Dream`."""

from __future__ import annotations

import re
from typing import Any

from aigc_desktop.core.metadata.limits import PATTERN_WINDOW, RECORD_JSON_MAX
from aigc_desktop.core.metadata.samplers import invoke_scheduler
from aigc_desktop.core.metadata.types import ImageMetadata, LoraUse, TextChunks, json_dict, to_float, to_int

_BASE_FAMILY = {"sd-1": "sd1", "sd-2": "sd2", "sdxl": "sdxl"}
# InvokeAI's own weight syntax (word+, (words)1.2, .and() / .blend()); searched in a bounded prefix.
_INVOKE_WEIGHTS = re.compile(r"\)([+-]+|\d*\.?\d+)|\w[+-]+(?=[\s,]|$)|\.(and|blend)\(")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _model(value: Any) -> tuple[str | None, str | None, str | None]:
    """(name, hash, base) of InvokeAI's model identifiers: 4.x {name, hash, base}, 3.x {model_name, base_model}."""
    if isinstance(value, str):
        return value, None, None
    if not isinstance(value, dict):
        return None, None, None
    return (_text(value.get("name") or value.get("model_name")), _text(value.get("hash")),
            _text(value.get("base") or value.get("base_model")))


def parse_invokeai(text: str, problems: list[str] | None = None) -> ImageMetadata | None:
    data = json_dict(text, "InvokeAI's invokeai_metadata", problems, RECORD_JSON_MAX)
    if not data:
        return None
    meta = ImageMetadata(source="InvokeAI", prompt=_text(data.get("positive_prompt")),
                         negative_prompt=_text(data.get("negative_prompt")), seed=to_int(data.get("seed")),
                         steps=to_int(data.get("steps")), cfg_scale=to_float(data.get("cfg_scale")),
                         width=to_int(data.get("width")), height=to_int(data.get("height")))
    name, model_hash, base = _model(data.get("model"))
    meta.model_name, meta.model_hash = name, model_hash
    if base:
        meta.family = _BASE_FAMILY.get(base)
        if meta.family is None:
            meta.note(f"{base[:100]} model (this app runs SD 1.x, 2.x and SDXL)")
    if _text(data.get("scheduler")):
        meta.sampler = data["scheduler"]
        meta.scheduler, note = invoke_scheduler(meta.sampler)
        meta.note(note or "")
    mode = str(data.get("generation_mode") or "")[:100]
    for ours in ("txt2img", "img2img", "inpaint", "outpaint"):
        if mode.endswith(ours):
            meta.mode = ours
    if meta.mode in ("img2img", "inpaint", "outpaint"):
        meta.strength = to_float(data.get("strength") if data.get("strength") is not None
                                 else data.get("denoising_strength"))
        meta.note("init image (not stored in the image)")
    clip_skip = to_int(data.get("clip_skip"))
    if clip_skip:  # InvokeAI counts skipped layers: 0 = none = A1111's 1
        meta.clip_skip = clip_skip + 1
    for item in data.get("loras") if isinstance(data.get("loras"), list) else []:
        if isinstance(item, dict):
            lname, lhash, _ = _model(item.get("model") or item.get("lora"))
            if lname:
                meta.loras.append(LoraUse(lname, to_float(item.get("weight")), lhash))
    meta.vae = _model(data.get("vae"))[0]
    _note_extras(meta, data)
    return meta


def _note_extras(meta: ImageMetadata, data: dict[str, Any]) -> None:
    if data.get("hrf_enabled"):
        meta.note("hires fix")
    if data.get("refiner_model"):
        meta.note(f"refiner {_model(data['refiner_model'])[0]}")
    for key, label in (("controlnets", "ControlNet"), ("ipAdapters", "IP-Adapter"), ("t2iAdapters", "T2I-Adapter"),
                       ("regions", "regional prompts")):
        if data.get(key):
            meta.note(label)
    if to_float(data.get("cfg_rescale_multiplier")):
        meta.note(f"CFG rescale {to_float(data['cfg_rescale_multiplier'])}")
    if data.get("seamless_x") or data.get("seamless_y"):
        meta.note("seamless tiling")
    style = data.get("positive_style_prompt")
    if style and style != meta.prompt:
        meta.note("SDXL style prompt")
    if meta.prompt and _INVOKE_WEIGHTS.search(meta.prompt[:PATTERN_WINDOW]):
        meta.note("InvokeAI prompt weights (word+ / .and()) differ from A1111's")


def _split_bracket_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI 2.x put the negative prompt in [square brackets] inside the prompt (one linear pass)."""
    positive: list[str] = []
    negatives: list[str] = []
    i, n = 0, len(prompt)
    while i < n:
        open_at = prompt.find("[", i)
        if open_at < 0:
            positive.append(prompt[i:])
            break
        close = prompt.find("]", open_at + 1)
        inner_open = prompt.find("[", open_at + 1, close if close >= 0 else n)
        if close < 0:
            positive.append(prompt[i:])
            break
        if inner_open >= 0:  # "[a [b]": only the innermost pair is a negative
            positive.append(prompt[i:inner_open])
            i = inner_open
            continue
        positive.append(prompt[i:open_at].rstrip() + " ")
        negatives.append(prompt[open_at + 1:close].strip())
        i = close + 1
        while i < n and prompt[i].isspace():
            i += 1
    return "".join(positive).strip(), ", ".join(n for n in negatives if n)


def parse_invokeai_legacy(chunks: TextChunks) -> ImageMetadata | None:
    """InvokeAI 2.x: `sd-metadata` JSON, or the older `Dream` command line."""
    if "sd-metadata" in chunks:
        data = json_dict(chunks["sd-metadata"], "InvokeAI's sd-metadata", chunks.problems, RECORD_JSON_MAX)
        image = data.get("image") if isinstance(data.get("image"), dict) else None
        if image is not None:
            prompt = image.get("prompt")
            if isinstance(prompt, list):  # [{"prompt": "...", "weight": 1}]
                prompt = " ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
            positive, negative = _split_bracket_negative(str(prompt or ""))
            meta = ImageMetadata(source="InvokeAI", prompt=positive, negative_prompt=negative,
                                 seed=to_int(image.get("seed")), steps=to_int(image.get("steps")),
                                 cfg_scale=to_float(image.get("cfg_scale")), width=to_int(image.get("width")),
                                 height=to_int(image.get("height")), model_name=_text(data.get("model_weights")),
                                 model_hash=_text(data.get("model_hash")))
            _legacy_sampler(meta, image.get("sampler"))
            if image.get("type") == "img2img":
                meta.mode, meta.strength = "img2img", to_float(image.get("strength"))
            if image.get("hires_fix"):
                meta.note("hires fix")
            if image.get("variations"):
                meta.note("InvokeAI variations")
            return meta
    dream = chunks.get("Dream", "")[:PATTERN_WINDOW]
    if dream.lstrip().startswith('"'):
        body = dream.lstrip()[1:]
        quoted, sep, rest = body.partition('"')
        if sep:
            positive, negative = _split_bracket_negative(quoted)
            args = dict(re.findall(r"-(\w)\s*([^\s-][^\s]*)", rest))
            meta = ImageMetadata(source="InvokeAI", prompt=positive, negative_prompt=negative,
                                 seed=to_int(args.get("S")), steps=to_int(args.get("s")),
                                 cfg_scale=to_float(args.get("C")),
                                 width=to_int(args.get("W")), height=to_int(args.get("H")))
            _legacy_sampler(meta, args.get("A"))
            return meta
    return None


def _legacy_sampler(meta: ImageMetadata, name: Any) -> None:
    if isinstance(name, str) and name:
        meta.sampler = name
        meta.scheduler, note = invoke_scheduler(name)
        meta.note(note or "")
