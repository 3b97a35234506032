"""The prompt panel: prompt, negative prompt, seed, steps, CFG, size, scheduler, batch, Generate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from aigc_desktop.core.params import DEFAULT_SCHEDULER, MAX_SEED, SCHEDULERS, GenerationParams
from aigc_desktop.core.restore import PANEL_FIELDS
from aigc_desktop.ui.panels.image_options import FIELDS as OPTION_FIELDS
from aigc_desktop.ui.panels.image_options import ImageOptions

# Files a drop or "Load parameters from image…" reads generation parameters from.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class SeedBox(QDoubleSpinBox):
    """A whole-number box for seeds up to 2**32-1 (QSpinBox stops at 2**31-1); -1 shows as 'random'."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setDecimals(0)
        self.setRange(-1, MAX_SEED)
        self.setSingleStep(1)
        self.setSpecialValueText("random")
        self.setValue(-1)

    def seed(self) -> int:
        return int(self.value())


class PromptPanel(QWidget):
    generate_requested = Signal()
    changed = Signal()  # any value changed (the GenerationViewModel takes params() then)
    message_shown = Signal(str, bool)  # text, is_error: for the window's one message area
    parameters_loaded = Signal(object)  # core.metadata.ImageMetadata of an image dropped / loaded
    # The GenerationParams fields this panel shows (and so can restore from an image's metadata).
    restore_fields = PANEL_FIELDS | OPTION_FIELDS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("PromptPanel")
        self.last_seed: int | None = None
        self.last_message: tuple[str, bool, str] = ("", False, "")

        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Describe the image…")
        self.prompt.setObjectName("prompt")
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("Negative prompt (what to avoid)")
        self.negative.setObjectName("negative")
        self.negative.setMaximumHeight(70)
        self.prompt.setMinimumHeight(90)

        self.seed = SeedBox()
        self.random_seed = QToolButton(text="Random")
        self.random_seed.setToolTip("Random seed (-1)")
        self.random_seed.clicked.connect(lambda: self.seed.setValue(-1))
        self.reuse_seed = QToolButton(text="Reuse")
        self.reuse_seed.setToolTip("Reuse the last seed")
        self.reuse_seed.clicked.connect(self._reuse_seed)
        seed_row = QHBoxLayout()
        seed_row.setContentsMargins(0, 0, 0, 0)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.reuse_seed)

        self.steps = QSpinBox()
        self.steps.setRange(1, 1000)
        self.steps.setValue(20)
        self.steps.setToolTip("Denoising steps: more is slower and usually cleaner (20-30 is typical)")
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(0.0, 100.0)
        self.cfg.setSingleStep(0.5)
        self.cfg.setValue(7.0)
        self.cfg.setToolTip("CFG scale: how strictly to follow the prompt (5-9 is typical; 1 ignores the "
                            "negative prompt)")
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for box, what in ((self.width_box, "Width"), (self.height_box, "Height")):
            box.setRange(8, 8192)
            box.setSingleStep(64)
            box.setValue(512)
            box.setToolTip(f"{what} of the image in pixels = the generation frame on the canvas "
                           "(multiples of 8; drag the frame's edges to change it too)")
        size_row = QHBoxLayout()
        size_row.setContentsMargins(0, 0, 0, 0)
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        self.scheduler = QComboBox()
        for name, shown in SCHEDULERS.items():
            self.scheduler.addItem(shown, name)
        self.scheduler.setCurrentIndex(list(SCHEDULERS).index(DEFAULT_SCHEDULER))
        self.scheduler.setToolTip("Sampler (A1111's names): Euler a and DPM++ 2M Karras are good defaults")
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 64)
        self.batch_size.setToolTip("Images made together in one run (uses more memory)")
        self.batch_count = QSpinBox()
        self.batch_count.setRange(1, 1000)
        self.batch_count.setToolTip("Runs one after another; each run's images arrive in the staging strip")
        self.seed.setToolTip("Seed of the first image (image i uses seed + i); 'random' picks one")
        self.prompt.setToolTip("What to make; A1111 syntax works: (word:1.3), [word], BREAK, <lora:name:0.8>")
        self.negative.setToolTip("What to avoid")
        batch_row = QHBoxLayout()
        batch_row.setContentsMargins(0, 0, 0, 0)
        batch_row.addWidget(self.batch_size)
        batch_row.addWidget(QLabel("× batches"))
        batch_row.addWidget(self.batch_count)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Seed", seed_row)
        form.addRow("Steps", self.steps)
        form.addRow("CFG scale", self.cfg)
        form.addRow("Size", size_row)
        form.addRow("Sampler", self.scheduler)
        form.addRow("Batch", batch_row)

        self.options = ImageOptions()

        self.generate = QPushButton("Generate")
        self.generate.setObjectName("generate")
        self.generate.setDefault(True)
        self.generate.setMinimumHeight(36)
        self.generate.setToolTip("Generate into the frame on the canvas (Ctrl+Enter)")
        self.generate.clicked.connect(self.generate_requested)

        self.load_image_params = QToolButton(text="Load from image…")
        self.load_image_params.setObjectName("loadImageParams")
        self.load_image_params.setToolTip("Load parameters from an image made by this app, A1111, ComfyUI, "
                                          "InvokeAI or NovelAI (or drop the image on this panel)")
        self.load_image_params.clicked.connect(self._choose_image)
        prompt_row = QHBoxLayout()
        prompt_row.setContentsMargins(0, 0, 0, 0)
        prompt_row.addWidget(QLabel("Prompt"))
        prompt_row.addStretch(1)
        prompt_row.addWidget(self.load_image_params)
        # Image drops anywhere on the panel, the text boxes included (they would paste the file's URL).
        self.setAcceptDrops(True)
        for box in (self.prompt, self.negative):
            box.viewport().installEventFilter(self)

        layout = QVBoxLayout(self)
        layout.addLayout(prompt_row)
        layout.addWidget(self.prompt, 2)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative, 1)
        layout.addLayout(form)
        layout.addWidget(self.options)
        layout.addWidget(self.generate)
        layout.addStretch(0)
        # Put Generate above More options, so it stays in sight when the options are open.
        layout.removeWidget(self.generate)
        layout.insertWidget(layout.indexOf(self.options), self.generate)
        self._watch_changes()

    def _watch_changes(self) -> None:
        for box in (self.prompt, self.negative):
            box.textChanged.connect(self.changed)
        for box in (self.seed, self.steps, self.cfg, self.width_box, self.height_box, self.batch_size,
                    self.batch_count):
            box.valueChanged.connect(self.changed)
        self.scheduler.currentIndexChanged.connect(self.changed)
        self.options.changed.connect(self.changed)

    def _reuse_seed(self) -> None:
        if self.last_seed is not None:
            self.seed.setValue(self.last_seed)

    def params(self) -> GenerationParams:
        """The parameters as shown, seed not yet resolved (-1 stays random)."""
        return self.options.apply(GenerationParams(
            prompt=self.prompt.toPlainText(), negative_prompt=self.negative.toPlainText(),
            seed=self.seed.seed(), steps=self.steps.value(), cfg_scale=self.cfg.value(),
            width=self.width_box.value(), height=self.height_box.value(),
            scheduler=self.scheduler.currentData(), batch_size=self.batch_size.value(),
            batch_count=self.batch_count.value()))

    def set_params(self, p: GenerationParams) -> None:
        self.prompt.setPlainText(p.prompt)
        self.negative.setPlainText(p.negative_prompt)
        self.seed.setValue(p.seed)
        self.steps.setValue(p.steps)
        self.cfg.setValue(p.cfg_scale)
        self.width_box.setValue(p.width)
        self.height_box.setValue(p.height)
        idx = self.scheduler.findData(p.scheduler)
        if idx >= 0:
            self.scheduler.setCurrentIndex(idx)
        self.batch_size.setValue(p.batch_size)
        self.batch_count.setValue(p.batch_count)
        self.options.set_from(p)

    def set_default_size(self, size: int) -> None:
        self.width_box.setValue(size)
        self.height_box.setValue(size)

    def show_message(self, text: str, error: bool = False, details: str = "") -> None:
        """Messages go to the window's one message area (over the canvas), never under a button."""
        self.last_message = (text, error, details)
        self.message_shown.emit(text, error)

    # -- parameters from an image (restore logic lives in core.restore)
    def load_parameters_from(self, path: str):
        """Restore what the image's metadata allows; say in one line what could not be restored."""
        from aigc_desktop.core.errors import UserError
        from aigc_desktop.core.metadata import describe
        from aigc_desktop.core.restore import restore_from_file

        try:
            result, meta = restore_from_file(path, self.params(), self.restore_fields)
        except UserError as exc:
            self.show_message(str(exc), error=True)
            return None
        params = result.params
        # The image's own mode (txt2img unless its metadata says otherwise); the files chosen for an
        # earlier image-to-image or inpaint never stay behind.
        mode = meta.mode if meta.mode in ("txt2img", "img2img", "inpaint", "outpaint") else "txt2img"
        params = replace(params, mode=mode, init_image=None, mask=None)
        self.options.init_image.set_path("")
        self.options.mask.set_path("")
        self.set_params(params)
        self.show_message(result.message, error=not meta.found, details="\n".join(describe(meta)))
        if meta.found:
            self.parameters_loaded.emit(meta)
        return result

    def _choose_image(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Load parameters from image", "",
                                              "Images (*.png *.jpg *.jpeg *.webp);;All files (*)")
        if path:
            self.load_parameters_from(path)

    @staticmethod
    def _dropped_image(event) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES:
                return url.toLocalFile()
        return None

    def _handle_drag(self, event) -> bool:
        """Take any file drop: an image restores its parameters; another file is refused with a message
        (a text box would paste its file:// URL into the prompt). True when the event was a file drop."""
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return False
        path = self._dropped_image(event)
        event.acceptProposedAction()
        if event.type() == QEvent.Type.Drop:
            if path is not None:
                self.load_parameters_from(path)
            else:
                names = ", ".join(Path(u.toLocalFile() or u.toString()).name for u in mime.urls()[:3])
                self.show_message(f"Not an image (PNG, JPEG or WebP): {names}", error=True)
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._handle_drag(event):
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._handle_drag(event):
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._handle_drag(event):
            super().dropEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            if self._handle_drag(event):
                return True
        return super().eventFilter(watched, event)
