"""The engine process: all torch work runs here, in a child of the window's process (one per device).

A crash, a hang or an out-of-memory kill in a model takes this process down, never the user's document.
The window's side is `aigc_desktop.ui.engine_client`; it starts this process with `main_stdio` and the
two talk over the child's stdin/stdout, framed and pickled by multiprocessing.connection (a plain
subprocess, not multiprocessing's spawn: that would re-run the window's __main__ script in here):

    window -> engine   ("lane", lane_id, EngineOptions, engines, preload)   a job queue to serve
                       ("run", lane_id, spec)                                a frozen job spec
                       ("cancel", lane_id, job_id)
                       ("drop", lane_id)                                     that queue is gone
                       ("quit",)
    engine -> window   ("ready", pid)
                       ("event", lane_id, event)          the existing plain-data events (core/jobs.py)
                       ("device", DeviceInfo)             what the device has (for core/estimate.py)
                       ("log", level, logger, message, traceback_text)
                       ("stats", {...})                   reply to ("stats",): memory, threads, files

Each lane is one thread here with its own Runner (the live StyleGAN view keeps its own lane so it never
waits behind a diffusion job, as it had its own worker thread before). Specs and events are pickled: they
are our own dataclasses between our own two processes, never user files. Images travel as raw pixels
(RawImage: mode, size, bytes), not PNG: packing a 512x512 RGB image is one memory copy.

This module imports no torch at import time (the window's process imports it for pack/unpack only).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import queue as pyqueue
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ wire format


@dataclass(frozen=True)
class RawImage:
    """A PIL image as raw pixels for the pipe (rebuilt with `to_image` on the other side)."""

    mode: str
    size: tuple[int, int]
    data: bytes

    def to_image(self):
        from PIL import Image

        return Image.frombytes(self.mode, self.size, self.data)


def _is_image(value: Any) -> bool:
    # Duck-typed so the window's side never needs to import PIL to pack.
    return hasattr(value, "tobytes") and hasattr(value, "mode") and hasattr(value, "size") \
        and hasattr(value, "getbands")


def pack_image(image: Any) -> RawImage:
    if image.mode in ("P", "PA"):  # palettes do not survive raw bytes
        image = image.convert("RGBA")
    return RawImage(image.mode, tuple(image.size), image.tobytes())


def _map_images(event: Any, fn) -> Any:
    """The event with every image field (or tuple of images) passed through fn; other fields as they are."""
    if not dataclasses.is_dataclass(event):
        return event
    changes = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, (RawImage,)) or _is_image(value):
            changes[f.name] = fn(value)
        elif isinstance(value, tuple) and value and all(isinstance(v, RawImage) or _is_image(v) for v in value):
            changes[f.name] = tuple(fn(v) for v in value)
    return dataclasses.replace(event, **changes) if changes else event


def encode_event(event: Any) -> Any:
    return _map_images(event, lambda v: v if isinstance(v, RawImage) else pack_image(v))


def decode_event(event: Any) -> Any:
    return _map_images(event, lambda v: v.to_image() if isinstance(v, RawImage) else v)


# ------------------------------------------------------------------------------------------ device


def device_info(preference: str = "auto"):
    """What the device has (memory, cores), from torch when it is already loaded, else from the OS."""
    from aigc_desktop.core.estimate import DeviceInfo, system_memory_bytes

    cores = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    if torch is not None and preference != "cpu":
        try:
            if preference.startswith("cuda") or (preference == "auto" and torch.cuda.is_available()):
                index = int(preference.split(":")[1]) if ":" in preference else 0
                free, total = torch.cuda.mem_get_info(index)
                return DeviceInfo(kind="cuda", memory_bytes=int(free), total_bytes=int(total), cores=cores,
                                  name=torch.cuda.get_device_name(index))
        except Exception as exc:  # noqa: BLE001 - an odd driver must not stop the engine
            log.warning("Could not read the CUDA device: %s", exc)
    memory = system_memory_bytes()
    return DeviceInfo(kind="cpu", memory_bytes=memory, total_bytes=memory, cores=cores, name="CPU")


def engine_stats() -> dict[str, Any]:
    """This process's resident memory, threads, open files and (when torch runs CUDA) allocated GPU memory."""
    stats: dict[str, Any] = {"pid": os.getpid(), "threads": threading.active_count(), "rss": None, "files": None,
                             "cuda_allocated": None}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            stats["rss"] = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))
        stats["files"] = len(os.listdir("/proc/self/fd"))
    except (OSError, StopIteration):
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        stats["cuda_allocated"] = int(torch.cuda.memory_allocated())
    return stats


# ------------------------------------------------------------------------------------------ the child


class _Sender:
    """One pipe, written from several threads."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def __call__(self, message: tuple) -> None:
        try:
            with self.lock:
                self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            os._exit(0)  # the window is gone: nobody to work for


class _ForwardLogs(logging.Handler):
    """Log records go to the window's process, which owns the console and the log file."""

    def __init__(self, send: _Sender) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc_text = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
            self.send(("log", record.levelno, record.name, record.getMessage(), exc_text))
        except Exception:  # noqa: BLE001 - logging must never break a job
            pass


def _resolve_engines(engines: dict[str, Any] | None, options) -> dict[str, Any]:
    """Engine overrides by kind: "module:Class", a class, or a (picklable) instance."""
    out = {}
    for kind, target in (engines or {}).items():
        if isinstance(target, str):
            module_name, cls_name = target.split(":")
            target = getattr(importlib.import_module(module_name), cls_name)
        out[kind] = target(options) if isinstance(target, type) else target
    return out


class _Lane:
    """One job queue of the window, served by one thread here."""

    def __init__(self, host: "Host", lane_id: str, options, engines, preload: bool) -> None:
        self.host = host
        self.id = lane_id
        self.options = options
        self.engines = engines
        self.preload = preload
        self.jobs: pyqueue.Queue = pyqueue.Queue()
        self.lock = threading.Lock()
        self.current: tuple[str, threading.Event] | None = None
        self.early_cancels: set[str] = set()  # cancels that overtook their job
        self.thread = threading.Thread(target=self._run, name=f"aigc-lane-{lane_id}", daemon=True)

    def cancel(self, job_id: str) -> None:
        with self.lock:
            if self.current is not None and self.current[0] == job_id:
                self.current[1].set()
            else:
                self.early_cancels.add(job_id)

    def _emit(self, event) -> None:
        self.host.send(("event", self.id, encode_event(event)))

    def _warm(self) -> None:
        _warm_imports()
        self.host.send(("device", device_info(self.options.device)))

    def _run(self) -> None:
        from aigc_desktop.core.runner import Runner, failed

        try:
            runner = Runner(self.options, _resolve_engines(self.engines, self.options))
        except Exception as exc:  # noqa: BLE001 - a bad override fails every job of the lane, clearly
            runner, setup_error = None, exc
        if runner is not None and self.preload and not self.engines:
            # Beside the jobs, not before them: a StyleGAN job or a conversion waits for torch, not diffusers.
            threading.Thread(target=self._warm, name="aigc-warm-imports", daemon=True).start()
        while True:
            spec = self.jobs.get()
            if spec is None:
                break
            cancel = threading.Event()
            with self.lock:
                self.current = (spec.id, cancel)
                if spec.id in self.early_cancels:
                    self.early_cancels.discard(spec.id)
                    cancel.set()
            if runner is None:
                self._emit(failed(spec.id, setup_error))
            else:
                runner.run(spec, self._emit, cancel.is_set)
            with self.lock:
                self.current = None
        if runner is not None:
            runner.close()


class Host:
    def __init__(self, conn) -> None:
        self.conn = conn
        self.send = _Sender(conn)
        self.lanes: dict[str, _Lane] = {}

    def serve(self) -> None:
        self.send(("ready", os.getpid()))
        self.send(("device", device_info("cpu")))  # cheap; a lane that preloads torch sends the real device
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return  # the window's process died: stop at once
            op = message[0]
            if op == "run":
                lane = self.lanes.get(message[1])
                if lane is not None:
                    lane.jobs.put(message[2])
            elif op == "cancel":
                lane = self.lanes.get(message[1])
                if lane is not None:
                    lane.cancel(message[2])
            elif op == "lane":
                _, lane_id, options, engines, preload = message
                lane = self.lanes[lane_id] = _Lane(self, lane_id, options, engines, preload)
                lane.thread.start()
            elif op == "drop":
                lane = self.lanes.pop(message[1], None)
                if lane is not None:
                    lane.jobs.put(None)
            elif op == "stats":
                self.send(("stats", engine_stats()))
            elif op == "quit":
                return


def main(conn, log_level: int = logging.INFO) -> None:
    """Serve the window over `conn` until it says quit or goes away, then end the process."""
    # Ctrl+C in the terminal reaches the whole process group; the window decides what stops, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import aigc_desktop  # noqa: F401 - offline flags before any HF import

    host = Host(conn)
    root = logging.getLogger()
    root.handlers[:] = [_ForwardLogs(host.send)]
    root.setLevel(log_level)
    try:
        host.serve()
    finally:
        # Never wait for a lane stuck in a step: the window already decided this process ends.
        logging.shutdown()
        os._exit(0)


def main_stdio() -> None:
    """Entry point of `python -c "from aigc_desktop.engines.host import main_stdio; main_stdio()"`: the
    window's pipe is our stdin/stdout. Stdout is taken for the pipe at once and fd 1 points to stderr, so a
    library that prints can never corrupt the messages."""
    from multiprocessing.connection import Connection

    reading, writing = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    level = int(os.environ.get("AIGC_ENGINE_LOG_LEVEL", logging.INFO))
    main(_Duplex(Connection(reading, writable=False), Connection(writing, readable=False)), level)


class _Duplex:
    """Two one-way connections (the child's stdin and stdout) as one."""

    def __init__(self, reading, writing) -> None:
        self.reading, self.writing = reading, writing

    def recv(self):
        return self.reading.recv()

    def send(self, message) -> None:
        self.writing.send(message)


def _warm_imports() -> None:
    """Import torch and diffusers now, after the window is up, so the first Generate starts sooner."""
    try:
        import aigc_desktop.engines.diffusion.engine  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install shows up as a failed job instead
        log.warning("Could not preload the diffusion engine: %s", exc)
