"""The StyleGAN engine through the runner: images, records that regenerate exactly, live renders, walks,
conversion, cancel, errors; and the animation writers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.metadata import read_record, save_png
from aigc_desktop.core.runner import EngineOptions, Runner
from aigc_desktop.engines import export
from tests.image_compare import assert_images_close


@pytest.fixture(scope="module")
def runner():
    r = Runner(EngineOptions(threads=1))
    yield r
    r.close()


def run(runner, spec, cancel_after: int | None = None):
    events = []
    progress = [0]

    def cancelled():
        return cancel_after is not None and progress[0] >= cancel_after

    def emit(event):
        events.append(event)
        if isinstance(event, jobs.Progress):
            progress[0] = event.step

    end = runner.run(spec, emit, cancelled)
    return end, events


def job(path, **kw):
    return jobs.StyleGANJob(model=jobs.ModelRef(str(path), kind="stylegan"), **kw)


def pixels(image) -> np.ndarray:
    return np.asarray(image)


def test_images_and_records_regenerate_exactly(runner, sg_files, tmp_path):
    spec = job(sg_files["sg2-skip"], seeds=(11, 12, 13), truncation_psi=0.6, truncation_cutoff=5, mix_seed=3,
               mix_layers="middle", noise_mode="random")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    assert [e.step for e in events if isinstance(e, jobs.Progress)] == [1, 2, 3]
    assert len(end.images) == 3 and end.images[0].size == (32, 32)
    record = end.records[1]
    assert record["engine"] == "stylegan" and record["seed"] == 12
    assert record["model"]["sha256"] and record["model"]["format"] == "nvidia-pickle"
    assert (record["truncation_psi"], record["truncation_cutoff"], record["noise_mode"]) == (0.6, 5, "random")
    assert (record["mix_seed"], record["mix_layers"]) == (3, "middle") and record["mix_layer_indices"]
    # Regenerate from the PNG's metadata: the same pixels.
    path = save_png(end.images[1], tmp_path / "img.png", record)
    again, _ = run(runner, jobs.StyleGANJob.from_record(read_record(path)))
    assert np.array_equal(pixels(again.images[0]), pixels(end.images[1]))
    assert np.array_equal(pixels(Image.open(path).convert("RGB")), pixels(end.images[1]))
    # An image never depends on the other seeds of its job.
    single, _ = run(runner, job(sg_files["sg2-skip"], seeds=(12,), truncation_psi=0.6, truncation_cutoff=5,
                                mix_seed=3, mix_layers="middle", noise_mode="random"))
    assert np.array_equal(pixels(single.images[0]), pixels(end.images[1]))


def test_every_format_renders_the_same_model_identically(runner, sg_files):
    outs = [run(runner, job(sg_files[k], seeds=(5,), truncation_psi=0.5))[0].images[0]
            for k in ("sg2-skip", "ours")]
    assert np.array_equal(pixels(outs[0]), pixels(outs[1]))
    ros = run(runner, job(sg_files["rosinality"], seeds=(5,), truncation_psi=0.5))[0].images[0]
    # rosinality's layout is converted (weights rescaled, convolutions regrouped): another computation, the same
    # image within rounding.
    assert_images_close(ros, outs[0], what="rosinality file against the NVIDIA pickle")


def test_stylegan3_and_conditional_models(runner, sg_files):
    end, _ = run(runner, job(sg_files["sg3-t"], seeds=(1,), translate=(0.1, -0.1), rotate=15))
    assert isinstance(end, jobs.Finished) and end.records[0]["rotate"] == 15
    plain, _ = run(runner, job(sg_files["sg3-t"], seeds=(1,)))
    assert not np.array_equal(pixels(end.images[0]), pixels(plain.images[0]))
    end, _ = run(runner, job(sg_files["sg2-resnet"], seeds=(1,)))
    assert end.records[0]["class_idx"] in range(4)  # drawn from the seed, recorded
    bad, _ = run(runner, job(sg_files["sg2-resnet"], seeds=(1,), class_idx=7))
    assert isinstance(bad, jobs.Failed) and bad.message == "Class 7 is out of range: this model has classes 0-3"


def test_live_jobs_only_preview(runner, sg_files):
    end, events = run(runner, job(sg_files["sg2-skip"], seeds=(2,), live=True))
    previews = [e for e in events if isinstance(e, jobs.Preview)]
    assert isinstance(end, jobs.Finished) and end.images == () and len(previews) == 1
    normal, _ = run(runner, job(sg_files["sg2-skip"], seeds=(2,)))
    assert np.array_equal(pixels(previews[0].image), pixels(normal.images[0]))


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".webp", ""])
def test_walk_exports(runner, sg_files, tmp_path, suffix):
    out = tmp_path / f"walk{suffix}"
    spec = jobs.StyleGANWalkJob(model=jobs.ModelRef(str(sg_files["sg2-skip"])), seeds=(1, 2, 3),
                                frames_per_transition=3, fps=12, out=str(out), space="z" if suffix else "w")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    assert spec.total_steps == 7 and end.records[0]["walk"]["frames"] == 7
    assert end.records[0]["walk"]["output"] == str(out)
    if suffix == ".gif":
        with Image.open(out) as im:
            assert im.n_frames == 7
    elif suffix == ".mp4":
        import av

        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 7
    elif suffix == "":
        assert sorted(p.name for p in out.iterdir())[0] == "frame_00000.png" and len(list(out.iterdir())) == 7
    else:
        assert out.stat().st_size > 0


def test_a_walk_is_the_stylegan_travel(runner, sg_files, tmp_path):
    """One implementation: a walk's frames are the frames of the TravelJob it describes."""
    from aigc_desktop.core import interpolate as ip

    out = tmp_path / "walk"
    spec = jobs.StyleGANWalkJob(model=jobs.ModelRef(str(sg_files["sg2-skip"])), seeds=(1, 2), frames_per_transition=3,
                                space="z", easing="smooth", truncation_psi=0.6, out=str(out))
    assert isinstance(run(runner, spec)[0], jobs.Finished)
    keys = [ip.Keyframe(seed=1), ip.Keyframe(seed=2)]
    travel = jobs.TravelJob(travel="stylegan", model=spec.model, stylegan=(("truncation_psi", 0.6),),
                            timeline=ip.Timeline.uniform(keys, frames=3, easing="ease-in-out").to_state())
    end, events = run(runner, travel)
    frames = {e.index: e.image for e in events if isinstance(e, jobs.TravelFrame)}
    walked = sorted(out.iterdir())
    assert len(walked) == len(frames) == 4
    for i, path in enumerate(walked):
        assert np.array_equal(pixels(Image.open(path)), pixels(frames[i]))


def test_cancelled_walk_leaves_no_file(runner, sg_files, tmp_path):
    out = tmp_path / "walk.mp4"
    spec = jobs.StyleGANWalkJob(model=jobs.ModelRef(str(sg_files["sg2-skip"])), seeds=(1, 2), frames_per_transition=20,
                                out=str(out))
    end, _ = run(runner, spec, cancel_after=3)
    assert isinstance(end, jobs.Cancelled)
    assert list(tmp_path.iterdir()) == []


def test_convert_job(runner, sg_files, tmp_path):
    spec = jobs.StyleGANConvertJob(model=jobs.ModelRef(str(sg_files["sg3-t"])), out=str(tmp_path / "out"))
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished) and end.images == ()
    assert (tmp_path / "out" / "stylegan.json").is_file()
    assert any(isinstance(e, jobs.Status) and "Converted" in e.text for e in events)


def test_bad_files_fail_with_one_line(runner, sg_files, tmp_path):
    evil = tmp_path / "evil.pkl"
    from aigc_desktop.testing.stylegan import write_malicious_pickle

    write_malicious_pickle(evil, tmp_path / "pwned")
    end, _ = run(runner, job(evil, seeds=(1,)))
    assert isinstance(end, jobs.Failed) and "refused" in end.message and "\n" not in end.message
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kw,message", [
    ({"seeds": ()}, "at least one seed"), ({"seeds": (-1,)}, "Seeds must be"), ({"noise_mode": "loud"}, "Noise mode"),
    ({"mix_layers": "coarse"}, "mixing seed"), ({"mix_seed": 1, "mix_layers": "3-x"}, "Mixing layers"),
    ({"truncation_psi": float("inf")}, "Truncation psi"), ({"truncation_cutoff": -1}, "cutoff"),
])
def test_spec_validation(kw, message):
    with pytest.raises(InvalidParameter, match=message):
        job("x.pkl", **kw).validate()


def test_walk_validation():
    base = dict(model=jobs.ModelRef("x.pkl"), seeds=(1, 2), out="w.gif")
    jobs.StyleGANWalkJob(**base).validate()
    for bad, message in (({"seeds": (1,)}, "two keyframe"), ({"out": ""}, "where to write"),
                         ({"out": "w.avi"}, r"\.avi"), ({"space": "q"}, "space"), ({"fps": 0}, "per second")):
        with pytest.raises(InvalidParameter, match=message):
            jobs.StyleGANWalkJob(**{**base, **bad}).validate()


def test_writers_and_grid(tmp_path):
    frames = [Image.fromarray(np.full((9, 11, 3), i * 20, np.uint8)) for i in range(5)]
    assert export.format_for(tmp_path / "a.MP4") == "mp4" and export.format_for(tmp_path / "seq") == "png"
    with pytest.raises(export.ExportError, match=".avi"):
        export.format_for("x.avi")
    mp4 = export.export_frames(frames, tmp_path / "odd.mp4", fps=10)  # odd sizes are padded to even
    import av

    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (12, 10)
    with pytest.raises(export.ExportError, match="first was"):
        export.export_frames(frames + [Image.new("RGB", (4, 4))], tmp_path / "bad.gif")
    assert not (tmp_path / "bad.gif").exists()
    grid = export.grid_image(frames, cols=2)
    assert grid.size == (22, 27)


def test_stylegan3_renders_with_the_users_transform_not_one_left_in_the_file(runner, tmp_path):
    """NVIDIA's gen_images.py and visualizer overwrite input.transform with the user's transform (identity by
    default) before every image; a file whose buffer holds another transform must still give their image."""
    from aigc_desktop.engines.stylegan import loaders, sampling
    from aigc_desktop.engines.stylegan.stylegan3 import input_transform
    from aigc_desktop.testing.stylegan import make_generator

    G = make_generator("sg3-t", seed=3)
    G.synthesis.input.transform.copy_(input_transform((0.3, -0.1), 20.0))  # e.g. left by an editing tool
    path = loaders.save_ours(G, tmp_path / "moved")
    for translate, rotate in (((0.0, 0.0), 0.0), ((0.2, 0.1), -30.0)):
        end, _ = run(runner, job(path, seeds=(4,), translate=translate, rotate=rotate))
        assert isinstance(end, jobs.Finished), getattr(end, "message", "")
        ws = sampling.latent_ws(G, sampling.Latent(seed=4))
        expected = sampling.to_pil(sampling.synthesize(G, ws, transform=input_transform(translate, rotate)))[0]
        assert np.array_equal(pixels(end.images[0]), pixels(expected))


def test_engines_of_one_process_share_one_model_cache_per_device(sg_files):
    """The main queue's lane and the live view's lane each have an engine: the model is loaded once."""
    from aigc_desktop.engines.stylegan import engine as sg_engine

    main, live = (sg_engine.StyleGANEngine(EngineOptions(device="cpu", threads=1)) for _ in range(2))
    spec = jobs.StyleGANJob(model=jobs.ModelRef(str(sg_files["ours"]), kind="stylegan"), seeds=(1,), live=True)
    try:
        assert main.model(spec) is live.model(spec)
        assert main._cache is live._cache
        main.close()
        assert live._cache.get(next(iter(live._cache._items))) is not None  # still held for the live view
    finally:
        main.close()
        live.close()
    users = sg_engine._shared.get("cpu", (None, set()))[1]
    assert id(main) not in users and id(live) not in users  # the last one to leave frees the models
