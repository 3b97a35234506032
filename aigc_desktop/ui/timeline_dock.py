"""The morph timeline in the main window: `install_timeline(window)` does all the wiring, so the window needs
one line (`self.timeline = install_timeline(self)` at the end of MainWindow.__init__).

What it wires:
  - TimelineViewModel submitting through the window's one queue (`window.queue_job`: the worker starts),
    cancelling through `window.queue.cancel`, listening to the queue's events (TravelFrame fills the cache);
  - the model chosen in the Models panel (`window.models.selection_changed` -> `vm.set_model_info`);
  - TimelinePanel in a dock under the canvas, tabbed with the History (`window.add_bottom_dock`);
  - keyframes from the canvas (the selected layer, or every visible layer) and from the History strip
    (its selected item, or "Add to timeline" in its context menu); a frame sent to the canvas becomes a
    layer in one undo step (`window.add_image_layer`);
  - the prompt area's Interpolate mode: with "Interpolate" ticked, every line of the prompt is a keyframe and
    Generate (button, Ctrl+Enter) renders that diffusion travel with the panel's seed, steps, CFG, sampler and
    size; "Send prompt to timeline" (a button under Generate and an entry in the Generate menu) adds the
    prompt panel's prompt, negative prompt and seed as one more diffusion keyframe;
  - the timeline is part of the document: every edit is copied into Document.timeline (a TimelineChanged
    event: the project is unsaved, autosave and recovery see it), the project's `before_save` hook copies
    it once more before a save, and a DocumentReset (New, Open, Revert, restore) loads the document's
    timeline back, keyframe pictures from its layers and history.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QCheckBox, QDockWidget, QPushButton

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core import jobs
from aigc_desktop.core.document import events as ev
from aigc_desktop.core.errors import UserError
from aigc_desktop.ui.panels.timeline import TimelinePanel
from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel, load_from_document, save_to_document

log = logging.getLogger(__name__)


class TimelineDock(QObject):
    """The timeline's view-model, panel and dock in one window, and the wiring between them and the window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self._loading = False  # a document's timeline is being read: its own changes are not edits
        self._quiet = False  # a change the window made by itself (the chosen model): not an unsaved edit
        self.vm = TimelineViewModel(submit=self.submit, cancel=window.queue.cancel, parent=self)
        self._unsubscribe = self.vm.attach(window.queue.queue)
        self.vm.destroyed.connect(self._detach)
        self.panel = TimelinePanel(self.vm)
        self.panel.setObjectName("TimelinePanel")
        self.dock: QDockWidget = window.add_bottom_dock("Timeline", self.panel)
        # The window restored its saved layout before this dock existed: restored again now, it puts this
        # dock where it was left too (when the saved layout knows it; else History stays in front).
        saved = _saved_dock_state(window, self.dock.objectName())
        if saved is None or not window.restoreState(saved):
            window.history_dock.raise_()

        self.panel.send_to_canvas.connect(self.send_to_canvas)
        self.panel.keyframes_from_canvas.connect(self.keyframes_from_canvas)
        window.history_panel.extra_actions.append(("Add to timeline", self.add_history_item))
        window.models.selection_changed.connect(self.on_model_selected)
        window.document.changed.connect(self.on_document_event)
        window.project.before_save.append(self.save_to_document)
        self.vm.changed.connect(self.on_timeline_changed)
        self._add_prompt_entry()
        self._add_interpolate_mode()

        self._loading = True
        try:  # the document the window starts with (a restored project may already hold a timeline)
            if window.document.doc.timeline is not None:
                self.load_from_document()
            else:
                self._follow_selection()
        finally:
            self._loading = False

    # ------------------------------------------------------------------------------------------ queue
    def submit(self, spec: jobs.JobSpec) -> str:
        """Render and export jobs go on the window's one queue (raises UserError: the panel shows it)."""
        try:
            return self.window.queue_job(spec)
        except ValueError as exc:  # InvalidParameter is a UserError and a ValueError: one line either way
            raise exc if isinstance(exc, UserError) else UserError(str(exc)) from None

    def _detach(self, *_args) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # ------------------------------------------------------------------------------------------ model
    @Slot(object)
    def on_model_selected(self, info: Any) -> None:
        self._quiet = True  # the window picks a model by itself on opening: the project stays saved
        try:
            self.vm.set_model_info(info)
        finally:
            self._quiet = False

    def _follow_selection(self) -> None:
        info = self.window.models.selected
        if info is not None:
            self.on_model_selected(info)

    # ------------------------------------------------------------------------------------------ canvas
    @Slot(object, object)
    def send_to_canvas(self, image: Any, record: Any) -> str:
        """A rendered frame as a new layer at the frame (one undo step); returns the layer's id."""
        record = dict(record or {})
        frame = (record.get("travel") or {}).get("frame") if isinstance(record.get("travel"), dict) else None
        index = frame if isinstance(frame, int) else self.vm.current
        return self.window.add_image_layer(image.copy(), f"Timeline frame {index + 1}", record=record or None)

    @Slot(str)
    def keyframes_from_canvas(self, which: str = "visible") -> list[int]:
        """Keyframes from 'selected' (the selected image layer), 'visible' (every visible layer, bottom to
        top) or 'history' (the item selected in the History strip). Returns the new keyframes' indices."""
        if which == "history":
            return self.keyframes_from_history()
        doc_vm = self.window.document
        if which == "selected":
            layer = doc_vm.selected
            layers = [layer] if layer.kind == "image" else []
            empty = "Select an image layer first (Layers panel)"
        else:
            layers = [la for la in doc_vm.doc.layers if la.visible]
            empty = "No visible layer on the canvas"
        if not layers:
            self.panel.status.setText(empty)
            return []
        added = [self.add_layer(layer) for layer in layers]
        self._show()
        return added

    def add_layer(self, layer: Any) -> int:
        """One keyframe from a layer: its picture, and its prompt and seed when it has a generation record."""
        source = f"layer:{layer.id}"
        if isinstance(layer.record, dict) and ("prompt" in layer.record or "seed" in layer.record):
            try:
                index = self.vm.add_record(layer.record, layer.image, source=source)
            except UserError as exc:  # a record from a file that does not hold up: the picture still does
                log.info("Layer %s record not used: %s", layer.name, exc)
            else:
                self.vm.set_keyframe(index, label=str(layer.name)[:24])
                return index
        return self.vm.add_image(layer.image, str(layer.name)[:24], source=source)

    def keyframes_from_history(self) -> list[int]:
        items = self.window.history_panel.list.selectedItems()
        if not items:
            self.panel.status.setText("Select an item in the History strip (or right-click one: Add to timeline)")
            return []
        panel = self.window.history_panel
        # The strip shows the newest first: keyframes go oldest first, the order they were made in.
        entries = sorted((panel.entry_for(item) for item in items), key=lambda e: e.created)
        added = [self.add_history_item(entry) for entry in entries]
        return [i for i in added if i is not None]

    def add_history_item(self, item: Any) -> int | None:
        try:
            index = self.vm.add_record(item.record or {}, item.image, source=f"history:{item.id}")
        except UserError as exc:
            self.window.show_message(str(exc), error=True)
            return None
        self._show()
        return index

    # ------------------------------------------------------------------------------------------ prompt
    def _add_prompt_entry(self) -> None:
        tip = ("Add the prompt, negative prompt and seed as a keyframe of a diffusion travel (a random seed is "
               "drawn now); the travel renders with this panel's steps, CFG, sampler and size")
        self.send_prompt_action = QAction("Send prompt to timeline", self.window)
        self.send_prompt_action.setShortcut(QKeySequence("Ctrl+K"))
        self.send_prompt_action.setToolTip(tip)
        self.send_prompt_action.setStatusTip(tip)
        self.send_prompt_action.triggered.connect(self.send_prompt)
        self.window.generate_menu.addSeparator()
        self.window.generate_menu.addAction(self.send_prompt_action)
        panel = self.window.prompt_panel
        self.send_prompt_button = QPushButton("Send prompt to timeline")
        self.send_prompt_button.setObjectName("sendPromptToTimeline")
        self.send_prompt_button.setToolTip(tip + " (Ctrl+K)")
        self.send_prompt_button.clicked.connect(self.send_prompt)
        layout = panel.layout()
        layout.insertWidget(layout.indexOf(panel.generate) + 1, self.send_prompt_button)

    def _add_interpolate_mode(self) -> None:
        """The prompt area's Interpolate mode; Generate (button and Ctrl+Enter) comes through `generate`."""
        panel = self.window.prompt_panel
        self.interpolate_box = QCheckBox("Interpolate: one keyframe per line")
        self.interpolate_box.setObjectName("interpolateMode")
        self.interpolate_box.setToolTip("Each line of the prompt is a keyframe; Generate renders the travel between "
                                        "them in the Timeline (same seed, steps, CFG, sampler and size)")
        layout = panel.layout()
        layout.insertWidget(layout.indexOf(panel.generate), self.interpolate_box)
        self.interpolate_box.toggled.connect(self._on_interpolate_mode)
        panel.generate_requested.disconnect(self.window.generate)
        panel.generate_requested.connect(self.generate)
        self.window.generate_action.triggered.disconnect(self.window.generate)
        self.window.generate_action.triggered.connect(self.generate)

    @Slot(bool)
    def _on_interpolate_mode(self, on: bool) -> None:
        panel = self.window.prompt_panel
        panel.generate.setText("Render travel" if on else "Generate")
        panel.generate.setToolTip("Render the travel between the prompt's lines in the Timeline (Ctrl+Enter)" if on
                                  else "Generate into the frame on the canvas (Ctrl+Enter)")
        panel.prompt.setPlaceholderText("One prompt per line: each line is a keyframe" if on
                                        else "Describe the image…")
        if on:
            self._show()

    @Slot()
    def generate(self) -> str | None:
        """Generate, or in Interpolate mode render the prompt's lines as a travel."""
        if self.interpolate_box.isChecked():
            return self.render_prompt_lines()
        return self.window.generate()

    def render_prompt_lines(self) -> str | None:
        """Interpolate mode: the timeline becomes a diffusion travel through the prompt's lines (the panel's
        seed for every keyframe, a random seed drawn once), and its missing frames are rendered."""
        p = self.window.prompt_panel.params()
        lines = [line.strip() for line in p.prompt.splitlines() if line.strip()]
        if len(lines) < 2:
            self.window.show_message("Interpolate: write two or more prompts, one per line", error=True)
            return None
        seed = self._diffusion_travel_like(p)
        vm = self.vm
        for index in reversed(range(len(vm.keyframes))):
            vm.remove(index)
        for line in lines:
            vm.add_keyframe(ip.Keyframe(label=line[:24], prompt=line, negative=p.negative_prompt, seed=seed))
        self._show()
        try:
            return vm.request_render()
        except (UserError, ValueError) as exc:
            self.window.show_message(str(exc), error=True)
            return None

    def _diffusion_travel_like(self, p: Any) -> int:
        """Make the timeline a diffusion travel rendered with the prompt panel's steps, CFG, sampler, size and
        negative prompt; returns the seed its keyframes get (the panel's, or one drawn now for "random")."""
        from aigc_desktop.core.params import random_seed

        if self.vm.travel != "diffusion":
            self.vm.set_travel("diffusion")
        self.vm.set_params(replace(self.vm.params, steps=p.steps, cfg_scale=p.cfg_scale, scheduler=p.scheduler,
                                   width=p.width, height=p.height, negative_prompt=p.negative_prompt))
        return p.seed if p.seed >= 0 else random_seed()

    @Slot()
    def send_prompt(self) -> int | None:
        """The prompt panel's prompt, negative prompt and seed as the last keyframe of a diffusion travel."""
        from aigc_desktop.core.catalog import DIFFUSION_KINDS

        p = self.window.prompt_panel.params()
        if not p.prompt.strip():
            self.window.show_message("Type a prompt first: it becomes the timeline's keyframe", error=True)
            return None
        seed = self._diffusion_travel_like(p)
        vm = self.vm
        index = vm.add_keyframe(ip.Keyframe(label=p.prompt[:24], prompt=p.prompt, negative=p.negative_prompt,
                                            seed=seed))
        self.panel.strip.setCurrentRow(index)
        self._show()
        info = self.window.models.selected
        n = len(vm.keyframes)
        text = f"Keyframe {index + 1} of the timeline: seed {seed}"
        if info is None or info.kind not in DIFFUSION_KINDS:
            text += " (a diffusion model renders it: choose one in the Models panel)"
        elif n < 2:
            text += " (send another prompt or seed to travel between them)"
        self.window.status.showMessage(text, 8000)
        return index

    # ------------------------------------------------------------------------------------------ document
    @Slot()
    def on_timeline_changed(self) -> None:
        """Every edit goes into the document at once (unsaved state, autosave, recovery)."""
        if self._loading or self._quiet:
            return
        self.save_to_document()

    def save_to_document(self) -> None:
        doc = self.window.document.doc
        if doc.timeline is None and not self.vm.keyframes:
            return  # nothing made yet: a new document stays as it was (and saved)
        if doc.timeline != self.vm.to_state():
            save_to_document(self.vm, doc)

    @Slot(object)
    def on_document_event(self, event: Any) -> None:
        if isinstance(event, ev.DocumentReset):
            self.load_from_document()

    def load_from_document(self) -> None:
        """The document's timeline (an empty one when it has none); a bad saved timeline is one message."""
        doc = self.window.document.doc
        self._loading = True
        try:
            try:
                load_from_document(self.vm, doc)
            except UserError as exc:
                self.window.show_message(f"The project's timeline could not be read: {exc}", error=True)
                self.vm.from_state(None)
            if self.vm.model is None:
                self._follow_selection()
            self.vm.set_current(0)
        finally:
            self._loading = False

    def _show(self) -> None:
        self.dock.show()
        self.dock.raise_()


def _saved_dock_state(window: Any, name: str) -> Any:
    """The window's saved dock layout (settings 'window_state', as MainWindow writes it: geometry;docks in
    base64) as a QByteArray when it holds the dock `name`, else None."""
    import base64

    from PySide6.QtCore import QByteArray

    try:
        state = window.settings.get("window_state")
        docks = base64.b64decode(str(state).split(";", 1)[1]) if state else b""
    except (KeyError, ValueError, IndexError, TypeError):
        return None
    return QByteArray(docks) if name.encode("utf-16-be") in docks else None


def install_timeline(window: Any) -> TimelineDock:
    """Put the morph timeline into `window` (a MainWindow) and wire it; returns the TimelineDock
    (`.vm` the view-model, `.panel` the widget, `.dock` the dock)."""
    return TimelineDock(window)
