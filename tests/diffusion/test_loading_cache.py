"""Loaded models are cached: switching back to one still in memory is instant; the least recently used
ones are evicted to fit the memory budget."""

from __future__ import annotations

import time

import pytest
import torch

from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines.cache import ModelCache, module_bytes
from aigc_desktop.testing.original_layout import save_checkpoint
from aigc_desktop.testing.tiny import tiny_family_pipeline
from tests.diffusion.loading_support import one_thread  # noqa: F401 - autouse fixture


def test_lru_eviction_order_and_budget():
    cache = ModelCache(budget_bytes=100, sizer=lambda v: v)
    cache.put("a", 40)
    cache.put("b", 40)
    assert cache.get("a") == 40  # "a" is now the most recently used
    cache.put("c", 40)
    assert cache.keys() == ["a", "c"] and cache.evictions == ["b"]
    cache.put("big", 150)  # larger than the budget on its own: kept, everything else goes
    assert cache.keys() == ["big"] and cache.evictions == ["b", "a", "c"]


def test_make_room_before_loading_and_retry_after_out_of_memory():
    cache = ModelCache(budget_bytes=100, sizer=lambda v: v)
    cache.put("a", 60)
    cache.get_or_load("b", lambda: 60, estimate=60)
    assert cache.evictions == ["a"]  # made room before the load
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 10

    assert cache.get_or_load("c", flaky) == 10
    assert len(calls) == 2 and cache.keys() == ["c"]
    with pytest.raises(ValueError):  # other errors are not retried
        cache.get_or_load("d", lambda: (_ for _ in ()).throw(ValueError("bad file")))


def test_engine_switches_back_instantly_and_evicts_to_budget(tmp_path):
    from aigc_desktop.engines.diffusion.engine import DiffusionEngine

    paths = []
    for i in range(2):
        pipe = tiny_family_pipeline("sd1", seed=20 + i)
        paths.append(save_checkpoint(pipe, "sd1", tmp_path / f"model{i}.safetensors"))
    size = module_bytes([m for m in pipe.components.values() if isinstance(m, torch.nn.Module)])
    # Room for one model and a half: loading the second evicts the first.
    engine = DiffusionEngine(EngineOptions(device="cpu", dtype="fp32", memory_budget_gb=1.5 * size / (1 << 30)))

    def job(path):
        return DiffusionJob(model=ModelRef(str(path), kind="checkpoint"), params=GenerationParams(prompt="x"),
                            device="cpu", dtype="fp32")

    first = engine.model(job(paths[0]))
    start = time.perf_counter()
    assert engine.model(job(paths[0])) is first  # still in memory: the same object, no loading
    assert time.perf_counter() - start < 0.05
    second = engine.model(job(paths[1]))
    assert second is not first
    cache = engine._cache
    assert len(cache.keys()) == 1 and len(cache.evictions) == 1
    assert cache.used_bytes() <= cache.budget
    again = engine.model(job(paths[0]))
    assert again is not first  # evicted, so loaded anew
    assert torch.equal(again.pipe.unet.conv_in.weight, first.pipe.unet.conv_in.weight)
    engine.close()
