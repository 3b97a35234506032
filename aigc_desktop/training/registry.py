"""Which trainer trains which model kind, and turning loose option values into a trainer's config.

No torch here: the CLI and the app's Train panel import this module; the trainer module (torch) is
imported only when a run starts.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any

from aigc_desktop.core.errors import UserError

TRAINERS: dict[str, str] = {
    "diffusion": "aigc_desktop.training.diffusion:DiffusionTrainer",
    "stylegan": "aigc_desktop.training.stylegan:StyleGANTrainer",
    "vae": "aigc_desktop.training.vae:VAETrainer",
}

DESCRIPTIONS: dict[str, str] = {
    "diffusion": "text-to-image diffusion (Stable Diffusion folder layout; images + .txt captions)",
    "stylegan": "StyleGAN2 generator (images only)",
    "vae": "VAE for latent morphs (arch=morph) or a diffusion VAE (arch=kl)",
}


def trainer_class(kind: str):
    target = TRAINERS.get(kind)
    if target is None:
        raise UserError(f"Unknown model kind '{kind}'; choose {', '.join(TRAINERS)}")
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _typed(value: Any, kind: Any, name: str) -> Any:
    """A value that is not text (a saved run's config.json, the window's fields) must already have its type."""
    import math

    from aigc_desktop.core.params import shown

    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is str:
        ok = False
    else:
        ok = True
    if not ok:
        raise UserError(f"Option {name} must be {getattr(kind, '__name__', kind)}, got {type(value).__name__} "
                        f"{shown(value)}")
    return value


def _convert(value: Any, kind: Any, name: str) -> Any:
    if not isinstance(value, str):
        return _typed(value, kind, name)
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise UserError(f"Option {name}: cannot read '{value}' as {kind.__name__}") from None
    return value


def make_config(kind: str, **options: Any):
    """The trainer's config from option values (strings from the command line are converted by type)."""
    cls = trainer_class(kind).config_class
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UserError(f"Unknown option(s) for {kind}: {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    converted = {k: _convert(v, hints.get(k), k) for k, v in options.items()}
    config = cls(**converted)
    config.validate()
    return config


def option_help(kind: str) -> list[tuple[str, Any]]:
    """(name, default) of every option of a trainer, for --help style listings."""
    cls = trainer_class(kind).config_class
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append((f.name, default))
    return out
