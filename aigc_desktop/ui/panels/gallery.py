"""The model gallery: discovered models with their detected kind; pick one to generate with."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QVBoxLayout, QWidget)

from aigc_desktop.core.catalog import DIFFUSION_KINDS, GENERATOR_KINDS, ModelInfo
from aigc_desktop.ui.viewmodels.models import ModelsViewModel

_KIND_ICON = {"diffusers": "◆", "checkpoint": "◆", "stylegan": "●", "vae_morph": "◐", "lora": "＋",
              "vae": "▣", "embedding": "✎", "unknown": "?"}


CARD_ICON = 48
# Filter choices: label -> the catalog kinds it shows (None: all).
KIND_FILTERS = (("All kinds", None), ("Diffusion", tuple(DIFFUSION_KINDS)), ("StyleGAN", ("stylegan",)),
                ("Morph VAE", ("vae_morph",)), ("LoRA", ("lora",)), ("VAE", ("vae",)),
                ("Embedding", ("embedding",)))


def _glyph_icon(kind: str) -> QIcon:
    """A card's picture before the model has made an image: its kind's glyph on a tile."""
    pm = QPixmap(CARD_ICON, CARD_ICON)
    pm.fill(QColor(60, 64, 74))
    p = QPainter(pm)
    font = QFont()
    font.setPixelSize(26)
    p.setFont(font)
    p.setPen(QColor(200, 205, 215))
    p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, _KIND_ICON.get(kind, "?"))
    p.end()
    return QIcon(pm)


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
        self.list.setIconSize(QSize(CARD_ICON, CARD_ICON))
        self.list.setSpacing(2)
        self.list.setToolTip("Each model with its kind, family, size and the last image made with it")
        self.kind_filter = QComboBox()
        self.kind_filter.setObjectName("kindFilter")
        for label, kinds in KIND_FILTERS:
            self.kind_filter.addItem(label, kinds)
        self.kind_filter.setToolTip("Show models of one kind")
        self.kind_filter.currentIndexChanged.connect(self.apply_filter)
        self.search = QLineEdit()
        self.search.setObjectName("modelSearch")
        self.search.setPlaceholderText("Search models…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Show models whose name contains this text")
        self.search.textChanged.connect(self.apply_filter)
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
        refresh.setToolTip("Scan the model folders again")
        refresh.clicked.connect(lambda: self.models.refresh())
        add = QPushButton("Add folder…")
        add.setToolTip("Add a folder to scan for models")
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
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.search, 1)
        filter_row.addWidget(self.kind_filter)
        layout.addLayout(filter_row)
        layout.addWidget(self.list, 1)
        layout.addLayout(family_row)
        layout.addLayout(vae_row)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)

        models.models_changed.connect(self.rebuild)
        models.last_image_changed.connect(self.update_card)
        models.selection_changed.connect(self._on_selection)
        models.scanning_changed.connect(lambda busy: self.detail.setText("Scanning…") if busy else None)
        self.rebuild()

    @Slot()
    def rebuild(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for info in self.models.models:
            item = QListWidgetItem(self._card_icon(info), f"{info.name}\n{info.label} · {_size(info.size)}")
            item.setData(Qt.ItemDataRole.UserRole, info.path)
            item.setToolTip(info.path + (f"\n{info.note}" if info.note else ""))
            if info.kind not in GENERATOR_KINDS:
                item.setForeground(Qt.GlobalColor.gray)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.apply_filter()
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

    def _card_icon(self, info: ModelInfo) -> QIcon:
        image = self.models.last_images.get(info.path)
        if image is None:
            return _glyph_icon(info.kind)
        from aigc_desktop.ui.qt_image import pil_to_pixmap

        thumb = image.copy()
        thumb.thumbnail((CARD_ICON, CARD_ICON))
        return QIcon(pil_to_pixmap(thumb))

    @Slot(str)
    def update_card(self, path: str) -> None:
        info = next((m for m in self.models.models if m.path == path), None)
        for i in range(self.list.count()):
            item = self.list.item(i)
            if info is not None and item.data(Qt.ItemDataRole.UserRole) == path:
                item.setIcon(self._card_icon(info))

    @Slot()
    def apply_filter(self) -> None:
        kinds = self.kind_filter.currentData()
        text = self.search.text().strip().lower()
        by_path = {m.path: m for m in self.models.models}
        for i in range(self.list.count()):
            item = self.list.item(i)
            info = by_path.get(item.data(Qt.ItemDataRole.UserRole))
            shown = info is not None and (kinds is None or info.kind in kinds) and \
                (not text or text in info.name.lower())
            item.setHidden(not shown)

    def visible_names(self) -> list[str]:
        return [self.list.item(i).text().split("\n")[0] for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

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
