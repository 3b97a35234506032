"""Image metadata: write A1111's `parameters` text plus our full JSON record; read any tool's back.

A record is the plain dict an engine returns for each image (see DiffusionEngine.record). Every PNG the
app saves holds two text chunks (`writer.py`): A1111's infotext, which other tools read, and our record as
JSON, from which the image regenerates exactly (`record_to_params`).

Reading (`read_image_metadata`) understands PNGs from this app, A1111 and Forge (text chunks, EXIF in PNG,
JPEG and WebP, stealth pnginfo), ComfyUI (graphs in chunks or EXIF), Civitai's generator, InvokeAI
(2.x-5.x), NovelAI and Fooocus, and returns one `ImageMetadata`: what can be restored in our terms, where
each value came from, what has no equivalent here (`not_restored`) and what could not be read.

The package: `types` (shared types, no reader imports), `limits`, `containers` (PNG / JPEG / WebP / EXIF),
one reader module per tool (`a1111`, `comfyui`, `civitai`, `invokeai`, `novelai`, `fooocus`, `stealth`,
`ours`), `samplers` (names of every tool), `read` (the dispatcher), `writer` and `display`.
"""

from __future__ import annotations

from aigc_desktop.core.metadata.a1111 import loras_in_prompt, split_a1111
from aigc_desktop.core.metadata.containers import decode_user_comment, read_text_chunks
from aigc_desktop.core.metadata.display import describe
from aigc_desktop.core.metadata.ours import metadata_from_record, record_to_job, record_to_params
from aigc_desktop.core.metadata.read import metadata_from_chunks, parse_parameters, read_image_metadata, read_record
from aigc_desktop.core.metadata.samplers import A1111_SAMPLERS, a1111_sampler
from aigc_desktop.core.metadata.types import (IMAGE_MODES, OUR_KEY, ImageMetadata, LoraUse, TextChunks,
                                              UnreadableImage, num, to_float, to_int)
from aigc_desktop.core.metadata.writer import a1111_parameters, pnginfo, record_json, save_png

__all__ = [
    "A1111_SAMPLERS", "IMAGE_MODES", "OUR_KEY", "ImageMetadata", "LoraUse", "TextChunks", "UnreadableImage",
    "a1111_parameters", "a1111_sampler", "decode_user_comment", "describe", "loras_in_prompt",
    "metadata_from_chunks", "metadata_from_record", "num", "parse_parameters", "pnginfo", "read_image_metadata",
    "read_record", "read_text_chunks", "record_json", "record_to_job", "record_to_params", "save_png",
    "split_a1111", "to_float", "to_int",
]
