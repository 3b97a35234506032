"""History: thumbnails of everything made in this document (newest first). Double-click puts a result
back in the staging strip over the frame, so nothing made is lost by not accepting it at once."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QVBoxLayout, QWidget

from aigc_desktop.core.document import HistoryItem, events as ev
from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.document import DocumentViewModel, StagedResult

THUMB = 96


class HistoryPanel(QWidget):
    use_as_init_requested = Signal(object)  # HistoryItem to take as the init image file (More options)

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
        self.list.setToolTip("Everything generated in this document; double-click to stage it over the frame "
                             "again, right-click for more")
        self.setMaximumHeight(THUMB + 48)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._activate)
        # More context-menu entries from other parts of the window: (text, callable(HistoryItem)).
        self.extra_actions: list[tuple[str, Callable[[HistoryItem], None]]] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        document.changed.connect(self._on_event)
        self.rebuild()

    def rebuild(self) -> None:
        self.list.clear()
        for item in self.document.doc.history:
            self._add(item)

    @Slot(object)
    def _on_event(self, event) -> None:
        if isinstance(event, ev.HistoryAdded):
            self._add(self.document.doc.get_history(event.item_id))
        elif isinstance(event, (ev.HistoryRemoved, ev.DocumentReset)):
            self.rebuild()

    def _add(self, entry: HistoryItem) -> None:
        item = QListWidgetItem(QIcon(pil_to_pixmap(entry.thumbnail(THUMB))), "")
        record = entry.record or {}
        tip = [str(record.get("prompt", "")) or "(no prompt)", f"seed {record.get('seed', '?')}"]
        if entry.path:
            tip.append(entry.path)
        item.setToolTip("\n".join(tip))
        item.setData(Qt.ItemDataRole.UserRole, entry.id)
        self.list.insertItem(0, item)  # newest first

    def entry_for(self, item: QListWidgetItem) -> HistoryItem:
        return self.document.doc.get_history(item.data(Qt.ItemDataRole.UserRole))

    def _activate(self, item: QListWidgetItem) -> None:
        self.stage(self.entry_for(item))

    def stage(self, entry: HistoryItem) -> None:
        doc = self.document.doc
        rect = doc.frame.rect if (entry.width, entry.height) == (doc.frame.width, doc.frame.height) else \
            (doc.frame.x, doc.frame.y, entry.width, entry.height)
        self.document.staged.append(StagedResult(entry.image, dict(entry.record or {}), entry.path, rect))
        self.document.staged_index = len(self.document.staged) - 1
        self.document.staging_changed.emit()

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        entry = self.entry_for(item)
        menu = QMenu(self)
        show = menu.addAction("Stage over the frame")
        show.triggered.connect(lambda: self.stage(entry))
        use = menu.addAction("Use as init image file (More options)")
        use.triggered.connect(lambda: self.use_as_init_requested.emit(entry))
        for text, fn in self.extra_actions:
            menu.addAction(text).triggered.connect(lambda _checked=False, fn=fn: fn(entry))
        if entry.path:
            folder = menu.addAction("Open containing folder")
            folder.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(entry.path).parent))))
        menu.exec(self.list.mapToGlobal(pos))
