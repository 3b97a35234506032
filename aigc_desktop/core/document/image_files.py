"""Images in and out of the document, without Qt: reading an image file as a layer's pixels, and the PNG
of the visible canvas, the frame or a layer (with the generation record when there is one)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from aigc_desktop.core.document.composite import composite
from aigc_desktop.core.document.document import Document
from aigc_desktop.core.document.layer import Layer
from aigc_desktop.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
IMAGE_LIMIT = 512 * 1024 * 1024  # bytes read for one imported image
EXPORTS = ("canvas", "frame", "layer")


def read_image(path: str | Path) -> Image.Image:
    """An image file as RGBA pixels; one clear line (UserError) for a bad file."""
    from aigc_desktop.core.safe_io import read_bytes

    data = read_bytes(path, IMAGE_LIMIT, "image")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        raise UserError(f"Cannot read {Path(path).name} as an image: {exc}") from None


def rendered(doc: Document, what: str, layer: Layer | None = None) -> tuple[Image.Image, dict | None]:
    """(pixels, record or None) of 'canvas' (every visible layer), 'frame' or 'layer' (`layer`)."""
    if what not in EXPORTS:
        raise ValueError(what)
    if what == "layer":
        if layer is None or layer.kind != "image":
            raise UserError("Select an image layer to export it")
        return layer.image, layer.record
    rect = doc.frame.rect if what == "frame" else doc.bounds()
    record = None
    if what == "frame":  # a generated layer exactly filling the frame keeps its record
        covering = [la for la in doc.layers if la.visible and la.record and la.rect == rect]
        record = covering[-1].record if covering else None
    return composite(doc, rect), record


def write_png(image: Image.Image, path: str | Path, record: dict | None = None) -> Path:
    """Save atomically; with a record, with its metadata (A1111 parameters + our JSON)."""
    if record:
        from aigc_desktop.core.outputs import save_image

        return Path(save_image(image, path, record))
    from aigc_desktop.core.files import atomic_write

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())
    return Path(path)
