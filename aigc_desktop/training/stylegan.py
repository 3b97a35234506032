"""StyleGAN2 trainer (Karras et al. 2020) for the StyleGAN engine's Generator, written from the papers.

    G          engines.stylegan.Generator (NVIDIA-compatible names), saved in our safetensors + json format
    D          a residual discriminator with minibatch standard deviation (paper, figure 7 / appendix), built
               from the engine's equalized-learning-rate layers; training only, never exported
    losses     non-saturating logistic loss; R1 gradient penalty on reals, lazily every `r1_every` steps
               (scaled by the interval, with Adam's lr and betas adjusted as in the paper's lazy regularization)
    extras     style mixing regularization, an EMA generator (what is exported), x-flips of the data, and
               differentiable augmentation (colour + translation, Zhao et al. 2020) on everything D sees, which
               keeps D from memorising a few thousand images
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.training.common import EMA, TrainConfig, Trainer, batch_indices, image_grid


@dataclass
class StyleGANConfig(TrainConfig):
    lr: float = 0.0025
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    channel_base: int = 1024  # channels = min(channel_base / resolution, channel_max): 16 at 64 px, 64 at 16
    channel_max: int = 128
    r1_gamma: float = 0.1
    r1_every: int = 16
    style_mixing: float = 0.9
    augment: str = "color,translation"  # "" = none
    mirror: bool = True
    ema_decay: float = 0.998

    def validate(self) -> None:
        super().validate()
        if self.resolution < 8:
            raise UserError("StyleGAN needs a resolution of at least 8")
        unknown = set(filter(None, self.augment.split(","))) - {"color", "translation", "cutout"}
        if unknown:
            raise UserError(f"Unknown augmentation(s): {', '.join(sorted(unknown))}; use color, translation, cutout")


# ----------------------------------------------------------------------------------------- discriminator


class DiscriminatorBlock(torch.nn.Module):
    """Two 3x3 convolutions (the second halves the size) plus a 1x1 down-sampling shortcut, summed * sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        from aigc_desktop.engines.stylegan.stylegan2 import Conv2dLayer

        self.conv0 = Conv2dLayer(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, activation="lrelu", down=2)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class Discriminator(torch.nn.Module):
    def __init__(self, resolution: int, channel_base: int = 1024, channel_max: int = 128, mbstd_group: int = 4) -> None:
        super().__init__()
        from aigc_desktop.engines.stylegan.mapping import FullyConnectedLayer
        from aigc_desktop.engines.stylegan.stylegan2 import Conv2dLayer

        def ch(res: int) -> int:
            return min(channel_base // res, channel_max)

        self.resolution = resolution
        self.mbstd_group = mbstd_group
        self.fromrgb = Conv2dLayer(3, ch(resolution), 1, activation="lrelu")
        blocks = []
        res = resolution
        while res > 4:
            blocks.append(DiscriminatorBlock(ch(res), ch(res // 2)))
            res //= 2
        self.blocks = torch.nn.Sequential(*blocks)
        c4 = ch(4)
        self.conv = Conv2dLayer(c4 + 1, c4, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation="lrelu")
        self.out = FullyConnectedLayer(c4, 1)

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """Append the standard deviation across groups of samples as one feature map (paper: ProGAN)."""
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[1, 2, 3])
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.fromrgb(img))
        x = self.conv(self.minibatch_std(x))
        return self.out(self.fc(x.flatten(1)))


# --------------------------------------------------------------------------------------------- augment


def diff_augment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """Differentiable augmentation: the same kinds of random change for real and generated images."""
    n = x.shape[0]

    def r(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(x.device)

    for name in filter(None, policy.split(",")):
        if name == "color":
            x = x + (r(n, 1, 1, 1) - 0.5)  # brightness
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (r(n, 1, 1, 1) * 2) + mean  # saturation
            mean = x.mean(dim=[1, 2, 3], keepdim=True)
            x = (x - mean) * (r(n, 1, 1, 1) + 0.5) + mean  # contrast
        elif name == "translation":
            size = x.shape[2]
            shift = int(size * 0.125 + 0.5)
            tx = (r(n) * (2 * shift + 1)).long() - shift
            ty = (r(n) * (2 * shift + 1)).long() - shift
            grid_y, grid_x = torch.meshgrid(torch.arange(size, device=x.device), torch.arange(size, device=x.device),
                                            indexing="ij")
            gx = (grid_x[None] + tx[:, None, None]).clamp(-1, size)
            gy = (grid_y[None] + ty[:, None, None]).clamp(-1, size)
            padded = F.pad(x, [1, 1, 1, 1])
            idx = (gy + 1) * (size + 2) + (gx + 1)
            x = padded.flatten(2).gather(2, idx.flatten(1)[:, None, :].expand(-1, x.shape[1], -1)).view_as(x)
        elif name == "cutout":
            size = x.shape[2]
            cut = size // 2
            cx = (r(n) * (size + 1 - cut % 2)).long()
            cy = (r(n) * (size + 1 - cut % 2)).long()
            grid_y, grid_x = torch.meshgrid(torch.arange(size, device=x.device), torch.arange(size, device=x.device),
                                            indexing="ij")
            inside = ((grid_x[None] - cx[:, None, None]).abs() < cut // 2) & \
                     ((grid_y[None] - cy[:, None, None]).abs() < cut // 2)
            x = x * (~inside)[:, None].to(x.dtype)
    return x


# -------------------------------------------------------------------------------------------- trainer


class StyleGANTrainer(Trainer):
    kind = "stylegan"
    config_class = StyleGANConfig

    config: StyleGANConfig

    def setup(self) -> None:
        from aigc_desktop.engines.stylegan.generator import Generator

        cfg = self.config
        self.read_data()
        torch.manual_seed(cfg.seed)
        self.G = Generator(cfg.z_dim, 0, cfg.w_dim, cfg.resolution, 3,
                           mapping_kwargs={"num_layers": cfg.mapping_layers},
                           synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                                             "architecture": "skip", "num_fp16_res": 0, "conv_clamp": None})
        self.D = Discriminator(cfg.resolution, cfg.channel_base, cfg.channel_max)
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        # Lazy regularization (paper, appendix B): D's lr and betas scaled for the reg interval.
        c = cfg.r1_every / (cfg.r1_every + 1)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.0, 0.99), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99 ** c), eps=1e-8)
        self.emas = {"G": EMA(self.G, cfg.ema_decay)}
        self.sample_z = torch.from_numpy(np.random.RandomState(cfg.seed + 7).randn(32, cfg.z_dim)).float()

    def models(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_g, "D": self.opt_d}

    def _reals(self) -> torch.Tensor:
        cfg = self.config
        idx = batch_indices(self.step, len(self.images), cfg.batch, cfg.seed).to(self.device)
        x = self.images[idx]
        if cfg.mirror:
            flip = self.rand(len(idx)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def _fakes(self, n: int) -> torch.Tensor:
        cfg = self.config
        z = self.randn(n, cfg.z_dim)
        ws = self.G.mapping(z, None, update_emas=True)
        if cfg.style_mixing > 0 and float(self.rand(1)) < cfg.style_mixing:
            cutoff = int(self.randint(ws.shape[1] - 1, 1)) + 1
            ws2 = self.G.mapping(self.randn(n, cfg.z_dim), None)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws, noise_mode="random", generator=self.generator)

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(diff_augment(x, self.config.augment, self.generator) if self.config.augment else x)

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        reals = self._reals()
        n = reals.shape[0]
        # Generator: non-saturating loss softplus(-D(G(z))).
        self.D.requires_grad_(False)
        with self.autocast():
            loss_g = F.softplus(-self._d(self._fakes(n))).mean()
        self.backward_step(loss_g, self.opt_g, None, clip=0)
        self.D.requires_grad_(True)
        # Discriminator: softplus(D(G(z))) + softplus(-D(x)).
        with torch.no_grad():
            fakes = self._fakes(n)
        with self.autocast():
            loss_d = F.softplus(self._d(fakes)).mean() + F.softplus(-self._d(reals)).mean()
        losses = {"loss_g": loss_g.item(), "loss_d": loss_d.item()}
        if cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0:
            x = reals.detach().requires_grad_(True)
            score = self._d(x)
            (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (cfg.r1_gamma / 2) * cfg.r1_every
            losses["r1"] = r1.item()
        self.backward_step(loss_d, self.opt_d, None, clip=0)
        self.emas["G"].update(self.G)
        return losses

    @torch.no_grad()
    def sample(self) -> Image.Image:
        G = self.emas["G"].model
        imgs = G(self.sample_z.to(self.device), None, noise_mode="const")
        return image_grid(imgs, columns=8)

    def export(self, folder: Path) -> Path:
        return save_generator(self.emas["G"].model, folder,
                              source={"trainer": "aigc-desktop train stylegan", "steps": self.step,
                                      "images": int(len(self.images))})


def save_generator(G, folder: Path, source: dict | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Our StyleGAN format (engines.stylegan.loaders.save_ours), with the floating-point weights in fp16."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from aigc_desktop.engines.stylegan.loaders import WEIGHTS_FILE, save_ours

    out = save_ours(G, folder, source)
    path = out / WEIGHTS_FILE
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(path), metadata=metadata)
    return out


def generate_images(model: str | Path, count: int, psi: float = 1.0) -> list[Image.Image]:
    """`count` images at seeds 0..count-1 (z as NVIDIA's generate.py draws it), constant noise."""
    from aigc_desktop.engines.stylegan.loaders import load_generator
    from aigc_desktop.engines.stylegan.sampling import to_pil, z_from_seed

    G = load_generator(model).G.eval()
    images: list[Image.Image] = []
    with torch.no_grad():
        for start in range(0, count, 64):
            seeds = range(start, min(count, start + 64))
            z = torch.from_numpy(np.concatenate([z_from_seed(s, G.z_dim) for s in seeds])).float()
            images += to_pil(G(z, None, truncation_psi=psi, noise_mode="const"))
    return images
