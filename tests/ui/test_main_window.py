"""The window end to end, offscreen: Generate -> progress and previews -> image on the canvas."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.queue import JobState
from aigc_desktop.core.settings import Settings
from aigc_desktop.engines.base import FakeEngine


@pytest.fixture
def models_dir(tmp_path, tiny_sd_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny_sd_path, folder / "tiny-sd")
    return folder


def make_window(qtbot, models_dir, engines=None, **settings):
    from aigc_desktop.ui.main_window import MainWindow

    s = Settings({"models_dir": str(models_dir), **settings})
    window = MainWindow(s, engines=engines)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.models.selected is not None, timeout=10000)
    return window


@pytest.fixture
def fake_window(qtbot, models_dir):
    window = make_window(qtbot, models_dir, engines={"diffusion": FakeEngine()})
    yield window
    window.close()


def set_prompt(window, text="a red apple", size=64, steps=6):
    panel = window.prompt_panel
    panel.prompt.setPlainText(text)
    panel.width_box.setValue(size)
    panel.height_box.setValue(size)
    panel.steps.setValue(steps)


def test_gallery_lists_discovered_model(fake_window):
    assert [m.name for m in fake_window.models.models] == ["tiny-sd"]
    assert fake_window.models.selected.kind == "diffusers"
    assert fake_window.gallery.list.count() == 1


def test_generate_shows_progress_previews_and_image(qtbot, fake_window):
    w = fake_window
    set_prompt(w)
    previews = []
    w.queue.preview_changed.connect(lambda _id, img: previews.append(img))
    with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
        job_id = w.generate()
    assert job_id is not None
    assert w.queue.rows[job_id].state is JobState.FINISHED
    assert len(previews) == 6
    # The result waits in the staging strip over the frame (and in the history) until accepted.
    staged = w.document.staged
    assert len(staged) == 1 and w.canvas.staged_item.isVisible() and w.canvas.staging_bar.isVisible()
    assert staged[0].record["prompt"] == "a red apple"
    assert staged[0].rect == w.document.doc.frame.rect
    assert w.progress.value() == w.progress.maximum()
    assert staged[0].path and staged[0].path.endswith(".png")  # saved by the worker
    assert not w.canvas.preview_item.isVisible()
    assert not w.cancel_button.isEnabled()


def test_cancel_from_status_bar(qtbot, fake_window):
    w = fake_window
    set_prompt(w, steps=400)
    started = []
    w.queue.progress_changed.connect(lambda *a: started.append(a))
    job_id = w.generate()
    qtbot.waitUntil(lambda: len(started) > 0, timeout=10000)
    assert w.cancel_button.isEnabled()
    with qtbot.waitSignal(w.queue.job_cancelled, timeout=10000):
        w.cancel_button.click()
    assert w.queue.rows[job_id].state is JobState.CANCELLED
    assert w.document.staged == [] and not w.canvas.preview_item.isVisible()


class FailOnce(FakeEngine):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def run(self, spec, emit, cancelled):
        self.calls += 1
        if self.calls == 1:
            raise UserError("Model file is truncated")
        return super().run(spec, emit, cancelled)


def test_failed_job_message_then_next_job_works(qtbot, models_dir):
    w = make_window(qtbot, models_dir, engines={"diffusion": FailOnce()})
    try:
        set_prompt(w, steps=2)
        with qtbot.waitSignal(w.queue.job_failed, timeout=10000):
            w.generate()
        assert "truncated" in w.message_bar.text() and w.message_bar.isVisible()  # the one message area
        with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
            w.generate()
        assert len(w.document.staged) == 1 and not w.message_bar.isVisible()
    finally:
        w.close()


def test_bad_parameters_are_reported_not_queued(qtbot, fake_window):
    w = fake_window
    w.models.select(None)
    assert w.generate() is None
    assert "Pick a model" in w.message_bar.text()
    assert w.queue.rows == {}


def test_queue_panel_remove_queued_job(qtbot, fake_window):
    w = fake_window
    set_prompt(w, steps=300)
    first = w.generate()
    second = w.generate()
    w.queue_panel.rebuild()
    items = [w.queue_panel.list.item(i) for i in range(w.queue_panel.list.count())]
    target = next(i for i in items if i.data(0x0100) == second)
    w.queue_panel.list.setCurrentItem(target)
    w.queue_panel.remove.click()
    assert w.queue.rows[second].state is JobState.CANCELLED
    with qtbot.waitSignal(w.queue.job_cancelled, timeout=10000):
        w.cancel_running()
    assert w.queue.rows[first].state is JobState.CANCELLED


def test_real_tiny_model_generation_lands_on_canvas(qtbot, models_dir):
    """The vertical slice with the real diffusion engine in the worker thread."""
    w = make_window(qtbot, models_dir)
    try:
        set_prompt(w, steps=3)
        w.prompt_panel.seed.setValue(7)
        main_thread = threading.get_ident()
        preview_threads = []
        # QueueViewModel re-emits worker events from its GUI-thread slot, so even a lambda runs here.
        w.queue.preview_changed.connect(lambda *_: preview_threads.append(threading.get_ident()))
        with qtbot.waitSignal(w.queue.job_finished, timeout=120000) as blocker:
            w.generate()
        event = blocker.args[1]
        assert isinstance(event, jobs.Finished) and event.images[0].size == (64, 64)
        assert event.records[0]["seed"] == 7
        assert len(w.document.staged) == 1
        assert w.prompt_panel.last_seed == 7
        assert len(preview_threads) == 3 and set(preview_threads) == {main_thread}
    finally:
        w.close()


def test_window_is_shown_before_torch_is_imported(tmp_path, tiny_sd_path):
    code = textwrap.dedent(f"""
        import os, sys
        os.environ['QT_QPA_PLATFORM'] = 'offscreen'
        os.environ['AIGC_DESKTOP_CONFIG_DIR'] = {str(tmp_path / 'c')!r}
        os.environ['AIGC_DESKTOP_DATA_DIR'] = {str(tmp_path / 'd')!r}
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        import aigc_desktop.ui.app as appmod
        seen = {{}}
        def check():
            app = QApplication.instance()
            wins = [w for w in app.topLevelWidgets() if w.isVisible() and w.objectName() != '']
            seen['visible'] = any(type(w).__name__ == 'MainWindow' and w.isVisible() for w in app.topLevelWidgets())
            seen['torch'] = 'torch' in sys.modules
            for w in app.topLevelWidgets():
                if type(w).__name__ == 'MainWindow':
                    w.close()
            app.quit()
        QTimer.singleShot(0, check)  # the first event after show(), before the worker's import finishes
        rc = appmod.main([])
        print(seen)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'visible': True" in out.stdout and "'torch': False" in out.stdout, out.stdout + out.stderr


def test_history_collects_results_newest_first(qtbot, fake_window):
    w = fake_window
    set_prompt(w, text="first", steps=1)
    with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
        w.generate()
    set_prompt(w, text="second", steps=1)
    w.prompt_panel.batch_size.setValue(2)
    with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
        w.generate()
    history = w.history_panel
    assert history.list.count() == 3
    assert history.entry_for(history.list.item(0)).record["prompt"] == "second"
    assert history.entry_for(history.list.item(2)).record["prompt"] == "first"
    w.document.discard_staged()
    history._activate(history.list.item(2))  # back in the staging strip
    assert [r.record["prompt"] for r in w.document.staged] == ["first"]


def test_dropping_an_image_restores_params_and_selects_its_model(qtbot, fake_window, tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    w = fake_window
    other = w.models.add_model_path(w.models.models[0].path)  # the tiny model, selected
    w.models.select(None)
    info = PngInfo()
    info.add_text("parameters", "a castle on a hill\nNegative prompt: fog\n"
                  "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, "
                  "Size: 128x192, Model: tiny-sd")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    w.prompt_panel.load_parameters_from(str(path))
    p = w.prompt_panel.params()
    assert (p.prompt, p.negative_prompt, p.seed, p.steps, p.cfg_scale) == ("a castle on a hill", "fog", 1234, 12, 5.5)
    assert (p.width, p.height, p.scheduler) == (128, 192, "dpmpp_2m_karras")
    assert w.models.selected is not None and w.models.selected.path == other.path


def test_gallery_choices_reach_the_job(qtbot, fake_window, tmp_path):
    from safetensors.torch import save_file
    import torch

    w = fake_window
    vae_file = w.settings.models_dir() / "my-vae.safetensors"
    save_file({"encoder.down.0.block.0.conv1.weight": torch.zeros(1),
               "decoder.up.0.block.0.conv1.weight": torch.zeros(1)}, str(vae_file))
    w.models.refresh(wait=True)
    qtbot.waitUntil(lambda: w.gallery.vae.count() == 2, timeout=5000)
    w.gallery.vae.setCurrentIndex(1)
    w.gallery.family.setCurrentIndex(w.gallery.family.findData("sd2"))
    w.gallery.prediction.setCurrentIndex(w.gallery.prediction.findData("v_prediction"))
    w.models.select(next(m for m in w.models.models if m.kind == "diffusers"))
    spec = w.build_job()
    assert spec.model.vae == str(vae_file)
    assert spec.model.family == "sd2" and spec.model.prediction_type == "v_prediction"


def test_img2img_from_history_with_the_real_engine(qtbot, models_dir):
    w = make_window(qtbot, models_dir, save_outputs=False)
    try:
        set_prompt(w, steps=2)
        w.prompt_panel.seed.setValue(3)
        with qtbot.waitSignal(w.queue.job_finished, timeout=120000):
            w.generate()
        entry = w.history_panel.entry_for(w.history_panel.list.item(0))
        assert entry.path is None  # saving is off: the pixels travel as PNG bytes
        w._use_as_init(entry)
        options = w.prompt_panel.options
        assert options.isChecked() and options.mode.currentData() == "img2img"
        options.strength.setValue(0.5)
        options.variation_seed.setValue(9)
        options.variation_strength.setValue(0.3)
        with qtbot.waitSignal(w.queue.job_finished, timeout=120000) as blocker:
            w.generate()
        record = blocker.args[1].records[0]
        assert record["mode"] == "img2img" and record["strength"] == 0.5
        assert record["variation_seed"] == 9 and record["variation_strength"] == 0.3
        assert w.history_panel.list.count() == 2
    finally:
        w.close()


def test_options_round_trip_through_set_params(qtbot):
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.ui.panels.prompt import PromptPanel

    panel = PromptPanel()
    qtbot.addWidget(panel)
    p = GenerationParams(prompt="x", seed=4, mode="outpaint", init_image="/tmp/a.png", outpaint=(64, 0, 128, 0),
                         mask_blur=8, variation_seed=5, variation_strength=0.2, clip_skip=2)
    panel.set_params(p)
    panel.options.init_image.set_path("/tmp/a.png")
    q = panel.params()
    assert (q.mode, q.outpaint, q.mask_blur, q.variation_seed, q.variation_strength, q.clip_skip) == \
        ("outpaint", (64, 0, 128, 0), 8, 5, 0.2, 2)
    assert q.init_image == "/tmp/a.png"
    assert panel.options.isChecked()
    panel.set_params(GenerationParams())
    assert panel.params().variation_seed is None and panel.params().mode == "txt2img"


def test_size_follows_the_models_native_size_unless_changed(qtbot, fake_window):
    from dataclasses import replace

    w = fake_window
    tiny = w.models.selected
    assert tiny.native_size == 64  # tiny test model: 8x8 latents, VAE factor 8
    assert w.prompt_panel.params().width == 64 and w.prompt_panel.params().height == 64
    xl = replace(tiny, path=tiny.path + "-xl", family="sdxl", native_size=None)
    w.models.select(xl)
    assert (w.prompt_panel.width_box.value(), w.prompt_panel.height_box.value()) == (1024, 1024)
    w.prompt_panel.width_box.setValue(768)  # the user's choice stays
    w.models.select(tiny)
    assert w.prompt_panel.width_box.value() == 768
