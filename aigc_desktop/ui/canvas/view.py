"""The canvas: an unbounded QGraphicsView mirroring the document (layers, tinted mask, frame, previews,
staged results) with the tools an artist expects: brush and eraser (mask or image layer), move layer,
frame; wheel zoom about the cursor, fit, 100 %, pan with space-drag or the middle button.

Edits become undo commands on the DocumentViewModel; the items follow the document's events, never the
other way round. A brush stroke paints into a numpy copy of the layer (ui/canvas/brush.py) and redraws
only each dab's rectangle; at the end of the stroke its changed rectangle is one PaintCommand.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QTransform
from PySide6.QtWidgets import (QFrame, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLabel, QToolButton)

from aigc_desktop.core.document import Frame, View, events as ev
from aigc_desktop.core.document.document import _union, scale_problem
from aigc_desktop.ui.canvas.brush import BrushSettings, Stroke
from aigc_desktop.ui.canvas.commands import MoveLayerCommand, PaintCommand, ScaleLayerCommand, SetFrameCommand
from aigc_desktop.ui.canvas.items import FrameItem, PixelItem, PreviewItem
from aigc_desktop.ui.canvas.transform import CURSORS, TransformBox, drag_rect
from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.document import DocumentViewModel

WORLD = 1_000_000  # the scene is effectively unbounded
MAX_STROKE_AREA = 8192 * 8192  # a stroke's working copy never grows past this
STROKE_ROOM = 512  # room around a stroke that starts off its layer
TOOLS = ("brush", "eraser", "move", "frame", "select")
EMPTY_HINT = ("Generate (Ctrl+Enter) fills this frame.\nDrop or paste an image to work on it; paint a mask to "
              "inpaint. Drag the frame's edges to resize it.")
Z_MASK, Z_STAGED, Z_PREVIEW = 1_000_000, 1_000_001, 1_000_002


class StagingBar(QFrame):
    """The strip over the frame while finished results wait: ◀ n / m ▶, Accept, Discard."""

    def __init__(self, view: "CanvasView") -> None:
        super().__init__(view.viewport())
        self.setObjectName("stagingBar")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.prev = QToolButton(text="◀")
        self.prev.setToolTip("Previous result (Left arrow)")
        self.next = QToolButton(text="▶")
        self.next.setToolTip("Next result (Right arrow)")
        self.label = QLabel("")
        self.accept = QToolButton(text="Accept")
        self.accept.setObjectName("stagingAccept")
        self.accept.setToolTip("Place this result as a new layer at the frame (Enter); undo removes it")
        self.discard = QToolButton(text="Discard")
        self.discard.setObjectName("stagingDiscard")
        self.discard.setToolTip("Drop the results (Backspace); they stay in the history and the outputs folder")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 3, 6, 3)
        for w in (self.prev, self.label, self.next, self.accept, self.discard):
            row.addWidget(w)
        vm = view.vm
        self.prev.clicked.connect(lambda: vm.cycle_staged(-1))
        self.next.clicked.connect(lambda: vm.cycle_staged(1))
        self.accept.clicked.connect(vm.accept_staged)
        self.discard.clicked.connect(lambda: vm.discard_staged())
        self.hide()


class CanvasView(QGraphicsView):
    tool_changed = Signal(str)
    brush_changed = Signal(object)  # BrushSettings
    zoom_changed = Signal(float)
    selection_changed = Signal(object)  # (x, y, w, h) or None
    message = Signal(str, bool)
    files_dropped = Signal(list, QPointF)  # local paths, scene position
    image_dropped = Signal(object, QPointF)  # a dragged QImage (from another app), scene position

    def __init__(self, document: DocumentViewModel, parent=None) -> None:
        super().__init__(parent)
        self.vm = document
        self.doc = document.doc
        self.setObjectName("canvas")
        scene = QGraphicsScene(self)
        scene.setSceneRect(-WORLD, -WORLD, 2 * WORLD, 2 * WORLD)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)  # items change often; few items
        self.setScene(scene)
        self.setRenderHints(QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QBrush(QColor(34, 34, 38)))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("")

        self.tool = "brush"
        self.brush = BrushSettings()
        self.items: dict[str, PixelItem] = {}
        self.mask_item = PixelItem(self.doc.mask.id, is_mask=True)
        self.mask_item.setZValue(Z_MASK)
        scene.addItem(self.mask_item)
        self.frame_item = FrameItem(self._frame_dragged)
        self.frame_item.setZValue(Z_PREVIEW + 1)
        scene.addItem(self.frame_item)
        self.preview_item = PreviewItem()
        self.preview_item.setZValue(Z_PREVIEW)
        self.preview_item.hide()
        scene.addItem(self.preview_item)
        self.staged_item = QGraphicsPixmapItem()
        self.staged_item.setZValue(Z_STAGED)
        self.staged_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.staged_item.hide()
        scene.addItem(self.staged_item)
        self.staging_bar = StagingBar(self)
        # The rectangle selection (view state, not part of the document): mask it, frame it, export it.
        pen = QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.selection_item = QGraphicsRectItem()
        self.selection_item.setPen(pen)
        self.selection_item.setBrush(QBrush(QColor(255, 255, 255, 24)))
        self.selection_item.setZValue(Z_PREVIEW + 2)
        self.selection_item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.selection_item.hide()
        scene.addItem(self.selection_item)
        self.selection: tuple[int, int, int, int] | None = None
        self._select_from: QPointF | None = None
        # The Move tool's free transform: the selected layer's box and handles (see transform.py).
        self.transform_box = TransformBox()
        self.transform_box.setZValue(Z_PREVIEW + 3)
        self.transform_box.hide()
        scene.addItem(self.transform_box)
        # (layer id, handle, press position, the layer's rect then, the rect shown now)
        self._scale: tuple[str, str, QPointF, tuple[int, int, int, int], tuple[int, int, int, int]] | None = None
        self._hover_handle: str | None = None

        self._stroke: Stroke | None = None
        self._stroke_layer: str | None = None
        self._stroke_origin: tuple[int, int] = (0, 0)
        self._pan_from: QPointF | None = None
        self._space = False
        self._move: tuple[str, QPointF, tuple[int, int]] | None = None
        self._cursor_scene: QPointF | None = None
        self.stroke_dab_rects = 0  # dabs drawn (benchmarks, tests)
        self._committing: str | None = None

        document.changed.connect(self.on_document_event)
        document.preview_changed.connect(self.on_preview)
        document.preview_cleared.connect(self.on_preview_cleared)
        document.staging_changed.connect(self.on_staging)
        document.focus_requested.connect(self.show_rect)
        document.selection_changed.connect(lambda _id: self._update_transform_box())
        self.rebuild()
        self.centerOn(self.frame_rect().center())

    # ----------------------------------------------------------------------------------- document sync
    def rebuild(self) -> None:
        for item in self.items.values():
            self.scene().removeItem(item)
        self.items.clear()
        self.doc = self.vm.doc
        for i, layer in enumerate(self.doc.layers):
            self._add_item(layer.id, i)
        self.mask_item.layer_id = self.doc.mask.id
        self._refresh_whole(self.doc.mask.id)
        self._apply_props(self.doc.mask.id)
        self.frame_item.set_frame(self.doc.frame)
        self._restack()
        self._update_transform_box()

    def _add_item(self, layer_id: str, index: int) -> None:
        item = PixelItem(layer_id)
        self.items[layer_id] = item
        self.scene().addItem(item)
        self._refresh_whole(layer_id)
        self._apply_props(layer_id)
        self._restack()

    def _item(self, layer_id: str) -> PixelItem | None:
        return self.mask_item if layer_id == self.doc.mask.id else self.items.get(layer_id)

    def _restack(self) -> None:
        for i, layer in enumerate(self.doc.layers):
            if layer.id in self.items:
                self.items[layer.id].setZValue(i)
        self.frame_item.hint = "" if self.doc.layers else EMPTY_HINT
        self.frame_item.update()

    def _refresh_whole(self, layer_id: str) -> None:
        layer = self.doc.get_layer(layer_id)
        item = self._item(layer_id)
        if not item.transform().isIdentity():
            item.setTransform(QTransform())  # a scale preview ends: the pixels are the new size now
        item.set_pixels(layer.x, layer.y, np.asarray(layer.image))

    def _apply_props(self, layer_id: str) -> None:
        layer, item = self.doc.get_layer(layer_id), self._item(layer_id)
        item.setVisible(layer.visible)
        item.setOpacity(layer.opacity)
        item.setPos(layer.x, layer.y)

    @Slot(object)
    def on_document_event(self, event) -> None:
        if isinstance(event, ev.LayerAdded):
            self._add_item(event.layer_id, event.index)
        elif isinstance(event, ev.LayerRemoved):
            item = self.items.pop(event.layer_id, None)
            if item is not None:
                self.scene().removeItem(item)
            self._restack()
        elif isinstance(event, ev.LayerReordered):
            self._restack()
        elif isinstance(event, (ev.LayerMoved, ev.LayerPropertyChanged)):
            if self._item(event.layer_id) is not None:
                self._apply_props(event.layer_id)
        elif isinstance(event, ev.LayerGeometryChanged):
            if self._item(event.layer_id) is not None:
                self._refresh_whole(event.layer_id)
        elif isinstance(event, ev.PixelsChanged):
            item = self._item(event.layer_id)
            if item is not None and event.layer_id != self._committing:
                layer = self.doc.get_layer(event.layer_id)
                lx, ly = event.x - layer.x, event.y - layer.y
                part = np.asarray(layer.image.crop((lx, ly, lx + event.w, ly + event.h)))
                full = _Offset(part, lx, ly)
                item.update_rect(full, lx, ly, event.w, event.h)
        elif isinstance(event, ev.FrameChanged):
            self.frame_item.set_frame(event.frame)
        elif isinstance(event, ev.DocumentReset):
            self.rebuild()
            if self.doc.layers and self.doc.view != View(1.0, self.doc.frame.width / 2, self.doc.frame.height / 2):
                self.apply_view(self.doc.view)  # where the artist left it
            else:
                self.fit()
        if not isinstance(event, (ev.FrameChanged, ev.ViewChanged, ev.HistoryAdded, ev.HistoryRemoved)):
            self._update_transform_box()

    # ------------------------------------------------------------------------------- previews, staging
    @Slot(object, object)
    def on_preview(self, images: list, rect) -> None:
        self.preview_item.set_pil_images(images, tuple(rect))
        if not self.preview_item.isVisible():
            self.preview_item.show()
            self.ensure_visible(QRectF(*rect))

    @Slot()
    def on_preview_cleared(self) -> None:
        self.preview_item.hide()

    @Slot()
    def on_staging(self) -> None:
        r = self.vm.current_staged
        if r is None:
            self.staged_item.hide()
            self.staging_bar.hide()
            return
        pm = pil_to_pixmap(r.image)
        self.staged_item.setPixmap(pm)
        x, y, w, h = r.rect
        self.staged_item.setPos(x, y)
        from PySide6.QtGui import QTransform

        self.staged_item.setTransform(QTransform.fromScale(w / max(1, pm.width()), h / max(1, pm.height())))
        self.staged_item.show()
        self.staging_bar.label.setText(f"{self.vm.staged_index + 1} / {len(self.vm.staged)}")
        self.staging_bar.show()
        self.staging_bar.adjustSize()
        self.ensure_visible(QRectF(*r.rect))
        self._place_staging()

    def _place_staging(self) -> None:
        r = self.vm.current_staged
        if r is None:
            return
        x, y, w, h = r.rect
        anchor = self.mapFromScene(QPointF(x + w / 2, y + h))
        bar = self.staging_bar
        vx = int(anchor.x() - bar.width() / 2)
        vy = int(anchor.y() + 8)
        vp = self.viewport().rect()
        bar.move(max(4, min(vp.width() - bar.width() - 4, vx)), max(4, min(vp.height() - bar.height() - 4, vy)))

    # -------------------------------------------------------------------------------------- view ops
    def zoom_factor(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom about `anchor` (viewport coordinates; default the centre): the point under it stays put."""
        current = self.zoom_factor()
        factor = max(1 / 64 / current, min(64 / current, factor))
        vp = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        before = self.mapToScene(vp.toPoint())
        self.scale(factor, factor)
        moved = self.mapFromScene(before) - vp.toPoint()
        self.scroll_by(moved.x(), moved.y())
        self._after_view_change()

    def scroll_by(self, dx: float, dy: float) -> None:
        """Pan by viewport pixels (scroll bars are hidden; the scene is large enough never to hit an end)."""
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

    def zoom_100(self) -> None:
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(centre)
        self._after_view_change()

    def frame_rect(self) -> QRectF:
        f = self.doc.frame
        return QRectF(f.x, f.y, f.width, f.height)

    def fit(self) -> None:
        """Show every layer and the frame."""
        x, y, w, h = self.doc.bounds()
        self.show_rect((x, y, w, h))

    @Slot(object)
    def show_rect(self, rect) -> None:
        r = QRectF(*rect) if not isinstance(rect, QRectF) else rect
        margin = max(r.width(), r.height()) * 0.06 + 8
        self.fitInView(r.adjusted(-margin, -margin, margin, margin), Qt.AspectRatioMode.KeepAspectRatio)
        self._after_view_change()

    def ensure_visible(self, rect: QRectF) -> None:
        """Bring `rect` into view (fit it if it is not mostly on screen): previews never land off-screen."""
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        inter = visible.intersected(rect)
        if rect.width() * rect.height() <= 0:
            return
        if inter.width() * inter.height() < 0.9 * rect.width() * rect.height():
            self.show_rect(rect)

    def _after_view_change(self) -> None:
        self._place_staging()
        self.zoom_changed.emit(self.zoom_factor())
        c = self.mapToScene(self.viewport().rect().center())
        try:
            self.doc.set_view(View(round(self.zoom_factor(), 6), round(c.x(), 2), round(c.y(), 2)))  # not an undo step
        except ValueError:
            pass

    def apply_view(self, view) -> None:
        """Show the document's saved view (zoom and centre)."""
        self.resetTransform()
        self.scale(view.zoom, view.zoom)
        self.centerOn(view.center_x, view.center_y)
        self._after_view_change()

    def scrollContentsBy(self, dx: int, dy: int) -> None:  # noqa: N802
        super().scrollContentsBy(dx, dy)
        self._place_staging()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._place_staging()

    # --------------------------------------------------------------------------------------- tools
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        self.frame_item.body_drag = tool == "frame"
        self.frame_item.prepareGeometryChange()
        if tool != "move":
            self._cancel_scale()
        self._hover_handle = None
        self._update_transform_box()
        self.tool_changed.emit(tool)
        self._update_cursor()

    def set_brush(self, **changes) -> None:
        from dataclasses import replace

        if "size" in changes:
            changes["size"] = float(max(1.0, min(1024.0, changes["size"])))
        old = self._brush_outline_rect()
        self.brush = replace(self.brush, **changes)
        self.viewport().update(old.united(self._brush_outline_rect()))
        self.brush_changed.emit(self.brush)

    def _update_cursor(self) -> None:
        if self.tool in ("brush", "eraser"):
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        elif self.tool == "move":
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)

    def _brush_outline_rect(self) -> QRect:
        if self._cursor_scene is None or self.tool not in ("brush", "eraser"):
            return QRect()
        c = self.mapFromScene(self._cursor_scene)
        r = int(self.brush.size * self.zoom_factor() / 2) + 3
        return QRect(c.x() - r, c.y() - r, 2 * r, 2 * r)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self._cursor_scene is None or self.tool not in ("brush", "eraser") or self._pan_from is not None:
            return
        r = self.brush.size / 2
        scale = self.zoom_factor()
        for color, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 220), 1.0)):
            pen = QPen(color, width / scale)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._cursor_scene, r, r)

    # ------------------------------------------------------------------------------- painting
    def _paint_target(self):
        layer = self.vm.selected
        if layer.locked:
            self.message.emit(f"'{layer.name}' is locked: unlock it in the Layers panel to paint on it", True)
            return None
        if not layer.visible:
            self.message.emit(f"'{layer.name}' is hidden: show it to paint on it", True)
            return None
        return layer

    def begin_stroke(self, scene_pos: QPointF) -> bool:
        layer = self._paint_target()
        if layer is None:
            return False
        erase = self.tool == "eraser"
        region = layer.rect
        x, y = scene_pos.x(), scene_pos.y()
        inside = region[0] <= x < region[0] + region[2] and region[1] <= y < region[1] + region[3]
        if not erase and not inside:
            # The canvas is unbounded: a stroke that starts off the layer gets room around it (the layer
            # grows to what the stroke covers when it ends). Strokes starting on the layer stay on it, so
            # painting a large layer never copies more than the layer.
            pad = int(max(STROKE_ROOM, self.brush.size * 4))
            wanted = _union(region, (int(x) - pad, int(y) - pad, 2 * pad, 2 * pad))
            if wanted[2] * wanted[3] <= MAX_STROKE_AREA:
                region = wanted
        pixels = np.asarray(layer.image)
        if region != layer.rect:
            grown = np.zeros((region[3], region[2]) + pixels.shape[2:], dtype=np.uint8)
            ox, oy = layer.x - region[0], layer.y - region[1]
            grown[oy:oy + layer.height, ox:ox + layer.width] = pixels
            pixels = grown
            self._item(layer.id).set_pixels(region[0], region[1], pixels)
        color = self.brush.color if layer.kind == "image" else (255, 255, 255)
        from dataclasses import replace

        self._stroke = Stroke(pixels, region[0], region[1], replace(self.brush, erase=erase, color=color))
        self._stroke_layer = layer.id
        self._stroke_origin = (region[0], region[1])
        self.stroke_to(scene_pos)
        return True

    def stroke_to(self, scene_pos: QPointF) -> None:
        s = self._stroke
        if s is None:
            return
        item = self._item(self._stroke_layer)
        ox, oy = self._stroke_origin
        for x, y, w, h in s.to(scene_pos.x(), scene_pos.y()):
            item.update_rect(s.pixels, x - ox, y - oy, w, h)
            self.stroke_dab_rects += 1

    def end_stroke(self) -> None:
        s, layer_id = self._stroke, self._stroke_layer
        self._stroke, self._stroke_layer = None, None
        if s is None:
            return
        patch = s.patch()
        if patch is None:
            self._refresh_whole(layer_id)
            return
        x, y, image = patch
        text = ("Erase" if s.brush.erase else "Paint") + (" mask" if layer_id == self.doc.mask.id else "")
        # The items already show these pixels: skip redrawing them from the document this once.
        self._committing = layer_id
        try:
            self.vm.push(PaintCommand(self.doc, layer_id, x, y, image, text=text))
        finally:
            self._committing = None
        layer = self.doc.get_layer(layer_id)
        if (layer.x, layer.y) != self._stroke_origin or self._item(layer_id).image.size().toTuple() != \
                (layer.width, layer.height):
            self._refresh_whole(layer_id)  # the working copy was larger than the layer's new size

    # ----------------------------------------------------------------------------------- events
    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (event.button() == Qt.MouseButton.LeftButton
                                                             and self._space):
            self._pan_from = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        scene_pos = self.mapToScene(pos.toPoint())
        # With the Move tool the selected layer's handles come first (over the frame's, where they meet).
        if self.tool == "move" and self.begin_scale(scene_pos):
            event.accept()
            return
        # The frame's handles (and its body with the Frame tool) take the press first.
        item = self.itemAt(pos.toPoint())
        if item is self.frame_item and (self.tool in ("move", "frame") or self.frame_item._hit(
                self.frame_item.mapFromScene(scene_pos)) != "move"):
            super().mousePressEvent(event)
            return
        if self.tool in ("brush", "eraser"):
            self.begin_stroke(scene_pos)
        elif self.tool == "select":
            self._select_from = scene_pos
            self.set_selection(None)
        elif self.tool == "move":
            layer = self.vm.selected
            if layer.kind == "image" and not layer.locked:
                self._move = (layer.id, scene_pos, (layer.x, layer.y))
            elif layer.locked:
                self.message.emit(f"'{layer.name}' is locked", True)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        scene_pos = self.mapToScene(pos.toPoint())
        old = self._brush_outline_rect()
        self._cursor_scene = scene_pos
        if self._pan_from is not None:
            d = pos - self._pan_from
            self._pan_from = pos
            self.scroll_by(-d.x(), -d.y())
            self._after_view_change()
            return
        if self._stroke is not None:
            self.stroke_to(scene_pos)
        elif self._select_from is not None:
            r = QRectF(self._select_from, scene_pos).normalized()
            self.selection_item.setRect(r)
            self.selection_item.show()
        elif self._scale is not None:
            self.scale_to(scene_pos, keep_aspect=not event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        elif self._move is not None:
            layer_id, start, (x0, y0) = self._move
            d = scene_pos - start
            self._item(layer_id).setPos(round(x0 + d.x()), round(y0 + d.y()))
            self._update_transform_box()
        else:
            if self.tool == "move":
                self._hover(scene_pos)
            super().mouseMoveEvent(event)
        self.viewport().update(old.united(self._brush_outline_rect()))

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._update_cursor()
            return
        if self._stroke is not None and event.button() == Qt.MouseButton.LeftButton:
            self.end_stroke()
            return
        if self._select_from is not None and event.button() == Qt.MouseButton.LeftButton:
            r = QRectF(self._select_from, self.mapToScene(event.position().toPoint())).normalized()
            self._select_from = None
            self.set_selection((round(r.x()), round(r.y()), round(r.width()), round(r.height())))
            return
        if self._scale is not None and event.button() == Qt.MouseButton.LeftButton:
            self.scale_to(self.mapToScene(event.position().toPoint()),
                          keep_aspect=not event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self.end_scale()
            return
        if self._move is not None and event.button() == Qt.MouseButton.LeftButton:
            layer_id, _start, old = self._move
            self._move = None
            pos = self._item(layer_id).pos()
            new = (int(pos.x()), int(pos.y()))
            if new != old:
                self.vm.push(MoveLayerCommand(self.doc, layer_id, old, new))
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        old = self._brush_outline_rect()
        self._cursor_scene = None
        self.viewport().update(old)
        super().leaveEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802 - the wheel zooms about the cursor, as in image editors
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.15 ** steps, event.position())
        event.accept()

    def event(self, event) -> bool:
        # Esc cancels a scale drag here, before the window's Esc shortcut (Cancel) sees it.
        if event.type() == event.Type.ShortcutOverride and self._scale is not None \
                and event.key() == Qt.Key.Key_Escape:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_Escape and self._scale is not None:
            self._cancel_scale()
            return
        if key == Qt.Key.Key_Shift and self._scale is not None and self._cursor_scene is not None:
            self.scale_to(self._cursor_scene, keep_aspect=False)  # Shift frees the aspect ratio now
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_BracketLeft:
            self.set_brush(size=self.brush.size / 1.2)
            return
        if key == Qt.Key.Key_BracketRight:
            self.set_brush(size=self.brush.size * 1.2)
            return
        if self.vm.staged:
            if key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
                self.vm.cycle_staged(-1)
                return
            if key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
                self.vm.cycle_staged(1)
                return
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
                self.vm.accept_staged()
                return
            if key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
                self.vm.discard_staged()
                return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Shift and self._scale is not None and self._cursor_scene is not None:
            self.scale_to(self._cursor_scene, keep_aspect=True)
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
            return
        super().keyReleaseEvent(event)

    def set_selection(self, rect: tuple[int, int, int, int] | None) -> None:
        """Select a document rectangle (None or an empty one: nothing selected)."""
        if rect is not None and (rect[2] < 1 or rect[3] < 1):
            rect = None
        self.selection = rect
        if rect is None:
            self.selection_item.hide()
        else:
            self.selection_item.setRect(QRectF(*rect))
            self.selection_item.show()
        self.selection_changed.emit(rect)

    # ----------------------------------------------------------------------------- free transform
    def _transform_target(self):
        """The layer the Move tool's box is on: the selected image layer, when shown and on the canvas."""
        layer = self.vm.selected
        if self.tool != "move" or layer.kind != "image" or not layer.visible or layer.id not in self.items:
            return None
        return layer

    def _update_transform_box(self) -> None:
        layer = self._transform_target()
        if layer is None:
            self.transform_box.hide()
            return
        if self._scale is not None and self._scale[0] == layer.id:
            return  # scale_to keeps it in step while dragging
        item = self.items[layer.id]
        self.transform_box.set_rect(item.mapRectToScene(item.boundingRect()), locked=layer.locked)
        self.transform_box.show()

    def _hover(self, scene_pos: QPointF) -> None:
        handle = self.transform_box.hit(scene_pos) if self.transform_box.isVisible() else None
        if handle != self._hover_handle:
            self._hover_handle = handle
            if handle is None:
                self._update_cursor()
            else:
                self.viewport().setCursor(CURSORS[handle])

    def begin_scale(self, scene_pos: QPointF) -> bool:
        """A press on one of the selected layer's handles starts scaling it (True: the press is taken)."""
        layer = self._transform_target()
        handle = self.transform_box.hit(scene_pos) if layer is not None else None
        if handle is None:
            return False
        if layer.locked:
            self.message.emit(scale_problem(layer, layer.width, layer.height), True)
            return True
        self._scale = (layer.id, handle, QPointF(scene_pos), layer.rect, layer.rect)
        return True

    def scale_to(self, scene_pos: QPointF, keep_aspect: bool = True) -> None:
        """Preview the drag: the layer's item is transformed (no resampling); the box and size follow."""
        if self._scale is None:
            return
        layer_id, handle, start, rect0, _shown = self._scale
        d = scene_pos - start
        x, y, w, h = rect = drag_rect(handle, rect0, d.x(), d.y(), keep_aspect)
        self._scale = (layer_id, handle, start, rect0, rect)
        item = self.items[layer_id]
        item.setPos(x, y)
        item.setTransform(QTransform.fromScale(w / rect0[2], h / rect0[3]))
        layer = self.doc.get_layer(layer_id)
        percent = 100.0 * w / rect0[2] if handle not in ("t", "b") else 100.0 * h / rect0[3]
        self.transform_box.set_rect(QRectF(x, y, w, h), invalid=scale_problem(layer, w, h) is not None,
                                    label=f"{w} × {h} px  ({percent:.0f} %)")

    def end_scale(self) -> None:
        """The release: one ScaleLayerCommand (Lanczos once), or a message and the layer as it was."""
        if self._scale is None:
            return
        layer_id, _handle, _start, rect0, (x, y, w, h) = self._scale
        self._scale = None
        layer = self.doc.get_layer(layer_id)
        problem = scale_problem(layer, w, h)
        if problem or (x, y, w, h) == rect0:
            if problem:
                self.message.emit(problem, True)
            self._restore_item(layer_id)
            return
        self.vm.push(ScaleLayerCommand(self.doc, layer_id, w, h, x, y))
        self._update_transform_box()

    def _cancel_scale(self) -> None:
        if self._scale is not None:
            layer_id = self._scale[0]
            self._scale = None
            self._restore_item(layer_id)

    def _restore_item(self, layer_id: str) -> None:
        item = self.items.get(layer_id)
        if item is not None and self.doc.has_layer(layer_id):
            item.setTransform(QTransform())
            layer = self.doc.get_layer(layer_id)
            item.setPos(layer.x, layer.y)
        self._update_transform_box()

    def _frame_dragged(self, frame: Frame) -> None:
        self.vm.push(SetFrameCommand(self.doc, frame))

    # ---------------------------------------------------------------------------------- drops
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        mime = event.mimeData()
        pos = self.mapToScene(event.position().toPoint())
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if paths:
            self.files_dropped.emit(paths, pos)
        elif mime.hasImage():
            self.image_dropped.emit(mime.imageData(), pos)
        event.acceptProposedAction()


class _Offset:
    """A crop of a layer's pixels addressed in the layer's coordinates (what PixelItem.update_rect slices)."""

    def __init__(self, part: np.ndarray, lx: int, ly: int) -> None:
        self.part, self.lx, self.ly = part, lx, ly

    def __getitem__(self, key):
        ys, xs = key
        return self.part[ys.start - self.ly:ys.stop - self.ly, xs.start - self.lx:xs.stop - self.lx]


__all__ = ["CanvasView", "StagingBar", "TOOLS"]
