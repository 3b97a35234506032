"""Where the app keeps its files. Environment variables override the platform folders (tests use them)."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "aigc-desktop"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """User config folder (settings.json, hash cache)."""
    env = os.environ.get("AIGC_DESKTOP_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """User data folder (models, outputs)."""
    env = os.environ.get("AIGC_DESKTOP_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_models_dir() -> Path:
    return data_dir() / "models"


def default_outputs_dir() -> Path:
    return data_dir() / "outputs"


def resources_dir() -> Path:
    """The `resources/` folder: tokenizer files, family configs, bundled models.

    It sits beside the package in a source checkout (the README installs editable); an installed copy
    may ship it inside the package as `aigc_desktop/resources`.
    """
    env = os.environ.get("AIGC_DESKTOP_RESOURCES_DIR")
    if env:
        return Path(env)
    for candidate in (_PACKAGE_DIR.parent / "resources", _PACKAGE_DIR / "resources"):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR.parent / "resources"
