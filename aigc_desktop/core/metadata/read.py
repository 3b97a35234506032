"""Reading an image's metadata: pick the reader for whichever tool's keys the image carries (ours first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aigc_desktop.core.metadata.a1111 import parse_a1111
from aigc_desktop.core.metadata.civitai import parse_civitai
from aigc_desktop.core.metadata.comfyui import parse_comfyui
from aigc_desktop.core.metadata.containers import open_regular, read_text_chunks
from aigc_desktop.core.metadata.fooocus import parse_fooocus
from aigc_desktop.core.metadata.invokeai import parse_invokeai, parse_invokeai_legacy
from aigc_desktop.core.metadata.novelai import parse_novelai
from aigc_desktop.core.metadata.ours import metadata_from_record
from aigc_desktop.core.metadata.types import OUR_KEY, ImageMetadata, TextChunks, UnreadableImage, json_dict

_STEALTH_FORMATS = ("PNG", "WEBP")


def parse_parameters(text: str, problems: list[str] | None = None) -> ImageMetadata | None:
    """A `parameters` text: A1111 infotext, or Fooocus JSON."""
    if text.lstrip().startswith("{"):
        meta = parse_fooocus(text, problems)
        if meta is not None:
            return meta
    return parse_a1111(text)


def _pick(chunks: TextChunks) -> tuple[ImageMetadata, str]:
    """(metadata, the key of the chunk it came from)."""
    problems = chunks.problems
    if OUR_KEY in chunks:
        record = json_dict(chunks[OUR_KEY], f"the {OUR_KEY} record", problems)
        if record:
            return metadata_from_record(record), OUR_KEY
    if "invokeai_metadata" in chunks:
        meta = parse_invokeai(chunks["invokeai_metadata"], problems)
        if meta is not None:
            return meta, "invokeai_metadata"
    for key in ("civitai", "prompt"):
        if key in chunks and '"extraMetadata"' in chunks[key]:
            meta = parse_civitai(chunks[key], problems)
            if meta is not None:
                return meta, key
    graph_keys = [k for k in ("prompt", "workflow") if k in chunks]
    params = chunks.get("parameters")
    if params is not None:
        meta = parse_parameters(params, problems)
        if meta is not None:
            if graph_keys and meta.source == "A1111":
                meta.source = "ComfyUI"  # a ComfyUI save node that also writes A1111 text
            return meta, "parameters"
    if graph_keys:
        meta = parse_comfyui(chunks.get("prompt"), chunks.get("workflow"), problems)
        if meta is not None:
            return meta, graph_keys[0]
    for reader, key in ((parse_invokeai_legacy, "sd-metadata"), (parse_novelai, "Comment")):
        meta = reader(chunks)
        if meta is not None:
            return meta, key if key in chunks else "Dream"
    return ImageMetadata(), ""


def metadata_from_chunks(chunks: TextChunks | dict[str, str]) -> ImageMetadata:
    """ImageMetadata from an image's texts, saying per field where its value came from."""
    if not isinstance(chunks, TextChunks):
        plain, chunks = chunks, TextChunks()
        for key, value in plain.items():
            chunks.add(key, value, f"'{key}'")
    meta, key = _pick(chunks)
    if key:
        where = chunks.where(key)
        # Graph readers name nodes ("node 3 (KSampler)"); say which chunk the graph was in too.
        for name, node in list(meta.field_sources.items()):
            if node.startswith("node "):
                meta.field_sources[name] = f"{where}, {node}"
        meta.came_from(where)
    for problem in chunks.problems:
        meta.cannot_read(problem)
    meta.field_sources = {k: v for k, v in meta.field_sources.items() if getattr(meta, k, None) not in (None, [])}
    return meta


def read_image_metadata(path: str | os.PathLike) -> ImageMetadata:
    """Everything restorable from an image made by this app, A1111 (also EXIF and stealth), ComfyUI,
    Civitai, InvokeAI, NovelAI or Fooocus.

    Raises UnreadableImage (one line) for a missing file, one that is not an image, or one whose header
    claims more pixels than this app opens. An image without generation metadata gives an ImageMetadata
    whose `found` is False; what it holds but could not be read is in `unreadable`.
    """
    chunks, size, fmt = read_text_chunks(path)
    meta = metadata_from_chunks(chunks)
    if not meta.found and fmt in _STEALTH_FORMATS and not chunks.problems:  # refused chunks: Pillow would too
        from aigc_desktop.core.metadata.stealth import read_stealth

        text, where, problem = read_stealth(open_regular(path), size)
        if text is not None:
            meta = metadata_from_chunks(_stealth_chunks(text, where))
        elif problem:
            meta.cannot_read(problem)
    meta.file_format = fmt
    meta.image_size = (int(size[0]), int(size[1])) if size else None
    return meta


def _stealth_chunks(text: str, where: str) -> TextChunks:
    """Stealth text: A1111's parameters, or (NovelAI's) a JSON object of the chunks it would have written."""
    hidden = TextChunks()
    data = json_dict(text, where, hidden.problems) if text.lstrip().startswith("{") else {}
    if any(key in data for key in ("Comment", "Description", "Software")):
        for key, value in data.items():
            if isinstance(value, str):
                hidden.add(key, value, f"{where} ({key})")
    else:
        hidden.add("parameters", text, where)
    return hidden


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """Our JSON record from an image made by this app, or None."""
    try:
        chunks, _, _ = read_text_chunks(Path(path))
    except UnreadableImage:
        return None
    record = json_dict(chunks.get(OUR_KEY), f"the {OUR_KEY} record")
    return record or None
