"""A settings dialog generated from the declarative schema (one place defines every setting)."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QLineEdit, QMessageBox, QPlainTextEdit, QSpinBox, QVBoxLayout)

from aigc_desktop.core.settings import SCHEMA, Settings

_HIDDEN = {"last_model", "window_state"}


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.editors = {}
        form = QFormLayout()
        for spec in SCHEMA:
            if spec.key in _HIDDEN:
                continue
            value = settings.get(spec.key)
            if spec.choices:
                w = QComboBox()
                w.addItems([str(c) for c in spec.choices])
                w.setCurrentText(str(value))
            elif isinstance(spec.default, bool):
                w = QCheckBox()
                w.setChecked(value)
            elif isinstance(spec.default, int):
                w = QSpinBox()
                w.setRange(int(spec.minimum or 0), int(spec.maximum or 1_000_000))
                w.setValue(value)
            elif isinstance(spec.default, float):
                w = QDoubleSpinBox()
                w.setRange(spec.minimum or 0.0, spec.maximum or 1e6)
                w.setValue(value)
            elif isinstance(spec.default, list):
                w = QPlainTextEdit("\n".join(value))
                w.setMaximumHeight(80)
                w.setPlaceholderText("one folder per line")
            else:
                w = QLineEdit(str(value))
            w.setToolTip(spec.doc)
            self.editors[spec.key] = w
            form.addRow(spec.doc, w)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> dict:
        out = {}
        for key, w in self.editors.items():
            if isinstance(w, QComboBox):
                out[key] = w.currentText()
            elif isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                out[key] = w.value()
            elif isinstance(w, QPlainTextEdit):
                out[key] = [line.strip() for line in w.toPlainText().splitlines() if line.strip()]
            else:
                out[key] = w.text()
        return out

    def accept(self) -> None:
        try:
            for key, value in self.values().items():
                self.settings.set(key, value)
        except ValueError as exc:
            QMessageBox.warning(self, "Settings", str(exc))
            return
        super().accept()
