"""The one safetensors header reader: lying lengths, deep or non-finite JSON, wrong types, overlapping or
out-of-file tensors, and files that are not regular files, each refused in one line naming file and field."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
from safetensors.torch import save_file

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safetensors_header import SafetensorsHeaderError, read_header
from tests.hostile.conftest import make_fifo, safetensors_bytes

TB = 1 << 40


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _error(path) -> str:
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        read_header(path)
    assert time.perf_counter() - start < 2.0  # refused from the header, nothing large read
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def test_a_valid_file_reads_with_its_shapes_and_metadata(tmp_path):
    path = tmp_path / "ok.safetensors"
    save_file({"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.float16)}, str(path), metadata={"k": "v"})
    header = read_header(path)
    assert header.shapes() == {"a": (2, 3), "b": (4,)}
    assert header.metadata == {"k": "v"} and header.float_keys() == {"a", "b"}
    assert header.data_start + 2 * 3 * 4 + 4 * 2 == path.stat().st_size


def test_header_length_of_terabytes_is_refused_with_the_number(tmp_path):
    message = _error(_write(tmp_path, "huge.safetensors", safetensors_bytes(b"{}", length=5 * TB)))
    assert "huge.safetensors" in message and "5.0 TiB" in message


def test_header_longer_than_the_file_is_truncated(tmp_path):
    message = _error(_write(tmp_path, "short.safetensors", safetensors_bytes(b'{"a":1}', length=4096)))
    assert "truncated" in message and "4096" in message


def test_deep_json_header_is_refused_without_recursion(tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    message = _error(_write(tmp_path, "deep.safetensors", safetensors_bytes(b'{"a":' + deep + b"}")))
    assert "nests deeper" in message


@pytest.mark.parametrize("entry, field", [
    ({"dtype": "F32", "shape": 7, "data_offsets": [0, 28]}, "shape"),  # a number where a list belongs
    ({"dtype": "F32", "data_offsets": [0, 4]}, "no shape"),
    ({"shape": [1], "data_offsets": [0, 4]}, "no dtype"),
    ({"dtype": {"x": 1}, "shape": [1], "data_offsets": [0, 4]}, "unknown dtype"),  # a dict where text belongs
    ({"dtype": "Q99", "shape": [1], "data_offsets": [0, 4]}, "unknown dtype"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape"),
    ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "shape"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, "needs 8 bytes"),  # offsets disagree with shape
    ({"dtype": "F32", "shape": [10 ** 30], "data_offsets": [0, 4]}, "needs"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, "data_offsets"),
    ({"dtype": "F32", "shape": [1], "data_offsets": "0-4"}, "data_offsets"),
    ("a string", "not an object"),
])
def test_wrong_types_name_the_tensor_and_field(tmp_path, entry, field):
    path = _write(tmp_path, "bad.safetensors", safetensors_bytes({"w": entry}, b"\0" * 64))
    message = _error(path)
    assert "bad.safetensors" in message and "'w'" in message and field in message, message


@pytest.mark.parametrize("raw", [b'{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 4]}}',
                                 b'{"w": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}',
                                 b'{"w": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 4]}}'])
def test_non_finite_numbers_are_refused(tmp_path, raw):
    assert "not valid JSON" in _error(_write(tmp_path, "inf.safetensors", safetensors_bytes(raw, b"\0" * 4)))


def test_metadata_must_be_strings(tmp_path):
    header = {"__metadata__": {"format": {"nested": "dict"}}}
    assert "__metadata__ 'format' must be a string" in _error(_write(tmp_path, "m.safetensors",
                                                                     safetensors_bytes(header)))


def test_tensors_outside_the_file_or_overlapping(tmp_path):
    outside = {"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}
    assert "truncated" in _error(_write(tmp_path, "t.safetensors", safetensors_bytes(outside, b"\0" * 16)))
    overlap = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    assert "overlap" in _error(_write(tmp_path, "o.safetensors", safetensors_bytes(overlap, b"\0" * 12)))


def test_fifo_socket_and_dev_zero_are_not_regular_files(tmp_path):
    fifo = make_fifo(tmp_path / "pipe.safetensors")
    assert "not a regular file" in _error(fifo)  # would block forever in open()
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    assert "not a regular file" in _error(zero)  # would read forever
    sock_path = tmp_path / "s.safetensors"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert "not a regular file" in _error(sock_path)


def test_header_error_is_a_value_error_for_old_callers(tmp_path):
    path = _write(tmp_path, "x.safetensors", b"\x01")
    with pytest.raises(ValueError):
        read_header(path)
    assert issubclass(SafetensorsHeaderError, UserError)
    assert os.path.exists(path)
