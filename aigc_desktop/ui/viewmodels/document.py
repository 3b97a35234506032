"""What the canvas shows: finished images (with their records) and the live preview."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal


@dataclass
class CanvasImage:
    image: Any  # PIL image
    record: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # where it was saved, if it was


class DocumentViewModel(QObject):
    images_added = Signal(object)  # list[CanvasImage]
    preview_changed = Signal(object, int, int)  # PIL image, target width, target height
    preview_cleared = Signal()
    cleared = Signal()
    focus_requested = Signal(object)  # CanvasImage to centre the canvas on

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.images: list[CanvasImage] = []

    def add_images(self, items: list[CanvasImage]) -> None:
        self.images.extend(items)
        self.images_added.emit(list(items))

    def show_preview(self, image: Any, width: int, height: int) -> None:
        self.preview_changed.emit(image, width, height)

    def clear_preview(self) -> None:
        self.preview_cleared.emit()

    def clear(self) -> None:
        self.images.clear()
        self.cleared.emit()
