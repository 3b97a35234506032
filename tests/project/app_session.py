"""The real app as a child process for the app-level crash-recovery test (run with `python -m`).

    python -m tests.project.app_session STEP [STEP ...]

Builds the MainWindow offscreen with a FakeEngine (no torch), with the environment's
AIGC_DESKTOP_CONFIG_DIR / AIGC_DESKTOP_DATA_DIR, then does the steps one at a time through the window, the
way an artist would, printing one line per finished step to stdout, then runs the event loop (autosave
timer included) until the test kills it:

    layer           add a layer of known pixels              -> "layer <id> <sha256>"
    mask            paint a mask stroke with the canvas brush -> "mask <sha256 of the mask's pixels>"
    gen             generate one image (its own prompt/seed)  -> "gen <history id> <sha256> <record json>"
    accept          accept the staged result as a layer       -> "accept <layer id> <sha256>"
    save:PATH       File > Save As PATH                       -> "saved <path>"
    autosave        wait for the autosave timer's snapshot    -> "autosaved <snapshot seq>"

The sha256 is of `image_digest` (mode, size and raw pixel bytes). Starts with "session <recovery folder>",
ends with "ready".
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

MODEL_DIR_NAME = "fake-model"
SIZE = 64


def image_digest(image) -> str:
    """What "equal pixels" means here: the same mode, size and bytes."""
    h = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def layer_pixels(index: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(500 + index)
    return Image.fromarray(rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), "RGBA")


def main(steps: list[str]) -> None:
    from PySide6.QtCore import QEventLoop, QPointF
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.catalog import ModelInfo
    from aigc_desktop.core.document import Layer
    from aigc_desktop.core.paths import data_dir
    from aigc_desktop.core.settings import Settings
    from aigc_desktop.engines.base import FakeEngine
    from aigc_desktop.ui.canvas.commands import AddLayerCommand
    from aigc_desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    model = data_dir() / MODEL_DIR_NAME  # never read: the FakeEngine stands in for every diffusion job
    settings = Settings({"save_outputs": False, "autosave_seconds": 3600, "models_dir": str(model.parent)})
    window = MainWindow(settings, engines={"diffusion": FakeEngine()}, scan_models=False)
    window.show()
    window.models.select(ModelInfo(str(model), "fake", "diffusers", "sd15", None, 0, native_size=SIZE))
    doc = window.document.doc
    panel = window.prompt_panel
    panel.width_box.setValue(SIZE)
    panel.height_box.setValue(SIZE)
    panel.steps.setValue(3)

    def say(*words: object) -> None:
        print(*words, flush=True)

    def run_until(cond, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {window.message_bar.text()}")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)

    say("session", window.project.session.folder)
    generated = 0
    for step in steps:
        name, _, arg = step.partition(":")
        if name == "layer":
            layer = Layer(layer_pixels(len(doc.layers)), name=f"added {len(doc.layers)}", x=8, y=4)
            window.document.push(AddLayerCommand(doc, layer))
            say("layer", layer.id, image_digest(layer.image))
        elif name == "mask":
            window.document.select(doc.mask.id)
            canvas = window.canvas
            canvas.set_brush(size=10.0, hardness=0.8)
            canvas.begin_stroke(QPointF(12, 14))
            for i in range(12):
                canvas.stroke_to(QPointF(12 + 3 * i, 14 + 2 * i))
            canvas.end_stroke()
            say("mask", image_digest(doc.mask.image))
        elif name == "gen":
            generated += 1
            panel.prompt.setPlainText(f"generation {generated}")
            panel.seed.setValue(40 + generated)
            before = len(doc.history)
            job = window.generate()
            if job is None:
                raise SystemExit(f"could not start: {window.message_bar.text()}")
            run_until(lambda: window.queue.rows[job].state.done and len(doc.history) > before)
            item = doc.history[-1]
            say("gen", item.id, image_digest(item.image), json.dumps(item.record, sort_keys=True))
        elif name == "accept":
            layer_id = window.document.accept_staged()
            if layer_id is None:
                raise SystemExit("nothing staged to accept")
            say("accept", layer_id, image_digest(doc.get_layer(layer_id).image))
        elif name == "save":
            if not window.project.save(arg):
                raise SystemExit(f"could not save: {window.message_bar.text()}")
            say("saved", arg)
        elif name == "autosave":
            session = window.project.session
            settings.set("autosave_seconds", 1)  # the window's own 1 s timer writes the snapshot
            run_until(lambda: session._snapshot_seq == session._seq and not window.project.autosaver.pending
                      and (session.folder / "autosave.aigc").exists(), timeout=10)
            settings.set("autosave_seconds", 3600)
            say("autosaved", session._snapshot_seq)
        else:
            raise SystemExit(f"unknown step {step!r}")
    say("ready")
    app.exec()  # the app idles (its autosave timer running) until the test kills it


if __name__ == "__main__":
    main(sys.argv[1:])
