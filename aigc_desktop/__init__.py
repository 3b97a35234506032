"""AIGC Desktop: an offline studio for diffusion, StyleGAN and VAE image generation.

Importing the package loads neither torch nor Qt. It does pin the Hugging Face libraries to offline
mode, because every entry point (CLI, app, tests, benchmarks) imports this package before them and
the flags are only honoured when set before diffusers / transformers / huggingface_hub are imported.
"""

import os as _os

__version__ = "0.1.0"

# Offline, always: the app never downloads. These must be set before any HF library is imported.
for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY",
             "DISABLE_TELEMETRY", "DO_NOT_TRACK"):
    _os.environ[_key] = "1"
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
