"""Free transform of the selected layer with the Move tool: its bounding box with corner and edge handles.

Dragging a handle previews the new size by transforming the layer's scene item (no resampling while the
mouse moves); the view turns the release into one ScaleLayerCommand, which resamples once (Lanczos).
Corners keep the aspect ratio (Shift frees it), edges scale one axis; the opposite side stays put.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem

HANDLE = 9.0  # handle size in screen pixels
HIT = 7.0  # how far (screen pixels) from a handle's centre a press still takes it
CORNERS = ("lt", "rt", "lb", "rb")
EDGES = ("t", "b", "l", "r")
CURSORS = {"l": Qt.CursorShape.SizeHorCursor, "r": Qt.CursorShape.SizeHorCursor,
           "t": Qt.CursorShape.SizeVerCursor, "b": Qt.CursorShape.SizeVerCursor,
           "lt": Qt.CursorShape.SizeFDiagCursor, "rb": Qt.CursorShape.SizeFDiagCursor,
           "rt": Qt.CursorShape.SizeBDiagCursor, "lb": Qt.CursorShape.SizeBDiagCursor}


def drag_rect(handle: str, rect: tuple[int, int, int, int], dx: float, dy: float,
              keep_aspect: bool) -> tuple[int, int, int, int]:
    """The layer rectangle (x, y, w, h) after dragging `handle` by (dx, dy) document pixels: the opposite
    side (or corner) stays put, the size never drops below 1 px and never flips. A corner with
    `keep_aspect` scales both axes by one factor (the drag projected onto the box's diagonal)."""
    x0, y0, w0, h0 = rect
    w, h = float(w0), float(h0)
    if "l" in handle:
        w = w0 - dx
    elif "r" in handle:
        w = w0 + dx
    if "t" in handle:
        h = h0 - dy
    elif "b" in handle:
        h = h0 + dy
    if keep_aspect and handle in CORNERS:
        s = (w * w0 + h * h0) / float(w0 * w0 + h0 * h0)
        w, h = w0 * s, h0 * s
    nw, nh = max(1, round(w)), max(1, round(h))
    nx = x0 + w0 - nw if "l" in handle else x0
    ny = y0 + h0 - nh if "t" in handle else y0
    return nx, ny, nw, nh


class TransformBox(QGraphicsItem):
    """The selected layer's bounding box and its eight handles, drawn at a constant screen size. It takes
    no mouse input itself (the view hit-tests it: `hit`), and has no shape, so `itemAt` looks through it."""

    def __init__(self) -> None:
        super().__init__()
        self.rect = QRectF()
        self.locked = False
        self.invalid = False  # the size being dragged is past the limit: drawn red, refused on release
        self.label = ""  # the size while dragging
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)

    def _scale(self) -> float:
        views = self.scene().views() if self.scene() else []
        return max(1e-6, views[0].transform().m11()) if views else 1.0

    def set_rect(self, rect: QRectF, *, locked: bool = False, invalid: bool = False, label: str = "") -> None:
        if (rect, locked, invalid, label) == (self.rect, self.locked, self.invalid, self.label):
            return
        self.prepareGeometryChange()
        self.rect, self.locked, self.invalid, self.label = QRectF(rect), locked, invalid, label
        self.update()

    def handles(self, scale: float | None = None) -> dict[str, QPointF]:
        """Handle centres in scene coordinates; edge handles only when the box is large enough on screen
        to tell them from the corners."""
        r, scale = self.rect, scale or self._scale()
        cx, cy = r.center().x(), r.center().y()
        out = {"lt": r.topLeft(), "rt": r.topRight(), "lb": r.bottomLeft(), "rb": r.bottomRight()}
        if r.width() * scale >= 4 * HANDLE:
            out.update(t=QPointF(cx, r.top()), b=QPointF(cx, r.bottom()))
        if r.height() * scale >= 4 * HANDLE:
            out.update(l=QPointF(r.left(), cy), r=QPointF(r.right(), cy))
        return out

    def hit(self, scene_pos: QPointF) -> str | None:
        """The handle under a scene position (corners first), or None."""
        if not self.isVisible() or self.rect.isEmpty():
            return None
        scale = self._scale()
        tol = HIT / scale
        best, best_d = None, None
        for name, c in self.handles(scale).items():
            d = max(abs(scene_pos.x() - c.x()), abs(scene_pos.y() - c.y()))
            if d <= tol and (best_d is None or d < best_d or (d == best_d and name in CORNERS)):
                best, best_d = name, d
        return best

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        m = (HANDLE + 2) / self._scale()
        r = self.rect.adjusted(-m, -m, m, m)
        if self.label:
            r = r.united(QRectF(self.rect.left(), self.rect.bottom(), 220 / self._scale(), 30 / self._scale()))
        return r

    def shape(self) -> QPainterPath:
        return QPainterPath()  # look-through: presses and itemAt reach what lies beneath

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self.rect.isEmpty():
            return
        scale = painter.worldTransform().m11() or 1.0
        if self.invalid:
            color = QColor(255, 90, 80)
        elif self.locked:
            color = QColor(150, 150, 150)
        else:
            color = QColor(255, 255, 255)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 170), 3.0 / scale))
        painter.drawRect(self.rect)
        line = QPen(color, 1.0 / scale, Qt.PenStyle.DashLine if self.locked else Qt.PenStyle.SolidLine)
        painter.setPen(line)
        painter.drawRect(self.rect)
        hs = HANDLE / scale
        # Filled handles; a locked layer's are hollow and grey (a press on them says why nothing happens).
        painter.setPen(QPen(color if self.locked else QColor(0, 0, 0, 200), 1.0 / scale))
        painter.setBrush(Qt.BrushStyle.NoBrush if self.locked else QBrush(color))
        for c in self.handles(scale).values():
            painter.drawRect(QRectF(c.x() - hs / 2, c.y() - hs / 2, hs, hs))
        if self.label:
            painter.save()
            painter.translate(self.rect.left(), self.rect.bottom())
            painter.scale(1 / scale, 1 / scale)
            font = painter.font()
            font.setPixelSize(12)
            painter.setFont(font)
            text_rect = painter.fontMetrics().boundingRect(self.label).adjusted(-4, -2, 4, 2)
            text_rect.moveTopLeft(QPointF(0, 8).toPoint())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(20, 20, 24, 210))
            painter.drawRoundedRect(text_rect, 3, 3)
            painter.setPen(color)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, self.label)
            painter.restore()


__all__ = ["TransformBox", "drag_rect", "CURSORS", "CORNERS", "EDGES"]
