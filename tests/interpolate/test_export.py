"""engines/export.py: every format reads back with its frame count, size and fps; PNG frames carry their
records; ping-pong, scale, loop count; failed or cancelled exports leave nothing; ExportJob on the queue."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core import jobs
from aigc_desktop.core.errors import CancelRequested
from aigc_desktop.engines import export


def frames(n=5, size=(12, 10)):
    return [Image.fromarray(np.full((size[1], size[0], 3), 20 + i * 40, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".mp4", ".webm"])
def test_animations_read_back(tmp_path, suffix):
    out = export.export_frames(frames(), tmp_path / f"a{suffix}", fps=10, scale=2, pingpong_frames=True, loop=3)
    n = 5 + 3  # forth, then back without the ends
    if suffix in (".mp4", ".webm"):
        import av

        with av.open(str(out)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == ("h264" if suffix == ".mp4" else "vp9")
            assert (s.width, s.height) == (24, 20) and float(s.average_rate) == 10
            decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(decoded) == n
        # lossy codecs: a flat grey frame comes back within a few levels (measured: <= 3)
        assert abs(float(decoded[1].mean()) - 60) < 6 and abs(float(decoded[-1].mean()) - 60) < 6
    else:
        with Image.open(out) as im:
            assert im.n_frames == n and im.size == (24, 20)
            assert im.info["loop"] == 3
            im.seek(1)
            im.load()  # WebP reports a frame's duration once it is decoded
            assert im.info["duration"] == 100  # 1000 / fps ms
            assert abs(float(np.asarray(im.convert("RGB")).mean()) - 60) < 3


def test_png_frames_carry_their_parameters(tmp_path):
    records = [{"engine": "travel", "seed": i, "prompt": f"p{i}"} for i in range(3)]
    out = export.export_frames(frames(3), tmp_path / "seq", fps=6, records=records)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    with Image.open(out / names[2]) as im:
        record = json.loads(im.info["aigc_desktop"])
        assert (record["seed"], record["frame"], record["fps"]) == (2, 2, 6.0) and im.size == (12, 10)
        assert im.info["parameters"].startswith("p2")


def test_failed_and_cancelled_exports_leave_nothing(tmp_path):
    with pytest.raises(export.ExportError, match="first was"):
        export.export_frames(frames() + [Image.new("RGB", (4, 4))], tmp_path / "bad.webm", fps=5)
    calls = []
    with pytest.raises(CancelRequested):
        export.export_frames(frames(), tmp_path / "c.mp4", fps=5, cancelled=lambda: len(calls) >= 2,
                             progress=calls.append)
    with pytest.raises(CancelRequested):
        export.export_frames(frames(), tmp_path / "seq", fps=5, cancelled=lambda: len(calls) >= 4,
                             progress=calls.append)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    with pytest.raises(export.ExportError, match=r"\.mov"):
        export.open_writer(tmp_path / "x.mov")


def test_export_job_on_the_runner(tmp_path):
    from aigc_desktop.core.runner import EngineOptions, Runner

    spec = jobs.ExportJob(frames=tuple(frames(4)), out=str(tmp_path / "e.gif"), fps=8, pingpong=True)
    events = []
    end = Runner(EngineOptions()).run(spec, events.append, lambda: False)
    assert isinstance(end, jobs.Finished) and end.images == ()
    assert [e.step for e in events if isinstance(e, jobs.Progress)] == list(range(1, 7))
    with Image.open(tmp_path / "e.gif") as im:
        assert im.n_frames == 6
    bad = jobs.ExportJob(frames=tuple(frames(2)), out=str(tmp_path / "e.avi"))
    end = Runner(EngineOptions()).run(bad, events.append, lambda: False)
    assert isinstance(end, jobs.Failed) and ".avi" in end.message
