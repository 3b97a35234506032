"""Text-to-image diffusion trainer that writes a diffusers Stable Diffusion folder.

The model is a small SD-1.x-shaped pipeline: the real CLIP BPE tokenizer, a shallow CLIPTextModel, a
UNet2DConditionModel and an AutoencoderKL (factor 2 by default: 64 x 64 images from 32 x 32 latents), so
it loads through exactly the code path of users' models. Objective: v-prediction MSE with min-SNR-gamma
weighting; captions are dropped at random (classifier-free guidance) and sometimes shortened to their main
word (so "heart" alone finds the hearts). The UNet also adds a pooled text embedding to its timestep
embedding (diffusers' addition_embed_type="text"), which learns prompts much faster than cross-attention
alone on a small budget.

Stages: without --set vae=DIR (or init=DIR) the trainer first trains the VAE (stage 1, in OUT/vae_stage),
then freezes it, caches the latents of every image and trains the UNet and text encoder (stage 2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from aigc_desktop.core import paths
from aigc_desktop.core.errors import UserError, first_line
from aigc_desktop.training.common import (EMA, TrainConfig, Trainer, batch_indices, image_grid,
                                          save_diffusers_fp16)
from aigc_desktop.training.dataset import main_word, word_counts

CAPTIONS_FILE = "trained_captions.txt"
SAMPLE_PROMPTS = ("red apple", "cat face", "sun", "heart")


@dataclass
class DiffusionConfig(TrainConfig):
    lr: float = 3e-4
    text_lr_scale: float = 3.0  # the text encoder (mostly an embedding table) learns faster
    warmup: int = 200
    vae: str = ""  # a trained AutoencoderKL folder (frozen); "" = train one first (stage 1)
    vae_steps: int = 2000
    vae_channels: str = ""  # stage-1 VAE widths, e.g. "32,64" (factor 2); "" = the VAE trainer's default
    init: str = ""  # start from this pipeline folder (fine-tuning; its VAE and tokenizer are used)
    tokenizer: str = ""  # folder with vocab.json + merges.txt; "" = the app's CLIP tokenizer; "bytes" = byte-level
    unet_channels: str = "32,64,128"
    layers_per_block: int = 1
    attention_heads: int = 4
    text_width: int = 64
    text_layers: int = 1
    prediction: str = "v_prediction"  # v_prediction | epsilon
    snr_gamma: float = 5.0  # 0 = plain MSE
    caption_dropout: float = 0.1
    caption_word: float = 0.1  # probability of training on the caption's main word only
    sample_steps: int = 20
    sample_cfg: float = 4.0

    def validate(self) -> None:
        super().validate()
        if self.prediction not in ("v_prediction", "epsilon"):
            raise UserError(f"Unknown prediction type '{self.prediction}'; choose v_prediction or epsilon")
        for name in ("caption_dropout", "caption_word"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{name} must be between 0 and 1")

    def channels(self) -> tuple[int, ...]:
        try:
            return tuple(int(c) for c in self.unet_channels.split(","))
        except ValueError:
            raise UserError(f"unet_channels must be numbers separated by commas, got '{self.unet_channels}'") from None


# ------------------------------------------------------------------------------------------ components


def load_tokenizer(folder: str = ""):
    """The CLIP BPE tokenizer from a folder with vocab.json + merges.txt (default: resources/tokenizer).

    "bytes" gives the byte-level test tokenizer (514 tokens; tests and quick experiments)."""
    from transformers import CLIPTokenizer

    if folder == "bytes":
        from aigc_desktop.engines.diffusion.tokenizers import byte_level_tokenizer

        return byte_level_tokenizer()

    src = Path(folder) if folder else paths.resources_dir() / "tokenizer"
    for sub in (src, src / "tokenizer"):
        if (sub / "vocab.json").is_file() and (sub / "merges.txt").is_file():
            return CLIPTokenizer(str(sub / "vocab.json"), str(sub / "merges.txt"), model_max_length=77)
        if (sub / "tokenizer_config.json").is_file():  # a saved pipeline's tokenizer/ folder
            return CLIPTokenizer.from_pretrained(str(sub), local_files_only=True)
    raise UserError(f"No CLIP tokenizer (vocab.json + merges.txt) in {src}")


def save_tokenizer_files(tokenizer, folder: Path) -> None:
    """The tokenizer as SD's own folders ship it: vocab.json + merges.txt + tokenizer_config.json (1.4 MB)
    instead of the 3.6 MB tokenizer.json that save_pretrained writes."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    (folder / "tokenizer.json").unlink(missing_ok=True)


def build_text_encoder(tokenizer, width: int, layers: int, heads: int = 4):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=width * 4,
                            num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id, projection_dim=width, hidden_act="quick_gelu")
    return CLIPTextModel(config)


def build_unet(latent_size: int, latent_channels: int, channels: tuple[int, ...], text_width: int,
               layers_per_block: int = 1, heads: int = 4):
    """Plain convolution blocks at full latent resolution, cross-attention below it, pooled text added to the
    timestep embedding."""
    from diffusers import UNet2DConditionModel

    n = len(channels)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1)
    up = ("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=latent_channels, out_channels=latent_channels,
        layers_per_block=layers_per_block, block_out_channels=channels, down_block_types=down, up_block_types=up,
        cross_attention_dim=text_width, attention_head_dim=heads, norm_num_groups=math.gcd(*channels, 32),
        addition_embed_type="text", addition_embed_type_num_heads=heads)


def noise_scheduler(prediction: str):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", prediction_type=prediction, clip_sample=False)


def inference_scheduler(prediction: str):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="scaled_linear", prediction_type=prediction,
                                  timestep_spacing="trailing", steps_offset=1)


def make_pipeline(unet, text_encoder, tokenizer, vae, prediction: str):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=inference_scheduler(prediction), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --------------------------------------------------------------------------------------------- trainer


class DiffusionTrainer(Trainer):
    kind = "diffusion"
    config_class = DiffusionConfig

    config: DiffusionConfig

    # -- stage 1
    def _vae_folder(self) -> Path:
        cfg = self.config
        if cfg.vae:
            return Path(cfg.vae)
        if cfg.init:
            return Path(cfg.init) / "vae"
        from aigc_desktop.training.vae import VAEConfig, VAETrainer

        stage = self.out / "vae_stage"
        done = stage / "model" / "config.json"
        trained = 0
        if done.is_file() and (stage / "model" / "training.json").is_file():
            from aigc_desktop.core.safe_io import MiB, load_json_file

            state = load_json_file(stage / "model" / "training.json", "VAE stage's training.json", max_bytes=MiB)
            trained = state.get("trained_steps") if isinstance(state, dict) else None
            if isinstance(trained, bool) or not isinstance(trained, int):
                trained = 0  # unreadable bookkeeping: train the stage again
        if trained < cfg.vae_steps:
            self.status("Stage 1: training the VAE…")
            vae_cfg = VAEConfig(data=cfg.data, out=str(stage), resolution=cfg.resolution, steps=cfg.vae_steps,
                                batch=min(cfg.batch, 16), lr=5e-4, seed=cfg.seed, device=cfg.device,
                                threads=cfg.threads, sample_every=cfg.sample_every,
                                checkpoint_every=cfg.checkpoint_every, arch="kl", channels=cfg.vae_channels,
                                resume=(stage / "checkpoint.pt").is_file())
            VAETrainer(vae_cfg, self.hooks).run()
        return stage / "model"

    # -- stage 2
    def setup(self) -> None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        cfg = self.config
        vae_dir = self._vae_folder()
        self.status("Stage 2: preparing the UNet and text encoder…")
        try:
            self.vae = AutoencoderKL.from_pretrained(str(vae_dir), torch_dtype=torch.float32).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"Cannot load the VAE from {vae_dir}: {first_line(exc)}") from None
        self.vae.requires_grad_(False)
        self.vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if cfg.resolution % self.vae_factor:
            raise UserError(f"Resolution {cfg.resolution} is not a multiple of the VAE factor {self.vae_factor}")
        latent_size = cfg.resolution // self.vae_factor
        torch.manual_seed(cfg.seed)
        if cfg.init:
            self.tokenizer = load_tokenizer(str(Path(cfg.init) / "tokenizer"))
            self.unet = UNet2DConditionModel.from_pretrained(cfg.init, subfolder="unet", torch_dtype=torch.float32)
            self.text_encoder = CLIPTextModel.from_pretrained(cfg.init, subfolder="text_encoder",
                                                              dtype=torch.float32)
        else:
            self.tokenizer = load_tokenizer(cfg.tokenizer)
            self.text_encoder = build_text_encoder(self.tokenizer, cfg.text_width, cfg.text_layers)
            self.unet = build_unet(latent_size, self.vae.config.latent_channels, cfg.channels(), cfg.text_width,
                                   cfg.layers_per_block, cfg.attention_heads)
        self.unet.to(self.device).train()
        self.text_encoder.to(self.device).train()
        self.scheduler = noise_scheduler(cfg.prediction)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(self.device)
        self.opt = torch.optim.AdamW([
            {"params": list(self.unet.parameters()), "lr": cfg.lr, "base_lr": cfg.lr},
            {"params": list(self.text_encoder.parameters()), "lr": cfg.lr * cfg.text_lr_scale,
             "base_lr": cfg.lr * cfg.text_lr_scale},
        ], betas=(0.9, 0.99), weight_decay=0.0)
        self.emas = {"unet": EMA(self.unet, cfg.ema_decay), "text_encoder": EMA(self.text_encoder, cfg.ema_decay)}
        self._cache_data()

    def _tokens(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids

    @torch.no_grad()
    def _cache_data(self) -> None:
        cfg = self.config
        data = self.read_data()
        self.status("Encoding the images to latents…")
        means, stds = [], []
        for i in range(0, len(self.images), 64):
            dist = self.vae.encode(self.images[i:i + 64]).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
        self.latent_mean = torch.cat(means).float()
        self.latent_std = torch.cat(stds).float()
        self.scaling = float(self.vae.config.scaling_factor)
        self.captions = data.captions
        counts = word_counts(self.captions)
        self.ids_full = self._tokens(self.captions).to(self.device)
        self.ids_word = self._tokens([main_word(c, counts) if c else "" for c in self.captions]).to(self.device)
        self.ids_empty = self._tokens([""]).to(self.device)
        self.sample_prompts = list(SAMPLE_PROMPTS) + [c for c in dict.fromkeys(self.captions) if c][:4]

    def models(self):
        return {"unet": self.unet, "text_encoder": self.text_encoder}

    def optimizers(self):
        return {"opt": self.opt}

    def _set_lr(self) -> None:
        scale = min(1.0, (self.step + 1) / max(1, self.config.warmup))
        for group in self.opt.param_groups:
            group["lr"] = group["base_lr"] * scale

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        idx = batch_indices(self.step, len(self.captions), cfg.batch, cfg.seed).to(self.device)
        b = len(idx)
        latents = (self.latent_mean[idx] + self.latent_std[idx] * self.randn(*self.latent_mean[idx].shape)) \
            * self.scaling
        # Caption choice per image: dropped (empty), main word only, or the whole caption.
        u = self.rand(b)
        ids = torch.where((u < cfg.caption_dropout)[:, None], self.ids_empty.expand(b, -1),
                          torch.where((u < cfg.caption_dropout + cfg.caption_word)[:, None], self.ids_word[idx],
                                      self.ids_full[idx]))
        noise = self.randn(*latents.shape)
        t = self.randint(self.scheduler.config.num_train_timesteps, b).to(self.device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        target = self.scheduler.get_velocity(latents, noise, t) if cfg.prediction == "v_prediction" else noise
        self._set_lr()
        with self.autocast():
            text = self.text_encoder(ids)[0]
            pred = self.unet(noisy, t, encoder_hidden_states=text).sample
        mse = F.mse_loss(pred.float(), target.float(), reduction="none").flatten(1).mean(1)
        if cfg.snr_gamma > 0:
            a = self.alphas_cumprod[t]
            snr = a / (1 - a)
            weight = snr.clamp(max=cfg.snr_gamma) / (snr + 1 if cfg.prediction == "v_prediction" else snr)
            loss = (weight * mse).mean()
        else:
            loss = mse.mean()
        params = list(self.unet.parameters()) + list(self.text_encoder.parameters())
        self.backward_step(loss, self.opt, params)
        self.emas["unet"].update(self.unet)
        self.emas["text_encoder"].update(self.text_encoder)
        return {"loss": loss.item(), "mse": mse.mean().item()}

    def pipeline(self):
        """The EMA weights as a StableDiffusionPipeline (what the app will load)."""
        return make_pipeline(self.emas["unet"].model, self.emas["text_encoder"].model, self.tokenizer, self.vae,
                             self.config.prediction)

    @torch.no_grad()
    def generate(self, prompts: list[str], seed: int = 0, steps: int | None = None,
                 cfg_scale: float | None = None) -> list[Image.Image]:
        pipe = self.pipeline()
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(len(prompts))]
        size = self.config.resolution
        return pipe(list(prompts), height=size, width=size, num_inference_steps=steps or self.config.sample_steps,
                    guidance_scale=cfg_scale or self.config.sample_cfg, generator=generators).images

    def sample(self) -> Image.Image:
        return image_grid(self.generate(self.sample_prompts), columns=len(self.sample_prompts))

    def export(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        pipe = self.pipeline()
        save_diffusers_fp16(pipe, folder)
        save_tokenizer_files(self.tokenizer, folder / "tokenizer")
        names = sorted({c for c in self.captions if c})
        (folder / CAPTIONS_FILE).write_text("".join(n + "\n" for n in names), encoding="utf-8")
        (folder / "training.json").write_text(json.dumps({"trained_steps": self.step, "images": len(self.captions),
                                                          "seconds": round(self.elapsed)}), encoding="utf-8")
        return folder
