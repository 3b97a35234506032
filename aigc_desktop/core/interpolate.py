"""The one interpolation core: keyframes, segments, easing, lerp / slerp, holds, loop / ping-pong, frame plans.

Qt-free and torch-free at import time. `lerp` and `slerp` work on numpy arrays and on anything array-like
through a small backend (torch tensors get a torch backend, looked up only when one is passed in), so the
engines use these functions on their latents directly.

A timeline is keyframes with one segment between each neighbouring pair (and one back to the first when it
loops). A segment has its own frame count and easing. `plan(timeline)` lists every frame of the animation:

    frame index -> FramePlan(segment, a, b, t (eased), key)

The frame at a segment's start is keyframe `a` itself; the segment's last frame is just before `b` (the next
segment starts with `b`), and an open timeline ends with its last keyframe. Hold frames repeat a keyframe.
A frame's `key` is a hash of what decides its pixels (the keyframes' contents, t, the mode and the render
context), never its index: editing one segment changes only that segment's keys, so a frame cache keyed by
them re-renders only that segment even though later frames move to other indices.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

from aigc_desktop.core.errors import InvalidParameter

# ---------------------------------------------------------------------------------------------- easing

EASINGS = ("linear", "ease-in", "ease-out", "ease-in-out", "cubic")
# Older names (StyleGAN walk records said "smooth"; A1111 / CSS spellings) map onto ours.
EASING_ALIASES = {"smooth": "ease-in-out", "ease_in": "ease-in", "ease_out": "ease-out",
                  "ease_in_out": "ease-in-out", "easein": "ease-in", "easeout": "ease-out",
                  "easeinout": "ease-in-out", "sine": "ease-in-out"}


def easing_name(name: str) -> str:
    """The canonical easing name; unknown names raise InvalidParameter with the choices."""
    key = str(name or "linear").strip().lower()
    key = EASING_ALIASES.get(key, key)
    if key not in EASINGS:
        raise InvalidParameter(f"Unknown easing '{name}': choose {', '.join(EASINGS)}")
    return key


def ease(t: float, name: str = "linear") -> float:
    """Eased t in [0, 1]; every curve keeps 0 -> 0 and 1 -> 1 exactly and never decreases."""
    t = min(1.0, max(0.0, float(t)))
    name = easing_name(name)
    if t in (0.0, 1.0) or name == "linear":
        return t
    if name == "ease-in":
        return 1.0 - math.cos(t * math.pi / 2)
    if name == "ease-out":
        return math.sin(t * math.pi / 2)
    if name == "ease-in-out":
        return 0.5 - 0.5 * math.cos(math.pi * t)
    # cubic ease-in-out: slower start and stop than the sine curve
    return 4 * t ** 3 if t < 0.5 else 1 - (-2 * t + 2) ** 3 / 2


def easing_curve(name: str, samples: int = 64) -> list[tuple[float, float]]:
    """(t, eased t) points along a curve, for drawing it."""
    n = max(2, int(samples))
    return [(i / (n - 1), ease(i / (n - 1), name)) for i in range(n)]


# ---------------------------------------------------------------------------------------------- lerp / slerp

MODES = ("slerp", "lerp")
PARALLEL_DOT = 0.9995  # |cos| above this: the arc is (numerically) a line, slerp becomes lerp


class _Numpy:
    def __init__(self) -> None:
        import numpy as np

        self.np = np

    def asarray(self, x):
        return x if isinstance(x, self.np.ndarray) else self.np.asarray(x, dtype=self.np.float64)

    def compute(self, x):  # float64 for the arithmetic
        return x.astype(self.np.float64, copy=False)

    def restore(self, x, like):
        return x.astype(like.dtype, copy=False) if self.np.issubdtype(like.dtype, self.np.floating) else x

    def sum(self, x, axis):
        return x.sum(axis=axis, keepdims=True)

    def arccos(self, x):
        return self.np.arccos(self.np.clip(x, -1.0, 1.0))

    def sin(self, x):
        return self.np.sin(x)

    def sqrt(self, x):
        return self.np.sqrt(x)

    def where(self, c, a, b):
        return self.np.where(c, a, b)

    def abs(self, x):
        return self.np.abs(x)


class _Torch:
    def __init__(self) -> None:
        # Only made for a torch tensor, so torch is loaded already: take that module, import nothing (core/
        # never imports torch; tests/test_layers.py holds it).
        self.torch = sys.modules["torch"]

    def asarray(self, x):
        return x

    def compute(self, x):  # half precision loses the angle; float32 at least
        return x.float() if x.dtype in (self.torch.float16, self.torch.bfloat16) else x

    def restore(self, x, like):
        return x.to(like.dtype)

    def sum(self, x, axis):
        if axis is None:
            return x.sum().reshape([1] * x.dim())
        return x.sum(dim=axis, keepdim=True)

    def arccos(self, x):
        return self.torch.acos(x.clamp(-1.0, 1.0))

    def sin(self, x):
        return self.torch.sin(x)

    def sqrt(self, x):
        return self.torch.sqrt(x)

    def where(self, c, a, b):
        return self.torch.where(c, a, b)

    def abs(self, x):
        return x.abs()


def backend(x: Any):
    """numpy for arrays, lists and numbers; torch for torch tensors (detected without importing torch)."""
    if type(x).__module__.split(".")[0] == "torch":
        return _Torch()
    return _Numpy()


def lerp(a: Any, b: Any, t: float) -> Any:
    """a + (b - a) t; t = 0 gives `a` and t = 1 gives `b` exactly (the same objects)."""
    t = float(t)
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    be = backend(a)
    a_, b_ = be.asarray(a), be.asarray(b)
    return a_ + (b_ - a_) * t


def slerp(a: Any, b: Any, t: float, axis: int | None = -1, parallel_dot: float = PARALLEL_DOT) -> Any:
    """Spherical interpolation of vectors along `axis` (None: the whole array is one vector).

    Keeps Gaussian samples at a typical norm (their midpoint by lerp is too short). Vectors that are nearly
    parallel (|cos| > parallel_dot) or zero take the straight line instead, vector by vector."""
    t = float(t)
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    be = backend(a)
    a_, b_ = be.asarray(a), be.asarray(b)
    x, y = be.compute(a_), be.compute(b_)
    na, nb = be.sqrt(be.sum(x * x, axis)), be.sqrt(be.sum(y * y, axis))
    denom = na * nb
    safe = denom > 0
    cos = be.sum(x * y, axis) / be.where(safe, denom, denom * 0 + 1)
    arc = safe & (be.abs(cos) < parallel_dot)
    omega = be.arccos(cos)
    so = be.where(arc, be.sin(omega), omega * 0 + 1)
    wa = be.where(arc, be.sin((1.0 - t) * omega) / so, omega * 0 + (1.0 - t))
    wb = be.where(arc, be.sin(t * omega) / so, omega * 0 + t)
    return be.restore(wa * x + wb * y, a_)


def interpolate(a: Any, b: Any, t: float, mode: str = "slerp", axis: int | None = -1) -> Any:
    if mode == "slerp":
        return slerp(a, b, t, axis=axis)
    if mode == "lerp":
        return lerp(a, b, t)
    raise InvalidParameter(f"Interpolation must be one of {', '.join(MODES)}, got '{mode}'")


# ---------------------------------------------------------------------------------------------- timeline

MAX_FRAMES_PER_SEGMENT = 10000
MAX_HOLD = 10000
MAX_KEYFRAMES = 1000
MAX_TOTAL_FRAMES = 100_000  # a plan is a list in memory: bound what a project file can ask for


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Keyframe:
    """One keyframe. Which fields matter depends on the kind of travel: `image` (a file path or an image
    reference such as 'layer:ID' / 'history:ID') with its pixel `digest` for VAE morphs; `prompt`, `negative`
    and `seed` for diffusion; `seed` (and optionally `truncation_psi`) for StyleGAN. `hold` repeats the
    keyframe for that many extra frames."""

    id: str = field(default_factory=_new_id)
    label: str = ""
    image: str | None = None
    digest: str | None = None
    prompt: str = ""
    negative: str = ""
    seed: int = 0
    truncation_psi: float | None = None
    hold: int = 0

    def content(self) -> dict[str, Any]:
        """What decides this keyframe's latent (id, label and hold do not)."""
        data = asdict(self)
        for name in ("id", "label", "hold"):
            data.pop(name)
        if data["digest"]:  # pixels identify an image better than where it came from
            data.pop("image")
        return data


@dataclass
class Segment:
    """The way from one keyframe to the next: frames (a's frame included, b's not) and easing."""

    frames: int = 16
    easing: str = "linear"


@dataclass(frozen=True)
class FramePlan:
    index: int
    segment: int  # -1 for the closing keyframe of an open timeline
    a: int  # keyframe indices
    b: int
    t: float  # eased position between a and b, 0..1
    hold: bool = False
    key: str = ""

    @property
    def keyframe(self) -> int | None:
        """The keyframe this frame shows exactly (t = 0 or 1), else None."""
        return self.a if self.t == 0.0 else self.b if self.t == 1.0 else None


@dataclass
class Timeline:
    keyframes: list[Keyframe] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    mode: str = "slerp"
    loop: bool = False
    pingpong: bool = False
    fps: float = 12.0
    version: int = 1

    # -- structure
    def segment_count(self) -> int:
        n = len(self.keyframes)
        return 0 if n < 2 else n if self.loop else n - 1

    def normalized(self) -> "Timeline":
        """Segments match the keyframes: missing ones take the last segment's settings, extras are dropped."""
        want = self.segment_count() if len(self.keyframes) >= 2 else 0
        segs = list(self.segments[:want])
        template = segs[-1] if segs else (self.segments[-1] if self.segments else Segment())
        while len(segs) < want:
            segs.append(replace(template))
        self.segments = segs
        return self

    def check_fields(self) -> None:
        """Types and ranges of every field (a timeline may come from a project file): InvalidParameter."""
        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if self.mode not in MODES:
            raise InvalidParameter(f"Interpolation must be one of {', '.join(MODES)}, got '{self.mode}'")
        if not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) or not 0 < self.fps <= 240:
            raise InvalidParameter("Frames per second must be between 0 and 240")
        for i, k in enumerate(self.keyframes, 1):
            if not is_int(k.seed) or not 0 <= k.seed < 2**32:
                raise InvalidParameter(f"Keyframe {i}: the seed must be a whole number from 0 to {2**32 - 1}")
            if not is_int(k.hold) or not 0 <= k.hold <= MAX_HOLD:
                raise InvalidParameter(f"Keyframe {i}: hold frames must be a whole number from 0 to {MAX_HOLD}")
            for name in ("id", "label", "prompt", "negative"):
                if not isinstance(getattr(k, name), str):
                    raise InvalidParameter(f"Keyframe {i}: {name} must be text")
            for name in ("image", "digest"):
                if getattr(k, name) is not None and not isinstance(getattr(k, name), str):
                    raise InvalidParameter(f"Keyframe {i}: {name} must be text")
            psi = k.truncation_psi
            if psi is not None and (isinstance(psi, bool) or not isinstance(psi, (int, float))
                                    or not math.isfinite(psi) or abs(psi) > 10):
                raise InvalidParameter(f"Keyframe {i}: truncation must be a number from -10 to 10")
        for i, seg in enumerate(self.segments, 1):
            if not is_int(seg.frames) or not 1 <= seg.frames <= MAX_FRAMES_PER_SEGMENT:
                raise InvalidParameter(f"Segment {i}: frames must be a whole number from 1 to "
                                       f"{MAX_FRAMES_PER_SEGMENT}")
            if not isinstance(seg.easing, str):
                raise InvalidParameter(f"Segment {i}: unknown easing")
            easing_name(seg.easing)
        total = sum(s.frames for s in self.segments) + sum(k.hold for k in self.keyframes) + 1
        if total > MAX_TOTAL_FRAMES:
            raise InvalidParameter(f"A timeline holds at most {MAX_TOTAL_FRAMES} frames, this one {total}")

    def validate(self) -> None:
        """Ready to render: the fields are sound and there are at least two keyframes."""
        self.check_fields()
        if len(self.keyframes) < 2:
            raise InvalidParameter("Interpolation needs at least two keyframes")
        if len(self.segments) != self.segment_count():
            raise InvalidParameter(f"{len(self.keyframes)} keyframes need {self.segment_count()} segments, "
                                   f"got {len(self.segments)}")

    # -- state
    def to_state(self) -> dict[str, Any]:
        return {"version": self.version, "mode": self.mode, "loop": self.loop, "pingpong": self.pingpong,
                "fps": self.fps, "keyframes": [asdict(k) for k in self.keyframes],
                "segments": [asdict(s) for s in self.segments]}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "Timeline":
        if not state:
            return cls()
        if not isinstance(state, dict):
            raise InvalidParameter("A timeline must be a JSON object")
        known_k = set(Keyframe.__dataclass_fields__)
        known_s = set(Segment.__dataclass_fields__)
        try:
            keys = [Keyframe(**{k: v for k, v in dict(item).items() if k in known_k})
                    for item in state.get("keyframes", [])]
            segs = [Segment(**{k: v for k, v in dict(item).items() if k in known_s})
                    for item in state.get("segments", [])]
            timeline = cls(keyframes=keys, segments=segs, mode=str(state.get("mode", "slerp")),
                           loop=bool(state.get("loop", False)), pingpong=bool(state.get("pingpong", False)),
                           fps=float(state.get("fps", 12.0))).normalized()
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidParameter(f"Not a timeline: {exc}") from None
        if len(timeline.keyframes) > MAX_KEYFRAMES:
            raise InvalidParameter(f"A timeline holds at most {MAX_KEYFRAMES} keyframes")
        timeline.check_fields()
        return timeline

    @classmethod
    def uniform(cls, keyframes: Sequence[Keyframe], frames: int = 16, easing: str = "linear", hold: int = 0,
                **kw: Any) -> "Timeline":
        """Every segment with the same frames and easing; `hold` extra frames on every keyframe."""
        keys = [replace(k, hold=hold) if hold else k for k in keyframes]
        tl = cls(keyframes=list(keys), **kw)
        tl.segments = [Segment(frames, easing) for _ in range(tl.segment_count())]
        return tl


def digest_of(data: Any) -> str:
    """A short stable hash of JSON-able data (keys sorted)."""
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def image_digest(image: Any) -> str:
    """A keyframe image's identity for cache keys: its pixels, not where it came from (PIL image)."""
    h = hashlib.sha256(f"{image.mode}{tuple(image.size)}".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:20]


def frame_key(timeline: Timeline, a: int, b: int, t: float, context: Any = None) -> str:
    """What decides a frame: a keyframe's content at t = 0 / 1 (so the end of one segment and the start of
    the next share a key), else both keyframes, t and the mode; plus the render context (model, size ...)."""
    if t == 0.0 or t == 1.0:
        k = timeline.keyframes[a if t == 0.0 else b]
        return digest_of({"key": k.content(), "ctx": context})
    ka, kb = timeline.keyframes[a], timeline.keyframes[b]
    return digest_of({"a": ka.content(), "b": kb.content(), "t": round(t, 12), "mode": timeline.mode,
                      "ctx": context})


def plan(timeline: Timeline, context: Any = None) -> list[FramePlan]:
    """Every frame of the animation, in playing order (ping-pong included)."""
    timeline.validate()
    n = len(timeline.keyframes)
    out: list[FramePlan] = []

    def add(segment: int, a: int, b: int, t: float, hold: bool = False) -> None:
        out.append(FramePlan(len(out), segment, a, b, t, hold, frame_key(timeline, a, b, t, context)))

    for s, seg in enumerate(timeline.segments):
        a, b = s, (s + 1) % n
        for f in range(seg.frames):
            add(s, a, b, ease(f / seg.frames, seg.easing))
            if f == 0:
                for _ in range(timeline.keyframes[a].hold):
                    add(s, a, b, 0.0, hold=True)
    if not timeline.loop:
        last = n - 1
        for h in range(1 + timeline.keyframes[last].hold):
            add(-1, last - 1, last, 1.0, hold=h > 0)
    if timeline.pingpong:
        back = pingpong_order(len(out))[len(out):]
        out += [replace(out[i], index=len(out) + j) for j, i in enumerate(back)]
    return out


def pingpong_order(n: int) -> list[int]:
    """0 .. n-1 then back n-2 .. 1 (the ends are not shown twice, so it loops smoothly)."""
    return list(range(n)) + list(range(n - 2, 0, -1))


def pingpong(items: Sequence[Any]) -> list[Any]:
    return [items[i] for i in pingpong_order(len(items))]


def progressive_order(n: int, stride: int = 4) -> list[int]:
    """Coarse first: every `stride`-th frame (and the last), then the rest in order."""
    coarse = list(range(0, n, max(1, stride)))
    if n and coarse[-1] != n - 1:
        coarse.append(n - 1)
    seen = set(coarse)
    return coarse + [i for i in range(n) if i not in seen]


def unique_renders(frames: Iterable[FramePlan], order: Sequence[int] | None = None,
                   have: Callable[[str], bool] | None = None) -> list[FramePlan]:
    """The frames to render, one per key, in `order` (frame indices), skipping keys `have` already knows."""
    frames = list(frames)
    by_index = {f.index: f for f in frames}
    seq = [by_index[i] for i in order] if order is not None else frames
    seen: set[str] = set()
    out = []
    for f in seq:
        if f.key in seen or (have is not None and have(f.key)):
            continue
        seen.add(f.key)
        out.append(f)
    return out


def changed_segments(before: Sequence[FramePlan], after: Sequence[FramePlan]) -> set[int]:
    """Segments of `after` holding a key that `before` lacked (what an edit makes re-render)."""
    old = {f.key for f in before}
    return {f.segment for f in after if f.key not in old}


# ---------------------------------------------------------------------------------------------- export targets

ANIMATION_FORMATS = ("gif", "webp", "mp4", "webm", "png")  # png: a folder of PNG frames


def animation_format(path: Any) -> str:
    """gif | webp | mp4 | webm | png (a folder: an existing one, a path ending in a separator or without
    suffix), from an export target; anything else raises InvalidParameter."""
    import os
    from pathlib import Path

    text = str(path)
    p = Path(text).expanduser()
    if p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix:
        return "png"
    suffix = p.suffix.lower().lstrip(".")
    if suffix in ANIMATION_FORMATS[:4]:
        return suffix
    raise InvalidParameter(f"Cannot export animations as .{suffix}: use .gif, .webp, .mp4, .webm or a folder "
                           "for PNG frames")
