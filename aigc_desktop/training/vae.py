"""VAE trainer (ELBO: reconstruction + KL) for two networks:

    arch="morph"  the one-vector-per-image MorphVAE used for latent morphs (engines.vae_morph)
    arch="kl"     a diffusers AutoencoderKL with a spatial latent (factor 2 by default): the VAE of a
                  diffusion model; exported as a diffusers folder with the latent scaling factor measured
                  on the data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.training.common import (EMA, TrainConfig, Trainer, batch_indices, image_grid,
                                          save_diffusers_fp16)


@dataclass
class VAEConfig(TrainConfig):
    arch: str = "morph"  # morph | kl
    lr: float = 1e-3
    kl_weight: float = 0.0  # 0 = the default of the arch (morph 0.01 per latent unit vs. pixel MSE; kl 1e-6)
    latent_dim: int = 128  # morph: size of the latent vector
    channels: str = ""  # comma-separated channel widths; "" = the default of the arch
    factor: int = 2  # kl: downsampling factor (a power of two)
    latent_channels: int = 4  # kl
    limit: int = 0  # use only the first N images (0 = all)

    def validate(self) -> None:
        super().validate()
        if self.arch not in ("morph", "kl"):
            raise UserError(f"Unknown VAE architecture '{self.arch}'; choose morph or kl")
        if self.factor < 1 or self.factor & (self.factor - 1) or self.factor > self.resolution // 4:
            raise UserError(f"VAE factor must be a power of two up to resolution/4, got {self.factor}")

    def channel_list(self) -> tuple[int, ...]:
        if self.channels:
            try:
                return tuple(int(c) for c in self.channels.split(","))
            except ValueError:
                raise UserError(f"Channels must be numbers separated by commas, got '{self.channels}'") from None
        if self.arch == "kl":
            return (32, 64, 128, 128)[: int(math.log2(self.factor)) + 1]
        stages = int(math.log2(self.resolution // 4))
        return tuple(min(32 * 2 ** i, 128) for i in range(stages))


def build_kl_vae(resolution: int, channels: tuple[int, ...], latent_channels: int = 4):
    """A diffusers AutoencoderKL with len(channels)-1 downsamplings and no attention (cheap at 64 px)."""
    from diffusers import AutoencoderKL

    groups = math.gcd(*channels, 16)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                         down_block_types=("DownEncoderBlock2D",) * len(channels),
                         up_block_types=("UpDecoderBlock2D",) * len(channels),
                         block_out_channels=channels, layers_per_block=1, norm_num_groups=groups,
                         sample_size=resolution, mid_block_add_attention=False, force_upcast=False)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over latent elements, one value per image."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(4.0 / mse)


class VAETrainer(Trainer):
    kind = "vae"
    config_class = VAEConfig

    config: VAEConfig

    def setup(self) -> None:
        cfg = self.config
        self.read_data(limit=cfg.limit)
        channels = cfg.channel_list()
        if cfg.arch == "morph":
            from aigc_desktop.engines.vae_morph import MorphVAE, MorphVAEConfig

            try:
                self.net = MorphVAE(MorphVAEConfig(cfg.resolution, cfg.latent_dim, channels))
            except ValueError as exc:
                raise UserError(str(exc)) from None
            self.kl_weight = cfg.kl_weight or 0.01
        else:
            torch.manual_seed(cfg.seed)
            self.net = build_kl_vae(cfg.resolution, channels, cfg.latent_channels)
            self.kl_weight = cfg.kl_weight or 1e-6
        self.net.to(self.device).train()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
        self.emas = {"net": EMA(self.net, cfg.ema_decay)}
        # Fixed images for sample grids and an evenly spread subset for the figures written at export.
        self.fixed = torch.linspace(0, len(self.images) - 1, min(8, len(self.images))).long()
        self.measured = torch.linspace(0, len(self.images) - 1, min(256, len(self.images))).long()

    def models(self):
        return {"net": self.net}

    def optimizers(self):
        return {"opt": self.opt}

    def _forward(self, net, x: torch.Tensor, sample: bool):
        if self.config.arch == "morph":
            mu, logvar = net.encode(x)
            z = mu + self.randn(*mu.shape) * torch.exp(0.5 * logvar) if sample else mu
            return net.decode(z), mu, logvar
        dist = net.encode(x).latent_dist
        z = dist.mean + self.randn(*dist.mean.shape) * dist.std if sample else dist.mean
        return net.decode(z).sample, dist.mean, dist.logvar

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        idx = batch_indices(self.step, len(self.images), cfg.batch, cfg.seed)
        x = self.images[idx.to(self.device)]
        with self.autocast():
            recon, mu, logvar = self._forward(self.net, x, sample=True)
        mse = F.mse_loss(recon.float(), x)
        kl = kl_divergence(mu.float(), logvar.float()).mean() / x[0].numel()
        loss = mse + self.kl_weight * kl
        if cfg.arch == "kl":
            loss = loss + 0.1 * F.l1_loss(recon.float(), x)  # L1 sharpens edges on top of the MSE
        self.backward_step(loss, self.opt, self.net.parameters())
        self.emas["net"].update(self.net)
        return {"loss": loss.item(), "mse": mse.item(), "kl": kl.item()}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(self.emas["net"].model, x, sample=False)[0].clamp(-1, 1)

    @torch.no_grad()
    def sample(self) -> Image.Image:
        x = self.images[self.fixed.to(self.device)]
        rows = [x, self.reconstruct(x)]
        if self.config.arch == "morph":
            net = self.emas["net"].model
            g = torch.Generator("cpu").manual_seed(1234)
            z = torch.randn(len(x), net.config.latent_dim, generator=g).to(self.device)
            rows.append(net.decode(z))
        return image_grid(torch.cat(rows), columns=len(x))

    @torch.no_grad()
    def measure_psnr(self, batch: int = 64) -> float:
        """Mean reconstruction PSNR (EMA weights, latent means) over the measured subset."""
        images = self.images[self.measured.to(self.device)]
        values = [psnr(self.reconstruct(images[i:i + batch]), images[i:i + batch]) for i in range(0, len(images), batch)]
        return float(torch.cat(values).mean())

    @torch.no_grad()
    def latent_scale(self, batch: int = 64) -> float:
        """1 / std of the latents over the data: diffusion trains on unit-variance latents."""
        net = self.emas["net"].model
        images = self.images[self.measured.to(self.device)]
        latents = torch.cat([net.encode(images[i:i + batch]).latent_dist.mean for i in range(0, len(images), batch)])
        return float(1.0 / latents.float().std().clamp_min(1e-6))

    def export(self, folder: Path) -> Path:
        net = self.emas["net"].model
        info = {"trained_steps": self.step, "psnr_db": round(self.measure_psnr(), 2)}
        if self.config.arch == "morph":
            from aigc_desktop.engines.vae_morph import save_morph_vae

            return save_morph_vae(net, folder, extra=info)
        net.register_to_config(scaling_factor=self.latent_scale())
        save_diffusers_fp16(net, folder)
        (folder / "training.json").write_text(json.dumps(info), encoding="utf-8")
        return folder
