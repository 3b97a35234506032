"""Load Stable Diffusion models offline into diffusers pipelines.

Diffusers-format folders load with `from_pretrained` (no network attempt for a local folder).
Single-file checkpoints load through `single_file.py` (family detected from keys and shapes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from aigc_desktop.core import torch_files
from aigc_desktop.core.detect import identify
from aigc_desktop.core.errors import ModelLoadError, UserError, first_line
from aigc_desktop.core.jobs import ModelRef
from aigc_desktop.core.safe_io import regular_file
from aigc_desktop.core.safetensors_header import read_header
from aigc_desktop.engines.diffusion import single_file
from aigc_desktop.engines.diffusion.loaded import LoadedModel

__all__ = ["LoadedModel", "load_model"]  # LoadedModel lives in loaded.py: single_file never imports loader

log = logging.getLogger(__name__)


def load_model(ref: ModelRef, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """Load a diffusers folder or a single-file checkpoint (with its VAE replaced when `ref.vae` is set)."""
    path = Path(ref.path).expanduser()
    if not _exists(path):
        raise ModelLoadError(f"Model not found: {path}")
    if ref.vae and not _exists(Path(ref.vae).expanduser()):
        raise ModelLoadError(f"VAE file not found: {ref.vae}")
    if ref.vae:
        regular_file(Path(ref.vae).expanduser(), "VAE file")
    if ref.prediction_type:
        from aigc_desktop.engines.diffusion.families import check_prediction_type

        check_prediction_type(ref.prediction_type)
    if path.is_dir():
        model = _load_folder(ref, path, dtype)
    else:
        regular_file(path, "model file")
        model = single_file.load_checkpoint(ref, path, dtype)
    model.pipe.to(device)
    model.device = device
    model.pipe.set_progress_bar_config(disable=True)
    return model


def _load_folder(ref: ModelRef, path: Path, dtype: torch.dtype) -> LoadedModel:
    ident = identify(path)
    if ident.kind != "diffusers":
        raise ModelLoadError(f"{path.name} is not a diffusers model folder: {ident.note or ident.kind}")
    if ident.variant == "refiner":
        raise ModelLoadError(f"{path.name} is an SDXL refiner (no first text encoder), which is not supported as "
                             "a model on its own")
    # The folder's pipeline class is authoritative for SD vs SDXL; a hand-chosen family only renames
    # SD 1.x / 2.x (same pipeline).
    family = ident.family or ref.family or "sd1"
    if ref.family and (ref.family == "sdxl") == (family == "sdxl"):
        family = ref.family
    from aigc_desktop.engines.diffusion.families import family_config

    fam = family_config(family)
    cls = fam.pipeline_class()
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if family != "sdxl":
        kwargs.update(safety_checker=None, requires_safety_checker=False, feature_extractor=None)
    else:
        kwargs.update(add_watermarker=False)
    if ref.vae:
        kwargs["vae"] = single_file.load_vae(Path(ref.vae).expanduser(), family, dtype)
    for slot in ("tokenizer", "tokenizer_2"):  # a folder without its tokenizer files takes the family's
        if slot in fam.model_index and not any((path / slot / f).is_file() for f in ("vocab.json", "tokenizer.json")):
            kwargs[slot] = fam.tokenizer(slot)
    _check_weight_files(path)
    if _only_fp16_weights(path / "unet"):
        kwargs["variant"] = "fp16"  # folders saved with variant="fp16" and nothing else
    try:
        pipe = cls.from_pretrained(str(path), **kwargs)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError, RuntimeError,
            RecursionError, OverflowError) as exc:
        raise ModelLoadError(f"Could not load model folder {path.name}: {first_line(exc)} (the folder is "
                             "incomplete, damaged or not a Stable Diffusion pipeline)") from None
    if ref.prediction_type:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config,
                                                          prediction_type=ref.prediction_type)
    sched_cfg = dict(pipe.scheduler.config)
    return LoadedModel(ref=ref, pipe=pipe, family=family, variant=ident.variant,
                       device=torch.device("cpu"), dtype=dtype, scheduler_config=sched_cfg)


def _only_fp16_weights(folder: Path) -> bool:
    names = [p.name for p in folder.glob("*") if p.suffix in (".safetensors", ".bin")]
    return bool(names) and all(".fp16." in n for n in names)


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:  # a name longer than the file system allows
        return False


def _check_weight_files(folder: Path) -> None:
    """Every weight file of a diffusers folder is a regular file with a valid header, checked before
    diffusers opens any of them (a FIFO would block it, a forged archive exhaust memory)."""
    for component in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(component.iterdir()):
            suffix = f.suffix.lower()
            if suffix not in (".safetensors", ".bin", ".ckpt", ".pt", ".pth"):
                continue
            regular_file(f, f"{folder.name}/{component.name}/{f.name}")
            if suffix == ".safetensors":
                read_header(f)
            elif torch_files.check_archive(f) is not None:
                _refuse_unsafe_globals(f)
            else:
                torch_files.check_legacy_storages(f)


def _refuse_unsafe_globals(path: Path) -> None:
    """A pickled weight file naming globals beyond tensors is refused by name here, before diffusers'
    weights-only loader turns the refusal into "unable to load weights"."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged archive: one line
        raise ModelLoadError(f"{path.name} is not a readable PyTorch file ({first_line(exc)})") from None
    if names:
        raise ModelLoadError(single_file.refused_message(path, list(names)))
