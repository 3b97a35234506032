"""Plain, frozen events a Document emits after each operation (observers: canvas, layers panel, project)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class LayerAdded(Event):
    layer_id: str
    index: int


@dataclass(frozen=True)
class LayerRemoved(Event):
    layer_id: str
    index: int


@dataclass(frozen=True)
class LayerMoved(Event):
    layer_id: str
    x: int
    y: int


@dataclass(frozen=True)
class LayerReordered(Event):
    layer_id: str
    old_index: int
    new_index: int


@dataclass(frozen=True)
class LayerPropertyChanged(Event):
    layer_id: str
    name: str
    value: Any


@dataclass(frozen=True)
class LayerGeometryChanged(Event):
    """A layer's pixel rectangle changed (it grew under a stroke, or its pixels were replaced)."""

    layer_id: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class PixelsChanged(Event):
    layer_id: str
    x: int  # document coordinates of the changed rectangle
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class FrameChanged(Event):
    frame: Any  # Frame


@dataclass(frozen=True)
class ViewChanged(Event):
    view: Any  # View


@dataclass(frozen=True)
class HistoryAdded(Event):
    item_id: str


@dataclass(frozen=True)
class HistoryRemoved(Event):
    item_id: str


@dataclass(frozen=True)
class PromptStateChanged(Event):
    state: dict


@dataclass(frozen=True)
class ModelChanged(Event):
    model: dict | None


@dataclass(frozen=True)
class TimelineChanged(Event):
    timeline: dict | None


@dataclass(frozen=True)
class DocumentReset(Event):
    """Everything changed at once (a project was opened): observers rebuild from the document."""
