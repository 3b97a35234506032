"""Render the app offscreen with the morph timeline in use and save docs/screenshot_timeline.png:
three keyframe pictures as canvas layers, taken into the timeline ("From canvas > All visible layers"),
a VAE morph between them with the bundled emoji-morph-vae (one segment eased), every frame rendered,
the scrubber part-way through.

    python docs/make_timeline_screenshot.py [--out docs/screenshot_timeline.png] [--frames 12]

The keyframes are docs/travel_key_{1,2,3}.png (the README's travel GIFs start from them).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot_timeline.png"))
    ap.add_argument("--frames", type=int, default=12, help="frames per segment")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("AIGC_DESKTOP_CONFIG_DIR", str(Path(tmp) / "config"))
    os.environ.setdefault("AIGC_DESKTOP_DATA_DIR", str(Path(tmp) / "data"))

    from PIL import Image
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.main_window import MainWindow
    from event_loop import pump, run_until  # docs/ is on sys.path when this script runs
    from aigc_desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    apply_theme("dark", app)
    window = MainWindow(Settings({"save_outputs": False}))
    window.resize(1680, 900)  # the timeline wants ~750 px under the canvas
    window.show()
    window.models.join()
    app.processEvents()
    timeline = window.timeline

    vae = next((m for m in window.models.models if m.kind == "vae_morph"), None)
    if vae is None:
        raise SystemExit("no morph VAE found (the bundled emoji-morph-vae is in resources/models)")
    window.models.select(vae)
    pump()

    side = 192
    for i in range(3):
        with Image.open(ROOT / "docs" / f"travel_key_{i + 1}.png") as im:
            big = im.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
        # beside the generation frame (at the origin), not over it
        window.add_image_layer(big, f"key {i + 1}", at=QPointF(96 + side / 2 + i * (side + 24), side / 2))
    panel, vm = timeline.panel, timeline.vm
    panel.canvas_actions["visible"].trigger()
    vm.set_all_segments(frames=args.frames)
    panel.strip.setCurrentRow(1)
    panel.easing.setCurrentIndex(panel.easing.findData("ease-in-out"))
    panel.render()
    if not run_until(lambda: vm.frame_count and vm.rendered_count() == vm.frame_count and not vm.pending):
        raise SystemExit("timed out")
    pump(0.3)
    vm.set_current(args.frames * 2 // 3)  # part-way from the first keyframe to the second
    timeline.dock.raise_()
    window.canvas.fit()
    window.message_bar.clear()
    window.status.clearMessage()
    pump(0.6)
    out = Path(args.out)
    window.grab().save(str(out))
    print("wrote", out)
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
