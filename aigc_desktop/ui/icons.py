"""Small tool icons drawn with QPainter (no image files, no licence to track), crisp at any DPI."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

_cache: dict[str, QIcon] = {}


def _ink() -> QColor:
    """The theme's text colour, so icons read on dark and light themes alike."""
    from PySide6.QtGui import QGuiApplication, QPalette

    app = QGuiApplication.instance()
    return app.palette().color(QPalette.ColorRole.ButtonText) if app is not None else QColor(128, 128, 136)


def clear_cache() -> None:
    _cache.clear()


def _draw(name: str, p: QPainter, s: float) -> None:
    ink = _ink()
    pen = QPen(ink, s / 12, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    if name == "brush":
        p.setBrush(ink)
        path = QPainterPath(QPointF(s * .2, s * .8))
        path.cubicTo(QPointF(s * .25, s * .6), QPointF(s * .4, s * .55), QPointF(s * .45, s * .6))
        path.lineTo(QPointF(s * .35, s * .75))
        path.closeSubpath()
        p.drawPath(path)
        p.drawLine(QPointF(s * .45, s * .55), QPointF(s * .82, s * .18))
    elif name == "eraser":
        p.setBrush(QColor(230, 120, 140))
        path = QPainterPath(QPointF(s * .15, s * .6))
        for x, y in ((s * .5, s * .25), (s * .85, s * .55), (s * .55, s * .85), (s * .4, s * .85)):
            path.lineTo(QPointF(x, y))
        path.closeSubpath()
        p.drawPath(path)
    elif name == "move":
        c = s / 2
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            tip = QPointF(c + dx * s * .38, c + dy * s * .38)
            p.drawLine(QPointF(c, c), tip)
            p.drawLine(tip, QPointF(tip.x() - dx * s * .12 - dy * s * .1, tip.y() - dy * s * .12 - dx * s * .1))
            p.drawLine(tip, QPointF(tip.x() - dx * s * .12 + dy * s * .1, tip.y() - dy * s * .12 + dx * s * .1))
    elif name == "select":
        p.setPen(QPen(ink, s / 14, Qt.PenStyle.DashLine))
        p.drawRect(QRectF(s * .18, s * .22, s * .64, s * .56))
    elif name == "frame":
        p.setPen(QPen(QColor(90, 170, 255), s / 10))
        p.drawRect(QRectF(s * .18, s * .22, s * .64, s * .56))
        p.setBrush(QColor(90, 170, 255))
        for x, y in ((.18, .22), (.82, .22), (.18, .78), (.82, .78)):
            p.drawRect(QRectF(s * x - s * .06, s * y - s * .06, s * .12, s * .12))


def icon(name: str) -> QIcon:
    if name not in _cache:
        ic = QIcon()
        for size in (16, 24, 32, 48):
            pm = QPixmap(size, size)
            pm.fill(Qt.GlobalColor.transparent)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            _draw(name, p, float(size))
            p.end()
            ic.addPixmap(pm)
        _cache[name] = ic
    return _cache[name]
