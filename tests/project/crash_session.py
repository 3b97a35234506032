"""A helper process for the crash-recovery test: an editing session on a saved project with several
generations, autosaved once in the middle, then killed by the test. Run with `python -m`."""

from __future__ import annotations

import sys
import time

import numpy as np
from PIL import Image

from aigc_desktop.core.document import HistoryItem
from aigc_desktop.core.project import open_project
from aigc_desktop.core.project.recovery import Autosaver, RecoverySession

GENERATIONS = 5
SNAPSHOT_AFTER = 3


def generated(i: int) -> tuple[dict, Image.Image]:
    rng = np.random.default_rng(100 + i)
    image = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), "RGB")
    return {"prompt": f"generation {i}", "seed": i, "model": {"name": "tiny", "sha256": "ef" * 32}}, image


def main() -> None:
    project_path, root = sys.argv[1], sys.argv[2]
    project = open_project(project_path)
    clock = [0.0]
    saver = Autosaver(RecoverySession(root), project, interval_s=60, clock=lambda: clock[0])
    layer = project.document.layers[0]
    project.document.paint(layer.id, layer.x, layer.y, Image.new("RGBA", (3, 3), (250, 1, 2, 255)))
    for i in range(GENERATIONS):
        record, image = generated(i)
        project.document.add_history(HistoryItem(record, image, id=f"gen{i}"))
        if i + 1 == SNAPSHOT_AFTER:
            clock[0] += 61
            assert saver.tick()
    saver.session.flush()  # the writer thread has put the last two generations on disk
    print("ready", flush=True)
    time.sleep(600)  # killed here, with two generations only in the journal


if __name__ == "__main__":
    main()
