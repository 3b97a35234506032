"""Discovered models and the current selection. Discovery runs off the GUI thread."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from aigc_desktop.core import catalog
from aigc_desktop.core.catalog import ModelInfo


class ModelsViewModel(QObject):
    models_changed = Signal()
    selection_changed = Signal(object)  # ModelInfo | None
    scanning_changed = Signal(bool)
    last_image_changed = Signal(str)  # model path whose card shows a new "last image"

    _scanned = Signal(object)  # list[ModelInfo], from the scanning thread

    def __init__(self, folders: list[Path] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folders: list[Path] = list(folders or [])
        self.models: list[ModelInfo] = []
        self.selected: ModelInfo | None = None
        # Per-session choices applied to diffusion jobs (gallery combos): family, VAE file, prediction type.
        self.family_override: str | None = None
        self.vae_override: str | None = None
        self.prediction_override: str | None = None
        self._preferred: str | None = None
        self.last_images: dict = {}  # model path -> the last image (PIL) made with it this session
        self._last_by_kind: dict[str, str] = {}  # kind -> path of the model of that kind selected last
        self._thread: threading.Thread | None = None
        self._scanned.connect(self._on_scanned)

    def set_folders(self, folders: list[Path]) -> None:
        self.folders = list(folders)
        self.refresh()

    def refresh(self, wait: bool = False) -> None:
        """Rescan the folders in a background thread; `wait` blocks (tests, CLI-like use)."""
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        folders = list(self.folders)
        self.scanning_changed.emit(True)
        self._thread = threading.Thread(target=lambda: self._scanned.emit(catalog.discover(folders)),
                                        name="aigc-model-scan", daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    @Slot(object)
    def _on_scanned(self, models: list[ModelInfo]) -> None:
        self.models = models
        self.scanning_changed.emit(False)
        self.models_changed.emit()
        keep = self._preferred or (self.selected.path if self.selected else None)
        match = next((m for m in models if m.path == keep), None)
        if match is None:
            match = next((m for m in models if m.kind in catalog.GENERATOR_KINDS), None)
        self.select(match)

    def prefer(self, path: str) -> None:
        """Select this model once it is discovered (the last model used)."""
        self._preferred = path
        match = next((m for m in self.models if m.path == path), None)
        if match:
            self.select(match)

    def select(self, info: ModelInfo | None) -> None:
        if info is self.selected or (info and self.selected and info.path == self.selected.path):
            self.selected = info
            return
        self.selected = info
        if info is not None:
            self._last_by_kind[info.kind] = info.path
        self.selection_changed.emit(info)

    def last_of_kinds(self, kinds: tuple[str, ...]) -> ModelInfo | None:
        """The model of one of these kinds selected most recently, else the first discovered one (None: none)."""
        candidates = [m for m in self.models if m.kind in kinds]
        remembered = {self._last_by_kind.get(kind) for kind in kinds}
        return next((m for m in candidates if m.path in remembered), candidates[0] if candidates else None)

    def set_last_image(self, path: str, image) -> None:
        self.last_images[path] = image
        self.last_image_changed.emit(path)

    def select_path(self, path: str) -> None:
        self.select(next((m for m in self.models if m.path == path), None))

    def add_model_path(self, path: str | Path) -> ModelInfo:
        """A model opened by hand (file dialog / drop) joins the list and is selected."""
        info = catalog.info_for(path)
        if all(m.path != info.path for m in self.models):
            self.models.append(info)
            self.models_changed.emit()
        self.select(info)
        return info
