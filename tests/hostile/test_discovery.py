"""One bad file in a models folder never stops discovery, the `models` command or `generate` by the name of
another model: each bad entry is listed as unreadable with a one-line reason."""

from __future__ import annotations

import json
import os
import socket
import zipfile

import pytest
import torch

from aigc_desktop.core import catalog
from aigc_desktop.core.settings import Settings, default_path
from tests.hostile.conftest import make_fifo, one_error_line, run_cli, safetensors_bytes


def _folder_model(root, name, index, unet=None):
    folder = root / name
    folder.mkdir()
    (folder / "model_index.json").write_text(index if isinstance(index, str) else json.dumps(index))
    if unet is not None:
        (folder / "unet").mkdir()
        (folder / "unet" / "config.json").write_text(json.dumps(unet))
    return folder


@pytest.fixture
def hostile_models(tmp_path, tiny_sd_path):
    """A models folder holding the good tiny SD model among one bad entry of every class."""
    root = tmp_path / "models"
    root.mkdir()
    (root / "tiny-sd").symlink_to(tiny_sd_path, target_is_directory=True)
    make_fifo(root / "pipe.safetensors")
    (root / "zero.ckpt").symlink_to("/dev/zero")
    (root / "dangling.safetensors").symlink_to(root / "gone.safetensors")
    (root / "liar.safetensors").write_bytes(safetensors_bytes(b"{}", length=1 << 45))
    (root / "wrongtypes.safetensors").write_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": 3,
                                                                           "data_offsets": [0, 12]}}, b"\0" * 12))
    (root / "half.safetensors").write_bytes(safetensors_bytes({"w": {"dtype": "F32", "shape": [1000],
                                                                     "data_offsets": [0, 4000]}}, b"\0" * 10))
    torch.save({"w": torch.zeros(2)}, str(root / "seed.ckpt"))
    with zipfile.ZipFile(root / "seed.ckpt") as zin, zipfile.ZipFile(root / "bomb.ckpt", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
        zout.writestr("archive/data/7", b"\0" * (4 << 20), compress_type=zipfile.ZIP_DEFLATED)
    (root / "seed.ckpt").unlink()
    _folder_model(root, "deep", '{"_class_name": ' + "[" * 50_000 + "]" * 50_000 + "}")
    _folder_model(root, "absurd", {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]},
                  {"sample_size": 10 ** 12, "in_channels": 4})
    _folder_model(root, "dictname", {"_class_name": {"not": "text"}})
    _folder_model(root, "infinity", '{"_class_name": "StableDiffusionPipeline", "x": Infinity}')
    fifo_dir = root / "fifo-index"
    fifo_dir.mkdir()
    make_fifo(fifo_dir / "model_index.json")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "socket.pt"))
    yield root
    sock.close()


BAD = {"pipe": "not a regular file", "zero": "not a regular file", "dangling": "does not exist", "liar": "32.0 TiB",
       "wrongtypes": "shape", "half": "truncated", "bomb": "zip bomb", "deep": "nests deeper",
       "absurd": "sample_size", "dictname": "_class_name", "infinity": "not valid JSON",
       "fifo-index": "not a regular file", "socket": "not a regular file"}


def test_discovery_lists_every_bad_entry_as_unreadable(hostile_models):
    models = {m.name: m for m in catalog.discover([hostile_models])}
    assert models["tiny-sd"].kind == "diffusers"
    for name, reason in BAD.items():
        info = models[name]
        assert info.kind == "unreadable", (name, info)
        assert reason in info.note and "\n" not in info.note and len(info.note) <= 300, (name, info.note)
    assert list(models)[0] == "tiny-sd"  # generators first, unreadable entries last


def test_models_command_lists_them_and_succeeds(hostile_models, capsys):
    code, out, err = run_cli(capsys, "models", "--folder", hostile_models)
    assert code == 0, err
    for name in BAD:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert "unreadable" in line
    code, out, _ = run_cli(capsys, "models", "--json", "--folder", hostile_models)
    listed = {m["name"]: m for m in json.loads(out)}
    assert listed["liar"]["kind"] == "unreadable" and "32.0 TiB" in listed["liar"]["note"]


def test_generate_by_name_works_beside_bad_files(hostile_models, tmp_path, capsys):
    Settings({"models_dir": str(hostile_models)}).save(default_path())
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(capsys, "generate", "--model", "tiny-sd", "--prompt", "x", "--steps", "1",
                                "--width", "64", "--height", "64", "--seed", "1", "--out", out, "--quiet")
    assert code == 0, err
    assert out.is_file()
    # A bad entry by name: one line saying why, exit 2.
    code, _, err = run_cli(capsys, "generate", "--model", "liar", "--prompt", "x", "--out", out, "--quiet")
    assert code == 2 and "32.0 TiB" in one_error_line(err)
    code, _, err = run_cli(capsys, "generate", "--model", str(hostile_models / "pipe.safetensors"),
                           "--prompt", "x", "--out", out, "--quiet")
    assert code == 2 and "not a regular file" in one_error_line(err)


def test_a_model_name_longer_than_the_file_system_allows(capsys, tmp_path):
    code, _, err = run_cli(capsys, "generate", "--model", "m" * 5000 + ".safetensors", "--prompt", "x",
                           "--out", tmp_path / "o.png")
    line = one_error_line(err)
    assert code == 2 and "Model not found" in line and len(line) < 300
    info = catalog.info_for(tmp_path / ("n" * 300 + ".safetensors"))
    assert info.kind in ("unknown", "unreadable") and len(info.note) <= 400
