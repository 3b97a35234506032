"""Hand-written metadata in the exact shapes other tools write (for the metadata tests).

ComfyUI: `prompt` = API graph, `workflow` = editor graph (LiteGraph serialisation, format 0.4).
InvokeAI: `invokeai_metadata` (Core Metadata node, 3.x and 4.x/5.x model identifiers), 2.x `sd-metadata`, `Dream`.
A1111: `parameters` infotext (1.10 with hires fix / ADetailer / LoRA, 2022 style, img2img), EXIF UserComment.
"""

from __future__ import annotations

import io
import json

from PIL import Image
from PIL.PngImagePlugin import PngInfo


def png_with(path, chunks: dict[str, str], size=(64, 64)):
    """A PNG carrying `chunks` as text chunks, written the way those tools write them (Pillow add_text)."""
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", size, (40, 80, 120)).save(path, "PNG", pnginfo=info)
    return path


def exif_image(path, fmt: str, text: str, byte_order: str = "utf-16-be"):
    """A JPEG/WebP with A1111's EXIF UserComment (piexif's "UNICODE" charset)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + text.encode(byte_order)
    Image.new("RGB", (64, 64)).save(path, fmt, exif=exif.tobytes())
    return path


def image_bytes(fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, fmt)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ A1111

A1111_HIRES = (
    "masterpiece, best quality, 1girl, solo, looking at viewer, <lora:add_detail:0.7>, cherry blossoms\n"
    "Negative prompt: (worst quality, low quality:1.4), easynegative, extra fingers\n"
    "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 2357413081, Size: 512x768, "
    "Model hash: 7f96a1a9ca, Model: anything-v5-PrtRE, VAE hash: 235745af8d, "
    "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, Clip skip: 2, "
    "ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, ADetailer dilate erode: 4, "
    "ADetailer version: 24.1.2, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, "
    'Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: c74b4e810b03", '
    "Emphasis: Original, Version: v1.10.1"
)

A1111_2022 = (
    "girl with an artist's beret, determined, blue eyes, desert scene, by Alphonse Mucha, ((eyeshadow))\n"
    "Negative prompt: ugly, fat, (((deformed))), [blurry], bad anatomy\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
)

A1111_IMG2IMG = (
    "portrait photo of an old sailor, detailed skin\n"
    "Steps: 30, Sampler: DPM++ SDE Karras, CFG scale: 6.5, Seed: 1, Size: 768x512, Model hash: e6bb9ea85b, "
    "Model: realisticVision_v51, Denoising strength: 0.6, Mask blur: 4, Variation seed: 42, "
    "Variation seed strength: 0.2, ENSD: 31337, RNG: NV, Version: v1.6.0"
)

A1111_CIVITAI = (
    "a castle on a hill\n"
    "Steps: 20, Sampler: DPM++ 2M SDE, Schedule type: Exponential, CFG scale: 5, Seed: 77, Size: 832x1216, "
    'Model: ponyDiffusionV6XL, Hashes: {"model": "67ab2fd8ec", "lora:zoom": "11aa22bb33cc"}, Version: f2.0.1'
)

# ------------------------------------------------------------------------------------------ ComfyUI

COMFY_DEFAULT_PROMPT = {
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                     "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "Save Image"}},
}


def _node(id_, type_, inputs, outputs, widgets, order, mode=0, **extra):
    return {"id": id_, "type": type_, "pos": [100 * order, 80 * order], "size": [315, 262], "flags": {},
            "order": order, "mode": mode, "inputs": inputs, "outputs": outputs,
            "properties": {"Node name for S&R": type_}, "widgets_values": widgets, **extra}


def comfy_default_workflow(seed_from_primitive=False, with_reroute=False, links_as_objects=False,
                           muted_sampler=False, bypassed_lora=False):
    """ComfyUI's default graph as the editor saves it, with optional editor-only nodes."""
    links = [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 7, 0, "CLIP"],
             [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 6, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
             [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"]]
    ksampler_inputs = [{"name": "model", "type": "MODEL", "link": 1},
                       {"name": "positive", "type": "CONDITIONING", "link": 4},
                       {"name": "negative", "type": "CONDITIONING", "link": 6},
                       {"name": "latent_image", "type": "LATENT", "link": 2}]
    nodes = [
        _node(7, "CLIPTextEncode", [{"name": "clip", "type": "CLIP", "link": 3}],
              [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [6], "slot_index": 0}], ["text, watermark"], 3),
        _node(6, "CLIPTextEncode", [{"name": "clip", "type": "CLIP", "link": 5}],
              [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [4], "slot_index": 0}],
              ["beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"], 2),
        _node(5, "EmptyLatentImage", [], [{"name": "LATENT", "type": "LATENT", "links": [2], "slot_index": 0}],
              [512, 512, 1], 1),
        _node(3, "KSampler", ksampler_inputs, [{"name": "LATENT", "type": "LATENT", "links": [7], "slot_index": 0}],
              [156680208700286, "randomize", 20, 8, "euler", "normal", 1], 4),
        _node(8, "VAEDecode", [{"name": "samples", "type": "LATENT", "link": 7}, {"name": "vae", "type": "VAE", "link": 8}],
              [{"name": "IMAGE", "type": "IMAGE", "links": [9], "slot_index": 0}], [], 5),
        _node(9, "SaveImage", [{"name": "images", "type": "IMAGE", "link": 9}], [], ["ComfyUI"], 6),
        _node(4, "CheckpointLoaderSimple", [],
              [{"name": "MODEL", "type": "MODEL", "links": [1], "slot_index": 0},
               {"name": "CLIP", "type": "CLIP", "links": [3, 5], "slot_index": 1},
               {"name": "VAE", "type": "VAE", "links": [8], "slot_index": 2}],
              ["v1-5-pruned-emaonly.safetensors"], 0),
    ]
    sampler = next(n for n in nodes if n["id"] == 3)
    last_node, last_link = 9, 9
    if seed_from_primitive:
        # The seed widget converted to an input, fed by a Primitive node (editor-only; the widget keeps a copy).
        sampler["inputs"].append({"name": "seed", "type": "INT", "link": 10, "widget": {"name": "seed"}})
        sampler["widgets_values"][0] = 1
        nodes.append(_node(10, "PrimitiveNode", [], [{"name": "INT", "type": "INT", "links": [10],
                                                      "widget": {"name": "seed"}}], [4242, "fixed"], 7,
                           title="seed"))
        links.append([10, 10, 0, 3, 4, "INT"])
        last_node, last_link = 10, 10
    if with_reroute:
        # positive conditioning goes 6 -> Reroute 11 -> KSampler
        links[3] = [4, 6, 0, 11, 0, "*"]
        links.append([11, 11, 0, 3, 1, "CONDITIONING"])
        sampler["inputs"][1]["link"] = 11
        nodes.append(_node(11, "Reroute", [{"name": "", "type": "*", "link": 4}],
                           [{"name": "", "type": "CONDITIONING", "links": [11], "slot_index": 0}], [], 8,
                           properties={"showOutputText": False, "horizontal": False}))
        last_node, last_link = 11, 11
    if muted_sampler:
        nodes.append(_node(12, "KSampler", [dict(i) for i in ksampler_inputs[:0]], [], [1, "fixed", 99, 1, "ddim",
                                                                                     "normal", 1], 9, mode=2))
        last_node = 12
    if bypassed_lora:
        # MODEL goes 4 -> LoraLoader 13 (bypassed) -> KSampler: the LoRA is not applied.
        links[0] = [1, 13, 0, 3, 0, "MODEL"]
        links.append([12, 4, 0, 13, 0, "MODEL"])
        links.append([13, 4, 1, 13, 1, "CLIP"])
        nodes.append(_node(13, "LoraLoader", [{"name": "model", "type": "MODEL", "link": 12},
                                               {"name": "clip", "type": "CLIP", "link": 13}],
                           [{"name": "MODEL", "type": "MODEL", "links": [1]}, {"name": "CLIP", "type": "CLIP", "links": []}],
                           ["unused_style.safetensors", 1, 1], 10, mode=4))
        last_node, last_link = 13, 13
    if links_as_objects:
        links = [{"id": l[0], "origin_id": l[1], "origin_slot": l[2], "target_id": l[3], "target_slot": l[4],
                  "type": l[5]} for l in links]
    return {"last_node_id": last_node, "last_link_id": last_link, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}


COMFY_SDXL_REFINER = {
    "4": {"inputs": {"ckpt_name": "SDXL\\sd_xl_base_1.0.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "12": {"inputs": {"ckpt_name": "SDXL\\sd_xl_refiner_1.0.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "30": {"inputs": {"lora_name": "xl\\add-detail-xl.safetensors", "strength_model": 0.8, "strength_clip": 0.8,
                      "model": ["31", 0], "clip": ["31", 1]}, "class_type": "LoraLoader"},
    "31": {"inputs": {"lora_name": "offset_example.safetensors", "strength_model": 0.5, "strength_clip": 1,
                      "model": ["4", 0], "clip": ["32", 0]}, "class_type": "LoraLoader"},
    "32": {"inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}, "class_type": "CLIPSetLastLayer"},
    "5": {"inputs": {"width": 1024, "height": 1024, "batch_size": 2}, "class_type": "EmptyLatentImage"},
    "6": {"inputs": {"width": 4096, "height": 4096, "crop_w": 0, "crop_h": 0, "target_width": 4096,
                     "target_height": 4096, "text_g": "a majestic lion, golden hour", "text_l": "a majestic lion, golden hour",
                     "clip": ["30", 1]}, "class_type": "CLIPTextEncodeSDXL"},
    "7": {"inputs": {"width": 4096, "height": 4096, "crop_w": 0, "crop_h": 0, "target_width": 4096,
                     "target_height": 4096, "text_g": "cartoon, blurry", "text_l": "cartoon, blurry",
                     "clip": ["30", 1]}, "class_type": "CLIPTextEncodeSDXL"},
    "10": {"inputs": {"add_noise": "enable", "noise_seed": 721897303308196, "steps": 25, "cfg": 8,
                      "sampler_name": "dpmpp_2m", "scheduler": "karras", "start_at_step": 0, "end_at_step": 20,
                      "return_with_leftover_noise": "enable", "model": ["30", 0], "positive": ["6", 0],
                      "negative": ["7", 0], "latent_image": ["5", 0]}, "class_type": "KSamplerAdvanced"},
    "11": {"inputs": {"add_noise": "disable", "noise_seed": 0, "steps": 25, "cfg": 8, "sampler_name": "euler",
                      "scheduler": "normal", "start_at_step": 20, "end_at_step": 10000,
                      "return_with_leftover_noise": "disable", "model": ["12", 0], "positive": ["15", 0],
                      "negative": ["16", 0], "latent_image": ["10", 0]}, "class_type": "KSamplerAdvanced"},
    "15": {"inputs": {"ascore": 6, "width": 2048, "height": 2048, "text": "a majestic lion, golden hour",
                      "clip": ["12", 1]}, "class_type": "CLIPTextEncodeSDXLRefiner"},
    "16": {"inputs": {"ascore": 6, "width": 2048, "height": 2048, "text": "cartoon, blurry", "clip": ["12", 1]},
           "class_type": "CLIPTextEncodeSDXLRefiner"},
    "17": {"inputs": {"samples": ["11", 0], "vae": ["12", 2]}, "class_type": "VAEDecode"},
    "19": {"inputs": {"filename_prefix": "sdxl", "images": ["17", 0]}, "class_type": "SaveImage"},
}

COMFY_HIRES = {
    "3": {"inputs": {"seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_sde", "scheduler": "karras",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]}, "class_type": "KSampler"},
    "4": {"inputs": {"ckpt_name": "dreamshaper_8.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "5": {"inputs": {"width": 768, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage"},
    "6": {"inputs": {"text": ["20", 0], "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": "", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "20": {"inputs": {"value": "a cozy cabin in a snowy forest, night"}, "class_type": "PrimitiveString"},
    "10": {"inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5, "samples": ["3", 0]},
           "class_type": "LatentUpscaleBy"},
    "11": {"inputs": {"seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "dpmpp_sde", "scheduler": "karras",
                      "denoise": 0.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                      "latent_image": ["10", 0]}, "class_type": "KSampler"},
    "12": {"inputs": {"samples": ["11", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "13": {"inputs": {"filename_prefix": "hires", "images": ["12", 0]}, "class_type": "SaveImage"},
}

COMFY_CUSTOM_ADVANCED = {
    "6": {"inputs": {"text": "a neon sign that says hello", "clip": ["11", 0]}, "class_type": "CLIPTextEncode"},
    "8": {"inputs": {"samples": ["13", 0], "vae": ["10", 0]}, "class_type": "VAEDecode"},
    "10": {"inputs": {"vae_name": "ae.safetensors"}, "class_type": "VAELoader"},
    "11": {"inputs": {"clip_name1": "t5xxl_fp16.safetensors", "clip_name2": "clip_l.safetensors", "type": "flux"},
           "class_type": "DualCLIPLoader"},
    "12": {"inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}, "class_type": "UNETLoader"},
    "13": {"inputs": {"noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0], "sigmas": ["17", 0],
                      "latent_image": ["27", 0]}, "class_type": "SamplerCustomAdvanced"},
    "16": {"inputs": {"sampler_name": "euler"}, "class_type": "KSamplerSelect"},
    "17": {"inputs": {"scheduler": "simple", "steps": 20, "denoise": 1, "model": ["12", 0]},
           "class_type": "BasicScheduler"},
    "22": {"inputs": {"model": ["12", 0], "conditioning": ["26", 0]}, "class_type": "BasicGuider"},
    "25": {"inputs": {"noise_seed": 219670278747233}, "class_type": "RandomNoise"},
    "26": {"inputs": {"guidance": 3.5, "conditioning": ["6", 0]}, "class_type": "FluxGuidance"},
    "27": {"inputs": {"width": 1024, "height": 1024, "batch_size": 1}, "class_type": "EmptySD3LatentImage"},
    "9": {"inputs": {"filename_prefix": "flux", "images": ["8", 0]}, "class_type": "SaveImage"},
}

COMFY_IMG2IMG = {
    "3": {"inputs": {"seed": 280823642470253, "steps": 20, "cfg": 8, "sampler_name": "dpmpp_2m",
                     "scheduler": "normal", "denoise": 0.87, "model": ["14", 0], "positive": ["6", 0],
                     "negative": ["7", 0], "latent_image": ["12", 0]}, "class_type": "KSampler"},
    "6": {"inputs": {"text": "photograph of victorian woman with wings, sky clouds", "clip": ["14", 1]},
          "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": "watermark, text", "clip": ["14", 1]}, "class_type": "CLIPTextEncode"},
    "10": {"inputs": {"image": "example.png", "upload": "image"}, "class_type": "LoadImage"},
    "12": {"inputs": {"pixels": ["10", 0], "vae": ["14", 2]}, "class_type": "VAEEncode"},
    "14": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["14", 2]}, "class_type": "VAEDecode"},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"},
}

COMFY_CONTROLNET = {
    "3": {"inputs": {"seed": 7, "steps": 30, "cfg": 5.5, "sampler_name": "uni_pc_bh2", "scheduler": "normal",
                     "denoise": 1, "model": ["40", 0], "positive": ["20", 0], "negative": ["20", 1],
                     "latent_image": ["5", 0]}, "class_type": "KSampler"},
    "4": {"inputs": {"ckpt_name": "epicrealism.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "40": {"inputs": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2, "model": ["4", 0]}, "class_type": "FreeU_V2"},
    "5": {"inputs": {"width": 512, "height": 640, "batch_size": 1}, "class_type": "EmptyLatentImage"},
    "6": {"inputs": {"text": "a dancer, studio light", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": "lowres", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "20": {"inputs": {"strength": 0.8, "start_percent": 0, "end_percent": 1, "positive": ["6", 0],
                      "negative": ["7", 0], "control_net": ["21", 0], "image": ["22", 0]},
           "class_type": "ControlNetApplyAdvanced"},
    "21": {"inputs": {"control_net_name": "control_openpose.safetensors"}, "class_type": "ControlNetLoader"},
    "22": {"inputs": {"image": "pose.png", "upload": "image"}, "class_type": "LoadImage"},
}

# ------------------------------------------------------------------------------------------ InvokeAI

INVOKE_4 = {
    "generation_mode": "sdxl_txt2img", "positive_prompt": "a lighthouse on a cliff, dramatic sky",
    "negative_prompt": "blurry, lowres", "width": 1024, "height": 1024, "seed": 3953240000, "rand_device": "cpu",
    "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30, "scheduler": "dpmpp_2m_k",
    "model": {"key": "3c1fe7de-5c1b-4c1f-8c7c-2b1e2d3f4a5b", "hash": "blake3:8a1f5c9e2b7d4c3a",
              "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
    "loras": [{"model": {"key": "9d3e1a44-0b1c-4c1f-9e2f-1a2b3c4d5e6f", "hash": "blake3:1f2e3d4c",
                         "name": "add-detail-xl", "base": "sdxl", "type": "lora"}, "weight": 0.75}],
    "positive_style_prompt": "a lighthouse on a cliff, dramatic sky", "negative_style_prompt": "blurry, lowres",
    "app_version": "4.2.4",
}

INVOKE_3 = {
    "generation_mode": "img2img", "positive_prompt": "an oil painting of a harbor (boats)1.2",
    "negative_prompt": "", "width": 768, "height": 512, "seed": 1234, "rand_device": "cpu", "cfg_scale": 6,
    "steps": 40, "scheduler": "euler_a", "clip_skip": 1, "strength": 0.55, "hrf_enabled": True,
    "hrf_method": "ESRGAN", "hrf_strength": 0.45, "init_image": "3f2b1c7a.png",
    "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"},
    "loras": [{"lora": {"model_name": "ghibli_style", "base_model": "sd-1"}, "weight": 0.5}],
    "vae": {"model_name": "sd-vae-ft-mse", "base_model": "sd-1"},
    "controlnets": [{"control_model": {"model_name": "canny"}, "control_weight": 1}], "app_version": "3.4.0",
}

INVOKE_SD_METADATA = {
    "model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103",
    "app_id": "invoke-ai/InvokeAI", "app_version": "2.2.5",
    "image": {"prompt": [{"prompt": "a fantasy landscape, trending on artstation [blurry, lowres]", "weight": 1}],
              "steps": 50, "cfg_scale": 7.5, "threshold": 0, "perlin": 0, "height": 512, "width": 512,
              "seed": 3357757885, "seamless": False, "hires_fix": False, "type": "txt2img", "postprocessing": None,
              "sampler": "k_lms", "variations": []},
}

INVOKE_DREAM = '"a bowl of fruit, still life [dark]" -s 50 -S 2431637946 -W 512 -H 512 -C 7.5 -A k_euler_a'

# ------------------------------------------------------------------------------------------ NovelAI, Fooocus

NOVELAI = {
    "Title": "AI generated image",
    "Description": "1girl, {{best quality}}, silver hair, night city",
    "Software": "NovelAI",
    "Source": "NovelAI Diffusion V3 4BDE2A90",
    "Generation time": "3.4",
    "Comment": json.dumps({
        "prompt": "1girl, {{best quality}}, silver hair, night city", "steps": 28, "height": 1216, "width": 832,
        "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 1234567890, "n_samples": 1,
        "hide_debug_overlay": False, "noise_schedule": "native", "legacy_v3_extend": False,
        "sampler": "k_euler_ancestral", "sm": True, "sm_dyn": False, "uc": "lowres, bad anatomy",
        "request_type": "PromptGenerateRequest", "signed_hash": "Zm9vYmFy"}),
}

FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": "aeb7e9e689",
    "clip_skip": 2, "full_negative_prompt": ["(worst quality, low quality)"],
    "full_prompt": ["a cat wearing a wizard hat, intricate"], "guidance_scale": 4, "loras": [
        ["sd_xl_offset_example-lora_1.0.safetensors", 0.1, "4852686128"]], "metadata_scheme": "fooocus",
    "negative_prompt": "", "performance": "Speed", "prompt": "a cat wearing a wizard hat", "refiner_model": "None",
    "refiner_switch": 0.5, "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
    "seed": "8204470926", "sharpness": 2, "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance']",
    "vae": "Default (model)", "version": "Fooocus v2.5.0",
}
