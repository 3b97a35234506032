"""The training engine in the runner (as the app's worker runs it) and the Train panel."""

from __future__ import annotations

import pytest

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.runner import Runner

OPTIONS = (("channels", "8,16"), ("latent_dim", "8"), ("sample_every", "2"), ("log_every", "1"))


def test_train_job_validation(tmp_path):
    jobs.TrainJob(model="vae", data=str(tmp_path), out=str(tmp_path / "o")).validate()
    for bad in (dict(model="gan"), dict(data=str(tmp_path / "missing")), dict(steps=0), dict(resolution=48),
                dict(out="")):
        spec = jobs.TrainJob(**{"model": "vae", "data": str(tmp_path), "out": "o", **bad})
        with pytest.raises(InvalidParameter):
            spec.validate()


def test_runner_reports_losses_samples_and_finishes(shapes_dir, tmp_path):
    events = []
    spec = jobs.TrainJob(model="vae", data=str(shapes_dir), out=str(tmp_path), steps=3, resolution=16, batch=4,
                         device="cpu", options=OPTIONS)
    end = Runner().run(spec, events.append, lambda: False)
    assert isinstance(end, jobs.Finished), getattr(end, "message", end)
    metrics = [e for e in events if isinstance(e, jobs.TrainMetrics)]
    assert [m.step for m in metrics] == [1, 2, 3] and "loss" in metrics[0].losses
    assert any(isinstance(e, jobs.TrainSample) and e.step == 2 for e in events)
    assert [e.step for e in events if isinstance(e, jobs.Progress)] == [1, 2, 3]
    assert any(isinstance(e, jobs.Status) and "Model saved" in e.text for e in events)


def test_runner_cancel_and_resume(shapes_dir, tmp_path):
    events = []
    spec = jobs.TrainJob(model="vae", data=str(shapes_dir), out=str(tmp_path), steps=50, resolution=16, batch=4,
                         device="cpu", options=OPTIONS)
    end = Runner().run(spec, events.append,
                       lambda: sum(isinstance(e, jobs.TrainMetrics) for e in events) >= 2)
    assert isinstance(end, jobs.Cancelled)
    resumed = jobs.TrainJob(model="vae", data=str(shapes_dir), out=str(tmp_path), steps=4, resolution=16, batch=4,
                            device="cpu", resume=True, options=OPTIONS)
    events.clear()
    assert isinstance(Runner().run(resumed, events.append, lambda: False), jobs.Finished)
    assert [e.step for e in events if isinstance(e, jobs.TrainMetrics)] == [3, 4]


def test_train_panel_trains_in_the_worker(qtbot, shapes_dir, tmp_path):
    from aigc_desktop.ui.panels.train import TrainPanel
    from aigc_desktop.ui.viewmodels.queue import QueueViewModel
    from aigc_desktop.ui.worker import Worker

    queue = QueueViewModel()
    worker = Worker(queue.queue, preload=False)
    panel = TrainPanel(queue, start_worker=lambda: None if worker.isRunning() else worker.start())
    qtbot.addWidget(panel)
    panel.kind.setCurrentIndex(panel.kind.findData("vae"))
    panel.data.setText(str(shapes_dir))
    assert panel.data_info.text() == "12 images, 12 with captions"
    panel.out.setText(str(tmp_path / "run"))
    panel.steps.setValue(4)
    panel.resolution.addItem("16", 16)
    panel.resolution.setCurrentIndex(panel.resolution.count() - 1)
    panel.batch.setValue(4)
    try:
        with qtbot.waitSignal(queue.job_finished, timeout=60000):
            assert panel.start() is not None
            assert not panel.start_button.isEnabled()
        qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=5000)
    finally:
        worker.stop()
    live = list(panel.plot.series["loss"])
    assert live and live[-1][0] == 4
    assert panel.last_sample is not None and panel.sample_view.pixmap() is not None
    assert "model saved" in panel.message.text()
    panel.plot.resize(300, 200)
    assert not panel.plot.grab().isNull()
    # The run folder now holds a checkpoint: the form offers to continue it, and starting over is refused.
    panel.out.setText("")
    panel.steps.setValue(99)
    panel.kind.setCurrentIndex(0)
    panel.out.setText(str(tmp_path / "run"))
    assert panel.resume.isChecked()
    reloaded = panel.plot.series["loss"]
    assert [s for s, _ in reloaded] == [s for s, _ in live]
    assert [v for _, v in reloaded] == pytest.approx([v for _, v in live], rel=1e-4)
    assert panel.steps.value() == 4 and panel.kind.currentData() == "vae" and panel.batch.value() == 4
    panel.resume.setChecked(False)
    assert panel.start() is None and "Continue" in panel.message.text()
