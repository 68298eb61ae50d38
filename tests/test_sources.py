"""Tests for realtime.io.sources: every kind of source, loops, errors, reconnection, newest-frame-only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.errors import ConfigError, SourceError
from realtime.io.sources.base import Frame, Source
from realtime.io.sources.camera import CameraSource
from realtime.io.sources.image import ImageSource
from realtime.io.sources.opener import open_source
from realtime.io.sources.synthetic import MOVE_S, STILL_S, SyntheticSource, is_still, scene_clock
from realtime.io.sources.video import VideoSource

RED_BGR = (0, 0, 255)
VIDEO_FRAMES = 20
VIDEO_SIZE = (64, 48)  # width, height


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll a condition that no event announces (a thread's status string); bounded."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.005)
    return True


def read_until(source: Source, condition: Callable[[Frame], bool], timeout: float = 3.0) -> Frame:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        frame = source.read(timeout=0.1)
        if frame is not None and condition(frame):
            return frame
    raise AssertionError("no matching frame arrived in time")


def check_frame(frame: Frame | None, width: int, height: int) -> Frame:
    assert frame is not None
    assert frame.image.shape == (height, width, 3)
    assert frame.image.dtype == np.uint8
    assert frame.image.flags["C_CONTIGUOUS"]
    return frame


# ---------------------------------------------------------------------------------------------------
# Synthetic


def test_synthetic_frames_have_requested_size_and_move() -> None:
    with open_source("synthetic", paced=False, size=(160, 96)) as source:
        assert isinstance(source, SyntheticSource)
        assert source.fps == 30.0 and source.status == ""
        frames = [check_frame(source.read(), 160, 96) for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert not np.array_equal(frames[0].image, frames[1].image)
    assert frames[0].t_capture < frames[-1].t_capture
    assert source.read() is None  # closed


def test_synthetic_is_deterministic() -> None:
    a, b = SyntheticSource((128, 72), paced=False), SyntheticSource((128, 72), paced=False)
    for _ in range(3):
        fa, fb = a.read(), b.read()
        assert fa is not None and fb is not None and fa.index == fb.index
        assert np.array_equal(fa.image, fb.image)
    assert np.array_equal(a.render(1234), b.render(1234))


def test_synthetic_unpaced_is_immediate_and_cheap() -> None:
    source = SyntheticSource((640, 360), paced=False)
    source.read()
    start = time.perf_counter()
    for _ in range(60):
        assert source.read(timeout=0.0) is not None
    per_frame = (time.perf_counter() - start) / 60
    assert per_frame < 0.015, f"{per_frame * 1000:.1f} ms per frame"  # ~0.6 ms here; loose for slow CI


def test_synthetic_paced_runs_in_real_time() -> None:
    source = SyntheticSource((64, 36), paced=True)
    start = time.perf_counter()
    frames = [source.read(timeout=1.0) for _ in range(4)]
    elapsed = time.perf_counter() - start
    indices = [f.index for f in frames if f is not None]
    assert len(indices) == 4 and indices == sorted(set(indices))
    # Frame n is not handed out before n / fps after the start; the first read may catch up to an
    # already-due frame, hence the one frame of slack. Unpaced, 4 reads would take ~0 s.
    assert indices[-1] - indices[0] <= elapsed * source.fps + 1


def test_synthetic_scene_has_still_moments_between_moves() -> None:
    source = SyntheticSource((160, 90), paced=False)
    fps, cycle = source.fps, MOVE_S + STILL_S
    still = [is_still(n / fps, fps) for n in range(int(2 * cycle * fps))]
    assert not still[0]  # it starts moving: the first frames differ
    assert sum(still) / len(still) == pytest.approx(STILL_S / cycle, abs=0.05)
    first_still = still.index(True)
    held = [source.render(n) for n in range(first_still, first_still + int(STILL_S * fps) - 1)]
    assert all(np.array_equal(held[0], frame) for frame in held)  # a visitor standing still
    assert not np.array_equal(source.render(0), source.render(first_still))
    assert scene_clock(2 * cycle) == pytest.approx(2 * MOVE_S)  # every cycle moves MOVE_S


def test_synthetic_rejects_tiny_size() -> None:
    with pytest.raises(ConfigError, match="too small"):
        SyntheticSource((4, 4))


# ---------------------------------------------------------------------------------------------------
# Files


def video_level(i: int) -> int:
    return 20 + 10 * i


@pytest.fixture
def video_path(tmp_path: Path) -> Path:
    """20 frames: frame 0 pure red, frame i (i > 0) uniform gray of a distinct level."""
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, VIDEO_SIZE)
    assert writer.isOpened()
    w, h = VIDEO_SIZE
    for i in range(VIDEO_FRAMES):
        color = RED_BGR if i == 0 else (video_level(i),) * 3
        writer.write(np.full((h, w, 3), color, np.uint8))
    writer.release()
    return path


def assert_red(image: np.ndarray) -> None:
    mean = image.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 230 and mean[1] < 25 and mean[2] < 25, mean  # RGB red, with codec tolerance


def test_video_unpaced_reads_every_frame_in_order_and_loops(video_path: Path) -> None:
    with open_source(str(video_path), paced=False) as source:
        assert isinstance(source, VideoSource)
        assert source.fps == pytest.approx(20.0)
        assert "clip.mp4" in source.name
        frames = [check_frame(source.read(), *VIDEO_SIZE) for _ in range(VIDEO_FRAMES + 2)]
    assert [f.index for f in frames] == list(range(VIDEO_FRAMES + 2))
    assert_red(frames[0].image)
    for i in range(1, VIDEO_FRAMES):
        assert abs(frames[i].image.mean() - video_level(i)) < 5, i
    assert_red(frames[VIDEO_FRAMES].image)  # looped to the start
    assert abs(frames[VIDEO_FRAMES + 1].image.mean() - video_level(1)) < 5


def test_video_paced_yields_newer_frames(video_path: Path) -> None:
    with open_source(str(video_path), paced=True) as source:
        frames = [check_frame(source.read(timeout=1.0), *VIDEO_SIZE) for _ in range(3)]
        assert source.status == ""
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert not source._thread.is_alive()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "content", [b"", np.random.default_rng(0).bytes(4096)], ids=["empty", "random-bytes"]
)
def test_bad_video_fails_at_open(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="cannot read video .*broken.mp4") as info:
        open_source(str(path))
    assert "\n" not in str(info.value)


def test_missing_path_fails(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist.*--source synthetic"):
        open_source(str(tmp_path / "nope.mp4"))


def test_image_source_repeats_the_image_as_new_frames(tmp_path: Path) -> None:
    path = tmp_path / "still.PNG"
    assert cv2.imwrite(str(path), np.full((24, 32, 3), RED_BGR, np.uint8))
    with open_source(str(path), paced=False) as source:
        assert isinstance(source, ImageSource)
        a, b = check_frame(source.read(), 32, 24), check_frame(source.read(), 32, 24)
    assert (a.index, b.index) == (0, 1)
    assert a.image is not b.image
    assert np.array_equal(a.image[0, 0], [255, 0, 0])  # PNG is lossless: exactly RGB red


def test_corrupt_image_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(SourceError, match="cannot read image .*bad.png.*OpenCV can decode"):
        open_source(str(path))


# ---------------------------------------------------------------------------------------------------
# Camera, with fake captures


class FakeCapture:
    """A camera: frame k is uniform with value (shade, k % 256, 0) in BGR; fails after `fail_after`."""

    def __init__(
        self,
        shade: int = 100,
        *,
        opens: bool = True,
        fail_after: int | None = None,
        period: float = 0.002,
        gate: threading.Event | None = None,
    ) -> None:
        self.shade, self.opens, self.fail_after, self.period, self.gate = (
            shade,
            opens,
            fail_after,
            period,
            gate,
        )
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opens and not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.gate is not None:
            self.gate.wait(5.0)  # a driver stuck in a blocking read until the test lets it go
        time.sleep(self.period)  # a camera's frame interval; keeps the reader thread from spinning
        if self.released or (self.fail_after is not None and self.reads >= self.fail_after):
            return False, None
        self.reads += 1
        return True, np.full((12, 16, 3), (self.shade, self.reads % 256, 0), np.uint8)

    def release(self) -> None:
        self.released = True

    def get(self, prop_id: int) -> float:
        return 0.0  # what most webcams report for FPS


def factory_of(*captures: FakeCapture) -> Callable[[int | str], FakeCapture]:
    """A capture factory that hands out the given fakes in order, then repeats the last one's kind."""
    queue: Iterator[FakeCapture] = iter(captures)
    last = captures[-1]

    def factory(device: int | str) -> FakeCapture:
        return next(queue, None) or FakeCapture(last.shade, opens=last.opens, fail_after=last.fail_after)

    return factory


def shade(frame: Frame) -> int:
    return int(frame.image[0, 0, 2])  # BGR blue channel -> RGB index 2


def test_camera_delivers_frames() -> None:
    with open_source("0", capture_factory=factory_of(FakeCapture(shade=77))) as source:
        assert isinstance(source, CameraSource)
        assert source.name == "camera 0" and source.fps == 30.0
        frame = check_frame(source.read(timeout=1.0), 16, 12)
        assert shade(frame) == 77 and frame.image[0, 0, 0] == 0  # BGR -> RGB
        assert source.status == ""


def test_camera_reconnects_after_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="realtime.io.sources")
    allow_reconnect = threading.Event()
    captures = iter([FakeCapture(shade=10, fail_after=5), FakeCapture(opens=False)])

    def factory(device: int | str) -> FakeCapture:
        capture = next(captures, None)
        if capture is None:
            allow_reconnect.wait(5.0)  # holds the source "down" until the test has looked at it
            capture = FakeCapture(shade=200)
        return capture

    source = CameraSource(0, capture_factory=factory, retry_delay=0.01)
    try:
        first = read_until(source, lambda f: shade(f) == 10)
        assert wait_until(lambda: "reconnecting" in source.status), source.status
        assert source.status.startswith("camera 0 lost")
        allow_reconnect.set()
        back = read_until(source, lambda f: shade(f) == 200)
        assert back.index > first.index
        assert wait_until(lambda: source.status == "")
    finally:
        allow_reconnect.set()
        source.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "camera 0 lost" in warnings[0].getMessage()
    assert any(r.getMessage() == "camera 0 back" for r in caplog.records)


def test_camera_that_never_opens_fails_at_open() -> None:
    start = time.perf_counter()
    with pytest.raises(SourceError, match="camera 3 does not answer.*--source synthetic"):
        open_source("3", capture_factory=factory_of(FakeCapture(opens=False)))
    assert time.perf_counter() - start < 1.0  # fails as soon as the device says no, not after a timeout


def test_camera_factory_that_raises_fails_at_open() -> None:
    def factory(device: int | str) -> FakeCapture:
        raise RuntimeError("driver exploded")

    with pytest.raises(SourceError, match="camera 0 does not answer"):
        open_source("0", capture_factory=factory)


def test_camera_silent_on_first_read_times_out() -> None:
    gate = threading.Event()
    try:
        with pytest.raises(SourceError, match="does not answer"):
            CameraSource(1, capture_factory=factory_of(FakeCapture(gate=gate)), open_timeout=0.2)
    finally:
        gate.set()  # lets the abandoned reader thread finish


def test_stream_error_names_the_url_without_its_password() -> None:
    with pytest.raises(
        SourceError, match="stream 'rtsp://user:\\*\\*\\*@cam.local:554/live' does not answer"
    ) as info:
        open_source(
            "rtsp://user:secret@cam.local:554/live", capture_factory=factory_of(FakeCapture(opens=False))
        )
    assert "secret" not in str(info.value)


def test_close_is_prompt_while_backing_off() -> None:
    source = CameraSource(
        0, capture_factory=factory_of(FakeCapture(fail_after=2), FakeCapture(opens=False)), retry_delay=30.0
    )
    assert wait_until(lambda: "reconnecting" in source.status)
    start = time.perf_counter()
    source.close()
    assert time.perf_counter() - start < 0.5
    assert not source._thread.is_alive()
    assert source.read(timeout=0.0) is None
    source.close()  # idempotent


def test_slow_consumer_gets_the_newest_frame_not_a_backlog() -> None:
    camera = FakeCapture(period=0.001)
    with CameraSource(0, capture_factory=factory_of(camera)) as source:
        first = source.read(timeout=1.0)
        assert first is not None
        # Let the camera run well ahead of us, as a slow dream would.
        assert wait_until(lambda: camera.reads >= first.index + 30)
        later = source.read(timeout=1.0)
        assert later is not None
        assert later.index >= first.index + 20  # skipped ahead; a queue would have given first.index + 1
        assert int(later.image[0, 0, 1]) == (later.index + 1) % 256  # the content matches its index
