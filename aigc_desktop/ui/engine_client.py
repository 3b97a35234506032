"""The window's side of the engine process (aigc_desktop/engines/host.py): torch never loads in the GUI.

`EngineClient` has the surface of the old worker thread (`Worker(queue, options, engines, preload)`,
`start()`, `stop()`, `isRunning()`), so the window swaps one for the other. Behind it:

- one engine process per device (a subprocess running engines/host.py), shared by every client of that device (the
  main queue and the StyleGAN live view each get a lane: a thread of their own in the engine);
- one plain Python thread per engine process, here, that hands queued jobs over, reads the engine's events
  and reports them with `JobQueue.report`, exactly as the worker thread did (the view-models do not change);
- cancel goes over at once; a step that has not ended `KILL_AFTER_S` after cancel (or quit) gets the
  engine process killed and started again, and the user is told in one line;
- an engine that dies (segfault, out-of-memory kill, os._exit) fails the running job with "The engine
  stopped: …", leaves queued jobs queued, and is started again; the window and its document never notice;
- jobs go to an engine only once it said it is up; one that dies before that (a broken install) is retried
  after 0.5 s, then 1 s, then the waiting jobs fail with "The engine cannot start: …" (no restart loop).

`stop()` returns within 3 s in every case. With engine instances in `engines` (UI tests with the fake
engine) the client runs them in a worker thread as before (transport "thread").
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Any, Callable

import aigc_desktop

from PySide6.QtCore import QObject, Signal

from aigc_desktop.core import jobs
from aigc_desktop.core.queue import JobQueue, QueueEntry
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines import host

log = logging.getLogger(__name__)

KILL_AFTER_S = 3.0  # a step still running this long after Cancel gets the engine killed
STOP_BUDGET_S = 3.0  # stop() (quit) returns within this, whatever the engine does
_POLL_S = 0.05  # the engine thread's longest sleep (cancel deadlines are checked this often)

_TERMINAL = (jobs.Finished, jobs.Cancelled, jobs.Failed)
_CHILD_MAIN = "from aigc_desktop.engines.host import main_stdio; main_stdio()"


@dataclass(frozen=True)
class StepMeasure:
    """A step time measured on a finished job (for core/estimate.py), with the spec it was measured on."""

    seconds: float
    spec: Any


def describe_exit(code: int | None) -> str:
    """Why a process ended, in words ("killed by SIGKILL (often: out of memory)")."""
    if code is None:
        return "it did not answer"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {"SIGKILL": " (often: the system ran out of memory)",
                "SIGSEGV": " (a crash in native code, often a driver)",
                "SIGABRT": " (a native library aborted)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"it exited with code {code}"


class _Lane:
    """One JobQueue served by the engine process. Fields other than `stopping`/`done` belong to the engine
    thread."""

    def __init__(self, queue: JobQueue, options: EngineOptions, engines: dict | None, preload: bool,
                 on_message: Callable[[str], None]) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.queue = queue
        self.options = options
        self.engines = engines
        self.preload = preload
        self.on_message = on_message
        self.entry: QueueEntry | None = None
        self.cancel_sent_at: float | None = None
        self.registered = False  # the current engine process knows this lane
        self.stopping = False
        self.done = threading.Event()
        self.steps: list[tuple[int, float]] = []  # (step, elapsed) of the first and latest Progress


class EngineProcess:
    """One engine child process and the thread that talks to it."""

    def __init__(self, device: str, kill_after: float = KILL_AFTER_S) -> None:
        self.device = device
        self.kill_after = kill_after
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._wake_r, self._wake_w = Pipe(duplex=False)
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None  # engine -> us
        self._writer: Connection | None = None  # us -> engine
        self.pid: int | None = None
        self.device_info = None  # core.estimate.DeviceInfo once the engine reported it
        self.step_times: dict[str, StepMeasure] = {}  # by job kind
        self.restarts = 0
        self.closed = False
        self._killed_reason: str | None = None
        self._retired: list[_Lane] = []
        self._ready = False  # the current engine process said it is up
        self._failed_starts = 0  # engine processes in a row that died before they were up
        self._start_error = ""
        self._dormant = False
        self._write_lock = threading.Lock()  # the engine thread and stats() both write
        self._stats: dict | None = None
        self._stats_ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"aigc-engine-{device}", daemon=True)

    # -- any thread
    def add_lane(self, lane: _Lane) -> bool:
        with self._lock:
            if self.closed:
                return False
            self._lanes[lane.id] = lane
        lane.queue.add_waker(self.wake)
        self.wake()
        return True

    def wake(self) -> None:
        with self._wake_lock:
            if self._wake_pending or self.closed:
                return
            self._wake_pending = True
            try:
                self._wake_w.send_bytes(b"!")
            except OSError:
                pass

    def remove_lane(self, lane: _Lane, budget: float = STOP_BUDGET_S) -> bool:
        """Stop serving `lane`: its running job is cancelled; if its step does not end in time the engine is
        killed. Returns within `budget` seconds; True when the lane (and, if it was the last, the engine
        process and its thread) is gone."""
        deadline = time.monotonic() + budget
        lane.stopping = True
        self.wake()
        if not lane.done.wait(max(0.0, budget - 0.6)):
            proc = self.proc
            if proc is not None:
                self._killed_reason = "it was stopped while a step was running"
                log.warning("Engine (%s): a step did not end after cancel; killing the engine process", self.device)
                proc.kill()
            lane.done.wait(max(0.05, deadline - time.monotonic() - 0.05))
        if self.closed:
            self.thread.join(max(0.0, deadline - time.monotonic()))
        return lane.done.is_set()

    def stats(self, timeout: float = 2.0) -> dict | None:
        """The engine process's memory, threads, open files and CUDA allocated bytes (benchmarks, About box);
        None when it does not answer in time."""
        writer = self._writer
        if writer is None or not self._ready:
            return None
        self._stats_ready.clear()
        try:
            with self._write_lock:
                writer.send(("stats",))
        except (OSError, ValueError):
            return None
        return self._stats if self._stats_ready.wait(timeout) else None

    def lanes(self) -> list[_Lane]:
        with self._lock:
            return list(self._lanes.values())

    def lane_running(self, lane: _Lane) -> bool:
        return not lane.done.is_set() and self.thread.is_alive()

    def start(self) -> None:
        self.thread.start()

    # -- the engine thread
    def _loop(self) -> None:
        try:
            while True:
                with self._lock:
                    lanes = list(self._lanes.values())
                    if not lanes:
                        self.closed = True
                        break
                if self.proc is None and any(not lane.stopping for lane in lanes) \
                        and (not self._dormant or any(lane.queue.pending_count() for lane in lanes)):
                    if self._may_start(lanes):
                        self._start_child()
                for lane in lanes:
                    self._service(lane)
                if self.proc is None:  # no engine (stopping, or dormant after failed starts): wait for news
                    self._wait_wake(_POLL_S)
                    continue
                ready = wait_any([self.conn, self._wake_r], timeout=_POLL_S)
                if self._wake_r in ready:
                    self._drain_wake()
                if self.conn in ready:
                    self._read()
                elif self.proc.poll() is not None:  # gone, though something else still holds its stdout
                    self._child_died()
        except Exception:  # noqa: BLE001 - a bug here must not leave jobs "running" forever
            log.exception("Engine client (%s) stopped on an error", self.device)
            with self._lock:
                self.closed = True
                lanes = list(self._lanes.values())
            for lane in lanes:
                if lane.entry is not None:
                    lane.queue.report(jobs.Failed(job_id=lane.entry.spec.id,
                                                  message="The engine connection failed (see the log)"))
        finally:
            self._shutdown_child()
            with self._lock:
                lanes = list(self._lanes.values()) + self._retired
                self._lanes.clear()
            for lane in lanes:
                lane.queue.remove_waker(self.wake)
                lane.done.set()
            self._wake_r.close()
            self._wake_w.close()

    def _start_child(self) -> None:
        env = dict(os.environ, AIGC_ENGINE_LOG_LEVEL=str(logging.getLogger().getEffectiveLevel()))
        package_root = str(Path(aigc_desktop.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True)
        # Our own copies of the pipe ends, as multiprocessing connections (length-prefixed pickles).
        writing = Connection(os.dup(proc.stdin.fileno()), readable=False)
        reading = Connection(os.dup(proc.stdout.fileno()), writable=False)
        proc.stdin.close()
        proc.stdout.close()
        self.proc, self.conn, self._writer = proc, reading, writing
        self.pid = proc.pid
        self._ready, self._dormant = False, False
        log.info("Engine process %s started for device %s", proc.pid, self.device)

    def _may_start(self, lanes: list[_Lane]) -> bool:
        """After engine processes that died before they were up (a broken install): wait longer each time
        (0.5 s, 1 s, 2 s ... 10 s) instead of restarting in a tight loop, and after three, fail the waiting jobs
        with the reason rather than leaving them queued forever. False: not now (the loop comes back)."""
        if not self._failed_starts:
            return True
        if self._failed_starts >= 3:
            text = f"The engine cannot start: {self._start_error} (details in the log and the terminal)"
            log.error("%s", text)
            for lane in lanes:
                while (entry := lane.queue.take(timeout=0)) is not None:
                    lane.queue.report(jobs.Failed(job_id=entry.spec.id, message=text))
            self._failed_starts, self._dormant = 0, True  # try again when a job is submitted
            return False
        self._wait_wake(min(10.0, 0.5 * 2 ** (self._failed_starts - 1)))  # a stop() wakes us early
        return not all(lane.stopping for lane in self.lanes())

    def _wait_wake(self, timeout: float) -> None:
        if wait_any([self._wake_r], timeout=timeout):
            self._drain_wake()

    def _drain_wake(self) -> None:
        while self._wake_r.poll():
            self._wake_r.recv_bytes()
        self._wake_pending = False

    def _send(self, message: tuple) -> bool:
        try:
            with self._write_lock:
                self._writer.send(message)
            return True
        except (OSError, EOFError, ValueError, AttributeError):  # AttributeError: the pipe is already gone
            self._child_died()
            return False

    def _service(self, lane: _Lane) -> None:
        if lane.entry is None and (lane.stopping or lane.queue.closed):
            with self._lock:
                self._lanes.pop(lane.id, None)
                last = not self._lanes
            if lane.registered and self.proc is not None:
                self._send(("drop", lane.id))
            lane.queue.remove_waker(self.wake)
            if last:  # the last lane is done once the engine process is down (in _loop's finally)
                self._retired.append(lane)
            else:
                lane.done.set()
            return
        if self.proc is None:
            return
        if not lane.registered:
            if not self._send(("lane", lane.id, lane.options, lane.engines, lane.preload)):
                return
            lane.registered = True
        if lane.entry is None and not lane.stopping and self._ready:  # a job goes to an engine that is up
            entry = lane.queue.take(timeout=0)
            if entry is not None:
                lane.entry, lane.cancel_sent_at, lane.steps = entry, None, []
                try:
                    if not self._send(("run", lane.id, entry.spec)):
                        return
                except Exception as exc:  # noqa: BLE001 - a spec that cannot be pickled fails alone
                    log.error("Job %s cannot be sent to the engine", entry.spec.id, exc_info=exc)
                    lane.entry = None
                    lane.queue.report(jobs.Failed(job_id=entry.spec.id,
                                                  message=f"The job cannot be sent to the engine: {exc}"))
                    return
        entry = lane.entry
        if entry is None:
            return
        if lane.cancel_sent_at is None:
            if entry.cancel_event.is_set() or lane.stopping:
                lane.cancel_sent_at = time.monotonic()
                self._send(("cancel", lane.id, entry.spec.id))
        elif time.monotonic() - lane.cancel_sent_at > self.kill_after:
            self._kill(f"a step did not end {self.kill_after:g} s after Cancel")

    def _read(self) -> None:
        batch: list[tuple] = []
        died = False
        try:
            while self.conn.poll() and len(batch) < 256:
                frame = self.conn.recv_bytes()  # the frame first: a bad payload cannot desync the stream
                try:
                    batch.append(pickle.loads(frame))
                except Exception:  # noqa: BLE001 - one undecodable message must not stop the engine thread
                    log.exception("Engine (%s): a message could not be read", self.device)
        except (EOFError, OSError):
            died = True
        for message in _newest_previews(batch):
            try:
                self._handle(message)
            except Exception:  # noqa: BLE001 - nor one that cannot be handled
                log.exception("Engine (%s): a message could not be handled", self.device)
        if died:
            self._child_died()

    def _handle(self, message: tuple) -> None:
        op = message[0]
        if op == "event":
            lane = self._lanes.get(message[1])
            if lane is None:
                return
            event = host.decode_event(message[2])
            self._track(lane, event)
            lane.queue.report(event)
            if isinstance(event, _TERMINAL) and lane.entry is not None and event.job_id == lane.entry.spec.id:
                lane.entry, lane.cancel_sent_at = None, None
        elif op == "log":
            _, level, name, text, exc_text = message
            logger = logging.getLogger(name)
            if logger.isEnabledFor(level):
                logger.handle(logging.makeLogRecord({"name": name, "levelno": level, "msg": text,
                                                     "levelname": logging.getLevelName(level),
                                                     "exc_text": exc_text or None}))
        elif op == "device":
            self.device_info = message[1]
        elif op == "stats":
            self._stats = message[1]
            self._stats_ready.set()
        elif op == "ready":
            self.pid = message[1]
            self._ready, self._failed_starts = True, 0

    def _track(self, lane: _Lane, event: Any) -> None:
        """Measure the step time of finished jobs (first to last Progress: loading and decoding excluded)."""
        if isinstance(event, jobs.Progress):
            lane.steps = [lane.steps[0], (event.step, event.elapsed)] if lane.steps else [(event.step, event.elapsed)]
        elif isinstance(event, jobs.Finished) and lane.entry is not None and len(lane.steps) == 2:
            (s0, t0), (s1, t1) = lane.steps
            if s1 > s0:
                self.step_times[lane.entry.spec.kind] = StepMeasure((t1 - t0) / (s1 - s0), lane.entry.spec)

    def _kill(self, reason: str) -> None:
        log.warning("Engine (%s): %s; killing the engine process", self.device, reason)
        self._killed_reason = reason
        self.proc.kill()
        self._child_died()

    def _child_died(self) -> None:
        """The engine process is gone (or was killed): end its jobs honestly, start a fresh one later."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:  # EOF without an exit: kill it, we cannot talk to it anyway
            proc.kill()
            proc.wait(2.0)
        killed_by_us, self._killed_reason = self._killed_reason, None
        reason = killed_by_us or describe_exit(proc.returncode)
        self._close_pipes()
        self.restarts += 1
        if not self._ready and not killed_by_us:
            self._failed_starts += 1
            self._start_error = reason
        log.warning("Engine process %s (%s) stopped: %s", proc.pid, self.device, reason)
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.registered = False
            entry, lane.entry = lane.entry, None
            if entry is None:
                continue
            job_id = entry.spec.id
            if killed_by_us and lane.cancel_sent_at is not None:
                text = (f"The engine did not stop within {self.kill_after:g} s of Cancel and was restarted; "
                        "the next job loads its model again")
                lane.queue.report(jobs.Cancelled(job_id=job_id))
            else:
                text = f"The engine stopped: {reason}; it was restarted, the next job loads its model again"
                lane.queue.report(jobs.Failed(job_id=job_id, message=text))
            lane.queue.report(jobs.Status(job_id=job_id, text=text))
            lane.cancel_sent_at = None
            try:
                lane.on_message(text)
            except RuntimeError:  # the client's Qt object is already gone
                pass

    def _shutdown_child(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            self._writer.send(("quit",))
        except (OSError, ValueError):
            pass
        try:
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                log.error("Engine process %s did not end after SIGKILL", proc.pid)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for conn in (self.conn, self._writer):
            if conn is not None:
                conn.close()
        self.conn = self._writer = None


BACKLOG_PREVIEWS = 3  # more previews of one image than this in one read: the window is behind


def _newest_previews(batch: list[tuple]) -> list[tuple]:
    """When the window has fallen behind (more than BACKLOG_PREVIEWS previews of the same image waiting in the
    pipe), keep only the newest of them: it gets the latest picture, not a backlog of stale ones. Nothing but
    superseded previews is ever dropped."""
    seen: dict[tuple, list[int]] = {}
    for i, message in enumerate(batch):
        if message[0] == "event" and isinstance(message[2], jobs.Preview):
            seen.setdefault((message[1], message[2].job_id, message[2].index), []).append(i)
    drop = {i for indices in seen.values() if len(indices) > BACKLOG_PREVIEWS for i in indices[:-1]}
    return [m for i, m in enumerate(batch) if i not in drop] if drop else batch


_registry: dict[str, EngineProcess] = {}
_registry_lock = threading.Lock()


def _attach(lane: _Lane, kill_after: float) -> EngineProcess:
    """The engine process of the lane's device (started when none is running), with the lane added."""
    device = lane.options.device or "auto"
    with _registry_lock:
        engine = _registry.get(device)
        if engine is None or not engine.add_lane(lane):
            engine = _registry[device] = EngineProcess(device, kill_after)
            engine.add_lane(lane)
            engine.start()
    return engine


def shutdown(timeout_s: float = STOP_BUDGET_S) -> bool:
    """Stop every lane of every engine process at once (window close): returns within timeout_s, True when
    all are gone. Cheaper than stopping clients one by one, whose budgets would add up."""
    deadline = time.monotonic() + timeout_s
    with _registry_lock:
        engines = [e for e in _registry.values() if not e.closed]
    lanes = [(e, lane) for e in engines for lane in e.lanes()]
    for engine, lane in lanes:
        lane.stopping = True
        engine.wake()
    ok = True
    for engine, lane in lanes:
        ok = engine.remove_lane(lane, max(0.7, deadline - time.monotonic())) and ok
    return ok


def engine_processes() -> list[EngineProcess]:
    """The engine processes that are running (benchmarks, tests, Help > About)."""
    with _registry_lock:
        return [e for e in _registry.values() if not e.closed]


def _wants_thread(engines: dict | None) -> bool:
    """Engine instances cannot cross to another process: run them in a worker thread (UI tests)."""
    return any(not isinstance(v, (str, type)) for v in (engines or {}).values())


class EngineClient(QObject):
    """Runs jobs from `queue` in the device's engine process. Same surface as the old `Worker` thread."""

    engine_message = Signal(str)  # one line when the engine stopped or was restarted

    def __init__(self, queue: JobQueue, options: EngineOptions | None = None, engines: dict | None = None,
                 preload: bool = True, parent: QObject | None = None, transport: str = "auto",
                 kill_after: float = KILL_AFTER_S) -> None:
        """`engines` overrides engines by job kind: "module:Class" strings or classes run in the engine
        process; instances (tests) run in a worker thread. `transport` is "auto", "process" or "thread";
        "auto" follows $AIGC_ENGINE_TRANSPORT when set (thread | process), else the rule above."""
        super().__init__(parent)
        self.setObjectName("aigc-engine-client")
        if transport == "auto":
            transport = os.environ.get("AIGC_ENGINE_TRANSPORT", "auto")  # "thread": an escape hatch, fast tests
        if transport == "auto":
            # The pipe is built on POSIX file descriptors; Windows keeps the worker thread for now.
            transport = "thread" if _wants_thread(engines) or sys.platform == "win32" else "process"
        if transport not in ("process", "thread"):
            raise ValueError(f"Unknown transport {transport!r}")
        self.transport = transport
        self.queue = queue
        self._options = options or EngineOptions()
        self._engines = engines
        self._preload = preload
        self._kill_after = kill_after
        self._lane: _Lane | None = None
        self._engine: EngineProcess | None = None
        self._worker = None

    def start(self) -> None:
        if self.isRunning():
            return
        if self.transport == "thread":
            from aigc_desktop.ui.worker import Worker

            engines = host._resolve_engines(self._engines, self._options) if self._engines else None
            self._worker = Worker(self.queue, self._options, engines=engines, preload=self._preload)
            self._worker.setObjectName(self.objectName())
            self._worker.start()
            return
        self._lane = _Lane(self.queue, self._options, self._engines, self._preload, self._message)
        self._engine = _attach(self._lane, self._kill_after)

    def stop(self, timeout_ms: int = int(STOP_BUDGET_S * 1000)) -> bool:
        """Cancel the running job and stop; returns within timeout_ms (the engine is killed if need be)."""
        if self._worker is not None:
            return self._worker.stop(timeout_ms)
        if self._lane is None or self._engine is None:
            return True
        return self._engine.remove_lane(self._lane, timeout_ms / 1000)

    def isRunning(self) -> bool:  # noqa: N802 - the QThread name the window already calls
        if self._worker is not None:
            return self._worker.isRunning()
        return self._lane is not None and self._engine is not None and self._engine.lane_running(self._lane)

    # -- what the engine knows
    @property
    def engine_pid(self) -> int | None:
        return self._engine.pid if self._engine is not None and self._engine.proc is not None else None

    @property
    def device_info(self):
        """core.estimate.DeviceInfo: what the engine reported (the GPU once it loaded torch), else the CPU as
        this process sees it (no torch needed)."""
        info = self._engine.device_info if self._engine is not None else None
        return info or host.device_info("cpu")

    def engine_stats(self) -> dict | None:
        """{"rss", "threads", "files", "cuda_allocated", "pid"} of the engine process (None: thread transport)."""
        return self._engine.stats() if self._engine is not None else None

    def measured_step(self, kind: str = "diffusion") -> StepMeasure | None:
        return self._engine.step_times.get(kind) if self._engine is not None else None

    def _message(self, text: str) -> None:  # in the engine thread
        self.engine_message.emit(text)
