"""Travel speed, frames/s side by side with plain jobs on the same model, all through the runner (one process,
one run, so the ratios compare like with like).

    python bench/bench_travel.py [--device cpu|cuda] [--threads 1] [--frames 24] [--steps 10]
                                 [--diffusion-model PATH] [--only vae,diffusion,stylegan]

- VAE morph with the default emoji-morph-vae (64x64): travel frames/s vs plain reconstructions (encode +
  decode of one image per job).
- Diffusion travel on a tiny model (built in code, 64x64; or --diffusion-model): a travel of N frames vs N
  independent generations of the same size, steps and scheduler; the ratio must not fall below ~1 (a travel
  frame costs one generation; its keyframe encodings are paid once).
- StyleGAN travel with the default emoji-stylegan: frames/s vs a plain seed job of N images.
A warm-up job per model is not timed (model loading, first-call allocations).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aigc_desktop.core import interpolate as ip  # noqa: E402
from aigc_desktop.core import jobs  # noqa: E402
from aigc_desktop.core.params import GenerationParams  # noqa: E402
from aigc_desktop.core.runner import EngineOptions, Runner  # noqa: E402

MODELS = ROOT / "resources" / "models"


def timed(runner: Runner, spec: jobs.JobSpec) -> float:
    start = time.perf_counter()
    end = runner.run(spec, lambda e: None, lambda: False)
    if not isinstance(end, jobs.Finished):
        raise SystemExit(f"{spec.title}: {getattr(end, 'message', end)}")
    return time.perf_counter() - start


def travel_state(keys: list[ip.Keyframe], frames: int) -> dict:
    """One segment of `frames` frames plus the closing keyframe: frames + 1 pictures."""
    return ip.Timeline.uniform(keys, frames=frames).to_state()


def bench_vae(runner: Runner, args) -> tuple[float, float]:
    from PIL import Image

    folder = MODELS / "emoji-morph-vae"
    samples = Image.open(folder / "samples.png").convert("RGB")
    a, b = samples.crop((0, 0, 64, 64)), samples.crop((64, 0, 128, 64))
    keys = [ip.Keyframe(digest=ip.image_digest(a)), ip.Keyframe(digest=ip.image_digest(b))]

    def travel(n: int, tag: int) -> jobs.TravelJob:
        keys[0].label = str(tag)  # labels are not in the keys; the model cache stays warm
        return jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(folder), kind="vae_morph"),
                              timeline=travel_state(keys, n), images=(a, b), device=args.device)

    timed(runner, travel(2, 0))
    n = args.frames
    t_travel = timed(runner, travel(n - 1, 1))
    # plain: one reconstruction per job (a 1-frame "travel" from an image to itself renders one picture)
    start = time.perf_counter()
    for i in range(n):
        img = samples.crop(((i % 8) * 64, 0, (i % 8) * 64 + 64, 64))
        d = ip.image_digest(img)
        spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(folder), kind="vae_morph"),
                              timeline=travel_state([ip.Keyframe(digest=d), ip.Keyframe(digest=d)], 1),
                              images=(img, img), device=args.device)
        timed(runner, spec)
    t_plain = time.perf_counter() - start
    return n / t_travel, n / t_plain


def bench_diffusion(runner: Runner, args) -> tuple[float, float]:
    path = args.diffusion_model
    if path is None:
        from aigc_desktop.testing.tiny import save_tiny_sd

        path = save_tiny_sd(Path(tempfile.mkdtemp()) / "tiny-sd")
    params = GenerationParams(steps=args.steps, width=64, height=64, cfg_scale=7.0, scheduler="euler")
    keys = [ip.Keyframe(prompt="a red apple", seed=1), ip.Keyframe(prompt="a green pear", seed=2)]

    def travel(n: int) -> jobs.TravelJob:
        return jobs.TravelJob(travel="diffusion", model=jobs.ModelRef(str(path)), timeline=travel_state(keys, n),
                              params=params, device=args.device)

    timed(runner, travel(1))
    n = args.frames
    t_travel = timed(runner, travel(n - 1))
    start = time.perf_counter()
    for i in range(n):
        timed(runner, jobs.DiffusionJob(model=jobs.ModelRef(str(path)),
                                        params=GenerationParams(**{**params.__dict__, "prompt": "a red apple",
                                                                   "seed": 10 + i}), device=args.device))
    t_plain = time.perf_counter() - start
    return n / t_travel, n / t_plain


def bench_stylegan(runner: Runner, args) -> tuple[float, float]:
    folder = MODELS / "emoji-stylegan"
    keys = [ip.Keyframe(seed=1), ip.Keyframe(seed=2)]

    def travel(n: int, mode: str = "slerp") -> jobs.TravelJob:
        state = ip.Timeline.uniform(keys, frames=n, mode=mode).to_state()
        return jobs.TravelJob(travel="stylegan", model=jobs.ModelRef(str(folder), kind="stylegan"), timeline=state,
                              stylegan=(("truncation_psi", 0.7),), device=args.device)

    timed(runner, travel(2))
    n = args.frames
    t_travel = timed(runner, travel(n - 1))
    t_plain = timed(runner, jobs.StyleGANJob(model=jobs.ModelRef(str(folder), kind="stylegan"),
                                             seeds=tuple(range(100, 100 + n)), truncation_psi=0.7,
                                             device=args.device))
    return n / t_travel, n / t_plain


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--diffusion-model", default=None)
    p.add_argument("--only", default="vae,diffusion,stylegan")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    runner = Runner(EngineOptions(device=args.device, threads=args.threads))
    rows = []
    benches = {"vae": ("VAE morph (emoji-morph-vae, 64x64)", "reconstruction jobs", bench_vae),
               "diffusion": (f"diffusion travel (tiny SD, 64x64, {args.steps} euler steps)", "independent generations",
                             bench_diffusion),
               "stylegan": ("StyleGAN travel (emoji-stylegan, slerp in Z)", "plain seed job", bench_stylegan)}
    for name in args.only.split(","):
        title, plain_name, fn = benches[name.strip()]
        travel_fps, plain_fps = fn(runner, args)
        rows.append((title, travel_fps, plain_name, plain_fps))
        print(f"{title:<52} {travel_fps:8.2f} frames/s | {plain_name:<24} {plain_fps:8.2f} images/s | "
              f"ratio {travel_fps / plain_fps:5.2f}", flush=True)
    runner.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
