"""The virtual camera: sends frames where a backend exists; one clear line where none does."""

import numpy as np
import pytest

from realtime.io.virtualcam import VirtualCamera, VirtualCameraError


def _open_or_skip() -> VirtualCamera:
    try:
        return VirtualCamera(320, 180, 30)
    except VirtualCameraError as exc:
        message = str(exc)
        assert "\n" not in message
        assert "pip install 'dreamcam[vj]'" in message or "v4l2loopback" in message or "OBS" in message
        pytest.skip(f"no virtual camera here: {message}")


def test_without_a_backend_one_line_says_what_to_install():
    _open_or_skip()  # where a backend exists, there is nothing to say: the next test sends frames


def test_frames_are_sent_at_the_camera_size():
    camera = _open_or_skip()
    try:
        camera.send(np.zeros((360, 640, 3), np.uint8))
    finally:
        camera.close()  # the link's thread publishes what it was given before it closes
    assert camera.frames_sent == 1


def test_missing_package_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyvirtualcam(name, *args, **kwargs):
        if name == "pyvirtualcam":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyvirtualcam)
    with pytest.raises(VirtualCameraError, match=r"pip install 'dreamcam\[vj\]'"):
        VirtualCamera(320, 180, 30)
