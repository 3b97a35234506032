"""A helper process for the kill-during-save test: it forks a saver that saves a project in a loop and
SIGKILLs it after the delay the test sends (one line per round, "quit" to end). Run with `python -m`.

Forking from an already-imported process keeps each round to milliseconds, so the test can afford hundreds
of kills. Version v of the project is recognisable: its prompt state says v, layer v % 2 has pixel (0, 0)
= (v % 256, v // 256, 0, 255), and it holds one more history item for every multiple of 3 up to v.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from PIL import Image

from aigc_desktop.core.document import HistoryItem
from aigc_desktop.core.project import open_project


def mark(v: int) -> tuple[int, int, int, int]:
    return v % 256, (v // 256) % 256, 0, 255


def save_forever(path: str) -> None:
    project = open_project(path, lazy=True)
    doc = project.document
    v = doc.prompt_state["v"]
    while True:
        v += 1
        layer = doc.layers[v % 2]
        doc.paint(layer.id, layer.x, layer.y, Image.new("RGBA", (4, 4), mark(v)))
        doc.set_prompt_state({"v": v})
        if v % 3 == 0:
            doc.add_history(HistoryItem({"v": v}, Image.new("RGB", (48, 48), mark(v)[:3])))
        project.save()


def main() -> None:
    path = sys.argv[1]
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        delay = float(line)
        pid = os.fork()
        if pid == 0:  # the saver
            try:
                save_forever(path)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("killed", flush=True)


if __name__ == "__main__":
    main()
