"""More generation options under the prompt: mode (img2img / inpaint / outpaint) with its inputs,
variation seed, CLIP skip. Shown collapsed; the values go into GenerationParams."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLineEdit, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from aigc_desktop.core.params import MAX_SEED, GenerationParams

MODES = (("Text to image", "txt2img"), ("Image to image", "img2img"), ("Inpaint", "inpaint"),
         ("Outpaint", "outpaint"))
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"
# GenerationParams fields this widget shows, so an image's metadata may restore them.
FIELDS = frozenset({"mode", "strength", "mask_blur", "inpaint_only_masked", "outpaint", "variation_seed",
                    "variation_strength", "clip_skip"})


class _FileRow(QWidget):
    """A path box with a browse button; may also hold an in-memory image (PNG bytes) from the canvas."""

    changed = Signal()

    def __init__(self, placeholder: str, parent=None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self._typed)
        browse = QToolButton(text="…")
        browse.setToolTip("Choose a file")
        browse.clicked.connect(self._browse)
        self.edit.setToolTip("Leave empty to use the canvas under the frame; or choose a file (as the CLI does)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        self._bytes: bytes | None = None

    def _typed(self) -> None:
        if self._bytes is not None and self.edit.text() != "(image from the canvas)":
            self._bytes = None
        self.changed.emit()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose an image", "", IMAGE_FILTER)
        if path:
            self.set_path(path)

    def set_path(self, path: str) -> None:
        self._bytes = None
        self.edit.setText(path)

    def set_image(self, image) -> None:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        self._bytes = buf.getvalue()
        self.edit.setText("(image from the canvas)")

    def value(self) -> str | bytes | None:
        if self._bytes is not None:
            return self._bytes
        text = self.edit.text().strip()
        return str(Path(text).expanduser()) if text else None


class ImageOptions(QGroupBox):
    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("More options", parent)
        self.setObjectName("ImageOptions")
        self.setCheckable(True)
        self.setChecked(False)
        self.body = QWidget()
        self.toggled.connect(self.body.setVisible)
        self.body.setVisible(False)

        self.mode = QComboBox()
        for label, value in MODES:
            self.mode.addItem(label, value)
        self.mode.currentIndexChanged.connect(self._update_visibility)
        self.mode.setToolTip("Text to image fills the frame; Image to image and Outpaint take the visible "
                             "canvas under the frame (outpaint fills its transparent parts); Inpaint repaints "
                             "where the mask is painted")
        self.init_image = _FileRow("the canvas under the frame (or a file)")
        self.mask = _FileRow("the painted mask (or a file, white = repaint)")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(0.75)
        self.strength.setToolTip("Denoising strength: 0 keeps the image, 1 replaces it entirely")
        self.mask_blur = QSpinBox()
        self.mask_blur.setRange(0, 256)
        self.mask_blur.setValue(4)
        self.mask_blur.setToolTip("Soften the mask's edge by this many pixels so the repaint blends in")
        self.only_masked = QCheckBox("Only masked region")
        self.only_masked.setToolTip("Repaint the masked area at full resolution and paste it back")
        self.margins = [QSpinBox() for _ in range(4)]
        margin_row = QHBoxLayout()
        margin_row.setContentsMargins(0, 0, 0, 0)
        for box, tip in zip(self.margins, ("left", "top", "right", "bottom")):
            box.setRange(0, 2048)
            box.setSingleStep(64)
            box.setToolTip(f"pixels to add on the {tip}")
            margin_row.addWidget(box)
        self.margin_widget = QWidget()
        self.margin_widget.setLayout(margin_row)
        self.variation_seed = QDoubleSpinBox()
        self.variation_seed.setDecimals(0)
        self.variation_seed.setRange(-2, MAX_SEED)
        self.variation_seed.setSpecialValueText("off")
        self.variation_seed.setValue(-2)
        self.variation_seed.setToolTip("off, -1 (random) or a seed whose noise is blended in")
        self.variation_strength = QDoubleSpinBox()
        self.variation_strength.setRange(0.0, 1.0)
        self.variation_strength.setSingleStep(0.05)
        self.variation_strength.setToolTip("How far towards the variation seed's noise (0 = the seed's own image)")
        self.clip_skip = QSpinBox()
        self.clip_skip.setRange(1, 12)
        self.clip_skip.setToolTip("Use the text encoder's n-th layer from the end (2 for many anime models)")
        self.setToolTip("Image-to-image, inpainting, outpainting, variation seed, CLIP skip")

        self.form = QFormLayout(self.body)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.addRow("Mode", self.mode)
        self.form.addRow("Image", self.init_image)
        self.form.addRow("Mask", self.mask)
        self.form.addRow("Strength", self.strength)
        self.form.addRow("Mask blur", self.mask_blur)
        self.form.addRow("", self.only_masked)
        self.form.addRow("Extend L T R B", self.margin_widget)
        self.form.addRow("Variation seed", self.variation_seed)
        self.form.addRow("Variation strength", self.variation_strength)
        self.form.addRow("CLIP skip", self.clip_skip)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(self.body)
        self._update_visibility()
        for sig in (self.mode.currentIndexChanged, self.init_image.changed, self.mask.changed,
                    self.strength.valueChanged, self.mask_blur.valueChanged, self.only_masked.toggled,
                    self.variation_seed.valueChanged, self.variation_strength.valueChanged,
                    self.clip_skip.valueChanged, self.toggled):
            sig.connect(self.changed)
        for box in self.margins:
            box.valueChanged.connect(self.changed)

    def _update_visibility(self) -> None:
        mode = self.mode.currentData()
        show = {self.init_image: mode != "txt2img", self.strength: mode in ("img2img", "inpaint"),
                self.mask: mode == "inpaint", self.mask_blur: mode in ("inpaint", "outpaint"),
                self.only_masked: mode == "inpaint", self.margin_widget: mode == "outpaint"}
        for widget, visible in show.items():
            self.form.setRowVisible(widget, visible)

    def use_image(self, image=None, path: str | None = None, mode: str = "img2img") -> None:
        """Take a canvas / history image as the init image (a saved file's path, else the pixels)."""
        if path:
            self.init_image.set_path(path)
        elif image is not None:
            self.init_image.set_image(image)
        self.mode.setCurrentIndex(self.mode.findData(mode))
        self.setChecked(True)

    def apply(self, p: GenerationParams) -> GenerationParams:
        """`p` with this widget's values. Collapsed, it still applies them: collapsing only hides."""
        variation = int(self.variation_seed.value())
        return replace(
            p, mode=self.mode.currentData(), init_image=self.init_image.value(), mask=self.mask.value(),
            strength=self.strength.value(), mask_blur=self.mask_blur.value(),
            inpaint_only_masked=self.only_masked.isChecked(),
            outpaint=tuple(b.value() for b in self.margins),
            variation_seed=None if variation < -1 else variation,
            variation_strength=self.variation_strength.value() if variation >= -1 else 0.0,
            clip_skip=self.clip_skip.value())

    def set_from(self, p: GenerationParams) -> None:
        self.mode.setCurrentIndex(max(0, self.mode.findData(p.mode)))
        self.strength.setValue(p.strength)
        self.mask_blur.setValue(p.mask_blur)
        self.only_masked.setChecked(p.inpaint_only_masked)
        for box, value in zip(self.margins, p.outpaint):
            box.setValue(value)
        self.variation_seed.setValue(-2 if p.variation_seed is None else p.variation_seed)
        self.variation_strength.setValue(p.variation_strength)
        self.clip_skip.setValue(p.clip_skip)
        if p.mode != "txt2img" or p.variation_seed is not None or p.clip_skip > 1:
            self.setChecked(True)
