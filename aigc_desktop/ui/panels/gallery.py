"""The model gallery: discovered models with their detected kind; pick one to generate with."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu,
                               QPushButton, QVBoxLayout, QWidget)

from aigc_desktop.core.catalog import DIFFUSION_KINDS, GENERATOR_KINDS, ModelInfo
from aigc_desktop.ui.viewmodels.models import ModelsViewModel

_KIND_ICON = {"diffusers": "◆", "checkpoint": "◆", "stylegan": "●", "vae_morph": "◐", "lora": "＋",
              "vae": "▣", "embedding": "✎", "unknown": "?"}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class ModelGallery(QWidget):
    add_folder_requested = Signal(str)
    convert_requested = Signal(str)  # path of a StyleGAN checkpoint to convert to safetensors + json

    def __init__(self, models: ModelsViewModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelGallery")
        self.models = models
        self.list = QListWidget()
        self.list.setObjectName("modelList")
        self.list.setAlternatingRowColors(True)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.family = QComboBox()
        for label, value in (("Auto-detect", None), ("SD 1.x", "sd1"), ("SD 2.x", "sd2"), ("SDXL", "sdxl")):
            self.family.addItem(label, value)
        self.family.setToolTip("Model family (override when detection fails)")
        self.family.currentIndexChanged.connect(self._on_family)
        self.vae = QComboBox()
        self.vae.setToolTip("A standalone VAE file that replaces the model's own")
        self.vae.currentIndexChanged.connect(self._on_vae)
        self.prediction = QComboBox()
        for label, value in (("Auto", None), ("epsilon", "epsilon"), ("v-prediction", "v_prediction")):
            self.prediction.addItem(label, value)
        self.prediction.setToolTip("Prediction type (SD 2.x files do not say; override when images look wrong)")
        self.prediction.currentIndexChanged.connect(self._on_prediction)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.models.refresh())
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add_folder)
        open_btn = QPushButton("Open…")
        open_btn.setToolTip("Open a model file")
        open_btn.clicked.connect(self._open_file)
        buttons = QHBoxLayout()
        buttons.addWidget(refresh)
        buttons.addWidget(add)
        buttons.addWidget(open_btn)
        family_row = QHBoxLayout()
        family_row.addWidget(QLabel("Family"))
        family_row.addWidget(self.family, 1)
        family_row.addWidget(QLabel("Prediction"))
        family_row.addWidget(self.prediction, 1)
        vae_row = QHBoxLayout()
        vae_row.addWidget(QLabel("VAE"))
        vae_row.addWidget(self.vae, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(family_row)
        layout.addLayout(vae_row)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)

        models.models_changed.connect(self.rebuild)
        models.selection_changed.connect(self._on_selection)
        models.scanning_changed.connect(lambda busy: self.detail.setText("Scanning…") if busy else None)
        self.rebuild()

    @Slot()
    def rebuild(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for info in self.models.models:
            icon = _KIND_ICON.get(info.kind, "?")
            item = QListWidgetItem(f"{icon}  {info.name}\n     {info.label} · {_size(info.size)}")
            item.setData(Qt.ItemDataRole.UserRole, info.path)
            item.setToolTip(info.path + (f"\n{info.note}" if info.note else ""))
            if info.kind not in GENERATOR_KINDS:
                item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        self.list.blockSignals(False)
        current_vae = self.models.vae_override
        self.vae.blockSignals(True)
        self.vae.clear()
        self.vae.addItem("Model's own", None)
        for info in self.models.models:
            if info.kind == "vae":
                self.vae.addItem(info.name, info.path)
        index = self.vae.findData(current_vae)
        self.vae.setCurrentIndex(max(0, index))
        self.vae.blockSignals(False)
        self.models.vae_override = self.vae.currentData()
        self._on_selection(self.models.selected)

    @Slot(object)
    def _on_selection(self, info: ModelInfo | None) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if info is not None and item.data(Qt.ItemDataRole.UserRole) == info.path:
                self.list.blockSignals(True)
                self.list.setCurrentItem(item)
                self.list.blockSignals(False)
        # Family, prediction type and VAE choices apply to diffusion models only.
        for combo in (self.family, self.prediction, self.vae):
            combo.setEnabled(info is None or info.kind in (*DIFFUSION_KINDS, "unknown"))
        if info is None:
            self.detail.setText("No model selected. Add a folder with models, or open a model file.")
        else:
            note = f"\n{info.note}" if info.note else ""
            self.detail.setText(f"{info.name}: {info.label}{note}")

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.models.select_path(current.data(Qt.ItemDataRole.UserRole))

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        info = item and next((m for m in self.models.models if m.path == item.data(Qt.ItemDataRole.UserRole)), None)
        if info is None or info.kind != "stylegan" or not info.path.endswith((".pkl", ".pt", ".pth")):
            return  # only NVIDIA pickles and rosinality checkpoints need converting
        menu = QMenu(self)
        menu.addAction("Convert to safetensors + JSON", lambda: self.convert_requested.emit(info.path))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def _on_family(self) -> None:
        self.models.family_override = self.family.currentData()

    def _on_vae(self) -> None:
        self.models.vae_override = self.vae.currentData()

    def _on_prediction(self) -> None:
        self.models.prediction_override = self.prediction.currentData()

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a models folder")
        if folder:
            self.add_folder_requested.emit(folder)

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", "",
                                              "Models (*.safetensors *.ckpt *.pt *.pth *.pkl);;All files (*)")
        if path:
            self.models.add_model_path(path)
