"""The engine in its own process: jobs and events cross the pipe, cancel always works, quit never hangs, and
an engine that dies takes only its running job with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from aigc_desktop.core import jobs
from aigc_desktop.core.queue import JobQueue, JobState
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.ui.engine_client import EngineClient, engine_processes

FAKE = {"fake": "aigc_desktop.engines.base:FakeEngine"}
MISBEHAVING = {"fake": "aigc_desktop.testing.host_engines:MisbehavingEngine"}
TERMINAL = (jobs.Finished, jobs.Cancelled, jobs.Failed)


class Recorder:
    """Every event of a queue, with the states of all jobs at the moment each terminal event arrived."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self.events: list[jobs.JobEvent] = []
        self.states_at_end: dict[str, dict[str, JobState]] = {}
        self.cond = threading.Condition()
        queue.subscribe(self)

    def __call__(self, event) -> None:
        with self.cond:
            self.events.append(event)
            if isinstance(event, TERMINAL):
                self.states_at_end[event.job_id] = {e.spec.id: e.state for e in self.queue.entries()}
            self.cond.notify_all()

    def of(self, job_id, kind=object):
        with self.cond:
            return [e for e in self.events if e.job_id == job_id and isinstance(e, kind)]

    def wait_for(self, job_id, kind=TERMINAL, timeout=20.0):
        with self.cond:
            assert self.cond.wait_for(lambda: any(e.job_id == job_id and isinstance(e, kind) for e in self.events),
                                      timeout), f"no {kind} for {job_id}: {self.events}"
            return next(e for e in self.events if e.job_id == job_id and isinstance(e, kind))


@pytest.fixture
def engine():
    """A started client on its own queue; stopped (and checked gone) after the test."""
    clients = []

    def make(engines=FAKE, options=None, queue=None):
        queue = queue or JobQueue()
        client = EngineClient(queue, options or EngineOptions(device="cpu", threads=1), engines=engines,
                              preload=False)
        client.start()
        clients.append(client)
        return client, queue, Recorder(queue)

    yield make
    for client in clients:
        assert client.stop()
    assert not engine_processes()
    assert not [t for t in threading.enumerate() if t.name.startswith("aigc-engine")]


def test_a_job_runs_in_the_engine_process_and_the_gui_never_imports_torch(tmp_path):
    """In a fresh interpreter (pytest itself has torch loaded): build the client, run a fake job, quit."""
    script = textwrap.dedent("""
        import os, sys, threading, time
        from aigc_desktop.core import jobs
        from aigc_desktop.core.queue import JobQueue
        from aigc_desktop.ui.engine_client import EngineClient

        q = JobQueue()
        events = []
        done = threading.Event()
        q.subscribe(lambda e: (events.append(e), isinstance(e, jobs.Finished) and done.set()))
        client = EngineClient(q, engines={"fake": "aigc_desktop.engines.base:FakeEngine"}, preload=False)
        client.start()
        q.submit(jobs.FakeJob(steps=3, width=32, height=16))
        assert done.wait(30), events
        pid = client.engine_pid
        assert pid and pid != os.getpid()
        finished = events[-1]
        assert finished.images[0].size == (32, 16) and finished.images[0].mode == "RGB"
        previews = [e for e in events if isinstance(e, jobs.Preview)]
        # a preview that a newer one overtook in the pipe is dropped (a busy machine): the newest always comes
        assert 1 <= len(previews) <= 3 and previews[-1].step == 3 and previews[-1].image.size == (32, 16)
        t = time.monotonic()
        assert client.stop() and time.monotonic() - t < 3
        assert not client.isRunning()
        assert "torch" not in sys.modules, "the window's process imported torch"
        assert threading.active_count() == 1, threading.enumerate()
        print("OK")
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr[-3000:]


def test_images_cross_as_raw_pixels_and_come_back_equal():
    from PIL import Image

    from aigc_desktop.engines import host

    rgba = Image.new("RGBA", (5, 3), (10, 20, 30, 40))
    palette = Image.new("P", (4, 4), 3)
    event = jobs.Finished(job_id="j", images=(rgba, palette), records=({"a": 1}, {}))
    packed = host.encode_event(event)
    assert all(isinstance(i, host.RawImage) for i in packed.images) and packed.records == event.records
    back = host.decode_event(packed)
    assert back.images[0].tobytes() == rgba.tobytes() and back.images[0].mode == "RGBA"
    assert back.images[1].convert("RGBA").tobytes() == palette.convert("RGBA").tobytes()
    assert host.decode_event(host.encode_event(jobs.Progress(job_id="j", step=1, total=2, elapsed=0.1, eta=None))) \
        == jobs.Progress(job_id="j", step=1, total=2, elapsed=0.1, eta=None)


def test_killing_the_engine_mid_job_fails_that_job_only_and_the_engine_restarts(engine):
    client, q, rec = engine()
    document = {"layers": ["background", "sketch"], "dirty": True}  # what the window holds: never touched
    snapshot = repr(document)
    running = jobs.FakeJob(steps=1000, step_seconds=0.01)
    queued = jobs.FakeJob(steps=2, prompt="after the crash")
    q.submit(running)
    q.submit(queued)
    rec.wait_for(running.id, jobs.Progress)
    first_pid = client.engine_pid
    os.kill(first_pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    failed = rec.wait_for(running.id)
    assert isinstance(failed, jobs.Failed) and not isinstance(failed, jobs.SaveFailed)
    assert failed.message.startswith("The engine stopped: killed by SIGKILL (often: the system ran out of memory)")
    assert "\n" not in failed.message
    assert rec.states_at_end[running.id][queued.id] is JobState.QUEUED  # still waiting when the crash was told
    assert isinstance(rec.wait_for(queued.id), jobs.Finished)  # ran on the restarted engine
    assert client.engine_pid not in (None, first_pid)
    assert q.state(running.id) is JobState.FAILED and q.state(queued.id) is JobState.FINISHED
    assert repr(document) == snapshot


@pytest.mark.parametrize("how, reason", [("exit", "it exited with code 3"),
                                         ("segfault", "killed by SIGSEGV (a crash in native code")])
def test_an_engine_that_exits_or_crashes_fails_the_job_with_one_line(qtbot, engine, how, reason):
    messages = []
    client, q, rec = engine(MISBEHAVING)
    client.engine_message.connect(lambda text: messages.append(text))  # queued to the GUI thread
    bad, good = jobs.FakeJob(steps=5, prompt=how), jobs.FakeJob(steps=2)
    q.submit(bad)
    q.submit(good)
    failed = rec.wait_for(bad.id)
    assert isinstance(failed, jobs.Failed) and failed.message.startswith(f"The engine stopped: {reason}")
    assert rec.states_at_end[bad.id][good.id] is JobState.QUEUED
    assert isinstance(rec.wait_for(good.id), jobs.Finished)
    qtbot.waitUntil(lambda: messages == [failed.message], timeout=3000)


def test_cancel_of_a_step_that_never_ends_kills_and_restarts_the_engine(engine):
    client, q, rec = engine(MISBEHAVING)
    stuck, after = jobs.FakeJob(steps=5, prompt="hang"), jobs.FakeJob(steps=2)
    q.submit(stuck)
    q.submit(after)
    rec.wait_for(stuck.id, jobs.Progress)
    first_pid = client.engine_pid
    t = time.monotonic()
    assert q.cancel(stuck.id)
    end = rec.wait_for(stuck.id, timeout=10)
    took = time.monotonic() - t
    assert isinstance(end, jobs.Cancelled)
    assert 2.9 < took < 4.0, took  # the kill comes 3 s after cancel (the engine thread checks every 50 ms)
    status = rec.wait_for(stuck.id, jobs.Status)
    assert status.text.startswith("The engine did not stop within 3 s of Cancel and was restarted")
    assert isinstance(rec.wait_for(after.id), jobs.Finished)
    assert client.engine_pid != first_pid


def test_cancel_of_a_normal_job_stops_within_a_step(engine):
    client, q, rec = engine()
    spec = jobs.FakeJob(steps=500, step_seconds=0.02)
    q.submit(spec)
    rec.wait_for(spec.id, jobs.Progress)
    pid = client.engine_pid
    q.cancel(spec.id)
    assert isinstance(rec.wait_for(spec.id), jobs.Cancelled)
    assert max(p.step for p in rec.of(spec.id, jobs.Progress)) < 25
    assert client.engine_pid == pid  # no restart needed


def test_quit_while_a_step_hangs_returns_within_3_s_and_leaves_no_process():
    q = JobQueue()
    rec = Recorder(q)
    client = EngineClient(q, EngineOptions(device="cpu"), engines=MISBEHAVING, preload=False)
    client.start()
    spec = jobs.FakeJob(prompt="hang")
    q.submit(spec)
    rec.wait_for(spec.id, jobs.Progress)
    pid = client.engine_pid
    t = time.monotonic()
    assert client.stop()
    assert time.monotonic() - t < 3.0
    assert not client.isRunning() and not engine_processes()
    assert isinstance(rec.of(spec.id, TERMINAL)[0], jobs.Cancelled)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped


def test_unsaved_images_reach_the_window_as_save_failed(engine, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    client, q, rec = engine(options=EngineOptions(device="cpu", outputs_dir=str(blocker / "outputs")))
    spec = jobs.FakeJob(steps=1, width=24, height=24)
    q.submit(spec)
    end = rec.wait_for(spec.id)
    assert isinstance(end, jobs.SaveFailed) and end.message.startswith("Not saved: ")
    assert end.images[0].size == (24, 24) and end.images[0].getpixel((0, 0)) is not None  # a real PIL image
    assert q.state(spec.id) is JobState.FAILED


def test_two_queues_of_one_device_share_one_engine_process(engine):
    main, q1, rec1 = engine()
    live, q2, rec2 = engine()
    assert main.engine_pid == live.engine_pid
    slow, quick = jobs.FakeJob(steps=100, step_seconds=0.01), jobs.FakeJob(steps=1)
    q1.submit(slow)
    rec1.wait_for(slow.id, jobs.Progress)
    q2.submit(quick)
    rec2.wait_for(quick.id)  # the live lane does not wait behind the main queue's job
    assert q1.state(slow.id) is JobState.RUNNING
    assert live.stop()
    assert isinstance(rec1.wait_for(slow.id), jobs.Finished) and main.isRunning()


def test_twenty_jobs_with_previews_leave_memory_threads_and_handles_settled(engine):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("reads /proc (Linux)")
    client, q, rec = engine()

    def rss(pid="self") -> int:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))

    def run(n):
        for _ in range(n):
            spec = jobs.FakeJob(steps=4, step_seconds=0.0, width=128, height=128)
            q.submit(spec)
            assert isinstance(rec.wait_for(spec.id), jobs.Finished)
        q.clear_done()
        with rec.cond:
            rec.events.clear()

    run(5)
    base = (rss(), rss(client.engine_pid), len(os.listdir("/proc/self/fd")), threading.active_count())
    run(20)
    now = (rss(), rss(client.engine_pid), len(os.listdir("/proc/self/fd")), threading.active_count())
    # 20 jobs x 4 previews of 48 KiB cross the pipe: a leak of them would be 4 MB; allow 5% + 2 MB of noise
    assert now[0] <= base[0] * 1.05 + 2 ** 21, (base, now)
    assert now[1] <= base[1] * 1.05 + 2 ** 21, (base, now)
    assert now[2:] == base[2:]  # no file handles, no threads left behind


def test_shutdown_stops_every_lane_within_3_s_even_with_a_hung_step():
    from aigc_desktop.ui import engine_client

    queues = [JobQueue(), JobQueue()]
    recs = [Recorder(q) for q in queues]
    clients = [EngineClient(q, EngineOptions(device="cpu"), engines=MISBEHAVING, preload=False) for q in queues]
    for c in clients:
        c.start()
    hung, slow = jobs.FakeJob(prompt="hang"), jobs.FakeJob(steps=10000, step_seconds=0.01)
    queues[0].submit(hung)
    queues[1].submit(slow)
    recs[0].wait_for(hung.id, jobs.Progress)
    recs[1].wait_for(slow.id, jobs.Progress)
    t = time.monotonic()
    assert engine_client.shutdown()
    assert time.monotonic() - t < 3.0
    assert not any(c.isRunning() for c in clients) and not engine_processes()
    assert all(c.stop() for c in clients)  # already stopped: returns at once
    assert isinstance(recs[0].of(hung.id, TERMINAL)[0], jobs.Cancelled)
    assert isinstance(recs[1].of(slow.id, TERMINAL)[0], jobs.Cancelled)  # it stopped within a step


def test_the_queue_view_model_gets_the_same_signals_through_the_process(qtbot):
    """The window's path: JobQueue.report in the engine thread -> QueueViewModel.on_event in the GUI thread."""
    from aigc_desktop.ui.viewmodels.queue import QueueViewModel

    vm = QueueViewModel()
    client = EngineClient(vm.queue, EngineOptions(device="cpu"), engines=FAKE, preload=False)
    client.start()
    previews, finished = [], []
    vm.preview_changed.connect(lambda job_id, image: previews.append(image.size))
    vm.job_finished.connect(lambda job_id, event: finished.append(event))
    vm.submit(jobs.FakeJob(steps=3, width=40, height=20))
    qtbot.waitUntil(lambda: bool(finished), timeout=20000)
    assert 1 <= len(previews) <= 3 and set(previews) == {(40, 20)} and finished[0].images[0].size == (40, 20)
    assert client.stop()


def test_a_backlog_of_previews_collapses_to_the_newest_and_nothing_else_is_dropped():
    from aigc_desktop.ui.engine_client import _newest_previews

    def preview(step, index=0, job="a"):
        return ("event", "lane", jobs.Preview(job_id=job, step=step, image=None, index=index))

    progress = ("event", "lane", jobs.Progress(job_id="a", step=1, total=3, elapsed=0.1, eta=None))
    batch = [preview(1), progress, preview(1, index=1), preview(2), preview(1, job="b"), preview(3), preview(4),
             ("log", 20, "x", "text", "")]
    kept = _newest_previews(batch)
    assert kept == [progress, preview(1, index=1), preview(1, job="b"), preview(4), batch[-1]]
    few = [preview(1), progress, preview(2), preview(3)]  # a short delay is not a backlog: all are shown
    assert _newest_previews(few) == few


@pytest.mark.slow  # the engine process imports torch and diffusers: 10-25 s on a busy 2-core machine
def test_a_real_diffusion_job_through_the_engine_process_equals_the_same_job_in_process(engine, tiny_sd_path):
    """The tiny SD in the engine process (torch there, offline flags, raw pixels back) gives exactly the image
    the same runner code makes in this process (same machine, same thread count: the same computation)."""
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.runner import Runner

    options = EngineOptions(device="cpu", threads=1)
    client, q, rec = engine(engines=None, options=options)
    spec = jobs.DiffusionJob(model=jobs.ModelRef(str(tiny_sd_path)),
                             params=GenerationParams(prompt="a red apple", seed=3, steps=3, width=64, height=64))
    q.submit(spec)
    remote = rec.wait_for(spec.id, timeout=120)
    assert isinstance(remote, jobs.Finished), remote
    assert len(rec.of(spec.id, jobs.Preview)) >= 1 and rec.of(spec.id, jobs.Status)
    local = Runner(options).run(spec, lambda e: None, lambda: False)
    assert remote.images[0].tobytes() == local.images[0].tobytes()
    assert remote.records[0]["seed"] == 3 and remote.records[0] == local.records[0]


def test_the_client_knows_the_device_and_a_measured_step(engine):
    client, q, rec = engine()
    spec = jobs.FakeJob(steps=6, step_seconds=0.02)
    q.submit(spec)
    assert isinstance(rec.wait_for(spec.id), jobs.Finished)
    info = client.device_info
    assert info.kind == "cpu" and info.cores >= 1 and info.memory_bytes > 0
    stats = client.engine_stats()
    assert stats["pid"] == client.engine_pid and stats["threads"] >= 2 and stats["cuda_allocated"] is None
    if os.path.isdir("/proc/self/fd"):
        assert 5 << 20 < stats["rss"] < 1 << 30 and stats["files"] > 2
    measure = client.measured_step("fake")
    # five step intervals of >= 20 ms of sleep each; the upper bound leaves room for a busy machine
    assert measure.spec.id == spec.id and 0.02 <= measure.seconds < 0.5


def test_the_transport_follows_the_engines_given_and_the_environment(monkeypatch):
    from aigc_desktop.engines.base import FakeEngine

    q = JobQueue()
    assert EngineClient(q, engines={"fake": FakeEngine()}).transport == "thread"  # instances stay here
    assert EngineClient(q, engines=FAKE).transport == "process"
    monkeypatch.setenv("AIGC_ENGINE_TRANSPORT", "thread")
    assert EngineClient(q, engines=FAKE).transport == "thread"
    with pytest.raises(ValueError):
        EngineClient(q, transport="carrier pigeon")


def test_the_thread_transport_runs_the_same_jobs(qtbot):
    q = JobQueue()
    rec = Recorder(q)
    client = EngineClient(q, EngineOptions(device="cpu"), engines=FAKE, preload=False, transport="thread")
    client.start()
    spec = jobs.FakeJob(steps=2)
    q.submit(spec)
    assert isinstance(rec.wait_for(spec.id), jobs.Finished) and client.engine_pid is None
    assert client.stop() and not client.isRunning()


def test_an_engine_that_cannot_start_fails_the_waiting_jobs_instead_of_looping(engine, monkeypatch):
    from aigc_desktop.ui import engine_client

    monkeypatch.setattr(engine_client, "_CHILD_MAIN", "import sys; sys.exit(5)")  # a broken install
    client, q, rec = engine()
    spec = jobs.FakeJob(steps=1)
    q.submit(spec)
    end = rec.wait_for(spec.id, timeout=10)  # three tries: at once, after 0.5 s, after 1 s
    assert isinstance(end, jobs.Failed)
    assert end.message.startswith("The engine cannot start: it exited with code 5")
    process = engine_processes()[0]
    restarts = process.restarts
    time.sleep(1.0)
    assert process.restarts == restarts  # dormant: no restarts while nothing waits
    monkeypatch.setattr(engine_client, "_CHILD_MAIN", "from aigc_desktop.engines.host import main_stdio; main_stdio()")
    again = jobs.FakeJob(steps=1)
    q.submit(again)  # the install was fixed: a new job starts a working engine
    assert isinstance(rec.wait_for(again.id), jobs.Finished)
