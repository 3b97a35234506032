"""The `dataset` and `train` subcommands (added to the CLI by aigc_desktop.cli). No torch at import time.

    aigc-desktop dataset emoji --out DIR [--size 64] [--subset all|curated] [--skin-tones]
    aigc-desktop train {diffusion,stylegan,vae} --data DIR --out DIR [--resolution N] [--steps N] [--batch N]
                       [--resume] [--set NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from aigc_desktop.core.errors import UserError
from aigc_desktop.training.registry import DESCRIPTIONS, TRAINERS


def _rgb(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
        if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected R,G,B (0-255 each), got '{text}'") from None
    return parts  # type: ignore[return-value]


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("dataset", help="build a training data set (folder of PNG + .txt captions)")
    dsub = d.add_subparsers(dest="dataset_kind", required=True, parser_class=type(d))
    e = dsub.add_parser("emoji", help="render the Noto Color Emoji font with the emoji's English names")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    e.add_argument("--subset", choices=("all", "curated"), default="all",
                   help="all emoji, or a curated few hundred distinct ones (fruit, food, animals, weather, faces)")
    e.add_argument("--skin-tones", action="store_true", help="include the skin-tone variants")
    e.add_argument("--font", default=None, help="path to NotoColorEmoji.ttf (default: the system's)")
    e.add_argument("--background", type=_rgb, default=None, help="background R,G,B (default 236,236,236)")

    epilog = "trainer options for --set (NAME=VALUE): see `aigc-desktop train KIND --list-options`"
    t = sub.add_parser("train", help="train a model on a folder of images (+ .txt captions)", epilog=epilog)
    t.add_argument("model", choices=tuple(TRAINERS), help="; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    t.add_argument("--data", help="folder of images (PNG/JPEG) with optional .txt captions")
    t.add_argument("--out", help="run folder: checkpoint, samples, losses, exported model")
    t.add_argument("--resolution", type=int, default=None, help="image size (default 64)")
    t.add_argument("--steps", type=int, default=None, help="total training steps (with --resume: the new total)")
    t.add_argument("--batch", type=int, default=None, help="images per step")
    t.add_argument("--lr", type=float, default=None, help="learning rate")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None, help="auto | cuda | mps | cpu")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (0: automatic)")
    t.add_argument("--sample-every", type=int, default=None, help="save a sample grid every N steps")
    t.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint and export every N steps")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    t.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a trainer option (repeatable)")
    t.add_argument("--list-options", action="store_true", help="list the trainer's options and exit")


def cmd_dataset(args: argparse.Namespace) -> int:
    from aigc_desktop.training.dataset import DEFAULT_BACKGROUND, build_emoji_dataset

    from tqdm import tqdm

    bar = tqdm(desc="render emoji", unit="glyph", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = build_emoji_dataset(args.out, size=args.size, skin_tones=args.skin_tones, subset=args.subset,
                                     font=args.font, background=args.background or DEFAULT_BACKGROUND,
                                     progress=progress)
    finally:
        bar.close()
    print(f"{report.written} images written to {report.folder} ({report.dropped} dropped: blank or several glyphs)")
    return 0


def run_options(out: Path, kind: str) -> dict[str, Any]:
    """The options an existing run was started with (its config.json), so --resume continues it as it was;
    options given on the command line override them. Empty when the folder holds no run yet."""
    path = out / "config.json"
    if not path.is_file():
        return {}
    from aigc_desktop.core.params import shown
    from aigc_desktop.core.safe_io import MiB, load_json_file

    saved = load_json_file(path, f"run config {out.name}/config.json", max_bytes=MiB, max_depth=8)
    if not isinstance(saved, dict):
        raise UserError(f"{path} is not a run config (a JSON object), found {type(saved).__name__}")
    if saved.get("kind") not in (None, kind):
        found = saved["kind"] if isinstance(saved["kind"], str) and len(saved["kind"]) <= 40 else shown(saved["kind"], 40)
        raise UserError(f"{out} is a {found} run, not {kind}")
    return {k: v for k, v in saved.items() if k not in ("kind", "resume")}


def train_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave (unset ones keep each trainer's own defaults)."""
    options: dict[str, Any] = {}
    for name in ("data", "out", "resolution", "steps", "batch", "lr", "seed", "device", "threads",
                 "sample_every", "checkpoint_every"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.resume:
        options["resume"] = True
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--set expects NAME=VALUE, got '{item}'")
        options[name.strip().replace("-", "_")] = value.strip()
    return options


def cmd_train(args: argparse.Namespace) -> int:
    from aigc_desktop.training.registry import make_config, option_help, trainer_class

    if args.list_options:
        for name, default in option_help(args.model):
            print(f"{name:<20} {default!r}")
        return 0
    options = train_options(args)
    if args.resume and args.out:
        options = {**run_options(Path(args.out), args.model), **options}
    if not options.get("data") or not options.get("out"):
        raise UserError("train needs --data DIR and --out DIR (with --resume, --out DIR of an existing run)")
    config = make_config(args.model, **options)
    from aigc_desktop.training.common import Hooks

    cancel = {"set": False}

    def on_sigint(*_: Any) -> None:
        cancel["set"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    hooks = Hooks(progress_bar=True, cancelled=lambda: cancel["set"],
                  status=lambda text: print(text, file=sys.stderr, flush=True))
    from aigc_desktop.core.errors import CancelRequested

    try:
        folder = trainer_class(args.model)(config, hooks).run()
    except CancelRequested:
        print(f"Stopped; checkpoint saved in {config.out} (continue with --resume).", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    print(folder)
    return 0
