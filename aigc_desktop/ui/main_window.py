"""The main window, assembly only: the canvas in the centre with its tool bar and the one message area,
docks (Prompt, StyleGAN, Layers, Models, Queue, Train, History), menus and shortcuts, wired to the
view-models. Job specs are built by GenerationViewModel / StyleGANViewModel; edits are undo commands on
the DocumentViewModel; results come back through the queue and land in the staging strip."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QPointF, QSize, Qt, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar, QPushButton,
                               QScrollArea, QStatusBar, QTabWidget, QUndoView, QVBoxLayout, QWidget)

from aigc_desktop import __version__
from aigc_desktop.core import jobs
from aigc_desktop.core.catalog import DIFFUSION_KINDS
from aigc_desktop.core.document import Layer
from aigc_desktop.core.document.image_files import IMAGE_SUFFIXES, read_image, rendered, write_png
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.core.settings import Settings
from aigc_desktop.ui.canvas import commands as cmd
from aigc_desktop.ui.canvas.toolbar import CanvasToolBar
from aigc_desktop.ui.canvas.view import CanvasView
from aigc_desktop.ui.panels.gallery import ModelGallery
from aigc_desktop.ui.panels.history import HistoryPanel
from aigc_desktop.ui.panels.layers import LayersPanel
from aigc_desktop.ui.panels.message_bar import MessageBar
from aigc_desktop.ui.panels.prompt import PromptPanel
from aigc_desktop.ui.panels.queue_dock import QueuePanel
from aigc_desktop.ui.panels.settings_dialog import SettingsDialog
from aigc_desktop.ui.panels.stylegan import StyleGANPanel
from aigc_desktop.ui.panels.train import TrainPanel
from aigc_desktop.ui.viewmodels import project as project_vm
from aigc_desktop.ui.viewmodels.document import DocumentViewModel
from aigc_desktop.ui.viewmodels.generation import GenerationViewModel
from aigc_desktop.ui.viewmodels.models import ModelsViewModel
from aigc_desktop.ui.viewmodels.queue import QueueViewModel
from aigc_desktop.ui.viewmodels.results import ResultsViewModel
from aigc_desktop.ui.viewmodels import preflight
from aigc_desktop.ui.viewmodels.stylegan import StyleGANViewModel
from aigc_desktop.ui import engine_client
from aigc_desktop.ui.engine_client import EngineClient
from aigc_desktop.ui.timeline_dock import install_timeline

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
        self.resize(1400, 860)
        self.settings = settings or Settings.load()
        self._engines = engines
        self.worker: EngineClient | None = None
        # Asked before a job whose estimate exceeds the device ("Run anyway"?); tests replace it.
        self.confirm = lambda verdict: preflight.ask(self, verdict)
        self._closing = False
        self._native_shown = 512  # the size the prompt panel starts with
        self.project_path: str | None = None

        # View-models (GUI thread)
        self.queue = QueueViewModel(parent=self)
        self.models = ModelsViewModel(self.settings.model_search_dirs(), parent=self)
        self.document = DocumentViewModel(parent=self)
        self.generation = GenerationViewModel(self.document, parent=self)
        self.stylegan = StyleGANViewModel(self.engine_options(), engines=self._live_engines(engines), parent=self)
        self.results = ResultsViewModel(self.queue, self.document, self.models, self.stylegan, parent=self)
        # The open project file (ProjectViewModel: unsaved state, autosave, recent files, recovery).
        self.project = project_vm.ProjectViewModel(self.document, self.settings, parent=self)

        # Centre: the message area over the canvas
        self.canvas = CanvasView(self.document)
        self.message_bar = MessageBar()
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        # The tool bar lives above the canvas, not in the window's tool bar area (Qt 6 leaves a stale copy of
        # a tabified dock group's tab bar at the window's top edge, which a top tool bar would uncover).
        self.canvas_toolbar = CanvasToolBar(self.canvas, self)
        self.canvas_toolbar.setMovable(False)
        centre_layout.addWidget(self.canvas_toolbar)
        centre_layout.addWidget(self.message_bar)
        centre_layout.addWidget(self.canvas, 1)
        self.setCentralWidget(centre)

        # Docks
        self.prompt_panel = PromptPanel()
        self.prompt_panel.set_params(self.generation.params)
        self.gallery = ModelGallery(self.models)
        self.queue_panel = QueuePanel(self.queue)
        self.history_panel = HistoryPanel(self.document)
        self.layers_panel = LayersPanel(self.document)
        # Side docks run the full height (the bottom area sits under the canvas only); tabs on top.
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        self.prompt_dock = self._dock("Prompt", self.prompt_panel, Qt.DockWidgetArea.LeftDockWidgetArea,
                                      scroll=True)
        self.layers_dock = self._dock("Layers", self.layers_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.gallery_dock = self._dock("Models", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        self.queue_dock = self._dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        # The bottom area holds the history strip; the morph timeline docks here too (add_bottom_dock).
        self.history_dock = self._dock("History", self.history_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.stylegan_panel = StyleGANPanel(self.stylegan)
        self.stylegan_dock = self._dock("StyleGAN", self.stylegan_panel, Qt.DockWidgetArea.LeftDockWidgetArea,
                                        scroll=True)
        self.train_panel = TrainPanel(self.queue, submit=self.queue_job)
        self.train_dock = self._dock("Train", self.train_panel, Qt.DockWidgetArea.RightDockWidgetArea, scroll=True)
        self.tabifyDockWidget(self.gallery_dock, self.queue_dock)
        self.tabifyDockWidget(self.queue_dock, self.train_dock)
        self.gallery_dock.raise_()
        self.tabifyDockWidget(self.prompt_dock, self.stylegan_dock)
        # Both tabs stay (hiding a tabified dock leaves a stale tab bar); the one that fits the model is raised.
        self.stylegan_panel.setEnabled(False)
        self.prompt_dock.raise_()
        self.stylegan_dock.visibilityChanged.connect(self._on_stylegan_tab_shown)
        self.prompt_dock.visibilityChanged.connect(self._on_prompt_tab_shown)

        # Status bar: progress, ETA, cancel (messages go to the message area)
        self.status = QStatusBar()
        self.setStatusBar(self.status)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.setToolTip("Progress of the running job")
        self.eta_label = QLabel("")
        self.eta_label.setMinimumWidth(150)
        self.eta_label.setToolTip("Step, time so far, time left")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_running)
        self.status.addPermanentWidget(self.eta_label)
        self.status.addPermanentWidget(self.progress)
        self.status.addPermanentWidget(self.cancel_button)

        self._build_menus()

        # Wiring: panels -> view-models -> queue; queue -> document -> canvas and panels
        self.prompt_panel.generate_requested.connect(self.generate)
        self.prompt_panel.changed.connect(self._on_prompt_changed)
        self.prompt_panel.message_shown.connect(self._on_panel_message)
        self.generation.params_changed.connect(self._on_generation_params)
        self.generation.params_restored.connect(self.prompt_panel.set_params)
        self.generation.message.connect(self.show_message)
        self.document.changed.connect(self._on_document_event)
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
        self.queue.job_finished.connect(self._on_finished)
        self.queue.job_failed.connect(self._on_failed)
        self.queue.job_unsaved.connect(self._on_unsaved)
        self.queue.job_cancelled.connect(self._on_cancelled)
        self.canvas.message.connect(self.show_message)
        self.document.message.connect(self.show_message)
        self.canvas.files_dropped.connect(self._on_files_dropped)
        self.canvas.image_dropped.connect(self._on_image_dropped)
        self.document.undo_stack.cleanChanged.connect(self._update_title)
        self.project.changed.connect(self._update_title)
        self.project.message.connect(self.show_message)
        self._update_title()

        self._restore_layout()
        self.prompt_panel.prompt.setFocus()  # a new user types a prompt first
        if QGuiApplication.platformName() != "offscreen":
            from PySide6.QtCore import QTimer

            QTimer.singleShot(0, lambda: project_vm.offer_recovery(self.project, self))  # work a crash left
        for warning in self.settings.warnings:
            self.show_message(warning)
        if self.settings.get("last_model"):
            self.models.prefer(self.settings.get("last_model"))
        if scan_models:
            self.models.refresh()
        self.timeline = install_timeline(self)  # the morph timeline dock (ui/timeline_dock.py)

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

    def add_bottom_dock(self, title: str, widget) -> QDockWidget:
        """A dock under the canvas, tabbed with the history (the morph timeline goes here)."""
        # In a scroll area: a tall panel (the timeline) must not make the canvas short for every tab.
        area_widget = QScrollArea()
        area_widget.setWidgetResizable(True)
        area_widget.setFrameShape(QScrollArea.Shape.NoFrame)
        area_widget.setWidget(widget)
        area_widget.setMinimumHeight(120)
        dock = self._dock(title, area_widget, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.history_dock, dock)
        dock.visibilityChanged.connect(lambda shown: self._fit_bottom_dock(dock, widget, shown))
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _fit_bottom_dock(self, dock: QDockWidget, widget, shown: bool) -> None:
        """A bottom dock in front shows its panel whole (up to half the window); back behind another tab, the
        area may shrink again. (A minimum height: resizeDocks does not move a tabbed dock's separator.)"""
        area = dock.widget()
        area.setMinimumHeight(min(widget.sizeHint().height() + 4, self.height() // 2) if shown else 120)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.file_menu = file_menu
        self.new_action = self._action(file_menu, "New", self.new_project, QKeySequence.StandardKey.New)
        self.open_action = self._action(file_menu, "Open…", lambda: self.open_project(None),
                                        QKeySequence.StandardKey.Open)
        self.save_action = self._action(file_menu, "Save", lambda: self.save_project(),
                                        QKeySequence.StandardKey.Save)
        self.save_as_action = self._action(file_menu, "Save As…", lambda: self.save_project(None, ask=True),
                                           QKeySequence.StandardKey.SaveAs)
        self.revert_action = self._action(file_menu, "Revert", self.revert_project)
        self.recent_menu = file_menu.addMenu("Open Recent")
        self.recent_menu.aboutToShow.connect(lambda: project_vm.fill_recent_menu(self.project, self.recent_menu, self))
        file_menu.addSeparator()
        self._action(file_menu, "Import image…", self.import_image_dialog, "Ctrl+I",
                     "Add an image file as a new layer at the frame")
        export = file_menu.addMenu("Export as PNG")
        self._action(export, "Visible canvas…", lambda: self.export_dialog("canvas"))
        self._action(export, "Frame…", lambda: self.export_dialog("frame"), "Ctrl+E")
        self._action(export, "Selected layer…", lambda: self.export_dialog("layer"))
        file_menu.addSeparator()
        self._action(file_menu, "Open model…", self.gallery._open_file)
        self._action(file_menu, "Open outputs folder", lambda: QDesktopServices.openUrl(
            QUrl.fromLocalFile(str(self.settings.outputs_dir()))))
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = bar.addMenu("&Edit")
        stack = self.document.undo_stack
        self.undo_action = stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.StandardKey.Redo])
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        self._action(edit, "Undo History", self.show_undo_history, tip="Every edit; click one to go back to it")
        edit.addSeparator()
        self._action(edit, "Copy frame", lambda: self.copy_to_clipboard("frame"), QKeySequence.StandardKey.Copy,
                     "Copy the visible pixels under the frame")
        self._action(edit, "Copy selected layer", lambda: self.copy_to_clipboard("layer"))
        self._action(edit, "Paste as layer", self.paste_from_clipboard, QKeySequence.StandardKey.Paste,
                     "Paste an image from the clipboard as a new layer at the frame")
        edit.addSeparator()
        self._action(edit, "Clear mask", lambda: self.document.push(cmd.clear_mask_command(self.document.doc)),
                     "Ctrl+Shift+X")
        self._action(edit, "Mask the selection", lambda: self.selection_to_mask(255), "Ctrl+Shift+M",
                     "Paint the selected rectangle into the mask (repaint it)")
        self._action(edit, "Unmask the selection", lambda: self.selection_to_mask(0), "Ctrl+Alt+M")
        self._action(edit, "Frame the selection", self.selection_to_frame, "Ctrl+Shift+F",
                     "Put the generation frame on the selection (snapped to 8)")
        self._action(edit, "Deselect", lambda: self.canvas.set_selection(None), "Ctrl+Shift+A")
        edit.addSeparator()
        self._action(edit, "Settings…", self.open_settings)

        gen = bar.addMenu("&Generate")
        self.generate_menu = gen
        self.generate_action = self._action(gen, "Generate", self.generate, "Ctrl+Return")
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self._action(gen, "Cancel", self.cancel_running, "Escape")
        gen.addSeparator()
        self._action(gen, "Accept staged result", self.document.accept_staged, "Ctrl+Shift+Return")
        self._action(gen, "Discard staged results", lambda: self.document.discard_staged(), "Ctrl+Backspace")

        view = bar.addMenu("&View")
        self.view_menu = view
        self._action(view, "Zoom in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn)
        self._action(view, "Zoom out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action(view, "Fit", self.canvas.fit, "Ctrl+0")
        self._action(view, "100 %", self.canvas.zoom_100, "Ctrl+1")
        self._action(view, "Show frame", lambda: self.canvas.show_rect(self.document.doc.frame.rect), "Ctrl+2")
        self._action(view, "Smaller brush", lambda: self.canvas.set_brush(size=self.canvas.brush.size / 1.2), "[")
        self._action(view, "Larger brush", lambda: self.canvas.set_brush(size=self.canvas.brush.size * 1.2), "]")
        view.addSeparator()
        for dock in (self.prompt_dock, self.stylegan_dock, self.layers_dock, self.gallery_dock, self.queue_dock,
                     self.history_dock, self.train_dock):
            view.addAction(dock.toggleViewAction())
        view.addAction(self.canvas_toolbar.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self.help_menu = help_menu
        self.open_log_action = self._action(help_menu, "Open log folder", self.open_log_folder,
                                            tip="The app's log: every problem with its details")
        self._action(help_menu, "About AIGC Desktop", self.show_about)

    # -- title, messages
    def _update_title(self, *_args) -> None:
        project = getattr(self, "project", None)
        path = project.path if project is not None else None
        self.project_path = str(path) if path else None
        name = path.name if path else "Untitled"
        self.setWindowTitle(f"{name}[*] — AIGC Desktop {__version__}")
        self.setWindowModified(project.dirty if project is not None else not self.document.undo_stack.isClean())

    @Slot(str, bool)
    def show_message(self, text: str, error: bool = False, details: str = "", action=None) -> None:
        self.message_bar.show_message(text, error=error, details=details, action=action)

    @Slot(str, bool)
    def _on_panel_message(self, text: str, error: bool) -> None:
        self.show_message(text, error, details=self.prompt_panel.last_message[2])

    def open_log_folder(self) -> bool:
        from aigc_desktop.core import logs

        folder = logs.log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def about_text(self) -> str:
        from aigc_desktop.core import logs

        lines = [f"AIGC Desktop {__version__}", "Offline image generation: diffusion, StyleGAN, VAE morphs."]
        for engine in engine_client.engine_processes():
            info = engine.device_info
            where = f"{info.name or info.kind}" if info is not None else engine.device
            lines.append(f"Engine process {engine.pid} on {where} (restarted {engine.restarts}×)")
        lines.append(f"Log: {logs.log_file()}")
        return "\n".join(lines)

    def show_about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.about(self, "About AIGC Desktop", self.about_text())

    def show_undo_history(self) -> None:
        if not hasattr(self, "undo_view"):
            self.undo_view = QUndoView(self.document.undo_stack)
            self.undo_view.setEmptyLabel("Opened document")
            self.undo_view.setWindowTitle("Undo History")
            self.undo_dock = self._dock("Undo History", self.undo_view, Qt.DockWidgetArea.RightDockWidgetArea)
            self.tabifyDockWidget(self.layers_dock, self.undo_dock)
        self.undo_dock.show()
        self.undo_dock.raise_()

    # -- selection
    def selection_to_mask(self, value: int = 255) -> None:
        if self.canvas.selection is None:
            self.show_message("Select a rectangle first (Select tool, M)")
            return
        self.document.push(cmd.mask_rect_command(self.document.doc, self.canvas.selection, value))

    def selection_to_frame(self) -> None:
        from aigc_desktop.core.document import Frame

        if self.canvas.selection is None:
            self.show_message("Select a rectangle first (Select tool, M)")
            return
        x, y, w, h = self.canvas.selection
        self.document.push(cmd.SetFrameCommand(self.document.doc, Frame.snapped(x, y, max(w, 64), max(h, 64))))

    # -- project files (the questions and dialogs live in ui/viewmodels/project.py)
    def new_project(self) -> bool:
        return project_vm.file_new(self.project, self)

    def open_project(self, path: str | None = None) -> bool:
        return project_vm.file_open(self.project, self, path)

    def save_project(self, path: str | None = None, ask: bool = False) -> bool:
        if path is not None and not ask:
            return self.project.save(path)
        return project_vm.file_save(self.project, self, ask=ask)

    def revert_project(self) -> bool:
        return project_vm.file_revert(self.project, self)

    # -- worker
    def engine_options(self) -> EngineOptions:
        s = self.settings
        return EngineOptions(device=s.get("device"), dtype=s.get("dtype"), threads=s.get("threads"),
                             memory_budget_gb=s.get("memory_budget_gb"), offload=s.get("offload"),
                             outputs_dir=str(s.outputs_dir()) if s.get("save_outputs") else "")

    @staticmethod
    def _live_engines(engines: dict | None) -> dict | None:
        """Engine instances given for tests serve the live view too when they are of its kind; else the live
        view runs in the device's engine process, like the main queue."""
        if not engines or "stylegan" not in engines:
            return None
        return {"stylegan": engines["stylegan"]}

    @Slot()
    def start_worker(self) -> None:
        """Start the engine client (the device's engine process; torch is imported there, never here). The one
        place it is made; with engine instances (tests) it runs them in a thread."""
        if self.worker is None and not self._closing:
            self.worker = EngineClient(self.queue.queue, self.engine_options(), engines=self._engines)
            self.worker.engine_message.connect(self._on_engine_message)
            self.worker.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.queue.queue.cancel_all()
            self.worker.stop()
            self.worker = None

    # -- jobs
    def build_jobs(self) -> list[jobs.JobSpec]:
        info = self.models.selected
        if info is not None and info.kind == "stylegan":
            return [self._targeted(self.stylegan.build_job())]
        return self.generation.build_jobs(info, family=self.models.family_override, vae=self.models.vae_override,
                                          prediction=self.models.prediction_override)

    def build_job(self) -> jobs.JobSpec:
        return self.build_jobs()[0]

    def _targeted(self, spec: jobs.JobSpec) -> jobs.JobSpec:
        if spec.target is None:
            spec = replace(spec, target={"frame": list(self.document.doc.frame.rect), "layer_id": None})
        return spec

    def queue_job(self, spec: jobs.JobSpec) -> str:
        """The one way every panel (prompt, StyleGAN, training) queues a job: a job that makes images gets
        the frame as its target, the worker starts. Raises UserError / InvalidParameter for a bad spec."""
        if spec.target is None and isinstance(spec, (jobs.DiffusionJob, jobs.StyleGANJob, jobs.FakeJob)):
            spec = self._targeted(spec)  # its images go to the frame
        job_id = self.queue.submit(spec)
        self.start_worker()
        return job_id

    @Slot()
    def generate(self) -> str | None:
        """Queue what the prompt (or StyleGAN) panel describes; returns the first job's id."""
        try:
            specs = self.build_jobs()
            if not self._preflight(specs):
                return None
            ids = [self.queue_job(spec) for spec in specs]
        except (UserError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            return None
        self.message_bar.clear()
        self.prompt_panel.last_seed = self.generation.last_seed
        return ids[0] if ids else None

    @Slot(object)
    def submit_job(self, spec: jobs.JobSpec) -> str | None:
        """Queue a ready spec (StyleGAN seed grids, walks, training): the one way every panel submits."""
        try:
            return self.queue_job(spec) if self._preflight([spec]) else None
        except (UserError, ValueError) as exc:
            self.show_message(str(exc), error=True)
            return None

    def _preflight(self, specs: list[jobs.JobSpec]) -> bool:
        """The estimate against the device: False when it warned and the user cancelled (nothing queued)."""
        if preflight.allowed(specs, self.worker, self.settings.get("device"), self.confirm):
            return True
        self.status.showMessage("Not queued: the estimate was too big", 8000)
        return False

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
            from aigc_desktop.ui.theme import apply_theme

            apply_theme(self.settings.get("theme"))
            self.canvas_toolbar.refresh_icons()  # drawn in the theme's text colour
            self.stylegan.set_options(self.engine_options())
            if self.worker is not None and self.queue.queue.running() is None:
                # New device / thread settings take effect with a fresh engine client.
                self.stop_worker()
                self.start_worker()

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.show_message(f"Could not save settings: {exc}", error=True)

    # -- prompt <-> generation view-model
    @Slot()
    def _on_prompt_changed(self) -> None:
        self.generation.set_params(self.prompt_panel.params())

    @Slot(object)
    def _on_generation_params(self, params) -> None:
        panel = self.prompt_panel
        for box, value in ((panel.width_box, params.width), (panel.height_box, params.height)):
            if box.value() != value:
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)

    # -- model selection
    @Slot(object)
    def _on_model_selected(self, info) -> None:
        is_stylegan = info is not None and info.kind == "stylegan"
        self.stylegan.set_model(info if is_stylegan else None)
        if not is_stylegan and self.queue.running_id() is None:
            self.document.clear_preview()  # the StyleGAN live view leaves the frame
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
        self.document.doc.set_model(None if info is None else {"name": info.name, "path": info.path,
                                                               "kind": info.kind, "family": info.family})

    @Slot(object)
    def _on_document_event(self, event) -> None:
        from aigc_desktop.core.document import events as ev

        if isinstance(event, ev.DocumentReset):
            model = self.document.doc.model
            if model and model.get("path"):
                self.models.prefer(model["path"])  # the model the document was made with, once discovered

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
    def _use_as_init(self, entry) -> None:
        """A history image as the init image file of More options (the file-based way)."""
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

    # -- job events
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
        f = self.document.doc.frame
        self.document.show_preview("stylegan-live", 0, image, (f.x, f.y, image.width, image.height))

    @Slot(str, str)
    def _on_status(self, job_id: str, text: str) -> None:
        self.status.showMessage(text)

    def _job_done(self) -> None:
        self.cancel_button.setEnabled(self.queue.running_id() is not None)
        self.eta_label.setText("")

    @Slot(str, object)
    def _on_finished(self, job_id: str, event: jobs.Finished) -> None:
        self._job_done()
        self.progress.setValue(self.progress.maximum())
        if job_id in self._conversions:
            self.models.add_model_path(self._conversions.pop(job_id))
        where = f" · saved to {Path(event.paths[0]).parent}" if event.paths else ""
        self.status.showMessage(f"Done in {_fmt_seconds(event.elapsed)}{where}", 10000)

    @Slot(str, str, str)
    def _on_failed(self, job_id: str, message: str, details: str) -> None:
        self._job_done()
        self.progress.setValue(0)
        self.status.showMessage("Failed", 15000)
        self.show_message(message, error=True, details=details)

    @Slot(str, object)
    def _on_unsaved(self, job_id: str, event: jobs.SaveFailed) -> None:
        """Made but not saved: never "Done"; the images wait in the staging strip (ResultsViewModel)."""
        self._job_done()
        self.progress.setValue(0)
        self.status.showMessage("Not saved", 15000)
        self.show_message(event.message, error=True, details=event.details)

    @Slot(str)
    def _on_engine_message(self, text: str) -> None:
        self.show_message(text, error=True)

    @Slot(str)
    def _on_cancelled(self, job_id: str) -> None:
        self._job_done()
        self.progress.setValue(0)
        self.status.showMessage("Cancelled", 5000)

    # -- in and out (pixels and files: core/document/image_files.py)
    def add_image_layer(self, image, name: str = "Image", at: QPointF | None = None,
                        record: dict | None = None) -> str:
        """A new layer (one undo step) at the frame, or centred where it was dropped."""
        f = self.document.doc.frame
        x, y = f.x, f.y
        if at is not None:
            x, y = int(at.x() - image.width / 2), int(at.y() - image.height / 2)
        layer = Layer(image, name=name, x=x, y=y, record=record)
        self.document.push(cmd.AddLayerCommand(self.document.doc, layer, text=f"Import {name}"))
        return layer.id

    def import_image(self, path: str, at: QPointF | None = None) -> str | None:
        """Import a file as a layer; a PNG with generation parameters offers to restore them."""
        from aigc_desktop.core.metadata import read_image_metadata

        try:
            image = read_image(path)
        except UserError as exc:
            self.show_message(str(exc), error=True)
            return None
        try:
            meta = read_image_metadata(path)
        except Exception:  # noqa: BLE001 - unreadable metadata never stops an import
            meta = None
        layer_id = self.add_image_layer(image, Path(path).stem[:40], at,
                                        record=meta.record if meta is not None and meta.record else None)
        if meta is not None and meta.found:
            self.show_message(f"{Path(path).name} holds generation parameters ({meta.source or 'unknown tool'}).",
                              action=("Restore parameters", lambda: self.prompt_panel.load_parameters_from(path)))
        return layer_id

    def import_image_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import images", "",
                                                "Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)")
        for path in paths:
            self.import_image(path)

    @Slot(list, QPointF)
    def _on_files_dropped(self, paths: list, pos: QPointF) -> None:
        images = [p for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        for path in images:
            self.import_image(path, pos)
        others = [Path(p).name for p in paths if p not in images]
        if others:
            self.show_message(f"Not an image: {', '.join(others[:3])}", error=True)

    @Slot(object, QPointF)
    def _on_image_dropped(self, qimage, pos: QPointF) -> None:
        from aigc_desktop.ui.qt_image import qimage_to_pil

        self.add_image_layer(qimage_to_pil(qimage), "Dropped image", pos)

    def paste_from_clipboard(self) -> str | None:
        from aigc_desktop.ui.qt_image import qimage_to_pil

        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            image = QGuiApplication.clipboard().image()
            if not image.isNull():
                return self.add_image_layer(qimage_to_pil(image), "Pasted image")
        if mime is not None and mime.hasUrls():
            files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if files:
                return self.import_image(files[0])
        self.show_message("The clipboard holds no image")
        return None

    def export_image(self, what: str):
        """(PIL image, record or None) for 'canvas' (all visible layers), 'frame' or 'layer' (selected)."""
        return rendered(self.document.doc, what, self.document.selected)

    def export_png(self, what: str, path: str) -> str:
        image, record = self.export_image(what)
        return str(write_png(image, path, record))

    def export_dialog(self, what: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", f"{what}.png", "PNG images (*.png)")
        if not path:
            return
        try:
            saved = self.export_png(what, path)
        except (UserError, OSError) as exc:
            self.show_message(str(exc), error=True)
            return
        self.show_message(f"Exported {Path(saved).name}")

    def copy_to_clipboard(self, what: str = "frame") -> None:
        from aigc_desktop.ui.qt_image import pil_to_qimage

        try:
            image, _record = self.export_image(what)
        except UserError as exc:
            self.show_message(str(exc), error=True)
            return
        QGuiApplication.clipboard().setImage(pil_to_qimage(image))
        self.status.showMessage("Copied to the clipboard", 3000)

    # -- lifecycle
    def _restore_layout(self) -> None:
        state = self.settings.get("window_state")
        if not state:
            return
        try:
            geometry, docks = state.split(";", 1)
            self.restoreGeometry(QByteArray(base64.b64decode(geometry)))
            self.restoreState(QByteArray(base64.b64decode(docks)))
        except (ValueError, TypeError):
            pass  # an old or damaged layout: the default one

    def _layout_state(self) -> str:
        return (base64.b64encode(bytes(self.saveGeometry())).decode() + ";" +
                base64.b64encode(bytes(self.saveState())).decode())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        from PySide6.QtGui import QGuiApplication

        if QGuiApplication.platformName() == "offscreen":
            self.project.shutdown()  # nobody can answer a question offscreen (tests, screenshots)
        elif not project_vm.confirm_close(self.project, self):
            event.ignore()
            return
        self._closing = True
        if self.models.selected is not None:
            self.settings.set("last_model", self.models.selected.path)
        self.settings.set("window_state", self._layout_state())
        self._save_settings()
        # Every lane of every engine process at once (quit returns within 3 s, a stuck step gets its engine
        # killed); the clients then find their lanes gone.
        self.queue.queue.cancel_all()
        self.stylegan.live_queue.queue.cancel_all()
        engine_client.shutdown()
        self.stop_worker()
        self.stylegan.shutdown()
        self.models.join()
        super().closeEvent(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1400, 860)
