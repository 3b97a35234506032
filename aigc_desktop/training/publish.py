"""Copy a finished run's model into a model folder (e.g. resources/models/NAME) with its latest sample grid,
and summarise the run for its model card (steps, training time, final losses). No torch.

    python -m aigc_desktop.training.publish RUN_DIR DEST_DIR [MODEL_DIR]
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safe_io import MiB, load_json_file
from aigc_desktop.training.runfiles import MODEL_DIR, SAMPLES_DIR, read_losses

KEEP = ("MODEL_CARD.md",)  # files in DEST written by hand, kept across publishes


@dataclass
class RunSummary:
    kind: str
    steps: int
    hours: float  # training time (steps only, all sessions)
    final_losses: dict[str, float]  # mean of the last five log rows
    config: dict


def model_steps(model: Path) -> int | None:
    """The training step an exported model was written at (each trainer records it), or None."""
    for name, path in (("training.json", ("trained_steps",)), ("vae_morph.json", ("trained_steps",)),
                       ("stylegan.json", ("source", "steps"))):
        if not (model / name).is_file():
            continue
        try:
            value = load_json_file(model / name, max_bytes=MiB, max_depth=16)
        except UserError:
            continue
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int):
            return value
    return None


def summarize(run: str | Path, upto: int | None = None) -> RunSummary:
    """Steps, training time and final losses of a run (up to step `upto`: an exported model's step)."""
    run = Path(run)
    try:
        config = load_json_file(run / "config.json", "run config", max_bytes=MiB, max_depth=8)
    except UserError as exc:
        raise UserError(f"{run} is not a training run folder: {exc}") from None
    if not isinstance(config, dict):
        raise UserError(f"{run} is not a training run folder: its config.json is not a JSON object")
    rows = [r for r in read_losses(run) if upto is None or r.get("step", 0) <= upto]
    tail = rows[-5:]
    names = [k for k in (tail[-1] if tail else {}) if k not in ("step", "time")]
    final = {k: round(sum(r.get(k, 0.0) for r in tail) / len(tail), 5) for k in names}
    return RunSummary(kind=config["kind"] if isinstance(config.get("kind"), str) else "", steps=int(rows[-1]["step"]) if rows else 0,
                      hours=round(float(rows[-1].get("time", 0.0)) / 3600, 2) if rows else 0.0,
                      final_losses=final, config=config)


def publish(run: str | Path, dest: str | Path, model: str | Path | None = None) -> RunSummary:
    """Copy `model` (default: the run's exported model) to `dest`, with the run's sample grid at or before the
    model's step; returns the run's summary up to that step."""
    run, dest = Path(run), Path(dest)
    model = Path(model) if model else run / MODEL_DIR
    if not model.is_dir():
        raise UserError(f"{run} has no exported model yet")
    dest.mkdir(parents=True, exist_ok=True)
    for child in dest.iterdir():
        if child.name in KEEP:
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in model.iterdir():
        target = dest / child.name
        shutil.copytree(child, target) if child.is_dir() else shutil.copy2(child, target)
    upto = model_steps(model)
    grids = [g for g in sorted((run / SAMPLES_DIR).glob("step_*.png")) if upto is None or int(g.stem[5:]) <= upto]
    if grids:
        shutil.copy2(grids[-1], dest / "samples.png")
    return summarize(run, upto)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print(json.dumps(asdict(publish(*args)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
