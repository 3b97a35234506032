"""The window's one message area, over the canvas: errors stay until closed or replaced, notes fade after
a while; a message may offer one action (e.g. "Restore parameters"). Never modal."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton


class MessageBar(QFrame):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel("")
        self.label.setObjectName("messageText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QToolButton()
        self.action.setObjectName("messageAction")
        self.action.hide()
        self.close_button = QToolButton(text="✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.clear)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.label, 1)
        row.addWidget(self.action)
        row.addWidget(self.close_button)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.clear)
        self._callback: Callable[[], None] | None = None
        self.action.clicked.connect(self._run_action)
        self.error = False
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, error: bool = False, details: str = "",
                     action: tuple[str, Callable[[], None]] | None = None, timeout_ms: int = 10000) -> None:
        if not text:
            self.clear()
            return
        self.error = error
        self.label.setText(text)
        self.label.setToolTip(details)
        self.setStyleSheet("#messageBar { background: #5a2326; } " if error else
                           "#messageBar { background: #27405e; } ")
        if action is not None:
            self.action.setText(action[0])
            self._callback = action[1]
            self.action.show()
        else:
            self._callback = None
            self.action.hide()
        self.show()
        if error or action is not None:
            self._timer.stop()
        else:
            self._timer.start(timeout_ms)

    def clear(self) -> None:
        self.label.setText("")
        self._callback = None
        self.action.hide()
        self.hide()

    def _run_action(self) -> None:
        callback = self._callback
        self.clear()
        if callback is not None:
            callback()
