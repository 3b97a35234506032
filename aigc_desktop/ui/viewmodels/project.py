"""The open project as the window sees it: its file, unsaved state, autosave timer, recent files, recovery.

The document stays the window's one Document object (DocumentViewModel.doc): opening a project loads the
file's contents into it (Document.load_from keeps every subscriber), so the canvas, panels and autosave keep
following it. "Unsaved" is the undo stack's clean state plus changes made outside it (a generation added to
the history, the model or the timeline changed). Every problem reaches `message` as one line.

The dialog helpers at the end (file_new / file_open / file_save / confirm_close / offer_recovery /
fill_recent_menu) hold the File menu's questions, so the window only wires actions to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from aigc_desktop.core.document import Document
from aigc_desktop.core.document import events as ev
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.project import SUFFIX, Project, open_project
from aigc_desktop.core.project.recovery import Autosaver, Recoverable, RecoverySession, find_recoverable

MAX_RECENT = 10
# Unsaved work that is not an undo step. Not the chosen model: the window picks one by itself on opening.
_OUTSIDE_UNDO = (ev.HistoryAdded, ev.HistoryRemoved, ev.TimelineChanged)


class ProjectViewModel(QObject):
    changed = Signal()  # path, name or unsaved state changed: update the title and the actions
    opened = Signal()  # the document was replaced (New, Open, Revert, restore): panels re-read its state
    message = Signal(str, bool)  # text, is_error
    recent_changed = Signal(list)  # list[str] of paths, newest first

    def __init__(self, document_vm: Any, settings: Any, recovery_root: str | os.PathLike | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document_vm = document_vm
        self.settings = settings
        self.project = Project(document_vm.doc)
        self.before_save: list[Callable[[], None]] = []  # e.g. copy the timeline panel's state into the document
        self._changed_outside_undo = False
        self._loading = False
        document_vm.doc.subscribe(self._on_event)
        document_vm.undo_stack.cleanChanged.connect(self._on_clean_changed)  # a method: gone with self
        self._recovery_root = recovery_root
        self.session = RecoverySession(recovery_root)
        self.autosaver = Autosaver(self.session, self.project, interval_s=self._interval())
        self.timer = QTimer(self)
        self.timer.setInterval(1000)  # the Autosaver decides when a snapshot is due
        self.timer.timeout.connect(self.autosave_tick)
        self.timer.start()

    # ------------------------------------------------------------------------------------------ state
    @property
    def path(self) -> Path | None:
        return self.project.path

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def dirty(self) -> bool:
        return not self.document_vm.undo_stack.isClean() or self._changed_outside_undo

    def title(self) -> str:
        """For QWidget.setWindowTitle with setWindowModified(dirty): "name[*]"."""
        return f"{self.name}[*]"

    def _interval(self) -> float:
        try:
            return float(self.settings.get("autosave_seconds"))
        except (KeyError, TypeError, ValueError):
            return 60.0

    @Slot(bool)
    def _on_clean_changed(self, _clean: bool) -> None:
        self.changed.emit()

    def _on_event(self, event: ev.Event) -> None:
        if self._loading or not isinstance(event, _OUTSIDE_UNDO):
            return
        if not self._changed_outside_undo:
            self._changed_outside_undo = True
            self.changed.emit()

    def _mark_clean(self) -> None:
        self._changed_outside_undo = False
        self.document_vm.undo_stack.setClean()
        self.changed.emit()

    def _adopt(self, project: Project) -> None:
        """Load `project`'s contents into the window's document and make it the open project."""
        doc = self.document_vm.doc
        self._loading = True
        try:
            doc.load_from(project.document)  # DocumentReset: the undo stack is cleared, views rebuild
        finally:
            self._loading = False
        project.document = doc  # the same layer and history objects: lazy pixels and copy-on-save still hold
        self.project = project
        self.autosaver.attach(project)

    # -------------------------------------------------------------------------------------- commands
    def new(self) -> None:
        frame = self.document_vm.doc.frame
        self._adopt(Project(Document.new(frame.width, frame.height)))
        self.autosaver.saved()
        self._mark_clean()
        self.opened.emit()

    def open(self, path: str | os.PathLike) -> bool:
        try:
            project = open_project(path)
        except UserError as exc:
            self.message.emit(str(exc), True)
            return False
        self._adopt(project)
        self.autosaver.saved()
        self._mark_clean()
        self.remember(project.path)
        self.opened.emit()
        self.message.emit(f"Opened {project.path.name}", False)
        return True

    def save(self, path: str | os.PathLike | None = None) -> bool:
        """Save to `path` (Save As) or the project's own file. False (and one line) when it failed; the
        document and the old file are then untouched."""
        if path is None and self.project.path is None:
            self.message.emit("Choose where to save this project (File > Save As…)", True)
            return False
        for hook in self.before_save:
            hook()
        try:
            saved = self.project.save(path)
        except UserError as exc:
            self.message.emit(str(exc), True)
            return False
        self.autosaver.saved()
        self._mark_clean()
        self.remember(saved)
        self.message.emit(f"Saved {saved.name}", False)
        return True

    def revert(self) -> bool:
        return self.open(self.project.path) if self.project.path is not None else False

    def autosave_tick(self) -> bool:
        self.autosaver.interval_s = self._interval()
        wrote = self.autosaver.tick()
        if self.autosaver.last_error:
            self.message.emit(self.autosaver.last_error, True)
            self.autosaver.last_error = None
        return wrote

    def shutdown(self) -> None:
        """A clean exit (after the user saved or chose not to): the recovery data goes."""
        self.timer.stop()
        self.autosaver.close()
        self.session.close()

    # -------------------------------------------------------------------------------------- recovery
    def pending_recovery(self) -> list[Recoverable]:
        """Work left by runs that crashed (never this run's own), newest first."""
        return [r for r in find_recoverable(self._recovery_root) if r.folder != self.session.folder]

    def restore(self, recoverable: Recoverable) -> bool:
        try:
            project = recoverable.restore()
        except UserError as exc:
            self.message.emit(f"Could not restore: {exc}", True)
            return False
        self._adopt(project)
        try:
            self.session.autosave(project)  # safe in this run's recovery data before the old data goes
        except (OSError, UserError) as exc:
            self.message.emit(f"Restored, but the recovery copy could not be written: {exc}", True)
        else:
            recoverable.discard()
        self._changed_outside_undo = True  # restored work is unsaved until the user saves it
        self.changed.emit()
        self.opened.emit()
        if recoverable.problem:
            self.message.emit(recoverable.problem, True)
        else:
            self.message.emit(f"Restored: {recoverable.describe()}", False)
        return True

    def discard(self, recoverable: Recoverable) -> None:
        recoverable.discard()

    # ---------------------------------------------------------------------------------------- recent
    def recent(self) -> list[str]:
        try:
            return [p for p in self.settings.get("recent_projects") if isinstance(p, str)]
        except KeyError:
            return []

    def remember(self, path: str | os.PathLike | None) -> None:
        if path is None:
            return
        text = str(Path(path).resolve())
        paths = [text] + [p for p in self.recent() if p != text]
        try:
            self.settings.set("recent_projects", paths[:MAX_RECENT])
            if getattr(self.settings, "path", None) is not None:
                self.settings.save()
        except (KeyError, ValueError, OSError, UserError):
            return  # the recent list is a convenience: never fail an open or a save over it
        self.recent_changed.emit(paths[:MAX_RECENT])


# ------------------------------------------------------------------------------------------- dialogs
# The File menu's questions. Each takes the view-model and the parent widget; the window connects its
# actions to these and calls confirm_close() from closeEvent.

FILTER = f"AIGC Desktop projects (*{SUFFIX});;All files (*)"


def _with_suffix(path: str) -> str:
    return path if path.lower().endswith(SUFFIX) else path + SUFFIX


def _start_folder(vm: ProjectViewModel) -> str:
    if vm.path is not None:
        return str(vm.path.parent)
    recent = vm.recent()
    return str(Path(recent[0]).parent) if recent else str(Path.home())


def offer_to_save(vm: ProjectViewModel, parent: Any) -> bool:
    """Unsaved changes: Save / Don't Save / Cancel. True when the caller may go on."""
    from PySide6.QtWidgets import QMessageBox

    if not vm.dirty:
        return True
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(parent, "Unsaved changes", f"Save the changes to {vm.name} first?",
                                  buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
    if answer == buttons.Save:
        return file_save(vm, parent)
    return answer == buttons.Discard


def file_new(vm: ProjectViewModel, parent: Any) -> bool:
    if not offer_to_save(vm, parent):
        return False
    vm.new()
    return True


def file_open(vm: ProjectViewModel, parent: Any, path: str | None = None) -> bool:
    from PySide6.QtWidgets import QFileDialog

    if not offer_to_save(vm, parent):
        return False
    if path is None:
        path, _ = QFileDialog.getOpenFileName(parent, "Open project", _start_folder(vm), FILTER)
        if not path:
            return False
    return vm.open(path)


def file_save(vm: ProjectViewModel, parent: Any, ask: bool = False) -> bool:
    """Save (asking for a file when there is none yet, or always with ask=True: Save As…)."""
    from PySide6.QtWidgets import QFileDialog

    path: str | None = None
    if ask or vm.path is None:
        suggested = str(vm.path) if vm.path else str(Path(_start_folder(vm)) / f"{vm.name}{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(parent, "Save project as", suggested, FILTER)
        if not path:
            return False
        path = _with_suffix(path)
    return vm.save(path)


def file_revert(vm: ProjectViewModel, parent: Any) -> bool:
    from PySide6.QtWidgets import QMessageBox

    if vm.path is None:
        return False
    if vm.dirty:
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(parent, "Revert", f"Discard every change since {vm.path.name} was saved?",
                                      buttons.Yes | buttons.Cancel, buttons.Cancel)
        if answer != buttons.Yes:
            return False
    return vm.revert()


def confirm_close(vm: ProjectViewModel, parent: Any) -> bool:
    """For closeEvent: False means stay open (the user cancelled, or saving failed)."""
    if not offer_to_save(vm, parent):
        return False
    vm.shutdown()
    return True


def offer_recovery(vm: ProjectViewModel, parent: Any) -> bool:
    """At start: offer the newest crashed session's work. Restore / Later (kept) / Discard."""
    from PySide6.QtWidgets import QMessageBox

    pending = vm.pending_recovery()
    if not pending:
        return False
    newest = pending[0]
    box = QMessageBox(parent)
    box.setWindowTitle("Recover unsaved work")
    box.setText(f"AIGC Desktop did not close normally. {newest.describe()}.")
    box.setInformativeText("Restore it now? \"Later\" keeps it for the next start.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Later", QMessageBox.ButtonRole.RejectRole)  # keeps the data: offered again next start
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(restore)
    box.exec()
    clicked = box.clickedButton()
    if clicked is restore:
        return vm.restore(newest)
    if clicked is discard:
        vm.discard(newest)
    return False


def fill_recent_menu(vm: ProjectViewModel, menu: Any, parent: Any) -> None:
    """(Re)build File > Open Recent; connect it to menu.aboutToShow."""
    menu.clear()
    paths = vm.recent()
    for p in paths:
        action = menu.addAction(Path(p).name)
        action.setToolTip(p)
        action.setStatusTip(p)
        action.triggered.connect(lambda _checked=False, p=p: file_open(vm, parent, p))
    menu.setEnabled(bool(paths))
