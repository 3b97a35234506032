"""Large projects: open a project with 500 history images and 20 layers of 2048x2048, then save after one change.

    python bench/bench_project.py [--history 500] [--layers 20] [--side 2048] [--history-side 512] [--folder DIR]

Prints (1) the time to a usable Document (manifest, every PNG header checked, layers and history lazy) and
to all thumbnails shown, against the 2 s target; (2) the time to save after painting one stroke on one
layer: unchanged members are copied from the previous file, only that layer is encoded again; and, for
scale, the time to encode that one layer alone. The project is built once and kept in --folder (default:
a temporary folder); building it takes a while (every image is encoded once).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from aigc_desktop.core.document import Document, HistoryItem, Layer  # noqa: E402
from aigc_desktop.core.project import open_project, save_document  # noqa: E402
from aigc_desktop.core.project import project as project_module  # noqa: E402


def painting(rng: np.random.Generator, side_w: int, side_h: int, channels: int) -> np.ndarray:
    """Smooth colour fields with a little grain: compresses like a painted layer, not like pure noise."""
    small = Image.fromarray(rng.integers(0, 256, (16, 16, channels), dtype=np.uint8).squeeze())
    base = np.asarray(small.resize((side_w, side_h), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-3, 4, base.shape, dtype=np.int16)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def build(path: Path, history: int, layers: int, side: int, history_side: int) -> None:
    rng = np.random.default_rng(0)
    doc = Document.new(side, side)
    for i in range(layers):
        doc.add_layer(Layer(Image.fromarray(painting(rng, side, side, 4), "RGBA"), name=f"Layer {i + 1}"))
    for i in range(history):
        record = {"prompt": f"image {i}", "seed": i, "steps": 20, "cfg_scale": 7.0, "scheduler": "euler_a",
                  "width": history_side, "height": history_side, "model": {"name": "sd15", "sha256": "ab" * 32}}
        doc.add_history(HistoryItem(record, Image.fromarray(painting(rng, history_side, history_side, 3), "RGB")))
    save_document(doc, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", type=int, default=500)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--history-side", type=int, default=512)
    ap.add_argument("--folder", default=None, help="keep the built project here (reused when present)")
    args = ap.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="bench-project-"))
    path = folder / f"bench-{args.history}h-{args.layers}x{args.side}.aigc"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.history, args.layers, args.side, args.history_side)
        print(f"built {path.name} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")

    t0 = time.perf_counter()
    project = open_project(path)  # large: lazy
    t1 = time.perf_counter()
    doc = project.document
    for item in doc.history:
        item.thumbnail(128)
    for layer in doc.layers:
        layer.thumbnail(128)
    t2 = time.perf_counter()
    mode = "eagerly (small project)" if any(la.loaded for la in doc.layers) else "lazily"
    print(f"open:  {t1 - t0:.2f} s to a usable Document ({mode}), {t2 - t0:.2f} s with all "
          f"{len(doc.history) + len(doc.layers)} thumbnails (target < 2 s)")

    layer = doc.layers[len(doc.layers) // 2]
    t3 = time.perf_counter()
    doc.paint(layer.id, layer.x + 100, layer.y + 100, Image.new("RGBA", (64, 64), (200, 30, 30, 255)))
    t4 = time.perf_counter()
    project.save()
    t5 = time.perf_counter()
    project_module._png_bytes(layer.image)
    t6 = time.perf_counter()
    print(f"save:  {t5 - t4:.2f} s after one stroke on one layer ({path.stat().st_size / 2**20:.0f} MiB file; "
          f"that layer's decode {t4 - t3:.2f} s, its encode alone {t6 - t5:.2f} s)")


if __name__ == "__main__":
    main()
