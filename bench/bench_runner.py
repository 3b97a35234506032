"""Foundation benchmark: job-runner overhead and GUI responsiveness while generating.

Prints, from one run on one machine:
  1. the ratio of a txt2img job through the app's job runner to a bare diffusers call on the same model
     (same scheduler, steps, size, seed; model already loaded; median of alternating runs). Target <= 1.03.
     The same job through the engine process (submit -> Finished in the GUI thread; bench_engine_process.py)
     against the bare call, with one torch thread on both sides. Target <= 1.03.
  2. the GUI event loop's delay while generations run in the worker thread: a 5 ms QTimer's gaps,
     p50 / p95 / max in ms. Target p95 <= 16.7 ms (one 60 Hz frame).

    python bench/bench_runner.py [--size 128] [--steps 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aigc_desktop  # noqa: E402,F401 - offline flags
from common import alternating_ratio, bare_diffusers  # noqa: E402 - this script's folder is on sys.path


def runner_ratio(model_dir: Path, size: int, steps: int, repeats: int) -> tuple[float, float, float]:
    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.runner import Runner

    runner = Runner()
    params = GenerationParams(prompt="a red apple on a wooden table", seed=1, steps=steps, width=size, height=size,
                              scheduler="euler_a")

    def through_runner() -> float:
        spec = DiffusionJob(model=ModelRef(str(model_dir)), params=params)
        t = time.perf_counter()
        end = runner.run(spec, lambda e: None, lambda: False)
        assert type(end).__name__ == "Finished", end
        return time.perf_counter() - t

    through_runner()  # loads the model into the engine's cache, hashes it once
    model = runner.engine_for("diffusion").model(DiffusionJob(model=ModelRef(str(model_dir)), params=params))
    return alternating_ratio(through_runner, bare_diffusers(model, params, size, steps), repeats)


def gui_latency(model_dir: Path, size: int, steps: int, jobs_count: int) -> list[float]:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.jobs import DiffusionJob, ModelRef
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.runner import EngineOptions
    from aigc_desktop.ui.viewmodels.queue import QueueViewModel
    from aigc_desktop.ui.worker import Worker

    app = QApplication.instance() or QApplication([])
    queue = QueueViewModel()
    worker = Worker(queue.queue, EngineOptions())
    worker.start()
    gaps: list[float] = []
    clock = QElapsedTimer()
    state = {"last": None, "done": 0, "measuring": False}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if state["measuring"] and state["last"] is not None:
            gaps.append(now - state["last"] - 5.0)
        state["last"] = now

    def on_done(*_args) -> None:
        state["done"] += 1
        if state["done"] == 1:
            state["measuring"] = True  # the first job loads the model; measure the steady state after it
            for _ in range(jobs_count):
                submit()
        elif state["done"] == jobs_count + 1:
            app.quit()

    def submit() -> None:
        params = GenerationParams(prompt="a cat", seed=2, steps=steps, width=size, height=size).with_seed_resolved()
        queue.submit(DiffusionJob(model=ModelRef(str(model_dir)), params=params))

    queue.job_finished.connect(on_done)
    queue.job_failed.connect(on_done)
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    submit()
    app.exec()
    timer.stop()
    worker.stop()
    return gaps


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=3)
    args = ap.parse_args()

    from aigc_desktop.engines.device import configure_threads
    from aigc_desktop.testing.tiny import save_tiny_sd

    threads = configure_threads()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_tiny_sd(Path(tmp) / "tiny-sd")
        ratio, ours, theirs = runner_ratio(model_dir, args.size, args.steps, args.repeats)
        print(f"model: tiny SD (random weights), {args.size}x{args.size}, {args.steps} steps, euler_a, "
              f"{threads} torch thread(s), CPU")
        print(f"job runner vs bare diffusers: {ours:.3f}s vs {theirs:.3f}s  ratio {ratio:.3f}  (target <= 1.03)")
        from bench_engine_process import process_ratio  # this script's folder is on sys.path

        ratio, ours, theirs = process_ratio(model_dir, args.size, args.steps, args.repeats)
        print(f"engine process vs bare diffusers (1 torch thread each): {ours:.3f}s vs {theirs:.3f}s  "
              f"ratio {ratio:.3f}  (target <= 1.03)")
        gaps = gui_latency(model_dir, args.size, args.steps, args.jobs)
        p50, p95, worst = percentile(gaps, 0.5), percentile(gaps, 0.95), max(gaps)
        print(f"GUI event-loop delay over {len(gaps)} ticks of a 5 ms timer while generating: "
              f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {worst:.2f} ms  (target p95 <= 16.7 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
