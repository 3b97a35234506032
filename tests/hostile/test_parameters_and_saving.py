"""Parameters are checked before anything runs (CLI flags, records from disk), errors name the parameter and
its range in one short line; saving failures name the path, keep the image, and exit non-zero."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from PIL import Image

from aigc_desktop.core import outputs
from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.params import GenerationParams, params_from_record, validate_record
from tests.hostile.conftest import one_error_line, run_cli


@pytest.fixture
def generate(tiny_sd_path, tmp_path, capsys):
    def run(*extra: str, out=None):
        out = out if out is not None else tmp_path / "o.png"
        return run_cli(capsys, "generate", "--model", tiny_sd_path, "--prompt", "x", "--steps", "1",
                       "--width", "64", "--height", "64", "--out", out, "--quiet", *extra)
    return run


@pytest.mark.parametrize("flags, expected", [
    (("--width", "0"), "Width must be between 64 and 8192, got 0"),
    (("--height", "-64"), "Height must be between 64 and 8192"),
    (("--seed", "-5"), "Seed must be -1 (random) or between 0 and 4294967295, got -5"),
    (("--seed", "4294967296"), "Seed must be -1 (random) or between 0"),
    (("--cfg", "nan"), "CFG scale must be between 0 and 100, got nan"),
    (("--cfg", "1e999"), "CFG scale must be between 0 and 100, got inf"),
    (("--steps", "0"), "Steps must be between 1 and 1000"),
    (("--batch", "100000"), "Batch size must be between 1 and 64"),
])
def test_bad_flags_are_refused_before_anything_runs(generate, tmp_path, flags, expected):
    code, out, err = generate(*flags)
    assert code == 2 and expected in one_error_line(err), err
    assert not (tmp_path / "o.png").exists() and out == ""


def test_a_5000_digit_seed_is_not_echoed_in_full(generate):
    code, _, err = generate("--seed", "9" * 5000)
    line = one_error_line(err)
    assert code == 2 and "seed" in line.lower() and len(line) < 200 and "9" * 100 not in line


def test_huge_values_in_params_are_cut_in_messages():
    with pytest.raises(InvalidParameter) as err:
        GenerationParams(seed=10 ** 3000).with_seed_resolved()
    assert "a 3001-digit number" in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(InvalidParameter, match="Seed must be"):
        GenerationParams(seed=-7).with_seed_resolved()  # never turned into a random seed


@pytest.mark.parametrize("record, field", [
    ({"width": "512"}, "width"),
    ({"width": 0}, "Width"),
    ({"seed": -3}, "Seed"),
    ({"seed": [1]}, "seed"),
    ({"cfg_scale": {"a": 1}}, "cfg_scale"),
    ({"steps": 2.5}, "steps"),
    ({"scheduler": {"x": 1}}, "scheduler"),
    ({"outpaint": 5}, "outpaint"),
    ({"loras": [{"path": 3}]}, "LoRA"),
    ({"loras": "x"}, "loras"),
    ({"prompt": ["not", "text"]}, "prompt"),
    ([1, 2], "not a JSON object"),
])
def test_records_from_disk_are_checked(record, field):
    with pytest.raises(InvalidParameter) as err:
        validate_record(record, source="project.aigc")
    message = str(err.value)
    assert message.startswith("project.aigc") and field in message and "\n" not in message, message


def test_a_good_record_round_trips():
    p = GenerationParams(prompt="a cat", seed=42, steps=12, cfg_scale=5.5, width=640, height=512)
    assert params_from_record(p.to_dict()) == p
    assert params_from_record({"seed": 7, "cfg_scale": 6}).cfg_scale == 6.0


def _unwritable(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere on a normal file system; /proc refuses new folders
        return "/proc/aigc-desktop-test/out.png"
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    return str(folder / "out.png")


def test_unwritable_folder_and_file_parent_keep_the_image(generate, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "fallback_folder", lambda: tmp_path / "kept")
    parent_file = tmp_path / "afile"
    parent_file.write_text("x")
    too_long = str(tmp_path / ("n" * 300 + ".png"))  # longer than a file name may be (255 bytes): shown cut
    for target in (_unwritable(tmp_path), str(parent_file / "sub" / "o.png"), too_long):
        code, out, err = generate(out=target)
        line = one_error_line(err)
        assert code == 1 and outputs.shown_path(Path(target)) in line and "kept at" in line, err
        kept = line.rsplit("kept at ", 1)[1].strip()
        with Image.open(kept) as im:
            assert im.size == (64, 64) and "parameters" in im.info


def test_full_disk_names_the_path_and_fails(generate, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "fallback_folder", lambda: tmp_path / "kept")
    target = tmp_path / "out" / "o.png"
    real_save = Image.Image.save

    def save(self, fp, *args, **kwargs):
        if str(target.parent) in str(fp):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    code, _, err = generate(out=target)
    line = one_error_line(err)
    assert code == 1 and "the disk is full" in line and str(target) in line and "kept at" in line
    assert not target.exists() and list((tmp_path / "kept").glob("*.png"))
    assert not [p for p in target.parent.iterdir()]  # no half-written temporary left behind


def test_save_to_folder_errors_name_the_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(outputs.SaveError) as err:
        outputs.save_to_folder([Image.new("RGB", (8, 8))], [{"seed": 1, "prompt": "p"}], blocker)
    assert str(blocker) in str(err.value) and "not a folder" in str(err.value)
