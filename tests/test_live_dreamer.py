"""The embedding API: `from realtime import LiveDreamer; out = d(frame)` dreams like the live show."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.errors import ConfigError
from realtime.show.presets import load_look

SIZE = (96, 54)


@pytest.fixture
def frame(chelsea) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(chelsea, (192, 108), interpolation=cv2.INTER_AREA))


def test_importing_realtime_does_not_load_torch():
    code = "import sys, realtime; realtime.LiveDreamer; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_a_live_dreamer_dreams_the_look_and_deepens_call_after_call(frame):
    from realtime import LiveDreamer

    d = LiveDreamer(preset="eyes", dream_size=SIZE, device="cpu")
    assert d.params == load_look("eyes")  # the bundled look, whole
    assert d.backend == "eager"  # `auto` on a CPU, as in the live show
    first = d(frame)
    assert first.shape == frame.shape and first.dtype == np.uint8
    second = d(frame)
    third = d(frame)
    before, after_one, after_three = d.activation(frame), d.activation(first), d.activation(third)
    assert after_one > before  # the look's layer fires harder on the dream
    assert after_three > after_one  # warm start: each call deepens the last dream, not a fresh start
    change = [np.abs(out.astype(int) - frame.astype(int)).mean() for out in (first, second, third)]
    assert 0.5 < change[0] < change[1] < change[2]
    d.reset()  # a cut: the carried dream is dropped
    fresh = d(frame)
    assert np.abs(fresh.astype(int) - frame.astype(int)).mean() < change[2]


@pytest.mark.slow
def test_a_live_dreamer_changes_look_between_frames_and_rejects_bad_input(frame):
    from realtime import LiveDreamer

    d = LiveDreamer(dream_size=SIZE, device="cpu", layer="block3", warm_start="residual")
    assert d.params.layer == "block3" and d.params.warm_start == "residual"
    d(frame)
    d.set(layer="block4", lr=0.05)
    assert d.params.layer == "block4" and d.params.lr == 0.05
    with pytest.raises(ConfigError, match="HxWx3 uint8 RGB"):
        d(frame.astype(np.float32))
    with pytest.raises(ConfigError, match="HxWx3 uint8 RGB"):
        d(frame[..., 0])
    with pytest.raises(ConfigError, match="lr must be between"):
        d.set(lr=5.0)
    with pytest.raises(ConfigError, match="neither a preset file nor a bundled look"):
        LiveDreamer(preset="eyez")
