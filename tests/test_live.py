"""The live loop: the display runs at the camera's rate and never waits for the dream worker."""

import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from realtime.control.plane import Action, ShowState, apply_action
from realtime.dream.dreamer import build_dreamer
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.loop.worker import DreamWorker
from realtime.params import DreamParams
from tests.fakes import SlowDreamer


def _live(dreamer, fps: float = 60.0) -> tuple[Pipeline, SyntheticSource]:
    source = SyntheticSource((64, 36), paced=True, fps=fps)
    state = ShowState(dreamer.params, ("block5",))
    return Pipeline(source, dreamer, state, threaded=True), source


def test_display_keeps_the_camera_rate_while_the_dream_is_slow():
    dreamer = SlowDreamer(seconds=0.2)
    pipeline, source = _live(dreamer)
    with source:
        pipeline.run(max_frames=30)  # half a second of camera at 60 fps
    assert pipeline.stats.frames == 30
    assert 1 <= pipeline.stats.dreams <= 5  # the dream managed a few updates meanwhile
    frame = pipeline.last_frame.image.astype(int)
    # the newest residual (+40) rides on the newest camera frame
    assert np.abs(pipeline.last_output.astype(int) - np.minimum(frame + 40, 255)).max() <= 1


def test_a_failing_dream_does_not_stop_the_show():
    dreamer = SlowDreamer(seconds=0.01, fail_on={2, 3})
    pipeline, source = _live(dreamer, fps=120.0)
    with source:
        pipeline.start_worker()
        try:
            while dreamer.calls < 6:
                pipeline.tick()
            assert pipeline.worker.wait_for(count=3, timeout=5.0) is not None
        finally:
            pipeline.stop_worker()
    assert pipeline.stats.dreams >= 3  # dreams after the failures were published
    assert pipeline.stats.frames > 6


def test_worker_applies_parameter_changes_between_dreams(lite0):
    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0)
    state = ShowState(dreamer.params, lite0.spec.layers)
    with SyntheticSource((96, 54), paced=True, fps=60.0) as source:
        pipeline = Pipeline(source, dreamer, state, threaded=True)
        pipeline.start_worker()
        try:
            pipeline.tick()
            apply_action(state, Action.NEXT_LAYER)
            pipeline.apply_params()
            deadline = time.monotonic() + 20
            while dreamer.layer_name != "block4" and time.monotonic() < deadline:
                pipeline.tick()
        finally:
            pipeline.stop_worker()
    assert dreamer.layer_name == "block4"


def test_worker_dreams_only_the_newest_frame():
    dreamer = SlowDreamer(seconds=0.05)
    seen = []
    worker = DreamWorker(dreamer, on_dream=lambda result: seen.append(result.frame.index))
    image = np.zeros((18, 32, 3), np.uint8)
    frames = [SimpleNamespace(image=image, index=i, t_capture=0.0) for i in range(20)]
    try:
        for frame in frames:  # handed in far faster than it dreams
            worker.submit(frame)
        worker.wait_for(count=2, timeout=5.0)
    finally:
        worker.stop()
    assert seen[-1] == 19 and len(seen) <= 3


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if thread.name == "dream worker":
            thread.join(timeout=2.0)  # a released hung worker needs a moment to return
            assert not thread.is_alive(), "a dream worker thread outlived its test"


def test_the_governor_in_the_worker_trades_steps_then_size_for_rate(lite0):
    from realtime.loop.governor import GovernorLimits, Quality, QualityGovernor

    params = DreamParams(layer="block3", steps=2)
    dreamer = build_dreamer(params, (96, 54), torch.device("cpu"), network=lite0)
    limits = GovernorLimits(best=Quality(2, (96, 54)), worst=Quality(1, (64, 36)))
    governor = QualityGovernor(target_fps=10_000, limits=limits, window=2)  # unreachable: always too slow
    worker = DreamWorker(dreamer, governor=governor)
    image = np.random.default_rng(0).integers(0, 255, (54, 96, 3), dtype=np.uint8)
    try:
        for i in range(40):
            worker.submit(SimpleNamespace(image=image, index=i, t_capture=0.0))
            worker.wait_for(count=i + 1, timeout=10.0)
    finally:
        worker.stop()
    assert dreamer.effective.steps == 1  # a cap on what was asked for, which stays as asked
    assert dreamer.params.steps == 2
    assert dreamer.dream_size == (64, 36)
    assert worker.latest.residual.shape == (1, 3, 36, 64)


def test_a_dream_that_fails_every_frame_logs_its_traceback_once_then_a_line_a_second(caplog):
    """A failure validation cannot see (a driver fault) used to log one traceback per dream,
    30 a second in a window: the first comes whole, repeats are one rate-limited line."""
    dreamer = SlowDreamer(0.0, fail_on=set(range(1, 50)))
    worker = DreamWorker(dreamer)
    try:
        with caplog.at_level(logging.INFO, logger="realtime.loop.worker"):
            for n in range(20):
                worker.submit(SimpleNamespace(image=np.zeros((18, 32, 3), np.uint8), index=n, t_capture=0.0))
                deadline = time.monotonic() + 5.0
                while dreamer.calls <= n and time.monotonic() < deadline:
                    time.sleep(0.001)
    finally:
        worker.stop()
    assert dreamer.calls >= 20
    tracebacks = [r for r in caplog.records if r.exc_info]
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(tracebacks) == 1 and len(shown) <= 3, [r.getMessage() for r in shown]
    assert "the GPU driver hiccuped" in worker.error


class HangingDreamer(SlowDreamer):
    """A dreamer whose second dream hangs (a stuck driver call) and whose spawn is healthy."""

    def __init__(self, hang_on: int, seconds: float = 0.01):
        super().__init__(seconds)
        self.hang_on, self.release = hang_on, threading.Event()
        self.spawned: list[SlowDreamer] = []
        self.spawn_threads: list[str] = []

    def residual(self, image: np.ndarray) -> torch.Tensor:
        if self.calls + 1 == self.hang_on:
            self.calls += 1
            self.release.wait(10)  # hangs until the test ends
            return torch.zeros(1, 3, 18, 32)
        return super().residual(image)

    def spawn(self) -> SlowDreamer:
        self.spawn_threads.append(threading.current_thread().name)
        fresh = SlowDreamer(self.seconds)
        self.spawned.append(fresh)
        return fresh


def test_watchdog_replaces_a_hung_dream_worker_while_frames_keep_flowing():
    dreamer = HangingDreamer(hang_on=2)
    source = SyntheticSource((64, 36), paced=True, fps=120.0)
    state = ShowState(dreamer.params, ("block5",))
    pipeline = Pipeline(source, dreamer, state, threaded=True, watchdog_s=0.3)
    pipeline.dreams.respawn = HangingDreamer.spawn  # the fake's healthy successor
    try:
        with source:
            pipeline.start_worker()
            deadline = time.monotonic() + 10
            while not (dreamer.spawned and dreamer.spawned[0].calls >= 3) and time.monotonic() < deadline:
                pipeline.tick()
            pipeline.stop_worker()
    finally:
        dreamer.release.set()
    assert pipeline.restarts == 1
    assert dreamer.spawned and dreamer.spawned[0].calls >= 3  # the new worker dreams again
    assert dreamer.spawn_threads == ["dream worker"]  # rebuilt on the new worker's thread, not the display's
    assert pipeline.stats.frames > 30  # the camera kept showing through the hang
    assert "restarted 1x" in " ".join(pipeline.hud_lines())


def test_watchdog_replaces_a_worker_whose_dreams_keep_failing():
    dreamer = HangingDreamer(hang_on=-1)
    dreamer.fail_on = set(range(1, 1000))  # every dream raises (a GPU in an error state, say)
    source = SyntheticSource((64, 36), paced=True, fps=120.0)
    state = ShowState(dreamer.params, ("block5",))
    pipeline = Pipeline(source, dreamer, state, threaded=True, watchdog_s=0.3)
    pipeline.dreams.respawn = HangingDreamer.spawn  # the fake's healthy successor
    with source:
        pipeline.start_worker()
        deadline = time.monotonic() + 10
        while not pipeline.restarts and time.monotonic() < deadline:
            pipeline.tick()
        assert pipeline.worker.wait_for(count=1, timeout=5) is not None  # the fresh dreamer works
        pipeline.stop_worker()
    assert pipeline.restarts == 1


def test_a_key_press_after_the_governor_keeps_its_cap_and_the_hud_shows_both(lite0):
    """The governor caps what was asked for; a later change of the request does not undo the cap."""
    params = DreamParams(layer="block3", steps=3)
    dreamer = build_dreamer(params, (96, 54), torch.device("cpu"), network=lite0)
    dreamer.set_cap(1, (64, 36))  # what the governor decided
    state = ShowState(params, lite0.spec.layers)
    apply_action(state, Action.STRONGER)  # the next key press
    dreamer.set_params(state.params)
    residual = dreamer.residual(np.full((54, 96, 3), 128, np.uint8))
    assert residual.shape == (1, 3, 36, 64)
    assert dreamer.effective.steps == 1 and dreamer.params.steps == 3
    with SyntheticSource((96, 54), paced=False) as source:
        pipeline = Pipeline(source, dreamer, state)
        text = " ".join(pipeline.hud_lines())
    assert "steps 3→1" in text and "dream 96x54→64x36" in text


def test_the_worker_makes_no_optical_flow_call_itself(lite0, chelsea, monkeypatch):
    """Issue 14 P2 / issue 13: the flow runs on its own thread, one frame ahead of the dream."""
    import cv2

    from realtime.dream import flow

    names = []
    estimate = flow.FlowEstimator.estimate

    def recording(self, previous, current):
        names.append(threading.current_thread().name)
        return estimate(self, previous, current)

    monkeypatch.setattr(flow.FlowEstimator, "estimate", recording)
    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0)
    big = cv2.resize(chelsea, (140, 60))
    worker = DreamWorker(dreamer)
    try:
        for n in range(4):  # a pan, each frame handed in once the one before is dreamt
            worker.submit(SimpleNamespace(image=big[:, 2 * n : 2 * n + 128].copy(), index=n, t_capture=0.0))
            worker.wait_for(count=n + 1, timeout=20.0)
    finally:
        worker.stop()
    assert len(names) == 3 and set(names) == {"flow ahead"}
    assert dreamer.warm.field is not None and dreamer.warm.field.motion > 1.0
