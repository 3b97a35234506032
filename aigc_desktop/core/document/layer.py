"""Layers and history items: pixels that may load lazily, and a thumbnail cached per revision."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from PIL import Image

Loader = Callable[[], Image.Image]

LAYER_KINDS = ("image", "mask")
_MODES = {"image": "RGBA", "mask": "L"}


def new_id() -> str:
    return uuid.uuid4().hex


def _thumb(image: Image.Image, max_side: int) -> Image.Image:
    t = image.copy()
    t.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return t


class Layer:
    """An image layer (RGBA) or the document's mask (L, 255 = repaint), placed at (x, y) in document
    coordinates. Change it only through Document operations, which emit the events observers rely on."""

    def __init__(self, image: Image.Image | None = None, *, name: str = "Layer", kind: str = "image",
                 x: int = 0, y: int = 0, width: int | None = None, height: int | None = None,
                 opacity: float = 1.0, visible: bool = True, locked: bool = False,
                 record: dict | None = None, id: str | None = None, revision: int = 0,
                 loader: Loader | None = None, thumb_loader: Callable[[int], Image.Image] | None = None) -> None:
        if kind not in LAYER_KINDS:
            raise ValueError(f"Unknown layer kind {kind!r}")
        if image is None and loader is None:
            if width is None or height is None:
                raise ValueError("A layer needs an image, a loader, or a size")
            image = Image.new(_MODES[kind], (int(width), int(height)), 0)
        if image is not None:
            image = self._coerce(image, kind)
            width, height = image.size
        elif width is None or height is None:
            raise ValueError("A lazy layer needs its width and height")
        self.id = id or new_id()
        self.name = name
        self.kind = kind
        self.x, self.y = int(x), int(y)
        self.width, self.height = int(width), int(height)
        self.opacity = float(opacity)
        self.visible = bool(visible)
        self.locked = bool(locked)
        self.record = record
        self.revision = int(revision)
        self._image = image
        self._loader = loader
        self._thumb_loader = thumb_loader
        self._thumb_cache: tuple[int, int, Image.Image] | None = None

    @classmethod
    def lazy(cls, *, id: str, width: int, height: int, loader: Loader, **kwargs: Any) -> "Layer":
        """A layer whose pixels load on first access of `.image` (project files open fast)."""
        return cls(None, id=id, width=width, height=height, loader=loader, **kwargs)

    @property
    def mode(self) -> str:
        return _MODES[self.kind]

    @property
    def loaded(self) -> bool:
        return self._image is not None

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            assert self._loader is not None
            image = self._coerce(self._loader(), self.kind)
            if image.size != (self.width, self.height):
                raise ValueError(f"Layer '{self.name}': pixels are {image.size[0]}x{image.size[1]}, "
                                 f"expected {self.width}x{self.height}")
            self._image = image
            self._loader = None
        return self._image

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height

    def thumbnail(self, max_side: int = 128) -> Image.Image:
        if self._image is None and self._thumb_loader is not None and self.revision == 0:
            return self._thumb_loader(max_side)
        cached = self._thumb_cache
        if cached is not None and cached[0] == self.revision and cached[1] == max_side:
            return cached[2]
        t = _thumb(self.image, max_side)
        self._thumb_cache = (self.revision, max_side, t)
        return t

    def copy(self, *, new_id: bool = True) -> "Layer":
        """A deep copy (pixels too); a fresh id unless asked otherwise (duplicate layer)."""
        return Layer(self.image.copy(), name=self.name, kind=self.kind, x=self.x, y=self.y,
                     opacity=self.opacity, visible=self.visible, locked=self.locked,
                     record=dict(self.record) if self.record is not None else None,
                     id=None if new_id else self.id)

    # -- used by Document only
    def _set_image(self, image: Image.Image, x: int, y: int) -> None:
        self._image = self._coerce(image, self.kind)
        self._loader = None
        self.x, self.y = int(x), int(y)
        self.width, self.height = self._image.size
        self.revision += 1

    @staticmethod
    def _coerce(image: Image.Image, kind: str) -> Image.Image:
        mode = _MODES[kind]
        return image if image.mode == mode else image.convert(mode)

    def __repr__(self) -> str:
        return (f"Layer({self.name!r}, kind={self.kind}, id={self.id[:8]}, at=({self.x},{self.y}), "
                f"size={self.width}x{self.height})")


class HistoryItem:
    """A finished generation kept with the document (immutable once added)."""

    def __init__(self, record: dict, image: Image.Image | None = None, *, id: str | None = None,
                 width: int | None = None, height: int | None = None, created: float | None = None,
                 loader: Loader | None = None, thumb_loader: Callable[[int], Image.Image] | None = None,
                 path: str | None = None) -> None:
        if image is None and (loader is None or width is None or height is None):
            raise ValueError("A history item needs an image, or a loader with its size")
        if image is not None:
            width, height = image.size
        self.id = id or new_id()
        self.record = record
        self.path = path  # where the worker saved it, when it did (not part of the document's identity)
        self.width, self.height = int(width), int(height)
        self.created = time.time() if created is None else float(created)
        self._image = image
        self._loader = loader
        self._thumb_loader = thumb_loader
        self._thumb_cache: tuple[int, Image.Image] | None = None

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            assert self._loader is not None
            self._image = self._loader()
            self._loader = None
        return self._image

    def thumbnail(self, max_side: int = 128) -> Image.Image:
        if self._image is None and self._thumb_loader is not None:
            return self._thumb_loader(max_side)
        if self._thumb_cache is None or self._thumb_cache[0] != max_side:
            self._thumb_cache = (max_side, _thumb(self.image, max_side))
        return self._thumb_cache[1]

    def __repr__(self) -> str:
        return f"HistoryItem(id={self.id[:8]}, {self.width}x{self.height})"
