"""The Train dock: train a model on a folder of images in the worker, with a live loss plot and samples.

The panel builds a TrainJob and submits it to the job queue; the training engine reports TrainMetrics
(losses) and TrainSample (sample grids) events, which reach this panel's slots in the GUI thread.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safe_io import MiB, load_json_file
from aigc_desktop.training.registry import DESCRIPTIONS
from aigc_desktop.training.runfiles import has_checkpoint, read_losses
from aigc_desktop.ui.qt_image import pil_to_pixmap
from aigc_desktop.ui.viewmodels.queue import QueueViewModel

_COLORS = ("#2a7fff", "#e8590c", "#2f9e44", "#ae3ec9", "#868e96", "#f59f00")


class LossPlot(QWidget):
    """Loss curves drawn with QPainter: one series per loss name, log-scaled when they span a decade."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("lossPlot")
        self.setMinimumSize(220, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.total = 0

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def add(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                points = self.series.setdefault(name, [])
                if points and points[-1][0] >= step:  # a resumed run redoes steps: drop the stale tail
                    self.series[name] = points = [p for p in points if p[0] < step]
                points.append((int(step), float(value)))
        self.update()

    def _scale(self) -> tuple[float, float, bool]:
        values = [v for pts in self.series.values() for _, v in pts]
        low, high = min(values), max(values)
        log = low > 0 and high / low > 10
        if log:
            low, high = math.log10(low), math.log10(high)
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5
        return low, high, log

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        area = QRectF(self.rect()).adjusted(44, 10, -10, -22)
        p.setPen(QPen(QColor("#adb5bd"), 1))
        p.drawRect(area)
        if not any(self.series.values()):
            p.setPen(QColor("#868e96"))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "Losses appear here while training")
            p.end()
            return
        low, high, log = self._scale()
        max_step = max(self.total, max(s for pts in self.series.values() for s, _ in pts), 1)

        def point(step: int, value: float) -> QPointF:
            v = math.log10(value) if log else value
            x = area.left() + area.width() * step / max_step
            y = area.bottom() - area.height() * (v - low) / (high - low)
            return QPointF(x, y)

        p.setPen(QColor("#495057"))
        top = 10 ** high if log else high
        bottom = 10 ** low if log else low
        p.drawText(QRectF(0, area.top() - 6, 42, 14), Qt.AlignmentFlag.AlignRight, f"{top:.3g}")
        p.drawText(QRectF(0, area.bottom() - 8, 42, 14), Qt.AlignmentFlag.AlignRight, f"{bottom:.3g}")
        p.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), 14), Qt.AlignmentFlag.AlignRight,
                   f"step {max_step}" + ("  (log scale)" if log else ""))
        for i, (name, points) in enumerate(self.series.items()):
            color = QColor(_COLORS[i % len(_COLORS)])
            path = QPainterPath()
            for j, (step, value) in enumerate(points):
                if log and value <= 0:
                    continue
                pt = point(step, value)
                path.moveTo(pt) if j == 0 or path.elementCount() == 0 else path.lineTo(pt)
            p.setPen(QPen(color, 1.5))
            p.drawPath(path)
            p.drawText(QPointF(area.left() + 6, area.top() + 14 + 14 * i), f"{name} {points[-1][1]:.4g}")
        p.end()


class _EventBridge(QObject):
    """Queue events arrive in the worker thread; this signal hands them to a GUI-thread slot."""

    event = Signal(object)


class TrainPanel(QWidget):
    """Form (model kind, data, output, steps, size, batch, resume), Start/Stop, loss plot, latest samples."""

    def __init__(self, queue: QueueViewModel, start_worker: Callable[[], None] | None = None,
                 submit: Callable[[Any], str] | None = None, parent=None) -> None:
        """`submit`: the window's one way to queue a job (it starts the worker); without it, the queue."""
        super().__init__(parent)
        self.setObjectName("TrainPanel")
        self.queue = queue
        self.start_worker = start_worker
        self.submit = submit
        self.job_id: str | None = None
        self.last_sample = None

        self.kind = QComboBox()
        for kind, text in DESCRIPTIONS.items():
            self.kind.addItem(kind, kind)
            self.kind.setItemData(self.kind.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.data = QLineEdit()
        self.data.setPlaceholderText("folder of images (+ .txt captions)")
        self.data.textChanged.connect(self._describe_data)
        self.out = QLineEdit()
        self.out.setPlaceholderText("run folder (checkpoints, samples, model)")
        self.out.textChanged.connect(self._update_resume)
        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.steps.setValue(2000)
        self.resolution = QComboBox()
        for size in (32, 64, 128, 256):
            self.resolution.addItem(str(size), size)
        self.resolution.setCurrentIndex(1)
        self.batch = QSpinBox()
        self.batch.setRange(1, 1024)
        self.batch.setValue(16)
        for widget, tip in ((self.kind, "What to train: text-to-image diffusion, StyleGAN2 or the morph VAE"),
                            (self.steps, "Training steps (more is better, and slower)"),
                            (self.resolution, "Image size the model trains at"),
                            (self.batch, "Images per step (more uses more memory)")):
            if not widget.toolTip():
                widget.setToolTip(tip)
        self.resume = QCheckBox("Continue the run in this folder")
        self.resume.setToolTip("Pick up exactly where the run in the output folder stopped")
        self.data_info = QLabel("")
        self.data_info.setObjectName("trainDataInfo")

        form = QFormLayout()
        form.addRow("Model", self.kind)
        form.addRow("Images", self._with_browse(self.data, "Choose the image folder"))
        form.addRow("", self.data_info)
        form.addRow("Output", self._with_browse(self.out, "Choose the run folder"))
        form.addRow("Steps", self.steps)
        form.addRow("Size", self.resolution)
        form.addRow("Batch", self.batch)
        form.addRow("", self.resume)

        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("trainStart")
        self.start_button.setToolTip("Train in the worker (the queue shows it); the loss plot and samples follow")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stops after the current step and saves a checkpoint (continue later)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        self.message = QLabel("")
        self.message.setObjectName("trainMessage")
        self.message.setWordWrap(True)
        self.plot = LossPlot()
        self.sample_view = QLabel("Samples appear here")
        self.sample_view.setObjectName("trainSample")
        self.sample_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_view.setMinimumHeight(96)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.sample_view)

        self._bridge = _EventBridge(self)
        self._bridge.event.connect(self.on_event)
        self._listener = self._bridge.event.emit
        self.queue.queue.subscribe(self._listener)
        self.destroyed.connect(lambda *_: queue.queue.unsubscribe(self._listener))
        queue.job_finished.connect(self._on_finished)
        queue.job_failed.connect(self._on_failed)
        queue.job_cancelled.connect(self._on_cancelled)
        queue.status_changed.connect(self._on_status)

    def _with_browse(self, edit: QLineEdit, title: str) -> QWidget:
        button = QPushButton("…")
        button.setToolTip(title)
        edit.setToolTip(title)
        button.setMaximumWidth(32)
        button.clicked.connect(lambda: self._browse(edit, title))
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return box

    def _browse(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    @Slot(str)
    def _describe_data(self, text: str) -> None:
        from aigc_desktop.training.dataset import image_files

        try:
            files = image_files(text) if text else []
        except UserError:
            self.data_info.setText("folder not found" if text else "")
            return
        captions = sum(1 for f in files if f.with_suffix(".txt").is_file())
        self.data_info.setText(f"{len(files)} images, {captions} with captions" if text else "")

    @Slot(str)
    def _update_resume(self, text: str) -> None:
        exists = bool(text) and has_checkpoint(text)
        self.resume.setChecked(exists)
        if exists:
            self._load_run_settings(Path(text))
            self.plot.clear()
            try:
                rows = read_losses(text)
            except UserError:  # a loss log too large or not a regular file: no plot, the run still resumes
                rows = []
            for row in rows:
                self.plot.add(int(row.get("step", 0)), {k: v for k, v in row.items() if k not in ("step", "time")})

    def _load_run_settings(self, run: Path) -> None:
        """Continuing a run: take its kind, size, batch and planned steps from its config.json."""
        if not (run / "config.json").is_file():
            return
        try:
            config = load_json_file(run / "config.json", "run config", max_bytes=MiB, max_depth=8)
        except UserError:
            return
        if not isinstance(config, dict):
            return
        # The folder may come from anyone: only values of the right type and range are taken.
        kind, resolution = config.get("kind"), config.get("resolution")
        index = self.kind.findData(kind) if isinstance(kind, str) else -1
        if index >= 0:
            self.kind.setCurrentIndex(index)
        size = self.resolution.findData(resolution) if type(resolution) is int and 0 < resolution <= 1 << 16 else -1
        if size >= 0:
            self.resolution.setCurrentIndex(size)
        for box, key in ((self.steps, "steps"), (self.batch, "batch")):
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and box.minimum() <= value <= box.maximum():
                box.setValue(value)
        if isinstance(config.get("data"), str) and config["data"] and not self.data.text():
            self.data.setText(config["data"][:4096])

    # -- commands
    def spec(self) -> jobs.TrainJob:
        spec = jobs.TrainJob(model=self.kind.currentData(), data=self.data.text().strip(),
                             out=self.out.text().strip(), steps=self.steps.value(),
                             resolution=int(self.resolution.currentData()), batch=self.batch.value(),
                             resume=self.resume.isChecked())
        spec.validate()
        return spec

    @Slot()
    def start(self) -> str | None:
        try:
            spec = self.spec()
            if has_checkpoint(spec.out) and not spec.resume:
                raise UserError(f"{spec.out} already holds a run: tick 'Continue' or choose another folder")
            job_id = self.submit(spec) if self.submit else self.queue.submit(spec)
        except (UserError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            return None
        self.job_id = job_id
        if not spec.resume:
            self.plot.clear()
        self.plot.total = spec.steps
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.show_message("Queued…")
        if self.start_worker and not self.submit:
            self.start_worker()
        return job_id

    @Slot()
    def stop(self) -> None:
        if self.job_id:
            self.queue.cancel(self.job_id)
            self.show_message("Stopping after this step…")

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c92a2a;" if error else "")
        self.message.setText(text)

    # -- events (GUI thread)
    @Slot(object)
    def on_event(self, event: jobs.JobEvent) -> None:
        if event.job_id != self.job_id:
            return
        if isinstance(event, jobs.TrainMetrics):
            self.plot.total = event.total
            self.plot.add(event.step, event.losses)
            losses = ", ".join(f"{k} {v:.4f}" for k, v in event.losses.items())
            self.show_message(f"Step {event.step}/{event.total}: {losses}")
        elif isinstance(event, jobs.TrainSample):
            self.last_sample = event.image
            pixmap = pil_to_pixmap(event.image)
            width = max(64, self.sample_view.width() - 8)
            self.sample_view.setPixmap(pixmap.scaledToWidth(min(width, pixmap.width() * 2),
                                                            Qt.TransformationMode.FastTransformation))
            self.sample_view.setToolTip(f"Samples at step {event.step}")

    def _done(self, job_id: str, text: str, error: bool = False) -> None:
        if job_id != self.job_id:
            return
        self.job_id = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.resume.setChecked(has_checkpoint(self.out.text().strip()))
        self.show_message(text, error)

    @Slot(str, str)
    def _on_status(self, job_id: str, text: str) -> None:
        if job_id == self.job_id:
            self.show_message(text)

    @Slot(str, object)
    def _on_finished(self, job_id: str, event) -> None:
        self._done(job_id, f"Done: model saved in {Path(self.out.text().strip()) / 'model'}")

    @Slot(str, str, str)
    def _on_failed(self, job_id: str, message: str, details: str) -> None:
        self._done(job_id, f"Failed: {message}", error=True)

    @Slot(str)
    def _on_cancelled(self, job_id: str) -> None:
        self._done(job_id, "Stopped; the checkpoint is saved (tick 'Continue' to resume)")
