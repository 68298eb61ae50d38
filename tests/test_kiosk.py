"""Unattended mode: the attract loop after a still spell, back on motion; keys locked but a chord."""

import time

import numpy as np
import pygame

from realtime.control.plane import Action, ShowState
from realtime.io.display import Window
from realtime.io.sources.base import Frame, Source
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import AttractLoop, Pipeline
from realtime.show.attract import AttractMode, MotionDetector
from tests.fakes import SlowDreamer

STILL = np.full((36, 64, 3), 90, np.uint8)


def _moving(n: int) -> np.ndarray:
    image = STILL.copy()
    image[:, (n * 7) % 48 : (n * 7) % 48 + 16] = 250  # a bright bar walking across
    return image


def test_attract_starts_after_the_idle_time_and_stops_on_the_first_motion():
    attract = AttractMode(idle_s=60.0)
    assert not attract.update(STILL, now=0.0)
    assert not attract.update(STILL, now=59.0)
    assert attract.update(STILL, now=61.0)
    assert attract.update(STILL, now=500.0)
    assert not attract.update(_moving(1), now=501.0)  # within one frame of motion
    assert not attract.update(STILL, now=502.0)


def test_sensor_noise_is_not_motion():
    detector = MotionDetector()
    rng = np.random.default_rng(0)
    noisy = [np.clip(STILL + rng.normal(0, 2, STILL.shape), 0, 255).astype(np.uint8) for _ in range(5)]
    assert not any(detector.moved(image) for image in noisy)
    assert detector.moved(_moving(3))


class ScriptedCamera(Source):
    """Still frames until `move` is set, then moving ones."""

    def __init__(self):
        super().__init__("scripted camera", 60.0)
        self.n, self.move = 0, False

    def read(self, timeout: float = 0.5) -> Frame | None:
        time.sleep(1 / 120)
        self.n += 1
        return Frame(_moving(self.n) if self.move else STILL.copy(), time.perf_counter(), self.n)


def test_pipeline_dreams_the_scene_while_idle_and_the_camera_once_someone_moves():
    camera, scene = ScriptedCamera(), SyntheticSource((64, 36), paced=False)
    dreamer = SlowDreamer(seconds=0.001)
    dreamed = []
    dreamer_residual = dreamer.residual

    def remember(image):
        dreamed.append(image)
        return dreamer_residual(image)

    dreamer.residual = remember
    pipeline = Pipeline(
        camera, dreamer, ShowState(dreamer.params, ("block5",)), threaded=True,
        attract=AttractLoop(AttractMode(idle_s=0.2), scene),
    )  # fmt: skip
    pipeline.start_worker()
    try:
        deadline = time.monotonic() + 5
        while not pipeline.attract.mode.active and time.monotonic() < deadline:
            pipeline.tick()
        assert pipeline.attract.mode.active
        pipeline.tick()
        pipeline.worker.wait_for(pipeline.stats.dreams + 1, timeout=2)
        assert not np.array_equal(dreamed[-1], STILL)  # the synthetic scene is being dreamed
        assert "attract loop" in " ".join(pipeline.hud_lines())
        camera.move = True
        pipeline.tick()
        assert not pipeline.attract.mode.active
        assert np.array_equal(pipeline.last_frame.image, _moving(camera.n))
    finally:
        pipeline.stop_worker()
        scene.close()


def _key(key: int, mod: int = 0) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=mod, unicode="", scancode=0))


def test_kiosk_window_ignores_keys_and_closing_but_quits_on_the_chord():
    """A visitor's key does nothing but take a keepsake (an arcade button types some key: any one
    works, with no setup); held modifiers and the window's close do nothing; the chord quits."""
    with Window(fullscreen=False, size=(64, 36), kiosk=True) as window:
        window.poll()
        for key in (pygame.K_q, pygame.K_ESCAPE, pygame.K_SPACE, pygame.K_RIGHT, pygame.K_RETURN):
            _key(key)
        for key in (pygame.K_LCTRL, pygame.K_RSHIFT):
            _key(key)
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        assert window.poll() == [Action.KEEPSAKE] * 5
        _key(pygame.K_q, pygame.KMOD_LCTRL | pygame.KMOD_LSHIFT)
        assert window.poll() == [Action.QUIT]
