"""History: thumbnails of everything made this session (newest first); click to bring it to the canvas."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget

from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.document import CanvasImage, DocumentViewModel

THUMB = 96


class HistoryPanel(QWidget):
    use_as_init_requested = Signal(object)  # CanvasImage to take as the init image (img2img)

    def __init__(self, document: DocumentViewModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("HistoryPanel")
        self.document = document
        self.list = QListWidget()
        self.list.setObjectName("historyList")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setSpacing(4)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)  # one strip of thumbnails, newest on the left
        self.setMaximumHeight(THUMB + 48)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._activate)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        self.entries: list[CanvasImage] = []
        document.images_added.connect(self.on_images_added)

    @Slot(object)
    def on_images_added(self, items: list[CanvasImage]) -> None:
        for entry in items:
            thumb = entry.image.copy()
            thumb.thumbnail((THUMB, THUMB))
            item = QListWidgetItem(QIcon(pil_to_pixmap(thumb)), "")
            record = entry.record
            tip = [str(record.get("prompt", "")) or "(no prompt)", f"seed {record.get('seed', '?')}"]
            if entry.path:
                tip.append(entry.path)
            item.setToolTip("\n".join(tip))
            item.setData(Qt.ItemDataRole.UserRole, len(self.entries))
            self.entries.append(entry)
            self.list.insertItem(0, item)  # newest first

    def entry_for(self, item: QListWidgetItem) -> CanvasImage:
        return self.entries[item.data(Qt.ItemDataRole.UserRole)]

    def _activate(self, item: QListWidgetItem) -> None:
        self.document.focus_requested.emit(self.entry_for(item))

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        entry = self.entry_for(item)
        menu = QMenu(self)
        show = menu.addAction("Show on canvas")
        show.triggered.connect(lambda: self.document.focus_requested.emit(entry))
        use = menu.addAction("Use as init image (img2img)")
        use.triggered.connect(lambda: self.use_as_init_requested.emit(entry))
        if entry.path:
            folder = menu.addAction("Open containing folder")
            from pathlib import Path

            folder.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(entry.path).parent))))
        menu.exec(self.list.mapToGlobal(pos))
