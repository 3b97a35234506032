"""Render the app offscreen and save the README's screenshots:

    docs/screenshot_empty.png       the window as a new user first sees it
    docs/screenshot_generating.png  a generation running, its live preview inside the frame
    docs/screenshot.png             several accepted layers, a painted mask and a result in staging

    python docs/make_screenshot.py [--model PATH] [--prompt "red apple"] [--out-dir docs]

Without --model the first discovered diffusion model is used (the bundled emoji-diffusion on a fresh
install).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="", help="model path (default: first discovered)")
    ap.add_argument("--prompt", default="red apple")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out-dir", default="docs")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    os.environ.setdefault("AIGC_DESKTOP_CONFIG_DIR", str(Path(tmp) / "config"))
    os.environ.setdefault("AIGC_DESKTOP_DATA_DIR", str(Path(tmp) / "data"))
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def save(name: str) -> None:
        if not window.grab().save(str(out / name)):
            raise SystemExit(f"could not write {out / name}")

    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.catalog import DIFFUSION_KINDS
    from aigc_desktop.core.document import Frame
    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.canvas.commands import SetFrameCommand
    from aigc_desktop.ui.main_window import MainWindow
    from event_loop import pump, run_until  # docs/ is on sys.path when this script runs
    from aigc_desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    apply_theme("dark", app)
    settings = Settings({"save_outputs": False})
    if args.model:
        settings.set("model_folders", [str(Path(args.model).parent)])
    window = MainWindow(settings)
    window.resize(1400, 860)
    window.show()
    window.models.join()
    app.processEvents()
    if args.model:
        window.models.select_path(str(Path(args.model)))
    elif window.models.selected is None or window.models.selected.kind not in DIFFUSION_KINDS:
        first = window.models.last_of_kinds(DIFFUSION_KINDS) or next(
            (m for m in window.models.models if m.kind in DIFFUSION_KINDS), None)
        if first is not None:
            window.models.select(first)

    window.canvas.show_rect(window.document.doc.frame.rect)
    pump()
    save("screenshot_empty.png")

    panel = window.prompt_panel
    panel.prompt.setPlainText(args.prompt)
    panel.seed.setValue(args.seed)
    panel.steps.setValue(args.steps)
    doc = window.document.doc
    f = doc.frame

    def generate_and_accept(prompt: str, seed: int, frame: Frame | None) -> None:
        if frame is not None:
            window.document.push(SetFrameCommand(doc, frame))
        panel.prompt.setPlainText(prompt)
        panel.seed.setValue(seed)
        job = window.generate()
        if job is None:
            raise SystemExit(f"could not start: {window.message_bar.text()}")
        run_until(lambda: window.queue.rows[job].state.done)
        pump()
        window.document.accept_staged()

    # Several layers side by side, a mask painted over one of them, and a new result waiting in staging.
    generate_and_accept(args.prompt, args.seed, None)
    generate_and_accept("cat face", args.seed + 1, Frame(f.x + f.width, f.y, f.width, f.height))
    generate_and_accept("heart", args.seed + 2, Frame(f.x + f.width // 2, f.y + f.height, f.width, f.height))
    window.document.select(doc.mask.id)
    canvas = window.canvas
    canvas.set_brush(size=max(4.0, f.width / 4), hardness=0.6)
    canvas.begin_stroke(QPointF(f.x + f.width * 0.3, f.y + f.height * 0.3))
    for i in range(20):
        canvas.stroke_to(QPointF(f.x + f.width * (0.3 + i * 0.02), f.y + f.height * (0.3 + i * 0.02)))
    canvas.end_stroke()
    window.document.push(SetFrameCommand(doc, Frame(f.x + f.width * 2, f.y + f.height, f.width, f.height)))
    panel.prompt.setPlainText("star")
    job = window.generate()
    run_until(lambda: window.queue.rows[job].state.done)
    window.document.select(doc.layers[-1].id)
    canvas.fit()
    pump(0.5)
    save("screenshot.png")

    # A generation in flight: stop at a preview part-way through the steps.
    window.document.discard_staged()
    window.document.push(SetFrameCommand(doc, Frame(f.x, f.y + f.height * 2, f.width, f.height)))
    panel.steps.setValue(max(args.steps, 40))
    panel.prompt.setPlainText("sun with face")
    canvas.fit()
    seen: list[int] = []
    window.queue.preview_event.connect(lambda _id, ev: seen.append(ev.step))
    job = window.generate()
    run_until(lambda: len(seen) >= max(3, panel.steps.value() // 3) or window.queue.rows[job].state.done)
    save("screenshot_generating.png")
    window.cancel_running()
    run_until(lambda: window.queue.rows[job].state.done, 60)
    print("wrote", *(str(out / n) for n in ("screenshot_empty.png", "screenshot_generating.png", "screenshot.png")))
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
