"""StyleGAN parts of the command line (no torch at import time; cli.py wires them in). Walks are StyleGAN
travels: `walk` is an alias of `interpolate` (cli_interpolate.py).

    aigc-desktop generate --model FFHQ.pkl --seed 42 --truncation 0.7 [--trunc-cutoff 8]
                          [--mix-seed 7 --mix-layers coarse|middle|fine|A-B] [--noise-mode const|random|none]
                          [--class 3] [--seeds 0-15] [--translate X,Y --rotate DEG] --out face.png
    aigc-desktop convert FFHQ.pkl --out ffhq/             our safetensors + json format
    aigc-desktop walk --model FFHQ.pkl --seeds 1,2,3 --frames 30 [--space w|z] [--loop] --out walk.mp4   (cli_interpolate)
    aigc-desktop grid --model FFHQ.pkl --seeds 0-15 [--cols 4] --out grid.png
"""

from __future__ import annotations

import argparse
from typing import Any

from aigc_desktop.core.errors import UserError


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected X,Y, got '{text}'")


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        a, sep, b = part.partition("-")
        try:
            if sep and a:
                lo, hi = int(a), int(b)
                if hi < lo or hi - lo > 100000:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            elif part:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"seeds look like 1,2,5-8; got '{text}'") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def _add_latent_args(p: argparse.ArgumentParser, with_seeds: bool = True) -> None:
    """The options that decide a StyleGAN image besides its seed (shared by generate, walk and grid)."""
    from aigc_desktop.cli_common import number as _float, whole_number as _int
    p.add_argument("--truncation", "--trunc", dest="truncation", type=_float, default=1.0,
                   help="StyleGAN truncation psi (1 = none; 0.5-0.7 is typical)")
    p.add_argument("--trunc-cutoff", dest="trunc_cutoff", type=_int, default=None,
                   help="StyleGAN: apply truncation to the first N layers only")
    p.add_argument("--mix-seed", dest="mix_seed", type=_int, default=None, help="StyleGAN style-mixing seed")
    p.add_argument("--mix-layers", dest="mix_layers", default=None,
                   help="StyleGAN layers taken from --mix-seed: coarse, middle, fine, all or A-B")
    p.add_argument("--noise-mode", dest="noise_mode", default="const", choices=("const", "random", "none"),
                   help="StyleGAN noise inputs (default const)")
    p.add_argument("--class", dest="class_idx", type=_int, default=None, help="StyleGAN class (conditional models)")
    p.add_argument("--translate", type=_pair, default=(0.0, 0.0), help="StyleGAN3: translate the image, X,Y")
    p.add_argument("--rotate", type=_float, default=0.0, help="StyleGAN3: rotate the image (degrees)")
    if with_seeds:
        p.add_argument("--seeds", type=_seeds, default=None, help="StyleGAN: several seeds, e.g. 0-15 or 1,5,9")


def add_generate_args(g: argparse.ArgumentParser) -> None:
    """Options of `generate` that StyleGAN models use."""
    _add_latent_args(g.add_argument_group("StyleGAN models"))


def _check_latent_args(args: argparse.Namespace) -> None:
    if args.mix_layers and args.mix_seed is None:
        raise UserError("--mix-layers needs --mix-seed")
    if args.mix_seed is not None and not args.mix_layers:
        args.mix_layers = "coarse"


def _latent_fields(args: argparse.Namespace) -> dict[str, Any]:
    _check_latent_args(args)
    return {"truncation_psi": args.truncation, "truncation_cutoff": args.trunc_cutoff, "noise_mode": args.noise_mode,
            "class_idx": args.class_idx, "mix_seed": args.mix_seed, "mix_layers": args.mix_layers,
            "translate": tuple(args.translate), "rotate": args.rotate,
            "device": getattr(args, "device", "auto"), "dtype": getattr(args, "dtype", "auto")}


def stylegan_job(args: argparse.Namespace, info) -> Any:
    """cli.JOB_BUILDERS["stylegan"]: `generate` for a StyleGAN model. --seeds, else --seed (+ --batch)."""
    from aigc_desktop.core.jobs import ModelRef, StyleGANJob
    from aigc_desktop.core.params import random_seed

    if args.seeds:
        seeds = list(args.seeds)
    else:
        first = args.seed if args.seed is not None and args.seed >= 0 else random_seed()
        count = max(1, getattr(args, "batch", 1) * getattr(args, "batch_count", 1))
        seeds = [(first + i) % 2**32 for i in range(count)]
    return StyleGANJob(model=ModelRef(info.path, kind="stylegan"), seeds=tuple(seeds), **_latent_fields(args))


# ----------------------------------------------------------------------------------------- commands


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from aigc_desktop.cli_common import number as _float, whole_number as _int

    c = sub.add_parser("convert", help="convert a StyleGAN checkpoint (.pkl, .pt) to safetensors + json")
    c.add_argument("source", help="NVIDIA network pickle, rosinality .pt, or one of ours")
    c.add_argument("--out", required=True, help="output folder")

    g = sub.add_parser("grid", help="a grid of StyleGAN images, one per seed")
    g.add_argument("--model", required=True, help="StyleGAN model file or folder (or a discovered model's name)")
    g.add_argument("--seeds", type=_seeds, required=True, help="e.g. 0-15")
    g.add_argument("--cols", type=_int, default=None, help="columns (default: square)")
    g.add_argument("--device", default="auto")
    g.add_argument("--dtype", default="auto")
    g.add_argument("--out", required=True, help="output PNG")
    g.add_argument("--quiet", action="store_true")
    _add_latent_args(g, with_seeds=False)


def _stylegan_model(text: str):
    from aigc_desktop.cli_common import CliError, resolve_model

    info = resolve_model(text)
    if info.kind != "stylegan":
        detail = f": {info.note}" if info.note else ""
        raise CliError(f"{info.name} is not a StyleGAN model (found {info.label}{detail})")
    return info


def cmd_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aigc_desktop.cli_common import EXIT_OK, CliError

    src = Path(args.source).expanduser()
    if not src.exists():
        raise CliError(f"File not found: {src}")
    from aigc_desktop.engines.stylegan.loaders import convert

    out = convert(src, Path(args.out).expanduser())
    print(out)
    return EXIT_OK


def cmd_grid(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aigc_desktop.cli_common import EXIT_OK, failure_code, run_job
    from aigc_desktop.core.jobs import ModelRef, StyleGANJob
    from aigc_desktop.core.metadata import save_png
    from aigc_desktop.engines.export import grid_image

    info = _stylegan_model(args.model)
    spec = StyleGANJob(model=ModelRef(info.path, kind="stylegan"), seeds=tuple(args.seeds), **_latent_fields(args))
    spec.validate()  # bad input: one line, exit 2
    end = run_job(spec, args.quiet)
    code = failure_code(end)
    if code is not None:
        return code
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")
    record = {**end.records[0], "seed": list(args.seeds)[0], "grid": {"seeds": list(args.seeds), "cols": args.cols}}
    print(save_png(grid_image(list(end.images), args.cols), out, record))
    return EXIT_OK
