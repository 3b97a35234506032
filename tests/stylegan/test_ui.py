"""The StyleGAN panel and its live view (pytest-qt, offscreen): coalescing, Generate, walks, conversion."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from aigc_desktop.core import jobs
from aigc_desktop.core.runner import EngineOptions, Runner
from aigc_desktop.core.settings import Settings


@pytest.fixture
def vm(qtbot, sg_files):
    from aigc_desktop.core.catalog import info_for
    from aigc_desktop.ui.viewmodels.stylegan import StyleGANViewModel

    model = StyleGANViewModel(EngineOptions(threads=1))
    model.set_live(False)
    model.set_model(info_for(sg_files["ours"]))
    yield model
    model.shutdown()


def render(spec) -> np.ndarray:
    runner = Runner(EngineOptions(threads=1))
    try:
        end = runner.run(jobs.StyleGANJob(**{**spec.__dict__, "live": False, "id": "check"}), lambda e: None,
                         lambda: False)
    finally:
        runner.close()
    return np.asarray(end.images[0])


def test_live_requests_coalesce_to_the_newest(qtbot, vm):
    shown = []
    vm.live_image.connect(shown.append)
    vm.set_live(True)  # the first request runs at once
    # A burst of slider moves while that render is in flight: each replaces the pending one.
    for i in range(1, 21):
        vm.update(truncation_psi=i / 20)
    assert len(vm.submitted) == 1
    qtbot.waitUntil(lambda: vm.idle, timeout=20000)
    assert [s.truncation_psi for s in vm.submitted] == [0.7, 1.0]  # the first, then only the newest
    assert all(s.live for s in vm.submitted)
    assert len(shown) == 2
    assert vm.last_live.truncation_psi == 1.0
    assert np.array_equal(np.asarray(shown[-1]), render(vm.last_live))


def test_live_errors_reach_the_panel_and_the_view_recovers(qtbot, vm):
    from aigc_desktop.ui.panels.stylegan import StyleGANPanel

    panel = StyleGANPanel(vm)
    qtbot.addWidget(panel)
    vm.set_live(True)
    qtbot.waitUntil(lambda: vm.idle, timeout=20000)
    panel.mix.setChecked(True)
    panel.mix_layers.setCurrentIndex(panel.mix_layers.findData("custom"))
    panel.mix_range.setText("0-99")
    panel.mix_range.editingFinished.emit()
    qtbot.waitUntil(lambda: vm.idle and "out of range" in panel.message.text(), timeout=20000)
    panel.mix_range.setText("1-2")
    panel.mix_range.editingFinished.emit()
    qtbot.waitUntil(lambda: vm.idle, timeout=20000)
    assert vm.params.mix_layers == "1-2" and panel.message.text() == ""


def test_panel_controls_drive_the_spec(qtbot, vm):
    from aigc_desktop.ui.panels.stylegan import StyleGANPanel

    panel = StyleGANPanel(vm)
    qtbot.addWidget(panel)
    panel.seed.setValue(1234)
    panel.psi_slider.setValue(45)
    panel.cutoff.setValue(4)
    panel.noise.setCurrentIndex(panel.noise.findData("random"))
    panel.class_idx.setValue(2)
    panel.mix.setChecked(True)
    panel.mix_seed.setValue(77)
    panel.mix_layers.setCurrentIndex(panel.mix_layers.findData("middle"))
    panel.rotate.setValue(30)
    spec = vm.build_job()
    assert (spec.seeds, spec.truncation_psi, spec.truncation_cutoff, spec.noise_mode) == ((1234,), 0.45, 4, "random")
    assert (spec.class_idx, spec.mix_seed, spec.mix_layers, spec.rotate) == (2, 77, "middle", 30.0)
    assert panel.psi.value() == pytest.approx(0.45)
    panel.mix.setChecked(False)
    assert vm.build_job().mix_seed is None
    grids = []
    panel.job_requested.connect(grids.append)
    panel.grid_count.setValue(4)
    panel.request_grid()
    assert grids[-1].seeds == (1234, 1235, 1236, 1237)
    panel.walk_keys.setText("5, 6; 7")
    panel.request_walk("/tmp/x.gif")
    assert isinstance(grids[-1], jobs.StyleGANWalkJob) and grids[-1].seeds == (5, 6, 7)
    panel.walk_keys.setText("5, x")
    panel.request_walk("/tmp/x.gif")
    assert "Keyframes" in panel.message.text()


@pytest.fixture
def window(qtbot, tmp_path, sg_files):
    from aigc_desktop.ui.main_window import MainWindow

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(sg_files["sg2-skip"], models / "faces.pkl")
    w = MainWindow(Settings({"models_dir": str(models), "threads": 1}))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.models.selected is not None, timeout=10000)
    yield w
    w.close()


def test_main_window_shows_the_panel_live_and_generates_into_history(qtbot, window):
    w = window
    assert w.models.selected.kind == "stylegan"
    assert w.stylegan_dock.isVisible()
    # The live view draws in the frame on the canvas, and never enters the history.
    qtbot.waitUntil(lambda: w.stylegan.idle and w.canvas.preview_item.isVisible(), timeout=20000)
    assert w.document.doc.history == []
    w.stylegan_panel.seed.setValue(99)
    w.stylegan_panel.psi.setValue(0.5)
    job_id = w.generate()
    assert job_id
    qtbot.waitUntil(lambda: len(w.document.staged) == 1, timeout=20000)
    record = w.document.staged[0].record
    assert (record["engine"], record["seed"], record["truncation_psi"]) == ("stylegan", 99, 0.5)
    assert len(record["model"]["sha256"]) == 64
    assert w.history_panel.list.count() == 1
    # A StyleGAN2 model: the StyleGAN3-only controls are off.
    assert w.stylegan.family == "stylegan2" and not w.stylegan_panel.translate_x.isEnabled()
    assert not w.stylegan_panel.rotate.isEnabled() and "StyleGAN3 only" in w.stylegan_panel.rotate.toolTip()


def test_seed_grid_is_laid_out_in_rows_and_columns(qtbot, window):
    w = window
    qtbot.waitUntil(lambda: w.stylegan.idle, timeout=20000)
    w.stylegan_panel.grid_count.setValue(4)
    w.stylegan_panel.request_grid()
    qtbot.waitUntil(lambda: len(w.document.staged) == 5, timeout=30000)
    grid = w.document.staged[0]
    one = w.document.staged[1].image
    assert grid.image.size == (2 * one.width, 2 * one.height)  # 2 x 2, not one row
    assert grid.record["grid_seeds"] == [r.record["seed"] for r in w.document.staged[1:]]


def test_probe_tells_stylegan2_from_stylegan3(sg_files):
    from aigc_desktop.ui.viewmodels.stylegan import probe_family

    for name, path in sg_files.items():
        if name.startswith("sg3"):
            assert probe_family(str(path)) == "stylegan3", name
        elif name.startswith("sg2") or name in ("rosinality", "ours"):
            assert probe_family(str(path)) in ("stylegan2", None), name


def test_gallery_conversion_adds_the_converted_model(qtbot, window):
    w = window
    path = w.models.selected.path
    w.gallery.convert_requested.emit(path)
    qtbot.waitUntil(lambda: any(m.path.endswith("faces-safetensors") for m in w.models.models), timeout=20000)
    assert w.models.selected.path.endswith("faces-safetensors") and w.models.selected.kind == "stylegan"


def test_settings_from_an_image_regenerate_it(qtbot, vm, sg_files, tmp_path):
    from PIL import Image

    from aigc_desktop.core.metadata import save_png
    from aigc_desktop.ui.panels.stylegan import StyleGANPanel

    spec = jobs.StyleGANJob(model=jobs.ModelRef(str(sg_files["ours"])), seeds=(321,), truncation_psi=0.55,
                            truncation_cutoff=3, noise_mode="random", mix_seed=9, mix_layers="2-5")
    runner = Runner(EngineOptions(threads=1))
    try:
        end = runner.run(spec, lambda e: None, lambda: False)
    finally:
        runner.close()
    path = save_png(end.images[0], tmp_path / "made.png", end.records[0])
    panel = StyleGANPanel(vm)
    qtbot.addWidget(panel)
    panel.load_from_image(str(path))
    assert panel.message.text() == ""
    assert (vm.params.seed, vm.params.truncation_psi, vm.params.truncation_cutoff) == (321, 0.55, 3)
    assert (vm.params.mix_enabled, vm.params.mix_seed, vm.params.mix_layers) == (True, 9, "2-5")
    assert panel.mix_layers.currentData() == "custom" and panel.mix_range.text() == "2-5"
    assert np.array_equal(render(vm.build_job()), np.asarray(end.images[0]))
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    panel.load_from_image(str(tmp_path / "plain.png"))
    assert "no StyleGAN settings" in panel.message.text()


def test_tabs_pick_a_model_of_their_kind(qtbot, tmp_path, sg_files, tiny_sd_path):
    """With a diffusion and a StyleGAN model, the StyleGAN tab works at once: raising it selects the StyleGAN
    model; raising the Prompt tab returns to the diffusion model used last."""
    from aigc_desktop.ui.main_window import MainWindow
    from aigc_desktop.engines.base import FakeEngine

    models = tmp_path / "models"
    shutil.copytree(tiny_sd_path, models / "a-tiny-sd")
    shutil.copy(sg_files["sg2-skip"], models / "z-faces.pkl")
    w = MainWindow(Settings({"models_dir": str(models), "threads": 1}), engines={"diffusion": FakeEngine()})
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: w.models.selected is not None, timeout=10000)
        assert w.models.selected.kind == "diffusers" and not w.stylegan_panel.isEnabled()
        assert w.stylegan_panel.toolTip() == ""  # a StyleGAN model exists: no "add one" hint
        w.stylegan_dock.raise_()
        qtbot.waitUntil(lambda: w.models.selected.kind == "stylegan", timeout=5000)
        assert w.stylegan_panel.isEnabled()
        w.prompt_dock.raise_()
        qtbot.waitUntil(lambda: w.models.selected.kind == "diffusers", timeout=5000)
        assert not w.stylegan_panel.isEnabled()
    finally:
        w.close()
