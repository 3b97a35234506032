"""Engine-process benchmark: a long session through the process transport, and its cost against diffusers.

Prints, from one run on one machine:
  1. 200 generations in a row with a preview at every step (fake engine in the engine process, previews of
     --size pixels): the GUI process's and the engine's RSS after the first 10 jobs and at the end (target:
     growth <= 5%), threads and open file handles at both points (target: equal);
  2. preview latency from the engine to the GUI thread's slot, p50 / p95 / max (target p95 < 10 ms), and
     the GUI event loop's lateness while previews stream (5 ms timer; target p95 <= 16.7 ms);
  3. a txt2img job on a tiny SD model through the engine process (submit -> Finished in the GUI thread)
     against a bare diffusers call on the same model in this process (same scheduler, steps, size, seed,
     one torch thread each; median of alternating runs); target ratio <= 1.03. --skip-model leaves it out;
  4. the StyleGAN live view's rate (live renders of the bundled emoji-stylegan, one after the other as the
     view requests them) through the engine process against the worker thread the app used before, and
     the transport's own cost per job (a job that does nothing), both alternating job by job.

    python bench/bench_engine_process.py [--jobs 200] [--size 256] [--steps 8] [--model-size 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aigc_desktop  # noqa: E402,F401 - offline flags
from common import alternating_ratio, bare_diffusers  # noqa: E402 - this script's folder is on sys.path

STAMPED = {"fake": "aigc_desktop.testing.host_engines:StampedFakeEngine"}


def rss(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def handles() -> int:
    return len(os.listdir("/proc/self/fd"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def long_session(count: int, size: int, steps: int) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core import jobs
    from aigc_desktop.core.runner import EngineOptions
    from aigc_desktop.ui.engine_client import EngineClient
    from aigc_desktop.ui.viewmodels.queue import QueueViewModel

    app = QApplication.instance() or QApplication([])
    vm = QueueViewModel()
    client = EngineClient(vm.queue, EngineOptions(device="cpu", threads=1), engines=STAMPED, preload=False)
    client.start()
    stamps: dict[str, int] = {}
    latencies: list[float] = []
    gaps: list[float] = []
    marks: dict[str, tuple] = {}
    state = {"done": 0, "last_tick": None}
    clock = QElapsedTimer()

    def on_status(job_id: str, text: str) -> None:
        if text.startswith("t="):
            stamps[job_id] = int(text[2:])

    def on_preview(job_id: str, image) -> None:  # in the GUI thread, as the canvas gets it
        sent = stamps.pop(job_id, None)
        if sent is not None:
            latencies.append((time.monotonic_ns() - sent) / 1e6)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["last_tick"] is not None and state["done"] >= 10:
            gaps.append(now - state["last_tick"] - 5.0)
        state["last_tick"] = now

    def snapshot() -> tuple:
        engine = client.engine_stats() or {}
        return (rss(), engine.get("rss") or rss(client.engine_pid), threading.active_count(), handles(),
                engine.get("threads"), engine.get("files"), engine.get("cuda_allocated"))

    def submit() -> None:
        vm.submit(jobs.FakeJob(steps=steps, width=size, height=size, step_seconds=0.002, seed=state["done"]))

    def on_done(job_id: str, *_args) -> None:
        state["done"] += 1
        vm.clear_done()
        if state["done"] == 10:
            marks["after 10"] = snapshot()
            latencies.clear()  # steady state only
        if state["done"] == count:
            marks["end"] = snapshot()
            app.quit()
        else:
            submit()

    vm.status_changed.connect(on_status)
    vm.preview_changed.connect(on_preview)
    vm.job_finished.connect(on_done)
    vm.job_failed.connect(lambda job_id, message, details: (print("failed:", message), app.quit()))
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    started = time.perf_counter()
    submit()
    app.exec()
    timer.stop()
    took = time.perf_counter() - started
    t = time.perf_counter()
    stopped = client.stop()
    return {"marks": marks, "latencies": latencies, "gaps": gaps, "took": took, "stop_s": time.perf_counter() - t,
            "stopped": stopped}


def wait(vm, ends: list) -> None:
    """Run the GUI event loop until a job's end arrived (as the window does: no polling)."""
    from PySide6.QtCore import QEventLoop

    if ends:
        return
    loop = QEventLoop()
    done = vm.job_finished.connect(lambda *_: loop.quit())
    failed = vm.job_failed.connect(lambda *_: loop.quit())
    loop.exec()
    vm.job_finished.disconnect(done)
    vm.job_failed.disconnect(failed)


def process_ratio(model_dir: Path, size: int, steps: int, repeats: int) -> tuple[float, float, float]:
    """Median time of a txt2img job through the engine process vs a bare diffusers call, model loaded."""
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.runner import EngineOptions
    from aigc_desktop.ui.engine_client import EngineClient
    from aigc_desktop.ui.viewmodels.queue import QueueViewModel

    app = QApplication.instance() or QApplication([])
    params = GenerationParams(prompt="a red apple on a wooden table", seed=1, steps=steps, width=size, height=size,
                              scheduler="euler_a")
    vm = QueueViewModel()
    client = EngineClient(vm.queue, EngineOptions(device="cpu", threads=1), preload=True)
    client.start()
    ends: list[object] = []
    vm.job_finished.connect(lambda job_id, event: ends.append(event))
    vm.job_failed.connect(lambda job_id, message, details: ends.append(message))

    def through_process() -> float:
        ends.clear()
        t = time.perf_counter()
        vm.submit(DiffusionJob(model=ModelRef(str(model_dir)), params=params))
        wait(vm, ends)
        took = time.perf_counter() - t
        assert type(ends[0]).__name__ == "Finished", ends[0]
        vm.clear_done()
        return took

    through_process()  # the engine loads the model and hashes it once

    import torch

    from aigc_desktop.core.runner import Runner

    torch.set_num_threads(1)
    model = Runner(EngineOptions(device="cpu", threads=1)).engine_for("diffusion").model(
        DiffusionJob(model=ModelRef(str(model_dir)), params=params))
    try:
        return alternating_ratio(through_process, bare_diffusers(model, params, size, steps), repeats)
    finally:
        client.stop()


class Transport:
    """A queue view-model and a client on it, as the window has: submit a spec, wait for its end."""

    def __init__(self, transport: str, engines: dict | None = None, threads: int = 1) -> None:
        from PySide6.QtWidgets import QApplication

        from aigc_desktop.core.runner import EngineOptions
        from aigc_desktop.ui.engine_client import EngineClient
        from aigc_desktop.ui.viewmodels.queue import QueueViewModel

        QApplication.instance() or QApplication([])
        self.vm = QueueViewModel()
        self.client = EngineClient(self.vm.queue, EngineOptions(device="cpu", threads=threads), engines=engines,
                                   preload=False, transport=transport)
        self.client.start()
        self.ends: list[object] = []
        self.vm.job_finished.connect(lambda job_id, event: self.ends.append(event))
        self.vm.job_failed.connect(lambda job_id, message, details: self.ends.append(message))

    def run(self, spec) -> float:
        self.ends.clear()
        t = time.perf_counter()
        self.vm.submit(spec)
        wait(self.vm, self.ends)
        took = time.perf_counter() - t
        assert type(self.ends[0]).__name__ == "Finished", self.ends[0]
        self.vm.clear_done()
        return took

    def stop(self) -> None:
        self.client.stop()


def compare(make_spec, count: int, engines_process=None, engines_thread=None) -> tuple[float, float]:
    """Median seconds per job through the engine process and through the worker thread (the app before
    the engine process), alternating job by job so a busy neighbour slows both alike."""
    process, thread = Transport("process", engines_process), Transport("thread", engines_thread)
    process.run(make_spec(0))
    thread.run(make_spec(0))  # both load their model once
    times: dict[str, list[float]] = {"process": [], "thread": []}
    for i in range(1, count + 1):
        times["process"].append(process.run(make_spec(i)))
        times["thread"].append(thread.run(make_spec(i)))
    process.stop()
    thread.stop()
    return statistics.median(times["process"]), statistics.median(times["thread"])


def job_overhead(count: int) -> tuple[float, float]:
    """Seconds per job that does (almost) nothing: the transport's own cost."""
    from aigc_desktop.core import jobs

    return compare(lambda i: jobs.FakeJob(steps=1, step_seconds=0.0, width=8, height=8), count,
                   engines_process={"fake": "aigc_desktop.engines.base:FakeEngine"},
                   engines_thread={"fake": "aigc_desktop.engines.base:FakeEngine"})


def live_rate(model: Path, renders: int) -> tuple[float, float]:
    """Live StyleGAN renders per second, one after the other as the view requests them."""
    from aigc_desktop.core.jobs import ModelRef, StyleGANJob

    ref = ModelRef(str(model), kind="stylegan")
    ours, theirs = compare(lambda i: StyleGANJob(model=ref, seeds=(i,), live=True, truncation_psi=0.7), renders)
    return 1 / ours, 1 / theirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--size", type=int, default=256, help="preview size of the fake jobs")
    ap.add_argument("--steps", type=int, default=8, help="steps (= previews) per fake job")
    ap.add_argument("--model-size", type=int, default=128)
    ap.add_argument("--model-steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--live-renders", type=int, default=40)
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args()
    if not os.path.isdir("/proc/self/fd"):
        print("this benchmark reads /proc (Linux)")
        return 2

    r = long_session(args.jobs, args.size, args.steps)
    (g10, e10, t10, h10, et10, ef10, c10), (g1, e1, t1, h1, et1, ef1, c1) = r["marks"]["after 10"], r["marks"]["end"]
    mb = 1 / 2 ** 20
    print(f"{args.jobs} fake generations, {args.steps} previews of {args.size}x{args.size} each, through the engine "
          f"process: {r['took']:.1f} s")
    print(f"GUI RSS    after 10: {g10 * mb:.1f} MiB  end: {g1 * mb:.1f} MiB  ratio {g1 / g10:.3f}  (target <= 1.05)")
    print(f"engine RSS after 10: {e10 * mb:.1f} MiB  end: {e1 * mb:.1f} MiB  ratio {e1 / e10:.3f}  (target <= 1.05)")
    print(f"GUI threads {t10} -> {t1}, open file handles {h10} -> {h1}; engine threads {et10} -> {et1}, "
          f"open files {ef10} -> {ef1}  (target: equal)")
    if c10 is not None:
        print(f"engine CUDA allocated after 10: {c10 * mb:.1f} MiB  end: {c1 * mb:.1f} MiB")
    lat = r["latencies"]
    print(f"preview latency engine -> GUI thread over {len(lat)} previews: p50 {percentile(lat, 0.5):.2f} ms, "
          f"p95 {percentile(lat, 0.95):.2f} ms, max {max(lat):.2f} ms  (target p95 < 10 ms)")
    gaps = r["gaps"]
    print(f"GUI event-loop lateness over {len(gaps)} ticks of a 5 ms timer while previews stream: "
          f"p50 {percentile(gaps, 0.5):.2f} ms, p95 {percentile(gaps, 0.95):.2f} ms, max {max(gaps):.2f} ms  "
          "(target p95 <= 16.7 ms)")
    print(f"stop: {r['stop_s'] * 1000:.0f} ms ({'clean' if r['stopped'] else 'NOT STOPPED'})")
    ours, theirs = job_overhead(50)
    print(f"a job that does nothing, submit -> Finished in the GUI thread: engine process {ours * 1000:.2f} ms, "
          f"worker thread {theirs * 1000:.2f} ms (the transport's cost per job)")
    if args.skip_model:
        return 0
    from aigc_desktop.core.paths import resources_dir

    stylegan = resources_dir() / "models" / "emoji-stylegan"
    if stylegan.is_dir():
        ours, theirs = live_rate(stylegan, args.live_renders)
        print(f"StyleGAN live view (emoji-stylegan 64x64, 1 torch thread): engine process {ours:.1f} renders/s vs "
              f"worker thread {theirs:.1f} renders/s  ratio {theirs / ours:.3f}")
    from aigc_desktop.testing.tiny import save_tiny_sd

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_tiny_sd(Path(tmp) / "tiny-sd")
        ratio, ours, theirs = process_ratio(model_dir, args.model_size, args.model_steps, args.repeats)
    print(f"txt2img, tiny SD {args.model_size}x{args.model_size}, {args.model_steps} steps, 1 torch thread each: "
          f"engine process {ours:.3f}s vs bare diffusers {theirs:.3f}s  ratio {ratio:.3f}  (target <= 1.03)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
