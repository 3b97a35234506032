"""A travel through the engine process: every frame crosses the pipe (previews may be coalesced, frames
never), pictures come back equal."""

from __future__ import annotations

import threading

import numpy as np

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core import jobs
from aigc_desktop.core.queue import JobQueue
from aigc_desktop.core.runner import EngineOptions


def test_travel_frames_cross_the_engine_process(stylegan_path, runner):
    from aigc_desktop.ui.engine_client import EngineClient

    state = ip.Timeline.uniform([ip.Keyframe(seed=1), ip.Keyframe(seed=2)], frames=5).to_state()
    spec = jobs.TravelJob(travel="stylegan", model=jobs.ModelRef(str(stylegan_path)), timeline=state,
                          device="cpu")
    queue = JobQueue()
    events, done = [], threading.Event()
    queue.subscribe(lambda e: (events.append(e), isinstance(e, (jobs.Finished, jobs.Failed)) and done.set()))
    client = EngineClient(queue, EngineOptions(device="cpu", threads=1), preload=False)
    client.start()
    try:
        queue.submit(spec)
        assert done.wait(120), events
    finally:
        assert client.stop()
    assert isinstance(events[-1], jobs.Finished), getattr(events[-1], "message", "")
    far = {e.index: e.image for e in events if isinstance(e, jobs.TravelFrame)}
    assert sorted(far) == list(range(6))
    here = {}
    runner.run(jobs.TravelJob(**{**spec.__dict__, "id": "here"}), lambda e: isinstance(e, jobs.TravelFrame)
               and here.__setitem__(e.index, e.image), lambda: False)
    for i in range(6):
        assert np.array_equal(np.asarray(far[i]), np.asarray(here[i])), i
