"""The morph timeline's GUI-thread state: keyframes, segments, easing, fps, the frame cache and render requests.

Every edit goes through a method here and ends in `changed`. Frames are cached by their keys
(core.interpolate.plan: a hash of what decides a frame's pixels), so after an edit only the frames whose inputs
changed are missing; `request_render()` asks for exactly those, coarse first (every 4th frame, then the rest),
as one TravelJob handed to the `submit` callable (the app's queue). TravelFrame events (`handle_event`, or
through `attach(queue)` from the worker thread) fill the cache; `frame_ready(index)` says which frames can be
shown. The state round-trips through `to_state()` / `from_state()` (JSON-able; the document keeps it as
Document.timeline); keyframe pictures are not in it, only where they came from ('file', 'layer:ID',
'history:ID') and their pixel digest: `from_state(state, resolve=...)` asks `resolve(source)` for them again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core import jobs
from aigc_desktop.core.errors import InvalidParameter, UserError, first_line
from aigc_desktop.core.params import GenerationParams, params_from_record

log = logging.getLogger(__name__)

TRAVEL_LABELS = {"vae": "VAE morph", "diffusion": "Diffusion travel", "stylegan": "StyleGAN travel"}
STATE_VERSION = 1


class TimelineViewModel(QObject):
    _event = Signal(object)  # the bridge from the worker thread to handle_event

    changed = Signal()  # keyframes, segments or settings changed (the frame plan may have changed)
    frame_ready = Signal(int)  # a frame index whose picture is now in the cache
    render_progress = Signal(int, int)  # frames rendered, frames in the plan
    current_changed = Signal(int)
    message = Signal(str)  # one line for the status bar ("" clears)

    def __init__(self, submit: Callable[[jobs.JobSpec], Any] | None = None,
                 cancel: Callable[[str], Any] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.submit = submit
        self.cancel = cancel  # cancels a queued / running job by id (render jobs an edit made useless)
        self.travel = "vae"
        self.model: jobs.ModelRef | None = None
        self.params = GenerationParams(steps=20, width=64, height=64, scheduler="euler")
        self.strength = 0.0
        self.size: int | None = None
        self.stylegan: tuple[tuple[str, Any], ...] = (("truncation_psi", 0.7),)
        self.timeline = ip.Timeline(fps=12.0)
        self.images: dict[str, Any] = {}  # keyframe id -> PIL image (VAE keyframes)
        self.cache: dict[str, tuple[Any, dict[str, Any]]] = {}  # frame key -> (image, record)
        self.current = 0
        self.pending: dict[str, set[str]] = {}  # render jobs submitted and not yet answered -> their frame keys
        self._plan: list[ip.FramePlan] | None = None
        self._event.connect(self.handle_event)

    # ------------------------------------------------------------------------------------- settings
    def set_travel(self, travel: str) -> None:
        if travel not in jobs.TRAVELS:
            raise InvalidParameter(f"Unknown travel '{travel}'")
        self.travel = travel
        self._changed()

    def set_model(self, model: jobs.ModelRef | None) -> None:
        self.model = model
        self._changed()

    def set_model_info(self, info: Any) -> None:
        """The catalog model chosen in the window (ModelInfo or None); the travel follows its kind (an SD
        model keeps a VAE morph when one is chosen: its VAE morphs images)."""
        if info is None:
            self.model = None
            self._changed()
            return
        from aigc_desktop.core.catalog import DIFFUSION_KINDS

        self.model = jobs.ModelRef(info.path, kind=info.kind, family=getattr(info, "family", None))
        if info.kind in ("vae_morph", "vae"):
            self.travel = "vae"
        elif info.kind == "stylegan":
            self.travel = "stylegan"
        elif info.kind in DIFFUSION_KINDS and self.travel == "stylegan":
            self.travel = "diffusion"
        if info.kind in DIFFUSION_KINDS:
            size = getattr(info, "default_size", None) or self.params.width
            self.params = replace(self.params, width=size, height=size)
        self._changed()

    def set_setting(self, name: str, value: Any) -> None:
        """steps, cfg_scale, scheduler, negative_prompt (diffusion params), strength, truncation_psi, size."""
        if name in ("steps", "cfg_scale", "scheduler", "negative_prompt", "width", "height"):
            self.params = replace(self.params, **{name: value})
        elif name == "strength":
            self.strength = float(value)
        elif name == "size":
            self.size = int(value) if value else None
        elif name == "truncation_psi":
            self.stylegan = tuple((k, v) for k, v in self.stylegan if k != name) + ((name, float(value)),)
        else:
            raise InvalidParameter(f"Unknown timeline setting {name}")
        self._changed()

    def setting(self, name: str) -> Any:
        if name == "strength":
            return self.strength
        if name == "size":
            return self.size
        if name == "truncation_psi":
            return dict(self.stylegan).get(name, 1.0)
        return getattr(self.params, name)

    def set_params(self, params: GenerationParams) -> None:
        self.params = params
        self._changed()

    def set_mode(self, mode: str) -> None:
        self._edit(lambda t: setattr(t, "mode", mode))

    def set_loop(self, loop: bool) -> None:
        self._edit(lambda t: setattr(t, "loop", bool(loop)))

    def set_pingpong(self, on: bool) -> None:
        self._edit(lambda t: setattr(t, "pingpong", bool(on)))

    def set_fps(self, fps: float) -> None:
        self._edit(lambda t: setattr(t, "fps", float(fps)))

    # ------------------------------------------------------------------------------------- keyframes
    @property
    def keyframes(self) -> list[ip.Keyframe]:
        return self.timeline.keyframes

    def add_keyframe(self, keyframe: ip.Keyframe | None = None, image: Any = None, index: int | None = None) -> int:
        """Insert a keyframe (at the end by default); returns its index. A picture makes it a VAE keyframe."""
        k = keyframe or ip.Keyframe()
        if image is not None:
            k = replace(k, digest=ip.image_digest(image))
            self.images[k.id] = image.copy()
        keys, segs = self.timeline.keyframes, self.timeline.segments
        index = len(keys) if index is None else max(0, min(len(keys), index))
        if segs and index < len(keys):  # a keyframe put between two others splits that segment's settings
            segs.insert(index, replace(segs[min(index, len(segs) - 1)]))
        keys.insert(index, k)
        self._changed()
        return index

    def add_image(self, image: Any, label: str = "", source: str | None = None) -> int:
        """A picture from a canvas layer ('layer:ID'), a history item ('history:ID') or anywhere else."""
        return self.add_keyframe(ip.Keyframe(label=label, image=source), image=image)

    def add_files(self, paths: list[str]) -> list[int]:
        """Keyframes from image files; an unreadable file raises UserError naming it (nothing is added)."""
        from PIL import Image, UnidentifiedImageError

        loaded = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    im.load()
                    loaded.append((p, im.copy()))
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise UserError(f"Cannot open {Path(p).name}: {first_line(exc) if str(exc) else 'not an image'}")
        return [self.add_image(im, label=Path(p).stem, source=str(p)) for p, im in loaded]

    def add_record(self, record: dict[str, Any], image: Any = None, source: str | None = None) -> int:
        """A keyframe from a generation record (history item, layer): its prompt and seed (diffusion), its
        seed and truncation (StyleGAN), and its picture (VAE morph)."""
        if not isinstance(record, dict):
            raise InvalidParameter(f"{source or 'record'} is not a JSON object (found {type(record).__name__})")
        engine = record.get("engine")
        # Records come from files too (an imported PNG's layer): prompt, negative and seed are taken through
        # the validated path (types and ranges, one line naming the field), not by hand.
        fields = {name: record[name] for name in ("prompt", "negative_prompt", "seed")
                  if record.get(name) is not None}
        p = params_from_record(fields, base=GenerationParams(), source=source or "record")
        seed = max(0, p.seed)  # -1 (random) has no picture to travel from: seed 0
        k = ip.Keyframe(label=str(p.prompt or seed or "")[:24], image=source)
        if engine == "diffusion" or "prompt" in record:
            k = replace(k, prompt=p.prompt, negative=p.negative_prompt, seed=seed)
        if engine == "stylegan":
            psi = record.get("truncation_psi")
            if psi is not None and (isinstance(psi, bool) or not isinstance(psi, (int, float))):
                raise InvalidParameter(f"{source or 'record'}: truncation_psi must be a number, got {psi!r:.24}")
            k = replace(k, seed=seed, truncation_psi=float(psi) if psi is not None else None)
        return self.add_keyframe(k, image=image)

    def remove(self, index: int) -> None:
        k = self.timeline.keyframes.pop(index)
        self.images.pop(k.id, None)
        segs = self.timeline.segments
        if segs:  # the segment that started at the removed keyframe goes (the last one: the one before it)
            segs.pop(min(index, len(segs) - 1))
        self._changed()

    def move(self, src: int, dst: int) -> None:
        """Reorder: the keyframe at `src` ends up at index `dst`."""
        keys = self.timeline.keyframes
        k = keys.pop(src)
        keys.insert(max(0, min(len(keys), dst)), k)
        self._changed()

    def set_keyframe(self, index: int, **fields: Any) -> None:
        """Change a keyframe's prompt, negative, seed, hold, truncation_psi or label."""
        allowed = {"prompt", "negative", "seed", "hold", "truncation_psi", "label"}
        bad = set(fields) - allowed
        if bad:
            raise InvalidParameter(f"Keyframes have no field {sorted(bad)[0]}")
        keys = self.timeline.keyframes
        keys[index] = replace(keys[index], **fields)
        self._changed()

    # ------------------------------------------------------------------------------------- segments
    def set_segment(self, index: int, frames: int | None = None, easing: str | None = None) -> None:
        seg = self.timeline.segments[index]
        if frames is not None:
            if not 1 <= int(frames) <= ip.MAX_FRAMES_PER_SEGMENT:
                raise InvalidParameter(f"Frames must be from 1 to {ip.MAX_FRAMES_PER_SEGMENT}")
            seg.frames = int(frames)
        if easing is not None:
            seg.easing = ip.easing_name(easing)
        self._changed()

    def set_all_segments(self, frames: int | None = None, easing: str | None = None) -> None:
        for i in range(len(self.timeline.segments)):
            self.set_segment(i, frames, easing)

    # ------------------------------------------------------------------------------------- the plan
    def job(self, frames: tuple[int, ...] | None = None, out: str = "") -> jobs.TravelJob:
        """The TravelJob of the timeline now (its render context is part of every frame's key)."""
        if self.model is None:
            raise UserError("Choose a model for the timeline first")
        images: tuple[Any, ...] = ()
        if self.travel == "vae":
            missing = [i + 1 for i, k in enumerate(self.keyframes)
                       if k.id not in self.images and (not k.image or _is_reference(k.image))]
            if missing:
                raise UserError(f"Keyframe {missing[0]} has no picture")
            images = tuple(self.images.get(k.id) for k in self.keyframes)
        return jobs.TravelJob(travel=self.travel, model=self.model, timeline=self.timeline.to_state(),
                              images=images, params=self.params if self.travel == "diffusion" else None,
                              strength=self.strength if self.travel == "diffusion" else 0.0,
                              size=self.size if self.travel == "vae" else None,
                              stylegan=self.stylegan if self.travel == "stylegan" else (),
                              frames=frames, out=out)

    def context(self) -> dict[str, Any]:
        """The render context of the job this timeline makes now (jobs.TravelJob.render_context)."""
        if self.model is None:
            return {"travel": self.travel}
        return jobs.TravelJob(travel=self.travel, model=self.model, timeline={},
                              params=self.params if self.travel == "diffusion" else None,
                              strength=self.strength if self.travel == "diffusion" else 0.0,
                              size=self.size if self.travel == "vae" else None,
                              stylegan=self.stylegan if self.travel == "stylegan" else ()).render_context

    def frames(self) -> list[ip.FramePlan]:
        """The frame plan ([] while the timeline cannot play: fewer than two keyframes)."""
        if self._plan is None:
            try:
                self._plan = ip.plan(self.timeline, self.context())
            except InvalidParameter:
                self._plan = []
        return self._plan

    @property
    def frame_count(self) -> int:
        return len(self.frames())

    def frame_image(self, index: int) -> Any:
        frames = self.frames()
        if not 0 <= index < len(frames):
            return None
        hit = self.cache.get(frames[index].key)
        return hit[0] if hit else None

    def frame_record(self, index: int) -> dict[str, Any] | None:
        frames = self.frames()
        hit = self.cache.get(frames[index].key) if 0 <= index < len(frames) else None
        return hit[1] if hit else None

    def nearest_rendered(self, index: int) -> int | None:
        """The rendered frame nearest to `index` (the scrubber shows it while `index` is still missing)."""
        frames = self.frames()
        best = None
        for i, f in enumerate(frames):
            if f.key in self.cache and (best is None or abs(i - index) < abs(best - index)):
                best = i
        return best

    def rendered_count(self) -> int:
        return sum(1 for f in self.frames() if f.key in self.cache)

    def missing(self) -> list[int]:
        """Frame indices to render, one per missing picture, coarse first (frames a render job already on
        the queue will bring are not missing)."""
        frames = self.frames()
        asked = set().union(*self.pending.values()) if self.pending else set()
        todo = ip.unique_renders(frames, ip.progressive_order(len(frames)),
                                 have=lambda key: key in self.cache or key in asked)
        return [f.index for f in todo]

    def request_render(self) -> str | None:
        """Submit the missing frames (coarse first); None when nothing is missing."""
        self._cancel_obsolete()
        missing = self.missing()
        if not missing or self.submit is None:
            return None
        spec = self.job(frames=tuple(missing))
        spec.validate()
        frames = self.frames()
        self.pending[spec.id] = {frames[i].key for i in missing}  # before submit: its events may come at once
        self.message.emit(f"Rendering {len(missing)} frames…")
        try:
            self.submit(spec)
        except Exception:
            self.pending.pop(spec.id, None)
            self.message.emit("")
            raise
        return spec.id

    def _cancel_obsolete(self) -> None:
        """Render jobs none of whose frames are in the plan any more are cancelled (edits came after them)."""
        if self.cancel is None:
            return
        wanted = {f.key for f in self.frames()}
        for job_id, keys in list(self.pending.items()):
            if keys and not keys & wanted:
                self.cancel(job_id)
                del self.pending[job_id]

    def export_job(self, path: str, scale: float = 1.0, loop_count: int = 0) -> jobs.ExportJob:
        """An ExportJob of the cached frames in playing order (ping-pong is in the plan already)."""
        frames = self.frames()
        if not frames:
            raise UserError("The timeline needs at least two keyframes")
        absent = [f.index for f in frames if f.key not in self.cache]
        if absent:
            raise UserError(f"{len(absent)} frames are not rendered yet: render the timeline first")
        spec = jobs.ExportJob(frames=tuple(self.cache[f.key][0] for f in frames),
                              records=tuple({**self.cache[f.key][1], "frame": f.index} for f in frames),
                              out=str(path), fps=self.timeline.fps, loop_count=loop_count, scale=scale)
        spec.validate()
        return spec

    def export(self, path: str, scale: float = 1.0, loop_count: int = 0) -> str | None:
        spec = self.export_job(path, scale, loop_count)
        if self.submit is None:
            return None
        self.submit(spec)
        return spec.id

    def set_current(self, index: int) -> None:
        index = max(0, min(self.frame_count - 1, int(index))) if self.frame_count else 0
        if index != self.current:
            self.current = index
            self.current_changed.emit(index)

    # ------------------------------------------------------------------------------------- events
    def attach(self, queue: Any) -> Callable[[], None] | None:
        """Listen to a core JobQueue's events (from any thread; delivered here in the GUI thread)."""
        return queue.subscribe(self._event.emit)

    @Slot(object)
    def handle_event(self, event: Any) -> None:
        if isinstance(event, jobs.TravelFrame):
            self.cache[event.key] = (event.image, dict(event.record))
            for f in self.frames():
                if f.key == event.key:
                    self.frame_ready.emit(f.index)
            self.render_progress.emit(self.rendered_count(), self.frame_count)
        elif isinstance(event, (jobs.Finished, jobs.Cancelled, jobs.Failed)) and event.job_id in self.pending:
            del self.pending[event.job_id]
            if isinstance(event, jobs.Failed):
                self.message.emit(event.message)
            elif not self.pending:
                self.message.emit("")

    # ------------------------------------------------------------------------------------- state
    def to_state(self) -> dict[str, Any]:
        from dataclasses import asdict

        params = {k: v for k, v in asdict(self.params).items() if isinstance(v, (str, int, float, bool, type(None)))}
        return {"version": STATE_VERSION, "travel": self.travel, "timeline": self.timeline.to_state(),
                "model": asdict(self.model) if self.model else None, "params": params, "strength": self.strength,
                "size": self.size, "stylegan": [list(p) for p in self.stylegan]}

    def from_state(self, state: dict[str, Any] | None, resolve: Callable[[str], Any] | None = None) -> None:
        """Restore a saved timeline; `resolve(source)` gives back the picture of a keyframe's 'file' path,
        'layer:ID' or 'history:ID' (None when gone: the keyframe stays, without a picture). Frames cached
        for keys that still exist stay cached."""
        state = {} if state is None else state
        if not isinstance(state, dict):
            raise InvalidParameter("Not a timeline: a JSON object was expected")
        travel = state.get("travel", "vae")
        if travel not in jobs.TRAVELS:
            raise InvalidParameter(f"Unknown travel '{travel}' in the saved timeline")
        timeline = ip.Timeline.from_state(state.get("timeline"))
        try:  # the rest is checked as it is read: a bad file fails with one line, nothing half-loaded
            saved = state.get("params")
            if saved is None or saved == {}:
                params = self.params
            else:  # the validated path for records from disk: field types, then validate(); one line
                if isinstance(saved, dict):
                    saved = {k: v for k, v in saved.items() if k != "loras"}  # LoRAs are not kept in a timeline
                params = params_from_record(saved, base=GenerationParams(), source="Not a timeline: params")
            model = state.get("model")
            if model is not None:
                fields = set(jobs.ModelRef.__dataclass_fields__)
                model = jobs.ModelRef(**{k: v for k, v in dict(model).items() if k in fields})
                if not all(isinstance(v, (str, type(None))) for v in model.__dict__.values()):
                    raise ValueError("model fields must be text")
            strength = float(state.get("strength", 0.0))
            if not 0.0 <= strength < 1.0:
                raise ValueError("strength must be from 0 up to 1")
            size = state.get("size")
            if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
                raise ValueError("size must be a whole number")
            stylegan = tuple((str(k), v) for k, v in (tuple(p) for p in state.get("stylegan") or ()))
            if any(k not in ("truncation_psi", "noise_mode", "class_idx") for k, _ in stylegan):
                raise ValueError("unknown StyleGAN option")
        except (TypeError, ValueError) as exc:
            raise InvalidParameter(f"Not a timeline: {first_line(exc)}") from None
        self.travel = travel
        self.timeline = timeline
        self.model = model
        self.params = params
        self.strength = strength
        self.size = size
        self.stylegan = stylegan or self.stylegan
        self.images = {}
        for k in timeline.keyframes:
            image = None
            if k.image:
                try:
                    image = resolve(k.image) if resolve else _open(k.image)
                except (OSError, UserError, ValueError) as exc:
                    log.info("Keyframe picture %s not found: %s", k.image, exc)
            if image is not None:
                self.images[k.id] = image
        self._changed()

    # ------------------------------------------------------------------------------------- internals
    def _edit(self, fn: Callable[[ip.Timeline], None]) -> None:
        fn(self.timeline)
        self._changed()

    def _changed(self) -> None:
        self.timeline.normalized()
        self._plan = None
        if self.current >= max(1, self.frame_count):
            self.current = max(0, self.frame_count - 1)
        self.changed.emit()


def save_to_document(vm: TimelineViewModel, document: Any) -> None:
    """Keep the timeline in the document (Document.timeline, saved with the project)."""
    document.set_timeline(vm.to_state())


def load_from_document(vm: TimelineViewModel, document: Any) -> None:
    """Restore the document's timeline; keyframe pictures come back from its layers and history."""
    vm.from_state(document.timeline, resolve=document_resolver(document))


def document_resolver(document: Any) -> Callable[[str], Any]:
    """source -> picture: 'layer:ID' from the document's layers, 'history:ID' from its history, else a file."""

    def resolve(source: str) -> Any:
        kind, _, ident = source.partition(":")
        try:
            if kind == "layer":
                return document.get_layer(ident).image.copy()
            if kind == "history":
                return document.get_history(ident).image.copy()
        except KeyError:
            return None
        return _open(source)

    return resolve


def _is_reference(source: str) -> bool:
    """'layer:ID' / 'history:ID' (pictures the document holds), not a file."""
    return source.split(":", 1)[0] in ("layer", "history") and not Path(source).exists()


def _open(source: str) -> Any:
    if _is_reference(source):
        return None
    from PIL import Image

    with Image.open(source) as im:
        im.load()
        return im.copy()
