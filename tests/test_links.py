"""Video links (realtime.io.links): never stall the show, newest frame only, reopen after a failure;
Spout and Syphon against fake modules of their libraries; one line on the wrong platform."""

import sys
import threading
import time
import types

import numpy as np
import pytest

from realtime.commands.cli import main
from realtime.errors import ConfigError
from realtime.io import links
from realtime.io.links import Link, LinkError

WAIT_S = 5.0  # every wait in these tests is bounded


def _wait_until(condition, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _frame(value: int, size=(64, 36)) -> np.ndarray:
    return np.full((size[1], size[0], 3), value, np.uint8)


class FakeLink(Link):
    kind = "Fake"

    def __init__(self, *, fail_opens: int = 0, fail_publish_at: int = -1, size=None, gate=None):
        self.published: list[np.ndarray] = []
        self.opens: list[tuple[int, int]] = []
        self.closes = 0
        self.fail_opens, self.fail_publish_at = fail_opens, fail_publish_at
        self.gate = gate  # an Event the publisher waits on: a stuck receiver
        super().__init__("stage", 30.0, size)

    def _open(self, width, height):
        self.opens.append((width, height))
        if self.fail_opens:
            self.fail_opens -= 1
            raise RuntimeError("the driver said no")

    def _publish(self, image):
        if self.gate is not None:
            self.gate.wait(WAIT_S)
        if len(self.published) == self.fail_publish_at:
            self.fail_publish_at = -1
            raise OSError("the receiver went away")
        self.published.append(image.copy())

    def _close(self):
        self.closes += 1

    def _poll(self):
        return f"{len(self.published)} out"


def test_a_stuck_link_never_stalls_the_show_and_sends_the_newest_frame():
    gate = threading.Event()
    link = FakeLink(gate=gate)
    try:
        link.send(_frame(1))
        assert _wait_until(lambda: link.opens)  # the link thread is now stuck in _publish
        started = time.perf_counter()
        for value in range(2, 102):
            link.send(_frame(value))
        assert time.perf_counter() - started < 0.5  # 100 frames offered without waiting
        assert link.frames_skipped == 99  # each overwrote the one before it
        gate.set()
        assert _wait_until(lambda: len(link.published) == 2)
        assert [int(image[0, 0, 0]) for image in link.published] == [1, 101]  # newest, not a backlog
    finally:
        gate.set()
        link.close()
    assert link.closes == 1 and link.state == "closed"


def test_a_link_opens_at_its_first_frame_size_and_scales_later_frames_to_it():
    link = FakeLink()
    link.send(_frame(10, (64, 36)))
    assert _wait_until(lambda: len(link.published) == 1)
    link.send(_frame(20, (128, 72)))
    link.close()
    assert link.opens == [(64, 36)]
    assert [image.shape for image in link.published] == [(36, 64, 3), (36, 64, 3)]
    assert link.hud_line() == "Fake → stage closed"


def test_a_link_that_fails_mid_show_is_reopened_and_the_hud_says_so():
    link = FakeLink(fail_publish_at=1)
    try:
        link.send(_frame(1))
        assert _wait_until(lambda: len(link.published) == 1)
        link.send(_frame(2))  # this one fails: the link closes and will reopen at the next frame
        assert _wait_until(lambda: link.state.startswith("lost: reopening"))
        assert link.hud_line().startswith("Fake → stage lost: reopening")
        assert _wait_until(lambda: (link.send(_frame(3)) or True) and len(link.published) >= 2)
        assert int(link.published[-1][0, 0, 0]) == 3
        assert link.state == f"{len(link.published)} out"
        assert len(link.opens) == 2
    finally:
        link.close()


def test_a_fixed_size_link_that_cannot_open_is_a_start_up_error():
    with pytest.raises(LinkError, match="Fake 'stage' cannot open: the driver said no"):
        FakeLink(fail_opens=1, size=(320, 180))


def test_link_names_are_checked():
    with pytest.raises(ConfigError, match="printable name"):
        links.check_link_name("--ndi-out", "   ")
    assert links.check_link_name("--ndi-out", " stage left ") == "stage left"


# --- Spout and Syphon, our side, against fakes of their libraries ------------------------------


class _Recorder:
    """Records every method call made on it, in order, as (name, args)."""

    def __init__(self, calls, results=None):
        self._calls, self._results = calls, results or {}

    def __getattr__(self, name):
        def method(*args, **kwargs):
            self._calls.append((name, args, kwargs))
            return self._results.get(name)

        return method


def test_spout_sends_rgb_images_through_spoutgl(monkeypatch):
    calls = []
    fake = types.ModuleType("SpoutGL")
    fake.SpoutSender = lambda: _Recorder(calls, {"sendImage": True})
    fake.enums = types.SimpleNamespace(GL_RGB=0x1907, GL_RGBA=0x1908)
    monkeypatch.setitem(sys.modules, "SpoutGL", fake)
    monkeypatch.setattr(sys, "platform", "win32")
    from realtime.io.spout import SpoutSender

    sender = SpoutSender("dreamcam", 30.0)
    sender.send(_frame(7, (64, 36)))
    assert _wait_until(lambda: sender.frames_sent == 1)
    sender.close()
    names = [name for name, _, _ in calls]
    assert names == [
        "createOpenGL",
        "setSenderName",
        "sendImage",
        "setFrameSync",
        "releaseSender",
        "closeOpenGL",
    ]
    _, (image, width, height, gl_format, invert, fbo), _ = calls[2]
    assert image.shape == (36, 64, 3) and image.flags.c_contiguous and int(image[0, 0, 0]) == 7
    assert (width, height, gl_format, invert, fbo) == (64, 36, 0x1907, False, 0)
    assert calls[1][1] == ("dreamcam",) and calls[3][1] == ("dreamcam",)
    assert sender.frames_sent == 1


def test_spout_that_refuses_a_frame_is_reopened(monkeypatch):
    calls = []
    fake = types.ModuleType("SpoutGL")
    fake.SpoutSender = lambda: _Recorder(calls, {"sendImage": False})
    fake.enums = types.SimpleNamespace(GL_RGB=0x1907)
    monkeypatch.setitem(sys.modules, "SpoutGL", fake)
    monkeypatch.setattr(sys, "platform", "win32")
    from realtime.io.spout import SpoutSender

    sender = SpoutSender("dreamcam", 30.0)
    try:
        sender.send(_frame(7))
        assert _wait_until(lambda: sender.state.startswith("lost"))
        assert sender.frames_sent == 0
    finally:
        sender.close()


def test_syphon_publishes_flipped_rgba_metal_textures(monkeypatch):
    calls = []
    textures = []

    class Server:
        device = "metal-device"
        has_clients = True

        def __init__(self, name):
            calls.append(("server", name))

        def publish_frame_texture(self, texture, is_flipped=False):
            calls.append(("publish", texture, is_flipped))

        def stop(self):
            calls.append(("stop",))

    syphon = types.ModuleType("syphon")
    syphon.SyphonMetalServer = Server
    numpy_utils = types.ModuleType("syphon.utils.numpy")
    numpy_utils.copy_image_to_mtl_texture = lambda image, texture: textures.append(image.copy())
    raw_utils = types.ModuleType("syphon.utils.raw")
    raw_utils.create_mtl_texture = lambda device, width, height: ("texture", device, width, height)
    for name, module in (
        ("syphon", syphon),
        ("syphon.utils.numpy", numpy_utils),
        ("syphon.utils.raw", raw_utils),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "syphon.utils", types.ModuleType("syphon.utils"))
    monkeypatch.setattr(sys, "platform", "darwin")
    from realtime.io.syphon import SyphonSender

    sender = SyphonSender("dreamcam", 30.0)
    sender.send(_frame(9, (64, 36)))
    assert _wait_until(lambda: sender.frames_sent == 1)
    assert sender.hud_line() == "Syphon → dreamcam client connected"
    sender.close()
    assert calls[0] == ("server", "dreamcam")
    assert calls[1] == ("publish", ("texture", "metal-device", 64, 36), True)
    assert calls[-1] == ("stop",)
    assert textures[0].shape == (36, 64, 4) and textures[0][0, 0].tolist() == [9, 9, 9, 255]


@pytest.mark.parametrize(
    ("flag", "needs"), [("--spout", "needs Windows"), ("--syphon", "needs macOS")], ids=["spout", "syphon"]
)
def test_a_link_for_another_platform_is_one_line_and_exit_2(capsys, monkeypatch, flag, needs):
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["--source", "synthetic", "--headless", "--frames", "1", flag, "show"]) == 2
    err = capsys.readouterr().err
    assert needs in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [["--ndi-out", " "], ["--osc-feedback", "nohost"], ["--osc-feedback", "127.0.0.1:99999"]],
    ids=["empty-ndi-name", "no-port", "port-out-of-range"],
)
def test_bad_link_options_are_one_line_and_exit_2(capsys, args):
    assert main(["--source", "synthetic", "--headless", "--frames", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dreamcam: error: ") and err.count("\n") == 1


def test_the_hud_writes_link_arrows_its_font_can_draw():
    from realtime.io.display import _drawable

    assert _drawable("NDI → stage 2 receivers") == "NDI -> stage 2 receivers"  # FreeSans has no arrow
    assert _drawable("steps 2  lr 0.04") == "steps 2  lr 0.04"


def test_doctor_says_what_each_platform_link_needs(monkeypatch):
    monkeypatch.setattr(links, "_ndi_finding", lambda find_s: ("ok", "NDI: (not looked at here)", ""))
    monkeypatch.setattr(sys, "platform", "linux")
    findings = links.link_findings()
    assert findings[1] == ("ok", "Spout (--spout): Windows only, not this linux", "")
    assert findings[2] == ("ok", "Syphon (--syphon): macOS only, not this linux", "")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delitem(sys.modules, "SpoutGL", raising=False)
    monkeypatch.setattr(sys, "path", [])  # no SpoutGL to find
    assert links.link_findings()[1] == (
        "missing",
        "Spout (--spout): SpoutGL not installed",
        "pip install 'dreamcam[vj]'",
    )
    from realtime.commands.doctor import check_links

    lines = [finding.line() for finding in check_links()]
    assert (
        lines[1] == "MISS link        Spout (--spout): SpoutGL not installed  -> pip install 'dreamcam[vj]'"
    )
