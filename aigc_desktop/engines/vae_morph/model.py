"""The morph VAE network, its folder format, and latent interpolation.

Encoder: stride-2 convolutions down to 4 x 4, then linear layers to the mean and log-variance of a latent
vector. Decoder: a linear layer back to 4 x 4 features, then upsample + convolution stages to the image.
A single latent vector (rather than a spatial latent map) is what makes morphs change shape instead of
cross-fading pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from aigc_desktop.core.errors import ModelLoadError, UserError, first_line
from aigc_desktop.core.safe_io import load_json_file
from aigc_desktop.core.safetensors_header import read_header
from aigc_desktop.core.interpolate import lerp, slerp  # noqa: F401 - the one implementation, re-exported

CONFIG_NAME = "vae_morph.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class MorphVAEConfig:
    resolution: int = 64
    latent_dim: int = 128
    channels: tuple[int, ...] = (32, 64, 128, 128)  # one per stride-2 stage, resolution -> 4
    format: str = "aigc-vae-morph"
    version: int = 1

    def __post_init__(self) -> None:
        stages = int(math.log2(self.resolution // 4))
        if self.resolution < 8 or 4 * 2 ** stages != self.resolution or len(self.channels) != stages:
            raise ValueError(f"resolution {self.resolution} needs {stages} channel entries (got {len(self.channels)})")

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict) -> "MorphVAEConfig":
        known = {"resolution", "latent_dim", "channels", "format", "version"}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["channels"] = tuple(kwargs.get("channels", cls.channels))
        return cls(**kwargs)


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch), ch)


class MorphVAE(nn.Module):
    def __init__(self, config: MorphVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or MorphVAEConfig()
        ch = self.config.channels
        enc: list[nn.Module] = []
        prev = 3
        for c in ch:
            enc += [nn.Conv2d(prev, c, 4, stride=2, padding=1), _norm(c), nn.SiLU(),
                    nn.Conv2d(c, c, 3, padding=1), _norm(c), nn.SiLU()]
            prev = c
        self.encoder = nn.Sequential(*enc)
        flat = ch[-1] * 16
        self.fc_mu = nn.Linear(flat, self.config.latent_dim)
        self.fc_logvar = nn.Linear(flat, self.config.latent_dim)
        self.fc_dec = nn.Linear(self.config.latent_dim, flat)
        dec: list[nn.Module] = []
        rev = list(reversed(ch))
        for i, c in enumerate(rev):
            nxt = rev[i + 1] if i + 1 < len(rev) else rev[-1]
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, nxt, 3, padding=1), _norm(nxt), nn.SiLU(),
                    nn.Conv2d(nxt, nxt, 3, padding=1), _norm(nxt), nn.SiLU()]
        dec += [nn.Conv2d(rev[-1], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1] (N x 3 x R x R) -> latent mean and log-variance (N x latent_dim)."""
        h = self.encoder(images).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h).clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [-1, 1]."""
        h = self.fc_dec(z).view(z.shape[0], self.config.channels[-1], 4, 4)
        return torch.tanh(self.decoder(h))

    def forward(self, images: torch.Tensor, noise: torch.Tensor | None = None):
        mu, logvar = self.encode(images)
        z = mu if noise is None else mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def check_config(data: object, label: str) -> dict:
    """The fields of a vae_morph.json that size the network: whole numbers in sane ranges (a forged file
    never builds a network of terabytes); one ModelLoadError naming the field and the file."""
    if not isinstance(data, dict):
        raise ModelLoadError(f"{label} is not a JSON object")
    res, latent, channels = data.get("resolution", 64), data.get("latent_dim", 128), data.get("channels", [32])
    if not isinstance(res, int) or isinstance(res, bool) or not 8 <= res <= 1024:
        raise ModelLoadError(f"{label}: resolution must be a whole number between 8 and 1024, got {str(res)[:24]!r}")
    if not isinstance(latent, int) or isinstance(latent, bool) or not 1 <= latent <= 8192:
        raise ModelLoadError(f"{label}: latent_dim must be a whole number between 1 and 8192, got {str(latent)[:24]!r}")
    if not isinstance(channels, list) or not 1 <= len(channels) <= 10 or not all(
            isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 4096 for c in channels):
        raise ModelLoadError(f"{label}: channels must be a list of whole numbers between 1 and 4096, "
                             f"got {str(channels)[:40]}")
    return data


def save_morph_vae(model: MorphVAE, folder: str | Path, dtype: torch.dtype = torch.float16,
                   extra: dict | None = None) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "aigc-vae-morph"})
    (folder / CONFIG_NAME).write_text(json.dumps({**model.config.to_dict(), **(extra or {})}, indent=1),
                                      encoding="utf-8")
    return folder


def load_morph_vae(folder: str | Path, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> MorphVAE:
    """Load a morph VAE folder; a missing or mismatched file raises ModelLoadError with one line."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        data = load_json_file(folder / CONFIG_NAME, f"{folder.name}/{CONFIG_NAME}", max_bytes=1024 * 1024)
        config = MorphVAEConfig.from_dict(check_config(data, f"{folder.name}/{CONFIG_NAME}"))
        read_header(folder / WEIGHTS_NAME)  # regular file, bounded and schema-checked, before reading
        model = MorphVAE(config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    except ModelLoadError:
        raise
    except UserError as exc:
        raise ModelLoadError(f"Could not load morph VAE {folder.name}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"Could not load morph VAE {folder.name}: {first_line(exc)}") from None
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
