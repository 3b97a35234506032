"""`aigc-desktop info FILE [--json] [--hash]`: what an image says about how it was made, or what a model is.

Images: the generation parameters stored by this app, A1111, ComfyUI, Civitai, InvokeAI, NovelAI or Fooocus,
with what would be restored and what would not; `--json` also says per field where its value came from
(`field_sources`: the chunk, the EXIF tag, the graph node) and what the image holds but could not be read
(`unreadable`: oversized chunks, too-deep JSON, values a graph computes when it runs). Model files and
folders: the detected kind and family (and, with --hash, the SHA-256 and A1111's short hashes, cached).
Bad input raises UserError (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aigc_desktop.cli_output import print_text as _out
from aigc_desktop.core.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="show the generation parameters stored in an image, or identify a model")
    p.add_argument("file", help="PNG / JPEG / WebP image, a model file or folder, or a .aigc project")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--hash", action="store_true", help="models: also compute the SHA-256 (cached afterwards)")




def _is_model(path: Path) -> bool:
    from aigc_desktop.core.detect import MODEL_SUFFIXES

    return path.is_dir() or path.suffix.lower() in MODEL_SUFFIXES


def _model_info(path: Path, args: argparse.Namespace) -> int:
    from aigc_desktop.core import catalog, hashing

    info = catalog.info_for(path)
    data: dict[str, Any] = {"file": str(path), **info.to_dict(), "label": info.label}
    if args.hash:
        try:
            full = hashing.sha256_file(path)
            data.update(sha256=full, a1111_model_hash=hashing.short_hash(full))
            if info.kind == "lora" and path.suffix.lower() == ".safetensors":
                data["a1111_lora_hash"] = hashing.lora_short_hash(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"Cannot hash {path.name}: {exc}") from None
    if args.json:
        _out(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    _out(f"File:       {path}")
    _out(f"Model:      {info.name} ({info.label})")
    _out(f"Size:       {info.size / (1 << 20):.1f} MiB")
    if info.note:
        _out(f"Note:       {info.note}")
    if "sha256" in data:
        _out(f"SHA-256:    {data['sha256']} (A1111 model hash {data['a1111_model_hash']})")
    if "a1111_lora_hash" in data:
        _out(f"LoRA hash:  {data['a1111_lora_hash']} (A1111 'Lora hashes')")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from aigc_desktop.core import metadata

    path = Path(args.file).expanduser()
    if not path.exists():
        raise UserError(f"No such file: {args.file}")
    if path.suffix.lower() == ".aigc":  # a project file: its layers, history and models
        from aigc_desktop import cli_project

        return cli_project.cmd_info(args)
    if _is_model(path):
        return _model_info(path, args)
    meta = metadata.read_image_metadata(path)  # UnreadableImage is a UserError
    if args.json:
        _out(json.dumps({"file": str(path), **meta.to_dict()}, indent=2, ensure_ascii=False, default=str))
        return 0
    size = f"{meta.image_size[0]}x{meta.image_size[1]} " if meta.image_size else ""
    _out(f"File:       {path} ({size}{meta.file_format})")
    for line in metadata.describe(meta):
        _out(line)
    return 0
