"""NDI out and in over loopback, with real cyndilib senders and receivers on the other side.

mDNS does not pass on every machine (containers, CI), so the test set-up (tests/conftest.py) points
NDI at this machine through NDI's own config file (`networks.ips`, found through NDI_CONFIG_DIR):
the same setting docs/VJ.md gives users whose senders sit on another subnet.
"""

import os
import socket
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from realtime.errors import SourceError
from realtime.io.links import LinkError
from realtime.io.ndi import NdiSender, rgb_to_uyvy
from realtime.io.sources.ndi import NdiSource

WAIT_S = 10.0  # every wait on the network is bounded


@pytest.fixture(scope="module")
def ndi():
    """cyndilib (NDI's config points it at 127.0.0.1 for the whole session: tests/conftest.py)."""
    assert os.environ.get("NDI_CONFIG_DIR"), "conftest's ndi_loopback sets it before NDI loads"
    cyndilib = pytest.importorskip("cyndilib", reason="the `ndi` extra (cyndilib) is not installed")
    with socket.socket() as probe:  # NDI senders list themselves on TCP 5960; only one process answers
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", 5960)) == 0:
            pytest.skip(
                "another NDI program runs on this machine (port 5960 answers): loopback discovery "
                "through networks.ips would reach it instead of these tests' senders"
            )
    return cyndilib


def _name(tag: str) -> str:
    return f"dreamcam-test-{tag}-{os.getpid()}"


def _pattern(width: int = 128, height: int = 72) -> np.ndarray:
    """Three colour bars: wrong channel order, colour matrix or row stride all show up in them."""
    image = np.empty((height, width, 3), np.uint8)
    image[:, : width // 3] = (200, 30, 30)
    image[:, width // 3 : 2 * width // 3] = (20, 180, 240)
    image[:, 2 * width // 3 :] = (90, 200, 60)
    return image


class Pump:
    """Calls `send()` at 30 Hz on a thread, as a show or another program would."""

    def __init__(self, send):
        self.send, self._stop = send, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(1 / 30):
            self.send()

    def stop(self):
        self._stop.set()
        self._thread.join(WAIT_S)


def _receive_one(name: str, color_format) -> tuple[np.ndarray, object]:
    """A real cyndilib receiver: find `name`, connect, return its first non-empty frame as RGB."""
    from cyndilib.finder import Finder
    from cyndilib.receiver import Receiver
    from cyndilib.video_frame import VideoFrameSync
    from cyndilib.wrapper.ndi_recv import RecvBandwidth

    deadline = time.monotonic() + WAIT_S
    with Finder() as finder:
        source = None
        while source is None and time.monotonic() < deadline:
            finder.wait(0.2)
            source = next((s for s in finder.iter_sources() if s.valid and s.stream_name == name), None)
        assert source is not None, f"NDI sender {name} not found; visible: {finder.get_source_names()}"
        receiver = Receiver(color_format=color_format, bandwidth=RecvBandwidth.highest)
        frame = VideoFrameSync()
        receiver.frame_sync.set_video_frame(frame)
        receiver.set_source(source)
        while time.monotonic() < deadline:
            receiver.frame_sync.capture_video()
            width, height = frame.get_resolution()
            if min(width, height) > 0 and frame.get_data_size() > 0:
                stride = frame.get_line_stride()
                data = frame.get_array()[: stride * height].reshape(height, stride)[:, : width * 4]
                image = data.reshape(height, width, 4)[..., :3].copy()
                if image.any():  # the first frames of a connection may still be empty
                    return image, receiver
            time.sleep(0.03)
    raise AssertionError(f"no frame from {name} within {WAIT_S} s")


@pytest.mark.slow
@pytest.mark.parametrize("pixel_format", ["uyvy", "rgba"])
def test_ndi_out_reaches_a_real_receiver_with_the_right_picture(ndi, pixel_format):
    from cyndilib.wrapper.ndi_recv import RecvColorFormat

    name = _name(f"out-{pixel_format}")
    image = _pattern()
    sender = NdiSender(name, 30.0, pixel_format)
    pump = Pump(lambda: sender.send(image))
    try:
        received, receiver = _receive_one(name, RecvColorFormat.RGBX_RGBA)
        assert received.shape == image.shape  # the output's size
        error = np.abs(received.astype(int) - image).mean()
        assert error < 6.0, f"{pixel_format}: mean error {error:.1f} levels"  # NDI's codec is lossy
        deadline = time.monotonic() + WAIT_S
        while sender.state != "1 receiver" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sender.hud_line() == f"NDI → {name} 1 receiver"
        del receiver
    finally:
        pump.stop()
        sender.close()
    assert sender.frames_sent > 0


def _real_sender(name: str, image: np.ndarray):
    from cyndilib.sender import Sender
    from cyndilib.video_frame import VideoSendFrame
    from cyndilib.wrapper.ndi_structs import FourCC

    height, width = image.shape[:2]
    frame = VideoSendFrame()
    frame.set_resolution(width, height)
    frame.set_frame_rate(Fraction(30))
    frame.set_fourcc(FourCC.RGBA)
    sender = Sender(name)
    sender.set_video_frame(frame)
    sender.open()
    rgba = np.full((height, width, 4), 255, np.uint8)
    rgba[..., :3] = image
    return sender, Pump(lambda: sender.write_video_async(rgba.reshape(-1)))


def _read_until(source, condition, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = source.read(timeout=0.2)
        if condition(frame):
            return frame
    raise AssertionError(f"{source.name}: condition not met within {timeout} s (status {source.status!r})")


@pytest.mark.slow
def test_ndi_source_delivers_the_feed_and_reconnects_when_it_comes_back(ndi):
    name = _name("in")
    image = _pattern()
    sender, pump = _real_sender(name, image)
    source = None
    try:
        source = NdiSource(name, frame_timeout=0.5, retry_delay=0.1, max_retry_delay=0.5)
        frame = _read_until(source, lambda f: f is not None and f.image.any())
        assert frame.image.shape == image.shape and frame.image.dtype == np.uint8
        assert np.abs(frame.image.astype(int) - image).mean() < 6.0  # RGB, not BGR
        assert source.fps == pytest.approx(30.0)

        pump.stop()
        sender.close()  # the feed disappears: the show goes on, the HUD says so
        _read_until(source, lambda f: f is None and source.status != "")
        assert name in source.status

        sender, pump = _real_sender(name, image[:, ::-1].copy())  # back, showing something else
        frame = _read_until(source, lambda f: f is not None and source.status == "")
        frame = _read_until(source, lambda f: f is not None)
        assert np.abs(frame.image.astype(int) - image[:, ::-1]).mean() < 6.0
    finally:
        if source is not None:
            source.close()
        pump.stop()
        sender.close()


@pytest.mark.slow
def test_an_ndi_source_that_is_not_there_is_one_line_naming_those_that_are(ndi):
    name = _name("other")
    sender, pump = _real_sender(name, _pattern())
    try:
        with pytest.raises(SourceError) as raised:
            NdiSource("nobody-sends-this", find_timeout=1.0, frame_timeout=0.5)
    finally:
        pump.stop()
        sender.close()
    message = str(raised.value)
    assert "NDI 'nobody-sends-this' does not answer; check the sender" in message and "\n" not in message
    assert f"({name})'" in message.split("NDI sources visible now: ")[1]  # "MACHINE (name)"


def test_without_cyndilib_ndi_says_which_extra_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cyndilib(name, *args, **kwargs):
        if name.startswith("cyndilib"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cyndilib)
    with pytest.raises(LinkError, match=r"pip install 'dreamcam\[ndi\]'"):
        NdiSender("stage", 30.0)
    with pytest.raises(LinkError, match=r"pip install 'dreamcam\[ndi\]'"):
        NdiSource("stage")


def test_uyvy_is_bt709_studio_range_with_shared_chroma():
    gray = np.full((2, 4, 3), 128, np.uint8)
    uyvy = rgb_to_uyvy(gray)
    assert uyvy.shape == (2, 4, 2)
    assert uyvy[..., 1].tolist() == [[126] * 4] * 2  # Y = 16 + 128 * 219/255
    assert uyvy[..., 0].tolist() == [[128] * 4] * 2  # no colour: U = V = 128
    white, black = rgb_to_uyvy(np.full((1, 2, 3), 255, np.uint8)), rgb_to_uyvy(np.zeros((1, 2, 3), np.uint8))
    assert white[0, :, 1].tolist() == [235, 235] and black[0, :, 1].tolist() == [16, 16]
    red = rgb_to_uyvy(np.array([[[255, 0, 0], [255, 0, 0]]], np.uint8))
    assert red[0, 1, 0] == 240 and red[0, 0, 0] < 128  # V at its top, U below the middle
    with pytest.raises(ValueError, match="even width"):
        rgb_to_uyvy(np.zeros((2, 3, 3), np.uint8))


@pytest.mark.slow
def test_doctor_names_the_ndi_senders_it_sees(ndi):
    from realtime.io.links import link_findings

    name = _name("doctor")
    sender, pump = _real_sender(name, _pattern())
    try:
        status, what, fix = link_findings(find_s=WAIT_S)[0]
    finally:
        pump.stop()
        sender.close()
    assert status == "ok" and what.startswith("NDI: cyndilib ") and f"({name})" in what and fix == ""


@pytest.mark.slow
def test_reading_an_ndi_feed_leaves_the_other_threads_running(ndi):
    """The reader waits with the GIL released: a dream thread beside it is not starved."""
    name = _name("gil")
    sender, pump = _real_sender(name, _pattern())
    source = NdiSource(name)
    stop = threading.Event()

    def read_forever():
        while not stop.is_set():
            source.read(timeout=0.2)

    reader = threading.Thread(target=read_forever, daemon=True)
    reader.start()
    try:
        ticks, started = 0, time.monotonic()
        while time.monotonic() - started < 1.0:
            time.sleep(0.001)
            ticks += 1
    finally:
        stop.set()
        reader.join(WAIT_S)
        source.close()
        pump.stop()
        sender.close()
    assert ticks > 200  # a reader blocking inside cyndilib's receive() with the GIL held allowed 7
