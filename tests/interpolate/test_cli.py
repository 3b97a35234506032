"""`aigc-desktop interpolate` for the three kinds of travel, and its one-line errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from aigc_desktop.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def image_files(tmp_path, key_images):
    paths = []
    for i, im in enumerate(key_images):
        paths.append(tmp_path / f"k{i}.png")
        im.save(paths[-1])
    return paths


def test_vae_morph_to_gif(capsys, tmp_path, morph_vae_path, image_files):
    out = tmp_path / "m.gif"
    code, stdout, stderr = run_cli(capsys, "interpolate", "--model", morph_vae_path, "--images", *image_files,
                                   "--frames", 3, "--ease", "ease-in-out", "--hold", 1, "--fps", 5, "--out", out)
    assert code == 0, stderr
    assert stdout.strip() == str(out) and "7/7" in stderr  # progress on stderr: 7 distinct pictures
    with Image.open(out) as im:
        # 10 frames at 5 fps; Pillow merges a GIF's repeated (held) frames into one with their summed duration
        assert im.n_frames == 7 and im.size == (16, 16)
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
        assert total == (3 * 2 + 1 + 3) * 200


def test_stylegan_travel_and_walk_alias(capsys, tmp_path, stylegan_path):
    out = tmp_path / "s.webm"
    code, stdout, stderr = run_cli(capsys, "interpolate", "--model", stylegan_path, "--seeds", 1, 2, "3",
                                   "--frames", 2, "--loop", "--mode", "lerp", "--truncation", 0.7, "--out", out)
    assert code == 0, stderr
    import av

    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6
    seq = tmp_path / "walk"
    code, stdout, stderr = run_cli(capsys, "walk", "--model", stylegan_path, "--seeds", "1,2", "--frames", 2,
                                   "--out", seq, "--quiet")
    assert code == 0, stderr and stderr == ""
    names = sorted(p.name for p in seq.iterdir())
    assert len(names) == 3
    with Image.open(seq / names[-1]) as im:
        record = json.loads(im.info["aigc_desktop"])
    assert record["seed"] == 2 and record["travel"]["t"] == 1.0  # the last frame is seed 2's own image


def test_diffusion_prompt_travel(capsys, tmp_path, tiny_sd_path):
    out = tmp_path / "d.png.d"
    code, stdout, stderr = run_cli(capsys, "interpolate", "--model", tiny_sd_path, "--prompts", "a boat", "a tree",
                                   "--seeds", 4, "--frames", 2, "--steps", 2, "--width", 64, "--height", 64,
                                   "--out", tmp_path / "d.mp4", "--quiet")
    assert code == 0, stderr
    assert stdout.strip() == str(tmp_path / "d.mp4") and not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--seeds", "1"], "at least two keyframes"),
    (["--seeds", "1", "2", "--ease", "bouncy"], "Unknown easing 'bouncy'"),
    (["--seeds", "1", "2", "--loop", "--pingpong"], "not allowed with"),
    (["--seeds", "1", "2", "--frames", "0"], "frames must be"),
    (["--prompts", "a", "b"], "takes --seeds, not --prompts"),
])
def test_stylegan_errors_are_one_line(capsys, tmp_path, stylegan_path, args, message):
    code, _o, err = run_cli(capsys, "interpolate", "--model", stylegan_path, *args, "--out", tmp_path / "x.gif")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.gif").exists()


def test_other_errors_are_one_line(capsys, tmp_path, stylegan_path, morph_vae_path, image_files, tiny_sd_path):
    cases = [
        (["--model", stylegan_path, "--seeds", 1, 2, "--out", tmp_path / "x.avi"], 2, "Cannot export animations as .avi"),
        (["--model", tiny_sd_path, "--prompts", "a", "b", "c", "--seeds", 1, 2, "--out", tmp_path / "x.gif"], 2,
         "3 prompts but 2 seeds"),
        (["--model", stylegan_path, "--images", *image_files[:2], "--out", tmp_path / "x.gif"], 2, "not a VAE"),
        (["--model", morph_vae_path, "--images", image_files[0], "--out", tmp_path / "x.gif"], 2,
         "at least two keyframes"),
        (["--model", morph_vae_path, "--images", *image_files[:2], "--size", 32, "--out", tmp_path / "x.gif"], 1,
         "works on 16x16 images"),
        (["--model", morph_vae_path, "--images", image_files[0], tmp_path / "missing.png", "--out",
          tmp_path / "x.gif"], 2, "Image not found"),
    ]
    for args, want, message in cases:
        code, _o, err = run_cli(capsys, "interpolate", *args, "--quiet")
        assert code == want and message in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "x.gif").exists()
