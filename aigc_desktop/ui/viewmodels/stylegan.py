"""StyleGAN panel state and the live view.

The image follows the sliders: every change is a live request. Live renders run on their own queue, served
by their own lane of the device's engine process (ui/engine_client.py: the same process, runner and engine
code as the main queue's jobs, in a thread of its own there), so they never wait behind diffusion jobs,
never reach history and are never saved. Requests coalesce in a latest-only slot: at most one live job is
in flight; while it runs, each new request replaces the pending one, so only the newest pending request
ever runs and the view never lags behind a backlog. "Generate" builds the same spec without `live` for
the main queue: the result goes to canvas and history with its metadata, like any generation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.ui.viewmodels.queue import QueueViewModel
from aigc_desktop.ui.engine_client import EngineClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleGANParams:
    """What the panel shows (seed -1 is never used: the panel always holds a concrete seed)."""

    seed: int = 0
    truncation_psi: float = 0.7
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    class_idx: int | None = None
    mix_enabled: bool = False
    mix_seed: int = 1
    mix_layers: str = "coarse"
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0

    def job_fields(self) -> dict[str, Any]:
        mixing = self.mix_enabled and bool(self.mix_layers)
        return {"truncation_psi": float(self.truncation_psi), "truncation_cutoff": self.truncation_cutoff,
                "noise_mode": self.noise_mode, "class_idx": self.class_idx,
                "mix_seed": int(self.mix_seed) if mixing else None, "mix_layers": self.mix_layers if mixing else None,
                "translate": tuple(self.translate), "rotate": float(self.rotate)}


PROBE_BYTES = 8 * 1024 * 1024  # NVIDIA pickles carry their network source before the weights


def probe_family(path: str) -> str | None:
    """'stylegan2' / 'stylegan3' for a StyleGAN model file or folder, read cheaply on the GUI thread (no torch,
    no unpickling): our JSON's family, a safetensors header's keys, or the class names an NVIDIA pickle embeds
    in its first megabytes. None when it cannot tell (the controls then stay enabled)."""
    from aigc_desktop.core.errors import UserError
    from aigc_desktop.core.safe_io import is_regular_file, load_json_file

    p = Path(path)
    try:
        if p.is_dir():
            meta = p / "stylegan.json"
            if not is_regular_file(meta):
                return None
            data = load_json_file(meta, max_bytes=1_000_000)
            family = data.get("family") if isinstance(data, dict) else None
            return family if family in ("stylegan2", "stylegan3") else None
        if not is_regular_file(p):
            return None
        with open(p, "rb") as f:
            head = f.read(PROBE_BYTES)
    except (OSError, ValueError, UserError):
        return None
    if p.suffix.lower() == ".pt":
        return "stylegan2"  # rosinality checkpoints are StyleGAN2
    if b"SynthesisInput" in head or b"synthesis.input." in head or b"networks_stylegan3" in head:
        return "stylegan3"
    if b"networks_stylegan2" in head or b"SynthesisBlock" in head or b"synthesis.b4." in head:
        return "stylegan2"
    return None


class StyleGANViewModel(QObject):
    family_changed = Signal(object)  # "stylegan2" | "stylegan3" | None (unknown)
    params_changed = Signal(object)  # StyleGANParams
    live_image = Signal(object)  # PIL image of the newest finished live render
    live_message = Signal(str)  # "" when fine, else why the live view could not render
    busy_changed = Signal(bool)

    def __init__(self, options: EngineOptions | None = None, engines: dict | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.options = replace(options or EngineOptions(), outputs_dir="")  # live renders are never saved
        self._engines = engines
        self.model: jobs.ModelRef | None = None
        self.family: str | None = None
        self.params = StyleGANParams()
        self.live_enabled = True
        self.live_queue = QueueViewModel(parent=self)
        self.live_queue.preview_changed.connect(self._on_preview)
        self.live_queue.job_finished.connect(self._on_done)
        self.live_queue.job_cancelled.connect(self._on_cancelled)
        self.live_queue.job_failed.connect(self._on_failed)
        self.live_queue.job_unsaved.connect(self._on_done)  # never saved, but the slot must come free
        self.worker: EngineClient | None = None
        self._worker_options = self.options
        self._in_flight: str | None = None
        self._pending: jobs.StyleGANJob | None = None
        self.submitted: list[jobs.StyleGANJob] = []  # live jobs that actually ran (for the curious and tests)
        self.last_live: jobs.StyleGANJob | None = None  # the spec of the image now shown

    # -- state
    def set_model(self, info) -> None:
        """The selected catalog model (ModelInfo), or None when it is not a StyleGAN model."""
        self.model = jobs.ModelRef(info.path, kind="stylegan") if info is not None else None
        self.set_family(probe_family(info.path) if info is not None else None)
        self._pending = None
        if self.model is not None:
            self.request_live()

    def set_family(self, family: str | None) -> None:
        """What the model is, when known (a probe, or a finished image's record): SG3-only controls follow."""
        self.family = family
        self.family_changed.emit(family)

    def set_params(self, params: StyleGANParams) -> None:
        if params == self.params:
            return
        self.params = params
        self.params_changed.emit(params)
        self.request_live()

    def update(self, **changes: Any) -> None:
        self.set_params(replace(self.params, **changes))

    def apply_record(self, record: dict[str, Any]) -> str:
        """Take the settings of an image made by the StyleGAN engine (its metadata record); returns a note
        naming the model that made it when that is not the selected one."""
        spec = jobs.StyleGANJob.from_record(record, model_path=self.model.path if self.model else "-")
        mixing = spec.mix_seed is not None and bool(spec.mix_layers)
        self.set_params(StyleGANParams(
            seed=spec.seeds[0], truncation_psi=spec.truncation_psi, truncation_cutoff=spec.truncation_cutoff,
            noise_mode=spec.noise_mode, class_idx=spec.class_idx, mix_enabled=mixing,
            mix_seed=spec.mix_seed if mixing else self.params.mix_seed,
            mix_layers=spec.mix_layers if mixing else self.params.mix_layers,
            translate=tuple(spec.translate), rotate=spec.rotate))
        model = record.get("model") or {}
        if self.model is None or Path(self.model.path).name != model.get("file"):
            return f"Made with {model.get('name', 'another model')} ({str(model.get('sha256', ''))[:10]})"
        return ""

    def set_live(self, enabled: bool) -> None:
        self.live_enabled = bool(enabled)
        if enabled:
            self.request_live()

    def build_job(self, seeds: tuple[int, ...] | None = None, live: bool = False) -> jobs.StyleGANJob:
        if self.model is None:
            raise UserError("Pick a StyleGAN model in the Models panel first")
        spec = jobs.StyleGANJob(model=self.model, seeds=seeds or (int(self.params.seed),), live=live,
                                **self.params.job_fields())
        spec.validate()
        return spec

    def build_walk(self, keyframes: tuple[int, ...], frames: int, out: str, space: str = "w",
                   loop: bool = False, fps: float = 30.0) -> jobs.StyleGANWalkJob:
        if self.model is None:
            raise UserError("Pick a StyleGAN model in the Models panel first")
        spec = jobs.StyleGANWalkJob(model=self.model, seeds=tuple(keyframes), frames_per_transition=frames,
                                    out=out, space=space, loop=loop, fps=fps, **self.params.job_fields())
        spec.validate()
        return spec

    # -- live view: a latest-only slot
    @property
    def idle(self) -> bool:
        return self._in_flight is None and self._pending is None

    def request_live(self) -> None:
        if not self.live_enabled or self.model is None:
            return
        try:
            spec = self.build_job(live=True)
        except UserError as exc:
            self.live_message.emit(str(exc))
            return
        if self._in_flight is None:
            self._submit(spec)
        else:
            self._pending = spec  # replaces any older pending request: it will never run

    def _submit(self, spec: jobs.StyleGANJob) -> None:
        self._pending = None
        if self.worker is not None and self._worker_options != self.options:  # nothing in flight now
            self.worker.stop()  # new settings: a fresh lane, before the job is queued
            self.worker = None
        try:
            self._in_flight = self.live_queue.submit(spec)
        except (UserError, ValueError) as exc:
            self.live_message.emit(str(exc))
            return
        self.submitted.append(spec)
        self.busy_changed.emit(True)
        self._start_worker()

    def set_options(self, options: EngineOptions) -> None:
        """New engine settings (device, threads): the live view's lane follows with its next render."""
        self.options = replace(options, outputs_dir="")

    def _start_worker(self) -> None:
        if self.worker is None:
            self._worker_options = self.options
            # The device's engine process (shared with the main queue), a lane of its own; engine instances
            # (tests) run in a thread instead.
            self.worker = EngineClient(self.live_queue.queue, self.options, engines=self._engines, preload=False)
            self.worker.setObjectName("aigc-stylegan-live")
            self.worker.start()

    @Slot(str, object)
    def _on_preview(self, job_id: str, image) -> None:
        if job_id == self._in_flight:
            self.last_live = next((s for s in reversed(self.submitted) if s.id == job_id), None)
            self.live_image.emit(image)

    @Slot(str)
    def _on_cancelled(self, job_id: str) -> None:
        self._on_done(job_id)

    @Slot(str, object)
    def _on_done(self, job_id: str, _event: Any = None) -> None:
        if job_id != self._in_flight:
            return
        self._in_flight = None
        self.live_queue.clear_done()
        if self._pending is not None:
            self._submit(self._pending)
        else:
            self.busy_changed.emit(False)

    @Slot(str, str, str)
    def _on_failed(self, job_id: str, message: str, _details: str) -> None:
        if job_id == self._in_flight:
            self.live_message.emit(message)
        self._on_done(job_id)

    def shutdown(self) -> None:
        """Drop pending work and stop the live view's lane (window close, tests); returns within 3 s."""
        self._pending = None
        if self.worker is not None:
            self.live_queue.queue.cancel_all()
            self.worker.stop()
            self.worker = None
        self._in_flight = None
