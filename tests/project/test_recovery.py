"""Autosave and crash recovery: a killed session is offered back with everything it generated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from PIL import Image

from aigc_desktop.core.document import HistoryItem
from aigc_desktop.core.project import Project, open_project, save_document
from aigc_desktop.core.project.recovery import Autosaver, RecoverySession, find_recoverable, recovery_dir
from tests.project.crash_session import GENERATIONS, generated
from tests.project.helpers import make_document, pixels

ROOT = Path(__file__).resolve().parents[2]


def test_killed_session_restores_everything(tmp_path):
    doc = make_document(seed=11, history=2)
    user_file = save_document(doc, tmp_path / "work.aigc")
    user_bytes = user_file.read_bytes()
    root = tmp_path / "recovery"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "tests.project.crash_session", str(user_file), str(root)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert find_recoverable(root) == []  # a live session is never offered
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert user_file.read_bytes() == user_bytes  # autosave never writes over the user's file
    found = find_recoverable(root)
    assert len(found) == 1
    offer = found[0]
    assert offer.source == str(user_file) and offer.has_snapshot and offer.generations == 2
    assert datetime.fromtimestamp(offer.when).strftime("%Y-%m-%d %H:%M") in offer.describe()
    assert "work.aigc" in offer.describe()

    project = offer.restore()
    restored = project.document
    assert project.path == user_file  # Save goes back to the file it was editing
    assert [h.id for h in restored.history] == [h.id for h in doc.history] + [f"gen{i}" for i in range(GENERATIONS)]
    for i in range(GENERATIONS):
        record, image = generated(i)
        item = restored.get_history(f"gen{i}")
        assert item.record == record and pixels(item.image) == pixels(image)
    assert restored.layers[0].image.getpixel((0, 0)) == (250, 1, 2, 255)  # the paint before the snapshot
    assert pixels(restored.layers[1].image) == pixels(doc.layers[1].image)
    assert restored.timeline == doc.timeline and restored.prompt_state == doc.prompt_state

    assert len(find_recoverable(root)) == 1  # declining (not restoring) keeps the data ...
    offer.discard()
    assert find_recoverable(root) == [] and not offer.folder.exists()  # ... until it is discarded


def test_clean_exit_and_saved_work_leave_nothing(tmp_path):
    assert recovery_dir().parent == Path(os.environ["AIGC_DESKTOP_DATA_DIR"])
    project = Project(make_document(seed=12), tmp_path / "p.aigc")
    session = RecoverySession()
    clock = [0.0]
    saver = Autosaver(session, project, interval_s=60, clock=lambda: clock[0])
    project.document.add_history(HistoryItem({"seed": 1}, Image.new("RGB", (8, 8), (1, 2, 3))))
    session.flush()
    assert len(list((session.folder / "journal").iterdir())) == 2  # the image and its entry
    assert not saver.due()
    clock[0] = 59
    assert not saver.tick()
    clock[0] = 60
    assert saver.tick() and not saver.pending and (session.folder / "autosave.aigc").exists()
    assert list((session.folder / "journal").iterdir()) == []  # the snapshot holds the journaled image
    clock[0] = 200
    assert not saver.tick()  # nothing changed since
    project.save()
    saver.saved()
    assert not (session.folder / "autosave.aigc").exists()
    session._lock.close()  # as if the app died now: nothing unsaved, so nothing is offered
    assert find_recoverable() == []
    session.close()
    assert not session.folder.exists()


def test_autosave_of_an_opened_project_copies_from_its_file(tmp_path):
    path = save_document(make_document(seed=13), tmp_path / "big.aigc")
    project = open_project(path, lazy=True)
    saver = Autosaver(RecoverySession(), project, interval_s=1, clock=lambda: 10.0)
    project.document.set_prompt_state({"prompt": "changed"})
    saver._last = 0.0
    assert saver.tick()
    assert not any(la.loaded for la in project.document.layers)  # copied, not decoded
    assert project.path == path  # still attached to the user's file
    snapshot = open_project(saver.session.folder / "autosave.aigc").document
    assert snapshot.prompt_state == {"prompt": "changed"}
    assert pixels(snapshot.layers[0].image) == pixels(project.document.layers[0].image)


def test_autosave_disabled_with_zero_interval(tmp_path):
    saver = Autosaver(RecoverySession(), Project(make_document()), interval_s=0, clock=lambda: 1e9)
    saver.project.document.set_prompt_state({"x": 1})
    assert saver.pending and not saver.tick()


def test_a_damaged_snapshot_still_gives_back_the_generations(tmp_path):
    root = tmp_path / "recovery"
    session = RecoverySession(root)
    project = Project(make_document(seed=14))
    saver = Autosaver(session, project, interval_s=1, clock=lambda: 100.0)
    saver._last = 0.0
    project.document.set_prompt_state({"x": 1})
    assert saver.tick()
    project.document.add_history(HistoryItem({"seed": 77}, Image.new("RGB", (8, 8), (7, 7, 7)), id="late"))
    session.flush()
    (session.folder / "autosave.aigc").write_bytes(b"garbage")
    session._lock.close()
    offer = find_recoverable(root)[0]
    restored = offer.restore().document
    assert [h.id for h in restored.history] == ["late"]
    assert offer.problem and "could not be read" in offer.problem and "\n" not in offer.problem


def test_without_a_snapshot_the_users_file_is_the_base(tmp_path):
    """Saved (or opened), then generations, then a crash before any autosave: the restore is the user's file
    plus the journal, never an empty canvas under the file's name; a file gone since says so."""
    doc = make_document(seed=15, history=2)
    path = save_document(doc, tmp_path / "mine.aigc")
    before = path.read_bytes()
    root = tmp_path / "recovery"
    project = open_project(path)
    saver = Autosaver(RecoverySession(root), project, interval_s=60, clock=lambda: 0.0)
    project.document.add_history(HistoryItem({"seed": 88}, Image.new("RGB", (8, 8), (8, 8, 8)), id="after"))
    saver.session.flush()
    saver.session._lock.close()  # killed
    offer = find_recoverable(root)[0]
    assert not offer.has_snapshot and offer.source == str(path)
    restored = offer.restore()
    assert restored.path == path and offer.problem is None
    assert [h.id for h in restored.document.history] == [h.id for h in doc.history] + ["after"]
    assert [pixels(la.image) for la in restored.document.layers] == [pixels(la.image) for la in doc.layers]
    assert pixels(restored.document.mask.image) == pixels(doc.mask.image)
    assert path.read_bytes() == before

    path.unlink()  # moved away since: the generations still come back, and the message says why only they
    again = offer.restore()
    assert [h.id for h in again.document.history] == ["after"] and again.document.layers == []
    assert "mine.aigc could not be opened" in offer.problem and "\n" not in offer.problem


def test_journal_writes_off_the_calling_thread_in_order(tmp_path, monkeypatch):
    import threading

    from aigc_desktop.core.project import recovery

    session = RecoverySession(tmp_path / "r")
    writers = []
    real = recovery._png_bytes
    monkeypatch.setattr(recovery, "_png_bytes", lambda im: writers.append(threading.current_thread()) or real(im))
    for i in range(5):
        session.journal(HistoryItem({"seed": i}, Image.new("RGB", (8, 8), (i, 0, 0)), id=f"g{i}"))
    session.flush()
    assert writers and threading.main_thread() not in writers
    names = sorted(p.name for p in (session.folder / "journal").glob("*.json"))
    assert names == [f"{i + 1:06d}-g{i}.json" for i in range(5)]
    session._lock.close()
    restored = find_recoverable(tmp_path / "r")[0].restore().document
    assert [h.record["seed"] for h in restored.history] == [0, 1, 2, 3, 4]


def test_a_journal_that_cannot_be_written_is_reported(tmp_path):
    session = RecoverySession(tmp_path / "r")
    saver = Autosaver(session, Project(make_document()), interval_s=60, clock=lambda: 0.0)
    (session.folder / "journal").rmdir()
    (session.folder / "journal").write_text("not a folder")
    saver.project.document.add_history(HistoryItem({"seed": 1}, Image.new("RGB", (8, 8))))
    session.flush()
    saver.tick()
    assert saver.last_error and saver.last_error.startswith("Could not journal a generation for recovery")
