"""Scene items mirroring the document: image layers, the tinted mask, the generation frame, the preview.

Layer pixels are shown from a premultiplied QImage (Qt's fast format) that is updated one rectangle at a
time (a brush dab, a PixelsChanged event), so painting on a 2048x2048 layer never converts the whole image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QCursor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from aigc_desktop.core.document import Frame

MASK_TINT = (176, 64, 255)  # the mask shows as a translucent violet overlay (visible on reds and skin)
MASK_ALPHA = 0.55


def rgba_to_qimage(arr: np.ndarray) -> QImage:
    """(h, w, 4) uint8 straight-alpha RGBA -> premultiplied ARGB32 QImage (a copy)."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    q = QImage(arr.data, w, h, w * 4, QImage.Format.Format_RGBA8888)
    return q.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def mask_to_rgba(mask: np.ndarray) -> np.ndarray:
    out = np.empty(mask.shape + (4,), dtype=np.uint8)
    out[..., 0], out[..., 1], out[..., 2] = MASK_TINT
    out[..., 3] = (mask.astype(np.uint16) * int(MASK_ALPHA * 256) >> 8).astype(np.uint8)
    return out


class PixelItem(QGraphicsItem):
    """Shows an RGBA (or, for the mask, a tinted L) pixel array placed at document (x, y)."""

    def __init__(self, layer_id: str, is_mask: bool = False) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.is_mask = is_mask
        self.image = QImage()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        # Rendered once at screen resolution (the visible part): previews and strokes over it then blit
        # from the cache instead of rescaling a large image on every repaint.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_pixels(self, x: int, y: int, pixels: np.ndarray) -> None:
        """Replace everything (new layer, geometry change, stroke outside the layer)."""
        self.prepareGeometryChange()
        self.image = rgba_to_qimage(mask_to_rgba(pixels) if self.is_mask else pixels)
        self.setPos(x, y)
        self.update()

    def update_rect(self, pixels: np.ndarray, lx: int, ly: int, w: int, h: int) -> None:
        """Redraw the item-local rectangle from `pixels` (the full array in item coordinates)."""
        x0, y0 = max(0, lx), max(0, ly)
        x1, y1 = min(self.image.width(), lx + w), min(self.image.height(), ly + h)
        if x1 <= x0 or y1 <= y0:
            return
        part = pixels[y0:y1, x0:x1]
        patch = rgba_to_qimage(mask_to_rgba(part) if self.is_mask else part)
        p = QPainter(self.image)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(x0, y0, patch)
        p.end()
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return QRectF(0, 0, self.image.width(), self.image.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self.image.isNull():
            return
        r = option.exposedRect.toAlignedRect().intersected(self.image.rect())
        if r.isEmpty():
            return
        # Nearest-neighbour when zoomed in (see the pixels), smooth when zoomed out and while a scale is
        # previewed (closer to the Lanczos result the release makes).
        scale = painter.worldTransform().m11()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                              scale < 1.0 or not self.transform().isIdentity())
        painter.drawImage(r, self.image, r)


class PreviewItem(QGraphicsItem):
    """The live step previews inside the frame; a batch shows as a grid of its images."""

    def __init__(self) -> None:
        super().__init__()
        self.rect = QRectF()
        self.cells: list[tuple[QRectF, QImage]] = []
        self._keep: list = []  # the bytes the preview QImages point into
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_pil_images(self, images: list, rect: tuple[int, int, int, int]) -> None:
        """Previews straight from PIL: the QImages share the bytes (no second copy per step)."""
        qimages, keep = [], []
        for im in images:
            if im.mode not in ("RGB", "RGBA"):
                im = im.convert("RGB")
            data = im.tobytes()
            fmt = QImage.Format.Format_RGB888 if im.mode == "RGB" else QImage.Format.Format_RGBA8888
            qimages.append(QImage(data, im.width, im.height, im.width * len(im.mode), fmt))
            keep.append(data)
        self._keep = keep
        self.set_images(qimages, rect)

    def set_images(self, pixmaps: list, rect: tuple[int, int, int, int]) -> None:
        self.prepareGeometryChange()
        x, y, w, h = rect
        self.setPos(x, y)
        self.rect = QRectF(0, 0, w, h)
        n = max(1, len(pixmaps))
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        self.cells = []
        for i, pm in enumerate(pixmaps):
            cw, ch = w / cols, h / rows
            self.cells.append((QRectF((i % cols) * cw, (i // cols) * ch, cw, ch), pm))
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self.rect

    def paint(self, painter: QPainter, option, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for cell, im in self.cells:
            if isinstance(im, QImage):
                painter.drawImage(cell, im, QRectF(im.rect()))
            else:
                painter.drawPixmap(cell, im, QRectF(im.rect()))


HANDLE = 10.0  # handle size in screen pixels


class FrameItem(QGraphicsItem):
    """The generation frame: drag its body to move it, its edges and corners to resize it; snaps to 8.
    The view turns the finished drag into one SetFrameCommand (`on_changed(frame)`)."""

    def __init__(self, on_changed) -> None:
        super().__init__()
        self.frame = Frame()
        self.on_changed = on_changed
        self.setAcceptHoverEvents(True)
        self.setZValue(2000)
        self._drag: tuple[str, QPointF, Frame] | None = None
        self.live = Frame()
        self.interactive = True
        self.body_drag = False  # the Frame tool: drag anywhere inside to move it
        self.hint = ""  # shown inside the frame while the canvas is empty

    def set_frame(self, frame: Frame) -> None:
        self.prepareGeometryChange()
        self.frame = self.live = frame
        self.update()

    def _handle_size(self) -> float:
        view_scale = self.scene().views()[0].transform().m11() if self.scene() and self.scene().views() else 1.0
        return HANDLE / max(1e-3, view_scale)

    def boundingRect(self) -> QRectF:  # noqa: N802
        f, m = self.live, self._handle_size() * 2
        return QRectF(f.x - m, f.y - m, f.width + 2 * m, f.height + 2 * m)

    def shape(self):  # only the border band and the handles take the mouse, not the inside
        from PySide6.QtGui import QPainterPath

        f, m = self.live, self._handle_size()
        path = QPainterPath()
        outer = QRectF(f.x - m, f.y - m, f.width + 2 * m, f.height + 2 * m)
        if self.body_drag:
            path.addRect(outer)
            return path
        inner = QRectF(f.x + m, f.y + m, max(0.0, f.width - 2 * m), max(0.0, f.height - 2 * m))
        path.addRect(outer)
        path.addRect(inner)
        # Dragging from the label tab moves the frame as well.
        path.addRect(QRectF(f.x, f.y - 3 * m, 12 * m, 3 * m))
        return path

    def paint(self, painter: QPainter, option, widget=None) -> None:
        f = self.live
        scale = painter.worldTransform().m11() or 1.0
        pen = QPen(QColor(90, 170, 255), 2.0 / scale)
        pen.setCosmetic(False)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(f.x, f.y, f.width, f.height))
        hs = HANDLE / scale
        painter.setBrush(QBrush(QColor(90, 170, 255)))
        for cx, cy in self._corners(f):
            painter.drawRect(QRectF(cx - hs / 2, cy - hs / 2, hs, hs))
        # The size above the top-left corner, and a hint inside an empty frame, in screen pixels.
        painter.save()
        painter.translate(f.x, f.y)
        painter.scale(1 / scale, 1 / scale)
        font = painter.font()
        font.setPixelSize(12)
        painter.setFont(font)
        painter.setPen(QColor(230, 240, 255))
        painter.drawText(QPointF(2, -5), f"{f.width}×{f.height}")
        if self.hint:
            painter.setPen(QColor(150, 160, 180))
            box = QRectF(8, 8, f.width * scale - 16, f.height * scale - 16)
            if box.width() > 120 and box.height() > 40:
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.hint)
        painter.restore()

    @staticmethod
    def _corners(f: Frame):
        return [(f.x, f.y), (f.x + f.width, f.y), (f.x, f.y + f.height), (f.x + f.width, f.y + f.height)]

    def _hit(self, pos: QPointF) -> str:
        f, m = self.frame, self._handle_size()
        left, right = abs(pos.x() - f.x) <= m, abs(pos.x() - (f.x + f.width)) <= m
        top, bottom = abs(pos.y() - f.y) <= m, abs(pos.y() - (f.y + f.height)) <= m
        edges = ("l" if left else "r" if right else "") + ("t" if top else "b" if bottom else "")
        return edges or "move"

    def hoverMoveEvent(self, event) -> None:  # noqa: N802
        hit = self._hit(event.pos())
        shapes = {"l": Qt.CursorShape.SizeHorCursor, "r": Qt.CursorShape.SizeHorCursor,
                  "t": Qt.CursorShape.SizeVerCursor, "b": Qt.CursorShape.SizeVerCursor,
                  "lt": Qt.CursorShape.SizeFDiagCursor, "rb": Qt.CursorShape.SizeFDiagCursor,
                  "rt": Qt.CursorShape.SizeBDiagCursor, "lb": Qt.CursorShape.SizeBDiagCursor}
        self.setCursor(QCursor(shapes.get(hit, Qt.CursorShape.SizeAllCursor)))

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or not self.interactive:
            event.ignore()
            return
        self._drag = (self._hit(event.pos()), event.pos(), self.frame)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag is None:
            return
        hit, start, f0 = self._drag
        d = event.pos() - start
        x0, y0, x1, y1 = f0.x, f0.y, f0.x + f0.width, f0.y + f0.height
        if hit == "move":
            x0, x1, y0, y1 = x0 + d.x(), x1 + d.x(), y0 + d.y(), y1 + d.y()
        if "l" in hit:
            x0 = min(x0 + d.x(), x1 - 8)
        if "r" in hit:
            x1 = max(x1 + d.x(), x0 + 8)
        if "t" in hit:
            y0 = min(y0 + d.y(), y1 - 8)
        if "b" in hit:
            y1 = max(y1 + d.y(), y0 + 8)
        if hit == "move":
            new = Frame.snapped(x0, y0, f0.width, f0.height)
        else:
            new = Frame.snapped(x0, y0, x1 - x0, y1 - y0)
        if new != self.live:
            self.prepareGeometryChange()
            self.live = new
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag is None:
            return
        self._drag = None
        if self.live != self.frame:
            self.on_changed(self.live)
