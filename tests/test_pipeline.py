"""The live loop end to end: synthetic and camera sources, the window, keys, a camera that fails."""

import threading

import numpy as np
import pygame
import pytest
import torch

from realtime.control.plane import Action, ShowState, apply_action
from realtime.dream.dreamer import FrameDreamer, build_dreamer
from realtime.dream.frames import residual_array
from realtime.io.display import Window
from realtime.io.sources.camera import CameraSource
from realtime.io.sources.opener import open_source
from realtime.loop.compose import add_upscaled
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.params import DreamParams

CPU = torch.device("cpu")
DREAM_SIZE = (160, 90)


@pytest.fixture
def dreamer(lite0) -> FrameDreamer:
    return build_dreamer(DreamParams(layer="block3"), DREAM_SIZE, CPU, network=lite0, seed=0)


def _state(dreamer: FrameDreamer) -> ShowState:
    return ShowState(dreamer.params, dreamer.network.spec.layers)


def test_headless_loop_dreams_every_frame(dreamer):
    with open_source("synthetic", paced=False, size=(320, 180)) as source:
        pipeline = Pipeline(source, dreamer, _state(dreamer))
        pipeline.run(5)
        frame = pipeline.last_frame
        output = pipeline.last_output
    assert pipeline.stats.frames == 5
    assert output.shape == frame.image.shape and output.dtype == np.uint8
    assert np.abs(output.astype(int) - frame.image.astype(int)).mean() > 2.0
    assert pipeline.stats.latency_ms.p50 > 0 and pipeline.stats.dream_ms.p50 > 0


def test_compose_adds_the_upscaled_residual_at_full_resolution(dreamer):
    frame = np.full((180, 320, 3), 100, np.uint8)
    residual = residual_array(dreamer.residual(frame))
    assert residual.shape == (DREAM_SIZE[1], DREAM_SIZE[0], 3)
    output = add_upscaled(frame, residual)
    assert output.shape == frame.shape
    # the mean of the output moves with the mean of the residual (an add, not a replace)
    assert abs((output.astype(float) - 100).mean() - residual.mean()) < 1.0


def test_window_shows_exactly_the_composed_frame(dreamer):
    with open_source("synthetic", paced=False, size=(320, 180)) as source:
        with Window(fullscreen=False, size=(320, 180), hud=False) as window:
            state = _state(dreamer)
            state.hud = False
            pipeline = Pipeline(source, dreamer, state, ShowIO(window=window))
            pipeline.run(2)
            shown = pygame.surfarray.array3d(pygame.display.get_surface()).transpose(1, 0, 2)
    np.testing.assert_array_equal(shown, pipeline.last_output)


def _post_key(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_keys_change_layer_strength_steps_snapshot_and_quit(dreamer, tmp_path):
    with open_source("synthetic", paced=False, size=(320, 180)) as source:
        with Window(fullscreen=False, size=(320, 180)) as window:
            window.poll()  # start-up events
            state = _state(dreamer)
            pipeline = Pipeline(source, dreamer, state, ShowIO(window=window, snapshot_dir=str(tmp_path)))
            pipeline.tick()
            for key in (pygame.K_RIGHT, pygame.K_UP, pygame.K_RIGHTBRACKET, pygame.K_s, pygame.K_h):
                _post_key(key)
            pipeline.tick()
            assert dreamer.params.layer == "block4" and dreamer.layer_name == "block4"
            assert dreamer.params.lr > DreamParams().lr
            assert dreamer.params.steps == DreamParams().steps + 1
            assert not state.hud
            pipeline.io.snapshots.flush()  # written on their own thread
            assert len(list(tmp_path.glob("*.png"))) == 1
            _post_key(pygame.K_q)
            pipeline.run()  # returns because Q quits
    assert state.quit


def test_freeze_keeps_the_picture(dreamer):
    with open_source("synthetic", paced=False, size=(320, 180)) as source:
        state = _state(dreamer)
        pipeline = Pipeline(source, dreamer, state)
        first = pipeline.tick()
        apply_action(state, Action.FREEZE)
        assert pipeline.tick() is first
        apply_action(state, Action.FREEZE)
        assert pipeline.tick() is not first


def test_invalid_parameter_change_is_rejected_and_the_show_goes_on(dreamer):
    with open_source("synthetic", paced=False, size=(320, 180)) as source:
        state = _state(dreamer)
        pipeline = Pipeline(source, dreamer, state)
        pipeline.tick()
        state.params = state.params.replace(layer="block99")
        pipeline.apply_params()
        assert state.params.layer == "block3"
        assert pipeline.tick() is not None


class FlakyCamera:
    """A fake cv2.VideoCapture: `frames` good frames, then read() fails (unplugged)."""

    def __init__(self, frames: int, value: int):
        self.left, self.value = frames, value

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.full((90, 160, 3), self.value, np.uint8)

    def release(self) -> None:
        pass

    def get(self, prop: int) -> float:
        return 30.0


def test_a_camera_that_fails_mid_run_is_reopened_and_frames_resume(dreamer):
    opened = []
    reconnected = threading.Event()

    def factory(device):
        opened.append(device)
        if len(opened) == 1:
            return FlakyCamera(frames=3, value=40)  # unplugged after three frames
        reconnected.set()
        return FlakyCamera(frames=10_000, value=200)

    source = CameraSource(0, capture_factory=factory, retry_delay=0.01)
    try:
        pipeline = Pipeline(source, dreamer, _state(dreamer))
        delivered = []
        for _ in range(40):
            pipeline.tick()  # while the camera is away the last frame is dreamed again
            delivered.append(int(pipeline.last_frame.image.mean()))
            if reconnected.is_set() and delivered[-1] == 200:
                break
    finally:
        source.close()
    assert len(opened) >= 2
    assert 40 in delivered and delivered[-1] == 200
    assert pipeline.stats.frames == len(delivered)


def test_torch_composer_matches_opencv_compose(dreamer):
    """The Composer (the GPU path's code, run here on the CPU) adds the same upscaled residual."""
    from realtime.loop.compose import Composer, add_upscaled_tensor

    frame = np.random.default_rng(1).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    residual = dreamer.residual(frame)
    expected = add_upscaled(frame, residual_array(residual))
    composer = Composer(torch.device("cpu"))
    np.testing.assert_array_equal(composer.compose(frame, residual), expected)
    # the GPU path's arithmetic, run on the CPU: bilinear upscale and saturating add, as OpenCV
    on_torch = add_upscaled_tensor(torch.from_numpy(frame), residual).numpy()
    assert np.abs(on_torch.astype(int) - expected.astype(int)).max() <= 1


def test_the_window_scales_the_frame_straight_into_the_screen():
    """The scaled frame on screen is OpenCV's resize of it, centred, with black bars."""
    import cv2

    image = np.random.default_rng(2).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    with Window(fullscreen=False, size=(400, 300), hud=False) as window:
        window.show(image)
        shown = pygame.surfarray.array3d(pygame.display.get_surface()).transpose(1, 0, 2)
    expected = cv2.resize(image, (400, 225), interpolation=cv2.INTER_LINEAR)
    top = (300 - 225) // 2
    assert np.abs(shown[top : top + 225].astype(int) - expected.astype(int)).max() <= 1
    assert shown[:top].max() == 0 and shown[top + 225 :].max() == 0
