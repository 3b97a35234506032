"""Reading other tools' images: A1111 (PNG and EXIF), ComfyUI (API and editor graphs), InvokeAI, NovelAI,
Fooocus; plus files without metadata, truncated and broken files."""

from __future__ import annotations

import json
import zlib

import pytest
from PIL import Image

from aigc_desktop.core.metadata import UnreadableImage, read_image_metadata, read_text_chunks
from aigc_desktop.core.metadata.samplers import comfy_scheduler, invoke_scheduler
from tests import metadata_fixtures as fx


def _read(tmp_path, chunks, name="x.png"):
    return read_image_metadata(fx.png_with(tmp_path / name, chunks))


# ------------------------------------------------------------------------------------------ A1111


def test_a1111_hires_adetailer_lora(tmp_path):
    m = _read(tmp_path, {"parameters": fx.A1111_HIRES})
    assert m.source == "A1111"
    assert m.prompt.startswith("masterpiece, best quality") and m.prompt.endswith("cherry blossoms")
    assert m.negative_prompt == "(worst quality, low quality:1.4), easynegative, extra fingers"
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (2357413081, 25, 7.0, 512, 768)
    assert m.scheduler == "dpmpp_2m_karras" and m.sampler == "DPM++ 2M / Karras"
    assert (m.model_name, m.model_hash, m.clip_skip) == ("anything-v5-PrtRE", "7f96a1a9ca", 2)
    assert m.vae == "vae-ft-mse-840000-ema-pruned.safetensors"
    assert [(l.name, l.weight, l.hash) for l in m.loras] == [("add_detail", 0.7, "7c6bad76eb54")]
    assert m.mode is None and m.strength is None  # Denoising strength belongs to the hires pass here
    assert "hires fix (x2)" in m.not_restored and "ADetailer" in m.not_restored
    assert not any("Emphasis" in n or "Version" in n for n in m.not_restored)


def test_a1111_2022_style(tmp_path):
    m = _read(tmp_path, {"parameters": fx.A1111_2022})
    assert m.prompt.startswith("girl with an artist's beret") and m.negative_prompt.startswith("ugly, fat")
    assert (m.seed, m.steps, m.cfg_scale, m.scheduler, m.model_hash) == (965400086, 20, 7.0, "euler_a", "45dee52b")
    assert m.not_restored == []


def test_a1111_img2img_variation_and_rng_notes(tmp_path):
    m = _read(tmp_path, {"parameters": fx.A1111_IMG2IMG})
    assert m.negative_prompt == "" and m.scheduler == "dpmpp_sde_karras"
    assert (m.mode, m.strength) == ("inpaint", 0.6)
    assert (m.variation_seed, m.variation_strength) == (42, 0.2)
    notes = " | ".join(m.not_restored)
    assert "ENSD 31337" in notes and "NV RNG" in notes and "init image" in notes


def test_a1111_civitai_hashes_and_unknown_sampler(tmp_path):
    m = _read(tmp_path, {"parameters": fx.A1111_CIVITAI})
    assert m.model_hash == "67ab2fd8ec" and m.scheduler is None
    assert any("DPM++ 2M SDE" in n for n in m.not_restored)


@pytest.mark.parametrize("fmt,order", [("JPEG", "utf-16-be"), ("WEBP", "utf-16-be"), ("JPEG", "utf-16-le")])
def test_a1111_exif_user_comment(tmp_path, fmt, order):
    path = fx.exif_image(tmp_path / f"a.{fmt.lower()}", fmt, "a cat 🐱 in 東京\n" + fx.A1111_2022.split("\n", 1)[1],
                         order)
    m = read_image_metadata(path)
    assert m.source == "A1111" and m.file_format == fmt
    assert m.prompt == "a cat 🐱 in 東京" and m.seed == 965400086 and m.scheduler == "euler_a"


# ------------------------------------------------------------------------------------------ ComfyUI


def _comfy(tmp_path, prompt=None, workflow=None, name="c.png"):
    chunks = {}
    if prompt is not None:
        chunks["prompt"] = json.dumps(prompt)
    if workflow is not None:
        chunks["workflow"] = json.dumps(workflow)
    return _read(tmp_path, chunks, name)


def _assert_default_graph(m, seed=156680208700286):
    assert m.source == "ComfyUI"
    assert m.prompt == "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"
    assert m.negative_prompt == "text, watermark"
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (seed, 20, 8.0, 512, 512)
    assert (m.scheduler, m.sampler) == ("euler", "euler / normal")
    assert m.model_name == "v1-5-pruned-emaonly.safetensors" and m.mode == "txt2img" and m.loras == []


def test_comfy_default_api_graph(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_DEFAULT_PROMPT, fx.comfy_default_workflow())
    _assert_default_graph(m)
    assert m.not_restored == []


@pytest.mark.parametrize("objects", [False, True])
def test_comfy_editor_graph_only(tmp_path, objects):
    m = _comfy(tmp_path, workflow=fx.comfy_default_workflow(links_as_objects=objects))
    _assert_default_graph(m)


def test_comfy_editor_graph_primitive_reroute_muted_bypassed(tmp_path):
    wf = fx.comfy_default_workflow(seed_from_primitive=True, with_reroute=True, muted_sampler=True,
                                   bypassed_lora=True)
    m = _comfy(tmp_path, workflow=wf)
    _assert_default_graph(m, seed=4242)  # from the Primitive node, not the stale widget copy
    assert not any("another sampler" in n for n in m.not_restored)  # the muted one does not count


def test_comfy_sdxl_base_refiner_loras_clip_skip(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_SDXL_REFINER)
    assert m.prompt == "a majestic lion, golden hour" and m.negative_prompt == "cartoon, blurry"
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (721897303308196, 25, 8.0, 1024, 1024)
    assert m.scheduler == "dpmpp_2m_karras" and m.clip_skip == 2
    assert m.model_name == "SDXL\\sd_xl_base_1.0.safetensors"
    assert [(l.name, l.weight) for l in m.loras] == [("offset_example", 0.5), ("add-detail-xl", 0.8)]
    notes = " | ".join(m.not_restored)
    assert "refiner sd_xl_refiner_1.0" in notes and "steps 0-20 of 25" in notes
    assert m.extra["Batch size"] == 2


def test_comfy_hires_fix_and_string_primitive(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_HIRES)
    assert m.prompt == "a cozy cabin in a snowy forest, night" and m.negative_prompt == ""
    assert (m.seed, m.steps, m.width, m.height, m.scheduler) == (42, 12, 768, 512, "dpmpp_sde_karras")
    assert any(n.startswith("hires fix (node 11, denoise 0.5") for n in m.not_restored)


def test_comfy_sampler_custom_advanced(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_CUSTOM_ADVANCED)
    assert m.prompt == "a neon sign that says hello" and m.negative_prompt == ""
    assert (m.seed, m.steps, m.width, m.height, m.scheduler) == (219670278747233, 20, 1024, 1024, "euler")
    assert m.model_name == "flux1-dev.safetensors"
    assert any("diffusion-model-only" in n for n in m.not_restored)


def test_comfy_img2img(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_IMG2IMG)
    assert (m.mode, m.strength, m.scheduler) == ("img2img", 0.87, "dpmpp_2m")
    assert m.width is None and any("init image" in n for n in m.not_restored)


def test_comfy_controlnet_and_model_patch(tmp_path):
    m = _comfy(tmp_path, fx.COMFY_CONTROLNET)
    assert m.prompt == "a dancer, studio light" and m.negative_prompt == "lowres"
    assert m.scheduler == "unipc" and m.model_name == "epicrealism.safetensors"
    assert "ControlNet" in m.not_restored and "model patch FreeU_V2" in m.not_restored


def test_comfy_garbage_graphs(tmp_path):
    m = _read(tmp_path, {"prompt": "{not json", "workflow": json.dumps({"nodes": "x"})})
    assert not m.found
    m = _comfy(tmp_path, {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}, name="d.png")
    assert m.source == "ComfyUI" and m.prompt is None and "no sampler node" in m.not_restored[0]
    cyclic = {"1": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 3, "positive": ["2", 0],
                                                         "negative": ["2", 0], "model": ["3", 0],
                                                         "latent_image": ["3", 0]}},
              "2": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["2", 0]}},
              "3": {"class_type": "Reroute", "inputs": {"input": ["3", 0]}}}
    m = _comfy(tmp_path, cyclic, name="e.png")
    assert m.seed == 1 and m.prompt is None  # loops end, nothing invented


def test_scheduler_maps():
    assert comfy_scheduler("dpmpp_2m", "karras") == ("dpmpp_2m_karras", None)
    assert comfy_scheduler("euler_ancestral", "normal") == ("euler_a", None)
    assert comfy_scheduler("euler", "exponential")[0] == "euler"
    assert comfy_scheduler("dpmpp_3m_sde_gpu", "karras")[0] is None
    assert invoke_scheduler("dpmpp_2m_k") == ("dpmpp_2m_karras", None)
    assert invoke_scheduler("euler_a") == ("euler_a", None)
    assert invoke_scheduler("dpmpp_sde_k") == ("dpmpp_sde_karras", None)
    assert invoke_scheduler("kdpm_2_a")[0] is None


# ------------------------------------------------------------------------------------------ InvokeAI


def test_invokeai_4(tmp_path):
    m = _read(tmp_path, {"invokeai_metadata": json.dumps(fx.INVOKE_4), "invokeai_graph": "{}"})
    assert m.source == "InvokeAI" and m.prompt == "a lighthouse on a cliff, dramatic sky"
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (3953240000, 30, 7.5, 1024, 1024)
    assert (m.scheduler, m.family, m.mode) == ("dpmpp_2m_karras", "sdxl", "txt2img")
    assert (m.model_name, m.model_hash) == ("Juggernaut XL v9", "blake3:8a1f5c9e2b7d4c3a")
    assert [(l.name, l.weight) for l in m.loras] == [("add-detail-xl", 0.75)]
    assert m.not_restored == []  # the style prompt equals the prompt


def test_invokeai_3(tmp_path):
    m = _read(tmp_path, {"invokeai_metadata": json.dumps(fx.INVOKE_3)})
    assert (m.model_name, m.family, m.scheduler, m.mode, m.strength) == (
        "stable-diffusion-v1-5", "sd1", "euler_a", "img2img", 0.55)
    assert m.clip_skip == 2 and m.vae == "sd-vae-ft-mse"
    assert [(l.name, l.weight) for l in m.loras] == [("ghibli_style", 0.5)]
    notes = " | ".join(m.not_restored)
    assert "hires fix" in notes and "ControlNet" in notes and "InvokeAI prompt weights" in notes


def test_invokeai_2_and_dream(tmp_path):
    m = _read(tmp_path, {"sd-metadata": json.dumps(fx.INVOKE_SD_METADATA)})
    assert (m.prompt, m.negative_prompt) == ("a fantasy landscape, trending on artstation", "blurry, lowres")
    assert (m.seed, m.steps, m.scheduler, m.model_name, m.model_hash) == (
        3357757885, 50, "lms", "stable-diffusion-1.5", "cc6cb27103")
    m = _read(tmp_path, {"Dream": fx.INVOKE_DREAM}, "d.png")
    assert (m.prompt, m.negative_prompt) == ("a bowl of fruit, still life", "dark")
    assert (m.seed, m.steps, m.width, m.cfg_scale, m.scheduler) == (2431637946, 50, 512, 7.5, "euler_a")


# ------------------------------------------------------------------------------------------ others


def test_novelai(tmp_path):
    m = _read(tmp_path, fx.NOVELAI)
    assert m.source == "NovelAI" and m.prompt == "1girl, {{best quality}}, silver hair, night city"
    assert (m.negative_prompt, m.seed, m.steps, m.cfg_scale, m.width, m.height, m.scheduler) == (
        "lowres, bad anatomy", 1234567890, 28, 5.0, 832, 1216, "euler_a")
    assert "SMEA" in m.not_restored and any("NovelAI's models" in n for n in m.not_restored)


def test_fooocus(tmp_path):
    m = _read(tmp_path, {"parameters": json.dumps(fx.FOOOCUS), "fooocus_scheme": "fooocus"})
    assert m.source == "Fooocus" and m.prompt == "a cat wearing a wizard hat"
    assert (m.seed, m.steps, m.cfg_scale, m.width, m.height) == (8204470926, 30, 4.0, 1152, 896)
    assert m.scheduler is None and m.model_name == "juggernautXL_v8Rundiffusion"
    assert m.loras[0].name == "sd_xl_offset_example-lora_1.0" and m.loras[0].weight == 0.1


def test_no_metadata_and_bad_files(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (32, 16)).save(plain)
    m = read_image_metadata(plain)
    assert not m.found and m.image_size == (32, 16) and m.file_format == "PNG"
    jpg = tmp_path / "plain.jpg"
    Image.new("RGB", (8, 8)).save(jpg)
    assert not read_image_metadata(jpg).found
    with pytest.raises(UnreadableImage, match="not found"):
        read_image_metadata(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image at all")
    with pytest.raises(UnreadableImage, match="not an image"):
        read_image_metadata(junk)
    with pytest.raises(UnreadableImage, match="folder"):
        read_image_metadata(tmp_path)


def test_truncated_png_keeps_the_text_before_the_cut(tmp_path):
    path = fx.png_with(tmp_path / "t.png", {"parameters": fx.A1111_2022}, size=(256, 256))
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: data.index(b"IDAT") + 20])
    m = read_image_metadata(cut)
    assert m.seed == 965400086


def test_text_after_image_data_and_compressed_chunks(tmp_path):
    """Chunks after IDAT (some tools write them there), zTXt and compressed iTXt are all read."""
    import struct

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    base = fx.image_bytes("PNG")
    iend = base.rindex(b"IEND") - 4
    ztxt = chunk(b"zTXt", b"parameters\0\0" + zlib.compress(fx.A1111_2022.encode("latin-1")))
    itxt = chunk(b"iTXt", b"workflow\0\1\0\0\0" + zlib.compress("ünïcode ✓".encode()))
    path = tmp_path / "late.png"
    path.write_bytes(base[:iend] + ztxt + itxt + base[iend:])
    chunks, size, fmt = read_text_chunks(path)
    assert chunks["parameters"] == fx.A1111_2022 and chunks["workflow"] == "ünïcode ✓"
    assert size == (8, 8) and fmt == "PNG"
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(base[:iend] + chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"A" * (40 << 20))) + base[iend:])
    assert "parameters" not in read_text_chunks(bomb)[0]  # refused past 32 MB, no crash
