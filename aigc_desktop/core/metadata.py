"""PNG metadata: write A1111's `parameters` text plus our full JSON record; read them back.

A record is the plain dict an engine returns for each image (see engines for the keys). Our JSON chunk
(`aigc_desktop`) holds it whole, so an image regenerates exactly; the A1111 text is what other tools read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aigc_desktop import __version__
from aigc_desktop.core.params import SCHEDULERS

OUR_KEY = "aigc_desktop"


def _quote(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ',:"\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def a1111_sampler(scheduler: str) -> tuple[str, str]:
    """(Sampler, Schedule type) as A1111 1.9+ writes them."""
    shown = SCHEDULERS.get(scheduler, scheduler)
    if shown.endswith(" Karras"):
        return shown[: -len(" Karras")], "Karras"
    return shown, "Automatic"


def a1111_parameters(record: dict[str, Any]) -> str:
    """The A1111 `parameters` text for one image record."""
    lines = [record.get("prompt", "")]
    if record.get("negative_prompt"):
        lines.append(f"Negative prompt: {record['negative_prompt']}")
    pairs: list[tuple[str, Any]] = []
    if record.get("engine", "diffusion") == "diffusion":
        sampler, schedule = a1111_sampler(record.get("scheduler", ""))
        pairs += [("Steps", record.get("steps")), ("Sampler", sampler), ("Schedule type", schedule),
                  ("CFG scale", record.get("cfg_scale")), ("Seed", record.get("seed")),
                  ("Size", f"{record.get('width')}x{record.get('height')}")]
        model = record.get("model") or {}
        if model.get("sha256"):
            pairs.append(("Model hash", model["sha256"][:10]))
        if model.get("name"):
            pairs.append(("Model", model["name"]))
        if record.get("mode") in ("img2img", "inpaint", "outpaint"):
            pairs.append(("Denoising strength", record.get("strength")))
        if record.get("variation_seed") is not None and record.get("variation_strength"):
            pairs += [("Variation seed", record["variation_seed"]),
                      ("Variation seed strength", record["variation_strength"])]
        if record.get("clip_skip", 1) > 1:
            pairs.append(("Clip skip", record["clip_skip"]))
        loras = record.get("loras") or []
        if loras:
            hashes = ", ".join(f"{l['name']}: {str(l.get('sha256', ''))[:12]}" for l in loras)
            pairs.append(("Lora hashes", hashes))
    else:
        pairs += [("Seed", record.get("seed")), ("Size", f"{record.get('width')}x{record.get('height')}")]
        model = record.get("model") or {}
        if model.get("name"):
            pairs.append(("Model", model["name"]))
    pairs.append(("Version", f"aigc-desktop {record.get('app_version', __version__)}"))
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs if v is not None))
    return "\n".join(lines)


def pnginfo(record: dict[str, Any]):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", a1111_parameters(record))
    info.add_text(OUR_KEY, json.dumps(record, ensure_ascii=False, sort_keys=True))
    return info


def save_png(image, path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a PNG with both metadata chunks, atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG", pnginfo=pnginfo(record))
    os.replace(tmp, path)
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """Our JSON record from a PNG made by this app, or None."""
    from PIL import Image

    with Image.open(path) as im:
        text = im.info.get(OUR_KEY)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
