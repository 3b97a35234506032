"""The canvas tool bar: tools, brush size / hardness / opacity / colour, zoom."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QKeySequence
from PySide6.QtWidgets import QColorDialog, QLabel, QSpinBox, QToolBar, QToolButton

from aigc_desktop.ui.canvas.view import CanvasView
from aigc_desktop.ui.icons import icon

TOOL_INFO = (("brush", "Brush", "B", "Paint on the selected layer, or on the mask when Mask is selected (B)"),
             ("eraser", "Eraser", "E", "Erase on the selected layer or the mask (E)"),
             ("move", "Move", "V", "Drag the selected layer (V); its handles scale it (corners keep the aspect "
                                   "ratio, Shift frees it; Esc cancels); drag the frame by its edges"),
             ("frame", "Frame", "F", "Drag the generation frame anywhere inside it; edges resize it (F)"),
             ("select", "Select", "M", "Select a rectangle (M): then mask it, unmask it or put the frame on it "
                                       "(Edit menu)"))


class CanvasToolBar(QToolBar):
    def __init__(self, canvas: CanvasView, parent=None) -> None:
        super().__init__("Canvas", parent)
        self.setObjectName("CanvasToolBar")
        self.canvas = canvas
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for key, label, shortcut, tip in TOOL_INFO:
            a = QAction(icon(key), label, self)
            a.setCheckable(True)
            a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(tip)
            a.triggered.connect(lambda _=False, k=key: canvas.set_tool(k))
            group.addAction(a)
            self.addAction(a)
            self.tool_actions[key] = a
        self.tool_actions[canvas.tool].setChecked(True)
        canvas.tool_changed.connect(lambda k: self.tool_actions[k].setChecked(True))
        self.addSeparator()
        self.size = QSpinBox()
        self.size.setRange(1, 1024)
        self.size.setSuffix(" px")
        self.size.setToolTip("Brush size ([ smaller, ] larger)")
        self.hardness = QSpinBox()
        self.hardness.setRange(0, 100)
        self.hardness.setSuffix(" %")
        self.hardness.setToolTip("Brush hardness: 0 % soft edge, 100 % hard edge")
        self.opacity = QSpinBox()
        self.opacity.setRange(1, 100)
        self.opacity.setSuffix(" %")
        self.opacity.setToolTip("Brush opacity (one stroke never builds up past it)")
        for label, box in (("Size", self.size), ("Hard", self.hardness), ("Opacity", self.opacity)):
            self.addWidget(QLabel(f" {label} "))
            box.setMaximumWidth(76)
            self.addWidget(box)
        self.color = QToolButton()
        self.color.setToolTip("Brush colour for image layers (the mask always paints white = repaint)")
        self.color.clicked.connect(self._pick_color)
        self.addWidget(self.color)
        self.size.valueChanged.connect(lambda v: canvas.set_brush(size=float(v)))
        self.hardness.valueChanged.connect(lambda v: canvas.set_brush(hardness=v / 100))
        self.opacity.valueChanged.connect(lambda v: canvas.set_brush(opacity=v / 100))
        canvas.brush_changed.connect(self._show_brush)
        self._show_brush(canvas.brush)
        self.addSeparator()
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_label.setToolTip("Zoom (wheel zooms about the cursor; Ctrl+0 fits, Ctrl+1 is 100 %)")
        self.addWidget(self.zoom_label)
        canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))

    def refresh_icons(self) -> None:
        from aigc_desktop.ui.icons import clear_cache

        clear_cache()
        for key, action in self.tool_actions.items():
            action.setIcon(icon(key))

    def _show_brush(self, brush) -> None:
        for box, value in ((self.size, round(brush.size)), (self.hardness, round(brush.hardness * 100)),
                           (self.opacity, round(brush.opacity * 100))):
            if box.value() != value:
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)
        from PySide6.QtGui import QPixmap

        pm = QPixmap(16, 16)
        pm.fill(QColor(*brush.color))
        self.color.setIcon(QIcon(pm))

    def _pick_color(self) -> None:
        c = QColorDialog.getColor(QColor(*self.canvas.brush.color), self, "Brush colour")
        if c.isValid():
            self.canvas.set_brush(color=(c.red(), c.green(), c.blue()))
