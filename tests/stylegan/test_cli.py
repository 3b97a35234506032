"""StyleGAN on the command line: generate (dispatching on the model's kind), convert, walk, grid."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.cli import main
from aigc_desktop.testing.stylegan import write_malicious_pickle


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_with_all_stylegan_options(capsys, tmp_path, sg_files):
    out = tmp_path / "face.png"
    code, stdout, stderr = run_cli(capsys, "generate", "--model", sg_files["sg2-skip"], "--seed", 42,
                                   "--truncation", 0.7, "--trunc-cutoff", 4, "--mix-seed", 7, "--mix-layers", "fine",
                                   "--noise-mode", "none", "--out", out)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (32, 32)
        record = json.loads(im.info["aigc_desktop"])
        assert "Seed: 42" in im.info["parameters"]
    assert (record["seed"], record["truncation_psi"], record["truncation_cutoff"]) == (42, 0.7, 4)
    assert (record["mix_seed"], record["mix_layers"], record["noise_mode"]) == (7, "fine", "none")


def test_generate_seeds_and_classes(capsys, tmp_path, sg_files):
    code, stdout, stderr = run_cli(capsys, "generate", "--model", sg_files["sg2-resnet"], "--seeds", "3-5,9",
                                   "--class", 2, "--out", tmp_path / "many")
    assert code == 0, stderr
    paths = stdout.split()
    assert len(paths) == 4
    seeds = [json.loads(Image.open(p).info["aigc_desktop"])["seed"] for p in paths]
    assert seeds == [3, 4, 5, 9]


def test_generate_stylegan3_transform_and_same_pixels_as_the_engine(capsys, tmp_path, sg_files):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_cli(capsys, "generate", "--model", sg_files["sg3-r"], "--seed", 1, "--out", a)[0] == 0
    assert run_cli(capsys, "generate", "--model", sg_files["sg3-r"], "--seed", 1, "--translate", "0.3,0",
                   "--rotate", 20, "--out", b, "--quiet")[0] == 0
    assert not np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


@pytest.mark.parametrize("args,message", [
    (["--mix-layers", "coarse"], "--mix-layers needs --mix-seed"),
    (["--mix-seed", "1", "--mix-layers", "top"], "Mixing layers must be"),
    (["--noise-mode", "loud"], "invalid choice"),
    (["--truncation", "much"], "expected a number"),
    (["--seeds", "5-x"], "seeds look like"),
    (["--translate", "1"], "expected X,Y"),
])
def test_generate_bad_input_is_one_line(capsys, tmp_path, sg_files, args, message):
    code, _out, err = run_cli(capsys, "generate", "--model", sg_files["sg2-skip"], *args, "--out", tmp_path / "x.png")
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_generate_failures(capsys, tmp_path, sg_files):
    code, _out, err = run_cli(capsys, "generate", "--model", sg_files["sg2-skip"], "--mix-seed", 1, "--mix-layers",
                              "0-50", "--out", tmp_path / "x.png")
    assert code == 1 and "out of range" in err
    evil = write_malicious_pickle(tmp_path / "evil.pkl", tmp_path / "pwned")
    code, _out, err = run_cli(capsys, "generate", "--model", evil, "--seed", 1, "--out", tmp_path / "x.png")
    assert code == 2 and "not a model this app can generate with" in err
    assert not (tmp_path / "pwned").exists()


def test_convert(capsys, tmp_path, sg_files):
    code, stdout, stderr = run_cli(capsys, "convert", sg_files["sg3-t"], "--out", tmp_path / "conv")
    assert code == 0, stderr
    assert stdout.strip() == str(tmp_path / "conv")
    assert (tmp_path / "conv" / "generator.safetensors").is_file()
    code, _o, err = run_cli(capsys, "convert", tmp_path / "missing.pkl", "--out", tmp_path / "c2")
    assert code == 2 and "File not found" in err
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x03")
    code, _o, err = run_cli(capsys, "convert", bad, "--out", tmp_path / "c3")
    assert code == 2 and "bad.pkl is truncated" in err
    # The converted folder is a model for generate.
    code, _out, _err = run_cli(capsys, "generate", "--model", tmp_path / "conv", "--seed", 3,
                               "--out", tmp_path / "g.png")
    assert code == 0


def test_walk_and_grid(capsys, tmp_path, sg_files):
    out = tmp_path / "walk.gif"
    code, stdout, stderr = run_cli(capsys, "walk", "--model", sg_files["sg2-skip"], "--seeds", "1,2,3", "--frames", 2,
                                   "--truncation", 0.7, "--loop", "--out", out)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    with Image.open(out) as im:
        assert im.n_frames == 6
    code, stdout, stderr = run_cli(capsys, "grid", "--model", sg_files["ours"], "--seeds", "0-5", "--cols", 3,
                                   "--out", tmp_path / "grid.png")
    assert code == 0, stderr
    with Image.open(stdout.strip()) as im:
        assert im.size == (96, 64)
        assert json.loads(im.info["aigc_desktop"])["grid"]["seeds"] == [0, 1, 2, 3, 4, 5]
    code, _o, err = run_cli(capsys, "walk", "--model", sg_files["sg2-skip"], "--seeds", "1", "--out", out)
    assert code == 2 and "two keyframe" in err
    code, _o, err = run_cli(capsys, "grid", "--model", tmp_path / "grid.png", "--seeds", "1", "--out", out)
    assert code == 2


def test_no_argparse_front_inside_engines():
    import importlib.util

    assert importlib.util.find_spec("aigc_desktop.engines.stylegan.cli") is None


def test_cli_imports_no_torch():
    code = ("import sys, aigc_desktop.cli as c; c.build_parser(); "
            "import aigc_desktop.cli_stylegan, aigc_desktop.cli_interpolate; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
