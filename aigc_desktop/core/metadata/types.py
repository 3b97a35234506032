"""The shared types of metadata reading: what an image says about how it was made, in our terms.

Every reader (one module per tool) returns an `ImageMetadata`; the containers (PNG, EXIF, JPEG, WebP)
return `TextChunks`. Nothing here imports a reader, so readers and the dispatcher import this freely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safe_io import JSON_MAX_BYTES, JsonLimitError, loads_json

OUR_KEY = "aigc_desktop"  # the text chunk holding our full JSON record
IMAGE_MODES = ("img2img", "inpaint", "outpaint")

# Fields of ImageMetadata that hold a setting read from the image (their sources are tracked).
VALUE_FIELDS = ("prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height", "scheduler",
                "sampler", "model_name", "model_hash", "family", "vae", "loras", "mode", "strength",
                "variation_seed", "variation_strength", "clip_skip")


class UnreadableImage(UserError):
    """A file that is missing or is not an image we can read metadata from."""


@dataclass
class LoraUse:
    name: str
    weight: float | None = None
    hash: str | None = None
    path: str | None = None


@dataclass
class ImageMetadata:
    """What an image says about how it was made, in our terms. None = not found in the image."""

    source: str = ""  # aigc-desktop | A1111 | ComfyUI | Civitai | InvokeAI | NovelAI | Fooocus | "" (nothing)
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
    unreadable: list[str] = field(default_factory=list)  # what the image holds but could not be read
    field_sources: dict[str, str] = field(default_factory=dict)  # field -> where its value came from
    extra: dict[str, Any] = field(default_factory=dict)  # other values found, for display
    record: dict[str, Any] | None = None  # our full record (images made by this app)
    file_format: str = ""
    image_size: tuple[int, int] | None = None

    @property
    def found(self) -> bool:
        return bool(self.source)

    def note(self, text: str) -> None:
        text = _short(text)
        if text and text not in self.not_restored:
            self.not_restored.append(text)

    def cannot_read(self, text: str) -> None:
        text = _short(text)
        if text and text not in self.unreadable:
            self.unreadable.append(text)

    def came_from(self, where: str, *names: str) -> None:
        """Say where fields got their values (the first source given for a field wins)."""
        for name in names or VALUE_FIELDS:
            value = getattr(self, name, None)
            if value is not None and value != [] and name not in self.field_sources:
                self.field_sources[name] = where

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["found"] = self.found
        if self.image_size is not None:
            out["image_size"] = list(self.image_size)
        return out


def _short(text: str, limit: int = 300) -> str:
    """A note as one short line, whatever a hostile file put into the names it quotes."""
    text = " ".join(str(text).split()) if ("\n" in text or "\t" in text or "\r" in text) else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e18 else None
    if isinstance(value, str) and len(value) > 40:  # int() of a 5000-digit string is slow and meaningless
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) > 40:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def num(value: Any) -> str:
    """A number as A1111 writes it: 7 not 7.0, 0.75 as is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def json_value(text: str | None, what: str, problems: list[str] | None = None,
               max_bytes: int = JSON_MAX_BYTES) -> Any:
    """JSON from an image through the one bounded parser (size, depth, finite numbers); None when it is not
    JSON. A limit hit (too deep, too large) is reported in `problems`: that is a file worth a word."""
    if not text:
        return None
    try:
        return loads_json(text, what=what, max_bytes=max_bytes)
    except JsonLimitError as exc:
        if problems is not None and "not valid JSON" not in str(exc):
            problems.append(str(exc))
        return None


def json_dict(text: str | None, what: str = "JSON", problems: list[str] | None = None,
              max_bytes: int = JSON_MAX_BYTES) -> dict[str, Any]:
    value = json_value(text, what, problems, max_bytes)
    return value if isinstance(value, dict) else {}


class TextChunks(dict):
    """Metadata texts of an image by key ("parameters", "prompt", ...), with where each came from
    (`origin`: key -> "PNG tEXt chunk 'parameters'", "EXIF UserComment") and what could not be read."""

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[str, str] = {}
        self.problems: list[str] = []

    def add(self, key: str, value: str, origin: str) -> None:
        """Keep the first text of a key (a PNG's own chunk before its EXIF copy)."""
        if key not in self:
            self[key] = value
            self.origin[key] = origin

    def where(self, key: str) -> str:
        return self.origin.get(key, f"'{key}'")
