"""The job queue state machine and the runner, with the fake engine (no torch, no Qt)."""

import threading

import pytest

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.queue import JobQueue, JobState
from aigc_desktop.core.runner import Runner, serve


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expect_terminal = 1

    def __call__(self, event):
        with self.lock:
            self.events.append(event)
            terminal = [e for e in self.events if isinstance(e, (jobs.Finished, jobs.Cancelled, jobs.Failed))]
            if len(terminal) >= self.expect_terminal:
                self.done.set()

    def of(self, job_id, kind=None):
        return [e for e in self.events if e.job_id == job_id and (kind is None or isinstance(e, kind))]


def start_worker(queue, runner=None):
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(queue, runner or Runner(), stop), daemon=True)
    thread.start()
    return stop, thread


def test_job_runs_with_progress_previews_and_finish():
    q = JobQueue()
    rec = Recorder()
    q.subscribe(rec)
    stop, thread = start_worker(q)
    spec = jobs.FakeJob(steps=4)
    q.submit(spec)
    assert rec.done.wait(10)
    stop.set(); thread.join(5)
    kinds = [type(e).__name__ for e in rec.of(spec.id)]
    assert kinds[0] == "Queued" and kinds[1] == "Started" and kinds[-1] == "Finished"
    progress = rec.of(spec.id, jobs.Progress)
    assert [p.step for p in progress] == [1, 2, 3, 4] and all(p.total == 4 for p in progress)
    assert progress[-1].eta == 0 and progress[0].elapsed > 0
    assert len(rec.of(spec.id, jobs.Preview)) == 4
    finished = rec.of(spec.id, jobs.Finished)[0]
    assert finished.images[0].size == (64, 64) and finished.records[0]["steps"] == 4
    assert q.state(spec.id) is JobState.FINISHED


def test_failing_job_then_succeeding_job():
    q = JobQueue()
    rec = Recorder()
    rec.expect_terminal = 2
    q.subscribe(rec)
    stop, thread = start_worker(q)
    bad = jobs.FakeJob(steps=3, fail_message="Model file is corrupted", fail_at_step=2)
    good = jobs.FakeJob(steps=2)
    q.submit(bad)
    q.submit(good)
    assert rec.done.wait(10)
    stop.set(); thread.join(5)
    failed = rec.of(bad.id, jobs.Failed)[0]
    assert failed.message == "Model file is corrupted" and "Traceback" in failed.details
    assert q.state(bad.id) is JobState.FAILED and q.state(good.id) is JobState.FINISHED


def test_cancel_running_job_stops_within_a_step():
    q = JobQueue()
    rec = Recorder()
    q.subscribe(rec)
    first_step = threading.Event()
    q.subscribe(lambda e: first_step.set() if isinstance(e, jobs.Progress) else None)
    stop, thread = start_worker(q)
    spec = jobs.FakeJob(steps=200, step_seconds=0.02)
    q.submit(spec)
    assert first_step.wait(10)
    assert q.cancel(spec.id)
    assert rec.done.wait(10)
    stop.set(); thread.join(5)
    assert rec.of(spec.id, jobs.Cancelled) and not rec.of(spec.id, jobs.Finished)
    steps = [p.step for p in rec.of(spec.id, jobs.Progress)]
    assert max(steps) < 20
    assert q.state(spec.id) is JobState.CANCELLED


def test_queued_jobs_can_be_removed_and_order_is_kept():
    q = JobQueue()
    a, b, c = jobs.FakeJob(steps=1), jobs.FakeJob(steps=1), jobs.FakeJob(steps=1)
    for s in (a, b, c):
        q.submit(s)
    assert q.remove(b.id)
    assert q.state(b.id) is JobState.CANCELLED
    assert q.take(0.1).spec.id == a.id
    assert q.take(0.1).spec.id == c.id
    assert q.take(0.05) is None
    assert not q.remove(b.id)  # already done


def test_invalid_spec_is_refused_and_nothing_enqueued():
    q = JobQueue()
    spec = jobs.DiffusionJob(model=jobs.ModelRef("/nowhere"), params=GenerationParams(width=100))
    with pytest.raises(InvalidParameter):
        q.submit(spec)
    assert q.entries() == []


def test_close_wakes_waiting_worker():
    q = JobQueue()
    stop, thread = start_worker(q)
    q.close()
    thread.join(5)
    assert not thread.is_alive()


def test_runner_turns_any_exception_into_failed_and_keeps_going():
    class Exploding:
        def run(self, spec, emit, cancelled):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    from aigc_desktop.engines.base import FakeEngine

    events = []
    runner = Runner(engines={"fake": Exploding()})
    end = runner.run(jobs.FakeJob(), events.append, lambda: False)
    assert isinstance(end, jobs.Failed) and end.message.startswith("Out of memory")
    runner._engines["fake"] = FakeEngine()
    assert isinstance(runner.run(jobs.FakeJob(steps=1), events.append, lambda: False), jobs.Finished)


def test_runner_saves_outputs_before_reporting(tmp_path):
    from aigc_desktop.core.metadata import read_record
    from aigc_desktop.core.runner import EngineOptions

    runner = Runner(EngineOptions(outputs_dir=str(tmp_path / "out")))
    end = runner.run(jobs.FakeJob(steps=1, prompt="a, b"), lambda e: None, lambda: False)
    assert len(end.paths) == 1
    assert read_record(end.paths[0])["prompt"] == "a, b"
