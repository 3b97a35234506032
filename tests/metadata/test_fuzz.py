"""Fuzzing the metadata readers (hypothesis): whatever the bytes, text or graph, a reader gives metadata,
"no metadata", or one clear line (UnreadableImage) - never another exception, never a hang."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.metadata import ImageMetadata, metadata_from_chunks, parse_parameters, read_image_metadata
from aigc_desktop.core.metadata.comfyui import metadata_from_graph, workflow_to_api
from aigc_desktop.core.metadata.containers import decode_user_comment, parse_exif
from tests import metadata_fixtures as fx
from tests.metadata import images as im

# AIGC_FUZZ_EXAMPLES=3000 runs each much longer (a few minutes; passed when these tests were written).
FUZZ = settings(max_examples=int(os.environ.get("AIGC_FUZZ_EXAMPLES", 80)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    """Valid files of every container, holding metadata of several tools, for the mutations to break."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        files = [
            fx.png_with(t / "a.png", {"parameters": fx.A1111_HIRES, "prompt": json.dumps(fx.COMFY_SDXL_REFINER)}),
            im.image_with_exif(t / "b.jpg", "JPEG", comment=im.user_comment(fx.A1111_2022, order="utf-16-le")),
            im.image_with_exif(t / "c.webp", "WEBP", main={im.TAG_MODEL: "prompt:" + json.dumps(fx.COMFY_HIRES)}),
            im.image_with_exif(t / "d.png", "PNG", comment=im.user_comment(json.dumps(im.civitai_generator()))),
            im.stealth_png(t / "e.png", fx.A1111_2022, "alpha", True, size=(64, 48)),
        ]
        return [f.read_bytes() for f in files]


SEEDS = _seeds()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _check(meta: ImageMetadata) -> None:
    assert isinstance(meta, ImageMetadata)
    json.dumps(meta.to_dict(), default=str)  # what `info --json` prints
    for line in meta.unreadable + meta.not_restored:
        assert "\n" not in line


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, at, chunk in edits:
        at %= max(1, len(out))
        if kind == 0:
            out[at:at + len(chunk)] = chunk  # overwrite (lengths, tags, offsets)
        elif kind == 1:
            out[at:at] = chunk  # insert
        elif kind == 2:
            del out[at:]  # truncate
        else:
            del out[at:at + len(chunk)]  # cut a piece
    return bytes(out)


_EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20),
                            st.one_of(st.binary(min_size=1, max_size=8),
                                      st.sampled_from([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xf0",
                                                       b"IEND", b"tEXt", b"zTXt", b"eXIf", b"EXIF", b"\xff\xe1",
                                                       b"\xff\xd9", b"VP8X", b"MM\0*", b"II*\0", b'{"', b"["]))),
                  min_size=1, max_size=6)


@settings(FUZZ, max_examples=int(os.environ.get("AIGC_FUZZ_EXAMPLES", 200)))
@given(seed=st.sampled_from(range(len(SEEDS))), edits=_EDITS)
def test_broken_files(work, seed, edits):
    path = work / "fuzz.img"
    path.write_bytes(_mutate(SEEDS[seed], edits))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no library warning reaches the user either
            meta = read_image_metadata(path)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    _check(meta)


_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
              st.sampled_from(["3", "6", "KSampler", "seed", "[", "Steps: 1"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=25)
_KEYS = ["parameters", "prompt", "workflow", "aigc_desktop", "invokeai_metadata", "sd-metadata", "Dream", "Comment",
         "Description", "Software", "civitai", "Source"]


@FUZZ
@given(st.dictionaries(st.sampled_from(_KEYS), st.one_of(st.text(max_size=200), _JSONISH.map(json.dumps)),
                       max_size=5))
def test_any_chunks(chunks):
    _check(metadata_from_chunks(chunks))


_A1111_ALPHABET = st.sampled_from(list(' ,:"{}\\\n\tabcxSNeg0123456789.-<>()[]|') +
                                  ["Steps", "Seed", "Size", "Sampler", "Negative prompt:", "Hashes", "lora", "BREAK",
                                   "Model hash", "Schedule type", "Karras", "CFG scale", "Hires", "Denoising strength"])


@FUZZ
@given(st.lists(_A1111_ALPHABET, max_size=120).map("".join))
def test_any_a1111_text(text):
    meta = parse_parameters(text)
    if meta is not None:
        _check(meta)


_CLASSES = ["KSampler", "KSamplerAdvanced", "SamplerCustomAdvanced", "CFGGuider", "BasicGuider", "RandomNoise",
            "KSamplerSelect", "BasicScheduler", "KarrasScheduler", "EmptyLatentImage", "CLIPTextEncode",
            "CLIPTextEncodeSDXL", "CheckpointLoaderSimple", "LoraLoader", "Reroute", "PrimitiveNode", "SimpleMath+",
            "CounterNode", "SaveImage", "PreviewImage", "VAEDecode", "VAEEncode", "LatentUpscaleBy",
            "ConditioningCombine", "SplitSigmas", "FluxGuidance", "Weird Custom Node"]
_INPUTS = ["seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "model", "positive",
           "negative", "latent_image", "samples", "images", "text", "text_g", "width", "height", "batch_size",
           "ckpt_name", "lora_name", "strength_model", "noise", "guider", "sampler", "sigmas", "conditioning",
           "conditioning_1", "value", "input", "clip", "stop_at_clip_layer", "pixels", "guidance"]
_IDS = st.sampled_from([str(i) for i in range(8)] + ["x", "²"])
_VALUE = st.one_of(st.tuples(_IDS, st.integers(0, 3)).map(list), st.integers(-5, 2 ** 64), st.floats(-10, 1e20),
                   st.text(max_size=10), st.none(), st.sampled_from(["euler", "karras", "dpmpp_2m", "normal"]),
                   st.lists(st.integers(), max_size=3))
_NODE = st.fixed_dictionaries({"class_type": st.sampled_from(_CLASSES),
                               "inputs": st.dictionaries(st.sampled_from(_INPUTS), _VALUE, max_size=8)})


@FUZZ
@given(st.dictionaries(_IDS, _NODE, max_size=8))
def test_any_comfy_graph(graph):
    _check(metadata_from_graph(graph))
    editor = {"nodes": [{"id": k, "type": v["class_type"], "widgets_values": list(v["inputs"].values()),
                         "inputs": [{"name": n, "link": i} for i, n in enumerate(v["inputs"])]}
                        for k, v in graph.items()],
              "links": [[i, k, 0, k, 0, "*"] for i, k in enumerate(graph)]}
    _check(metadata_from_graph(workflow_to_api(editor)))


@FUZZ
@given(st.binary(max_size=300))
def test_any_exif_and_user_comment(data):
    parse_exif(data)
    parse_exif(b"MM\0*\0\0\0\x08" + data)
    parse_exif(b"II*\0\x08\0\0\0" + data)
    assert isinstance(decode_user_comment(b"UNICODE\0" + data), str)
    assert isinstance(decode_user_comment(data), str)
