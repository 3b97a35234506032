"""One declarative settings schema with defaults and a version, stored as JSON in the user config folder.

Loading never crashes: a missing file gives defaults; a corrupt file, or a value of the wrong type,
falls back to defaults with a warning (and the bad file is kept aside as settings.json.bad).
A file from an older schema version is migrated step by step; one from a newer version is read as far
as it can be, with a warning, and is not overwritten until the user changes something.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aigc_desktop.core import paths
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.files import atomic_write, set_aside
from aigc_desktop.core.safe_io import UnsafeFileError, load_json_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_FILE_BYTES = 1024 * 1024  # a settings file is a few hundred bytes
MAX_TEXT = 4096  # longest text value (paths: PATH_MAX on Linux)
MAX_LIST = 1000


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> Any:
        """The value, converted to the default's type; ValueError if it does not fit."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{self.key} must be a list of strings")
            if len(value) > MAX_LIST or any(len(v) > MAX_TEXT for v in value):
                raise ValueError(f"{self.key} must be at most {MAX_LIST} entries of at most {MAX_TEXT} characters")
            return list(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{self.key} must be {kind.__name__}, got {type(value).__name__}")
        if kind is str and len(value) > MAX_TEXT:
            raise ValueError(f"{self.key} must be at most {MAX_TEXT} characters, got {len(value)}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.key} must be one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{self.key} must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{self.key} must be at most {self.maximum}")
        return value


SCHEMA: tuple[Setting, ...] = (
    Setting("device", "auto", "Compute device", choices=("auto", "cuda", "mps", "cpu")),
    Setting("dtype", "auto", "Precision (auto: fp16 on CUDA, fp32 on CPU)",
            choices=("auto", "fp16", "bf16", "fp32")),
    Setting("threads", 0, "CPU threads for inference (0: automatic)", minimum=0, maximum=256),
    Setting("memory_budget_gb", 0.0, "Memory for cached models, GB (0: automatic)", minimum=0.0),
    Setting("offload", "auto", "CPU offload / attention slicing / VAE tiling",
            choices=("auto", "never", "always")),
    Setting("models_dir", "", "Main models folder (empty: the app's data folder)"),
    Setting("model_folders", [], "More folders to scan for models"),
    Setting("outputs_dir", "", "Where generated images are saved (empty: the app's data folder)"),
    Setting("save_outputs", True, "Save every generated image with its metadata"),
    Setting("last_model", "", "Model selected when the app last closed"),
    Setting("preview_every_step", True, "Show a live preview at every step"),
    Setting("autosave_seconds", 60, "Write unsaved work to the recovery folder every N seconds (0: never)",
            minimum=0, maximum=3600),
    Setting("recent_projects", [], "Recently opened project files (File > Open Recent)"),
    Setting("theme", "dark", "Colour theme", choices=("dark", "light")),
    Setting("window_state", "", "Dock layout and window size (saved by the window on close)"),
)

_BY_KEY = {s.key: s for s in SCHEMA}

# Migrations: MIGRATIONS[n] turns a version-n dict into a version-(n+1) dict.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class Settings:
    def __init__(self, values: dict[str, Any] | None = None, path: Path | None = None) -> None:
        self._values = {s.key: (list(s.default) if isinstance(s.default, list) else s.default) for s in SCHEMA}
        self.path = path
        self.warnings: list[str] = []
        for key, value in (values or {}).items():
            self.set(key, value)

    def get(self, key: str) -> Any:
        if key not in _BY_KEY:
            raise KeyError(key)
        value = self._values[key]
        return list(value) if isinstance(value, list) else value

    __getitem__ = get

    def set(self, key: str, value: Any) -> None:
        if key not in _BY_KEY:
            raise KeyError(f"Unknown setting '{key}'")
        self._values[key] = _BY_KEY[key].check(value)

    def to_dict(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, "settings": {k: self.get(k) for k in self._values}}

    # -- derived paths
    def models_dir(self) -> Path:
        return Path(self.get("models_dir")).expanduser() if self.get("models_dir") else paths.default_models_dir()

    def outputs_dir(self) -> Path:
        return Path(self.get("outputs_dir")).expanduser() if self.get("outputs_dir") else paths.default_outputs_dir()

    def model_search_dirs(self) -> list[Path]:
        dirs = [self.models_dir()] + [Path(p).expanduser() for p in self.get("model_folders")]
        bundled = paths.resources_dir() / "models"
        if bundled.is_dir():
            dirs.append(bundled)
        seen: list[Path] = []
        for d in dirs:
            if d not in seen:
                seen.append(d)
        return seen

    # -- persistence
    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        path = path or default_path()
        settings = cls(path=path)
        if not path.exists() and not path.is_symlink():
            return settings
        try:
            raw = load_json_file(path, "settings file", max_bytes=MAX_FILE_BYTES, max_depth=16)
            if not isinstance(raw, dict) or not isinstance(raw.get("settings", {}), dict):
                raise ValueError("not a settings object")
            version = raw.get("version", 1)
            if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 10_000:
                raise ValueError(f"version must be a whole number from 1, got {str(version)[:20]!r}")
            values = dict(raw.get("settings", {}))
        except UnsafeFileError as exc:  # a FIFO, a device, a huge file: left where it is
            settings._warn(f"Settings file is unusable ({exc}); using defaults")
            return settings
        except (OSError, ValueError, TypeError, UserError) as exc:
            settings._warn(f"Settings file {path} is unreadable ({exc}); using defaults")
            _keep_aside(path)
            return settings
        if version > SCHEMA_VERSION:
            settings._warn(f"Settings file {path} is from a newer version ({version}); reading what is known")
        while version < SCHEMA_VERSION:
            values = MIGRATIONS[version](values)
            version += 1
        for key, value in values.items():
            try:
                settings.set(key, value)
            except KeyError:
                log.info("Ignoring unknown setting %s", key[:80])
            except ValueError as exc:
                settings._warn(f"Setting ignored, default used: {exc}")
        return settings

    def save(self, path: Path | None = None) -> Path:
        """Atomic write: a crash mid-save leaves the previous file intact."""
        path = path or self.path or default_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=2, sort_keys=True))
        self.path = path
        return path

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.warnings.append(text)


def default_path() -> Path:
    return paths.config_dir() / "settings.json"


def _keep_aside(path: Path) -> None:
    set_aside(path, ".bad")
