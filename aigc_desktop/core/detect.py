"""Identify a model file or folder from its keys and tensor shapes, without torch and without unpickling.

safetensors headers are read as checked JSON; `.ckpt`/`.pt` (zip) and `.pkl` pickles are scanned opcode by
opcode for the strings they contain (pickletools never executes anything). Kinds:

    diffusers   a diffusers pipeline folder (model_index.json)
    checkpoint  a single-file Stable Diffusion checkpoint (CompVis / Stability layout)
    vae         a standalone VAE
    lora        a LoRA (kohya or diffusers key layout)
    embedding   a textual-inversion embedding
    stylegan    a StyleGAN generator (NVIDIA pickle, rosinality .pt, or our safetensors + json)
    vae_morph   our VAE for latent morphs (safetensors + json)
    unknown     none of the above (the note says what was found)
    unreadable  could not be read: not a regular file, a header or archive that breaks its format's rules
                or limits, a config of the wrong types (the note says why, in one line)

Nothing here trusts a file: safetensors headers go through core.safetensors_header, torch archives through
core.torch_files, diffusers configs through core.diffusers_config, all bounded before reading.
"""

from __future__ import annotations

import io
import os
import pickletools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from aigc_desktop.core import diffusers_config, torch_files
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safe_io import regular_file
from aigc_desktop.core.safetensors_header import SafetensorsHeaderError, read_header

MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".pkl", ".bin")


@dataclass(frozen=True)
class Identification:
    kind: str
    family: str | None = None  # sd1 | sd2 | sdxl (diffusion kinds)
    variant: str | None = None  # "inpaint" for 9-channel UNets
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        parts = [self.kind]
        if self.family:
            parts.append(self.family)
        if self.variant:
            parts.append(self.variant)
        return " / ".join(parts)


HeaderError = SafetensorsHeaderError  # the one header error (a ModelLoadError and a ValueError)


def read_safetensors_header(path: str | Path) -> dict[str, Any]:
    """The validated JSON header of a safetensors file: {name: {dtype, shape, data_offsets}, "__metadata__": {...}}.

    Read by core.safetensors_header (bounded, schema-checked); raises HeaderError with a one-line reason.
    """
    return read_header(path).as_dict()


def tensor_shapes(header: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def pickle_strings(path: str | Path, limit: int = 2_000_000) -> set[str]:
    """Every short string a pickle (bare, or torch's zip container) mentions, collected without unpickling.

    The zip archive's members are checked first (torch_files.check_archive); a bare pickle is read through
    a reader that never asks for more than the file holds."""
    path = Path(path)
    strings: set[str] = set()

    def scan(data: Iterable[Any]) -> None:
        try:
            for i, (op, arg, _pos) in enumerate(data):
                if i > limit:
                    break
                if isinstance(arg, str) and len(arg) < 300:
                    strings.add(arg)
                if op.name == "GLOBAL" and isinstance(arg, str):
                    strings.add(arg.replace(" ", "."))
        except (ValueError, EOFError, OverflowError, MemoryError, UnicodeDecodeError, struct.error):
            pass  # a truncated or odd pickle: keep what was read

    data = torch_files.read_archive_pickle(path)
    if data is not None:
        scan(pickletools.genops(io.BytesIO(data)))
    else:
        p = regular_file(path, "model file")
        with open(p, "rb") as fh:
            scan(pickletools.genops(torch_files.BoundedReader(fh, os.stat(p).st_size)))
    return strings


# ----------------------------------------------------------------------------- diffusion from keys/shapes


UNET_PREFIX = "model.diffusion_model."
# Cross-attention width of each family's UNet (the text encoder's width; SDXL concatenates two).
FAMILY_WIDTHS = {768: "sd1", 1024: "sd2", 2048: "sdxl"}


def _cross_attention_width(shapes: dict[str, tuple[int, ...]], prefix: str) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(prefix) and key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return shape[1]
    return None


def identify_keys(keys: Iterable[str], shapes: dict[str, tuple[int, ...]] | None = None) -> Identification:
    """Identify a state dict from its key names (and shapes where known)."""
    keys = list(keys)
    shapes = shapes or {}
    keyset = set(keys)
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731

    if any(k.startswith(("lora_unet_", "lora_te", "lora_transformer_")) for k in keys) or any(
            ".lora_down." in k or ".lora_A." in k or ".lora.down." in k or "lora_linear_layer" in k for k in keys):
        fam = None
        if any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in keys):
            fam = "sdxl"
        return Identification("lora", family=fam)
    if has(UNET_PREFIX):
        return _identify_checkpoint(keyset, shapes)
    if keyset & {"emb_params", "string_to_param", "clip_l", "clip_g"} or has("string_to_param."):
        return Identification("embedding", family="sdxl" if "clip_g" in keyset else None)
    if has("mapping.") and has("synthesis."):
        return Identification("stylegan")
    if has("style.") and has("to_rgb1.") and has("input.input"):  # a bare rosinality generator state dict
        return Identification("stylegan", info={"format": "rosinality"})
    if (has("encoder.") and has("decoder.")) or has("first_stage_model.decoder."):
        if any(k.startswith(("encoder.down.", "first_stage_model.", "encoder.down_blocks.")) for k in keys):
            return Identification("vae")
    if has("encoder.") and has("decoder.") and has("fc_mu"):
        return Identification("vae_morph")
    sample = ", ".join(sorted(keys)[:3])
    return Identification("unknown", note=f"{len(keys)} tensors, none in a known layout (e.g. {sample})")


def _identify_checkpoint(keys: set[str], shapes: dict[str, tuple[int, ...]]) -> Identification:
    """Family from where the text encoders live (their layout is what tells the families apart), then the
    UNet's cross-attention width when there is no text encoder. Shapes are unknown for pickles."""
    info: dict[str, Any] = {}
    in_ch = shapes.get(UNET_PREFIX + "input_blocks.0.0.weight")
    variant = None
    if in_ch and len(in_ch) == 4:
        info["in_channels"] = in_ch[1]
        if in_ch[1] == 9:
            variant = "inpaint"
    width = _cross_attention_width(shapes, UNET_PREFIX)
    if width:
        info["cross_attention_dim"] = width
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    text_time = UNET_PREFIX + "label_emb.0.0.weight" in keys
    note = ""
    if has("conditioner.embedders.1.model.") or has("conditioner.embedders.0.transformer."):
        family = "sdxl"
    elif has("conditioner.embedders.0.model."):
        family, variant = "sdxl", "refiner"  # OpenCLIP bigG alone: the SDXL refiner
    elif has("cond_stage_model.model."):
        family = "sd2"
    elif has("cond_stage_model.transformer."):
        family = "sd1"
    else:
        # No text encoder: the UNet alone cannot generate; say what it is so the user can act.
        guess = FAMILY_WIDTHS.get(width or 0)
        family = guess if guess != "sdxl" or text_time else None
        found = f"found a UNet with cross-attention width {width}" if width else "found a UNet"
        note = (f"{found} ({family}-sized) but no text encoder" if family
                else f"{found} and no text encoder; choose the family by hand")
    return Identification("checkpoint", family=family, variant=variant, note=note, info=info)


def identify_folder(path: Path) -> Identification:
    if (path / "model_index.json").exists() or (path / "model_index.json").is_symlink():
        # Every config is checked (types, ranges, depth, size) before any of its values is used.
        data, configs = diffusers_config.check_folder(path)
        cls = str(data.get("_class_name", ""))
        unet = configs.get("unet/config.json", {})
        text = configs.get("text_encoder/config.json", {})
        vae = configs.get("vae/config.json", {})
        info = {"pipeline": cls}
        if isinstance(unet.get("sample_size"), int) and isinstance(vae.get("block_out_channels"), list):
            # The size the model was trained at: latent size x the VAE's down-sampling factor.
            info["native_size"] = unet["sample_size"] * 2 ** (len(vae["block_out_channels"]) - 1)
        variant = "inpaint" if unet.get("in_channels") == 9 else None
        if "XL" in cls or unet.get("addition_embed_type") == "text_time":
            family = "sdxl"
            if not data.get("text_encoder") or data.get("text_encoder") == [None, None]:
                variant = "refiner"
        else:
            # A StableDiffusion* pipeline: SD 2.x by its 1024-wide cross-attention or its OpenCLIP text
            # encoder (gelu where OpenAI's CLIP uses quick_gelu), else SD 1.x.
            sd2 = unet.get("cross_attention_dim") == 1024 or text.get("hidden_act") == "gelu"
            family = "sd2" if sd2 else "sd1"
        return Identification("diffusers", family=family, variant=variant, info=info)
    for name, kind in (("stylegan.json", "stylegan"), ("vae_morph.json", "vae_morph")):
        if (path / name).is_file():
            return Identification(kind)
    return Identification("unknown", note="folder has no model_index.json")


def unreadable(path: Path, reason: str) -> Identification:
    """A file or folder that could not be read: kind 'unreadable', the reason in one line."""
    return Identification("unreadable", note=" ".join(reason.split())[:300])


def identify(path: str | Path) -> Identification:
    """Identify a model file or folder. Never raises for a bad file: kind 'unreadable' (could not be read,
    with the reason) or 'unknown' (read, in no known layout), with a note."""
    path = Path(path)
    try:
        if path.is_dir():
            return identify_folder(path)
        if not path.exists():
            if path.is_symlink():
                return unreadable(path, f"{path.name[:80]} is a link to a file that does not exist")
            return Identification("unknown", note=f"{path} does not exist")
        regular_file(path, "model file")  # a FIFO, socket or device is never opened
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            shapes = read_header(path).shapes()
            return identify_keys(shapes.keys(), shapes)
        if suffix in (".ckpt", ".pt", ".pth", ".pkl", ".bin"):
            strings = pickle_strings(path)
            if any("persistence" in s for s in strings) and ("G_ema" in strings or "synthesis" in strings):
                return Identification("stylegan", info={"format": "nvidia-pickle"})
            if "g_ema" in strings:
                return Identification("stylegan", info={"format": "rosinality"})
            return identify_keys(s for s in strings if "." in s or s.startswith(("emb_", "string_to")))
        return Identification("unknown", note=f"unsupported file type {suffix}")
    except UserError as exc:  # header, archive, config schema, not a regular file, JSON limits
        return unreadable(path, str(exc))
    except OSError as exc:  # permission denied, name too long, I/O error
        return unreadable(path, f"{path.name[:80]} could not be read: {exc.strerror or exc}")
