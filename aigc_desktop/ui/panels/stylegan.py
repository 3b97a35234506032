"""The StyleGAN panel: seed, truncation psi (+ cutoff), style mixing (seed + layer range), noise mode, class,
StyleGAN3 translate/rotate; the image follows the controls live. Generate / seed grid / walk export send
ordinary jobs to the main queue (canvas, history, saved with metadata)."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import MAX_SEED, random_seed
from aigc_desktop.ui.panels.prompt import SeedBox
from aigc_desktop.ui.viewmodels.stylegan import StyleGANParams, StyleGANViewModel

PSI_STEPS = 100  # slider ticks per unit of psi
MIX_CHOICES = (("Coarse (pose, shape)", "coarse"), ("Middle (features)", "middle"), ("Fine (colour, texture)", "fine"),
               ("All layers", "all"), ("Layers A-B…", "custom"))


def _seed_box() -> SeedBox:
    box = SeedBox()
    box.setRange(0, MAX_SEED)
    box.setSpecialValueText("")
    box.setValue(0)
    return box


class StyleGANPanel(QWidget):
    generate_requested = Signal()
    job_requested = Signal(object)  # a ready job spec (seed grid, walk) for the main queue

    def __init__(self, view_model: StyleGANViewModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("StyleGANPanel")
        self.vm = view_model
        self._updating = False

        self.seed = _seed_box()
        prev_seed, next_seed = QToolButton(text="−"), QToolButton(text="+")
        prev_seed.clicked.connect(lambda: self.seed.setValue(max(0, self.seed.value() - 1)))
        next_seed.clicked.connect(lambda: self.seed.setValue(min(MAX_SEED, self.seed.value() + 1)))
        prev_seed.setToolTip("Previous seed")
        next_seed.setToolTip("Next seed")
        rnd = QToolButton(text="Random")
        rnd.setToolTip("A random seed")
        rnd.clicked.connect(lambda: self.seed.setValue(random_seed()))
        from_image = QToolButton(text="From image…")
        from_image.setToolTip("Take the settings of a PNG made by the StyleGAN engine (its metadata)")
        from_image.clicked.connect(self._choose_image)
        seed_row = self._row(self.seed, prev_seed, next_seed, rnd, from_image)

        self.psi_slider = QSlider(Qt.Orientation.Horizontal)
        self.psi_slider.setRange(-1 * PSI_STEPS, 2 * PSI_STEPS)
        self.psi = QDoubleSpinBox()
        self.psi.setRange(-1.0, 2.0)
        self.psi.setSingleStep(0.05)
        self.psi.setDecimals(2)
        self.psi_slider.valueChanged.connect(lambda v: self.psi.setValue(v / PSI_STEPS))
        self.psi.valueChanged.connect(lambda v: self.psi_slider.setValue(round(v * PSI_STEPS)))
        self.cutoff = QSpinBox()
        self.cutoff.setRange(0, 64)
        self.cutoff.setSpecialValueText("all layers")
        self.cutoff.setToolTip("Truncate only the first N layers (coarse styles); 'all layers' truncates all")
        psi_row = self._row(self.psi_slider, self.psi)

        self.noise = QComboBox()
        for label, value in (("Const (as generate.py)", "const"), ("Random (from the seed)", "random"),
                             ("None", "none")):
            self.noise.addItem(label, value)
        self.class_idx = QSpinBox()
        self.class_idx.setRange(-1, 100000)
        self.class_idx.setSpecialValueText("from seed")
        self.class_idx.setValue(-1)
        self.class_idx.setToolTip("Class of a conditional model; 'from seed' draws it as NVIDIA's visualizer does")

        self.mix = QCheckBox("Style mixing")
        self.mix_seed = _seed_box()
        self.mix_seed.setValue(1)
        self.mix_layers = QComboBox()
        for label, value in MIX_CHOICES:
            self.mix_layers.addItem(label, value)
        self.mix_range = QLineEdit("0-3")
        self.mix_range.setPlaceholderText("A-B")
        self.mix_range.setMaximumWidth(70)
        mix_row = self._row(self.mix, self.mix_seed)
        layer_row = self._row(self.mix_layers, self.mix_range)

        self.translate_x, self.translate_y = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.translate_x, self.translate_y):
            box.setRange(-2.0, 2.0)
            box.setSingleStep(0.05)
            box.setDecimals(3)
        self.rotate = QSlider(Qt.Orientation.Horizontal)
        self.rotate.setRange(-180, 180)
        self.rotate_label = QLabel("0°")
        self.rotate_label.setMinimumWidth(36)
        sg3_row = self._row(QLabel("x"), self.translate_x, QLabel("y"), self.translate_y)
        rotate_row = self._row(self.rotate, self.rotate_label)
        self.sg3_controls = (self.translate_x, self.translate_y, self.rotate)

        self.live = QCheckBox("Live: the image follows the controls")
        self.live.setChecked(True)
        self.generate = QPushButton("Generate")
        self.generate.setObjectName("styleganGenerate")
        self.generate.setMinimumHeight(36)
        self.grid_count = QSpinBox()
        self.grid_count.setRange(2, 256)
        self.grid_count.setValue(9)
        grid = QPushButton("Seed grid")
        grid.setToolTip("Seeds from the current one on, each as its own image")
        grid_row = self._row(grid, self.grid_count, QLabel("seeds"))
        self.walk_keys = QLineEdit()
        self.walk_keys.setPlaceholderText("keyframe seeds, e.g. 1, 7, 42")
        self.walk_frames = QSpinBox()
        self.walk_frames.setRange(1, 1000)
        self.walk_frames.setValue(30)
        self.walk_space = QComboBox()
        self.walk_space.addItem("lerp in W", "w")
        self.walk_space.addItem("slerp in Z", "z")
        self.walk_loop = QCheckBox("loop")
        walk = QPushButton("Export walk…")
        walk.setToolTip("Render a walk between the keyframe seeds to GIF, WebP, MP4 or a folder of PNG frames")
        walk_row = self._row(self.walk_frames, QLabel("frames"), self.walk_space, self.walk_loop)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setObjectName("styleganMessage")

        for widget, tip in ((self.seed, "Seed: NVIDIA's generate.py draws z from it, so shared seeds match"),
                            (self.psi_slider, "Truncation ψ: lower is more typical, higher more varied"),
                            (self.psi, "Truncation ψ: lower is more typical, higher more varied"),
                            (self.noise, "Per-pixel noise: const (the model's), random (from the seed) or none"),
                            (self.mix, "Take some layers' styles from a second seed"),
                            (self.mix_seed, "The second seed whose styles are mixed in"),
                            (self.mix_layers, "Which layers come from the second seed: coarse (pose, shape), "
                                              "middle (features), fine (colours)"),
                            (self.mix_range, "Layers A-B (w indices, inclusive) for a custom mix"),
                            (self.live, "Re-render as the controls move (its own worker; never saved)"),
                            (self.generate, "Make the image in the frame (saved with its metadata)"),
                            (self.grid_count, "How many seeds the grid shows"),
                            (self.walk_keys, "Seeds the walk passes through, in order"),
                            (self.walk_frames, "Frames between two keyframes"),
                            (self.walk_space, "Interpolate in W (lerp, smooth) or Z (slerp)"),
                            (self.walk_loop, "Return to the first keyframe at the end")):
            if not widget.toolTip():
                widget.setToolTip(tip)
        grid.setToolTip("Seeds from the current one on, laid out in rows and columns in one image "
                        "(each seed is also staged on its own)")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Seed", seed_row)
        form.addRow("Truncation ψ", psi_row)
        form.addRow("ψ cutoff", self.cutoff)
        form.addRow("Noise", self.noise)
        form.addRow("Class", self.class_idx)
        form.addRow(mix_row)
        form.addRow("Mix layers", layer_row)
        form.addRow("Translate (SG3)", sg3_row)
        form.addRow("Rotate (SG3)", rotate_row)
        walk_form = QFormLayout()
        walk_form.addRow("Keyframes", self.walk_keys)
        walk_form.addRow("Per step", walk_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.live)
        layout.addWidget(self.generate)
        layout.addLayout(grid_row)
        layout.addWidget(QLabel("Latent walk"))
        layout.addLayout(walk_form)
        layout.addWidget(walk)
        layout.addWidget(self.message)
        layout.addStretch(1)

        self.set_params(self.vm.params)
        for signal in (self.seed.valueChanged, self.psi.valueChanged, self.cutoff.valueChanged,
                       self.noise.currentIndexChanged, self.class_idx.valueChanged, self.mix.toggled,
                       self.mix_seed.valueChanged, self.mix_layers.currentIndexChanged, self.mix_range.editingFinished,
                       self.translate_x.valueChanged, self.translate_y.valueChanged, self.rotate.valueChanged):
            signal.connect(self._on_control)
        self.live.toggled.connect(self.vm.set_live)
        self.generate.clicked.connect(self.generate_requested)
        grid.clicked.connect(self.request_grid)
        walk.clicked.connect(self._choose_walk_file)
        self.vm.live_message.connect(self.show_message)
        self.vm.params_changed.connect(self.set_params)
        self.vm.family_changed.connect(self._on_family)
        self._on_family(self.vm.family)

    def _on_family(self, family: str | None) -> None:
        """Translate and rotate exist in StyleGAN3 only: off (and saying why) for a StyleGAN2 model."""
        sg2 = family == "stylegan2"
        for w in self.sg3_controls:
            w.setEnabled(not sg2)
        tips = {self.translate_x: "Horizontal shift of StyleGAN3's input grid",
                self.translate_y: "Vertical shift of StyleGAN3's input grid",
                self.rotate: "Rotation of StyleGAN3's input grid in degrees"}
        for w, tip in tips.items():
            w.setToolTip("StyleGAN3 only: this model is StyleGAN2" if sg2 else tip)

    @staticmethod
    def _row(*widgets) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            row.addWidget(w, 1 if isinstance(w, (QSlider, QComboBox, QLineEdit, SeedBox)) else 0)
        return row

    # -- widgets <-> params
    def params(self) -> StyleGANParams:
        layers = self.mix_layers.currentData()
        if layers == "custom":
            layers = self.mix_range.text().strip() or "0-3"
        return StyleGANParams(
            seed=int(self.seed.value()), truncation_psi=round(self.psi.value(), 4),
            truncation_cutoff=self.cutoff.value() or None, noise_mode=self.noise.currentData(),
            class_idx=None if self.class_idx.value() < 0 else self.class_idx.value(),
            mix_enabled=self.mix.isChecked(), mix_seed=int(self.mix_seed.value()), mix_layers=layers,
            translate=(self.translate_x.value(), self.translate_y.value()), rotate=float(self.rotate.value()))

    @Slot(object)
    def set_params(self, p: StyleGANParams) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self.seed.setValue(p.seed)
            self.psi.setValue(p.truncation_psi)
            self.psi_slider.setValue(round(p.truncation_psi * PSI_STEPS))
            self.cutoff.setValue(p.truncation_cutoff or 0)
            self.noise.setCurrentIndex(max(0, self.noise.findData(p.noise_mode)))
            self.class_idx.setValue(-1 if p.class_idx is None else p.class_idx)
            self.mix.setChecked(p.mix_enabled)
            self.mix_seed.setValue(p.mix_seed)
            preset = self.mix_layers.findData(p.mix_layers)
            if preset < 0:
                self.mix_range.setText(p.mix_layers)
                preset = self.mix_layers.findData("custom")
            self.mix_layers.setCurrentIndex(preset)
            self.mix_range.setEnabled(self.mix_layers.currentData() == "custom")
            self.translate_x.setValue(p.translate[0])
            self.translate_y.setValue(p.translate[1])
            self.rotate.setValue(round(p.rotate))
            self.rotate_label.setText(f"{round(p.rotate)}°")
        finally:
            self._updating = False

    def _on_control(self, *_args) -> None:
        if self._updating:
            return
        self.mix_range.setEnabled(self.mix_layers.currentData() == "custom")
        self.rotate_label.setText(f"{self.rotate.value()}°")
        layers = self.mix_range.text().strip()
        if self.mix_layers.currentData() == "custom" and not re.fullmatch(r"\d+(-\d+)?", layers):
            self.show_message("Mix layers: write A-B, e.g. 0-3", error=True)
            return
        self.show_message("")
        self._updating = True
        try:
            self.vm.set_params(self.params())
        finally:
            self._updating = False

    # -- actions
    @Slot()
    def request_grid(self) -> None:
        first = int(self.seed.value())
        seeds = tuple((first + i) % (MAX_SEED + 1) for i in range(self.grid_count.value()))
        try:
            self.job_requested.emit(self.vm.build_job(seeds=seeds))
        except UserError as exc:
            self.show_message(str(exc), error=True)

    def walk_keyframes(self) -> tuple[int, ...]:
        text = self.walk_keys.text().replace(";", ",")
        try:
            keys = tuple(int(t) for t in re.split(r"[,\s]+", text.strip()) if t)
        except ValueError:
            raise UserError("Keyframes: write seeds separated by commas, e.g. 1, 7, 42") from None
        if not keys:  # the current seed and the mixing seed make a natural two-key walk
            keys = (int(self.seed.value()), int(self.mix_seed.value()))
        return keys

    def request_walk(self, path: str) -> None:
        try:
            spec = self.vm.build_walk(self.walk_keyframes(), self.walk_frames.value(), path,
                                      space=self.walk_space.currentData(), loop=self.walk_loop.isChecked())
        except UserError as exc:
            self.show_message(str(exc), error=True)
            return
        self.job_requested.emit(spec)

    def _choose_walk_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export latent walk", "walk.mp4",
                                              "Video (*.mp4);;GIF (*.gif);;WebP (*.webp)")
        if path:
            self.request_walk(path)

    def load_from_image(self, path: str) -> None:
        from aigc_desktop.core.metadata import read_record

        try:
            record = read_record(path)
        except OSError as exc:
            self.show_message(f"Cannot read {path}: {exc}", error=True)
            return
        if not record or record.get("engine") != "stylegan":
            self.show_message("That image has no StyleGAN settings (it was not made by the StyleGAN engine)")
            return
        try:
            note = self.vm.apply_record(record)
        except (UserError, KeyError, TypeError, ValueError) as exc:
            self.show_message(f"The image's StyleGAN settings are unreadable: {exc}")
            return
        self.show_message(note, error=False)

    def _choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Settings from an image", "", "PNG images (*.png)")
        if path:
            self.load_from_image(path)

    @Slot(str)
    def show_message(self, text: str, error: bool = True) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #e66;" if (text and error) else "")
