"""What every trainer shares: configuration, seeds, EMA, exact checkpoint/resume, loss log, sample grids and
the training loop (tqdm on the command line, hooks for the app's worker).

A run folder holds:
    checkpoint.pt    everything needed to continue exactly (models, optimizers, EMA, RNG states, step);
                     written atomically, read back with torch.load(weights_only=True)
    losses.jsonl     one line per logged step: {"step": n, "loss": ..., ...}
    samples/         step_000500.png grids
    model/           the exported model in the app's format (refreshed at every checkpoint)
    config.json      the configuration of the run
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from aigc_desktop.core.errors import CancelRequested, UserError, first_line
from aigc_desktop.training.runfiles import CHECKPOINT, LOSSES, MODEL_DIR, SAMPLES_DIR, read_losses

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Options common to every trainer; each trainer adds its own fields in a subclass."""

    data: str = ""
    out: str = ""
    resolution: int = 64
    steps: int = 1000
    batch: int = 32
    lr: float = 2e-4
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = automatic
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    ema_decay: float = 0.999
    resume: bool = False

    def validate(self) -> None:
        if not self.data:
            raise UserError("No data folder given (--data DIR)")
        if not self.out:
            raise UserError("No output folder given (--out DIR)")
        if self.resolution < 8 or self.resolution > 1024 or self.resolution & (self.resolution - 1):
            raise UserError(f"Resolution must be a power of two between 8 and 1024, got {self.resolution}")
        if self.steps < 1:
            raise UserError(f"Steps must be at least 1, got {self.steps}")
        if self.batch < 1:
            raise UserError(f"Batch size must be at least 1, got {self.batch}")
        if not (0.0 < self.lr < 1.0):
            raise UserError(f"Learning rate must be between 0 and 1, got {self.lr}")
        if not Path(self.data).is_dir():
            raise UserError(f"Data folder not found: {self.data}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, **options: Any):
        """Build from keyword options, rejecting unknown names with one clear line."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise UserError(f"Unknown training option(s): {', '.join(unknown)}")
        return cls(**options)


@dataclass
class Hooks:
    """How a trainer reports to its caller (the app's engine); all optional."""

    step: Callable[[int, int, dict[str, float]], None] | None = None  # step, total, smoothed losses
    sample: Callable[[int, Image.Image], None] | None = None  # step, sample grid
    status: Callable[[str], None] | None = None
    cancelled: Callable[[], bool] | None = None
    progress_bar: bool = False  # tqdm on stderr (command line)


# ------------------------------------------------------------------------------------------- helpers


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators and return the CPU generator that draws all training randomness."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return torch.Generator("cpu").manual_seed(seed)


def pick_device(preference: str) -> torch.device:
    from aigc_desktop.engines.device import resolve_device

    return resolve_device(preference)


class EMA:
    """Exponential moving average of a model's parameters (and a copy of its buffers), kept in float32."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        # Warm-up: early averages follow the model closely instead of remembering its random start.
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach().to(ema_p.dtype), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def image_grid(images: list[Image.Image] | torch.Tensor, columns: int = 8) -> Image.Image:
    """Images (PIL, or a float N x 3 x H x W tensor in [-1, 1]) side by side in rows of `columns`."""
    if isinstance(images, torch.Tensor):
        images = tensor_to_images(images)
    if not images:
        raise ValueError("no images for a grid")
    w, h = images[0].size
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    grid = Image.new("RGB", (columns * w, rows * h), (255, 255, 255))
    for i, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((i % columns) * w, (i // columns) * h))
    return grid


def tensor_to_images(batch: torch.Tensor) -> list[Image.Image]:
    array = ((batch.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).numpy()) for a in array]


def save_file_atomic(write: Callable[[Path], None], target: Path) -> None:
    """Write through a temporary file and rename (core.files.atomic_path), so an interrupted save never leaves
    a broken file."""
    from aigc_desktop.core.files import atomic_path

    with atomic_path(target) as tmp:
        write(tmp)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint: plain tensors and containers only (weights_only=True never runs code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here is a broken or foreign file
        raise UserError(f"Cannot resume from {path}: {first_line(exc)}") from None


@dataclass
class _Smoother:
    """Mean of each loss over the steps since the last log line."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1

    def take(self) -> dict[str, float]:
        out = {k: v / max(1, self.count) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return out


# ------------------------------------------------------------------------------------------- trainer


class Trainer:
    """The loop and the bookkeeping. Subclasses build their models in `setup` and implement `train_step`,
    `models` (name -> module for checkpoints), `optimizers`, `sample` and `export`."""

    kind = ""
    config_class: type[TrainConfig] = TrainConfig

    def __init__(self, config: TrainConfig, hooks: Hooks | None = None) -> None:
        config.validate()
        self.config = config
        self.hooks = hooks or Hooks()
        self.out = Path(config.out)
        self.step = 0
        self.device = pick_device(config.device)
        self.generator = seed_everything(config.seed)
        self.emas: dict[str, EMA] = {}
        self.elapsed = 0.0  # training seconds over all sessions (kept in the checkpoint)
        self._saved_step = -1
        self._scaler: torch.amp.GradScaler | None = None
        self.amp_dtype: torch.dtype | None = None
        if self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype == torch.float16:
                self._scaler = torch.amp.GradScaler("cuda")

    # -- to implement
    def setup(self) -> None:
        raise NotImplementedError

    def models(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self) -> dict[str, float]:
        raise NotImplementedError

    def sample(self) -> Image.Image:
        raise NotImplementedError

    def export(self, folder: Path) -> Path:
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # -- shared machinery
    def status(self, text: str) -> None:
        if self.hooks.status:
            self.hooks.status(text)

    def read_data(self, limit: int = 0):
        """Every image of the data folder at the run's resolution; also kept as a [-1, 1] tensor on the device."""
        from aigc_desktop.training.dataset import load_folder

        self.status("Reading images…")
        data = load_folder(self.config.data, self.config.resolution, limit=limit)
        if data.skipped:  # bad files are left out, not fatal: say so in one line
            log.warning("%s", data.skipped_message())
            self.status(data.skipped_message())
        self.images = data.to_tensor().to(self.device)
        return data

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      params: Any = None, clip: float = 1.0) -> None:
        """Backward, (un)scale on CUDA fp16, clip gradients, optimizer step, zero gradients."""
        if self._scaler is not None:
            self._scaler.scale(loss).backward()
            self._scaler.unscale_(optimizer)
        else:
            loss.backward()
        if params is not None and clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if self._scaler is not None:
            self._scaler.step(optimizer)
            self._scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def randn(self, *shape: int) -> torch.Tensor:
        """Normal noise from the trainer's own generator (drawn on the CPU: identical on every device)."""
        return torch.randn(*shape, generator=self.generator).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator).to(self.device)

    def randint(self, high: int, n: int) -> torch.Tensor:
        return torch.randint(0, high, (n,), generator=self.generator)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "kind": self.kind, "step": self.step, "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "models": {k: m.state_dict() for k, m in self.models().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "emas": {k: e.state_dict() for k, e in self.emas.items()},
            "rng": rng_state(self.generator),
            "extra": self.extra_state(),
        }
        if self._scaler is not None:
            state["scaler"] = self._scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise UserError(f"The checkpoint in {self.out} is from a '{state.get('kind')}' run, not '{self.kind}'")
        for k, m in self.models().items():
            m.load_state_dict(state["models"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        for k, e in self.emas.items():
            e.load_state_dict(state["emas"][k])
        if self._scaler is not None and "scaler" in state:
            self._scaler.load_state_dict(state["scaler"])
        self.load_extra_state(state.get("extra", {}))
        set_rng_state(self.generator, state["rng"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))

    def save_checkpoint(self) -> Path:
        target = self.out / CHECKPOINT
        state = self.state_dict()
        save_file_atomic(lambda p: torch.save(state, p), target)
        return target

    def _write_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps({"kind": self.kind, **self.config.to_dict()}, indent=1),
                                              encoding="utf-8")

    def _prepare_loss_log(self) -> None:
        """On resume drop log lines past the checkpoint (they belong to steps that will be redone)."""
        path = self.out / LOSSES
        if not path.is_file():
            return
        kept = [json.dumps(r) for r in read_losses(self.out) if r.get("step", 0) <= self.step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def _log_losses(self, losses: dict[str, float]) -> None:
        with open(self.out / LOSSES, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": self.step, "time": round(self.elapsed, 2),
                                 **{k: round(v, 6) for k, v in losses.items()}}) + "\n")

    def save_samples(self) -> Image.Image:
        grid = self.sample()
        folder = self.out / SAMPLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        grid.save(folder / f"step_{self.step:06d}.png")
        if self.hooks.sample:
            self.hooks.sample(self.step, grid)
        return grid

    def _cancelled(self) -> bool:
        return bool(self.hooks.cancelled and self.hooks.cancelled())

    def _configure_threads(self) -> None:
        if self.device.type == "cpu":
            from aigc_desktop.engines.device import configure_threads

            configure_threads(self.config.threads)

    def run(self) -> Path:
        """Train to `config.steps` (continuing a checkpoint with resume); returns the exported model folder.

        On cancel the trainer checkpoints, exports, and raises CancelRequested: nothing trained is lost."""
        self._configure_threads()
        checkpoint = self.out / CHECKPOINT
        if checkpoint.is_file() and not self.config.resume:
            raise UserError(f"{self.out} already holds a training run; pass --resume to continue it "
                            "or choose another --out folder")
        self.setup()
        if self.config.resume and checkpoint.is_file():
            self.status(f"Resuming from {checkpoint}")
            self.load_state_dict(load_checkpoint(checkpoint))
        self._write_config()
        self._prepare_loss_log()
        total = self.config.steps
        smoother = _Smoother()
        bar = None
        if self.hooks.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, desc=f"train {self.kind}", dynamic_ncols=True)
        try:
            while self.step < total:
                if self._cancelled():
                    self._finish_chunk()
                    raise CancelRequested()
                t0 = time.perf_counter()
                losses = self.train_step()
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                smoother.add(losses)
                if self.step % self.config.log_every == 0 or self.step == total:
                    smoothed = smoother.take()
                    self._log_losses(smoothed)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4f}" for k, v in smoothed.items()})
                    if self.hooks.step:
                        self.hooks.step(self.step, total, smoothed)
                if bar is not None:
                    bar.update(1)
                if self.config.sample_every and self.step % self.config.sample_every == 0:
                    self.save_samples()
                if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self._finish_chunk(samples=False)
        finally:
            if bar is not None:
                bar.close()
        if self._saved_step == self.step:
            return self.out / MODEL_DIR
        return self._finish_chunk(samples=self.step % max(1, self.config.sample_every) != 0)

    def _finish_chunk(self, samples: bool = False) -> Path:
        self.save_checkpoint()
        if samples:
            self.save_samples()
        folder = self.export(self.out / MODEL_DIR)
        self._saved_step = self.step
        return folder


def save_diffusers_fp16(module: torch.nn.Module, folder: Path) -> None:
    """save_pretrained of an fp16 copy (the trained module keeps its fp32 weights), without diffusers' chatter."""
    from diffusers.utils import logging as dlogging

    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try:
        copy.deepcopy(module).to(torch.float16).save_pretrained(str(folder), safe_serialization=True)
    finally:
        dlogging.set_verbosity(level)


def batch_indices(step: int, n: int, batch: int, seed: int) -> torch.Tensor:
    """The image indices of one step: consecutive slices of shuffled epochs (every image once per epoch).

    A pure function of the step, so resuming needs no data-loader state."""
    perms: dict[int, torch.Tensor] = {}
    result = []
    for pos in range(step * batch, (step + 1) * batch):
        epoch, offset = divmod(pos, n)
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator("cpu").manual_seed(seed * 1_000_003 + epoch))
        result.append(int(perms[epoch][offset]))
    return torch.tensor(result, dtype=torch.long)
