"""`generate` with the image-mode flags: img2img, inpaint, outpaint, variation seeds; one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from aigc_desktop.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-inputs")
    Image.linear_gradient("L").resize((70, 66)).convert("RGB").save(folder / "init.png")
    mask = Image.new("L", (70, 66), 0)
    mask.paste(255, (10, 10, 40, 40))
    mask.save(folder / "mask.png")
    return folder


def generate(capsys, model, out, *args):
    code = main(["generate", "--model", str(model), "--prompt", "a tree", "--seed", "4", "--steps", "2",
                 "--out", str(out), "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.err


def record(path):
    with Image.open(path) as im:
        return im.size, json.loads(im.info["aigc_desktop"]), im.info["parameters"]


def test_img2img_takes_the_image_size(capsys, tmp_path, tiny_sd_path, inputs):
    code, err = generate(capsys, tiny_sd_path, tmp_path / "a.png", "--init-image", str(inputs / "init.png"),
                         "--strength", "0.5")
    assert code == 0, err
    size, rec, params = record(tmp_path / "a.png")
    assert size == (64, 64)  # 70x66 rounded down to multiples of 8
    assert rec["mode"] == "img2img" and rec["strength"] == 0.5 and rec["init_image"]["file"] == "init.png"
    assert "Denoising strength: 0.5" in params


def test_inpaint_only_masked_and_outpaint(capsys, tmp_path, tiny_sd_path, inputs):
    code, err = generate(capsys, tiny_sd_path, tmp_path / "b.png", "--init-image", str(inputs / "init.png"),
                         "--mask", str(inputs / "mask.png"), "--mask-blur", "2", "--only-masked",
                         "--width", "64", "--height", "64")
    assert code == 0, err
    size, rec, _ = record(tmp_path / "b.png")
    assert size == (70, 66) and rec["mode"] == "inpaint" and rec["inpaint_only_masked"] and rec["mask_blur"] == 2
    code, err = generate(capsys, tiny_sd_path, tmp_path / "c.png", "--init-image", str(inputs / "init.png"),
                         "--outpaint", "8,0,8,0")
    assert code == 0, err
    size, rec, _ = record(tmp_path / "c.png")
    assert size == (88, 72) and rec["outpaint"] == [8, 0, 8, 0]  # 86x66 rounded up to multiples of 8


def test_variation_seed(capsys, tmp_path, tiny_sd_path):
    code, err = generate(capsys, tiny_sd_path, tmp_path / "v/", "--width", "64", "--height", "64", "--batch", "2",
                         "--variation-seed", "9", "--variation-strength", "0.25")
    assert code == 0, err
    found = [record(p) for p in (tmp_path / "v").glob("*.png")]
    assert sorted((rec["seed"], rec["variation_seed"]) for _size, rec, _text in found) == [(4, 9), (4, 10)]
    assert any("Variation seed: 9, Variation seed strength: 0.25" in text for _size, _rec, text in found)


@pytest.mark.parametrize("args, fragment", [
    (["--strength", "0.5"], "--strength needs --init-image"),
    (["--mask", "m.png"], "--mask needs --init-image"),
    (["--init-image", "{init}", "--only-masked"], "--only-masked needs --mask or --outpaint"),
    (["--init-image", "{init}", "--mask", "{mask}", "--outpaint", "8,8,8,8"], "cannot be combined"),
    (["--init-image", "{init}", "--outpaint", "8,8"], "L,T,R,B"),
    (["--init-image", "{init}", "--outpaint", "a,b,c,d"], "L,T,R,B"),
    (["--init-image", "{init}", "--strength", "1.5"], "Strength must be between 0 and 1"),
    (["--init-image", "{init}", "--strength", "lots"], "expected a number"),
    (["--init-image", "{init}", "--mask", "{init}", "--mask-blur", "999"], "Mask blur"),
    (["--init-image", "/no/such/image.png"], "init image was not found"),
    (["--variation-seed", "3"], "--variation-seed needs --variation-strength"),
    (["--variation-seed", "3", "--variation-strength", "2"], "Variation strength must be between 0 and 1"),
])
def test_bad_mode_flags_are_one_line(capsys, tmp_path, tiny_sd_path, inputs, args, fragment):
    args = [a.format(init=inputs / "init.png", mask=inputs / "mask.png") for a in args]
    code, err = generate(capsys, tiny_sd_path, tmp_path / "x.png", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
