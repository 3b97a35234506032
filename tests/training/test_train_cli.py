from __future__ import annotations

import json
import sys

from aigc_desktop.cli import main


def test_train_and_dataset_commands(shapes_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "vae", "--data", str(shapes_dir), "--out", str(out), "--resolution", "16", "--steps", "2",
            "--batch", "4", "--threads", "1", "--device", "cpu", "--set", "channels=8,16", "--set", "latent_dim=8"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip().endswith("model")
    assert (out / "model" / "vae_morph.json").is_file()
    assert main(argv) == 2  # the run exists: needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main(argv[:-4] + ["--steps", "3", "--resume", "--set", "channels=8,16", "--set", "latent_dim=8"]) == 0
    capsys.readouterr()
    # --resume alone continues the run with the options it was started with (data, size, architecture)
    assert main(["train", "vae", "--out", str(out), "--resume", "--steps", "4"]) == 0
    assert json.loads((out / "config.json").read_text())["steps"] == 4
    assert json.loads((out / "model" / "vae_morph.json").read_text())["latent_dim"] == 8
    assert main(["train", "stylegan", "--out", str(out), "--resume"]) == 2
    assert "is a vae run" in capsys.readouterr().err


def test_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "vae", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Data folder not found") and "\n" not in err
    assert main(["train", "diffusion", "--data", str(tmp_path), "--out", str(tmp_path), "--set", "oops"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["train", "gan"]) == 2
    assert main(["train", "stylegan", "--list-options"]) == 0
    assert "r1_gamma" in capsys.readouterr().out
    assert main(["dataset", "emoji", "--out", str(tmp_path), "--size", "3"]) == 2


def test_cli_imports_no_torch():
    import subprocess

    code = "import sys, aigc_desktop.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
