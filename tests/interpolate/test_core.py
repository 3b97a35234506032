"""core/interpolate.py: interpolation and easing properties, timelines, frame plans and their cache keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core.errors import InvalidParameter

ts = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**31)


def vectors(seed: int, n: int = 3, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rnd = np.random.RandomState(seed)
    return rnd.randn(n, d), rnd.randn(n, d)


@given(seeds)
def test_endpoints_are_exact(seed):
    a, b = vectors(seed)
    for fn in (ip.lerp, ip.slerp):
        assert fn(a, b, 0.0) is a and fn(a, b, 1.0) is b


@given(seeds, ts)
@settings(max_examples=50)
def test_slerp_keeps_unit_vectors_on_the_sphere(seed, t):
    a, b = vectors(seed)
    a /= np.linalg.norm(a, axis=-1, keepdims=True)
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    out = ip.slerp(a, b, t)
    # float64 arithmetic on a handful of sin/cos terms: errors stay near 1e-15; 1e-9 is generous
    assert np.allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-9)


@given(seeds)
def test_symmetric_at_half(seed):
    a, b = vectors(seed)
    for fn in (ip.lerp, ip.slerp):
        assert np.allclose(fn(a, b, 0.5), fn(b, a, 0.5), atol=1e-12)


def test_slerp_midpoint_is_not_the_short_lerp_midpoint():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert np.allclose(ip.slerp(a, b, 0.5), [[math.sqrt(0.5), math.sqrt(0.5)]])
    assert np.allclose(ip.lerp(a, b, 0.5), [[0.5, 0.5]])


def test_parallel_and_zero_vectors_fall_back_to_lerp():
    a = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    b = np.array([[2.0, 4.0, 6.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])  # parallel, from zero, orthogonal
    out = ip.slerp(a, b, 0.25)
    assert np.all(np.isfinite(out))
    assert np.allclose(out[:2], ip.lerp(a, b, 0.25)[:2])
    assert np.allclose(np.linalg.norm(out[2]), 1.0)  # the orthogonal row is still a real slerp


def test_torch_tensors_use_the_same_functions():
    torch = pytest.importorskip("torch")
    a, b = torch.randn(2, 4, 8, 8, dtype=torch.float16), torch.randn(2, 4, 8, 8, dtype=torch.float16)
    out = ip.slerp(a, b, 0.3, axis=None)
    assert out.dtype == torch.float16 and out.shape == a.shape
    ref = ip.slerp(a.double().numpy().reshape(1, -1), b.double().numpy().reshape(1, -1), 0.3)
    # computed in float32 from float16 inputs and rounded to float16 (spacing 2^-10 near 1): 1e-2 covers it
    assert np.allclose(out.double().numpy().reshape(1, -1), ref, atol=1e-2)
    assert ip.lerp(a, b, 0.0) is a


@pytest.mark.parametrize("name", ip.EASINGS)
def test_easing_endpoints_and_monotonicity(name):
    assert ip.ease(0.0, name) == 0.0 and ip.ease(1.0, name) == 1.0
    values = [ip.ease(i / 200, name) for i in range(201)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    curve = ip.easing_curve(name, 9)
    assert curve[0] == (0.0, 0.0) and curve[-1] == (1.0, 1.0) and len(curve) == 9


def test_easing_shapes_and_names():
    assert ip.ease(0.25, "ease-in") < 0.25 < ip.ease(0.25, "ease-out")
    assert ip.ease(0.2, "cubic") < ip.ease(0.2, "ease-in-out") < 0.2
    assert ip.ease(0.5, "ease-in-out") == pytest.approx(0.5) and ip.ease(0.5, "cubic") == pytest.approx(0.5)
    assert ip.easing_name("smooth") == "ease-in-out"  # the old walk name
    with pytest.raises(InvalidParameter, match="bouncy"):
        ip.ease(0.5, "bouncy")


def three(**kw) -> ip.Timeline:
    return ip.Timeline.uniform([ip.Keyframe(seed=s, prompt=f"p{s}") for s in (1, 2, 3)], frames=4, **kw)


def test_plan_counts_holds_loop_and_pingpong():
    assert len(ip.plan(three())) == 9  # 4 + 4 + the last keyframe
    assert len(ip.plan(three(loop=True))) == 12
    held = ip.plan(three(hold=2))
    assert len(held) == 9 + 3 * 2 and [f.t for f in held[:4]] == [0.0, 0.0, 0.0, 0.25]
    pp = ip.plan(three(pingpong=True))
    assert len(pp) == 9 + 7 and [f.key for f in pp[9:]] == [f.key for f in pp[7:0:-1]]
    frames = ip.plan(three())
    assert frames[0].keyframe == 0 and frames[4].keyframe == 1 and frames[-1].keyframe == 2
    assert frames[2].keyframe is None and frames[2].t == 0.5


def test_a_segment_end_and_the_next_start_share_a_key():
    frames = ip.plan(three())
    assert len({f.key for f in frames}) == len(frames)  # no two in-between frames alike
    tl = three()
    tl.segments[0].frames = 1
    f = ip.plan(tl)
    assert f[1].key == ip.plan(three())[4].key  # keyframe 2 is the same picture wherever it sits


def test_editing_one_segment_invalidates_only_its_frames():
    before = ip.plan(three())
    tl = three()
    tl.segments[1].easing = "ease-in"
    after = ip.plan(tl)
    assert ip.changed_segments(before, after) == {1}
    changed = [f.index for f in after if f.key not in {b.key for b in before}]
    assert changed == [5, 6, 7]  # segment 2's in-between frames; its keyframes stay
    tl = three()
    tl.segments[0].frames = 6  # more frames in segment 1: the frames after it move but keep their keys
    after = ip.plan(tl)
    assert ip.changed_segments(before, after) == {0}
    assert [f.key for f in after[6:]] == [f.key for f in before[4:]]
    tl = three()
    tl.keyframes[2].prompt = "other"  # a keyframe edit: the segments beside it
    assert ip.changed_segments(before, ip.plan(tl)) == {1, -1}
    assert ip.plan(three(), {"model": "a"})[2].key != ip.plan(three(), {"model": "b"})[2].key


def test_progressive_order_and_unique_renders():
    order = ip.progressive_order(10)
    assert order[:4] == [0, 4, 8, 9] and sorted(order) == list(range(10))
    frames = ip.plan(three(hold=1))
    todo = ip.unique_renders(frames, ip.progressive_order(len(frames)))
    assert len(todo) == len({f.key for f in frames})
    have = {todo[0].key}
    assert todo[0].key not in {f.key for f in ip.unique_renders(frames, have=have.__contains__)}


def test_state_round_trip_and_validation():
    tl = three(hold=1, loop=True)
    tl.segments[2].easing = "cubic"
    state = tl.to_state()
    import json

    assert ip.Timeline.from_state(json.loads(json.dumps(state))).to_state() == state
    assert len(ip.Timeline.from_state({"keyframes": [{}, {}, {}]}).segments) == 2  # missing segments filled
    with pytest.raises(InvalidParameter, match="two keyframes"):
        ip.Timeline.uniform([ip.Keyframe()]).validate()
    bad = three()
    bad.segments[0].frames = 0
    with pytest.raises(InvalidParameter, match="Segment 1"):
        bad.validate()
    with pytest.raises(InvalidParameter, match="Not a timeline"):
        ip.Timeline.from_state({"keyframes": [{"seed": 1, "hold": []}], "fps": "x"})


def test_animation_formats():
    assert [ip.animation_format(f"a.{s}") for s in ("GIF", "webp", "mp4", "webm")] == ["gif", "webp", "mp4", "webm"]
    assert ip.animation_format("frames/") == "png" and ip.animation_format("frames") == "png"
    with pytest.raises(InvalidParameter, match=r"\.avi"):
        ip.animation_format("x.avi")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)
timeline_like = st.fixed_dictionaries({}, optional={
    "keyframes": st.lists(st.dictionaries(st.sampled_from(["seed", "hold", "prompt", "image", "truncation_psi",
                                                           "id", "x"]), json_values, max_size=4), max_size=4)
    | json_values,
    "segments": st.lists(st.dictionaries(st.sampled_from(["frames", "easing"]), json_values), max_size=4)
    | json_values,
    "mode": json_values, "fps": json_values, "loop": json_values})


@given(timeline_like)
@settings(max_examples=200)
def test_saved_timelines_load_or_fail_with_invalid_parameter(state):
    """A timeline comes from a project file: anything in it either loads into a sound timeline or is
    refused with InvalidParameter (one line), never another exception."""
    try:
        tl = ip.Timeline.from_state(state)
    except InvalidParameter as exc:
        assert "\n" not in str(exc)
        return
    tl.check_fields()
    assert ip.Timeline.from_state(tl.to_state()).to_state() == tl.to_state()
    if len(tl.keyframes) >= 2:
        assert len(ip.plan(tl)) >= 2
