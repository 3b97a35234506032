"""The document as the GUI sees it: the core Document, its undo stack, the selected layer, the live
previews and the staging area of finished results. Document events are re-emitted as one Qt signal in the
GUI thread; every edit goes through a QUndoCommand (ui/canvas/commands.py) pushed here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from aigc_desktop.core.document import Document, HistoryItem, events as ev


@dataclass
class StagedResult:
    """A finished image waiting in the staging strip over the frame until it is accepted or discarded."""

    image: Any  # PIL image
    record: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    rect: tuple[int, int, int, int] = (0, 0, 0, 0)  # document rectangle it was made for (the frame then)
    job_id: str = ""


class DocumentViewModel(QObject):
    changed = Signal(object)  # a core.document.events event
    selection_changed = Signal(str)  # id of the layer painting goes to (the mask's id for the mask)
    preview_changed = Signal(object, object)  # list[PIL image] (one per batch image), rect (x, y, w, h)
    preview_cleared = Signal()
    staging_changed = Signal()
    focus_requested = Signal(object)  # a rect (x, y, w, h) to show
    message = Signal(str, bool)  # text, is_error: for the window's one message area

    def __init__(self, document: Document | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = document or Document.new()
        self.undo_stack = QUndoStack(self)
        self.selected_id: str = self.doc.mask.id
        self.staged: list[StagedResult] = []
        self.staged_index = 0
        self._previews: dict[int, Any] = {}
        self._preview_job: str | None = None
        self.doc.subscribe(self._on_event)

    # -- edits (all undoable)
    def push(self, command: QUndoCommand) -> None:
        self.undo_stack.push(command)

    def select(self, layer_id: str) -> None:
        if self.doc.has_layer(layer_id) and layer_id != self.selected_id:
            self.selected_id = layer_id
            self.selection_changed.emit(layer_id)

    @property
    def selected(self):
        return self.doc.get_layer(self.selected_id) if self.doc.has_layer(self.selected_id) else self.doc.mask

    def _on_event(self, event) -> None:
        if isinstance(event, ev.LayerAdded):
            self.selected_id = event.layer_id
            self.changed.emit(event)
            self.selection_changed.emit(event.layer_id)
            return
        if isinstance(event, ev.LayerRemoved) and event.layer_id == self.selected_id:
            layers = self.doc.layers
            self.selected_id = layers[min(event.index, len(layers) - 1)].id if layers else self.doc.mask.id
            self.changed.emit(event)
            self.selection_changed.emit(self.selected_id)
            return
        if isinstance(event, ev.DocumentReset):
            self.undo_stack.clear()
            self.selected_id = self.doc.mask.id
            self.changed.emit(event)
            self.selection_changed.emit(self.selected_id)
            return
        self.changed.emit(event)

    # -- live previews inside the frame (one image per batch index)
    def show_preview(self, job_id: str, index: int, image: Any, rect: tuple[int, int, int, int]) -> None:
        if job_id != self._preview_job:
            self._preview_job, self._previews = job_id, {}
        self._previews[index] = image
        self.preview_changed.emit([self._previews[i] for i in sorted(self._previews)], rect)

    def clear_preview(self) -> None:
        self._preview_job, self._previews = None, {}
        self.preview_cleared.emit()

    # -- staging
    def stage(self, results: list[StagedResult]) -> None:
        """Finished images arrive here (and in the history); the newest is shown over the frame."""
        for r in results:
            self.doc.add_history(HistoryItem(r.record, r.image, path=r.path))
        self.staged.extend(results)
        if results:
            self.staged_index = len(self.staged) - len(results)
        self.staging_changed.emit()

    @property
    def current_staged(self) -> StagedResult | None:
        return self.staged[self.staged_index] if self.staged else None

    def cycle_staged(self, step: int) -> None:
        if self.staged:
            self.staged_index = (self.staged_index + step) % len(self.staged)
            self.staging_changed.emit()

    def accept_staged(self) -> str | None:
        """Place the shown result as a new layer at its rectangle, with its record (one undo step)."""
        from aigc_desktop.core.document import Layer
        from aigc_desktop.ui.canvas.commands import AddLayerCommand

        r = self.current_staged
        if r is None:
            return None
        seed = r.record.get("seed")
        name = f"{str(r.record.get('prompt', '') or 'Result')[:24]}" + (f" #{seed}" if seed is not None else "")
        layer = Layer(r.image, name=name, x=r.rect[0], y=r.rect[1], record=dict(r.record))
        self.push(AddLayerCommand(self.doc, layer, text="Accept result"))
        self.staged.clear()
        self.staged_index = 0
        self.staging_changed.emit()
        return layer.id

    def discard_staged(self, all_results: bool = True) -> None:
        """Drop the staged results (they stay in the history and the outputs folder)."""
        if all_results:
            self.staged.clear()
        elif self.staged:
            self.staged.pop(self.staged_index)
        self.staged_index = min(self.staged_index, max(0, len(self.staged) - 1))
        self.staging_changed.emit()
