"""Fuzzing the readers of untrusted files: whatever the bytes, the safetensors header reader and the
settings loader end in a result or their one-line error, never another exception, and quickly."""

from __future__ import annotations

import json
import struct
import time

from hypothesis import HealthCheck, given, settings, strategies as st

from aigc_desktop.core.safetensors_header import SafetensorsHeaderError, parse_header, read_header
from aigc_desktop.core.settings import Settings

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
dtypes = st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "X9", ""])
entries = st.fixed_dictionaries({}, optional={
    "dtype": dtypes | json_values, "shape": st.lists(st.integers(-2, 6), max_size=4) | json_values,
    "data_offsets": st.lists(st.integers(-4, 400), min_size=0, max_size=3) | json_values})
headers = st.dictionaries(st.text(max_size=10), entries | json_values, max_size=5)


@FAST
@given(raw=st.binary(max_size=300), size=st.integers(0, 10_000))
def test_header_reader_on_random_bytes(raw, size):
    try:
        parse_header(raw, size, "fuzz.safetensors")
    except SafetensorsHeaderError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.safetensors")


@FAST
@given(header=headers, extra=st.integers(0, 500))
def test_header_reader_on_structured_json(header, extra):
    raw = json.dumps(header).encode()
    size = 8 + len(raw) + extra
    try:
        parsed = parse_header(raw, size, "fuzz.safetensors")
    except SafetensorsHeaderError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    for t in parsed.tensors.values():  # what it accepts obeys the format's rules
        assert all(isinstance(d, int) and d >= 0 for d in t.shape)
        assert 0 <= t.begin <= t.end <= size - parsed.data_start


@FAST
@given(data=st.binary(max_size=200), length=st.integers(0, 2 ** 64 - 1))
def test_header_reader_on_files(tmp_path_factory, data, length):
    path = tmp_path_factory.mktemp("fuzz") / "f.safetensors"
    path.write_bytes(struct.pack("<Q", length) + data)
    start = time.perf_counter()
    try:
        read_header(path)
    except SafetensorsHeaderError:
        pass
    assert time.perf_counter() - start < 1.0


settings_values = st.dictionaries(st.sampled_from(["device", "dtype", "threads", "memory_budget_gb", "offload",
                                                   "models_dir", "model_folders", "save_outputs", "x"]),
                                  json_values, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.one_of(json_values, st.fixed_dictionaries({"version": json_values, "settings": settings_values}),
                          st.fixed_dictionaries({"settings": settings_values})))
def test_settings_loader_on_random_json(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("s") / "settings.json"
    path.write_text(json.dumps(document))
    s = Settings.load(path)  # never raises
    for setting in ("device", "threads", "model_folders"):
        s.get(setting)
    assert all("\n" not in w for w in s.warnings)


@FAST
@given(raw=st.binary(max_size=200))
def test_settings_loader_on_random_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("s") / "settings.json"
    path.write_bytes(raw)
    assert Settings.load(path).get("device") in ("auto", "cuda", "mps", "cpu")
