"""The show window under SDL's dummy video driver: exact pixels, aspect fit, HUD, keys, lifecycle."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pygame
import pytest

from realtime.control.plane import Action, Command
from realtime.errors import ConfigError, DreamcamError
from realtime.io.display import Window
from realtime.io.hud import alert

SIZE = (320, 180)  # 16:9


@pytest.fixture(autouse=True)
def dummy_sdl(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # SDL reads these when the display initialises, so every test gets a headless screen.
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    yield
    pygame.display.quit()


@pytest.fixture
def window() -> Iterator[Window]:
    with Window(fullscreen=False, size=SIZE, hud=False) as win:
        yield win


def screen_pixels() -> np.ndarray:
    """The display surface as HxWx3 RGB (surfarray is indexed x, y)."""
    return pygame.surfarray.array3d(pygame.display.get_surface()).transpose(1, 0, 2)


def test_same_size_image_is_shown_exactly(window: Window) -> None:
    assert window.size == SIZE
    image = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    window.show(image)
    np.testing.assert_array_equal(screen_pixels(), image)


def test_non_contiguous_image_is_accepted(window: Window) -> None:
    bgr = np.random.default_rng(1).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    window.show(bgr[..., ::-1])
    np.testing.assert_array_equal(screen_pixels(), bgr[..., ::-1])


def test_wide_image_is_letterboxed_and_centred(window: Window) -> None:
    colour = (200, 60, 120)
    image = np.full((100, 200, 3), colour, np.uint8)  # 2:1 into 16:9 -> 320x160, 10 px bars top and bottom
    window.show(image)
    pixels = screen_pixels()
    assert not pixels[:10].any()
    assert not pixels[170:].any()
    assert (pixels[10:170] == colour).all()


def test_tall_image_is_pillarboxed_and_centred(window: Window) -> None:
    image = np.zeros((400, 400, 3), np.uint8)  # shrunk to 180x180, 70 px bars left and right
    image[:, :200] = (255, 0, 0)
    image[:, 200:] = (0, 0, 255)
    window.show(image)
    pixels = screen_pixels()
    assert not pixels[:, :70].any()
    assert not pixels[:, 250:].any()
    assert (pixels[:, 70:159] == (255, 0, 0)).all()
    assert (pixels[:, 161:250] == (0, 0, 255)).all()


def test_wrong_image_shape_is_refused(window: Window) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        window.show(np.zeros((SIZE[1], SIZE[0]), np.uint8))


def test_hud_draws_in_the_top_left_only_when_visible(window: Window) -> None:
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    lines = ["12.3 fps  80 ms", "layer inception4c"]

    window.show(image, lines)
    np.testing.assert_array_equal(screen_pixels(), image)  # built with hud=False

    window.hud_visible = True
    window.show(image, lines)
    pixels = screen_pixels()
    assert (pixels[:40, :120] != image[:40, :120]).any()
    np.testing.assert_array_equal(
        pixels[SIZE[1] // 2 :, SIZE[0] // 2 :], image[SIZE[1] // 2 :, SIZE[0] // 2 :]
    )

    window.hud_visible = False
    window.show(image, lines)
    np.testing.assert_array_equal(screen_pixels(), image)


def test_alert_lines_are_drawn_red_and_status_lines_white(window: Window) -> None:
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    window.hud_visible = True
    window.show(image, ["REC 00:03"])
    white = screen_pixels()[:40, :160].astype(int)
    window.show(image, [alert("REC 00:03")])
    red = screen_pixels()[:40, :160].astype(int)
    assert (white[..., 1] > 200).any() and not (red[..., 1] > 200).any()  # no white text left
    assert (red[..., 0] > 200).any()  # the text, in red, without its mark


def test_keys_map_to_actions_in_order(window: Window) -> None:
    window.poll()  # drop the window's own start-up events
    keys = {
        pygame.K_q: Action.QUIT,
        pygame.K_ESCAPE: Action.QUIT,
        pygame.K_SPACE: Action.FREEZE,
        pygame.K_LEFT: Action.PREV_LAYER,
        pygame.K_RIGHT: Action.NEXT_LAYER,
        pygame.K_UP: Action.STRONGER,
        pygame.K_DOWN: Action.WEAKER,
        pygame.K_LEFTBRACKET: Action.FEWER_STEPS,
        pygame.K_RIGHTBRACKET: Action.MORE_STEPS,
        pygame.K_s: Action.SNAPSHOT,
        pygame.K_h: Action.TOGGLE_HUD,
        pygame.K_f: Action.TOGGLE_FULLSCREEN,
    }
    order = [pygame.K_RIGHT, pygame.K_x, *keys]  # K_x is unmapped and must be ignored
    for key in order:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
        pygame.event.post(pygame.event.Event(pygame.KEYUP, key=key, mod=0, unicode="", scancode=0))
    pygame.event.post(pygame.event.Event(pygame.QUIT))

    assert window.poll() == [Action.NEXT_LAYER, *keys.values(), Action.QUIT]
    assert window.poll() == []


def test_show_keys_presets_record_and_learn(window: Window) -> None:
    window.poll()
    keys = {
        pygame.K_1: Command(Action.PRESET, 1),
        pygame.K_9: Command(Action.PRESET, 9),
        pygame.K_p: Action.SAVE_PRESET,
        pygame.K_COMMA: Action.PREV_PRESET,
        pygame.K_PERIOD: Action.NEXT_PRESET,
        pygame.K_r: Action.TOGGLE_RECORD,
        pygame.K_l: Action.MIDI_LEARN,
    }
    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
    assert window.poll() == list(keys.values())


def test_close_twice_and_use_after_close(window: Window) -> None:
    window.close()
    window.close()
    assert not pygame.display.get_init()
    with pytest.raises(RuntimeError, match="closed"):
        window.show(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))


@pytest.mark.parametrize("fullscreen", [True, False])
def test_missing_display_index_is_a_config_error(fullscreen: bool) -> None:
    # The dummy driver has exactly one display.
    with pytest.raises(ConfigError, match="1 display"):
        Window(fullscreen=fullscreen, display=5, size=SIZE)
    assert not pygame.display.get_init()


def test_no_video_device_suggests_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "no-such-driver")
    with pytest.raises(DreamcamError, match="--headless"):
        Window(fullscreen=False, size=SIZE)


def test_fullscreen_opens_at_desktop_size_and_toggles_back(window: Window) -> None:
    desktop = pygame.display.get_desktop_sizes()[0]
    window.toggle_fullscreen()
    assert window.fullscreen
    assert window.size == desktop
    window.show(np.zeros((90, 160, 3), np.uint8), ["hud"])
    window.toggle_fullscreen()
    assert not window.fullscreen
    assert window.size == SIZE


def test_starts_fullscreen() -> None:
    with Window(display=0) as win:
        assert win.fullscreen
        assert win.size == pygame.display.get_desktop_sizes()[0]
        win.show(np.zeros((720, 1280, 3), np.uint8), ["fps"])


def test_bad_window_size_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="positive"):
        Window(fullscreen=False, size=(0, 180))


@pytest.mark.parametrize("nvidia", [False, True])
def test_sdl_framebuffer_acceleration_is_off_only_without_a_gpu_driver(nvidia):
    """Mesa's software GL costs 12 ms per 1080p frame on a CPU machine, so SDL's GL framebuffer is
    off there; where the NVIDIA driver is loaded SDL's own default stays."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "real = os.path.exists\n"
        f"os.path.exists = lambda p: {nvidia} if p == '/proc/driver/nvidia/version' else real(p)\n"
        "os.environ.pop('SDL_FRAMEBUFFER_ACCELERATION', None)\n"
        "import realtime.io.display\n"
        "print(os.environ.get('SDL_FRAMEBUFFER_ACCELERATION'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("None" if nvidia else "0")
