"""A settings dialog generated from the declarative schema (one place defines every setting).

What can be checked is checked at once, as the user types or picks: a device this machine does not have
and a folder that does not exist get a one-line note under their field (core/device_probe.py, no torch);
folder fields have a Browse button. The notes warn, they do not stop OK (a folder on a drive not mounted
yet is the user's business)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPlainTextEdit,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from aigc_desktop.core.settings import SCHEMA, Settings

_HIDDEN = {"last_model", "window_state"}
_FOLDERS = {"models_dir", "outputs_dir"}  # one folder each (empty: the default one)
_FOLDER_LISTS = {"model_folders"}


def folder_problem(text: str, created: bool = False) -> str:
    """One line when `text` names no usable folder, else "" (empty text: the default folder, fine).
    `created`: the app makes this folder when it needs it (outputs), so a missing one is only a note."""
    if not text.strip():
        return ""
    path = Path(text.strip()).expanduser()
    if path.is_dir():
        return ""
    if path.exists():
        return f"{path} is a file, not a folder"
    if created:
        return f"{path} does not exist yet; it will be made when the first image is saved"
    return f"Folder not found: {path}"


def problem(key: str, value) -> str:
    """What is wrong with `value` for setting `key` that can be told now ("" when nothing)."""
    if key == "device":
        from aigc_desktop.core.device_probe import device_problem

        return device_problem(str(value))
    if key in _FOLDERS:
        return folder_problem(str(value), created=key == "outputs_dir")
    if key in _FOLDER_LISTS:
        return "; ".join(p for p in (folder_problem(v) for v in value) if p)
    return ""


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.editors = {}
        self.notes: dict[str, QLabel] = {}  # the inline note under each checked field
        self.browse_buttons: dict[str, QPushButton] = {}
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
            form.addRow(spec.doc, self._with_browse(spec.key, w))
            if spec.key == "device" or spec.key in _FOLDERS or spec.key in _FOLDER_LISTS:
                note = QLabel("")
                note.setObjectName(f"note_{spec.key}")
                note.setWordWrap(True)
                note.setStyleSheet("color: #d9822b;")
                note.setVisible(False)
                self.notes[spec.key] = note
                form.addRow("", note)
                signal = (w.currentTextChanged if isinstance(w, QComboBox) else w.textChanged)
                signal.connect(lambda *_a, key=spec.key: self.check(key))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        for key in self.notes:
            self.check(key)

    def _with_browse(self, key: str, editor: QWidget) -> QWidget:
        if key not in _FOLDERS and key not in _FOLDER_LISTS:
            return editor
        button = QPushButton("Browse…" if key in _FOLDERS else "Add folder…")
        button.setToolTip("Choose a folder")
        button.clicked.connect(lambda: self.browse(key))
        self.browse_buttons[key] = button
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(editor, 1)
        row.addWidget(button)
        return box

    def choose_folder(self, start: str) -> str:
        """The folder dialog (tests replace it)."""
        return QFileDialog.getExistingDirectory(self, "Choose a folder", start or str(Path.home()))

    def browse(self, key: str) -> None:
        editor = self.editors[key]
        if isinstance(editor, QPlainTextEdit):
            lines = [line for line in editor.toPlainText().splitlines() if line.strip()]
            folder = self.choose_folder(lines[-1] if lines else "")
            if folder and folder not in lines:
                editor.setPlainText("\n".join(lines + [folder]))
        else:
            folder = self.choose_folder(editor.text())
            if folder:
                editor.setText(folder)

    def check(self, key: str) -> str:
        """Check one field now; its note shows what is wrong (hidden when nothing). Returns the note."""
        text = problem(key, self.values()[key])
        note = self.notes.get(key)
        if note is not None:
            note.setText(text)
            note.setVisible(bool(text))
        return text

    def problems(self) -> dict[str, str]:
        return {key: note.text() for key, note in self.notes.items() if note.text()}

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
