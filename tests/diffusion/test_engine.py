"""Engine behaviour around the pipelines: live previews, cancel without a decode, out-of-memory recovery,
memory plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc_desktop.core.jobs import Cancelled, DiffusionJob, Failed, Finished, ModelRef, Preview, Progress
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.runner import EngineOptions, Runner
from aigc_desktop.engines.diffusion import memory
from aigc_desktop.engines.diffusion.engine import DiffusionEngine
from aigc_desktop.engines.diffusion.preview import latents_to_rgb
from tests.image_compare import assert_images_close

GiB = 1 << 30


@pytest.fixture
def runner():
    torch.set_num_threads(1)
    engine = DiffusionEngine(EngineOptions(device="cpu", threads=1))
    r = Runner(EngineOptions(device="cpu", threads=1), engines={"diffusion": engine})
    yield r
    r.close()


def job(path, **kwargs):
    params = GenerationParams(**{"prompt": "a boat", "seed": 3, "steps": 4, "width": 64, "height": 64, **kwargs})
    return DiffusionJob(model=ModelRef(str(path)), params=params, device="cpu")


def count_calls(module, counter, name):
    original = module.forward

    def forward(*args, **kwargs):
        counter[name] = counter.get(name, 0) + 1
        return original(*args, **kwargs)

    module.forward = forward
    return original


def loaded(runner, path):
    engine = runner.engine_for("diffusion")
    return engine.model(job(path))


@pytest.mark.parametrize("scheduler", ["euler_a", "heun"])
def test_a_cheap_preview_every_step_and_one_decode(runner, tiny_sd_path, scheduler):
    model = loaded(runner, tiny_sd_path)
    calls: dict[str, int] = {}
    original = count_calls(model.pipe.vae.decoder, calls, "decode")
    try:
        events = []
        end = runner.run(job(tiny_sd_path, scheduler=scheduler, batch_size=2), events.append, lambda: False)
    finally:
        model.pipe.vae.decoder.forward = original
    assert isinstance(end, Finished)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in progress] == [1, 2, 3, 4] and progress[-1].total == 4  # Heun: 7 calls, 4 steps
    previews = [e for e in events if isinstance(e, Preview)]
    assert sorted((e.step, e.index) for e in previews) == [(s, i) for s in range(1, 5) for i in range(2)]
    assert previews[0].image.size == (8, 8)  # latent resolution: a projection, not a decode
    assert calls["decode"] == 1  # the batch's final decode only


def test_cancel_mid_run_stops_within_a_step_and_never_decodes(runner, tiny_sd_path):
    model = loaded(runner, tiny_sd_path)
    calls: dict[str, int] = {}
    originals = (count_calls(model.pipe.unet, calls, "unet"), count_calls(model.pipe.vae.decoder, calls, "decode"))
    events = []
    try:
        end = runner.run(job(tiny_sd_path, steps=8), events.append,
                         lambda: sum(isinstance(e, Progress) for e in events) >= 2)
    finally:
        model.pipe.unet.forward, model.pipe.vae.decoder.forward = originals
    assert isinstance(end, Cancelled)
    assert calls["unet"] == 3  # the step running when cancel came finishes; no further step starts
    assert calls.get("decode", 0) == 0
    assert max(e.step for e in events if isinstance(e, Progress)) == 2


def test_out_of_memory_is_a_message_and_the_next_job_runs(runner, tiny_sd_path):
    model = loaded(runner, tiny_sd_path)
    original = model.pipe.unet.forward
    state = {"raised": False}

    def exploding(*args, **kwargs):
        if not state["raised"]:
            state["raised"] = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(*args, **kwargs)

    model.pipe.unet.forward = exploding
    try:
        failed = runner.run(job(tiny_sd_path), lambda e: None, lambda: False)
        ok = runner.run(job(tiny_sd_path), lambda e: None, lambda: False)
    finally:
        model.pipe.unet.forward = original
    assert isinstance(failed, Failed)
    assert failed.message.startswith("Out of memory") and "\n" not in failed.message
    assert isinstance(ok, Finished) and len(ok.images) == 1
    assert ok.records[0]["memory_savings"] == "vae"  # auto mode steps up after an out-of-memory


def test_low_free_memory_switches_savings_on_and_off(runner, tiny_sd_path, monkeypatch):
    plain = runner.run(job(tiny_sd_path), lambda e: None, lambda: False)
    monkeypatch.setattr(memory.devices, "free_memory_bytes", lambda device: 1)
    tight = runner.run(job(tiny_sd_path), lambda e: None, lambda: False)
    unet = loaded(runner, tiny_sd_path).pipe.unet
    processors = {type(p).__name__ for p in unet.attn_processors.values()}
    assert tight.records[0]["memory_savings"] == "attention"  # no offload without an accelerator
    assert processors == {"SlicedAttnProcessor"}
    monkeypatch.setattr(memory.devices, "free_memory_bytes", lambda device: 64 * GiB)
    again = runner.run(job(tiny_sd_path), lambda e: None, lambda: False)
    assert "memory_savings" not in again.records[0]
    assert {type(p).__name__ for p in unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert not loaded(runner, tiny_sd_path).pipe.vae.use_tiling
    a, b, c = (np.asarray(r.images[0], dtype=np.int16) for r in (plain, tight, again))
    assert np.array_equal(a, c)  # the same plan again: the same computation, the same pixels
    # Sliced attention is another computation (attention computed slice by slice): the same image within rounding.
    assert_images_close(b, a, what="sliced attention against plain attention")


def test_memory_plan_levels():
    job_512 = memory.Workload(width=512, height=512, images=1, cfg=True, element_size=2)
    job_1024 = memory.Workload(width=1024, height=1024, images=2, cfg=True, element_size=2)
    model, unet = int(2.1 * GiB), int(1.7 * GiB)  # SD 1.5 in fp16
    needs = [memory.need_bytes(rank, model, unet, job_1024) for rank in range(len(memory.LEVELS))]
    assert needs == sorted(needs, reverse=True) and len(set(needs)) == len(needs)  # every level saves
    assert [memory.choose("auto", need, model, unet, job_1024).level for need in needs] == list(memory.LEVELS)
    assert [memory.choose("auto", need - 1, model, unet, job_1024).rank for need in needs[:-1]] == [1, 2, 3, 4]
    assert memory.choose("auto", 24 * GiB, model, unet, job_512).level == "plain"
    assert memory.choose("never", 1, model, unet, job_512).level == "plain"
    assert memory.choose("always", 80 * GiB, model, unet, job_512).offload == "model"
    assert memory.choose("auto", None, model, unet, job_512).level == "plain"  # unknown (CPU): nothing
    assert memory.choose("auto", 1, model, unet, job_512, accelerator=False).level == "attention"
    assert memory.choose("auto", 80 * GiB, model, unet, job_512, floor=3).level == "offload"
    # A bigger job needs more: 1024x1024, batch 4 does not fit where 512x512 did.
    big = memory.Workload(width=1024, height=1024, images=4, cfg=True, element_size=2)
    assert memory.work_bytes(big, 0) > 10 * memory.work_bytes(job_512, 0)
    assert memory.choose("auto", 8 * GiB, model, unet, big).rank > memory.choose("auto", 8 * GiB, model, unet, job_512).rank


def test_preview_projection_is_cheap_and_per_family():
    latents = torch.zeros(2, 4, 64, 64)
    latents[:, 3] = -2.0  # channel 3 drives blue strongly in SD's factors
    sd = latents_to_rgb(latents, "sd1")
    assert len(sd) == 2 and sd[0].size == (64, 64)
    r, g, b = np.asarray(sd[0], dtype=np.int16)[0, 0]
    assert b > r and b > g
    assert np.asarray(latents_to_rgb(latents, "sdxl")[0]).tolist() != np.asarray(sd[0]).tolist()


def test_gpu_previews_are_handed_out_once_their_copy_is_done():
    from aigc_desktop.engines.diffusion.preview import PreviewStream

    class Event:  # stands in for a CUDA event
        def __init__(self):
            self.ready = False

        def query(self):
            return self.ready

        def synchronize(self):
            self.ready = True

    got = []
    stream = PreviewStream("sd1", lambda step, images: got.append((step, len(images))))
    first, second = Event(), Event()
    stream._pending = [(first, torch.zeros(2, 8, 8, 3, dtype=torch.uint8), 1),
                       (second, torch.zeros(2, 8, 8, 3, dtype=torch.uint8), 2)]
    stream._hand_out(wait=False)
    assert got == []  # nothing waits on the GPU
    first.ready = True
    stream._hand_out(wait=False)
    assert got == [(1, 2)]
    stream.finish()
    assert got == [(1, 2), (2, 2)]
    stream.add(torch.zeros(1, 4, 8, 8), 3)  # CPU latents: handed out at once
    assert got[-1] == (3, 1)


def test_gpu_benchmark_says_when_there_is_no_gpu(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "bench_sd15_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_sd15_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark would run for real")
    assert bench.main([]) == 0
    assert "No CUDA GPU" in capsys.readouterr().out
