"""StyleGAN generation speed: images/s at 256x256 and 1024x1024 (random weights, the released configs).

    python bench/bench_stylegan.py [--device cpu|cuda|mps] [--threads 1] [--images 2] [--only sg2,sg3-t,sg3-r]

Configs follow NVIDIA's released networks: StyleGAN2 (channel_base 16384 at 256 px, 32768 at 1024 px, 8 mapping
layers, 4 float16 resolutions, conv_clamp 256), StyleGAN3-T and -R (14 layers, 2 mapping layers). On CUDA the
float16 layers run in float16 as in NVIDIA's code; elsewhere everything is float32. One warm-up image per
config is not timed; each image renders alone (batch 1), as the app and NVIDIA's generate.py do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from aigc_desktop.engines.stylegan import sampling  # noqa: E402
from aigc_desktop.engines.stylegan.generator import Generator  # noqa: E402

CONFIGS = {
    "sg2": lambda res: dict(family="stylegan2", mapping_kwargs={"num_layers": 8},
                            synthesis_kwargs={"channel_base": 16384 if res <= 256 else 32768, "channel_max": 512,
                                              "num_fp16_res": 4, "conv_clamp": 256}),
    "sg3-t": lambda res: dict(family="stylegan3", mapping_kwargs={"num_layers": 2},
                              synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4,
                                                "conv_clamp": 256}),
    "sg3-r": lambda res: dict(family="stylegan3", mapping_kwargs={"num_layers": 2},
                              synthesis_kwargs={"channel_base": 65536, "channel_max": 1024, "num_fp16_res": 4,
                                                "conv_clamp": 256, "conv_kernel": 1, "use_radial_filters": True}),
}


def bench(name: str, res: int, device: torch.device, images: int) -> tuple[float, float]:
    cfg = CONFIGS[name](res)
    G = Generator(512, 0, 512, res, 3, cfg["mapping_kwargs"], cfg["synthesis_kwargs"], family=cfg["family"])
    G = G.eval().requires_grad_(False).to(device)
    params = sum(p.numel() for p in G.parameters()) / 1e6

    def one(seed: int) -> None:
        ws = sampling.latent_ws(G, sampling.Latent(seed=seed, truncation_psi=0.7), device)
        img = sampling.synthesize(G, ws, "const")
        sampling.to_uint8(img)  # includes the copy back to the host

    one(0)  # warm-up (kernel selection, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for seed in range(1, images + 1):
        one(seed)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start), params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a shared machine)")
    ap.add_argument("--images", type=int, default=None, help="timed images per config (default 2 CPU, 20 GPU)")
    ap.add_argument("--only", default="sg2,sg3-t,sg3-r")
    ap.add_argument("--resolutions", default="256,1024")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = args.images or (20 if device.type == "cuda" else 2)
    what = device.type if device.type != "cpu" else f"cpu, {args.threads} thread(s)"
    print(f"StyleGAN generation on {what}; torch {torch.__version__}")
    if not torch.cuda.is_available():
        print("(no CUDA GPU here: GPU numbers need a machine with one)")
    print(f"{'config':<8} {'res':>5} {'params':>8} {'images/s':>10} {'s/image':>9}")
    for name in args.only.split(","):
        for res in (int(r) for r in args.resolutions.split(",")):
            rate, params = bench(name, res, device, images)
            print(f"{name:<8} {res:>5} {params:>7.1f}M {rate:>10.3f} {1 / rate:>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
