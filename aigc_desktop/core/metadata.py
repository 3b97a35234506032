"""Image metadata: write A1111's `parameters` text plus our full JSON record; read any tool's back.

A record is the plain dict an engine returns for each image (see DiffusionEngine.record). Every PNG the
app saves holds two text chunks:

- `parameters`: A1111's infotext (prompt; `Negative prompt: ...`; one `Key: value, ...` line), which
  A1111, Forge, SD.Next, Civitai, sd-parsers and most image viewers read;
- `aigc_desktop`: the record as JSON, from which the image regenerates exactly (`record_to_params`).

Reading (`read_image_metadata`) understands PNGs from this app, A1111 (also JPEG/WebP EXIF UserComment),
ComfyUI, InvokeAI (3.x-5.x and 2.x), NovelAI and Fooocus, and returns one `ImageMetadata`: what can be
restored in our terms, plus `not_restored`, the settings found that have no equivalent here.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigc_desktop import __version__
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import SCHEDULERS

OUR_KEY = "aigc_desktop"
IMAGE_MODES = ("img2img", "inpaint", "outpaint")

# Our scheduler -> (A1111 "Sampler", "Schedule type"), as A1111 1.9+ writes them. "Automatic" means the
# sampler's own default, which for DPM++ 2M / DPM++ SDE became Karras in 1.9, so plain dpmpp_2m says Uniform.
A1111_SAMPLERS: dict[str, tuple[str, str]] = {
    "euler": ("Euler", "Automatic"),
    "euler_a": ("Euler a", "Automatic"),
    "dpmpp_2m": ("DPM++ 2M", "Uniform"),
    "dpmpp_2m_karras": ("DPM++ 2M", "Karras"),
    "dpmpp_sde_karras": ("DPM++ SDE", "Karras"),
    "ddim": ("DDIM", "Automatic"),
    "unipc": ("UniPC", "Automatic"),
    "lms": ("LMS", "Automatic"),
    "heun": ("Heun", "Automatic"),
    "lcm": ("LCM", "Automatic"),
}
assert set(A1111_SAMPLERS) == set(SCHEDULERS)

# Record keys that are bookkeeping or derived, not settings (left out of other engines' A1111 text).
_INTERNAL_KEYS = {"app", "app_version", "engine", "model", "device", "dtype", "base_seed", "batch_index",
                  "width", "height", "seed", "prompt", "negative_prompt", "z", "mix_layer_indices"}
# Display names of settings of other engines (StyleGAN); anything else is shown as "Key name".
_LABELS = {"psi": "Truncation psi", "truncation_psi": "Truncation psi", "noise_mode": "Noise mode",
           "mixing": "Style mixing", "style_mixing": "Style mixing", "mix_seed": "Style mixing seed",
           "mix_layers": "Style mixing layers", "class_idx": "Class", "steps": "Steps"}


class UnreadableImage(UserError):
    """A file that is missing or is not an image we can read metadata from."""


# ------------------------------------------------------------------------------------------ writing


def _num(value: Any) -> str:
    """A number as A1111 writes it: 7 not 7.0, 0.75 as is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _quote(value: Any) -> str:
    """A1111's rule: a value with a comma, colon or newline is written as a JSON string."""
    text = _num(value)
    if any(c in text for c in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _storable(text: str) -> str:
    """Text a PNG chunk can hold: lone surrogates (broken pastes) and NULs cannot be encoded."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\0", "")


def a1111_sampler(scheduler: str) -> tuple[str, str]:
    """(Sampler, Schedule type) for one of our scheduler names, as A1111 1.9+ writes them."""
    return A1111_SAMPLERS.get(scheduler, (SCHEDULERS.get(scheduler, scheduler), "Automatic"))


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
            tags.append(f"<lora:{name}:{_num(lora.get('weight', 1.0))}>")
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
        if key in _INTERNAL_KEYS or value is None or value == "" or value == []:
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        image.save(tmp, format="PNG", pnginfo=pnginfo(record))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ------------------------------------------------------------------------------------------ reading


@dataclass
class LoraUse:
    name: str
    weight: float | None = None
    hash: str | None = None
    path: str | None = None


@dataclass
class ImageMetadata:
    """What an image says about how it was made, in our terms. None = not found in the image."""

    source: str = ""  # aigc-desktop | A1111 | ComfyUI | InvokeAI | NovelAI | Fooocus | "" (nothing found)
    engine: str = "diffusion"
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    scheduler: str | None = None  # ours (a key of SCHEDULERS) when the tool's sampler maps to one
    sampler: str | None = None  # as the tool wrote it ("DPM++ 2M / Karras", "dpmpp_2m / karras")
    model_name: str | None = None
    model_hash: str | None = None
    family: str | None = None  # sd1 | sd2 | sdxl when the tool says
    vae: str | None = None
    loras: list[LoraUse] = field(default_factory=list)
    mode: str | None = None  # txt2img | img2img | inpaint | outpaint
    strength: float | None = None
    variation_seed: int | None = None
    variation_strength: float | None = None
    clip_skip: int | None = None
    not_restored: list[str] = field(default_factory=list)  # settings found that have no equivalent here
    extra: dict[str, Any] = field(default_factory=dict)  # other values found, for display
    record: dict[str, Any] | None = None  # our full record (images made by this app)
    file_format: str = ""
    image_size: tuple[int, int] | None = None

    @property
    def found(self) -> bool:
        return bool(self.source)

    def note(self, text: str) -> None:
        if text and text not in self.not_restored:
            self.not_restored.append(text)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["found"] = self.found
        if self.image_size is not None:
            out["image_size"] = list(self.image_size)
        return out


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TEXT = 32 << 20  # refuse to inflate text chunks past 32 MB (a zip bomb must not eat the memory)


def _inflate(data: bytes) -> bytes | None:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, _MAX_TEXT)
    except zlib.error:
        return None
    return None if d.unconsumed_tail else out


def _png_text(path: Path) -> tuple[dict[str, str], tuple[int, int] | None]:
    """Every tEXt / zTXt / iTXt chunk of a PNG, read chunk by chunk without decoding pixels (so text after
    the image data is found, and a truncated file still gives what it has)."""
    chunks: dict[str, str] = {}
    size = None
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIGNATURE:
            raise UnreadableImage(f"{path.name} is not a PNG file")
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind not in (b"tEXt", b"zTXt", b"iTXt", b"IHDR") or length > _MAX_TEXT:
                fh.seek(length + 4, os.SEEK_CUR)
                continue
            data = fh.read(length)
            fh.seek(4, os.SEEK_CUR)  # CRC
            if len(data) < length:
                break
            if kind == b"IHDR" and length >= 8:
                size = struct.unpack(">II", data[:8])
                continue
            key, _, rest = data.partition(b"\0")
            value = _decode_text_chunk(kind, rest)
            if value is not None:
                chunks[key.decode("latin-1")] = value
    return chunks, size


def _decode_text_chunk(kind: bytes, rest: bytes) -> str | None:
    if kind == b"tEXt":
        return rest.decode("latin-1")
    if kind == b"zTXt":
        raw = _inflate(rest[1:])
        return None if raw is None else raw.decode("latin-1")
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return None
    compressed = rest[0] == 1
    _, _, tail = rest[2:].partition(b"\0")
    _, _, text = tail.partition(b"\0")
    if compressed:
        text = _inflate(text)
        if text is None:
            return None
    return text.decode("utf-8", "replace")


def decode_user_comment(raw: bytes | str) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text (A1111 writes UNICODE = UTF-16)."""
    if isinstance(raw, str):
        return raw.rstrip("\0")
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = body.decode("utf-16", "replace")
        else:  # no BOM: the zero high bytes of ASCII tell the byte order
            even_zeros = body[0::2].count(0)
            odd_zeros = body[1::2].count(0)
            text = body.decode("utf-16-be" if even_zeros >= odd_zeros else "utf-16-le", "replace")
    elif prefix.startswith(b"ASCII"):
        text = body.decode("latin-1")
    else:
        text = (body if prefix == b"\0" * 8 else raw).decode("utf-8", "replace")
    return text.rstrip("\0")


def _pillow_text(path: Path) -> tuple[dict[str, str], tuple[int, int] | None, str]:
    """Metadata text of JPEG / WebP / other images: EXIF UserComment (A1111), ComfyUI's EXIF entries,
    comments and Pillow's info strings."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            fmt = im.format or ""
            size = im.size
            info = dict(im.info)
            exif = im.getexif()
            exif_ifd = exif.get_ifd(0x8769)
    except Image.DecompressionBombError:
        raise UnreadableImage(f"{path.name} is too large to open safely") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"{path.name} is not an image this app can read ({type(exc).__name__})") from None
    chunks: dict[str, str] = {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str)}
    comment = exif_ifd.get(0x9286)
    if comment:
        text = decode_user_comment(comment)
        if text.strip():
            chunks.setdefault("parameters", text)
    # ComfyUI's WebP / animated saves: "prompt:{json}" / "workflow:{json}" in Model, Make, ImageDescription.
    for tag in (0x010E, 0x010F, 0x0110):
        value = exif.get(tag)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            key, sep, rest = value.partition(":")
            if sep and key in ("prompt", "workflow"):
                chunks.setdefault(key, rest)
    raw_comment = info.get("comment")
    if isinstance(raw_comment, bytes) and raw_comment.strip():
        chunks.setdefault("parameters" if b"Steps:" in raw_comment else "comment",
                          raw_comment.decode("utf-8", "replace"))
    return chunks, size, fmt


def read_text_chunks(path: str | os.PathLike) -> tuple[dict[str, str], tuple[int, int] | None, str]:
    """(metadata texts by key, image size, format) of an image file; raises UnreadableImage."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UnreadableImage(f"No such file: {path}")
    if p.is_dir():
        raise UnreadableImage(f"{path} is a folder, not an image")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UnreadableImage(f"Cannot read {p.name}: {exc.strerror or exc}") from None
    if head == _PNG_SIGNATURE:
        try:
            chunks, size = _png_text(p)
        except OSError as exc:
            raise UnreadableImage(f"Cannot read {p.name}: {exc.strerror or exc}") from None
        return chunks, size, "PNG"
    return _pillow_text(p)


def metadata_from_chunks(chunks: dict[str, str]) -> ImageMetadata:
    """Pick the reader for whichever tool's keys the image carries (ours first)."""
    from aigc_desktop.core import metadata_readers as readers

    if OUR_KEY in chunks:
        record = _json_object(chunks[OUR_KEY])
        if record is not None:
            return metadata_from_record(record)
    if "invokeai_metadata" in chunks:
        meta = readers.parse_invokeai(chunks["invokeai_metadata"])
        if meta is not None:
            return meta
    graph_keys = [k for k in ("prompt", "workflow") if k in chunks]
    params = chunks.get("parameters")
    if params is not None:
        meta = readers.parse_parameters(params)
        if meta is not None:
            if graph_keys and meta.source == "A1111":
                meta.source = "ComfyUI"  # a ComfyUI save node that also writes A1111 text
            return meta
    if graph_keys:
        from aigc_desktop.core.metadata_comfy import parse_comfyui

        meta = parse_comfyui(chunks.get("prompt"), chunks.get("workflow"))
        if meta is not None:
            return meta
    for reader in (readers.parse_invokeai_legacy, readers.parse_novelai):
        meta = reader(chunks)
        if meta is not None:
            return meta
    return ImageMetadata()


def read_image_metadata(path: str | os.PathLike) -> ImageMetadata:
    """Everything restorable from an image made by this app, A1111, ComfyUI, InvokeAI, NovelAI or Fooocus.

    Raises UnreadableImage (one line) for a missing file or one that is not an image. An image without
    generation metadata gives an ImageMetadata whose `found` is False.
    """
    chunks, size, fmt = read_text_chunks(path)
    meta = metadata_from_chunks(chunks)
    meta.file_format = fmt
    meta.image_size = tuple(size) if size else None
    return meta


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """Our JSON record from an image made by this app, or None."""
    try:
        chunks, _, _ = read_text_chunks(path)
    except UnreadableImage:
        return None
    text = chunks.get(OUR_KEY)
    return _json_object(text) if text else None


# ------------------------------------------------------------------------------------------ our records


def to_int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def to_float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def metadata_from_record(record: dict[str, Any]) -> ImageMetadata:
    """ImageMetadata for one of our records (exact: names and values are already ours)."""
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    engine = str(record.get("engine") or "diffusion")
    scheduler = record.get("scheduler") if record.get("scheduler") in SCHEDULERS else None
    meta = ImageMetadata(
        source="aigc-desktop", engine=engine, record=record,
        prompt=record.get("prompt") if isinstance(record.get("prompt"), str) else None,
        negative_prompt=record.get("negative_prompt") if isinstance(record.get("negative_prompt"), str) else None,
        seed=to_int(record.get("seed")), steps=to_int(record.get("steps")), cfg_scale=to_float(record.get("cfg_scale")),
        width=to_int(record.get("width")), height=to_int(record.get("height")),
        scheduler=scheduler, sampler=SCHEDULERS.get(scheduler) if scheduler else None,
        model_name=model.get("name"), model_hash=model.get("sha256"), family=model.get("family"),
        vae=Path(model["vae"]).name if model.get("vae") else None,
        mode=record.get("mode"),
        strength=to_float(record.get("strength")) if record.get("mode") in IMAGE_MODES else None,
        variation_seed=to_int(record.get("variation_seed")),
        variation_strength=to_float(record.get("variation_strength")),
        clip_skip=to_int(record.get("clip_skip")),
    )
    for lora in record.get("loras") or []:
        if isinstance(lora, dict):
            name = str(lora.get("name") or Path(str(lora.get("path", "lora"))).stem)
            meta.loras.append(LoraUse(name, to_float(lora.get("weight")), lora.get("sha256"), lora.get("path")))
    if record.get("scheduler") and scheduler is None:
        meta.note(f"sampler '{record['scheduler']}'")
    if engine != "diffusion":
        meta.extra = {k: v for k, v in record.items() if k not in _INTERNAL_KEYS}
    return meta


def _input_image(record: dict[str, Any], key: str, given: str | bytes | None) -> str | bytes | None:
    """An init image / mask for regeneration: the one given (checked against the recorded SHA-256), or a
    path the record holds; raises UserError naming the file when it is needed and missing or different."""
    import hashlib

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
                        + (f" (SHA-256 {sha[:10]})" if sha else ""))
    if isinstance(entry, dict) and entry.get("sha256"):
        data = given if isinstance(given, (bytes, bytearray)) else Path(given).expanduser().read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise UserError(f"This {key.replace('_', ' ')} is not the one the image was made from "
                            f"({entry.get('file') or 'SHA-256 ' + entry['sha256'][:10]})")
    return given


def record_to_params(record: dict[str, Any], init_image: str | bytes | None = None,
                     mask: str | bytes | None = None):
    """(ModelRef, GenerationParams) that regenerate the image of this record exactly.

    The model is the file the record names (check its SHA-256 against record["model"]["sha256"]); the
    params make that one image: its own seed (and variation seed), batch of one. LoRAs written in the
    prompt stay there; LoRAs given outside it (UI list, CLI --lora) come back as LoraRefs. Images of
    img2img / inpainting need their input images, which the record names by file and SHA-256 only.
    """
    from dataclasses import fields as dc_fields

    from aigc_desktop.core.jobs import ModelRef
    from aigc_desktop.core.params import GenerationParams, LoraRef

    if record.get("engine", "diffusion") != "diffusion":
        raise UserError(f"This image was made with the {record.get('engine')} engine, not by diffusion")
    model = record.get("model") or {}
    if not model.get("path"):
        raise UserError("The image's record does not name its model file")
    ref = ModelRef(path=str(model["path"]), kind=str(model.get("kind") or "diffusers"), family=model.get("family"),
                   vae=model.get("vae"), prediction_type=model.get("prediction_type"))
    prompt = str(record.get("prompt") or "")
    loras = []
    for lora in record.get("loras") or []:
        if not isinstance(lora, dict) or not lora.get("path") or lora.get("source") == "prompt":
            continue
        name = str(lora.get("name") or Path(str(lora["path"])).stem)
        if lora.get("source") is None and f"<lora:{name}" in prompt:
            continue  # the prompt's own tag brings it back
        loras.append(LoraRef(str(lora["path"]), float(lora.get("weight", 1.0))))
    known = {f.name for f in dc_fields(GenerationParams)} - {"init_image", "mask", "loras", "extra"}
    values: dict[str, Any] = {k: record[k] for k in known if k in record and record[k] is not None}
    values.update(seed=int(record["seed"]), batch_size=1, batch_count=1, loras=tuple(loras))
    if isinstance(values.get("outpaint"), list):
        values["outpaint"] = tuple(values["outpaint"])
    if record.get("mode") in IMAGE_MODES:
        values["init_image"] = _input_image(record, "init_image", init_image)
    if record.get("mode") == "inpaint":
        values["mask"] = _input_image(record, "mask", mask)
    return ref, GenerationParams(**values)


def record_to_job(record: dict[str, Any], init_image: str | bytes | None = None, mask: str | bytes | None = None,
                  exact_device: bool = False):
    """A DiffusionJob that regenerates the record's image (on its own device and dtype if `exact_device`)."""
    from aigc_desktop.core.jobs import DiffusionJob

    ref, params = record_to_params(record, init_image, mask)
    device, dtype = ("auto", "auto")
    if exact_device:
        device = str(record.get("device") or "auto")
        dtype = str(record.get("dtype") or "auto")
    return DiffusionJob(model=ref, params=params, device=device, dtype=dtype)


# ------------------------------------------------------------------------------------------ display


def describe(meta: ImageMetadata) -> list[str]:
    """Human-readable lines for `aigc-desktop info` and tooltips."""
    lines = []
    if not meta.found:
        return ["No generation parameters found."]
    lines.append(f"Source:     {meta.source}" + (f" ({meta.engine} engine)" if meta.engine != "diffusion" else ""))
    if meta.prompt is not None:
        lines.append(f"Prompt:     {meta.prompt}")
    if meta.negative_prompt:
        lines.append(f"Negative:   {meta.negative_prompt}")
    settings = []
    for label, value in (("Seed", meta.seed), ("Steps", meta.steps), ("CFG scale", meta.cfg_scale)):
        if value is not None:
            settings.append(f"{label} {_num(value)}")
    if meta.width and meta.height:
        settings.append(f"Size {meta.width}x{meta.height}")
    if settings:
        lines.append("Settings:   " + ", ".join(settings))
    if meta.sampler or meta.scheduler:
        mapped = f" -> {meta.scheduler}" if meta.scheduler else " (no equivalent here)"
        lines.append(f"Sampler:    {meta.sampler or meta.scheduler}{mapped}")
    if meta.mode and meta.mode != "txt2img":
        strength = f", strength {_num(meta.strength)}" if meta.strength is not None else ""
        lines.append(f"Mode:       {meta.mode}{strength}")
    if meta.variation_seed is not None and meta.variation_strength:
        lines.append(f"Variation:  seed {meta.variation_seed}, strength {_num(meta.variation_strength)}")
    if meta.clip_skip and meta.clip_skip > 1:
        lines.append(f"Clip skip:  {meta.clip_skip}")
    if meta.model_name or meta.model_hash:
        hash_text = f" [{meta.model_hash[:10]}]" if meta.model_hash else ""
        family = f" ({meta.family})" if meta.family else ""
        lines.append(f"Model:      {meta.model_name or '?'}{hash_text}{family}")
    if meta.vae:
        lines.append(f"VAE:        {meta.vae}")
    for lora in meta.loras:
        weight = f" x{_num(lora.weight)}" if lora.weight is not None else ""
        lines.append(f"LoRA:       {lora.name}{weight}" + (f" [{lora.hash[:12]}]" if lora.hash else ""))
    for key, value in meta.extra.items():
        lines.append(f"{key + ':':<11} {value}")
    if meta.not_restored:
        lines.append("Not restored: " + "; ".join(meta.not_restored))
    return lines


def loras_in_prompt(prompt: str) -> list[LoraUse]:
    """`<lora:name:weight>` tags of an A1111-syntax prompt (for display; the prompt keeps them)."""
    from aigc_desktop.core.prompt_syntax import PromptSyntaxError, extract_networks, lora_weights

    out = []
    for net in extract_networks(prompt or "")[1]:
        if net.kind in ("lora", "lyco"):
            try:
                weight: float | None = lora_weights(net)[1]
            except PromptSyntaxError:
                weight = None
            out.append(LoraUse(net.name, weight))
    return out
