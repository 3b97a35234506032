"""`aigc-desktop info FILE [--json] [--hash]`: images of every supported tool, model files, bad input."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys

import pytest
from PIL import Image

from aigc_desktop.cli import main
from aigc_desktop.core.metadata import save_png
from tests import metadata_fixtures as fx


def _run(capsys, *argv):
    code = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_of_our_image(tmp_path, capsys):
    rec = {"engine": "diffusion", "prompt": "a fox 🦊 in snow", "negative_prompt": "blur", "seed": 42, "steps": 20,
           "cfg_scale": 7.0, "width": 512, "height": 768, "scheduler": "dpmpp_2m_karras", "mode": "txt2img",
           "model": {"name": "dreamshaper_8", "sha256": "ab" * 32, "family": "sd1"},
           "loras": [{"name": "detail", "weight": 0.5, "sha256": "cd" * 32}]}
    path = save_png(Image.new("RGB", (64, 96)), tmp_path / "fox.png", rec)
    code, out, err = _run(capsys, path)
    assert code == 0 and err == ""
    assert f"File:       {path} (64x96 PNG)" in out
    assert "Source:     aigc-desktop" in out and "Prompt:     a fox 🦊 in snow" in out
    assert "Settings:   Seed 42, Steps 20, CFG scale 7, Size 512x768" in out
    assert "Sampler:    DPM++ 2M Karras -> dpmpp_2m_karras" in out
    assert "Model:      dreamshaper_8 [ababababab] (sd1)" in out and "LoRA:       detail x0.5 [cdcdcdcdcdcd]" in out


def test_info_json(tmp_path, capsys):
    path = fx.png_with(tmp_path / "comfy.png", {"prompt": json.dumps(fx.COMFY_DEFAULT_PROMPT)})
    code, out, _ = _run(capsys, path, "--json")
    data = json.loads(out)
    assert code == 0 and data["found"] is True and data["source"] == "ComfyUI"
    assert data["prompt"].startswith("beautiful scenery") and data["seed"] == 156680208700286
    assert data["scheduler"] == "euler" and data["image_size"] == [64, 64] and data["file"] == str(path)


@pytest.mark.parametrize("chunks,expect", [
    ({"parameters": fx.A1111_HIRES}, ["Source:     A1111", "Not restored: ", "hires fix (x2)", "ADetailer"]),
    ({"invokeai_metadata": json.dumps(fx.INVOKE_3)}, ["Source:     InvokeAI", "Mode:       img2img, strength 0.55",
                                                     "LoRA:       ghibli_style x0.5"]),
    (fx.NOVELAI, ["Source:     NovelAI", "Sampler:    k_euler_ancestral / native -> euler_a"]),
])
def test_info_of_other_tools(tmp_path, capsys, chunks, expect):
    code, out, _ = _run(capsys, fx.png_with(tmp_path / "x.png", chunks))
    assert code == 0
    for text in expect:
        assert text in out


def test_info_without_metadata(tmp_path, capsys):
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (10, 10)).save(plain)
    code, out, _ = _run(capsys, plain)
    assert code == 0 and "No generation parameters found." in out
    code, out, _ = _run(capsys, plain, "--json")
    assert json.loads(out)["found"] is False


def test_bad_files_give_one_line_and_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for target, message in ((tmp_path / "missing.png", "error: No such file: "),
                            (text, "error: notes.txt is not an image this app can read")):
        code, out, err = _run(capsys, target)
        assert code == 2 and out == "" and err.startswith(message) and err.count("\n") == 1
    code, out, err = _run(capsys, junk)  # a PNG signature with garbage after it: one line, no crash
    assert code == 2 and err.startswith("error: junk.png is not an image this app can read") and err.count("\n") == 1
    code, out, err = _run(capsys)  # no file given: argparse's message, one line
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_bad_file_in_a_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.webp"
    bad.write_bytes(b"RIFF\0\0\0\0WEBPjunk")
    out = subprocess.run([sys.executable, "-m", "aigc_desktop", "info", str(bad)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def test_info_of_a_model_file(tmp_path, capsys):
    payload = b"\0" * 64
    header = json.dumps({
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {"dtype": "F32", "shape": [4, 4],
                                                                          "data_offsets": [0, 64]}}).encode()
    lora = tmp_path / "detail.safetensors"
    lora.write_bytes(struct.pack("<Q", len(header)) + header + payload)
    code, out, _ = _run(capsys, lora, "--hash")
    full = hashlib.sha256(lora.read_bytes()).hexdigest()
    assert code == 0 and "Model:      detail (lora" in out
    assert f"SHA-256:    {full} (A1111 model hash {full[:10]})" in out
    assert f"LoRA hash:  {hashlib.sha256(payload).hexdigest()[:12]}" in out
    code, out, _ = _run(capsys, lora, "--json")
    data = json.loads(out)
    assert data["kind"] == "lora" and "sha256" not in data  # hashing only on request


def test_info_of_a_model_folder(tmp_path, capsys, tiny_sd_path):
    code, out, _ = _run(capsys, tiny_sd_path, "--json")
    data = json.loads(out)
    assert code == 0 and data["kind"] == "diffusers" and data["family"] == "sd1"


def test_generate_then_info_round_trip(tmp_path, capsys, tiny_sd_path):
    """The CLI's own PNG: `info --json` gives back exactly what `generate` was asked for."""
    out = tmp_path / "gen.png"
    code = main(["generate", "--model", str(tiny_sd_path), "--prompt", "a 🦊, (fox:1.2)", "--negative", "blur",
                 "--seed", "77", "--steps", "2", "--cfg", "4.5", "--width", "64", "--height", "64",
                 "--scheduler", "dpmpp_2m_karras", "--out", str(out), "--quiet"])
    capsys.readouterr()
    assert code == 0 and out.is_file()
    code, text, _ = _run(capsys, out, "--json")
    data = json.loads(text)
    assert (data["source"], data["prompt"], data["negative_prompt"], data["seed"], data["steps"]) == (
        "aigc-desktop", "a 🦊, (fox:1.2)", "blur", 77, 2)
    assert (data["cfg_scale"], data["width"], data["scheduler"], data["family"]) == (4.5, 64, "dpmpp_2m_karras", "sd1")
    assert data["record"]["model"]["path"] == str(tiny_sd_path) and len(data["model_hash"]) == 64
