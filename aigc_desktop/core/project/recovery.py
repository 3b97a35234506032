"""Autosave and crash recovery (Qt-free): unsaved work goes to the user data folder, never over the user's file.

Each app run owns one session folder under `<data dir>/recovery/`:

    session.json            when it started / last wrote, which project file it edits (if any)
    session.lock            locked while the run is alive (flock / msvcrt): a free lock means it ended
    autosave.aigc           a snapshot of the whole document, rewritten atomically every N seconds when changed
    journal/000001-<id>.png every generated image, written (atomically) the moment it arrives ...
    journal/000001-<id>.json ... then its entry (id, time, size, record): the entry's presence commits it

The journal is append-only: entries are never rewritten, only removed once a snapshot holds them. A clean
exit removes the folder. On the next start, a folder whose lock is free and that holds work is a crashed
session: the app offers to restore it (saying from when); declining keeps it until the user discards it.
Restoring opens the snapshot (without one: the user's file it was editing, which then holds everything up
to the last save or open) and adds every journaled generation it does not have yet.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable

from aigc_desktop.core import paths
from aigc_desktop.core.document import Document, HistoryItem
from aigc_desktop.core.document import events as ev
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.files import atomic_write
from aigc_desktop.core.project.container import decode_png
from aigc_desktop.core.project.errors import ProjectError
from aigc_desktop.core.project.project import Project, _history_image, _jsonable, _png_bytes, open_project
from aigc_desktop.core.safe_io import MiB, load_json_file, read_bytes

SESSION = "session.json"
LOCK = "session.lock"
SNAPSHOT = "autosave.aigc"
JOURNAL = "journal"
DEFAULT_INTERVAL_S = 60
_ENTRY = re.compile(r"(\d{6,})-([A-Za-z0-9_-]{1,64})\.json")


def recovery_dir() -> Path:
    return paths.data_dir() / "recovery"


# ------------------------------------------------------------------------------------------ the lock


def _try_lock(handle: IO) -> bool:
    try:
        if os.name == "nt":  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _lock_is_free(folder: Path) -> bool:
    """True when no live process holds the session's lock (its run ended: cleanly or in a crash)."""
    try:
        with open(folder / LOCK, "a+b") as handle:
            return _try_lock(handle)  # closing the handle releases it at once
    except OSError:
        return False


# ------------------------------------------------------------------------------------- this run's session


class RecoverySession:
    """The recovery data of this app run. Journal each generation as it arrives; autosave when due."""

    def __init__(self, root: str | os.PathLike | None = None, source: str | os.PathLike | None = None) -> None:
        root = Path(root) if root is not None else recovery_dir()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.folder = root / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        (self.folder / JOURNAL).mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / LOCK, "a+b")  # held for the whole run
        if not _try_lock(self._lock):  # pragma: no cover - a fresh folder nobody else knows
            raise ProjectError(f"Recovery folder {self.folder} is in use")
        self.started = time.time()
        self.updated: float | None = None
        self.source = str(source) if source is not None else None
        self._seq = 0
        self._snapshot_seq = 0
        self._snapshot_project: Project | None = None
        self._queue: collections.deque[tuple[int, HistoryItem]] = collections.deque()
        self._journal_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self.last_error: str | None = None  # from the journal writer, picked up by the Autosaver
        self._write_session()

    # -- bookkeeping
    def _write_session(self) -> None:
        data = {"pid": os.getpid(), "started": self.started, "updated": self.updated, "source": self.source,
                "snapshot_seq": self._snapshot_seq}
        atomic_write(self.folder / SESSION, json.dumps(data))

    def set_source(self, path: str | os.PathLike | None) -> None:
        """The project file the user works on now (after Open / Save As); shown when offering recovery."""
        self.source = str(path) if path is not None else None
        self._write_session()

    # -- journal
    def journal(self, item: HistoryItem) -> None:
        """Journal one generated image at once. It is encoded and written by a short-lived writer thread
        (a 1024^2 PNG takes a fifth of a second: the GUI thread must not wait for it), in arrival order."""
        with self._journal_lock:
            self._seq += 1
            self._queue.append((self._seq, item))
            if self._writer is None:
                self._writer = threading.Thread(target=self._drain, name="recovery-journal")
                self._writer.start()

    def _drain(self) -> None:
        while True:
            with self._journal_lock:
                if not self._queue:
                    self._writer = None  # the thread ends when there is nothing left to write
                    return
                seq, item = self._queue.popleft()
            try:
                self._write_entry(seq, item)
            except (OSError, UserError, ValueError) as exc:
                self.last_error = f"Could not journal a generation for recovery: {exc}"

    def _write_entry(self, seq: int, item: HistoryItem) -> Path:
        """The image, then its entry (id, time, size, record), each file atomically: the entry commits it."""
        base = f"{seq:06d}-{item.id}"
        folder = self.folder / JOURNAL
        atomic_write(folder / f"{base}.png", _png_bytes(_history_image(item.image)))
        entry = {"id": item.id, "created": item.created, "width": item.width, "height": item.height,
                 "record": _jsonable(item.record if isinstance(item.record, dict) else {})}
        path = atomic_write(folder / f"{base}.json", json.dumps(entry, ensure_ascii=False, allow_nan=False))
        self.updated = time.time()
        return path

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every journaled generation is on disk."""
        with self._journal_lock:
            writer = self._writer
        if writer is not None:
            writer.join(timeout)

    # -- autosave
    def autosave(self, project: Project) -> Path:
        """Snapshot the whole document atomically (never over the user's file), then drop the journal
        entries it now holds. Unchanged layers are copied from the user's file (or the last snapshot)."""
        target = self.folder / SNAPSHOT
        self.flush()  # the journal entries this snapshot makes redundant are all written
        if project.path is not None and project.path.exists() and project._saved:
            project.save(target, adopt=False)
            self._snapshot_project = None
        else:
            if self._snapshot_project is None or self._snapshot_project.document is not project.document:
                self._snapshot_project = Project(project.document, target)
            self._snapshot_project.save(target)
        committed = self._seq
        self._snapshot_seq = committed
        self.updated = time.time()
        self.set_source(project.path)
        self._prune(committed)
        return target

    def _prune(self, upto: int) -> None:
        for entry in sorted((self.folder / JOURNAL).glob("*")):
            match = re.match(r"(\d{6,})-", entry.name)
            if match and int(match.group(1)) <= upto:
                with contextlib.suppress(OSError):
                    entry.unlink()

    def clear(self) -> None:
        """Everything is saved in the user's file: nothing to recover (the session itself stays open)."""
        self.flush()
        with contextlib.suppress(OSError):
            (self.folder / SNAPSHOT).unlink()
        self._snapshot_project = None
        self._prune(self._seq)
        self.updated = None
        self._write_session()

    def close(self) -> None:
        """A clean exit: the recovery data goes away with the session."""
        self.flush()
        with contextlib.suppress(OSError):
            self._lock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------- autosave policy


class Autosaver:
    """When to autosave: every `interval_s` seconds while there are changes not yet in a snapshot.

    Subscribes to the document: a finished generation (HistoryAdded) is journaled at once, any other change
    marks the work as needing a snapshot. The UI calls `tick()` from a timer; core tests call it directly.
    """

    def __init__(self, session: RecoverySession, project: Project, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.session = session
        self.interval_s = float(interval_s)
        self.clock = clock
        self.pending = False
        self.last_error: str | None = None
        self._last = clock()
        self._unsubscribe: Callable[[], None] | None = None
        self.project = project
        self.attach(project)

    def attach(self, project: Project) -> None:
        """Follow another project (after New / Open): its changes from now on."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.project = project
        self._unsubscribe = project.document.subscribe(self._on_event)
        self.session.set_source(project.path)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.HistoryAdded):
            self.session.journal(self.project.document.get_history(event.item_id))
        self.pending = True

    def saved(self) -> None:
        """The user saved: everything is in their file, so the recovery data can go."""
        self.pending = False
        self._last = self.clock()
        self.session.clear()
        self.session.set_source(self.project.path)

    def due(self) -> bool:
        return self.pending and self.interval_s > 0 and self.clock() - self._last >= self.interval_s

    def tick(self) -> bool:
        """Autosave when due; True when a snapshot was written. A failed autosave is kept as one line."""
        if self.session.last_error:
            self.last_error, self.session.last_error = self.session.last_error, None
        if not self.due():
            return False
        self._last = self.clock()
        try:
            self.session.autosave(self.project)
        except (OSError, UserError) as exc:
            self.last_error = f"Autosave failed: {exc}"
            return False
        self.pending = False
        self.last_error = None
        return True

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


# -------------------------------------------------------------------------------------------- recovery


@dataclass
class Recoverable:
    """The recovery data of a run that ended without cleaning up (a crash, a kill, a power loss)."""

    folder: Path
    started: float
    updated: float | None
    source: str | None
    has_snapshot: bool
    generations: int  # journaled generations not yet in the snapshot
    problem: str | None = None  # set by restore() when only part could be restored

    @property
    def when(self) -> float:
        return self.updated or self.started

    def describe(self) -> str:
        stamp = datetime.fromtimestamp(self.when).strftime("%Y-%m-%d %H:%M")
        name = Path(self.source).name if self.source else "an untitled project"
        extra = f", {self.generations} generation{'s' if self.generations != 1 else ''} journaled" \
            if self.generations else ""
        return f"Unsaved work on {name} from {stamp}{extra}"

    def restore(self) -> Project:
        """The recovered project: the last snapshot plus every journaled generation, all in memory. It is
        attached to the file it was editing (if any) so Save writes there; the user's file is untouched.

        With no snapshot (none written since the user last saved or opened their file, or one that cannot
        be read), that file holds the work up to then: it is the base the journaled generations join, so a
        restore never hands back an empty canvas under the user's file name."""
        snapshot = self.folder / SNAPSHOT
        project: Project | None = None
        self.problem = None
        problems = []
        if snapshot.exists():
            try:
                project = Project(open_project(snapshot, lazy=False).document, self.source)
            except ProjectError as exc:  # the journaled generations are still worth having
                problems.append(f"The autosaved canvas could not be read ({exc})")
        if project is None and self.source is not None:
            try:
                project = open_project(self.source)  # read, never written: Save writes there only when asked
            except ProjectError as exc:
                problems.append(f"{Path(self.source).name} could not be opened ({exc})")
            else:
                if problems:
                    problems.append("its last saved version was opened")
        if project is None:
            project = Project(Document.new(), self.source)
        if problems:
            self.problem = "; ".join(problems) + "; the generations were restored"
        doc = project.document
        have = {h.id for h in doc.history}
        for entry, png in _journal_entries(self.folder):
            item = _read_entry(entry, png)
            if item is not None and item.id not in have:
                doc.add_history(item)
                have.add(item.id)
        return project

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _journal_entries(folder: Path) -> list[tuple[Path, Path]]:
    out = []
    for entry in (folder / JOURNAL).glob("*.json"):
        match = _ENTRY.fullmatch(entry.name)
        png = entry.with_suffix(".png")
        if match and png.exists():
            out.append((int(match.group(1)), entry, png))
    return [(e, p) for _, e, p in sorted(out)]


def _read_entry(entry: Path, png: Path) -> HistoryItem | None:
    """One journaled generation, or None when it cannot be read (recovery keeps what it can)."""
    try:
        data = load_json_file(entry, "journal entry", max_bytes=16 * MiB)
        if not isinstance(data, dict) or not isinstance(data.get("record"), dict):
            return None
        image = decode_png(read_bytes(png, 1 << 30, "journal image"), png.name, None, ("RGB", "RGBA", "L"))
        return HistoryItem(data["record"], image, id=str(data.get("id") or entry.stem.split("-", 1)[1]),
                           created=float(data.get("created") or entry.stat().st_mtime))
    except (UserError, OSError, ValueError, TypeError):
        return None


def find_recoverable(root: str | os.PathLike | None = None) -> list[Recoverable]:
    """Sessions that ended without a clean exit and hold work, newest first. Ended sessions holding
    nothing are removed on the way."""
    root = Path(root) if root is not None else recovery_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if not folder.is_dir() or not (folder / SESSION).exists() or not _lock_is_free(folder):
            continue
        try:
            info: Any = load_json_file(folder / SESSION, "recovery session", max_bytes=1 * MiB)
        except UserError:
            info = {}
        info = info if isinstance(info, dict) else {}
        has_snapshot = (folder / SNAPSHOT).exists()
        generations = len(_journal_entries(folder))
        if not has_snapshot and not generations:
            shutil.rmtree(folder, ignore_errors=True)  # nothing was left unsaved
            continue
        num = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None  # noqa: E731
        started = num(info.get("started")) or folder.stat().st_mtime
        source = info.get("source") if isinstance(info.get("source"), str) else None
        found.append(Recoverable(folder, started, num(info.get("updated")), source, has_snapshot, generations))
    return sorted(found, key=lambda r: r.when, reverse=True)

