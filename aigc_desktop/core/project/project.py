"""Opening and saving a Document as one `.aigc` file.

Opening checks the whole archive (names, sizes, the manifest's schema, every PNG header against the manifest)
before the Document is built, so a bad file loads nothing half-way. Small projects are then decoded at once;
large ones open lazily: layers and history items get loaders that re-open the zip by its path when their
pixels are first needed (no file handle is held), and thumbnails are read up front so the window fills fast.

Saving writes a new archive through core.files.atomic_open (temporary file beside it, fsync, rename, fsync
the folder), so a crash or kill mid-save leaves the previous file whole and a failed save (disk full,
permission denied) raises one ProjectError line with the old file and the open document untouched.
PNG members are *stored* (PNG is already deflate-compressed), so a member that did not change is copied byte
for byte from the previous file, by the kernel where it can (os.copy_file_range), keeping its CRC so damage
stays detectable; only layers whose `revision` changed, new layers and new history items are encoded again.
The manifest is rewritten every time. The whole file is still written once per save: that is what makes the
rename atomic (a zip cannot be changed in place without a moment when it is broken).
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import time
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from aigc_desktop import __version__
from aigc_desktop.core.document import Document, Frame, HistoryItem, Layer, View
from aigc_desktop.core.files import atomic_open
from aigc_desktop.core.project import manifest as mf
from aigc_desktop.core.project.container import LIMITS, ProjectZip, _write_member, decode_png
from aigc_desktop.core.project.errors import ProjectError
from aigc_desktop.core.safe_io import JsonLimitError, MiB, loads_json

SUFFIX = ".aigc"
THUMB_SIDE = 128  # thumbnails stored in the file (the history strip and layers panel size)
PNG_LEVEL = 1  # lossless either way; 1 encodes a 2048^2 layer ~3x faster than Pillow's 6 for ~15 % more bytes
EAGER_BYTES = 8 * MiB  # projects up to this many bytes of pixels are decoded at open (errors show at once)
_HISTORY_MODES = ("RGB", "RGBA", "L")


@dataclass
class _Backing:
    """Where a lazy element's pixels are: a member of a file, known by its CRC (re-checked on every read)."""

    path: Path
    name: str
    crc: int
    size: int
    what: str
    dims: tuple[int, int]
    modes: tuple[str, ...]
    thumb: bytes | None = None  # the stored thumbnail's PNG, read at open
    _thumb_image: Image.Image | None = field(default=None, repr=False)

    def load(self) -> Image.Image:
        try:
            z = ProjectZip(self.path)
        except ProjectError as exc:
            raise ProjectError(f"{self.path.name} changed on disk since it was opened: {self.what} cannot be read "
                               f"from it ({exc})") from None
        with z:
            member = z.member(self.name, self.what) if z.has(self.name) else None
            if member is None or (member.crc, member.size) != (self.crc, self.size):
                raise ProjectError(f"{z.label} changed on disk since it was opened: {self.what} is not the same; "
                                   "open it again")
            return decode_png(z.read(self.name, self.what), f"{z.label}: {self.what}", self.dims, self.modes)

    def thumbnail(self, max_side: int) -> Image.Image:
        if self.thumb is not None and self._thumb_image is None:
            try:
                self._thumb_image = decode_png(self.thumb, f"{self.path.name}: thumbnail of {self.what}", None,
                                               self.modes)
            except ProjectError:
                self.thumb = None  # a damaged thumbnail is not worth an error: make one from the pixels
        stored = self._thumb_image
        if stored is None or max_side > max(stored.size) and max(stored.size) < max(self.dims):
            stored = _thumbnail(self.load(), max_side)
        if max(stored.size) <= max_side:
            return stored
        return _thumbnail(stored, max_side)


@dataclass
class _Saved:
    """One element as the project's file holds it: which object, at which revision, backed by which member."""

    ref: weakref.ref
    revision: int | None
    backing: _Backing
    thumb_name: str | None


def _thumbnail(image: Image.Image, side: int = THUMB_SIDE) -> Image.Image:
    t = image.copy()
    t.thumbnail((side, side), Image.Resampling.BILINEAR)
    return t


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def _jsonable(value: Any, depth: int = 0) -> Any:
    """The value as plain JSON (records may carry tuples, paths, numpy scalars, NaN): saving never fails on it."""
    if depth > 60:
        return None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):
        try:
            return _jsonable(value.item(), depth + 1)
        except (TypeError, ValueError):
            pass
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _history_image(image: Image.Image) -> Image.Image:
    return image if image.mode in _HISTORY_MODES else image.convert("RGBA")


# ------------------------------------------------------------------------------------------- manifest


def _layer_entry(layer: Layer) -> dict[str, Any]:
    return {"id": layer.id, "name": str(layer.name), "kind": layer.kind, "x": int(layer.x), "y": int(layer.y),
            "width": int(layer.width), "height": int(layer.height), "opacity": float(layer.opacity),
            "visible": bool(layer.visible), "locked": bool(layer.locked), "record": _jsonable(layer.record)}


def build_manifest(doc: Document) -> dict[str, Any]:
    f, v = doc.frame, doc.view
    return {
        "format": mf.FORMAT, "version": mf.VERSION, "app_version": __version__, "saved": time.time(),
        "canvas": {"width": doc.width, "height": doc.height,
                   "frame": {"x": f.x, "y": f.y, "width": f.width, "height": f.height},
                   "view": {"zoom": float(v.zoom), "center_x": float(v.center_x), "center_y": float(v.center_y)}},
        "layers": [_layer_entry(layer) for layer in doc.layers],
        "mask": _layer_entry(doc.mask),
        "history": [{"id": h.id, "created": float(h.created), "width": int(h.width), "height": int(h.height),
                     "record": _jsonable(h.record) if isinstance(h.record, dict) else {},
                     "path": str(h.path) if getattr(h, "path", None) else None} for h in doc.history],
        "prompt_state": _jsonable(doc.prompt_state or {}),
        "model": _jsonable(doc.model),
        "timeline": _jsonable(doc.timeline),
    }


def read_manifest(z: ProjectZip) -> dict[str, Any]:
    """The manifest of an opened archive, migrated to the current version and checked against the schema."""
    data = z.read(mf.MANIFEST, "manifest.json", limit=LIMITS.max_json_bytes)
    try:
        raw = loads_json(data, what=f"{z.label}: manifest.json", max_bytes=LIMITS.max_json_bytes)
    except JsonLimitError as exc:
        raise ProjectError(str(exc)) from None
    return mf.validate(mf.migrate(raw, z.label), z.label)


def inspect_project(path: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of a project file (no pixels read): what `aigc-desktop info` shows."""
    with ProjectZip(path) as z:
        return read_manifest(z)


# ---------------------------------------------------------------------------------------------- project


class Project:
    """A Document and the file it lives in. `save()` writes it atomically, copying what did not change."""

    def __init__(self, document: Document | None = None, path: str | os.PathLike | None = None) -> None:
        self.document = document if document is not None else Document.new()
        self.path: Path | None = Path(path) if path is not None else None
        self._saved: dict[str, _Saved] = {}  # member name -> the element the file at self.path holds there

    @property
    def name(self) -> str:
        return self.path.stem if self.path else "Untitled"

    # ------------------------------------------------------------------------------------------ save
    def save(self, path: str | os.PathLike | None = None, adopt: bool = True) -> Path:
        """Write the document to `path` (default: its own file) atomically; one ProjectError line on failure.

        adopt=False writes a copy (the autosave snapshot) and leaves the project attached to its own file.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ProjectError("This project has no file yet: choose where to save it")
        doc = self.document
        manifest = build_manifest(doc)
        try:
            manifest_bytes = json.dumps(manifest, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")
        except (TypeError, ValueError) as exc:  # pragma: no cover - _jsonable makes every value plain
            raise ProjectError(f"Could not save {target.name}: {exc}") from None
        elements: list[tuple[str, str, Any, int | None, str]] = [
            (mf.layer_member(la.id), mf.layer_thumb_member(la.id), la, la.revision, f"layer '{la.name}'")
            for la in [*doc.layers, doc.mask]]
        elements += [(mf.history_member(h.id), mf.history_thumb_member(h.id), h, None, f"history item {i + 1}")
                     for i, h in enumerate(doc.history)]
        included = {id(e[2]) for e in elements}
        if adopt and self.path is not None and _same_file(target, self.path):
            self._load_orphans(included)  # the file they would load from is about to be replaced
        source = self.path if self.path is not None and self._saved and self.path.exists() else None
        new_saved: dict[str, _Saved] = {}
        try:
            with atomic_open(target) as handle:
                with zipfile.ZipFile(handle, "w", allowZip64=True) as out:
                    _write(out, mf.MIMETYPE, mf.MIMETYPE_TEXT, zipfile.ZIP_STORED)
                    _write(out, mf.MANIFEST, manifest_bytes, zipfile.ZIP_DEFLATED)
                    src = _open_source(source)
                    try:
                        for name, thumb_name, obj, revision, what in elements:
                            new_saved[name] = self._save_element(out, src, name, thumb_name, obj, revision, what,
                                                                 target)
                    finally:
                        if src is not None:
                            src.close()
                handle.truncate()  # a copy cut short and written again leaves nothing past the end record
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ProjectError(f"Could not save {target.name}: {reason}") from None
        _sweep_stale_temporaries(target)
        if not adopt:
            return target
        # The file is complete on disk: only now does the project (and its lazy elements) point at it.
        for saved in new_saved.values():
            saved.backing.path = target
        self._saved = new_saved
        self.path = target
        return target

    def _save_element(self, out: zipfile.ZipFile, src: ProjectZip | None, name: str, thumb_name: str, obj: Any,
                      revision: int | None, what: str, target: Path) -> _Saved:
        prev = self._saved.get(name)
        if src is not None and prev is not None and prev.ref() is obj and prev.revision == revision:
            try:
                member = src.member(name, what)
                if (member.crc, member.size) == (prev.backing.crc, prev.backing.size):
                    src.copy_raw(name, out, what)  # the stored bytes as they are: no decode, no re-encode
                    if prev.thumb_name and src.has(thumb_name):
                        src.copy_raw(thumb_name, out, f"thumbnail of {what}")
                    else:
                        _write(out, thumb_name, _png_bytes(_thumbnail(obj.image)), zipfile.ZIP_STORED)
                    return _Saved(prev.ref, revision, prev.backing, thumb_name)
            except ProjectError:
                if not _is_loaded(obj):
                    raise  # the pixels exist nowhere else: say so rather than save a project without them
        image = obj.image if isinstance(obj, Layer) else _history_image(obj.image)
        data = _png_bytes(image)
        _write(out, name, data, zipfile.ZIP_STORED)
        _write(out, thumb_name, _png_bytes(_thumbnail(image)), zipfile.ZIP_STORED)
        info = out.getinfo(name)
        modes = (obj.mode,) if isinstance(obj, Layer) else _HISTORY_MODES
        backing = _Backing(target, name, info.CRC, info.file_size, what, image.size, modes)
        return _Saved(weakref.ref(obj), revision, backing, thumb_name)

    def _load_orphans(self, included: set[int]) -> None:
        """Elements opened from the file that are no longer in the document but still alive (an undo step
        holds a removed layer): load their pixels before the file they would load from is replaced."""
        for saved in self._saved.values():
            obj = saved.ref()
            if obj is not None and id(obj) not in included and not _is_loaded(obj):
                try:
                    obj.image
                except ProjectError:
                    pass  # already unreadable: nothing more is lost by replacing the file


def _open_source(path: Path | None) -> ProjectZip | None:
    """The previous file to copy unchanged members from; None when it is gone or no longer readable (then
    what is in memory is encoded again, and lazy elements say clearly that their pixels cannot be read)."""
    if path is None:
        return None
    try:
        return ProjectZip(path)
    except ProjectError:
        return None


STALE_TEMPORARY_S = 3600


def _sweep_stale_temporaries(target: Path) -> None:
    """Remove what saves killed mid-way left beside the file (atomic_open's `.NAME.*.tmp`), once they are
    an hour old: a younger one may belong to a save running right now in another process."""
    now = time.time()
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMPORARY_S:
                tmp.unlink()
        except OSError:
            pass


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_loaded(obj: Any) -> bool:
    return getattr(obj, "_image", None) is not None


_write = _write_member


# ------------------------------------------------------------------------------------------------- open


def open_project(path: str | os.PathLike, lazy: bool | None = None) -> Project:
    """Open a `.aigc` file: everything checked first, then the Document built (lazily for large projects,
    `lazy=None`). Any problem is one ProjectError line and no Document."""
    path = Path(path)
    with ProjectZip(path) as z:
        m = read_manifest(z)
        canvas = m["canvas"]
        plan: list[tuple[str, dict[str, Any], _Backing]] = []
        for kind, entries, member, thumb in (("layer", [*m["layers"], m["mask"]], mf.layer_member,
                                              mf.layer_thumb_member),
                                             ("history", m["history"], mf.history_member, mf.history_thumb_member)):
            for i, entry in enumerate(entries):
                what = (f"layer '{entry['name']}'" if kind == "layer" else f"history item {i + 1}")
                modes = (("L",) if entry.get("kind") == "mask" else ("RGBA",)) if kind == "layer" else _HISTORY_MODES
                name = member(entry["id"])
                info = z.member(name, what)
                w, h, mode = z.png_info(name, what)
                if (w, h) != (entry["width"], entry["height"]) or mode not in modes:
                    raise ProjectError(f"{z.label}: {what} is {mode} {w}x{h}, the manifest says "
                                       f"{'/'.join(modes)} {entry['width']}x{entry['height']}")
                thumb_bytes = z.read(thumb(entry["id"]), f"thumbnail of {what}", limit=4 * MiB) \
                    if z.has(thumb(entry["id"])) else None
                plan.append((kind, entry, _Backing(path, name, info.crc, info.size, what, (w, h), modes,
                                                   thumb_bytes)))
        total = sum(b.size for _, _, b in plan)
        eager = (total <= EAGER_BYTES) if lazy is None else not lazy
        images = {b.name: decode_png(z.read(b.name, b.what), f"{z.label}: {b.what}", b.dims, b.modes)
                  for _, _, b in plan} if eager else {}
    try:
        doc = Document(width=canvas["width"], height=canvas["height"])
        frame, view = canvas["frame"], canvas["view"]
        doc.frame = Frame(frame["x"], frame["y"], frame["width"], frame["height"])
        doc.view = View(float(view["zoom"]), float(view["center_x"]), float(view["center_y"]))
    except ValueError as exc:  # pragma: no cover - the schema checks the same ranges
        raise ProjectError(f"{path.name}: manifest.json is invalid: {exc}") from None
    project = Project(doc, path)
    for kind, entry, backing in plan:
        image = images.get(backing.name)
        source = None if image is not None else backing
        if kind == "layer":
            obj: Any = Layer(image, id=entry["id"], name=entry["name"], kind=entry["kind"], x=entry["x"],
                             y=entry["y"], width=entry["width"], height=entry["height"],
                             opacity=float(entry["opacity"]), visible=entry["visible"], locked=entry["locked"],
                             record=entry["record"], loader=source.load if source else None,
                             thumb_loader=source.thumbnail if source else None)
            if obj.kind == "mask":
                doc.mask = obj
            else:
                doc.add_layer(obj)
            revision: int | None = obj.revision
        else:
            obj = HistoryItem(entry["record"], image, id=entry["id"], width=entry["width"], height=entry["height"],
                              created=entry["created"], loader=source.load if source else None,
                              thumb_loader=source.thumbnail if source else None, path=entry.get("path"))
            doc.add_history(obj)
            revision = None
        thumb_name = (mf.layer_thumb_member if kind == "layer" else mf.history_thumb_member)(entry["id"])
        project._saved[backing.name] = _Saved(weakref.ref(obj), revision, backing,
                                              thumb_name if backing.thumb is not None else None)
        backing.thumb = backing.thumb if source else None  # decoded already: the thumbnail bytes are not needed
    doc.prompt_state = m["prompt_state"]
    doc.model = m["model"]
    doc.timeline = m["timeline"]
    return project


def save_document(doc: Document, path: str | os.PathLike) -> Path:
    """Save a document that has no project yet (the CLI, tests)."""
    return Project(doc).save(path)
