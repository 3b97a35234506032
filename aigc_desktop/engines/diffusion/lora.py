"""LoRA networks, applied for one job and removed afterwards so the cached model stays unchanged.

Files are read with safetensors only. kohya sd-scripts files (`lora_unet_*`, `lora_te_*`, `lora_te1_/te2_`,
`.alpha`; SDXL's `input_blocks_4_1_...` U-Net spelling) and diffusers / PEFT files (`unet.*.lora_A/B`,
`text_encoder.*`) both go through diffusers' own converters and PEFT (`load_lora_weights`, `set_adapters`,
`unload_lora_weights`). Before anything touches the model, the file's widths are compared with the
model's, so a LoRA made for another family gets one clear line instead of a shape-mismatch traceback.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from aigc_desktop.core import catalog, hashing
from aigc_desktop.core.errors import ModelLoadError, UserError
from aigc_desktop.core.safe_io import regular_file
from aigc_desktop.core.safetensors_header import SafetensorsHeaderError, read_header

log = logging.getLogger(__name__)
# PEFT warns whenever a second adapter joins a model; several LoRAs at once is what we mean to do.
warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute", category=UserWarning)

SUFFIX = ".safetensors"
FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
_CONTEXT_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
_DOWN_SUFFIXES = ("lora_down.weight", "lora_A.weight", "lora.down.weight", "lora_linear_layer.down.weight")
# Key endings of LyCORIS network types that are not low-rank up/down pairs.
_UNSUPPORTED = {".hada_w1_a": "LoHa", ".lokr_w1": "LoKr", ".lokr_w1_a": "LoKr", ".oft_blocks": "OFT",
                ".oft_diag": "OFT", ".diff": "full-weight difference", ".diff_b": "full-weight difference"}


@dataclass(frozen=True)
class LoraUse:
    """One LoRA in a job: its file and weights (A1111's separate text-encoder and U-Net multipliers)."""

    path: Path
    te_weight: float
    unet_weight: float
    source: str = "params"  # "params" (UI list / --lora) or "prompt" (<lora:...> tag)

    @property
    def name(self) -> str:
        return self.path.stem

    def record(self) -> dict[str, Any]:
        entry = {"name": self.name, "file": self.path.name, "path": str(self.path),
                 "sha256": hashing.sha256_file(self.path), "weight": self.unet_weight, "source": self.source}
        if self.te_weight != self.unet_weight:
            entry["te_weight"] = self.te_weight
        return entry


def find_lora(name: str, search_dirs: Iterable[str | Path]) -> Path:
    """A LoRA file by path, or by name (file stem, or a path relative to a models folder) as A1111 finds
    `<lora:name>`; UserError when there is none."""
    direct = Path(name).expanduser()
    for candidate in (direct, direct.with_name(direct.name + SUFFIX)):
        try:
            if candidate.is_file():
                return candidate
            if candidate.exists() and not candidate.is_dir():
                return regular_file(candidate, "LoRA")  # a FIFO or device: "not a regular file", unopened
        except OSError:  # a name longer than the file system allows: look it up by name below
            pass
    dirs = [Path(d).expanduser() for d in search_dirs]
    loras = [Path(i.path) for i in catalog.discover(dirs) if i.kind == "lora"]
    wanted = name.replace("\\", "/").removesuffix(SUFFIX)
    for match in (
        lambda p: p.stem == wanted,
        lambda p: p.with_suffix("").as_posix().endswith("/" + wanted),
        lambda p: p.stem.lower() == wanted.lower(),
    ):
        hits = [p for p in loras if match(p)]
        if hits:
            return hits[0]
    where = ", ".join(str(d) for d in dirs) or "no models folder"
    raise UserError(f"LoRA not found: '{name}' (looked for a file of that name in {where})")


def merge_uses(uses: Iterable[LoraUse]) -> list[LoraUse]:
    """One entry per file and source: the same LoRA named twice adds up its weights (LoRA deltas are
    linear). A file given both in the prompt and in the job's list stays two entries, so a record keeps
    apart what the prompt text brings back and what the job list does."""
    merged: dict[tuple[Path, str], LoraUse] = {}
    for use in uses:
        key = (use.path.resolve(), use.source)
        if key in merged:
            prev = merged[key]
            use = LoraUse(prev.path, prev.te_weight + use.te_weight, prev.unet_weight + use.unet_weight, use.source)
        merged[key] = use
    return list(merged.values())


def read_state_dict(path: Path) -> dict[str, Any]:
    if path.suffix.lower() != SUFFIX:
        raise UserError(f"LoRA {path.name}: only .safetensors LoRA files are supported")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    regular_file(path, "LoRA")
    try:
        read_header(path)  # bounded and schema-checked header, before safetensors reads anything
    except SafetensorsHeaderError as exc:
        raise ModelLoadError(f"Could not read LoRA {path.name}: {str(exc).removeprefix(path.name + ': ')}") from None
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        raise ModelLoadError(f"Could not read LoRA {path.name}: {text[0] if text else type(exc).__name__}") from exc


def _in_width(shape: tuple[int, ...]) -> int | None:
    return int(shape[1]) if len(shape) >= 2 else None


def lora_widths(state: dict[str, Any]) -> dict[str, int | None]:
    """What a LoRA file says about the model it was made for: the U-Net's cross-attention width and the
    widths of the first and second text encoders (None when the file has no such layers)."""
    found: dict[str, int | None] = {"context": None, "te1": None, "te2": None}
    for key, tensor in state.items():
        if not key.endswith(_DOWN_SUFFIXES):
            continue
        width = _in_width(tuple(tensor.shape))
        low = key.lower()
        if "attn2" in low and ("to_k" in low or "to_v" in low) and found["context"] is None:
            found["context"] = width
        elif any(p in low for p in ("q_proj", "k_proj", "v_proj", "to_q_lora", "to_k_lora")) and "unet" not in low:
            slot = "te2" if low.startswith(("lora_te2_", "text_encoder_2.")) else "te1"
            if found[slot] is None:
                found[slot] = width
    if found["te2"] is None and any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in state):
        found["te2"] = 0  # present, width unknown
    return found


def check_fits(state: dict[str, Any], name: str, pipe: Any, family: str) -> None:
    """UserError (one line) when a LoRA cannot apply to this model: another family or another layout."""
    for marker, kind in _UNSUPPORTED.items():
        if any(k.endswith(marker) for k in state):
            raise UserError(f"LoRA '{name}' is a {kind} network (LyCORIS); only LoRA and LoCon files are supported")
    if not any(k.endswith(_DOWN_SUFFIXES) for k in state):
        raise UserError(f"'{name}' is not a LoRA file (no lora_down / lora_A weights)")
    widths = lora_widths(state)
    model_family = FAMILY_NAMES.get(family, family)
    has_te2 = getattr(pipe, "text_encoder_2", None) is not None
    context = int(pipe.unet.config.cross_attention_dim)
    lora_context = widths["context"]
    if lora_context is not None and lora_context != context:
        made_for = FAMILY_NAMES.get(_CONTEXT_FAMILY.get(lora_context, ""), "another model")
        raise UserError(f"LoRA '{name}' is for {made_for} (cross-attention width {lora_context}) and does not fit "
                        f"this {model_family} model (width {context})")
    if widths["te2"] is not None and not has_te2:
        raise UserError(f"LoRA '{name}' is for SDXL (it has second-text-encoder layers) and does not fit "
                        f"this {model_family} model")
    te = getattr(pipe, "text_encoder", None)
    te_width = int(te.config.hidden_size) if te is not None else None
    if widths["te1"] is not None and te_width is not None and widths["te1"] != te_width:
        made_for = FAMILY_NAMES.get({768: "sd1", 1024: "sd2"}.get(widths["te1"], ""), "another model")
        raise UserError(f"LoRA '{name}' is for {made_for} (text-encoder width {widths['te1']}) and does not fit "
                        f"this {model_family} model (text-encoder width {te_width})")


def _prepared_state(state: dict[str, Any], pipe: Any) -> dict[str, Any]:
    # kohya's SDXL files (and some SD 1.x LyCORIS files) spell U-Net blocks the SGM way. diffusers' SDXL
    # pipeline remaps them itself (the remap cannot run twice); its SD 1.x/2.x pipeline does not, so map here.
    from diffusers.loaders import StableDiffusionXLLoraLoaderMixin
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    kohya = state and all(k.startswith(("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")) for k in state)
    if kohya and not isinstance(pipe, StableDiffusionXLLoraLoaderMixin):
        state = _maybe_map_sgm_blocks_to_diffusers(dict(state), pipe.unet.config)
    return state


@contextmanager
def applied(pipe: Any, family: str, uses: list[LoraUse]) -> Iterator[list[dict[str, Any]]]:
    """Load the LoRAs into the pipeline's modules with their weights; yield their image-record entries;
    remove every LoRA layer afterwards, whatever happens."""
    if not uses:
        yield []
        return
    names: list[str] = []
    try:
        weights: list[dict[str, float]] = []
        for i, use in enumerate(uses):
            state = read_state_dict(use.path)
            check_fits(state, use.name, pipe, family)
            adapter = f"aigc_lora_{i}"
            try:
                pipe.load_lora_weights(_prepared_state(state, pipe), adapter_name=adapter)
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 - diffusers/PEFT raise many kinds; the user gets one line
                text = str(exc).strip().splitlines()
                raise UserError(f"Could not apply LoRA '{use.name}': {text[0] if text else type(exc).__name__}") from exc
            loaded_in = [part for part, adapters in pipe.get_list_adapters().items() if adapter in adapters]
            if not loaded_in:
                raise UserError(f"LoRA '{use.name}' matches no layer of this model (made for another model type?)")
            names.append(adapter)
            weights.append({part: (use.unet_weight if part == "unet" else use.te_weight) for part in loaded_in})
        pipe.set_adapters(names, weights)
        yield [use.record() for use in uses]
    finally:
        pipe.unload_lora_weights()  # also clears a half-loaded adapter after an error
