"""The prompt panel: prompt, negative prompt, seed, steps, CFG, size, scheduler, batch, Generate."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from aigc_desktop.core.params import DEFAULT_SCHEDULER, MAX_SEED, SCHEDULERS, GenerationParams


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

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("PromptPanel")
        self.last_seed: int | None = None

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
        self.cfg = QDoubleSpinBox()
        self.cfg.setRange(0.0, 100.0)
        self.cfg.setSingleStep(0.5)
        self.cfg.setValue(7.0)
        self.width_box = QSpinBox()
        self.height_box = QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(64, 4096)
            box.setSingleStep(64)
            box.setValue(512)
        size_row = QHBoxLayout()
        size_row.setContentsMargins(0, 0, 0, 0)
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        self.scheduler = QComboBox()
        for name, shown in SCHEDULERS.items():
            self.scheduler.addItem(shown, name)
        self.scheduler.setCurrentIndex(list(SCHEDULERS).index(DEFAULT_SCHEDULER))
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 64)
        self.batch_count = QSpinBox()
        self.batch_count.setRange(1, 1000)
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

        self.generate = QPushButton("Generate")
        self.generate.setObjectName("generate")
        self.generate.setDefault(True)
        self.generate.setMinimumHeight(36)
        self.generate.clicked.connect(self.generate_requested)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setObjectName("promptMessage")

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Prompt"))
        layout.addWidget(self.prompt, 2)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative, 1)
        layout.addLayout(form)
        layout.addWidget(self.generate)
        layout.addWidget(self.message)
        layout.addStretch(0)

    def _reuse_seed(self) -> None:
        if self.last_seed is not None:
            self.seed.setValue(self.last_seed)

    def params(self) -> GenerationParams:
        """The parameters as shown, seed not yet resolved (-1 stays random)."""
        return GenerationParams(
            prompt=self.prompt.toPlainText(), negative_prompt=self.negative.toPlainText(),
            seed=self.seed.seed(), steps=self.steps.value(), cfg_scale=self.cfg.value(),
            width=self.width_box.value(), height=self.height_box.value(),
            scheduler=self.scheduler.currentData(), batch_size=self.batch_size.value(),
            batch_count=self.batch_count.value())

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

    def set_default_size(self, size: int) -> None:
        self.width_box.setValue(size)
        self.height_box.setValue(size)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #e66;" if error else "")
