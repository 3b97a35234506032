"""Writing metadata: A1111's `parameters` text plus our full JSON record, in every PNG the app saves.

- `parameters`: A1111's infotext (prompt; `Negative prompt: ...`; one `Key: value, ...` line), which
  A1111, Forge, SD.Next, Civitai, sd-parsers and most image viewers read;
- `aigc_desktop`: the record as JSON, from which the image regenerates exactly (`ours.record_to_params`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aigc_desktop import __version__
from aigc_desktop.core.metadata.ours import INTERNAL_KEYS
from aigc_desktop.core.metadata.samplers import a1111_sampler
from aigc_desktop.core.metadata.types import IMAGE_MODES, OUR_KEY, num

# Display names of settings of other engines (StyleGAN); anything else is shown as "Key name".
_LABELS = {"psi": "Truncation psi", "truncation_psi": "Truncation psi", "noise_mode": "Noise mode",
           "mixing": "Style mixing", "style_mixing": "Style mixing", "mix_seed": "Style mixing seed",
           "mix_layers": "Style mixing layers", "class_idx": "Class", "steps": "Steps"}


def _quote(value: Any) -> str:
    """A1111's rule: a value with a comma, colon or newline is written as a JSON string."""
    text = num(value)
    if any(c in text for c in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _storable(text: str) -> str:
    """Text a PNG chunk can hold: lone surrogates (broken pastes) and NULs cannot be encoded."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\0", "")


def _file_hash(path: str | None, short) -> str | None:
    """A short hash of an auxiliary file (LoRA, VAE) for the A1111 text; cached, so cheap after the first."""
    if not path or not os.path.isfile(path):
        return None
    try:
        return short(path)
    except (OSError, ValueError):
        return None


def _lora_fields(record: dict[str, Any], prompt: str) -> tuple[str, list[tuple[str, Any]]]:
    """The prompt with `<lora:...>` tags for LoRAs given outside it (so A1111 applies them too), and the
    "Lora hashes" pair."""
    from aigc_desktop.core import hashing

    loras = [l for l in (record.get("loras") or []) if isinstance(l, dict)]
    if not loras:
        return prompt, []
    tags, hashes = [], []
    for lora in loras:
        name = str(lora.get("name") or Path(str(lora.get("path", "lora"))).stem)
        if f"<lora:{name}" not in prompt:
            tags.append(f"<lora:{name}:{num(lora.get('weight', 1.0))}>")
        short = (lora.get("a1111_hash") or _file_hash(lora.get("path"), hashing.lora_short_hash)
                 or str(lora.get("sha256") or "")[:12])
        if short:
            hashes.append(f"{name}: {short}")
    if tags:
        prompt = (prompt + " " if prompt else "") + " ".join(tags)
    return prompt, ([("Lora hashes", ", ".join(hashes))] if hashes else [])


def _diffusion_pairs(record: dict[str, Any]) -> list[tuple[str, Any]]:
    from aigc_desktop.core import hashing

    sampler, schedule = a1111_sampler(str(record.get("scheduler", "")))
    model = record.get("model") or {}
    pairs: list[tuple[str, Any]] = [
        ("Steps", record.get("steps")), ("Sampler", sampler), ("Schedule type", schedule),
        ("CFG scale", record.get("cfg_scale")), ("Seed", record.get("seed")),
        ("Size", f"{record.get('width')}x{record.get('height')}"),
        ("Model hash", str(model["sha256"])[:10] if model.get("sha256") else None),
        ("Model", model.get("name")),
    ]
    vae = model.get("vae")
    if vae:
        pairs += [("VAE hash", _file_hash(vae, lambda p: hashing.sha256_file(p)[:10])), ("VAE", Path(vae).name)]
    if record.get("mode") in IMAGE_MODES:
        pairs.append(("Denoising strength", record.get("strength")))
    if record.get("mode") == "inpaint":
        pairs.append(("Mask blur", record.get("mask_blur")))
        if record.get("inpaint_only_masked"):
            pairs += [("Inpaint area", "Only masked"), ("Masked area padding", record.get("inpaint_padding"))]
    if record.get("variation_seed") is not None and record.get("variation_strength"):
        pairs += [("Variation seed", record["variation_seed"]),
                  ("Variation seed strength", record["variation_strength"])]
    if (record.get("clip_skip") or 1) > 1:
        pairs.append(("Clip skip", record["clip_skip"]))
    embeddings = [e for e in (record.get("embeddings") or []) if isinstance(e, dict) and e.get("sha256")]
    if embeddings:
        pairs.append(("TI hashes", ", ".join(f"{e.get('name')}: {str(e['sha256'])[:12]}" for e in embeddings)))
    return pairs


def _other_engine_pairs(record: dict[str, Any]) -> list[tuple[str, Any]]:
    model = record.get("model") or {}
    pairs: list[tuple[str, Any]] = [("Seed", record.get("seed"))]
    if record.get("width") and record.get("height"):
        pairs.append(("Size", f"{record['width']}x{record['height']}"))
    if model.get("sha256"):
        pairs.append(("Model hash", str(model["sha256"])[:10]))
    if model.get("name"):
        pairs.append(("Model", model["name"]))
    for key, value in record.items():
        if key in INTERNAL_KEYS or value is None or value == "" or value == []:
            continue
        if key in ("rotate", "translate") and not any(value if isinstance(value, list) else [value]):
            continue  # StyleGAN3's default pose
        label = _LABELS.get(key, key.replace("_", " ").capitalize())
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        pairs.append((label, value))
    pairs.append(("Engine", {"stylegan": "StyleGAN"}.get(str(record.get("engine")), record.get("engine"))))
    return pairs


def a1111_parameters(record: dict[str, Any]) -> str:
    """The A1111 `parameters` text for one image record."""
    prompt = str(record.get("prompt") or "")
    engine = record.get("engine", "diffusion")
    if engine == "diffusion":
        prompt, lora_pairs = _lora_fields(record, prompt)
        pairs = _diffusion_pairs(record) + lora_pairs
    else:
        pairs = _other_engine_pairs(record)
    pairs.append(("Version", f"aigc-desktop {record.get('app_version', __version__)}"))
    text = prompt
    if record.get("negative_prompt"):
        text += f"\nNegative prompt: {record['negative_prompt']}"
    text += "\n" + ", ".join(f"{k}: {_quote(v)}" for k, v in pairs if v is not None)
    return _storable(text.strip())  # A1111 strips too: no prompt -> the settings line alone


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def record_json(record: dict[str, Any]) -> str:
    """Our chunk: the record as ASCII JSON (any text survives, and the chunk stays a plain tEXt)."""
    return json.dumps(record, ensure_ascii=True, sort_keys=True, default=_json_default)


def pnginfo(record: dict[str, Any]):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    # Pillow writes tEXt (Latin-1) when it can and switches to iTXt (UTF-8) for any other text.
    info.add_text("parameters", a1111_parameters(record))
    info.add_text(OUR_KEY, record_json(record))
    return info


def save_png(image, path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write a PNG with both metadata chunks, atomically (a crash never leaves half a file)."""
    # Pillow writes to a path here (core.files.atomic_path, not a handle): image objects that save only to
    # paths are accepted too.
    from aigc_desktop.core.files import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=pnginfo(record))
    return path
