"""Readers for other tools' image metadata: A1111 infotext, InvokeAI, NovelAI, Fooocus; sampler names.

Each reader returns an ImageMetadata (None when the text is not that tool's format). Samplers map to our
scheduler names where one matches; a near match is used and its difference noted in `not_restored`.
ComfyUI graphs live in metadata_comfy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aigc_desktop.core.metadata import ImageMetadata, LoraUse, loras_in_prompt, to_float, to_int
from aigc_desktop.core.params import SCHEDULERS

# ------------------------------------------------------------------------------------------ samplers

# Base algorithms we have; "karras" marks the Karras-sigma variant.
_KARRAS = {"dpmpp_2m": "dpmpp_2m_karras", "dpmpp_sde": "dpmpp_sde_karras"}


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
    if schedule and schedule not in ("automatic", "normal", "uniform", "simple", "sgm_uniform", "default",
                                     "discrete", "native", "sgm uniform"):
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


_NOVELAI_BASES = {"k_euler": "euler", "k_euler_ancestral": "euler_a", "k_dpmpp_2m": "dpmpp_2m",
                  "k_dpmpp_sde": "dpmpp_sde", "ddim": "ddim", "ddim_v3": "ddim", "k_lms": "lms", "k_heun": "heun"}

# ------------------------------------------------------------------------------------------ A1111

# `Key: value` pairs of A1111's last line; a value is a JSON string (when it holds , : or newline) or runs
# to the next comma.
_PAIR = re.compile(r'\s*([A-Za-z][\w \-/+.()]*?)\s*:\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)')
_HASHES = re.compile(r"\s*Hashes:\s*(\{[^{}]*\})\s*,?")
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
# Keys that describe, rather than change, the image (or are read elsewhere).
_A1111_QUIET = {"Version", "Hashes", "VAE hash", "TI hashes", "Lora hashes", "Model hash", "Emphasis",
                "Schedule type", "Sampler", "Steps", "CFG scale", "Seed", "Size", "Model", "Denoising strength",
                "Variation seed", "Variation seed strength", "Clip skip", "VAE", "Mask blur", "Inpaint area",
                "Masked area padding", "Masked content", "Downcast alphas_cumprod", "Pad conds", "RNG",
                "Token merging ratio", "NGMS", "Engine"}
_A1111_FEATURES = (("Hires", "hires fix"), ("Refiner", "refiner"), ("ADetailer", "ADetailer"),
                   ("ControlNet", "ControlNet"), ("Face restoration", "face restoration"),
                   ("Seed resize from", "seed resize"), ("Tiled Diffusion", "tiled diffusion"),
                   ("Dynamic thresholding", "dynamic thresholding"), ("Image CFG scale", "image CFG scale"))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
            return decoded if isinstance(decoded, str) else value
        except ValueError:
            return value
    return value


def split_a1111(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, {key: value}) of an A1111 infotext."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and len(_PAIR.findall(lines[-1])) >= 3:
        last = lines.pop()
        # Civitai's `Hashes: {json}` holds commas and colons without quotes: take it out first.
        hashes = _HASHES.search(last)
        if hashes:
            settings["Hashes"] = hashes.group(1)
            last = last[:hashes.start()] + "," + last[hashes.end():]
        for key, value in _PAIR.findall(last):
            if key.strip():
                settings[key.strip()] = _unquote(value)
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines).strip(), "\n".join(negative_lines).strip(), settings


def _hash_list(text: str) -> dict[str, str]:
    """ "name: hash, name2: hash2" -> {name: hash} (names may hold colons; the hash is the last field)."""
    out = {}
    for item in text.split(","):
        name, sep, value = item.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def parse_a1111(text: str) -> ImageMetadata | None:
    prompt, negative, s = split_a1111(text)
    if not s:
        if not prompt:
            return None
        meta = ImageMetadata(source="A1111", prompt=prompt, negative_prompt=negative)
        meta.note("settings line (only the prompt was found)")
        return meta
    meta = ImageMetadata(source="A1111", prompt=prompt, negative_prompt=negative,
                         seed=to_int(s.get("Seed")), steps=to_int(s.get("Steps")),
                         cfg_scale=to_float(s.get("CFG scale")),
                         model_name=s.get("Model") or None, model_hash=s.get("Model hash") or None,
                         clip_skip=to_int(s.get("Clip skip")), vae=s.get("VAE") or None)
    if s.get("Version", "").startswith("aigc-desktop"):
        meta.source = "aigc-desktop (A1111 text)"
    size = _SIZE.match(s.get("Size", ""))
    if size:
        meta.width, meta.height = int(size.group(1)), int(size.group(2))
    if s.get("Sampler"):
        meta.sampler = s["Sampler"] + (f" / {s['Schedule type']}" if s.get("Schedule type") else "")
        meta.scheduler, note = a1111_scheduler(s["Sampler"], s.get("Schedule type"))
        meta.note(note or "")
    if "Variation seed" in s and to_float(s.get("Variation seed strength")):
        meta.variation_seed = to_int(s["Variation seed"])
        meta.variation_strength = to_float(s.get("Variation seed strength"))
    hires = any(k.startswith("Hires") for k in s)
    if "Denoising strength" in s and not hires:  # txt2img writes it only for the hires pass
        meta.mode = "inpaint" if ("Mask blur" in s or "Inpaint area" in s) else "img2img"
        meta.strength = to_float(s["Denoising strength"])
        meta.note("init image (not stored in the image)")
    hashes = _hash_list(s.get("Lora hashes", ""))
    extra_hashes = _json_dict(s.get("Hashes", ""))  # Civitai's "Hashes: {...}"
    if not meta.model_hash and isinstance(extra_hashes.get("model"), str):
        meta.model_hash = extra_hashes["model"]
    for lora in loras_in_prompt(prompt):
        lora.hash = hashes.get(lora.name) or extra_hashes.get(f"lora:{lora.name}")
        meta.loras.append(lora)
    _note_a1111_extras(meta, s)
    return meta


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _note_a1111_extras(meta: ImageMetadata, s: dict[str, str]) -> None:
    features = set()
    for key, value in s.items():
        if key in _A1111_QUIET:
            continue
        feature = next((label for prefix, label in _A1111_FEATURES if key.startswith(prefix)), None)
        if feature:
            if feature == "hires fix" and "Hires upscale" in s:
                feature = f"hires fix (x{s['Hires upscale']})"
            features.add(feature)
        elif key == "ENSD" and value.strip() not in ("0", ""):
            meta.note(f"ENSD {value} (A1111 noise seed delta)")
        else:
            meta.extra[key] = value
    for feature in sorted(features):
        meta.note(feature)
    if s.get("RNG") and s["RNG"] != "CPU":
        meta.note(f"{s['RNG']} RNG (A1111 noise differs from ours; the same seed gives another image)")


def parse_fooocus(text: str) -> ImageMetadata | None:
    """Fooocus writes its parameters as JSON (fooocus scheme)."""
    data = _json_dict(text)
    if not data or "prompt" not in data:
        return None
    meta = ImageMetadata(source="Fooocus", prompt=str(data.get("prompt") or ""),
                         negative_prompt=str(data.get("negative_prompt") or ""), seed=to_int(data.get("seed")),
                         steps=to_int(data.get("steps")), cfg_scale=to_float(data.get("guidance_scale")),
                         model_name=data.get("base_model"), model_hash=data.get("base_model_hash"))
    size = re.match(r"\(?\s*(\d+)\s*,\s*(\d+)", str(data.get("resolution", "")))
    if size:
        meta.width, meta.height = int(size.group(1)), int(size.group(2))
    if data.get("sampler"):
        meta.sampler = f"{data['sampler']} / {data.get('scheduler', '')}".rstrip(" /")
        meta.scheduler, note = comfy_scheduler(str(data["sampler"]), data.get("scheduler"))
        meta.note(note or "")
    for item in data.get("loras") or []:
        if isinstance(item, (list, tuple)) and item:
            meta.loras.append(LoraUse(Path(str(item[0])).stem, to_float(item[1]) if len(item) > 1 else None,
                                      str(item[2]) if len(item) > 2 else None))
    if data.get("refiner_model") not in (None, "", "None"):
        meta.note(f"refiner {data['refiner_model']}")
    if data.get("styles") not in (None, "", "[]", []):
        meta.note(f"Fooocus styles {data['styles']}")
    meta.note("Fooocus prompt expansion and sharpness")
    return meta


def parse_parameters(text: str) -> ImageMetadata | None:
    """A `parameters` chunk: A1111 infotext, or Fooocus JSON."""
    if text.lstrip().startswith("{"):
        meta = parse_fooocus(text)
        if meta is not None:
            return meta
    return parse_a1111(text)

# ------------------------------------------------------------------------------------------ InvokeAI

_INVOKE_BASE_FAMILY = {"sd-1": "sd1", "sd-2": "sd2", "sdxl": "sdxl"}


def _invoke_model(value: Any) -> tuple[str | None, str | None, str | None]:
    """(name, hash, base) of InvokeAI's model identifiers: 4.x {name, hash, base}, 3.x {model_name, base_model}."""
    if isinstance(value, str):
        return value, None, None
    if not isinstance(value, dict):
        return None, None, None
    name = value.get("name") or value.get("model_name")
    return name, value.get("hash"), value.get("base") or value.get("base_model")


def parse_invokeai(text: str) -> ImageMetadata | None:
    """InvokeAI 3.x-5.x `invokeai_metadata` JSON (its Core Metadata node)."""
    data = _json_dict(text)
    if not data:
        return None
    meta = ImageMetadata(source="InvokeAI", prompt=data.get("positive_prompt"),
                         negative_prompt=data.get("negative_prompt"), seed=to_int(data.get("seed")),
                         steps=to_int(data.get("steps")), cfg_scale=to_float(data.get("cfg_scale")),
                         width=to_int(data.get("width")), height=to_int(data.get("height")))
    name, model_hash, base = _invoke_model(data.get("model"))
    meta.model_name, meta.model_hash = name, model_hash
    if base:
        meta.family = _INVOKE_BASE_FAMILY.get(base)
        if meta.family is None:
            meta.note(f"{base} model (this app runs SD 1.x, 2.x and SDXL)")
    if data.get("scheduler"):
        meta.sampler = str(data["scheduler"])
        meta.scheduler, note = invoke_scheduler(meta.sampler)
        meta.note(note or "")
    mode = str(data.get("generation_mode") or "")
    for ours in ("txt2img", "img2img", "inpaint", "outpaint"):
        if mode.endswith(ours):
            meta.mode = ours
    if meta.mode in ("img2img", "inpaint", "outpaint"):
        meta.strength = to_float(data.get("strength") if data.get("strength") is not None
                               else data.get("denoising_strength"))
        meta.note("init image (not stored in the image)")
    if to_int(data.get("clip_skip")):  # InvokeAI counts skipped layers: 0 = none = A1111's 1
        meta.clip_skip = to_int(data["clip_skip"]) + 1
    for item in data.get("loras") or []:
        if isinstance(item, dict):
            lname, lhash, _ = _invoke_model(item.get("model") or item.get("lora"))
            if lname:
                meta.loras.append(LoraUse(lname, to_float(item.get("weight")), lhash))
    vae_name, _, _ = _invoke_model(data.get("vae"))
    meta.vae = vae_name
    _note_invoke_extras(meta, data)
    return meta


def _note_invoke_extras(meta: ImageMetadata, data: dict[str, Any]) -> None:
    if data.get("hrf_enabled"):
        meta.note("hires fix")
    if data.get("refiner_model"):
        meta.note(f"refiner {_invoke_model(data['refiner_model'])[0]}")
    for key, label in (("controlnets", "ControlNet"), ("ipAdapters", "IP-Adapter"), ("t2iAdapters", "T2I-Adapter"),
                       ("regions", "regional prompts")):
        if data.get(key):
            meta.note(label)
    if to_float(data.get("cfg_rescale_multiplier")):
        meta.note(f"CFG rescale {data['cfg_rescale_multiplier']}")
    if data.get("seamless_x") or data.get("seamless_y"):
        meta.note("seamless tiling")
    style = data.get("positive_style_prompt")
    if style and style != meta.prompt:
        meta.note("SDXL style prompt")
    if meta.prompt and re.search(r"\)([+-]+|\d*\.?\d+)|\w[+-]+(?=[\s,]|$)|\.(and|blend)\(", meta.prompt):
        meta.note("InvokeAI prompt weights (word+ / .and()) differ from A1111's")


def _split_bracket_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI 2.x put the negative prompt in [square brackets] inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", prompt)
    positive = re.sub(r"\s*\[[^\[\]]*\]\s*", " ", prompt).strip()
    return positive, ", ".join(n.strip() for n in negatives if n.strip())


def parse_invokeai_legacy(chunks: dict[str, str]) -> ImageMetadata | None:
    """InvokeAI 2.x: `sd-metadata` JSON, or the older `Dream` command line."""
    if "sd-metadata" in chunks:
        data = _json_dict(chunks["sd-metadata"])
        image = data.get("image") if isinstance(data.get("image"), dict) else None
        if image is not None:
            prompt = image.get("prompt")
            if isinstance(prompt, list):  # [{"prompt": "...", "weight": 1}]
                prompt = " ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
            positive, negative = _split_bracket_negative(str(prompt or ""))
            meta = ImageMetadata(source="InvokeAI", prompt=positive, negative_prompt=negative,
                                 seed=to_int(image.get("seed")), steps=to_int(image.get("steps")),
                                 cfg_scale=to_float(image.get("cfg_scale")), width=to_int(image.get("width")),
                                 height=to_int(image.get("height")), model_name=data.get("model_weights"),
                                 model_hash=data.get("model_hash"))
            _legacy_sampler(meta, image.get("sampler"))
            if image.get("type") == "img2img":
                meta.mode, meta.strength = "img2img", to_float(image.get("strength"))
            if image.get("hires_fix"):
                meta.note("hires fix")
            if image.get("variations"):
                meta.note("InvokeAI variations")
            return meta
    dream = chunks.get("Dream")
    if dream:
        m = re.match(r'^\s*"(.*?)"(.*)$', dream, re.S)
        if m:
            positive, negative = _split_bracket_negative(m.group(1))
            args = dict(re.findall(r"-(\w)\s*([^\s-][^\s]*)", m.group(2)))
            meta = ImageMetadata(source="InvokeAI", prompt=positive, negative_prompt=negative,
                                 seed=to_int(args.get("S")), steps=to_int(args.get("s")),
                                 cfg_scale=to_float(args.get("C")),
                                 width=to_int(args.get("W")), height=to_int(args.get("H")))
            _legacy_sampler(meta, args.get("A"))
            return meta
    return None


def _legacy_sampler(meta: ImageMetadata, name: Any) -> None:
    if name:
        meta.sampler = str(name)
        meta.scheduler, note = invoke_scheduler(meta.sampler)
        meta.note(note or "")

# ------------------------------------------------------------------------------------------ NovelAI


def parse_novelai(chunks: dict[str, str]) -> ImageMetadata | None:
    """NovelAI: `Comment` JSON (settings), `Description` (prompt), `Source` (model), `Software`."""
    if "Comment" not in chunks or not ("NovelAI" in chunks.get("Software", "") or "Description" in chunks):
        return None
    data = _json_dict(chunks["Comment"])
    if not data:
        return None
    meta = ImageMetadata(source="NovelAI", prompt=chunks.get("Description") or data.get("prompt"),
                         negative_prompt=data.get("uc"), seed=to_int(data.get("seed")), steps=to_int(data.get("steps")),
                         cfg_scale=to_float(data.get("scale")), width=to_int(data.get("width")),
                         height=to_int(data.get("height")))
    if data.get("sampler"):
        schedule = data.get("noise_schedule")
        meta.sampler = f"{data['sampler']} / {schedule}" if schedule else str(data["sampler"])
        meta.scheduler, note = combine_sampler(_NOVELAI_BASES.get(str(data["sampler"])), schedule, meta.sampler)
        meta.note(note or "")
    if chunks.get("Source"):
        meta.model_name = chunks["Source"]
        meta.note(f"model {chunks['Source']} (NovelAI's models run only on NovelAI)")
    if to_float(data.get("strength")) is not None and data.get("request_type") == "Img2ImgRequest":
        meta.mode, meta.strength = "img2img", to_float(data["strength"])
    if data.get("sm") or data.get("sm_dyn"):
        meta.note("SMEA")
    if to_float(data.get("cfg_rescale")):
        meta.note(f"CFG rescale {data['cfg_rescale']}")
    meta.note("NovelAI prompt weights ({word} / [word]) differ from A1111's")
    return meta
