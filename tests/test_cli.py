"""The headless CLI: success, progress on stderr, metadata in the PNG, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from aigc_desktop.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_writes_png_with_parameters(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "img.png"
    code, stdout, stderr = run_cli(capsys, "generate", "--model", str(tiny_sd_path), "--prompt", "a red apple",
                                   "--negative", "blurry", "--seed", "5", "--steps", "3", "--width", "64",
                                   "--height", "64", "--scheduler", "dpmpp_2m_karras", "--out", str(out))
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    assert "3/3" in stderr  # progress on stderr
    with Image.open(out) as im:
        assert im.size == (64, 64)
        params = im.info["parameters"]
        record = json.loads(im.info["aigc_desktop"])
    assert params.startswith("a red apple\nNegative prompt: blurry\n")
    assert "Seed: 5" in params and "Steps: 3" in params and "Size: 64x64" in params
    assert record["seed"] == 5 and record["scheduler"] == "dpmpp_2m_karras"
    assert len(record["model"]["sha256"]) == 64


def test_generate_batch_into_folder(capsys, tmp_path, tiny_sd_path):
    folder = tmp_path / "outdir"
    code, stdout, stderr = run_cli(capsys, "generate", "--model", str(tiny_sd_path), "--prompt", "x", "--seed", "1",
                                   "--steps", "2", "--width", "64", "--height", "64", "--batch", "2",
                                   "--out", str(folder) + "/", "--quiet")
    assert code == 0, stderr
    paths = stdout.split()
    assert len(paths) == 2
    seeds = [json.loads(Image.open(p).info["aigc_desktop"])["seed"] for p in paths]
    assert seeds == [1, 2]
    assert stderr == ""


@pytest.mark.parametrize("args, fragment", [
    (["--width", "65"], "multiple of 8"),
    (["--scheduler", "fancy"], "Unknown scheduler"),
    (["--steps", "many"], "whole number"),
])
def test_bad_parameters(capsys, tmp_path, tiny_sd_path, args, fragment):
    code, _out, err = run_cli(capsys, "generate", "--model", str(tiny_sd_path), "--out", str(tmp_path / "o.png"),
                              *args)
    assert code == 2
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_missing_model(capsys, tmp_path):
    code, _out, err = run_cli(capsys, "generate", "--model", str(tmp_path / "nope.safetensors"), "--out",
                              str(tmp_path / "o.png"))
    assert code == 2 and "Model not found" in err


def test_not_a_model_folder(capsys, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme.txt").write_text("hi")
    code, _out, err = run_cli(capsys, "generate", "--model", str(tmp_path / "folder"), "--out", str(tmp_path / "o.png"))
    assert code == 2 and "not a model" in err


def test_corrupted_model_file_one_line_no_traceback(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    proc = subprocess.run([sys.executable, "-m", "aigc_desktop", "generate", "--model", str(bad), "--prompt", "x",
                           "--out", str(tmp_path / "o.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "broken" in proc.stderr


def test_models_json(capsys, tmp_path, tiny_sd_path):
    code, out, _err = run_cli(capsys, "models", "--json", "--folder", str(tiny_sd_path.parent))
    assert code == 0
    listed = {m["name"]: m for m in json.loads(out)}
    assert listed[tiny_sd_path.name]["kind"] == "diffusers" and listed[tiny_sd_path.name]["family"] == "sd1"
