"""The main window: canvas in the centre, prompt panel, model gallery and job queue docks, status bar."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton, QScrollArea, QStatusBar, QTabWidget)

from aigc_desktop import __version__
from aigc_desktop.core import jobs
from aigc_desktop.core.catalog import DIFFUSION_KINDS
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.core.settings import Settings
from aigc_desktop.ui.canvas.view import CanvasView
from aigc_desktop.ui.panels.gallery import ModelGallery
from aigc_desktop.ui.panels.history import HistoryPanel
from aigc_desktop.ui.panels.prompt import PromptPanel
from aigc_desktop.ui.panels.queue_dock import QueuePanel
from aigc_desktop.ui.panels.settings_dialog import SettingsDialog
from aigc_desktop.ui.panels.stylegan import StyleGANPanel
from aigc_desktop.ui.panels.train import TrainPanel
from aigc_desktop.ui.viewmodels.document import CanvasImage, DocumentViewModel
from aigc_desktop.ui.viewmodels.models import ModelsViewModel
from aigc_desktop.ui.viewmodels.queue import QueueViewModel
from aigc_desktop.ui.viewmodels.stylegan import StyleGANViewModel
from aigc_desktop.ui.worker import Worker

log = logging.getLogger(__name__)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = max(0.0, s)
    return f"{int(s // 60)}:{int(s % 60):02d}" if s >= 60 else f"{s:.1f}s"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, engines: dict | None = None,
                 scan_models: bool = True) -> None:
        super().__init__()
        self.setWindowTitle(f"AIGC Desktop {__version__}")
        self.resize(1400, 860)
        self.settings = settings or Settings.load()
        self._engines = engines
        self.worker: Worker | None = None
        self._closing = False
        self._native_shown = 512  # the size the prompt panel starts with

        # View-models (GUI thread)
        self.queue = QueueViewModel(parent=self)
        self.models = ModelsViewModel(self.settings.model_search_dirs(), parent=self)
        self.document = DocumentViewModel(parent=self)

        # Centre: canvas
        self.canvas = CanvasView(self.document)
        self.setCentralWidget(self.canvas)

        # Docks
        self.prompt_panel = PromptPanel()
        self.gallery = ModelGallery(self.models)
        self.queue_panel = QueuePanel(self.queue)
        self.history_panel = HistoryPanel(self.document)
        # Side docks run the full height (the history strip sits under the canvas only); tabs on top.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        self.prompt_dock = self._dock("Prompt", self.prompt_panel, Qt.DockWidgetArea.LeftDockWidgetArea,
                                      scroll=True)
        self.gallery_dock = self._dock("Models", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        self.queue_dock = self._dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.history_dock = self._dock("History", self.history_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # StyleGAN models get their own panel (tabbed with the prompt) and a live view with its own worker.
        self.stylegan = StyleGANViewModel(self.engine_options(), parent=self)
        self.stylegan_panel = StyleGANPanel(self.stylegan)
        self.stylegan_dock = self._dock("StyleGAN", self.stylegan_panel, Qt.DockWidgetArea.LeftDockWidgetArea,
                                        scroll=True)
        # Training on the user's own images, tabbed with the queue.
        self.train_panel = TrainPanel(self.queue, start_worker=self.start_worker)
        self.train_dock = self._dock("Train", self.train_panel, Qt.DockWidgetArea.RightDockWidgetArea, scroll=True)
        self.tabifyDockWidget(self.queue_dock, self.train_dock)
        self.queue_dock.raise_()
        self.tabifyDockWidget(self.prompt_dock, self.stylegan_dock)
        # Both tabs stay (hiding a tabified dock leaves a stale tab bar); the one that fits the model is raised.
        self.stylegan_panel.setEnabled(False)
        self.prompt_dock.raise_()
        # Raising a tab picks a model that fits it (the one of its kind used last), so the StyleGAN tab works
        # at once when a StyleGAN model exists, and the Prompt tab returns to the last diffusion model.
        self.stylegan_dock.visibilityChanged.connect(self._on_stylegan_tab_shown)
        self.prompt_dock.visibilityChanged.connect(self._on_prompt_tab_shown)

        # Status bar: message, progress, ETA, cancel
        self.status = QStatusBar()
        self.setStatusBar(self.status)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.eta_label = QLabel("")
        self.eta_label.setMinimumWidth(150)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_running)
        self.status.addPermanentWidget(self.eta_label)
        self.status.addPermanentWidget(self.progress)
        self.status.addPermanentWidget(self.cancel_button)

        self._build_menus()

        # Wiring
        self.prompt_panel.generate_requested.connect(self.generate)
        self.prompt_panel.parameters_loaded.connect(self._on_parameters_loaded)
        self.history_panel.use_as_init_requested.connect(self._use_as_init)
        self.stylegan_panel.generate_requested.connect(self.generate)
        self.stylegan_panel.job_requested.connect(self.submit_job)
        self.stylegan.live_image.connect(self._on_live_image)
        self.gallery.convert_requested.connect(self.convert_stylegan)
        self._conversions: dict[str, str] = {}  # job id -> folder of a StyleGAN conversion
        self.gallery.add_folder_requested.connect(self.add_model_folder)
        self.models.selection_changed.connect(self._on_model_selected)
        self.queue.job_started.connect(self._on_started)
        self.queue.progress_changed.connect(self._on_progress)
        self.queue.status_changed.connect(self._on_status)
        self.queue.preview_changed.connect(self._on_preview)
        self.queue.job_finished.connect(self._on_finished)
        self.queue.job_failed.connect(self._on_failed)
        self.queue.job_cancelled.connect(self._on_cancelled)
        self._sizes: dict[str, tuple[int, int]] = {}

        for warning in self.settings.warnings:
            self.status.showMessage(warning, 10000)
        if self.settings.get("last_model"):
            self.models.prefer(self.settings.get("last_model"))
        if scan_models:
            self.models.refresh()

    def _dock(self, title: str, widget, area, scroll: bool = False) -> QDockWidget:
        """A dock holding `widget`; form panels scroll instead of squeezing on small screens."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title}Dock")
        if scroll:
            area_widget = QScrollArea()
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QScrollArea.Shape.NoFrame)
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            area_widget.setWidget(widget)
            bar = area_widget.style().pixelMetric(area_widget.style().PixelMetric.PM_ScrollBarExtent)
            area_widget.setMinimumWidth(widget.minimumSizeHint().width() + bar + 4)
            dock.setWidget(area_widget)
        else:
            dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_model = QAction("Open model…", self)
        open_model.triggered.connect(self.gallery._open_file)
        file_menu.addAction(open_model)
        outputs = QAction("Open outputs folder", self)
        outputs.triggered.connect(lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(self.settings.outputs_dir()))))
        file_menu.addAction(outputs)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        settings_action = QAction("Settings…", self)
        settings_action.triggered.connect(self.open_settings)
        edit_menu.addAction(settings_action)
        gen_menu = self.menuBar().addMenu("&Generate")
        generate = QAction("Generate", self)
        generate.setShortcut(QKeySequence("Ctrl+Return"))
        generate.triggered.connect(self.generate)
        gen_menu.addAction(generate)
        cancel = QAction("Cancel", self)
        cancel.setShortcut(QKeySequence("Escape"))
        cancel.triggered.connect(self.cancel_running)
        gen_menu.addAction(cancel)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.prompt_dock, self.stylegan_dock, self.gallery_dock, self.queue_dock, self.history_dock,
                     self.train_dock):
            view_menu.addAction(dock.toggleViewAction())

    # -- worker
    def engine_options(self) -> EngineOptions:
        s = self.settings
        return EngineOptions(device=s.get("device"), dtype=s.get("dtype"), threads=s.get("threads"),
                             memory_budget_gb=s.get("memory_budget_gb"), offload=s.get("offload"),
                             outputs_dir=str(s.outputs_dir()) if s.get("save_outputs") else "")

    @Slot()
    def start_worker(self) -> None:
        """Start the worker thread (torch is imported there, after the window is shown)."""
        if self.worker is None and not self._closing:
            self.worker = Worker(self.queue.queue, self.engine_options(), engines=self._engines)
            self.worker.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.queue.queue.cancel_all()
            self.worker.stop()
            self.worker = None

    # -- actions
    def build_job(self) -> jobs.JobSpec:
        info = self.models.selected
        if info is None:
            raise UserError("Pick a model in the Models panel first")
        if info.kind == "stylegan":
            return self.stylegan.build_job()
        if info.kind not in DIFFUSION_KINDS:
            detail = f": {info.note}" if info.note else ""
            raise UserError(f"{info.name} is a {info.label}, not a model that generates images{detail}")
        params = self.prompt_panel.params().with_seed_resolved()
        ref = jobs.ModelRef(info.path, kind=info.kind, family=self.models.family_override or info.family,
                            vae=self.models.vae_override, prediction_type=self.models.prediction_override)
        return jobs.DiffusionJob(model=ref, params=params)

    @Slot()
    def generate(self) -> str | None:
        try:
            spec = self.build_job()
            job_id = self.queue.submit(spec)
        except (UserError, ValueError) as exc:
            self.prompt_panel.show_message(str(exc), error=True)
            self.status.showMessage(str(exc), 8000)
            return None
        self.prompt_panel.show_message("")
        params = getattr(spec, "params", None)
        if params is not None:
            self.prompt_panel.last_seed = params.seed
            self._sizes[job_id] = (params.width, params.height)
        self.start_worker()
        return job_id

    @Slot(object)
    def submit_job(self, spec: jobs.JobSpec) -> str | None:
        """Queue a ready spec (StyleGAN seed grids and walks)."""
        try:
            job_id = self.queue.submit(spec)
        except (UserError, ValueError) as exc:
            self.status.showMessage(str(exc), 8000)
            return None
        self.start_worker()
        return job_id

    @Slot(str)
    def convert_stylegan(self, path: str) -> str | None:
        """Convert a StyleGAN checkpoint to safetensors + JSON in a folder beside it; it joins the models."""
        src = Path(path)
        out = src.with_name(f"{src.stem}-safetensors")
        job_id = self.submit_job(jobs.StyleGANConvertJob(model=jobs.ModelRef(path, kind="stylegan"), out=str(out)))
        if job_id:
            self._conversions[job_id] = str(out)
        return job_id

    @Slot()
    def cancel_running(self) -> None:
        if self.queue.cancel_running():
            self.status.showMessage("Cancelling…", 3000)

    @Slot(str)
    def add_model_folder(self, folder: str) -> None:
        folders = self.settings.get("model_folders")
        if folder not in folders:
            self.settings.set("model_folders", folders + [folder])
            self._save_settings()
        self.models.set_folders(self.settings.model_search_dirs())

    @Slot()
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self._save_settings()
            self.models.set_folders(self.settings.model_search_dirs())
            if self.worker is not None and self.queue.queue.running() is None:
                # New device / thread settings take effect with a fresh worker.
                self.stop_worker()
                self.start_worker()

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.status.showMessage(f"Could not save settings: {exc}", 8000)

    # -- job events
    @Slot(object)
    def _on_model_selected(self, info) -> None:
        is_stylegan = info is not None and info.kind == "stylegan"
        self.stylegan.set_model(info if is_stylegan else None)
        self._update_stylegan_tab()
        if is_stylegan:
            self.stylegan_dock.raise_()
        elif info is not None:
            self.prompt_dock.raise_()
        if info is not None and info.kind in DIFFUSION_KINDS:
            # Follow the model's native size, but only when the size shown is still the previous model's
            # native size: a size the user chose (or restored from an image) stays.
            native = info.default_size
            panel = self.prompt_panel
            if {panel.width_box.value(), panel.height_box.value()} == {self._native_shown}:
                panel.set_default_size(native)
            self._native_shown = native

    def _update_stylegan_tab(self) -> None:
        selected = self.models.selected
        self.stylegan_panel.setEnabled(selected is not None and selected.kind == "stylegan")
        none = self.models.last_of_kinds(("stylegan",)) is None
        self.stylegan_panel.setToolTip("Add a StyleGAN model (.pkl, .pt or a converted folder) in the Models panel"
                                       if none else "")

    @Slot(bool)
    def _on_stylegan_tab_shown(self, visible: bool) -> None:
        selected = self.models.selected
        if visible and (selected is None or selected.kind != "stylegan"):
            info = self.models.last_of_kinds(("stylegan",))
            if info is not None:
                self.models.select(info)

    @Slot(bool)
    def _on_prompt_tab_shown(self, visible: bool) -> None:
        selected = self.models.selected
        if visible and selected is not None and selected.kind == "stylegan":
            info = self.models.last_of_kinds(DIFFUSION_KINDS)
            if info is not None:
                self.models.select(info)

    @Slot(object)
    def _use_as_init(self, entry: CanvasImage) -> None:
        self.prompt_panel.options.use_image(entry.image, entry.path)
        self.prompt_panel.width_box.setValue(entry.image.width // 8 * 8)
        self.prompt_panel.height_box.setValue(entry.image.height // 8 * 8)
        self.prompt_dock.raise_()

    @Slot(object)
    def _on_parameters_loaded(self, meta) -> None:
        """An image's parameters were restored: select the model it was made with, when we have it."""
        from aigc_desktop.core.restore import find_model

        candidates = [m for m in self.models.models if m.kind in DIFFUSION_KINDS]
        info = find_model(meta, candidates)
        if info is not None:
            self.models.select(info)
            self.status.showMessage(f"Model {info.name} selected from the image's metadata", 8000)

    @Slot(str)
    def _on_started(self, job_id: str) -> None:
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status.showMessage("Generating…")

    @Slot(str, int, int, float, object)
    def _on_progress(self, job_id: str, step: int, total: int, elapsed: float, eta) -> None:
        if step == 1:
            self.status.showMessage("Generating…")
        self.progress.setMaximum(total)
        self.progress.setValue(step)
        self.eta_label.setText(f"{step}/{total} · {_fmt_seconds(elapsed)} · ETA {_fmt_seconds(eta)}")

    @Slot(object)
    def _on_live_image(self, image) -> None:
        self.document.show_preview(image, image.width, image.height)

    @Slot(str, str)
    def _on_status(self, job_id: str, text: str) -> None:
        self.status.showMessage(text)

    @Slot(str, object)
    def _on_preview(self, job_id: str, image) -> None:
        w, h = self._sizes.get(job_id, (image.width * 8, image.height * 8))
        self.document.show_preview(image, w, h)

    def _job_done(self) -> None:
        self.cancel_button.setEnabled(self.queue.running_id() is not None)
        self.eta_label.setText("")
        self.document.clear_preview()

    @Slot(str, object)
    def _on_finished(self, job_id: str, event: jobs.Finished) -> None:
        self._job_done()
        self.progress.setValue(self.progress.maximum())
        if job_id in self._conversions:
            self.models.add_model_path(self._conversions.pop(job_id))
        paths = list(event.paths) + [None] * (len(event.images) - len(event.paths))
        self.document.add_images([CanvasImage(img, rec, path)
                                  for img, rec, path in zip(event.images, event.records, paths)])
        where = f" · saved to {Path(event.paths[0]).parent}" if event.paths else ""
        self.status.showMessage(f"Done in {_fmt_seconds(event.elapsed)}{where}", 10000)

    @Slot(str, str, str)
    def _on_failed(self, job_id: str, message: str, details: str) -> None:
        self._job_done()
        self.progress.setValue(0)
        self.status.showMessage(f"Failed: {message}", 15000)
        self.prompt_panel.show_message(message, error=True)

    @Slot(str)
    def _on_cancelled(self, job_id: str) -> None:
        self._job_done()
        self.progress.setValue(0)
        self.status.showMessage("Cancelled", 5000)

    # -- lifecycle
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._closing = True
        if self.models.selected is not None:
            self.settings.set("last_model", self.models.selected.path)
            self._save_settings()
        self.stop_worker()
        self.stylegan.shutdown()
        self.models.join()
        super().closeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1400, 860)
