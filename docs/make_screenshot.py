"""Render the app offscreen, generate one image with a model, and save a screenshot (for the README).

    python docs/make_screenshot.py --model PATH --prompt "red apple" --out docs/screenshot.png
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="", help="model path (default: first discovered)")
    ap.add_argument("--prompt", default="red apple")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--out", default="docs/screenshot.png")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("AIGC_DESKTOP_CONFIG_DIR", str(Path(tmp) / "config"))
    os.environ.setdefault("AIGC_DESKTOP_DATA_DIR", str(Path(tmp) / "data"))

    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings = Settings()
    if args.model:
        settings.set("model_folders", [str(Path(args.model).parent)])
    window = MainWindow(settings)
    window.resize(1400, 860)
    window.show()
    window.models.join()
    app.processEvents()
    if args.model:
        window.models.select_path(str(Path(args.model)))
    panel = window.prompt_panel
    panel.prompt.setPlainText(args.prompt)
    panel.seed.setValue(args.seed)
    panel.steps.setValue(args.steps)
    panel.batch_size.setValue(args.batch)
    if args.size:
        panel.set_default_size(args.size)
    job = window.generate()
    if job is None:
        print("could not start:", panel.message.text())
        return 1
    deadline = time.time() + 600
    while time.time() < deadline and not window.queue.rows[job].state.done:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    app.processEvents()
    window.grab().save(args.out)
    print(args.out, window.queue.rows[job].state.value)
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
