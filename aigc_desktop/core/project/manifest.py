"""manifest.json of a `.aigc` project: the format's name and version, one schema check, one migration table.

Version 2 (current) holds:

    format        "aigc-desktop-project"
    version       2
    app_version   the AIGC Desktop that saved it (informative)
    saved         unix time of the save
    canvas        {width, height (size hints or null), frame {x, y, width, height}, view {zoom, center_x, center_y}}
    layers        [LAYER, ...] image layers, bottom -> top
    mask          LAYER of kind "mask"
    history       [{id, created, width, height, record, path (optional: its PNG in the outputs folder)}, ...]
                  oldest -> newest
    prompt_state  the prompt panel's state (a JSON object)
    model         the chosen model {name, hash, ...} or null: models are referenced, never embedded
    timeline      the morph timeline's state (a JSON object) or null
    LAYER         {id, name, kind, x, y, width, height, opacity, visible, locked, record (object or null)}

Pixels live beside it, named from the ids (never from a name the file chooses): `layers/<id>.png` (the mask
too), `history/<id>.png`, thumbnails under `thumbs/layers/` and `thumbs/history/`.

Opening: the version is read first (a newer one is refused with "made by a newer AIGC Desktop"), older
versions step through MIGRATIONS one version at a time, and only then is the whole manifest checked against
the schema, so every check sees the current layout.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from aigc_desktop.core.project.container import LIMITS
from aigc_desktop.core.project.errors import NewerProjectError, ProjectError

FORMAT = "aigc-desktop-project"
VERSION = 2
MANIFEST = "manifest.json"
MIMETYPE = "mimetype"  # first member, stored: lets `file` and other tools recognise the zip
MIMETYPE_TEXT = b"application/x-aigc-desktop-project"


def layer_member(layer_id: str) -> str:
    return f"layers/{layer_id}.png"


def layer_thumb_member(layer_id: str) -> str:
    return f"thumbs/layers/{layer_id}.png"


def history_member(item_id: str) -> str:
    return f"history/{item_id}.png"


def history_thumb_member(item_id: str) -> str:
    return f"thumbs/history/{item_id}.png"


# ------------------------------------------------------------------------------------------ migrations


def _v1_to_v2(m: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no saved view: open it centred on the frame at 100 %."""
    canvas = m.get("canvas")
    if isinstance(canvas, dict) and "view" not in canvas:
        frame = canvas.get("frame") if isinstance(canvas.get("frame"), dict) else {}
        try:
            cx = float(frame.get("x", 0)) + float(frame.get("width", 512)) / 2
            cy = float(frame.get("y", 0)) + float(frame.get("height", 512)) / 2
        except (TypeError, ValueError):
            cx, cy = 256.0, 256.0  # the schema check reports the bad frame
        canvas["view"] = {"zoom": 1.0, "center_x": cx, "center_y": cy}
    m["version"] = 2
    return m


# MIGRATIONS[n] turns a version-n manifest into a version-(n + 1) manifest. Add one step per new version.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
}


def migrate(manifest: Any, label: str) -> dict[str, Any]:
    """The manifest in the current version; refuses foreign, newer and unknown versions in one line."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ProjectError(f"{label} is not an AIGC Desktop project (manifest.json does not say so)")
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ProjectError(f"{label}: manifest.json has no valid format version")
    if version > VERSION:
        raise NewerProjectError(f"{label} was made by a newer AIGC Desktop (project format {version}; "
                                f"this version opens up to {VERSION}): update AIGC Desktop to open it")
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:  # pragma: no cover - the table covers every version from 1
            raise ProjectError(f"{label}: project format {version} cannot be upgraded")
        manifest = step(manifest)
        version += 1
        if manifest.get("version") != version:  # pragma: no cover - a migration must bump the version
            raise ProjectError(f"{label}: upgrading from format {version - 1} failed")
    return manifest


# -------------------------------------------------------------------------------------------- schema
# A schema node is a callable (value, where) raising ProjectError; the builders below make them.
Check = Callable[[Any, str], None]
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COORD = 1 << 31


class _Invalid(Exception):
    pass


def _fail(where: str, text: str) -> None:
    raise _Invalid(f"{where} {text}")


def _int(lo: int, hi: int) -> Check:
    def check(v: Any, where: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(where, "must be a whole number")
        if not lo <= v <= hi:
            _fail(where, f"must be between {lo} and {hi}")
    return check


def _num(lo: float, hi: float) -> Check:
    def check(v: Any, where: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            _fail(where, "must be a number")
        if not lo <= v <= hi:
            _fail(where, f"must be between {lo:g} and {hi:g}")
    return check


def _str(max_len: int = 10_000, pattern: re.Pattern | None = None) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, str):
            _fail(where, "must be text")
        if len(v) > max_len:
            _fail(where, f"is longer than {max_len} characters")
        if pattern is not None and not pattern.fullmatch(v):
            _fail(where, "is not a valid id")
    return check


def _bool(v: Any, where: str) -> None:
    if not isinstance(v, bool):
        _fail(where, "must be true or false")


def _object(v: Any, where: str) -> None:  # an opaque JSON object (records, prompt state, timeline)
    if not isinstance(v, dict):
        _fail(where, "must be a JSON object")


def _one_of(*values: Any) -> Check:
    def check(v: Any, where: str) -> None:
        if v not in values or isinstance(v, bool):
            _fail(where, f"must be one of {', '.join(map(repr, values))}")
    return check


def _nullable(inner: Check) -> Check:
    def check(v: Any, where: str) -> None:
        if v is not None:
            inner(v, where)
    return check


def _fields(spec: dict[str, Check], extra: Callable[[dict, str], None] | None = None,
            optional: dict[str, Check] | None = None) -> Check:
    """A JSON object with these keys (unknown keys are ignored: a later minor addition stays readable)."""
    def check(v: Any, where: str) -> None:
        if not isinstance(v, dict):
            _fail(where, "must be a JSON object")
        for key, inner in spec.items():
            if key not in v:
                _fail(f"{where}.{key}", "is missing")
            inner(v[key], f"{where}.{key}")
        for key, inner in (optional or {}).items():
            if key in v:
                inner(v[key], f"{where}.{key}")
        if extra is not None:
            extra(v, where)
    return check


def _list(inner: Check, max_len: int) -> Check:
    def check(v: Any, where: str) -> None:
        if not isinstance(v, list):
            _fail(where, "must be a list")
        if len(v) > max_len:
            _fail(where, f"has more than {max_len} entries")
        for i, item in enumerate(v):
            inner(item, f"{where}[{i}]")
    return check


def _pixels(v: dict, where: str) -> None:
    if v["width"] * v["height"] > LIMITS.max_pixels:
        _fail(where, f"is {v['width']}x{v['height']}, more than {LIMITS.max_pixels // 1_000_000} megapixels")


def _frame_size(v: dict, where: str) -> None:
    if v["width"] % 8 or v["height"] % 8:
        _fail(where, "size must be multiples of 8")


_SIDE = _int(1, LIMITS.max_side)
_LAYER_FIELDS = {
    "id": _str(64, _ID), "name": _str(1000), "x": _int(-_COORD, _COORD - 1), "y": _int(-_COORD, _COORD - 1),
    "width": _SIDE, "height": _SIDE, "opacity": _num(0.0, 1.0), "visible": _bool, "locked": _bool,
    "record": _nullable(_object),
}
_LAYER = _fields({**_LAYER_FIELDS, "kind": _one_of("image")}, _pixels)
_MASK = _fields({**_LAYER_FIELDS, "kind": _one_of("mask")}, _pixels)
_HISTORY = _fields({"id": _str(64, _ID), "created": _num(-1e12, 1e12), "width": _SIDE, "height": _SIDE,
                    "record": _object}, _pixels, optional={"path": _nullable(_str(4096))})
_SCHEMA = _fields({
    "format": _one_of(FORMAT),
    "version": _one_of(VERSION),
    "app_version": _str(100),
    "saved": _num(-1e12, 1e12),
    "canvas": _fields({
        "width": _nullable(_SIDE), "height": _nullable(_SIDE),
        "frame": _fields({"x": _int(-_COORD, _COORD - 1), "y": _int(-_COORD, _COORD - 1),
                          "width": _int(8, LIMITS.max_side), "height": _int(8, LIMITS.max_side)}, _frame_size),
        "view": _fields({"zoom": _num(1e-6, 1e6), "center_x": _num(-1e12, 1e12), "center_y": _num(-1e12, 1e12)}),
    }),
    "layers": _list(_LAYER, 10_000),
    "mask": _MASK,
    "history": _list(_HISTORY, 20_000),
    "prompt_state": _object,
    "model": _nullable(_object),
    "timeline": _nullable(_object),
})


def validate(manifest: Any, label: str) -> dict[str, Any]:
    """The one schema check of a (migrated) manifest: types, ranges and unique ids, or one ProjectError."""
    try:
        _SCHEMA(manifest, "manifest")
        ids = [la["id"] for la in manifest["layers"]] + [manifest["mask"]["id"]]
        if len(set(ids)) != len(ids):
            _fail("manifest.layers", "has two layers with the same id")
        hist = [h["id"] for h in manifest["history"]]
        if len(set(hist)) != len(hist):
            _fail("manifest.history", "has two items with the same id")
    except _Invalid as exc:
        raise ProjectError(f"{label}: manifest.json is invalid: {exc}") from None
    return manifest


def models_used(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every model the project refers to (the chosen one, those named in records), by name and hash."""
    seen: dict[tuple, dict[str, Any]] = {}

    def add(model: Any) -> None:
        if not isinstance(model, dict):
            return
        name = model.get("name")
        digest = model.get("sha256") or model.get("hash")
        if name is None and digest is None:
            return
        key = (str(name), str(digest))
        if key not in seen:
            seen[key] = {"name": name, "hash": digest, "kind": model.get("kind"), "uses": 0}
        seen[key]["uses"] += 1

    add(manifest.get("model"))
    for entry in [*manifest.get("layers", []), *manifest.get("history", [])]:
        record = entry.get("record")
        if isinstance(record, dict):
            add(record.get("model"))
    return list(seen.values())
