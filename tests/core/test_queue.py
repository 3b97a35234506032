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
    # A user error is one line: no traceback in the event (nor in the log)
    assert failed.message == "Model file is corrupted" and failed.details == ""
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
    assert "Traceback" not in end.details  # the user's size or batch, not a bug
    runner._engines["fake"] = FakeEngine()
    assert isinstance(runner.run(jobs.FakeJob(steps=1), events.append, lambda: False), jobs.Finished)


def test_runner_saves_outputs_before_reporting(tmp_path):
    from aigc_desktop.core.metadata import read_record
    from aigc_desktop.core.runner import EngineOptions

    runner = Runner(EngineOptions(outputs_dir=str(tmp_path / "out")))
    end = runner.run(jobs.FakeJob(steps=1, prompt="a, b"), lambda e: None, lambda: False)
    assert len(end.paths) == 1
    assert read_record(end.paths[0])["prompt"] == "a, b"


def test_a_bug_keeps_its_traceback_in_the_log_a_user_error_does_not(caplog):
    class Buggy:
        def run(self, spec, emit, cancelled):
            return {}["missing"]

    class Refusing:
        def run(self, spec, emit, cancelled):
            raise UserError("This model needs a GPU")

    from aigc_desktop.core.errors import UserError

    bug = Runner(engines={"fake": Buggy()}).run(jobs.FakeJob(), lambda e: None, lambda: False)
    assert bug.message == "KeyError: 'missing'" and "Traceback" in bug.details
    assert any(r.exc_info for r in caplog.records if "KeyError" in r.getMessage())
    caplog.clear()
    user = Runner(engines={"fake": Refusing()}).run(jobs.FakeJob(), lambda e: None, lambda: False)
    assert user.message == "This model needs a GPU" and user.details == ""
    assert [r.getMessage() for r in caplog.records] == [f"Job {user.job_id} failed: This model needs a GPU"]
    assert not any(r.exc_info for r in caplog.records)


def test_images_that_cannot_be_saved_are_never_finished(tmp_path):
    """An unwritable outputs folder: the job ends as SaveFailed (a Failed) with the reason and the images."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outputs folder should be")
    from aigc_desktop.core.runner import EngineOptions

    q = JobQueue()
    rec = Recorder()
    q.subscribe(rec)
    runner = Runner(EngineOptions(outputs_dir=str(blocker / "out")))
    spec = jobs.FakeJob(steps=1, images=2)
    q.submit(spec)
    entry = q.take(0.1)
    end = runner.run(entry.spec, q.report, entry.cancel_event.is_set)
    assert isinstance(end, jobs.SaveFailed) and isinstance(end, jobs.Failed)
    assert not rec.of(spec.id, jobs.Finished)
    assert end.message.startswith("Not saved: ") and "not-a-folder" in end.message
    assert len(end.images) == 2 and end.images[0].size == (64, 64) and end.paths == ()
    assert end.records[1]["seed"] == 1
    assert q.state(spec.id) is JobState.FAILED and q.entries()[0].message == end.message


def test_a_save_that_fails_halfway_says_which_were_saved(tmp_path, monkeypatch):
    from aigc_desktop.core import outputs
    from aigc_desktop.core.runner import EngineOptions

    real = outputs.save_to_folder
    calls = []

    def second_fails(images, records, folder):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(images, records, folder)

    monkeypatch.setattr(outputs, "save_to_folder", second_fails)
    end = Runner(EngineOptions(outputs_dir=str(tmp_path / "out"))).run(jobs.FakeJob(steps=1, images=2),
                                                                      lambda e: None, lambda: False)
    assert isinstance(end, jobs.SaveFailed) and len(end.paths) == 1 and len(end.images) == 2
    assert "No space left on device" in end.message and "(1 of 2 saved)" in end.message


def test_cancelling_a_running_job_wakes_the_worker_side():
    q = JobQueue()
    woken = []
    q.add_waker(lambda: woken.append(1))
    spec = jobs.FakeJob()
    q.submit(spec)
    assert len(woken) == 1
    q.take(0)
    assert q.cancel(spec.id) and len(woken) == 2
    q.close()
    assert len(woken) == 3


def test_current_job_is_the_running_one_else_the_next_to_run():
    """Esc right after Generate cancels that job even before the worker has taken it."""
    q = JobQueue()
    assert q.current() is None
    first, second = jobs.FakeJob(steps=200), jobs.FakeJob(steps=200)
    q.submit(first)
    q.submit(second)
    assert q.current().spec.id == first.id  # nothing running yet: the next to run
    assert q.cancel(q.current().spec.id)
    assert q.state(first.id) is JobState.CANCELLED
    assert q.current().spec.id == second.id
    taken = q.take(timeout=1)
    assert taken.spec.id == second.id and q.current() is taken
