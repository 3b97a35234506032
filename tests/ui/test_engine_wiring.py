"""The window on the engine process (ui/engine_client.py): one process per device for the main queue and the
StyleGAN live view, quit within 3 s, crashes and stuck steps cost the job only, honest "not saved" results,
the estimate asked about before a job runs, Help > Open log folder, settings checked as typed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time


from aigc_desktop.core import jobs
from aigc_desktop.core.estimate import DeviceInfo
from aigc_desktop.core.queue import JobState
from aigc_desktop.engines.base import FakeEngine
from aigc_desktop.ui import engine_client
from tests.ui.test_main_window import make_window, models_dir, set_prompt  # noqa: F401 - fixture

MISBEHAVING = {"fake": "aigc_desktop.testing.host_engines:MisbehavingEngine"}


# ------------------------------------------------------------------------------------------ engine process


def test_gui_process_never_imports_torch_through_a_real_generation_and_quits_fast(tmp_path, tiny_sd_path):
    """A fresh interpreter (pytest has torch loaded): the real window, the real tiny model in the engine
    process, a generation onto the canvas, quit; torch is never imported in the window's process."""
    script = textwrap.dedent(f"""
        import os, sys, time
        os.environ['QT_QPA_PLATFORM'] = 'offscreen'
        os.environ['AIGC_DESKTOP_CONFIG_DIR'] = {str(tmp_path / 'c')!r}
        os.environ['AIGC_DESKTOP_DATA_DIR'] = {str(tmp_path / 'd')!r}
        from PySide6.QtWidgets import QApplication
        from aigc_desktop.core.settings import Settings
        from aigc_desktop.ui.main_window import MainWindow
        from aigc_desktop.ui import engine_client

        app = QApplication([])
        w = MainWindow(Settings({{'models_dir': {str(tiny_sd_path.parent)!r}, 'device': 'cpu', 'threads': 1}}))
        w.show()
        w.start_worker()
        def wait(cond, seconds):
            end = time.monotonic() + seconds
            while not cond() and time.monotonic() < end:
                app.processEvents()
                time.sleep(0.01)
            return cond()
        assert wait(lambda: w.models.selected is not None, 30), 'no model'
        w.prompt_panel.prompt.setPlainText('a red apple')
        w.prompt_panel.width_box.setValue(64)
        w.prompt_panel.height_box.setValue(64)
        w.prompt_panel.steps.setValue(2)
        finished = []
        w.queue.job_finished.connect(lambda *a: finished.append(a))
        w.queue.job_failed.connect(lambda *a: finished.append(a))
        job = w.generate()
        assert job, w.message_bar.text()
        assert wait(lambda: finished, 240), 'no result'
        assert w.queue.rows[job].state.value == 'finished', finished
        assert len(w.document.staged) == 1 and w.document.staged[0].path
        pid = w.worker.engine_pid
        assert pid and pid != os.getpid()
        assert 'torch' not in sys.modules, 'the window process imported torch'
        t = time.monotonic()
        w.close()
        took = time.monotonic() - t
        assert took < 3, took
        assert not engine_client.engine_processes()
        assert 'torch' not in sys.modules
        print('OK', round(took, 2))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.startswith("OK"), out.stdout + out.stderr[-4000:]


def test_live_view_and_main_queue_share_the_engine_process_of_the_device(qtbot, models_dir):  # noqa: F811
    w = make_window(qtbot, models_dir, engines=None, device="cpu", threads=1)
    try:
        w.start_worker()
        w.stylegan._start_worker()  # the live view's client, as its first live render starts it
        assert w.worker.transport == "process" and w.stylegan.worker.transport == "process"
        engines = engine_client.engine_processes()
        assert len(engines) == 1 and w.worker._engine is w.stylegan.worker._engine is engines[0]
        assert len(engines[0].lanes()) == 2  # one lane each: the live view never waits behind a job
    finally:
        t = time.monotonic()
        w.close()
        assert time.monotonic() - t < 3
    assert not engine_client.engine_processes()


def test_quit_with_a_step_that_never_ends_returns_within_3_s(qtbot, models_dir):  # noqa: F811
    w = make_window(qtbot, models_dir, engines=MISBEHAVING, device="cpu", threads=1)
    progress = []
    w.queue.progress_changed.connect(lambda *a: progress.append(a))
    job = w.submit_job(jobs.FakeJob(steps=5, prompt="hang"))
    assert job is not None and w.worker.transport == "process"
    qtbot.waitUntil(lambda: bool(progress), timeout=30000)
    t = time.monotonic()
    w.close()
    assert time.monotonic() - t < 3.2
    assert not engine_client.engine_processes()


def test_engine_crash_fails_the_running_job_in_one_line_and_the_queue_goes_on(qtbot, models_dir):  # noqa: F811
    w = make_window(qtbot, models_dir, engines=MISBEHAVING, device="cpu", threads=1)
    try:
        layers = [layer.id for layer in w.document.doc.layers]
        crash = w.submit_job(jobs.FakeJob(steps=5, prompt="exit"))
        after = w.submit_job(jobs.FakeJob(steps=2, width=32, height=32, prompt="after"))
        with qtbot.waitSignal(w.queue.job_failed, timeout=30000):
            pass
        assert w.queue.rows[crash].state is JobState.FAILED
        text = w.message_bar.text()
        assert text.startswith("The engine stopped: it exited with code 3") and "\n" not in text
        qtbot.waitUntil(lambda: w.queue.rows[after].state is JobState.FINISHED, timeout=60000)
        assert [layer.id for layer in w.document.doc.layers] == layers  # the document is untouched
        assert len(w.document.staged) == 1
    finally:
        w.close()


# ------------------------------------------------------------------------------------------ not saved


def test_an_image_that_could_not_be_saved_is_staged_and_never_done(qtbot, models_dir, tmp_path):  # noqa: F811
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outputs folder should be")
    w = make_window(qtbot, models_dir, engines={"diffusion": FakeEngine()}, outputs_dir=str(blocker),
                    save_outputs=True)
    try:
        finished = []
        w.queue.job_finished.connect(lambda *a: finished.append(a))
        set_prompt(w, steps=2)
        with qtbot.waitSignal(w.queue.job_unsaved, timeout=10000) as got:
            job = w.generate()
        event = got.args[1]
        assert isinstance(event, jobs.SaveFailed) and len(event.images) == 1 and not event.paths
        assert not finished
        row = w.queue.rows[job]
        assert row.state is JobState.FAILED and row.unsaved
        text = w.message_bar.text()
        assert w.message_bar.isVisible() and text.startswith("Not saved: ") and "\n" not in text
        assert "Done" not in w.status.currentMessage() and w.status.currentMessage() == "Not saved"
        staged = w.document.staged
        assert len(staged) == 1 and staged[0].path is None and staged[0].image.size == (64, 64)
        assert staged[0].record["prompt"] == "a red apple" and w.canvas.staged_item.isVisible()
        w.queue_panel.rebuild()
        assert "not saved" in w.queue_panel.list.item(0).text()
        w.document.accept_staged()  # the user keeps it on the canvas, to export it elsewhere
        assert w.export_png("frame", str(tmp_path / "elsewhere.png"))
    finally:
        w.close()


# ------------------------------------------------------------------------------------------ estimate


def test_preflight_check_warns_on_memory_and_cpu_time(tiny_sd_path):
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.ui.engine_client import StepMeasure
    from aigc_desktop.ui.viewmodels import preflight

    model = jobs.ModelRef(str(tiny_sd_path), kind="diffusers")
    spec = jobs.DiffusionJob(model=model, params=GenerationParams(prompt="x", width=64, height=64, steps=20))
    roomy = DeviceInfo(kind="cpu", memory_bytes=64 << 30, total_bytes=64 << 30, cores=8, name="CPU")
    assert preflight.check([spec], roomy).ok

    tight = DeviceInfo(kind="cpu", memory_bytes=1 << 20, total_bytes=1 << 20, cores=1, name="CPU")
    verdict = preflight.check([spec], tight)
    assert not verdict.ok and verdict.warnings[0].startswith("Needs about")
    assert "Estimated: about" in verdict.text() and "• Needs about" in verdict.text()

    slow = StepMeasure(seconds=10.0, spec=spec)  # measured on this model: 20 steps of 10 s
    verdict = preflight.check([spec], roomy, measured=lambda kind: slow)
    assert any(w.startswith("Will take about") for w in verdict.warnings) and verdict.seconds > 180
    other = StepMeasure(seconds=10.0, spec=jobs.DiffusionJob(model=jobs.ModelRef("/elsewhere/model"),
                                                             params=spec.params))
    assert preflight.check([spec], roomy, measured=lambda kind: other).ok  # another model's step says nothing
    # Before the engine has reported the GPU the settings ask for, nothing is said (no CPU figure for a GPU).
    assert preflight.check([spec], tight, expected_kind="cuda").ok
    assert preflight.check([jobs.FakeJob()], tight).ok  # only image generations are estimated


def test_generate_asks_before_a_job_too_big_for_the_device(qtbot, models_dir, monkeypatch):  # noqa: F811
    from aigc_desktop.engines import host

    tight = DeviceInfo(kind="cpu", memory_bytes=1 << 20, total_bytes=1 << 20, cores=1, name="CPU")
    monkeypatch.setattr(host, "device_info", lambda preference="auto": tight)
    w = make_window(qtbot, models_dir, engines={"diffusion": FakeEngine()}, device="cpu", save_outputs=False)
    try:
        asked = []
        w.confirm = lambda verdict: asked.append(verdict) or False
        set_prompt(w, steps=2)
        assert w.generate() is None
        assert len(asked) == 1 and asked[0].warnings[0].startswith("Needs about")
        assert w.queue.rows == {} and "Not queued" in w.status.currentMessage()
        w.confirm = lambda verdict: asked.append(verdict) or True  # "Run anyway"
        with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
            assert w.generate() is not None
        assert len(asked) == 2 and len(w.document.staged) == 1
    finally:
        w.close()


# ------------------------------------------------------------------------------------------ help, logs


def test_help_menu_opens_the_log_folder_and_shows_about(qtbot, models_dir, monkeypatch):  # noqa: F811
    from PySide6.QtGui import QDesktopServices

    from aigc_desktop.core import logs

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    w = make_window(qtbot, models_dir, engines={"diffusion": FakeEngine()})
    try:
        titles = [a.text() for a in w.help_menu.actions()]
        assert "Open log folder" in titles and "About AIGC Desktop" in titles
        w.open_log_action.trigger()
        assert opened == [str(logs.log_dir())] and logs.log_dir().is_dir()
        assert "AIGC Desktop" in w.about_text() and str(logs.log_file()) in w.about_text()
    finally:
        w.close()


def test_cli_user_error_is_one_line_and_a_bug_goes_to_the_log_file(tmp_path):
    env = dict(os.environ, AIGC_DESKTOP_CONFIG_DIR=str(tmp_path / "c"), AIGC_DESKTOP_DATA_DIR=str(tmp_path / "d"),
               OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "aigc_desktop", "info", str(tmp_path / "missing.png")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.strip()]) == 1, out.stderr
    bug = textwrap.dedent("""
        import sys
        import aigc_desktop.cli as cli
        def broken(args):
            raise RuntimeError("a bug in the code")
        cli.COMMANDS["models"] = broken
        sys.argv = ["aigc", "models"]
        raise SystemExit(cli.main())
    """)
    out = subprocess.run([sys.executable, "-c", bug], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "RuntimeError: a bug in the code" in out.stderr and "details in" in out.stderr
    log_text = (tmp_path / "d" / "logs" / "aigc-desktop.log").read_text()
    assert "Traceback" in log_text and "a bug in the code" in log_text


# ------------------------------------------------------------------------------------------ settings


def test_settings_flag_a_missing_device_and_folders_at_once_with_browse(qtbot, tmp_path, monkeypatch):
    from aigc_desktop.core import device_probe
    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.panels.settings_dialog import SettingsDialog

    monkeypatch.setattr(device_probe, "present_devices", lambda: ("cpu",))
    monkeypatch.setattr(device_probe, "_gpu_driver", lambda: False)
    missing = tmp_path / "no-such-folder"
    dialog = SettingsDialog(Settings({"device": "cuda", "models_dir": str(missing)}))
    qtbot.addWidget(dialog)
    assert "No CUDA GPU" in dialog.notes["device"].text() and not dialog.notes["device"].isHidden()
    assert dialog.notes["models_dir"].text() == f"Folder not found: {missing}"
    assert dialog.notes["outputs_dir"].isHidden()  # empty: the default folder
    dialog.editors["device"].setCurrentText("cpu")  # fixed as soon as it is picked
    assert dialog.notes["device"].isHidden()
    dialog.editors["device"].setCurrentText("mps")
    assert "Apple" in dialog.notes["device"].text()

    good = tmp_path / "models"
    good.mkdir()
    dialog.choose_folder = lambda start: str(good)
    assert set(dialog.browse_buttons) == {"models_dir", "outputs_dir", "model_folders"}
    dialog.browse_buttons["models_dir"].click()
    assert dialog.editors["models_dir"].text() == str(good) and dialog.notes["models_dir"].isHidden()
    dialog.browse_buttons["model_folders"].click()
    assert dialog.editors["model_folders"].toPlainText() == str(good)
    dialog.editors["model_folders"].setPlainText(f"{good}\n{missing}")
    assert dialog.notes["model_folders"].text() == f"Folder not found: {missing}"

    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    dialog.editors["outputs_dir"].setText(str(a_file))
    assert dialog.notes["outputs_dir"].text() == f"{a_file} is a file, not a folder"
    dialog.editors["outputs_dir"].setText(str(tmp_path / "new-outputs"))
    assert "will be made" in dialog.notes["outputs_dir"].text()
    assert set(dialog.problems()) == {"device", "model_folders", "outputs_dir"}


def test_device_probe_reads_the_torch_build_without_importing_it():
    code = ("import sys; from aigc_desktop.core import device_probe as d; "
            "print(d.torch_gpu_build(), 'cpu' in d.present_devices(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    build, has_cpu, imported = out.stdout.split()
    assert build in ("True", "False") and has_cpu == "True" and imported == "False", out.stderr
    if build == "False":
        assert "CPU-only" in d_problem_with_driver()


def d_problem_with_driver() -> str:
    from aigc_desktop.core import device_probe

    real = device_probe._gpu_driver
    device_probe._gpu_driver = lambda: True
    device_probe.present_devices.cache_clear()
    try:
        return device_probe.device_problem("cuda")
    finally:
        device_probe._gpu_driver = real
        device_probe.present_devices.cache_clear()
