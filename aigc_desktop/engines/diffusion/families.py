"""Model families (SD 1.x, SD 2.x, SDXL) and their conventions, read from the diffusers-format config
folders shipped in `resources/configs/<name>/` (model_index.json, component configs, tokenizer configs; no
weights). The CLIP BPE vocabulary lives once in `resources/tokenizer/` and serves every family.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aigc_desktop.core.errors import ModelLoadError, UserError
from aigc_desktop.core.safe_io import load_json_file
from aigc_desktop.core.paths import resources_dir

FAMILIES = ("sd1", "sd2", "sdxl")
PREDICTION_TYPES = ("epsilon", "v_prediction")
_FOLDERS = {"sd1": "sd15", "sd2": "sd2", "sdxl": "sdxl"}


def check_prediction_type(value: str) -> str:
    if value not in PREDICTION_TYPES:
        raise ModelLoadError(f"Unknown prediction type '{value}'; choose {' or '.join(PREDICTION_TYPES)}")
    return value


def config_name(family: str, prediction_type: str | None = None) -> str:
    """The config folder of a family: SD 2.x has two, 512-base (epsilon) and 768-v (v-prediction)."""
    if family not in _FOLDERS:
        raise ModelLoadError(f"Unknown model family '{family}'; choose one of: {', '.join(FAMILIES)}")
    if family == "sd2" and prediction_type == "v_prediction":
        return "sd2-v"
    return _FOLDERS[family]


@dataclass(frozen=True)
class FamilyConfig:
    family: str
    name: str  # the folder name: sd15 | sd2 | sd2-v | sdxl

    @property
    def folder(self) -> Path:
        return resources_dir() / "configs" / self.name

    def json(self, relative: str) -> dict[str, Any]:
        return dict(_read_json(self.folder / relative))

    @property
    def model_index(self) -> dict[str, Any]:
        return self.json("model_index.json")

    @property
    def text_encoder_slots(self) -> list[str]:
        return [k for k in ("text_encoder", "text_encoder_2") if self.model_index.get(k, [None])[0]]

    def component_class(self, slot: str) -> str:
        return self.model_index[slot][1]

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.model_index["_class_name"])

    def tokenizer(self, slot: str = "tokenizer"):
        return _tokenizer(self.folder / slot / "tokenizer_config.json")

    def scheduler(self, prediction_type: str | None = None, **overrides: Any):
        import diffusers

        config = self.json("scheduler/scheduler_config.json")
        if prediction_type:
            config["prediction_type"] = prediction_type
        config.update(overrides)
        return getattr(diffusers, config["_class_name"]).from_config(config)


def family_config(family: str, prediction_type: str | None = None) -> FamilyConfig:
    return FamilyConfig(family, config_name(family, prediction_type))


@lru_cache(maxsize=64)
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return load_json_file(path, "family config")
    except (OSError, UserError) as exc:
        raise ModelLoadError(f"The app's family config {path} is missing or broken ({exc.__class__.__name__}); "
                             "reinstall the app") from None


def _tokenizer(config_path: Path):
    # A fresh tokenizer per model (0.3 s): textual-inversion tokens are added to a model's own tokenizer.
    from transformers import CLIPTokenizer

    vocab = resources_dir() / "tokenizer"
    options = {k: v for k, v in _read_json(config_path).items() if k != "tokenizer_class"}
    try:
        return CLIPTokenizer(vocab=str(vocab / "vocab.json"), merges=str(vocab / "merges.txt"), **options)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"The app's CLIP vocabulary in {vocab} is missing or broken; reinstall the app "
                             f"({exc.__class__.__name__})") from None
