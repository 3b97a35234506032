"""Small images written the way other tools write them, for the metadata tests (no files are shipped)."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import numpy as np
from PIL import Image

TAG_DESCRIPTION, TAG_MAKE, TAG_MODEL, TAG_USER_COMMENT, EXIF_IFD = 0x010E, 0x010F, 0x0110, 0x9286, 0x8769


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(size=(8, 8), mode="RGB") -> bytes:
    import io

    buf = io.BytesIO()
    Image.new(mode, size, (10, 20, 30) if mode == "RGB" else (10, 20, 30, 255)).save(buf, "PNG")
    return buf.getvalue()


def png_with_chunks(path, *chunks: bytes, size=(8, 8)):
    """A PNG with raw chunks inserted before IEND (hand-made: tEXt holding UTF-8, huge or broken chunks)."""
    base = png_bytes(size)
    iend = base.rindex(b"IEND") - 4
    path.write_bytes(base[:iend] + b"".join(chunks) + base[iend:])
    return path


def user_comment(text: str, charset: str = "UNICODE", order: str = "utf-16-be") -> bytes:
    """EXIF UserComment bytes: an 8-byte charset prefix, then the text."""
    if charset == "UNICODE":
        return b"UNICODE\0" + text.encode(order)
    if charset == "ASCII":
        return b"ASCII\0\0\0" + text.encode("ascii")
    return text.encode("utf-8")  # no prefix at all (some tools)


def exif_bytes(main: dict[int, str | bytes] | None = None, comment: bytes | None = None) -> bytes:
    exif = Image.Exif()
    for tag, value in (main or {}).items():
        exif[tag] = value
    if comment is not None:
        exif.get_ifd(EXIF_IFD)[TAG_USER_COMMENT] = comment
    return exif.tobytes()


def image_with_exif(path, fmt: str, main=None, comment=None, size=(16, 16)):
    """A JPEG / WebP / PNG carrying EXIF as Pillow writes it (APP1, the EXIF chunk, eXIf)."""
    Image.new("RGB", size, (90, 60, 30)).save(path, fmt, exif=exif_bytes(main, comment))
    return path


def stealth_png(path, text: str, mode: str = "alpha", compressed: bool = False, size=(64, 48)):
    """A PNG with text hidden the way the stealth-pnginfo extension writes it: column by column (x outer,
    y inner), one bit per pixel in the alpha's low bit, or three in R, G, B; signature, 32-bit length in
    bits, then the bytes most significant bit first."""
    signature = f"stealth_{'png' if mode == 'alpha' else 'rgb'}{'comp' if compressed else 'info'}".encode()
    payload = gzip.compress(text.encode()) if compressed else text.encode()
    bits = np.unpackbits(np.frombuffer(signature, np.uint8))
    bits = np.concatenate([bits, np.array([int(b) for b in format(len(payload) * 8, "032b")], np.uint8),
                           np.unpackbits(np.frombuffer(payload, np.uint8))])
    rng = np.random.default_rng(3)
    w, h = size
    pixels = rng.integers(0, 256, (h, w, 4 if mode == "alpha" else 3), dtype=np.uint8)
    if mode == "alpha":
        pixels[..., 3] = 255
        plane = pixels[..., 3].T.copy().reshape(-1)  # column-major order
        assert len(bits) <= len(plane), "image too small for the text"
        plane[: len(bits)] = (plane[: len(bits)] & 0xFE) | bits
        pixels[..., 3] = plane.reshape(w, h).T
    else:
        flat = pixels.transpose(1, 0, 2).copy().reshape(-1)
        assert len(bits) <= len(flat), "image too small for the text"
        flat[: len(bits)] = (flat[: len(bits)] & 0xFE) | bits
        pixels = flat.reshape(w, h, 3).transpose(1, 0, 2)
    Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if mode == "alpha" else "RGB").save(path, "PNG")
    return path


# ------------------------------------------------------------------------------------------ graphs


def _default(**changes):
    from tests.metadata_fixtures import COMFY_DEFAULT_PROMPT

    graph = json.loads(json.dumps(COMFY_DEFAULT_PROMPT))
    graph.update(changes)
    return graph


def comfy_stray_sampler() -> dict:
    """ComfyUI's default graph plus a sampler (lower id, other settings) that feeds nothing saved."""
    stray = {"inputs": {"seed": 1, "steps": 99, "cfg": 2, "sampler_name": "ddim", "scheduler": "normal", "denoise": 1,
                        "model": ["4", 0], "positive": ["7", 0], "negative": ["6", 0], "latent_image": ["5", 0]},
             "class_type": "KSampler"}
    return _default(**{"1": stray})


def comfy_math_size() -> dict:
    """The latent's width and height come from math nodes (a*b of a literal and a primitive)."""
    graph = _default()
    graph["5"]["inputs"].update(width=["30", 0], height=["30", 0])
    graph["30"] = {"inputs": {"a": ["31", 0], "b": 2, "value": "a*b"}, "class_type": "SimpleMath+"}
    graph["31"] = {"inputs": {"value": 512}, "class_type": "PrimitiveInt"}
    return graph


def comfy_counter_seed(primitive_steps: bool = True) -> dict:
    """The seed comes from a counter node; steps from a literal primitive (which may be followed)."""
    graph = _default()
    graph["3"]["inputs"]["seed"] = ["40", 0]
    graph["40"] = {"inputs": {"start": 0, "step": 1, "mode": "increment"}, "class_type": "CounterNode"}
    if primitive_steps:
        graph["3"]["inputs"]["steps"] = ["41", 0]
        graph["41"] = {"inputs": {"value": 33}, "class_type": "PrimitiveInt"}
    return graph


COMFY_CUSTOM_ADVANCED_SDXL = {
    "4": {"inputs": {"ckpt_name": "juggernautXL.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "6": {"inputs": {"text": "a red fox in the snow", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": "blurry", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "10": {"inputs": {"noise_seed": 90210}, "class_type": "RandomNoise"},
    "11": {"inputs": {"cfg": 4.5, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0]},
           "class_type": "CFGGuider"},
    "12": {"inputs": {"sampler_name": "dpmpp_2m"}, "class_type": "KSamplerSelect"},
    "13": {"inputs": {"scheduler": "karras", "steps": 28, "denoise": 1, "model": ["4", 0]},
           "class_type": "BasicScheduler"},
    "14": {"inputs": {"width": 832, "height": 1216, "batch_size": 1}, "class_type": "EmptyLatentImage"},
    "15": {"inputs": {"noise": ["10", 0], "guider": ["11", 0], "sampler": ["12", 0], "sigmas": ["13", 0],
                      "latent_image": ["14", 0]}, "class_type": "SamplerCustomAdvanced"},
    "16": {"inputs": {"samples": ["15", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "17": {"inputs": {"filename_prefix": "fox", "images": ["16", 0]}, "class_type": "SaveImage"},
}

CIVITAI_EXTRA = {"prompt": "a lighthouse at dusk, embedding:good_style", "negativePrompt": "lowres, watermark",
                 "cfgScale": 3.5, "sampler": "DPM++ 2M Karras", "workflowId": "txt2img", "steps": 30,
                 "seed": 1122334455, "clipSkip": 2, "quantity": 1,
                 "resources": [{"modelVersionId": 128078, "strength": 1}, {"modelVersionId": 135867, "strength": 0.8}]}


def civitai_generator() -> dict:
    """Civitai's on-site generator JSON: a ComfyUI API graph (models as AIR URNs, prompt text with its
    embeddings spelled out) plus `extra` and `extraMetadata` (a JSON string of what the user set)."""
    return {
        "resource-stack": {"class_type": "CheckpointLoaderSimple",
                           "inputs": {"ckpt_name": "urn:air:sdxl:checkpoint:civitai:101055@128078"}},
        "resource-stack-1": {"class_type": "LoraLoader",
                             "inputs": {"lora_name": "urn:air:sdxl:lora:civitai:122359@135867", "strength_model": 0.8,
                                        "strength_clip": 1, "model": ["resource-stack", 0],
                                        "clip": ["resource-stack", 1]}},
        "6": {"class_type": "smZ CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk, good_style_v2",
                                                              "clip": ["resource-stack-1", 1]}},
        "7": {"class_type": "smZ CLIPTextEncode", "inputs": {"text": "lowres, watermark",
                                                              "clip": ["resource-stack-1", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
        "11": {"class_type": "KSampler", "inputs": {"seed": 1122334455, "steps": 30, "cfg": 3.5,
                                                    "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1,
                                                    "model": ["resource-stack-1", 0], "positive": ["6", 0],
                                                    "negative": ["7", 0], "latent_image": ["5", 0]}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["resource-stack", 2]}},
        "extra": {"airs": ["urn:air:sdxl:checkpoint:civitai:101055@128078",
                           "urn:air:sdxl:lora:civitai:122359@135867"]},
        "extraMetadata": json.dumps(CIVITAI_EXTRA),
    }
