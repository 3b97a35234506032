"""The canvas: a zoomable scene where finished images are laid out and the live preview grows in place."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Slot
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView

from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.document import CanvasImage, DocumentViewModel

GAP = 24


class CanvasView(QGraphicsView):
    def __init__(self, document: DocumentViewModel, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QBrush(QColor(38, 38, 42)))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMinimumSize(320, 240)
        self.image_items: list[QGraphicsPixmapItem] = []
        self.preview_item: QGraphicsPixmapItem | None = None
        self._frame: QGraphicsRectItem | None = None
        self._cursor_x = 0.0
        document.images_added.connect(self.on_images_added)
        document.preview_changed.connect(self.on_preview)
        document.preview_cleared.connect(self.on_preview_cleared)
        document.cleared.connect(self.on_cleared)
        document.focus_requested.connect(self.on_focus)
        self._items_by_entry: dict[int, QGraphicsPixmapItem] = {}

    # -- slots from the document
    @Slot(object)
    def on_images_added(self, items: list[CanvasImage]) -> None:
        self.on_preview_cleared()
        added = QRectF()
        for item in items:
            pix = pil_to_pixmap(item.image)
            gi = self.scene().addPixmap(pix)
            gi.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            gi.setPos(self._cursor_x, 0)
            gi.setToolTip(str(item.record.get("prompt", "")))
            self._cursor_x += pix.width() + GAP
            self.image_items.append(gi)
            self._items_by_entry[id(item)] = gi
            added = added.united(gi.sceneBoundingRect())
        if not added.isEmpty():
            self._fit(added)  # show the whole new batch

    @Slot(object, int, int)
    def on_preview(self, image, width: int, height: int) -> None:
        pix = pil_to_pixmap(image)
        if self.preview_item is None:
            self.preview_item = self.scene().addPixmap(pix)
            self.preview_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            self.preview_item.setZValue(10)
            self._frame = self.scene().addRect(QRectF(0, 0, width, height), QPen(QColor(90, 160, 255), 2))
            self._frame.setZValue(11)
        else:
            self.preview_item.setPixmap(pix)
        # The preview is small (latent resolution): scale it to the size the image will have.
        sx = width / max(1, pix.width())
        sy = height / max(1, pix.height())
        self.preview_item.setTransform(QTransform.fromScale(sx, sy))
        self.preview_item.setPos(self._cursor_x, 0)
        self._frame.setRect(QRectF(self._cursor_x, 0, width, height))
        if not self.image_items:
            self._fit(self._frame.rect())

    @Slot()
    def on_preview_cleared(self) -> None:
        for item in (self.preview_item, self._frame):
            if item is not None:
                self.scene().removeItem(item)
        self.preview_item = None
        self._frame = None

    @Slot(object)
    def on_focus(self, entry: CanvasImage) -> None:
        gi = self._items_by_entry.get(id(entry))
        if gi is not None:
            self._fit(gi.sceneBoundingRect())

    @Slot()
    def on_cleared(self) -> None:
        self._items_by_entry.clear()
        self.on_preview_cleared()
        self.scene().clear()
        self.image_items.clear()
        self._cursor_x = 0.0

    # -- view
    def _fit(self, rect: QRectF) -> None:
        self.scene().setSceneRect(self.scene().itemsBoundingRect().adjusted(-GAP, -GAP, GAP, GAP))
        self.fitInView(rect.adjusted(-GAP, -GAP, GAP, GAP), Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float) -> None:
        self.scale(factor, factor)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API; the wheel zooms, as in image editors
        self.zoom(1.15 if event.angleDelta().y() > 0 else 1 / 1.15)
        event.accept()
