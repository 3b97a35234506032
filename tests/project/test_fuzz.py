"""Fuzzing: valid project files mutated at random (bytes, zip entries, manifest fields) open, or fail with
one clear ProjectError line; nothing else ever comes out, also when the pixels load later."""

from __future__ import annotations

import copy
import functools
import json
import os
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc_desktop.core.errors import user_message
from aigc_desktop.core.project import ProjectError, open_project, save_document
from tests.project import zips
from tests.project.helpers import make_document

# AIGC_FUZZ_EXAMPLES=2000 for a longer hunt than the suite's quick pass.
FUZZ = settings(max_examples=int(os.environ.get("AIGC_FUZZ_EXAMPLES", "80")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=1)
def valid_file() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return save_document(make_document(seed=41, size=16, history=2), Path(folder) / "v.aigc").read_bytes()


def exercise(data: bytes, lazy: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.aigc"
        path.write_bytes(data)
        try:
            doc = open_project(path, lazy=lazy).document
            for layer in [*doc.layers, doc.mask]:
                layer.thumbnail(32)
                layer.image
            for item in doc.history:
                item.thumbnail(32)
                item.image
        except ProjectError as exc:
            message = user_message(exc)
            assert message and "\n" not in message
        assert [p.name for p in Path(folder).iterdir()] == ["fuzz.aigc"]  # nothing written beside it


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.integers(0, 10**9)), lazy=st.booleans())
def test_mutated_bytes(flips, cut, lazy):
    data = bytearray(valid_file())
    for at, value in flips:
        data[at % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    exercise(bytes(data), lazy)


_NAMES = st.one_of(st.sampled_from(["manifest.json", "../x", "/abs", "a\\b", "layers/", "thumbs/history/x.png",
                                    "mimetype", "", "x" * 300]),
                   st.text(min_size=0, max_size=20))
_OPS = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 50)),
    st.tuples(st.just("duplicate"), st.integers(0, 50)),
    st.tuples(st.just("rename"), st.integers(0, 50), _NAMES),
    st.tuples(st.just("data"), st.integers(0, 50), st.binary(max_size=300)),
    st.tuples(st.just("truncate"), st.integers(0, 50), st.integers(0, 5000)),
    st.tuples(st.just("deflate"), st.integers(0, 50)),
)


@FUZZ
@given(ops=st.lists(_OPS, min_size=1, max_size=5), lazy=st.booleans())
def test_mutated_zip_entries(ops, lazy):
    with tempfile.TemporaryDirectory() as folder:
        src = Path(folder) / "v.aigc"
        src.write_bytes(valid_file())
        items = zips.entries(src)
        for op in ops:
            if not items:
                break
            i = op[1] % len(items)
            name, data, compression = items[i]
            if op[0] == "drop":
                del items[i]
            elif op[0] == "duplicate":
                items.append(items[i])
            elif op[0] == "rename":
                items[i] = (op[2] or "x", data, compression)
            elif op[0] == "data":
                items[i] = (name, op[2], compression)
            elif op[0] == "truncate":
                items[i] = (name, data[: op[2]], compression)
            else:
                items[i] = (name, data, zipfile.ZIP_DEFLATED)
        try:
            zips.write(src, items)
        except (ValueError, UnicodeEncodeError):
            return  # a name zipfile itself refuses to write
        data = src.read_bytes()
    exercise(data, lazy)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                     | st.text(max_size=10), lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@FUZZ
@given(data=st.data(), lazy=st.booleans())
def test_mutated_manifest_fields(data, lazy):
    with tempfile.TemporaryDirectory() as folder:
        src = Path(folder) / "v.aigc"
        src.write_bytes(valid_file())
        manifest = zips.manifest_of(src)
        for _ in range(data.draw(st.integers(1, 3))):
            node, key = manifest, None
            parent = None
            while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):  # walk down at random
                keys = list(node) if isinstance(node, dict) else list(range(len(node)))
                parent, key = node, data.draw(st.sampled_from(keys))
                node = node[key]
            if parent is None:
                continue
            if isinstance(parent, dict) and data.draw(st.booleans()):
                del parent[key]
            else:
                parent[key] = copy.deepcopy(data.draw(_JSON))
        out = zips.with_manifest(src, Path(folder) / "m.aigc", lambda m: json.dumps(manifest).encode())
        blob = out.read_bytes()
    exercise(blob, lazy)
