"""Project files on the command line, without the GUI.

    aigc-desktop info PROJECT.aigc [--json]          layers, history, models (name and hash), format version
    aigc-desktop export PROJECT.aigc (--layer NAME | --visible | --history N) --out FILE.png
    aigc-desktop generate ... --project PROJECT.aigc  results also go to the project's history

Every problem is one line (ProjectError is a UserError: exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from aigc_desktop.cli_output import print_text as _out
from aigc_desktop.core.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a layer, the visible layers or a history image of a project as PNG")
    p.add_argument("project", help="a .aigc project file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--layer", metavar="NAME", help="the layer with this name (or id)")
    which.add_argument("--visible", action="store_true", help="the visible layers composited")
    which.add_argument("--history", type=int, metavar="N", help="history image N (1 = oldest, -1 = newest)")
    p.add_argument("--out", required=True, help="output PNG file")


def add_generate_args(g: argparse.ArgumentParser) -> None:
    g.add_argument("--project", metavar="PROJECT.aigc", default=None,
                   help="also add the results to this project's history (created when missing)")




# ------------------------------------------------------------------------------------------------ info


def project_info(path: Path) -> dict[str, Any]:
    from aigc_desktop.core.project import inspect_project, models_used

    m = inspect_project(path)
    layers = [{k: la[k] for k in ("id", "name", "x", "y", "width", "height", "opacity", "visible", "locked")}
              | {"generated": la["record"] is not None} for la in m["layers"]]
    return {"file": str(path), "format": m["format"], "version": m["version"], "app_version": m["app_version"],
            "saved": m["saved"], "frame": m["canvas"]["frame"], "layers": layers,
            "mask": {k: m["mask"][k] for k in ("x", "y", "width", "height")}, "history": len(m["history"]),
            "models": models_used(m), "model": m["model"], "timeline": m["timeline"] is not None}


def cmd_info(args: argparse.Namespace) -> int:
    """`info PROJECT.aigc`, dispatched from cli_info for the .aigc suffix."""
    path = Path(args.file).expanduser()
    data = project_info(path)
    if args.json:
        _out(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    saved = datetime.fromtimestamp(data["saved"]).strftime("%Y-%m-%d %H:%M")
    f = data["frame"]
    _out(f"File:       {path} (AIGC Desktop project, format {data['version']}, "
         f"saved {saved} by aigc-desktop {data['app_version']})")
    _out(f"Frame:      {f['width']}x{f['height']} at ({f['x']}, {f['y']})")
    _out(f"Layers:     {len(data['layers'])} (top first)")
    for la in reversed(data["layers"]):
        flags = "".join([" hidden" if not la["visible"] else "", " locked" if la["locked"] else "",
                         " generated" if la["generated"] else ""])
        _out(f"  {la['name']}: {la['width']}x{la['height']} at ({la['x']}, {la['y']}), "
             f"opacity {round(la['opacity'] * 100)}%{flags}")
    _out(f"History:    {data['history']} image{'s' if data['history'] != 1 else ''}")
    if data["models"]:
        _out("Models:")
        for model in data["models"]:
            digest = f" sha256 {model['hash']}" if model["hash"] else " (no hash recorded)"
            _out(f"  {model['name'] or '(unnamed)'}{digest}, used {model['uses']}x")
    else:
        _out("Models:     none recorded")
    _out(f"Timeline:   {'yes' if data['timeline'] else 'none'}")
    return 0


# ---------------------------------------------------------------------------------------------- export


def _pick_layer(doc, text: str):
    matches = [la for la in doc.layers if la.name == text] or [la for la in doc.layers if la.id == text]
    if not matches:
        names = ", ".join(repr(la.name) for la in doc.layers) or "none"
        raise UserError(f"No layer named '{text}' (layers: {names})")
    if len(matches) > 1:
        raise UserError(f"{len(matches)} layers are named '{text}': give the layer's id instead "
                        f"({', '.join(la.id for la in matches)})")
    return matches[0]


def cmd_export(args: argparse.Namespace) -> int:
    from aigc_desktop.core.document.composite import composite
    from aigc_desktop.core.metadata import save_png
    from aigc_desktop.core.project import open_project

    source = Path(args.project).expanduser()
    doc = open_project(source, lazy=True).document  # only what is exported is decoded
    if args.layer is not None:
        layer = _pick_layer(doc, args.layer)
        image, record = layer.image, layer.record or {}
    elif args.visible:
        visible = [la for la in doc.layers if la.visible]
        if not visible:
            raise UserError(f"{source.name} has no visible layers")
        x0 = min(la.x for la in visible)
        y0 = min(la.y for la in visible)
        x1 = max(la.x + la.width for la in visible)
        y1 = max(la.y + la.height for la in visible)
        image, record = composite(doc, (x0, y0, x1 - x0, y1 - y0)), {}
    else:
        count = len(doc.history)
        n = args.history
        if count == 0:
            raise UserError(f"{source.name} has no history images")
        if n == 0 or not -count <= n <= count:
            raise UserError(f"{source.name} has {count} history images: --history takes 1..{count} "
                            f"(oldest first) or -1..-{count} (newest first)")
        item = doc.history[n - 1 if n > 0 else n]
        image, record = item.image, item.record or {}
    try:
        path = save_png(image, Path(args.out).expanduser(), record)
    except OSError as exc:
        raise UserError(f"Cannot write {args.out}: {exc.strerror or exc}") from None
    _out(str(path))
    return 0


# -------------------------------------------------------------------------------- generate --project


@contextlib.contextmanager
def project_lock(path: Path) -> Iterator[None]:
    """One writer at a time for a project file (two batch scripts feeding the same project), with the lock
    file in the app's data folder so nothing is left beside the user's file."""
    from aigc_desktop.core import paths

    key = hashlib.sha1(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    folder = paths.data_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a+b") as handle:
        if os.name == "nt":  # pragma: no cover - Windows
            import msvcrt

            deadline = time.monotonic() + 60
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise UserError(f"{path.name} is being written by another process") from None
                    time.sleep(0.2)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield  # closing the handle releases the lock


def add_to_project(project_path: str | os.PathLike, images: Sequence[Any], records: Sequence[dict]) -> Path:
    """Add generated images to a project's history (creating the project when it does not exist), saved
    atomically; members already in the file are copied, not re-encoded."""
    from aigc_desktop.core.document import Document, HistoryItem
    from aigc_desktop.core.project import Project, open_project

    path = Path(project_path).expanduser()
    if path.suffix.lower() != ".aigc":
        raise UserError(f"--project needs a .aigc file, got {path.name}")
    with project_lock(path):
        if path.exists():
            project = open_project(path, lazy=True)
        else:
            first = images[0] if images else None
            w, h = (first.width, first.height) if first is not None else (512, 512)
            project = Project(Document.new(max(8, w - w % 8), max(8, h - h % 8)))
        for image, record in zip(images, records):
            project.document.add_history(HistoryItem(dict(record), image))
        return project.save(path)


def after_generate(args: argparse.Namespace, images: Sequence[Any], records: Sequence[dict]) -> None:
    """Called by `generate` once its PNGs are written: feed --project when given."""
    target = getattr(args, "project", None)
    if not target:
        return
    path = add_to_project(target, images, records)
    print(f"Added {len(images)} image{'s' if len(images) != 1 else ''} to {path}", file=sys.stderr)
