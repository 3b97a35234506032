"""SD-1.5-sized generation on a CUDA GPU: this app's diffusion engine vs a bare diffusers call.

Random weights from the bundled SD 1.5 config (resources/configs/sd15: UNet 860 M, VAE 84 M, CLIP-L 123 M
parameters), fp16, 512x512, 20 steps, Euler a, CFG 7, batch 1, the same loaded modules for both. Prints, from
one run: the whole-call time of each (median of alternating repeats), steps per second over the whole call and
over the sampling loop alone (step-callback timestamps), the peak GPU memory, and the ratio engine / bare.

Without CUDA it says so and exits 0: no GPU was lent to the session that wrote this script, so no GPU
numbers were recorded with it (run it wherever a GPU is available). `--device cpu --tiny` runs the same
measurement on the tiny test model, to check the script itself.

    python bench/bench_sd15_gpu.py [--steps 20] [--size 512] [--repeats 3]
    python bench/bench_sd15_gpu.py --device cpu --tiny --size 64 --steps 4 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aigc_desktop  # noqa: E402,F401 - offline flags before diffusers

PROMPT = "a lighthouse on a cliff at sunset, oil painting"


def build_sd15(folder: Path, device: str) -> Path:
    """An SD 1.5 diffusers folder with random fp16 weights, from the bundled configs."""
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from aigc_desktop.core.paths import resources_dir
    from aigc_desktop.testing.tiny import real_clip_tokenizer

    configs = resources_dir() / "configs" / "sd15"
    torch.manual_seed(0)
    with torch.device(device):  # random init on the GPU: seconds instead of a minute on the CPU
        unet = diffusers.UNet2DConditionModel.from_config(diffusers.UNet2DConditionModel.load_config(configs / "unet"))
        vae = diffusers.AutoencoderKL.from_config(diffusers.AutoencoderKL.load_config(configs / "vae"))
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(str(configs / "text_encoder")))
    scheduler = diffusers.PNDMScheduler.from_config(diffusers.PNDMScheduler.load_config(configs / "scheduler"))
    pipe = diffusers.StableDiffusionPipeline(unet=unet.half(), vae=vae.half(), text_encoder=text_encoder.half(),
                                             tokenizer=real_clip_tokenizer(), scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


class Timed:
    """Wall time of a call and the timestamps of its denoising steps."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.start = self.end = 0.0

    @property
    def total(self) -> float:
        return self.end - self.start

    @property
    def sampling_rate(self) -> float:
        """Steps per second between the first and the last step callback."""
        if len(self.steps) < 2:
            return float("nan")
        return (len(self.steps) - 1) / (self.steps[-1] - self.steps[0])


def measure(call: Callable[[Timed], None], sync: Callable[[], None]) -> Timed:
    timed = Timed()
    sync()
    timed.start = time.perf_counter()
    call(timed)
    sync()
    timed.end = time.perf_counter()
    return timed


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda", help="cuda (default) | cpu (a check of the script)")
    ap.add_argument("--tiny", action="store_true", help="the tiny test model instead of SD 1.5 sized weights")
    args = ap.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("No CUDA GPU on this machine: this benchmark measures SD-1.5-sized generation on a GPU and was not run.")
        print("(No GPU was lent to the session that wrote it; run it where one is, e.g. "
              "`python bench/bench_sd15_gpu.py`.)")
        return 0

    import diffusers

    from aigc_desktop.core.jobs import DiffusionJob, ModelRef, Progress
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.runner import EngineOptions, Runner
    from aigc_desktop.engines.diffusion.schedulers import make_scheduler
    from aigc_desktop.testing.tiny import save_tiny_sd

    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = save_tiny_sd(Path(tmp) / "tiny-sd") if args.tiny else build_sd15(Path(tmp) / "sd15-random", args.device)
        built = time.perf_counter() - t0
        runner = Runner(EngineOptions(device=args.device))
        params = GenerationParams(prompt=PROMPT, seed=1, steps=args.steps, cfg_scale=7.0, width=args.size,
                                  height=args.size, scheduler="euler_a")
        spec = DiffusionJob(model=ModelRef(str(folder)), params=params, device=args.device)

        def ours(timed: Timed) -> None:
            def emit(event: Any) -> None:
                if isinstance(event, Progress):
                    timed.steps.append(time.perf_counter())

            end = runner.run(spec, emit, lambda: False)
            if type(end).__name__ != "Finished":
                raise SystemExit(f"engine run failed: {getattr(end, 'message', end)}")

        t0 = time.perf_counter()
        ours(Timed())  # loads the model (and hashes it once); warms up the kernels
        loaded = time.perf_counter() - t0
        model = runner.engine_for("diffusion").model(spec)

        def bare(timed: Timed) -> None:
            pipe = diffusers.StableDiffusionPipeline(**{**model.pipe.components,
                                                        "scheduler": make_scheduler("euler_a", model.scheduler_config)})
            pipe.set_progress_bar_config(disable=True)

            def on_step(_pipe, _i, _t, kwargs):
                timed.steps.append(time.perf_counter())
                return kwargs

            pipe(PROMPT, negative_prompt="", num_inference_steps=args.steps, guidance_scale=7.0, width=args.size,
                 height=args.size, generator=torch.Generator("cpu").manual_seed(1), callback_on_step_end=on_step)

        measure(bare, sync)  # warm-up
        results: dict[str, list[Timed]] = {"engine": [], "bare": []}
        peaks: dict[str, int] = {}
        for _ in range(max(1, args.repeats)):
            for name, call in (("bare", bare), ("engine", ours)):
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                results[name].append(measure(call, sync))
                if cuda:
                    peaks[name] = max(peaks.get(name, 0), torch.cuda.max_memory_allocated())
        runner.close()

    where = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{'tiny test model' if args.tiny else 'SD 1.5 sized model, random weights'} on {where}, "
          f"{'fp16' if cuda else 'fp32'}, {args.size}x{args.size}, {args.steps} steps, Euler a, CFG 7, batch 1")
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}; model built in {built:.1f}s, "
          f"loaded + first run {loaded:.1f}s; median of {max(1, args.repeats)} alternating runs")
    medians = {}
    for name in ("bare", "engine"):
        runs = results[name]
        total = statistics.median(t.total for t in runs)
        sampling = statistics.median(t.sampling_rate for t in runs)
        medians[name] = total
        peak = f", peak GPU memory {peaks[name] / 2**30:.2f} GiB" if name in peaks else ""
        label = "bare diffusers" if name == "bare" else "our engine    "
        print(f"{label}: {total:.3f}s per image, {args.steps / total:.2f} it/s over the whole call, "
              f"{sampling:.2f} it/s sampling{peak}")
    print(f"ratio engine / bare diffusers (whole call): {medians['engine'] / medians['bare']:.3f}  (target <= 1.03)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
