"""The timeline dock: a keyframe strip, per-keyframe prompt / seed / hold, frames and easing per segment with
the curve drawn, a scrubber that shows rendered frames at once, play / pause at the timeline's fps, render
(coarse first) and export. All state lives in TimelineViewModel; this widget only shows it and edits it.

ui/timeline_dock.py wires it into the main window (install_timeline): the view-model submits to the window's
queue and listens to it, `send_to_canvas(image, record)` adds a layer, `keyframes_from_canvas(which)` is
answered with `vm.add_image(image, label, source='layer:ID')` / `vm.add_record(record, image,
source='history:ID')`, and the state is kept in the document.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPointF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QMenu, QMessageBox, QPushButton, QSizePolicy,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import MAX_SEED
from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.timeline import TRAVEL_LABELS, TimelineViewModel

THUMB = 64
EXPORT_FILTER = "Animations (*.gif *.webp *.mp4 *.webm);;GIF (*.gif);;WebP (*.webp);;MP4 (*.mp4);;WebM (*.webm)"


class EasingCurve(QWidget):
    """The easing curve of the selected segment, drawn from core.interpolate.easing_curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.easing = "linear"
        self.setMinimumSize(64, 48)
        self.setToolTip("The segment's easing: time across, progress from keyframe to keyframe up")

    def set_easing(self, name: str) -> None:
        self.easing = name
        self.update()

    def points(self) -> list[QPointF]:
        w, h, m = self.width(), self.height(), 4
        return [QPointF(m + x * (w - 2 * m), h - m - y * (h - 2 * m)) for x, y in ip.easing_curve(self.easing, 48)]

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        p.setPen(QPen(self.palette().mid().color(), 1, Qt.PenStyle.DotLine))
        p.drawRect(self.rect().adjusted(3, 3, -4, -4))
        path = QPainterPath()
        pts = self.points()
        path.moveTo(pts[0])
        for pt in pts[1:]:
            path.lineTo(pt)
        p.setPen(QPen(self.palette().highlight().color(), 2))
        p.drawPath(path)


class RenderedBar(QWidget):
    """One cell per frame: filled when the frame is rendered, the current one marked."""

    def __init__(self, vm: TimelineViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setFixedHeight(6)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt
        n = self.vm.frame_count
        if not n:
            return
        p = QPainter(self)
        w = self.width() / n
        done, todo = self.palette().highlight().color(), self.palette().mid().color()
        for f in self.vm.frames():
            p.fillRect(int(f.index * w), 0, max(1, int(w)), self.height(),
                       done if f.key in self.vm.cache else todo)
        p.fillRect(int(self.vm.current * w), 0, max(2, int(w)), self.height(), QColor("#e0a000"))


class TimelinePanel(QWidget):
    send_to_canvas = Signal(object, object)  # PIL image, record of the frame shown
    # The user asked for keyframes from the canvas: 'selected' (the selected layer), 'visible' (every visible
    # layer, bottom to top) or 'history' (the items selected in the History strip). The window answers.
    keyframes_from_canvas = Signal(str)

    def __init__(self, vm: TimelineViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._updating = False

        # -- settings row
        self.travel = QComboBox()
        self.travel.setToolTip("What travels: VAE morph (keyframe images), diffusion (prompt and seed per keyframe) "
                               "or StyleGAN (seeds)")
        for key, label in TRAVEL_LABELS.items():
            self.travel.addItem(label, key)
        self.mode = QComboBox()
        self.mode.addItem("slerp", "slerp")
        self.mode.addItem("lerp", "lerp")
        self.mode.setToolTip("slerp keeps latents at a typical length (StyleGAN: slerp in Z); lerp is a straight "
                             "line (StyleGAN: lerp in W)")
        self.fps = QDoubleSpinBox()
        self.fps.setToolTip("Frames per second of playback and export")
        self.fps.setRange(1, 120)
        self.fps.setDecimals(1)
        self.fps.setSuffix(" fps")
        self.loop = QCheckBox("loop")
        self.loop.setToolTip("Travel back from the last keyframe to the first")
        self.pingpong = QCheckBox("ping-pong")
        self.pingpong.setToolTip("Play forth, then back")
        self.auto = QCheckBox("render as I edit")
        self.auto.setToolTip("Render changed segments after each edit (coarse first: every 4th frame)")
        self.auto.setChecked(True)
        self.render_button = QPushButton("Render")
        self.render_button.setToolTip("Render every frame not yet rendered (a job on the queue)")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the rendered frames as GIF, WebP, MP4 or WebM (or PNG frames)")

        # -- render settings (the ones of the chosen travel are shown)
        self.steps = QSpinBox()
        self.steps.setToolTip("Diffusion steps of every frame")
        self.steps.setRange(1, 150)
        self.steps.setPrefix("steps ")
        self.cfg = QDoubleSpinBox()
        self.cfg.setToolTip("CFG scale of every frame")
        self.cfg.setRange(1, 30)
        self.cfg.setSingleStep(0.5)
        self.cfg.setPrefix("CFG ")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0, 0.95)
        self.strength.setSingleStep(0.05)
        self.strength.setPrefix("tie ")
        self.strength.setToolTip("0: every frame from its own noise; above 0: in-between frames start from the "
                                 "keyframes' cross-fade (img2img), smoother but softer")
        self.psi = QDoubleSpinBox()
        self.psi.setRange(-2, 2)
        self.psi.setSingleStep(0.05)
        self.psi.setPrefix("ψ ")
        self.psi.setToolTip("StyleGAN truncation (a keyframe's own truncation wins)")

        # -- keyframe strip
        self.strip = QListWidget()
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListWidget.Movement.Snap)
        self.strip.setDragDropMode(QListWidget.DragDropMode.InternalMove)
        self.strip.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.strip.setIconSize(QSize(THUMB, THUMB))
        self.strip.setGridSize(QSize(THUMB + 24, THUMB + 30))
        self.strip.setFixedHeight(THUMB + 44)
        self.strip.setToolTip("Keyframes: drag to reorder")
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.setToolTip("Add image files as keyframes")
        self.add_canvas_button = QPushButton("From canvas")
        self.add_canvas_button.setToolTip("Keyframes from the canvas's layers or the History strip")
        canvas_menu = QMenu(self.add_canvas_button)
        self.canvas_actions = {}
        for key, text in (("selected", "Selected layer"), ("visible", "All visible layers (bottom to top)"),
                          ("history", "Selected history item")):
            action = canvas_menu.addAction(text)
            action.triggered.connect(lambda _checked=False, key=key: self.keyframes_from_canvas.emit(key))
            self.canvas_actions[key] = action
        self.add_canvas_button.setMenu(canvas_menu)
        self.add_key_button = QPushButton("Add")
        self.add_key_button.setToolTip("Add a keyframe (prompt and seed, or seed)")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected keyframe")

        # -- keyframe editor
        self.prompt = QLineEdit()
        self.prompt.setToolTip("The selected keyframe's prompt (diffusion travel)")
        self.prompt.setPlaceholderText("keyframe prompt")
        self.seed = QDoubleSpinBox()  # seeds go up to 2**32 - 1 (QSpinBox stops at 2**31 - 1)
        self.seed.setToolTip("The selected keyframe's seed")
        self.seed.setDecimals(0)
        self.seed.setRange(0, MAX_SEED)
        self.hold = QSpinBox()
        self.hold.setRange(0, ip.MAX_HOLD)
        self.hold.setSuffix(" hold")
        self.hold.setToolTip("Extra frames that show this keyframe unchanged")

        # -- segment editor
        self.segment_label = QLabel("Segment")
        self.frames_spin = QSpinBox()
        self.frames_spin.setToolTip("Frames of the selected segment, keyframe to keyframe")
        self.frames_spin.setRange(1, ip.MAX_FRAMES_PER_SEGMENT)
        self.frames_spin.setSuffix(" frames")
        self.easing = QComboBox()
        self.easing.setToolTip("Easing of the selected segment (the curve beside it)")
        for name in ip.EASINGS:
            self.easing.addItem(name, name)
        self.curve = EasingCurve()

        # -- view and scrubber
        self.view = QLabel()
        self.view.setFixedSize(160, 160)
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setStyleSheet("background: palette(base);")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setToolTip("Scrub through the frames; rendered frames show at once")
        self.scrubber.setRange(0, 0)
        self.bar = RenderedBar(vm)
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play / pause at the chosen fps")
        self.play_button.setCheckable(True)
        self.frame_label = QLabel("no frames")
        self.send_button = QPushButton("Send frame to canvas")
        self.send_button.setToolTip("Add the frame shown as a new layer (one undo step)")
        self.status = QLabel("")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.timer = QTimer(self)
        self.render_timer = QTimer(self)
        self.render_timer.setSingleShot(True)
        self.render_timer.setInterval(300)  # edits come in bursts (typing, spinning): render once they settle

        self._layout()
        self._connect()
        self.refresh()

    # ------------------------------------------------------------------------------------- layout
    def _layout(self) -> None:
        top = QHBoxLayout()
        for w in (self.travel, self.mode, self.fps, self.loop, self.pingpong, self.steps, self.cfg, self.strength,
                  self.psi, self.auto):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.render_button)
        top.addWidget(self.export_button)

        buttons = QVBoxLayout()
        for b in (self.add_files_button, self.add_canvas_button, self.add_key_button, self.remove_button):
            buttons.addWidget(b)
        strip = QHBoxLayout()
        strip.addWidget(self.strip, 1)
        strip.addLayout(buttons)

        key_form = QFormLayout()
        key_form.addRow("Prompt", self.prompt)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed)
        seed_row.addWidget(self.hold)
        key_form.addRow("Seed", seed_row)
        seg = QHBoxLayout()
        seg_form = QVBoxLayout()
        seg_form.addWidget(self.segment_label)
        seg_form.addWidget(self.frames_spin)
        seg_form.addWidget(self.easing)
        seg.addLayout(seg_form)
        seg.addWidget(self.curve, 1)
        editors = QHBoxLayout()
        editors.addLayout(key_form, 2)
        editors.addLayout(seg, 1)

        scrub = QVBoxLayout()
        scrub.addWidget(self.scrubber)
        scrub.addWidget(self.bar)
        row = QHBoxLayout()
        row.addWidget(self.play_button)
        row.addWidget(self.frame_label, 1)
        row.addWidget(self.send_button)
        scrub.addLayout(row)
        scrub.addWidget(self.status)
        scrub.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.view)
        bottom.addLayout(scrub, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(strip)
        layout.addLayout(editors)
        layout.addLayout(bottom)

    def _connect(self) -> None:
        vm = self.vm
        vm.changed.connect(self.refresh)
        vm.frame_ready.connect(self._on_frame_ready)
        vm.current_changed.connect(self._show_current)
        vm.message.connect(self.status.setText)
        self.travel.currentIndexChanged.connect(lambda: self._guard(vm.set_travel, self.travel.currentData()))
        self.mode.currentIndexChanged.connect(lambda: self._guard(vm.set_mode, self.mode.currentData()))
        self.fps.valueChanged.connect(lambda v: self._guard(vm.set_fps, v))
        self.loop.toggled.connect(lambda on: self._guard(vm.set_loop, on))
        self.pingpong.toggled.connect(lambda on: self._guard(vm.set_pingpong, on))
        self.steps.valueChanged.connect(lambda v: self._guard(vm.set_setting, "steps", int(v)))
        self.cfg.valueChanged.connect(lambda v: self._guard(vm.set_setting, "cfg_scale", float(v)))
        self.strength.valueChanged.connect(lambda v: self._guard(vm.set_setting, "strength", float(v)))
        self.psi.valueChanged.connect(lambda v: self._guard(vm.set_setting, "truncation_psi", float(v)))
        self.render_button.clicked.connect(self.render)
        self.export_button.clicked.connect(self._choose_export)
        self.add_files_button.clicked.connect(self._choose_files)
        self.add_key_button.clicked.connect(self.add_keyframe)
        self.remove_button.clicked.connect(self.remove_selected)
        self.strip.currentRowChanged.connect(self._on_select)
        self.strip.model().rowsMoved.connect(self._on_rows_moved)
        self.prompt.editingFinished.connect(lambda: self._edit_key(prompt=self.prompt.text()))
        self.seed.valueChanged.connect(lambda v: self._edit_key(seed=int(v)))
        self.hold.valueChanged.connect(lambda v: self._edit_key(hold=int(v)))
        self.frames_spin.valueChanged.connect(lambda v: self._edit_segment(frames=int(v)))
        self.easing.currentIndexChanged.connect(lambda: self._edit_segment(easing=self.easing.currentData()))
        self.scrubber.valueChanged.connect(lambda v: None if self._updating else vm.set_current(v))
        self.play_button.toggled.connect(self.set_playing)
        self.timer.timeout.connect(self._tick)
        self.send_button.clicked.connect(self._send)
        self.render_timer.timeout.connect(self.render)

    # ------------------------------------------------------------------------------------- actions
    def render(self) -> None:
        try:
            self.vm.request_render()
        except UserError as exc:
            self.status.setText(str(exc))

    def add_keyframe(self) -> None:
        """A keyframe after the selected one: the next seed, the same prompt."""
        row = self.strip.currentRow()
        keys = self.vm.keyframes
        base = keys[row] if 0 <= row < len(keys) else (keys[-1] if keys else ip.Keyframe())
        k = ip.Keyframe(prompt=base.prompt, seed=base.seed + 1 if keys else 0)
        index = self.vm.add_keyframe(k, index=row + 1 if 0 <= row < len(keys) else None)
        self.strip.setCurrentRow(index)

    def add_files(self, paths: list[str]) -> None:
        try:
            self.vm.add_files(paths)
        except UserError as exc:
            self.status.setText(str(exc))

    def remove_selected(self) -> None:
        row = self.strip.currentRow()
        if 0 <= row < len(self.vm.keyframes):
            self.vm.remove(row)

    def export_to(self, path: str, scale: float = 1.0) -> str | None:
        try:
            return self.vm.export(path, scale=scale)
        except UserError as exc:
            self.status.setText(str(exc))
            return None

    def set_playing(self, on: bool) -> None:
        if on and self.vm.frame_count:
            self.timer.start(max(1, round(1000 / self.vm.timeline.fps)))
            self.play_button.setText("Pause")
        else:
            self.timer.stop()
            self.play_button.setText("Play")
            if self.play_button.isChecked():
                self.play_button.setChecked(False)

    def selected_segment(self) -> int:
        """The segment that starts at the selected keyframe (the last one for the last keyframe)."""
        n = len(self.vm.timeline.segments)
        row = self.strip.currentRow()
        return max(0, min(n - 1, row)) if n else -1

    # ------------------------------------------------------------------------------------- refresh
    def refresh(self) -> None:
        vm = self.vm
        self._updating = True
        try:
            self._set_combo(self.travel, vm.travel)
            self._set_combo(self.mode, vm.timeline.mode)
            self.fps.setValue(vm.timeline.fps)
            self.loop.setChecked(vm.timeline.loop)
            self.pingpong.setChecked(vm.timeline.pingpong)
            self.steps.setValue(vm.params.steps)
            self.cfg.setValue(vm.params.cfg_scale)
            self.strength.setValue(vm.strength)
            self.psi.setValue(vm.setting("truncation_psi"))
            for w in (self.steps, self.cfg, self.strength):
                w.setVisible(vm.travel == "diffusion")
            self.psi.setVisible(vm.travel == "stylegan")
            row = self.strip.currentRow()
            self.strip.clear()
            for i, k in enumerate(vm.keyframes):
                self.strip.addItem(self._item(i, k))
            if vm.keyframes:
                self.strip.setCurrentRow(max(0, min(len(vm.keyframes) - 1, row)))
            self._fill_editors()
            n = vm.frame_count
            self.scrubber.setRange(0, max(0, n - 1))
            self.scrubber.setValue(vm.current)
            self.export_button.setEnabled(n > 0)
        finally:
            self._updating = False
        self._show_current(vm.current)
        if self.auto.isChecked() and vm.submit is not None and vm.model is not None:
            self.render_timer.start()

    def _item(self, i: int, k: ip.Keyframe) -> QListWidgetItem:
        image = self.vm.images.get(k.id)
        if self.vm.travel == "vae":
            text = k.label or f"key {i + 1}"
        elif self.vm.travel == "diffusion":
            text = f"{(k.prompt or '(empty)')[:14]}\nseed {k.seed}"
        else:
            text = f"seed {k.seed}"
        item = QListWidgetItem(text)
        if image is not None:
            thumb = image.copy()
            thumb.thumbnail((THUMB, THUMB))
            item.setIcon(QIcon(pil_to_pixmap(thumb)))
        item.setToolTip(k.prompt or k.label or text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsDragEnabled)
        return item

    def _fill_editors(self) -> None:
        keys = self.vm.keyframes
        row = self.strip.currentRow()
        k = keys[row] if 0 <= row < len(keys) else None
        self.prompt.setText(k.prompt if k else "")
        self.seed.setValue(k.seed if k else 0)
        self.hold.setValue(k.hold if k else 0)
        self.prompt.setEnabled(k is not None and self.vm.travel == "diffusion")
        self.seed.setEnabled(k is not None and self.vm.travel != "vae")
        self.hold.setEnabled(k is not None)
        self.remove_button.setEnabled(k is not None)
        s = self.selected_segment()
        segs = self.vm.timeline.segments
        if s >= 0:
            n = len(keys)
            self.segment_label.setText(f"Segment {s + 1} → {(s + 1) % n + 1}")
            self.frames_spin.setValue(segs[s].frames)
            self._set_combo(self.easing, segs[s].easing)
            self.curve.set_easing(segs[s].easing)
        else:
            self.segment_label.setText("Segment (two keyframes needed)")
        self.frames_spin.setEnabled(s >= 0)
        self.easing.setEnabled(s >= 0)

    def _show_current(self, index: int) -> None:
        vm = self.vm
        n = vm.frame_count
        if not n:
            self.view.clear()
            self.frame_label.setText("add two keyframes")
            self.bar.update()
            return
        if not self._updating and self.scrubber.value() != index:
            self._updating = True
            self.scrubber.setValue(index)
            self._updating = False
        shown = index if vm.frame_image(index) is not None else vm.nearest_rendered(index)
        image = vm.frame_image(shown) if shown is not None else None
        if image is None:
            self.view.setText("not rendered")
        else:
            thumb = image.copy()
            if max(thumb.size) > 160 or max(thumb.size) < 80:
                scale = 160 / max(thumb.size)
                from PIL import Image

                thumb = thumb.resize((max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))),
                                     Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)
            self.view.setPixmap(pil_to_pixmap(thumb))
        f = vm.frames()[index]
        state = "" if shown == index else " (rendering…)" if image is not None else ""
        self.frame_label.setText(f"frame {index + 1}/{n} · keys {f.a + 1}→{f.b + 1} t {f.t:.2f} · "
                                 f"{vm.rendered_count()}/{n} rendered{state}")
        self.send_button.setEnabled(vm.frame_image(index) is not None)
        self.bar.update()

    def shown_image(self) -> Any:
        return self.vm.frame_image(self.vm.current)

    # ------------------------------------------------------------------------------------- slots
    def _on_frame_ready(self, index: int) -> None:
        if index == self.vm.current or self.vm.frame_image(self.vm.current) is None:
            self._show_current(self.vm.current)
        else:
            self.bar.update()

    def _on_select(self, row: int) -> None:
        if not self._updating:
            self._updating = True
            try:
                self._fill_editors()
            finally:
                self._updating = False

    def _on_rows_moved(self, parent: QModelIndex, start: int, end: int, dest: QModelIndex, row: int) -> None:
        if self._updating:
            return
        dst = row if row < start else row - 1
        QTimer.singleShot(0, lambda: self.vm.move(start, dst))  # not while Qt is still inside the move

    def _edit_key(self, **fields: Any) -> None:
        row = self.strip.currentRow()
        if self._updating or not 0 <= row < len(self.vm.keyframes):
            return
        k = self.vm.keyframes[row]
        if all(getattr(k, name) == value for name, value in fields.items()):
            return
        self.vm.set_keyframe(row, **fields)

    def _edit_segment(self, **fields: Any) -> None:
        s = self.selected_segment()
        if self._updating or s < 0:
            return
        self.vm.set_segment(s, **fields)

    def _tick(self) -> None:
        n = self.vm.frame_count
        if n:
            self.vm.set_current((self.vm.current + 1) % n)

    def _send(self) -> None:
        image = self.shown_image()
        if image is not None:
            self.send_to_canvas.emit(image, self.vm.frame_record(self.vm.current) or {})

    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Keyframe images", "", "Images (*.png *.jpg *.jpeg *.webp)")
        if paths:
            self.add_files(paths)

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export animation", "morph.gif", EXPORT_FILTER)
        if path:
            if self.export_to(path) is None and self.status.text():
                QMessageBox.warning(self, "Export", self.status.text())

    # ------------------------------------------------------------------------------------- helpers
    def _guard(self, fn, *args) -> None:
        if self._updating:
            return
        try:
            fn(*args)
        except UserError as exc:
            self.status.setText(str(exc))

    @staticmethod
    def _set_combo(combo: QComboBox, data: Any) -> None:
        i = combo.findData(data)
        if i >= 0 and combo.currentIndex() != i:
            combo.setCurrentIndex(i)
