"""What the canvas shows, computed without Qt: the visible layers composited over a rectangle, and the
mask cut to it. Generation takes its init image and mask from here."""

from __future__ import annotations

from PIL import Image

from aigc_desktop.core.document.document import Document, crop_doc
from aigc_desktop.core.document.layer import Layer


def _with_opacity(image: Image.Image, opacity: float) -> Image.Image:
    if opacity >= 1.0:
        return image
    r, g, b, a = image.split()
    a = a.point(lambda v: int(round(v * opacity)))
    return Image.merge("RGBA", (r, g, b, a))


def composite(doc: Document, rect: tuple[int, int, int, int] | None = None,
              layers: list[Layer] | None = None) -> Image.Image:
    """RGBA pixels of `rect` (document coordinates; default: the frame): the visible layers, bottom to
    top, each with its opacity, over transparency."""
    x, y, w, h = rect if rect is not None else doc.frame.rect
    out = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    for layer in doc.layers if layers is None else layers:
        if not layer.visible or layer.opacity <= 0 or layer.kind != "image":
            continue
        lx0, ly0 = max(x, layer.x), max(y, layer.y)
        lx1, ly1 = min(x + w, layer.x + layer.width), min(y + h, layer.y + layer.height)
        if lx1 <= lx0 or ly1 <= ly0:
            continue
        part = _with_opacity(crop_doc(layer, lx0, ly0, lx1 - lx0, ly1 - ly0), layer.opacity)
        out.alpha_composite(part, (lx0 - x, ly0 - y))
    return out


def mask_crop(doc: Document, rect: tuple[int, int, int, int] | None = None) -> Image.Image:
    """The mask ("L", 255 = repaint) over `rect` (default: the frame); 0 where nothing was painted."""
    x, y, w, h = rect if rect is not None else doc.frame.rect
    return crop_doc(doc.mask, x, y, w, h)


def transparency_mask(image: Image.Image, threshold: int = 255) -> Image.Image:
    """An outpaint mask: 255 where the composite is not fully opaque (nothing there to keep)."""
    alpha = image.getchannel("A")
    return alpha.point(lambda v: 255 if v < threshold else 0)


def is_blank(image: Image.Image) -> bool:
    """True when an L mask or an RGBA composite holds nothing (all zero / fully transparent)."""
    band = image.getchannel("A") if image.mode == "RGBA" else image
    return band.getbbox() is None
