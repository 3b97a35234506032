"""The job queue dock: every job with its state; remove queued jobs, cancel the running one."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from aigc_desktop.core.queue import JobState
from aigc_desktop.ui.viewmodels.queue import QueueViewModel

_STATE_MARK = {JobState.QUEUED: "⏳", JobState.RUNNING: "▶", JobState.FINISHED: "✔",
               JobState.CANCELLED: "✖", JobState.FAILED: "⚠"}


class QueuePanel(QWidget):
    def __init__(self, queue: QueueViewModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("QueuePanel")
        self.queue = queue
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.remove = QPushButton("Remove / Cancel")
        self.remove.setToolTip("Remove the selected queued job, or cancel it when it runs")
        self.remove.clicked.connect(self._remove_selected)
        self.clear = QPushButton("Clear finished")
        self.clear.setToolTip("Remove finished, failed and cancelled jobs from the list")
        self.clear.clicked.connect(self.queue.clear_done)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove)
        buttons.addWidget(self.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        queue.jobs_changed.connect(self.rebuild)
        queue.progress_changed.connect(self._on_progress)

    @Slot()
    def rebuild(self) -> None:
        selected = self._selected_id()
        self.list.clear()
        for row in self.queue.rows.values():
            item = QListWidgetItem(self._text(row))
            item.setData(Qt.ItemDataRole.UserRole, row.job_id)
            if row.message:
                item.setToolTip(row.message)
            self.list.addItem(item)
            if row.job_id == selected:
                self.list.setCurrentItem(item)

    def _text(self, row) -> str:
        state = "not saved" if getattr(row, "unsaved", False) else row.state.value
        text = f"{_STATE_MARK[row.state]} {row.title} — {state}"
        if row.state is JobState.RUNNING and row.total:
            text += f" {row.step}/{row.total}"
        if row.state is JobState.FAILED and row.message:
            text += f": {row.message.removeprefix('Not saved: ') if row.unsaved else row.message}"
        return text

    @Slot(str, int, int, float, object)
    def _on_progress(self, job_id: str, *_args) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == job_id and job_id in self.queue.rows:
                item.setText(self._text(self.queue.rows[job_id]))

    def _selected_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _remove_selected(self) -> None:
        job_id = self._selected_id()
        if job_id:
            self.queue.cancel(job_id)
