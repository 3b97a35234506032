"""Issue 10 item 4, end to end: the real app (MainWindow, offscreen, a FakeEngine) is killed with SIGKILL in
the middle of a session with several generations, and the next start restores everything.

The child (tests/project/app_session.py) adds a layer, paints a mask with the canvas brush, generates one
image at a time, accepts some from staging, may save the user's file and may wait for an autosave; it prints
one line per step with a sha256 of the pixels. The test kills it at a chosen line, then starts a second
window here with the same data folder and answers its recovery question the way a user would (Later, then
Restore), and compares the restored document with what the child reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from aigc_desktop.core.project import open_project  # noqa: E402
from aigc_desktop.core.project.recovery import JOURNAL, SNAPSHOT, find_recoverable, recovery_dir  # noqa: E402
from aigc_desktop.core.settings import Settings  # noqa: E402
from aigc_desktop.engines.base import FakeEngine  # noqa: E402
from tests.project.app_session import image_digest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")


@dataclass
class State:
    """The document as the child reported it: layers (id, sha), mask sha, history (id, sha, record)."""

    layers: list[tuple[str, str]] = field(default_factory=list)
    mask: str | None = None
    history: list[tuple[str, str, dict]] = field(default_factory=list)

    def copy(self) -> "State":
        return State(list(self.layers), self.mask, list(self.history))


@dataclass
class Session:
    state: State
    folder: Path  # the child's recovery folder
    saved: State | None = None  # what the user's file held when saved
    saved_bytes: bytes | None = None
    autosaved: State | None = None  # what the last snapshot held


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def journaled(folder: Path, item_id: str) -> bool:
    """The generation's journal entry is committed (its .json is written after its .png)."""
    return any((folder / JOURNAL).glob(f"*-{item_id}.json"))


def run_and_kill(tmp_path: Path, steps: list[str], kill_after: int) -> Session:
    """Run the app with `steps` and SIGKILL it right after the `kill_after`-th step's line (a generation:
    once its journal entry is on disk, without any save or autosave — what the journal promises)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    stderr = open(tmp_path / "child.stderr", "w+")
    child = subprocess.Popen([sys.executable, "-m", "tests.project.app_session", *steps], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=stderr, text=True)
    state = State()
    session = Session(state, Path())
    try:
        for done in range(1, kill_after + 1):
            line = child.stdout.readline()
            if not line:
                stderr.seek(0)
                pytest.fail(f"the app ended early (rc {child.wait()}):\n{stderr.read()[-3000:]}")
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "session":
                session.folder = Path(rest)
                line = child.stdout.readline()
                word, _, rest = line.rstrip("\n").partition(" ")
            if word == "layer" or word == "accept":
                state.layers.append(tuple(rest.split(" ")))
            elif word == "mask":
                state.mask = rest
            elif word == "gen":
                item_id, sha, record = rest.split(" ", 2)
                state.history.append((item_id, sha, json.loads(record)))
            elif word == "saved":
                session.saved, session.saved_bytes = state.copy(), Path(rest).read_bytes()
            elif word == "autosaved":
                session.autosaved = state.copy()
            else:
                pytest.fail(f"unexpected line from the app: {line!r}")
        if word == "gen":
            wait_for(lambda: journaled(session.folder, state.history[-1][0]), 5, "the journal entry")
        assert find_recoverable() == []  # a live session is never offered
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        stderr.close()
    return session


def answer_recovery(monkeypatch, button: str) -> None:
    def exec_(box):
        for b in box.buttons():
            if b.text() == button:
                b.click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", exec_)


def restart_and_restore(qtbot, monkeypatch, tmp_path):
    """The next start: a fresh window on the same data folder; the user says Later once, then Restore."""
    from aigc_desktop.ui.main_window import MainWindow
    from aigc_desktop.ui.viewmodels import project as project_vm

    window = MainWindow(Settings({"save_outputs": False, "models_dir": str(tmp_path / "none")}),
                        engines={"diffusion": FakeEngine()}, scan_models=False)
    qtbot.addWidget(window)
    window.show()
    pending = window.project.pending_recovery()
    assert len(pending) == 1
    answer_recovery(monkeypatch, "Later")
    assert project_vm.offer_recovery(window.project, window) is False
    assert pending[0].folder.exists() and len(window.project.pending_recovery()) == 1  # declining keeps it
    answer_recovery(monkeypatch, "Restore")
    assert project_vm.offer_recovery(window.project, window) is True
    return window, pending[0]


def check_history(doc, state: State) -> None:
    """Every generation, in order, with the pixels and the record the app had."""
    assert [h.id for h in doc.history] == [h[0] for h in state.history]
    for (item_id, sha, record), item in zip(state.history, doc.history):
        assert image_digest(item.image) == sha, f"pixels of {item_id}"
        assert item.record == record


def check_canvas(doc, state: State) -> None:
    assert [(la.id, image_digest(la.image)) for la in doc.layers] == state.layers
    assert image_digest(doc.mask.image) == state.mask


# The steps of each session and the line after which the app is killed.
BEFORE_AUTOSAVE = ["layer", "mask", "gen", "accept", "gen", "gen", "accept", "gen", "gen"]


def test_killed_before_any_autosave_restores_every_generation(qtbot, monkeypatch, tmp_path):
    """Killed right after the 5th generation, long before the autosave interval: the journal has them all
    (the canvas edits since the start are what an interval may lose; they are not in any file)."""
    session = run_and_kill(tmp_path, BEFORE_AUTOSAVE, kill_after=len(BEFORE_AUTOSAVE))
    assert len(session.state.history) == 5 and not (session.folder / SNAPSHOT).exists()
    offer = find_recoverable()[0]
    assert offer.generations == 5 and not offer.has_snapshot and "5 generations journaled" in offer.describe()
    window, _ = restart_and_restore(qtbot, monkeypatch, tmp_path)
    try:
        check_history(window.document.doc, session.state)
        assert window.isWindowModified() and window.project.path is None
    finally:
        window.close()
    assert find_recoverable() == [] and list(recovery_dir().iterdir()) == []  # restored, then a clean exit


def test_killed_after_an_autosave_restores_canvas_and_later_generations(qtbot, monkeypatch, tmp_path):
    """A saved project, more edits, an autosave by the window's timer, two more generations, then the kill:
    the snapshot's layers and mask come back with every generation; the user's file is never written."""
    user_file = tmp_path / "work" / "mine.aigc"
    user_file.parent.mkdir()
    steps = ["layer", "mask", "gen", "accept", "gen", f"save:{user_file}", "gen", "accept", "mask", "autosave",
             "gen", "accept", "gen"]
    session = run_and_kill(tmp_path, steps, kill_after=len(steps))
    assert user_file.read_bytes() == session.saved_bytes  # autosave went to the recovery folder only
    mine = open_project(user_file).document
    check_history(mine, session.saved)
    check_canvas(mine, session.saved)

    window, offer = restart_and_restore(qtbot, monkeypatch, tmp_path)
    try:
        doc = window.document.doc
        assert offer.has_snapshot and offer.generations == 2 and offer.source == str(user_file)
        check_history(doc, session.state)  # 3 from the snapshot, the last 2 from the journal
        check_canvas(doc, session.autosaved)  # the layer accepted after the autosave is not in it
        assert len(session.autosaved.layers) == 3 and session.autosaved.mask != session.saved.mask
        assert window.project.path == user_file and window.isWindowModified()  # Save goes back there
        assert user_file.read_bytes() == session.saved_bytes  # restoring does not write it either
    finally:
        window.close()
    assert user_file.read_bytes() == session.saved_bytes


def test_killed_right_after_an_autosave(qtbot, monkeypatch, tmp_path):
    """Killed the moment the snapshot is written (the journal pruned of what it holds)."""
    steps = ["gen", "accept", "mask", "gen", "layer", "gen", "autosave"]
    session = run_and_kill(tmp_path, steps, kill_after=len(steps))
    assert list((session.folder / JOURNAL).iterdir()) == []  # all in the snapshot
    window, offer = restart_and_restore(qtbot, monkeypatch, tmp_path)
    try:
        assert offer.has_snapshot and offer.generations == 0
        check_history(window.document.doc, session.state)
        check_canvas(window.document.doc, session.state)
    finally:
        window.close()


def test_killed_after_a_save_without_autosave_keeps_the_saved_work(qtbot, monkeypatch, tmp_path):
    """Saved, then more generations, killed before any autosave: the restore starts from the user's file
    (its layers, mask and history) and adds every generation journaled since; the file is not written."""
    user_file = tmp_path / "mine.aigc"
    steps = ["layer", "mask", "gen", "accept", "gen", f"save:{user_file}", "gen", "gen", "accept", "gen"]
    session = run_and_kill(tmp_path, steps, kill_after=len(steps))
    offer = find_recoverable()[0]
    assert not offer.has_snapshot and offer.generations == 3 and offer.source == str(user_file)
    window, _ = restart_and_restore(qtbot, monkeypatch, tmp_path)
    try:
        doc = window.document.doc
        check_history(doc, session.state)
        check_canvas(doc, session.saved)  # what the file holds; the accept after it was in no file
        assert window.project.path == user_file and window.isWindowModified()
    finally:
        window.close()
    assert user_file.read_bytes() == session.saved_bytes
