"""A1111 parameters and ComfyUI / Civitai JSON in EXIF: PNG (eXIf), JPEG (APP1) and WebP (EXIF chunk);
UserComment in both UTF-16 byte orders and with the ASCII prefix; UTF-8 in PNG tEXt."""

from __future__ import annotations

import json

import pytest

from aigc_desktop.core.metadata import decode_user_comment, read_image_metadata
from tests import metadata_fixtures as fx
from tests.metadata import images as im

SETTINGS = fx.A1111_2022.split("\n", 1)[1]
PROMPT = "a cat 🐱 in 東京, café"
FORMATS = ("PNG", "JPEG", "WEBP")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("order", ["utf-16-be", "utf-16-le"])
def test_a1111_user_comment_unicode_both_byte_orders(tmp_path, fmt, order):
    path = im.image_with_exif(tmp_path / f"a.{fmt.lower()}", fmt, comment=im.user_comment(f"{PROMPT}\n{SETTINGS}",
                                                                                          order=order))
    m = read_image_metadata(path)
    assert (m.source, m.file_format, m.image_size) == ("A1111", fmt, (16, 16))
    assert m.prompt == PROMPT and m.negative_prompt.startswith("ugly, fat")
    assert (m.seed, m.steps, m.scheduler, m.model_hash) == (965400086, 20, "euler_a", "45dee52b")
    assert m.field_sources["seed"] == f"{'WebP' if fmt == 'WEBP' else fmt} EXIF UserComment"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a1111_user_comment_ascii_and_bare(tmp_path, fmt):
    for charset in ("ASCII", "none"):
        path = im.image_with_exif(tmp_path / f"{charset}.{fmt.lower()}", fmt,
                                  comment=im.user_comment(f"a plain prompt\n{SETTINGS}", charset))
        m = read_image_metadata(path)
        assert m.prompt == "a plain prompt" and m.seed == 965400086


def test_user_comment_decoding():
    # No zero bytes at all (no ASCII): big-endian, the EXIF default, when that decodes.
    assert decode_user_comment(b"UNICODE\0" + "東京".encode("utf-16-be")) == "東京"
    assert decode_user_comment(b"UNICODE\0" + "{\"a\": 1}".encode("utf-16-le")) == '{"a": 1}'
    assert decode_user_comment(b"UNICODE\0\xff\xfe" + "bom".encode("utf-16-le")) == "bom"
    assert decode_user_comment(b"UNICODE\0" + b"\0a\0b\0") == "ab"  # odd length: the last byte is dropped
    assert decode_user_comment(b"ASCII\0\0\0Steps: 20\0\0") == "Steps: 20"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_comfyui_json_in_the_main_ifd(tmp_path, fmt):
    """ComfyUI's WebP / JPEG saves: "prompt:{json}" in Model, "workflow:{json}" in Make."""
    main = {im.TAG_MODEL: "prompt:" + json.dumps(fx.COMFY_DEFAULT_PROMPT),
            im.TAG_MAKE: "workflow:" + json.dumps(fx.comfy_default_workflow())}
    m = read_image_metadata(im.image_with_exif(tmp_path / f"c.{fmt.lower()}", fmt, main=main))
    assert m.source == "ComfyUI" and m.seed == 156680208700286 and (m.width, m.height) == (512, 512)
    assert m.prompt.startswith("beautiful scenery") and m.negative_prompt == "text, watermark"
    assert m.field_sources["seed"].endswith("EXIF Model, node 3 (KSampler)")


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("where", ["description", "user_comment"])
def test_comfyui_prompt_and_workflow_object(tmp_path, fmt, where):
    """{"prompt": ..., "workflow": ...} as one JSON object, in ImageDescription or the Exif sub-IFD."""
    text = json.dumps({"prompt": fx.COMFY_DEFAULT_PROMPT, "workflow": fx.comfy_default_workflow()})
    kwargs = ({"main": {im.TAG_DESCRIPTION: text}} if where == "description"
              else {"comment": im.user_comment(text, order="utf-16-le")})
    m = read_image_metadata(im.image_with_exif(tmp_path / f"o.{fmt.lower()}", fmt, **kwargs))
    assert m.source == "ComfyUI" and m.seed == 156680208700286 and m.steps == 20 and m.scheduler == "euler"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("order", ["utf-16-be", "utf-16-le"])
def test_civitai_generator_json(tmp_path, fmt, order):
    path = im.image_with_exif(tmp_path / f"civ.{fmt.lower()}", fmt,
                              comment=im.user_comment(json.dumps(im.civitai_generator()), order=order))
    m = read_image_metadata(path)
    assert m.source == "Civitai"  # not A1111 text, not a bare ComfyUI graph
    assert m.prompt == im.CIVITAI_EXTRA["prompt"] and m.negative_prompt == "lowres, watermark"  # as typed
    assert (m.seed, m.steps, m.cfg_scale, m.clip_skip) == (1122334455, 30, 3.5, 2)
    assert (m.scheduler, m.width, m.height) == ("dpmpp_2m_karras", 832, 1216)
    assert m.field_sources["prompt"] == "Civitai extraMetadata"
    assert m.field_sources["width"].endswith("node 5 (EmptyLatentImage)")
    assert any("128078" in n for n in m.not_restored)


def test_civitai_json_in_a_png_prompt_chunk(tmp_path):
    m = read_image_metadata(fx.png_with(tmp_path / "c.png", {"prompt": json.dumps(im.civitai_generator())}))
    assert m.source == "Civitai" and m.seed == 1122334455


def test_png_text_chunk_beats_its_exif_copy(tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", f"from the chunk\n{SETTINGS}")
    path = tmp_path / "both.png"
    Image.new("RGB", (8, 8)).save(path, "PNG", pnginfo=info,
                                  exif=im.exif_bytes(comment=im.user_comment(f"from exif\n{SETTINGS}")))
    m = read_image_metadata(path)
    assert m.prompt == "from the chunk" and m.field_sources["prompt"] == "PNG tEXt chunk 'parameters'"


def test_utf8_in_a_text_chunk_is_read_as_utf8(tmp_path):
    """tEXt is Latin-1 by the PNG spec, but tools write UTF-8 there: valid UTF-8 is never shown as mojibake,
    real Latin-1 stays Latin-1."""
    utf8 = im.chunk(b"tEXt", b"parameters\0" + f"{PROMPT}\n{SETTINGS}".encode("utf-8"))
    m = read_image_metadata(im.png_with_chunks(tmp_path / "u.png", utf8))
    assert m.prompt == PROMPT and "Ã" not in m.prompt
    latin = im.chunk(b"tEXt", b"parameters\0" + f"caf\xe9 au lait\n{SETTINGS}".encode("latin-1"))
    assert read_image_metadata(im.png_with_chunks(tmp_path / "l.png", latin)).prompt == "caf\xe9 au lait"
    import zlib

    ztxt = im.chunk(b"zTXt", b"parameters\0\0" + zlib.compress(f"{PROMPT}\n{SETTINGS}".encode("utf-8")))
    assert read_image_metadata(im.png_with_chunks(tmp_path / "z.png", ztxt)).prompt == PROMPT


def test_civitai_a1111_text_with_resources(tmp_path):
    text = (fx.A1111_2022 + ', Civitai resources: [{"type":"checkpoint","modelVersionId":290640},'
            '{"type":"lora","weight":0.8,"modelVersionId":12345}], Civitai metadata: {}')
    m = read_image_metadata(fx.png_with(tmp_path / "c.png", {"parameters": text}))
    assert m.source == "Civitai (A1111 text)" and m.seed == 965400086 and m.model_hash == "45dee52b"
    assert json.loads(m.extra["Civitai resources"])[1]["modelVersionId"] == 12345


def test_imagemagick_raw_exif_profile_in_png(tmp_path):
    """ImageMagick keeps EXIF in a PNG as hex text ("Raw profile type exif"), which Pillow also reads."""
    import zlib

    raw = im.exif_bytes(comment=im.user_comment(f"magick\n{SETTINGS}"))
    hexed = raw.hex()
    text = f"\nexif\n{len(raw):8d}\n" + "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72)) + "\n"
    ztxt = im.chunk(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(text.encode()))
    m = read_image_metadata(im.png_with_chunks(tmp_path / "magick.png", ztxt))
    assert m.prompt == "magick" and m.field_sources["prompt"] == "PNG EXIF UserComment"
