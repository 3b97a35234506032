"""Schema checks of a diffusers folder's JSON: model_index.json and the component configs we (and
diffusers) read, before anything trusts them.

Each file is parsed through safe_io (regular files only, size and depth limits, finite numbers) and the keys
that decide what gets built are checked for type and range: a dict where a string belongs, a string where a
list of numbers belongs, or a `sample_size` of a billion is a one-line error naming the file and the field,
not an `unhashable type` or an allocation of terabytes deep inside diffusers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from aigc_desktop.core.errors import ModelLoadError
from aigc_desktop.core.safe_io import MiB, load_json_file

MAX_CONFIG_BYTES = 4 * MiB  # real configs are a few KiB; tokenizer.json is not read here
COMPONENT_CONFIGS = ("unet/config.json", "vae/config.json", "text_encoder/config.json",
                     "text_encoder_2/config.json", "scheduler/scheduler_config.json")


class ConfigError(ModelLoadError):
    """A diffusers config file with a field of the wrong type or out of range."""


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: Any, lo: float, hi: float) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _ints(lo: int, hi: int, max_len: int = 16) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and 1 <= len(v) <= max_len and all(_int(x, lo, hi) for x in v)


def _int_or_ints(lo: int, hi: int) -> Callable[[Any], bool]:
    many = _ints(lo, hi)
    return lambda v: _int(v, lo, hi) or many(v)


def _text(max_len: int = 200) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= max_len


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _strings(max_len: int = 64) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) <= max_len and all(isinstance(x, str) and len(x) <= 200
                                                                       for x in v)


# key -> (check, what the value must be). The same key means the same thing in every component config.
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "_class_name": (_text(), "a class name (text)"),
    "_diffusers_version": (_text(), "text"),
    # UNets give the latent size (SDXL 128), VAEs the image size (1024): 4096 is absurd for both.
    "sample_size": (_int_or_ints(1, 4096), "a whole number between 1 and 4096 (or a list of them)"),
    "in_channels": (lambda v: _int(v, 1, 64), "a whole number between 1 and 64"),
    "out_channels": (lambda v: _int(v, 1, 64), "a whole number between 1 and 64"),
    "latent_channels": (lambda v: _int(v, 1, 64), "a whole number between 1 and 64"),
    "block_out_channels": (_ints(1, 8192, 8), "a list of 1 to 8 whole numbers between 1 and 8192"),
    "layers_per_block": (_int_or_ints(1, 64), "a whole number between 1 and 64 (or a list of them)"),
    "cross_attention_dim": (_int_or_ints(1, 16384), "a whole number between 1 and 16384 (or a list of them)"),
    "attention_head_dim": (_int_or_ints(1, 4096), "a whole number between 1 and 4096 (or a list of them)"),
    "num_attention_heads": (_optional(_int_or_ints(1, 4096)), "a whole number between 1 and 4096"),
    "transformer_layers_per_block": (_int_or_ints(1, 64), "a whole number between 1 and 64 (or a list of them)"),
    "addition_embed_type": (_optional(_text()), "text or null"),
    "projection_class_embeddings_input_dim": (_optional(lambda v: _int(v, 1, 65536)), "a whole number"),
    "down_block_types": (_strings(8), "a list of block names"),
    "up_block_types": (_strings(8), "a list of block names"),
    "scaling_factor": (lambda v: _number(v, 1e-6, 1e6), "a number greater than 0"),
    "hidden_size": (lambda v: _int(v, 1, 65536), "a whole number between 1 and 65536"),
    "intermediate_size": (lambda v: _int(v, 1, 262144), "a whole number between 1 and 262144"),
    "num_hidden_layers": (lambda v: _int(v, 1, 256), "a whole number between 1 and 256"),
    "max_position_embeddings": (lambda v: _int(v, 1, 65536), "a whole number between 1 and 65536"),
    "vocab_size": (lambda v: _int(v, 1, 1_000_000), "a whole number between 1 and 1000000"),
    "projection_dim": (lambda v: _int(v, 1, 65536), "a whole number between 1 and 65536"),
    "hidden_act": (_text(64), "an activation name (text)"),
    "num_train_timesteps": (lambda v: _int(v, 1, 100_000), "a whole number between 1 and 100000"),
    "prediction_type": (_text(64), "text"),
    "beta_schedule": (_text(64), "text"),
    "beta_start": (lambda v: _number(v, 0.0, 1.0), "a number between 0 and 1"),
    "beta_end": (lambda v: _number(v, 0.0, 1.0), "a number between 0 and 1"),
    "steps_offset": (lambda v: _int(v, 0, 100_000), "a whole number"),
}


def check_config(data: Any, label: str) -> dict[str, Any]:
    """`data` (parsed JSON of `label`) when it is an object whose known fields fit FIELDS."""
    if not isinstance(data, dict):
        raise ConfigError(f"{label} is not a JSON object (found {type(data).__name__})")
    for key, (check, wanted) in FIELDS.items():
        if key in data and not check(data[key]):
            raise ConfigError(f"{label}: {key} must be {wanted}, got {_short(data[key])}")
    return data


def check_model_index(data: Any, label: str) -> dict[str, Any]:
    """model_index.json: `_class_name` text; each component [library, class] (text or null each)."""
    data = check_config(data, label)
    if "_class_name" not in data:
        raise ConfigError(f"{label} has no _class_name: not a diffusers pipeline description")
    for key, value in data.items():
        if key.startswith("_") or not isinstance(value, list):
            if not key.startswith("_") and isinstance(value, dict):
                raise ConfigError(f"{label}: {key[:60]} must be [library, class] or a plain value, got an object")
            continue
        if len(value) != 2 or not all(v is None or (isinstance(v, str) and len(v) <= 200) for v in value):
            raise ConfigError(f"{label}: {key[:60]} must be [library, class], got {_short(value)}")
    return data


def read_json(path: Path, label: str) -> Any:
    return load_json_file(path, what=label, max_bytes=MAX_CONFIG_BYTES)


def read_model_index(folder: Path) -> dict[str, Any]:
    label = f"{folder.name}/model_index.json"
    return check_model_index(read_json(folder / "model_index.json", label), label)


def read_component_config(folder: Path, relative: str) -> dict[str, Any] | None:
    """A component's checked config, None when the file does not exist."""
    path = folder / relative
    if not path.exists() and not path.is_symlink():
        return None
    label = f"{folder.name}/{relative}"
    return check_config(read_json(path, label), label)


def check_folder(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """model_index.json and every component config of a diffusers folder, each read once and checked:
    (the index, {relative path: config} of the configs that exist)."""
    index = read_model_index(folder)
    configs = {}
    for relative in COMPONENT_CONFIGS:
        config = read_component_config(folder, relative)
        if config is not None:
            configs[relative] = config
    return index, configs
