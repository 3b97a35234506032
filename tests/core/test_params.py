import pytest

from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.params import MAX_SEED, GenerationParams, scheduler_from_display, validate


def test_seed_resolution_and_batch_seeds():
    p = GenerationParams(seed=-1, batch_size=2, batch_count=2).with_seed_resolved()
    assert 0 <= p.seed <= MAX_SEED
    q = GenerationParams(seed=10, batch_size=2, batch_count=2)
    assert q.image_seeds() == [10, 11, 12, 13]
    assert GenerationParams(seed=MAX_SEED, batch_size=2).image_seeds() == [MAX_SEED, 0]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"width": 513}, "multiple of 8"),
    ({"height": 0}, "between"),
    ({"steps": 0}, "Steps"),
    ({"scheduler": "nope"}, "Unknown scheduler"),
    ({"cfg_scale": -1}, "CFG"),
    ({"batch_size": 0}, "Batch size"),
    ({"seed": -5}, "Seed"),
    ({"mode": "img2img"}, "init image"),
    ({"strength": 1.5}, "Strength"),
])
def test_validation_messages(kwargs, fragment):
    with pytest.raises(InvalidParameter) as err:
        validate(GenerationParams(**kwargs))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_scheduler_display_names():
    assert scheduler_from_display("DPM++ 2M Karras") == "dpmpp_2m_karras"
    assert scheduler_from_display("euler a") == "euler_a"
    assert scheduler_from_display("Unknown") is None


def test_seeds_are_validated_before_they_are_resolved():
    with pytest.raises(InvalidParameter, match="Seed must be -1"):
        GenerationParams(seed=-2).with_seed_resolved()  # never turned into a random seed
    with pytest.raises(InvalidParameter, match="Width must be between 64 and 8192, got 0"):
        GenerationParams(width=0).with_seed_resolved()
    p = GenerationParams(seed=-1, variation_seed=-1, variation_strength=0.5).with_seed_resolved()
    assert 0 <= p.seed <= MAX_SEED and 0 <= p.variation_seed <= MAX_SEED


@pytest.mark.parametrize("kwargs, fragment", [
    ({"cfg_scale": float("nan")}, "CFG scale must be between 0 and 100, got nan"),
    ({"strength": float("inf")}, "Strength must be between 0 and 1"),
    ({"steps": "20"}, "Steps must be between 1 and 1000, got '20'"),
    ({"seed": 10 ** 6000}, "Seed must be -1 (random) or between 0 and 4294967295, got a number of over 4000 digits"),
    ({"prompt": "x" * 200_000}, "Prompt must be at most 100000 characters"),
])
def test_wrong_types_and_huge_values_give_short_lines(kwargs, fragment):
    with pytest.raises(InvalidParameter) as err:
        validate(GenerationParams(**kwargs))
    assert fragment in str(err.value) and len(str(err.value)) < 200
