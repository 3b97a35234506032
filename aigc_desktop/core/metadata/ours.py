"""Our own records: the JSON the app writes beside A1111's text, read back exactly and turned into a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigc_desktop.core.errors import InvalidParameter, UserError
from aigc_desktop.core.metadata.types import IMAGE_MODES, ImageMetadata, LoraUse, to_float, to_int
from aigc_desktop.core.params import MAX_SEED, SCHEDULERS, shown

# Record keys that are bookkeeping or derived, not settings (left out of other engines' A1111 text).
INTERNAL_KEYS = {"app", "app_version", "engine", "model", "device", "dtype", "base_seed", "batch_index",
                 "width", "height", "seed", "prompt", "negative_prompt", "z", "mix_layer_indices"}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def metadata_from_record(record: dict[str, Any]) -> ImageMetadata:
    """ImageMetadata for one of our records (exact: names and values are already ours)."""
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    engine = (_text(record.get("engine")) or "diffusion")[:40]
    scheduler = record.get("scheduler") if isinstance(record.get("scheduler"), str) and \
        record.get("scheduler") in SCHEDULERS else None
    mode = _text(record.get("mode"))
    meta = ImageMetadata(
        source="aigc-desktop", engine=engine, record=record,
        prompt=_text(record.get("prompt")), negative_prompt=_text(record.get("negative_prompt")),
        seed=to_int(record.get("seed")), steps=to_int(record.get("steps")), cfg_scale=to_float(record.get("cfg_scale")),
        width=to_int(record.get("width")), height=to_int(record.get("height")),
        scheduler=scheduler, sampler=SCHEDULERS.get(scheduler) if scheduler else None,
        model_name=_text(model.get("name")), model_hash=_text(model.get("sha256")), family=_text(model.get("family")),
        vae=Path(model["vae"]).name if isinstance(model.get("vae"), str) and model["vae"] else None,
        mode=mode,
        strength=to_float(record.get("strength")) if mode in IMAGE_MODES else None,
        variation_seed=to_int(record.get("variation_seed")),
        variation_strength=to_float(record.get("variation_strength")),
        clip_skip=to_int(record.get("clip_skip")),
    )
    loras = record.get("loras")
    for lora in loras if isinstance(loras, list) else []:
        if isinstance(lora, dict):
            name = _text(lora.get("name")) or Path(_text(lora.get("path")) or "lora").stem
            meta.loras.append(LoraUse(name, to_float(lora.get("weight")), _text(lora.get("sha256")),
                                      _text(lora.get("path"))))
    if record.get("scheduler") and scheduler is None:
        meta.note(f"sampler {shown(record['scheduler'], 100)}")
    if engine != "diffusion":
        meta.extra = {k: v for k, v in record.items() if k not in INTERNAL_KEYS}
    return meta


def _input_image(record: dict[str, Any], key: str, given: str | bytes | None) -> str | bytes | None:
    """An init image / mask for regeneration: the one given (checked against the recorded SHA-256), or a
    path the record holds; raises UserError naming the file when it is needed and missing or different."""
    import hashlib

    from aigc_desktop.core.safe_io import read_bytes

    entry = record.get(key)
    if given is None:
        if isinstance(entry, str) and entry and not entry.startswith("<"):
            return entry
        if entry is None:
            return None
        name = entry.get("file") if isinstance(entry, dict) else None
        sha = entry.get("sha256", "") if isinstance(entry, dict) else ""
        what = "init image" if key == "init_image" else key
        raise UserError(f"Regenerating this image needs its {what}" + (f" {name}" if name else "")
                        + (f" (SHA-256 {str(sha)[:10]})" if sha else ""))
    if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
        data = given if isinstance(given, (bytes, bytearray)) else read_bytes(Path(given).expanduser(), 1 << 30,
                                                                             key.replace("_", " "))
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise UserError(f"This {key.replace('_', ' ')} is not the one the image was made from "
                            f"({entry.get('file') or 'SHA-256 ' + entry['sha256'][:10]})")
    return given


RECORD = "the image's record"  # how errors name what was read


def _optional_text(model: dict[str, Any], key: str) -> str | None:
    value = model.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise InvalidParameter(f"{RECORD}: model {key} must be text, got {type(value).__name__} {shown(value)}")


def _model_ref(record: dict[str, Any]):
    from aigc_desktop.core.jobs import ModelRef

    model = record.get("model")
    if model is None:
        model = {}
    if not isinstance(model, dict):
        raise InvalidParameter(f"{RECORD}: model must be an object, got {type(model).__name__} {shown(model)}")
    path = model.get("path")
    if not path:
        raise UserError("The image's record does not name its model file")
    if not isinstance(path, str):
        raise InvalidParameter(f"{RECORD}: model path must be text, got {type(path).__name__} {shown(path)}")
    return ModelRef(path=path, kind=_optional_text(model, "kind") or "diffusers", family=_optional_text(model, "family"),
                    vae=_optional_text(model, "vae"), prediction_type=_optional_text(model, "prediction_type"))


def _record_loras(record: dict[str, Any], prompt: str) -> list[dict[str, Any]]:
    """The LoRAs given outside the prompt, as {"path", "weight"} entries for params_from_record to check."""
    loras = record.get("loras")
    if loras is None:
        return []
    if not isinstance(loras, list):
        raise InvalidParameter(f"{RECORD}: loras must be a list, got {type(loras).__name__} {shown(loras)}")
    out = []
    for lora in loras[:65]:
        if not isinstance(lora, dict) or not lora.get("path") or lora.get("source") == "prompt":
            continue
        path = lora["path"]
        name = lora.get("name") if isinstance(lora.get("name"), str) and lora.get("name") else \
            Path(path).stem if isinstance(path, str) else ""
        if lora.get("source") is None and name and f"<lora:{name}" in prompt:
            continue  # the prompt's own tag brings it back
        out.append({"path": path, "weight": lora.get("weight", 1.0)})
    return out


def record_to_params(record: dict[str, Any], init_image: str | bytes | None = None,
                     mask: str | bytes | None = None):
    """(ModelRef, GenerationParams) that regenerate the image of this record exactly.

    The model is the file the record names (check its SHA-256 against record["model"]["sha256"]); the
    params make that one image: its own seed (and variation seed), batch of one. LoRAs written in the
    prompt stay there; LoRAs given outside it (UI list, CLI --lora) come back as LoraRefs. Images of
    img2img / inpainting need their input images, which the record names by file and SHA-256 only.

    The record comes from a file, so every value is checked (core.params.params_from_record): a wrong type,
    NaN, a huge number or a dict where text belongs is one InvalidParameter line naming the field.
    """
    from aigc_desktop.core.params import GenerationParams, params_from_record

    if not isinstance(record, dict):
        raise InvalidParameter(f"{RECORD} is not a JSON object (found {type(record).__name__})")
    engine = record.get("engine", "diffusion")
    if engine != "diffusion":
        raise UserError(f"This image was made with the {shown(engine, 40)} engine, not by diffusion")
    ref = _model_ref(record)
    seed = record.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidParameter(f"{RECORD}: seed must be a whole number between 0 and {MAX_SEED}, got {shown(seed)}")
    prompt = record.get("prompt") if isinstance(record.get("prompt"), str) else ""
    values = {k: v for k, v in record.items() if k not in ("batch_size", "batch_count", "loras")}
    values["loras"] = _record_loras(record, prompt)
    mode = record.get("mode") if isinstance(record.get("mode"), str) else None
    base = GenerationParams(
        init_image=_input_image(record, "init_image", init_image) if mode in IMAGE_MODES else None,
        mask=_input_image(record, "mask", mask) if mode == "inpaint" else None)
    return ref, params_from_record(values, base=base, source=RECORD)


def record_to_job(record: dict[str, Any], init_image: str | bytes | None = None, mask: str | bytes | None = None,
                  exact_device: bool = False):
    """A DiffusionJob that regenerates the record's image (on its own device and dtype if `exact_device`)."""
    from aigc_desktop.core.jobs import DiffusionJob

    ref, params = record_to_params(record, init_image, mask)
    device, dtype = ("auto", "auto")
    if exact_device:
        device, dtype = (record.get(key) or "auto" for key in ("device", "dtype"))
        for key, value in (("device", device), ("dtype", dtype)):
            if not isinstance(value, str) or len(value) > 40:
                raise InvalidParameter(f"{RECORD}: {key} must be a device name, got {shown(value)}")
    return DiffusionJob(model=ref, params=params, device=device, dtype=dtype)
