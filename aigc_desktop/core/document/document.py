"""The document the artist works on: ordered image layers, one mask, the generation frame, the view,
the generation history and the prompt / model / timeline state. Every change goes through a small
operation that emits plain events (see events.py); undo lives in the UI, built from these operations."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

from PIL import Image

from aigc_desktop.core.document import events as ev
from aigc_desktop.core.document.layer import HistoryItem, Layer

SNAP = 8
LAYER_PROPERTIES = ("name", "opacity", "visible", "locked")
MAX_LAYER_SIDE = 8192  # a layer scaled on the canvas is at most this many pixels a side


def scale_problem(layer: Layer, width: int, height: int) -> str | None:
    """Why `layer` cannot be scaled to width x height (a sentence for the message area), or None."""
    if layer.kind != "image":
        return "Only image layers scale; the mask keeps its pixels"
    if layer.locked:
        return f"'{layer.name}' is locked: unlock it in the Layers panel to scale it"
    if width < 1 or height < 1:
        return f"A layer is at least 1×1 px (asked for {width}×{height})"
    if width > MAX_LAYER_SIDE or height > MAX_LAYER_SIDE:
        return (f"'{layer.name}' would be {width}×{height} px: a layer is at most {MAX_LAYER_SIDE} px a side, "
                "so it was not scaled")
    return None


def snap(value: float, step: int = SNAP) -> int:
    """The nearest multiple of `step`, halves rounding up (not to even: 20 -> 24, 28 -> 32)."""
    return int(math.floor(value / step + 0.5)) * step


@dataclass(frozen=True)
class Frame:
    """The generation frame in document coordinates; width and height are multiples of 8, >= 8."""

    x: int = 0
    y: int = 0
    width: int = 512
    height: int = 512

    def __post_init__(self) -> None:
        for name in ("x", "y", "width", "height"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"Frame {name} must be a whole number")
        if self.width < SNAP or self.height < SNAP or self.width % SNAP or self.height % SNAP:
            raise ValueError(f"Frame size must be multiples of {SNAP} (at least {SNAP}), "
                             f"got {self.width}x{self.height}")

    @classmethod
    def snapped(cls, x: float, y: float, width: float, height: float) -> "Frame":
        """The nearest valid frame: position and size rounded to multiples of 8."""
        return cls(snap(x), snap(y), max(SNAP, snap(width)), max(SNAP, snap(height)))

    @property
    def rect(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height


@dataclass(frozen=True)
class View:
    zoom: float = 1.0
    center_x: float = 256.0
    center_y: float = 256.0

    def __post_init__(self) -> None:
        if not (self.zoom > 0):
            raise ValueError("View zoom must be > 0")


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return x0, y0, x1 - x0, y1 - y0


def _contains(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    return (inner[0] >= outer[0] and inner[1] >= outer[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def crop_doc(layer: Layer, x: int, y: int, w: int, h: int) -> Image.Image:
    """The layer's pixels of a document rectangle; zero (transparent / unmasked) outside the layer."""
    return layer.image.crop((x - layer.x, y - layer.y, x - layer.x + w, y - layer.y + h))


class Document:
    def __init__(self, *, width: int | None = 512, height: int | None = 512) -> None:
        self.width = width  # a size hint only: the canvas is unbounded
        self.height = height
        self._layers: list[Layer] = []
        w, h = width or 512, height or 512
        self.mask = Layer(None, name="Mask", kind="mask", width=w, height=h)
        self.frame = Frame.snapped(0, 0, w, h)
        self.view = View(1.0, w / 2, h / 2)
        self._history: list[HistoryItem] = []
        self.prompt_state: dict = {}
        self.model: dict | None = None
        self.timeline: dict | None = None
        self._subscribers: list[Callable[[ev.Event], None]] = []

    @classmethod
    def new(cls, width: int = 512, height: int = 512) -> "Document":
        """An empty document: no layers, an empty mask, a frame of the given size at (0, 0)."""
        return cls(width=width, height=height)

    # ------------------------------------------------------------------------------------------ access
    @property
    def layers(self) -> list[Layer]:
        """Image layers, bottom -> top (a copy of the list: change it through operations)."""
        return list(self._layers)

    @property
    def history(self) -> list[HistoryItem]:
        return list(self._history)

    def get_layer(self, layer_id: str) -> Layer:
        if layer_id == self.mask.id:
            return self.mask
        for layer in self._layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"No layer {layer_id!r}")

    def has_layer(self, layer_id: str) -> bool:
        return layer_id == self.mask.id or any(la.id == layer_id for la in self._layers)

    def index_of(self, layer_id: str) -> int:
        for i, layer in enumerate(self._layers):
            if layer.id == layer_id:
                return i
        raise KeyError(f"No layer {layer_id!r}")

    def get_history(self, item_id: str) -> HistoryItem:
        for item in self._history:
            if item.id == item_id:
                return item
        raise KeyError(f"No history item {item_id!r}")

    def bounds(self) -> tuple[int, int, int, int]:
        """The rectangle holding every layer, the mask's painted part and the frame."""
        rect = self.frame.rect
        for layer in self._layers:
            rect = _union(rect, layer.rect)
        return rect

    # ---------------------------------------------------------------------------------------- events
    def subscribe(self, callback: Callable[[ev.Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: ev.Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    # ------------------------------------------------------------------------------------ operations
    def add_layer(self, layer: Layer, index: int | None = None) -> int:
        if layer.kind != "image":
            raise ValueError("Only image layers go in the layer list (the document has one mask)")
        if self.has_layer(layer.id):
            raise ValueError(f"Layer {layer.id!r} is already in the document")
        index = len(self._layers) if index is None else max(0, min(len(self._layers), int(index)))
        self._layers.insert(index, layer)
        self._emit(ev.LayerAdded(layer.id, index))
        return index

    def remove_layer(self, layer_id: str) -> tuple[Layer, int]:
        index = self.index_of(layer_id)
        layer = self._layers.pop(index)
        self._emit(ev.LayerRemoved(layer_id, index))
        return layer, index

    def move_layer(self, layer_id: str, x: int, y: int) -> None:
        layer = self.get_layer(layer_id)
        layer.x, layer.y = int(x), int(y)
        self._emit(ev.LayerMoved(layer_id, layer.x, layer.y))

    def reorder_layer(self, layer_id: str, new_index: int) -> None:
        old = self.index_of(layer_id)
        new_index = max(0, min(len(self._layers) - 1, int(new_index)))
        if old == new_index:
            return
        layer = self._layers.pop(old)
        self._layers.insert(new_index, layer)
        self._emit(ev.LayerReordered(layer_id, old, new_index))

    def set_layer_property(self, layer_id: str, name: str, value: Any) -> None:
        if name not in LAYER_PROPERTIES:
            raise ValueError(f"Unknown layer property {name!r}")
        layer = self.get_layer(layer_id)
        if name == "opacity":
            value = max(0.0, min(1.0, float(value)))
        elif name in ("visible", "locked"):
            value = bool(value)
        else:
            value = str(value)
        setattr(layer, name, value)
        self._emit(ev.LayerPropertyChanged(layer_id, name, value))

    def paint(self, layer_id: str, x: int, y: int, patch: Image.Image) -> Image.Image:
        """Replace the pixels of the rectangle (x, y, patch size) with `patch` (the layer's mode) and
        return the previous pixels of that rectangle, for undo. A patch reaching outside the layer grows
        the layer (the canvas is unbounded); the grown part starts transparent / unmasked."""
        layer = self.get_layer(layer_id)
        if patch.mode != layer.mode:
            patch = patch.convert(layer.mode)
        x, y = int(x), int(y)
        rect = (x, y, patch.width, patch.height)
        previous = crop_doc(layer, *rect)
        if not _contains(layer.rect, rect):
            gx, gy, gw, gh = _union(layer.rect, rect)
            grown = Image.new(layer.mode, (gw, gh), 0)
            grown.paste(layer.image, (layer.x - gx, layer.y - gy))
            grown.paste(patch, (x - gx, y - gy))
            layer._set_image(grown, gx, gy)
            self._emit(ev.LayerGeometryChanged(layer_id, gx, gy, gw, gh))
        else:
            layer.image.paste(patch, (x - layer.x, y - layer.y))
            layer.revision += 1
        self._emit(ev.PixelsChanged(layer_id, *rect))
        return previous

    def set_pixels(self, layer_id: str, image: Image.Image, x: int | None = None,
                   y: int | None = None) -> tuple[Image.Image, int, int]:
        """Replace a layer's whole image (scale, merge down, crop); returns (old image, old x, old y)."""
        layer = self.get_layer(layer_id)
        old = (layer.image, layer.x, layer.y)
        layer._set_image(image.copy(), layer.x if x is None else x, layer.y if y is None else y)
        self._emit(ev.LayerGeometryChanged(layer_id, layer.x, layer.y, layer.width, layer.height))
        self._emit(ev.PixelsChanged(layer_id, *layer.rect))
        return old

    def scale_layer(self, layer_id: str, width: int, height: int, x: int | None = None,
                    y: int | None = None) -> tuple[Image.Image, int, int]:
        """Resample an image layer's pixels to width x height (Lanczos, alpha premultiplied by Pillow) and
        place it at (x, y) (unchanged when None). Its id, properties and generation record stay. Returns
        (old image, old x, old y) for undo: hand them to set_pixels to get the exact pixels back. Raises
        ValueError for the mask, a locked layer, or a size outside 1..MAX_LAYER_SIDE a side."""
        layer = self.get_layer(layer_id)
        width, height = int(width), int(height)
        problem = scale_problem(layer, width, height)
        if problem:
            raise ValueError(problem)
        if (width, height) == layer.image.size:
            scaled = layer.image.copy()
        else:
            scaled = layer.image.resize((width, height), Image.Resampling.LANCZOS)
        old = (layer.image, layer.x, layer.y)
        layer._set_image(scaled, layer.x if x is None else int(x), layer.y if y is None else int(y))
        self._emit(ev.LayerGeometryChanged(layer_id, layer.x, layer.y, layer.width, layer.height))
        self._emit(ev.PixelsChanged(layer_id, *layer.rect))
        return old

    def set_frame(self, frame: Frame) -> None:
        if not isinstance(frame, Frame):
            raise TypeError("set_frame takes a Frame")
        if frame != self.frame:
            self.frame = frame
            self._emit(ev.FrameChanged(frame))

    def set_view(self, view: View) -> None:
        if view != self.view:
            self.view = view
            self._emit(ev.ViewChanged(view))

    def add_history(self, item: HistoryItem) -> None:
        if any(h.id == item.id for h in self._history):
            raise ValueError(f"History item {item.id!r} is already in the document")
        self._history.append(item)
        self._emit(ev.HistoryAdded(item.id))

    def remove_history(self, item_id: str) -> HistoryItem:
        item = self.get_history(item_id)
        self._history.remove(item)
        self._emit(ev.HistoryRemoved(item_id))
        return item

    def set_prompt_state(self, state: dict) -> None:
        self.prompt_state = copy.deepcopy(dict(state))
        self._emit(ev.PromptStateChanged(self.prompt_state))

    def set_model(self, model: dict | None) -> None:
        self.model = copy.deepcopy(model) if model is not None else None
        self._emit(ev.ModelChanged(self.model))

    def set_timeline(self, timeline: dict | None) -> None:
        self.timeline = copy.deepcopy(timeline) if timeline is not None else None
        self._emit(ev.TimelineChanged(self.timeline))

    def load_from(self, other: "Document") -> None:
        """Take over another document's contents (a project was opened) and tell observers to rebuild;
        subscribers stay subscribed."""
        self.width, self.height = other.width, other.height
        self._layers = list(other._layers)
        self.mask = other.mask
        self.frame, self.view = other.frame, other.view
        self._history = list(other._history)
        self.prompt_state = copy.deepcopy(other.prompt_state)
        self.model = copy.deepcopy(other.model)
        self.timeline = copy.deepcopy(other.timeline)
        self._emit(ev.DocumentReset())
