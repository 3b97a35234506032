"""The Layers panel: the mask and the image layers (top first) with thumbnails; drag to reorder, tick to
show / hide, double-click to rename; opacity, lock, new, duplicate, delete, merge down for the selected one.
The selected row is where the brush paints. Every change is an undo command on the document."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QSlider, QToolButton, QVBoxLayout, QWidget)

from aigc_desktop.core.document import Layer, events as ev
from aigc_desktop.ui.canvas import commands as cmd
from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.document import DocumentViewModel

THUMB = 40
ID_ROLE = Qt.ItemDataRole.UserRole


class LayersPanel(QWidget):
    def __init__(self, document: DocumentViewModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("LayersPanel")
        self.vm = document
        self.list = QListWidget()
        self.list.setObjectName("layerList")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.setToolTip("Drag to reorder; tick to show; double-click to rename. Painting goes to the "
                             "selected row (the mask or an image layer)")
        self.list.model().rowsMoved.connect(self._on_rows_moved)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)

        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the selected layer")
        self.opacity.valueChanged.connect(self._on_opacity)
        self.opacity_label = QLabel("100%")
        self.opacity_label.setMinimumWidth(36)
        self.lock = QCheckBox("Lock")
        self.lock.setToolTip("A locked layer cannot be painted on or moved")
        self.lock.toggled.connect(self._on_lock)
        props = QHBoxLayout()
        props.addWidget(QLabel("Opacity"))
        props.addWidget(self.opacity, 1)
        props.addWidget(self.opacity_label)
        props.addWidget(self.lock)

        self.buttons: dict[str, QToolButton] = {}
        row = QHBoxLayout()
        for key, label, tip, slot in (
                ("new", "New", "New empty layer the size of the frame", self.new_layer),
                ("duplicate", "Duplicate", "Duplicate the selected layer", self.duplicate),
                ("delete", "Delete", "Delete the selected layer (Clear for the mask)", self.delete),
                ("merge", "Merge down", "Merge the selected layer into the one below", self.merge_down),
                ("fit", "Fit", "Scale the selected layer to fit the frame", self.fit_to_frame),
                ("up", "▲", "Move the layer up", lambda: self.shift(1)),
                ("down", "▼", "Move the layer down", lambda: self.shift(-1))):
            b = QToolButton(text=label)
            b.setObjectName(f"layer_{key}")
            b.setToolTip(tip)
            b.clicked.connect(slot)
            row.addWidget(b)
            self.buttons[key] = b
        row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(props)
        layout.addLayout(row)
        self._updating = False
        self._thumb_timer = QTimer(self, singleShot=True, interval=150)
        self._thumb_timer.timeout.connect(self._refresh_icons)
        document.changed.connect(self._on_event)
        document.selection_changed.connect(lambda _id: self.rebuild())
        self.rebuild()

    # -- list <-> document
    def _rows(self) -> list[Layer]:
        doc = self.vm.doc
        return [doc.mask] + list(reversed(doc.layers))

    def rebuild(self) -> None:
        self._updating = True
        try:
            self.list.clear()
            for layer in self._rows():
                item = QListWidgetItem(QIcon(pil_to_pixmap(self._thumb(layer))), self._label(layer))
                item.setData(ID_ROLE, layer.id)
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
                if layer.kind == "image":
                    flags |= Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDragEnabled
                item.setFlags(flags)
                item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
                tip = f"{layer.name}: {layer.width}×{layer.height} at ({layer.x}, {layer.y})"
                if layer.record:
                    tip += f"\n{layer.record.get('prompt', '')}\nseed {layer.record.get('seed', '?')}"
                item.setToolTip(tip)
                self.list.addItem(item)
                if layer.id == self.vm.selected_id:
                    self.list.setCurrentItem(item)
            self._sync_props()
        finally:
            self._updating = False

    @staticmethod
    def _label(layer: Layer) -> str:
        return layer.name + ("  🔒" if layer.locked else "")

    def _thumb(self, layer: Layer):
        if layer.kind == "mask":
            from PIL import Image

            t = layer.thumbnail(THUMB)
            bg = Image.new("RGB", t.size, (40, 40, 44))
            bg.paste((176, 64, 255), mask=t)
            return bg
        return layer.thumbnail(THUMB)

    def _refresh_icons(self) -> None:
        doc = self.vm.doc
        for i in range(self.list.count()):
            item = self.list.item(i)
            layer_id = item.data(ID_ROLE)
            if doc.has_layer(layer_id):
                item.setIcon(QIcon(pil_to_pixmap(self._thumb(doc.get_layer(layer_id)))))

    def _sync_props(self) -> None:
        layer = self.vm.selected
        is_image = layer.kind == "image"
        self.opacity.blockSignals(True)
        self.opacity.setValue(round(layer.opacity * 100))
        self.opacity.blockSignals(False)
        self.opacity_label.setText(f"{round(layer.opacity * 100)}%")
        self.lock.blockSignals(True)
        self.lock.setChecked(layer.locked)
        self.lock.blockSignals(False)
        index = self.vm.doc.index_of(layer.id) if is_image else -1
        self.buttons["duplicate"].setEnabled(is_image)
        self.buttons["fit"].setEnabled(is_image and not layer.locked)
        self.buttons["delete"].setText("Delete" if is_image else "Clear")
        self.buttons["merge"].setEnabled(is_image and index > 0)
        self.buttons["up"].setEnabled(is_image and index < len(self.vm.doc.layers) - 1)
        self.buttons["down"].setEnabled(is_image and index > 0)

    @Slot(object)
    def _on_event(self, event) -> None:
        if isinstance(event, ev.PixelsChanged):
            self._thumb_timer.start()
        elif isinstance(event, (ev.LayerMoved, ev.ViewChanged, ev.FrameChanged, ev.HistoryAdded, ev.HistoryRemoved,
                                ev.PromptStateChanged, ev.ModelChanged, ev.TimelineChanged)):
            return
        else:
            self.rebuild()

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if self._updating or current is None:
            return
        self.vm.select(current.data(ID_ROLE))
        self._sync_props()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        doc = self.vm.doc
        layer = doc.get_layer(item.data(ID_ROLE))
        visible = item.checkState() == Qt.CheckState.Checked
        if visible != layer.visible:
            self.vm.push(cmd.SetLayerPropertyCommand(doc, layer.id, "visible", visible))
            return
        name = item.text().replace("  🔒", "").strip()
        if layer.kind == "image" and name and name != layer.name:
            self.vm.push(cmd.SetLayerPropertyCommand(doc, layer.id, "name", name))

    def _on_rows_moved(self, *_args) -> None:
        if self._updating:
            return
        ids = [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]
        mask_id = self.vm.doc.mask.id
        wanted = [i for i in reversed(ids) if i != mask_id]  # bottom -> top
        current = [la.id for la in self.vm.doc.layers]
        for layer_id in current:
            if [i for i in wanted if i != layer_id] == [i for i in current if i != layer_id] and \
                    wanted.index(layer_id) != current.index(layer_id):
                self.vm.push(cmd.ReorderLayerCommand(self.vm.doc, layer_id, wanted.index(layer_id)))
                break
        QTimer.singleShot(0, self.rebuild)  # the mask row goes back on top

    # -- actions
    def _on_opacity(self, value: int) -> None:
        self.opacity_label.setText(f"{value}%")
        layer = self.vm.selected
        if layer.kind == "image" and abs(layer.opacity - value / 100) > 1e-6:
            self.vm.push(cmd.SetLayerPropertyCommand(self.vm.doc, layer.id, "opacity", value / 100))

    def _on_lock(self, locked: bool) -> None:
        layer = self.vm.selected
        if layer.locked != locked:
            self.vm.push(cmd.SetLayerPropertyCommand(self.vm.doc, layer.id, "locked", locked))

    def new_layer(self) -> None:
        f = self.vm.doc.frame
        n = len(self.vm.doc.layers) + 1
        layer = Layer(None, name=f"Layer {n}", x=f.x, y=f.y, width=f.width, height=f.height)
        index = self.vm.doc.index_of(self.vm.selected_id) + 1 if self.vm.selected.kind == "image" else None
        self.vm.push(cmd.AddLayerCommand(self.vm.doc, layer, index, text="New layer"))

    def duplicate(self) -> None:
        if self.vm.selected.kind == "image":
            self.vm.push(cmd.duplicate_layer_command(self.vm.doc, self.vm.selected_id))

    def delete(self) -> None:
        layer = self.vm.selected
        if layer.kind == "mask":
            self.vm.push(cmd.clear_mask_command(self.vm.doc))
        else:
            self.vm.push(cmd.RemoveLayerCommand(self.vm.doc, layer.id))

    def merge_down(self) -> None:
        if self.vm.selected.kind == "image":
            command = cmd.merge_down_command(self.vm.doc, self.vm.selected_id)
            if command is not None:
                self.vm.push(command)

    def fit_to_frame(self) -> None:
        if self.vm.selected.kind == "image" and not self.vm.selected.locked:
            self.vm.push(cmd.fit_to_frame_command(self.vm.doc, self.vm.selected_id))

    def shift(self, step: int) -> None:
        layer = self.vm.selected
        if layer.kind != "image":
            return
        index = self.vm.doc.index_of(layer.id) + step
        if 0 <= index < len(self.vm.doc.layers):
            self.vm.push(cmd.ReorderLayerCommand(self.vm.doc, layer.id, index))
