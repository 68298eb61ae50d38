"""Show-safe, third pass (issue 27): what an allowed phone, a busy operator and an odd file could
still do to a show. Each severe case here failed on main before its fix (docs/SAFETY.md, "Third
pass"); the show's thread is checked never to wait (fake clocks and events, no timing)."""

import asyncio
import json
import logging
import os
import threading
import weakref

import aiohttp
import numpy as np
import pytest

from realtime.control.plane import Action, Command, Preset, ShowState, apply_action
from realtime.errors import ConfigError
from realtime.params import DreamParams
from realtime.show.osc import OscRules
from realtime.show.web import WebRemote
from tests.test_web import FakeClock, check_layer, control, request

PRESETS = [Preset("eyes", "eyes.toml", DreamParams()), Preset("fur", "fur.toml", DreamParams())]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def remote(tmp_path, clock):
    remote = WebRemote(
        "127.0.0.1", 0, OscRules(check_layer), presets=PRESETS, snapshot_dir=str(tmp_path), clock=clock
    )
    remote.publish(lambda: {"look": "", "fps": 30.0, "frames": 1})
    yield remote
    remote.close()


# --- severe 1: a phone that drops its socket mid-push leaves the others served ---------------------


class _ResetSocket:
    """A WebSocket whose peer reset the connection: every send raises, as aiohttp's does."""

    closed = False

    async def send_str(self, text):
        raise ConnectionResetError("Cannot write to closing transport")

    async def send_bytes(self, data):
        raise ConnectionResetError("Cannot write to closing transport")


class _OpenTransport:
    def get_write_buffer_size(self):
        return 0

    def is_closing(self):
        return False

    def abort(self):
        pass


async def _thumbnails_after_a_reset(remote: WebRemote, clock: FakeClock) -> tuple[int, int]:
    from realtime.show.web import _Socket

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{remote.port}/ws") as ws,
    ):
        texts = binaries = 0
        remote._loop.call_soon_threadsafe(remote._sockets.add, _Socket(_ResetSocket(), _OpenTransport()))
        for round_ in range(3):  # each round: a new state and a new picture for every phone
            clock.now += 1.0
            remote.publish(lambda r=round_: {"look": "", "fps": 30.0, "frames": r})
            remote.offer_frame(np.full((72, 128, 3), 40 * round_, np.uint8))
            try:
                while True:
                    message = await ws.receive(timeout=2.0)
                    if message.type == aiohttp.WSMsgType.BINARY:
                        binaries += 1
                        break
                    if message.type != aiohttp.WSMsgType.TEXT:  # closed: nothing more will come
                        return texts, binaries
                    texts += 1
            except TimeoutError:
                pass
        return texts, binaries


def test_a_socket_reset_during_a_push_leaves_the_other_phones_served(remote, clock):
    texts, binaries = asyncio.run(_thumbnails_after_a_reset(remote, clock))
    assert binaries == 3 and texts >= 3  # on main: the first state only, then nothing, and no log


def test_a_fault_in_the_pusher_is_logged_and_it_starts_again(remote, clock, monkeypatch, caplog):
    real, faults = WebRemote._send_to, []

    async def fails_once(self, sock, text, jpeg):
        if not faults:
            faults.append(1)
            raise ValueError("a fault no one foresaw")
        await real(self, sock, text, jpeg)

    monkeypatch.setattr(WebRemote, "_send_to", fails_once)
    with caplog.at_level(logging.WARNING):
        texts, binaries = asyncio.run(_thumbnails_after_a_reset(remote, clock))
    assert remote.pusher_restarts == 1 and binaries >= 2
    assert any("restarted" in r.getMessage() and r.exc_info is None for r in caplog.records)


# --- the web remote's minor cases ------------------------------------------------------------------


@pytest.mark.parametrize("address", ["/dreamcam/save_preset", "/dreamcam/hud"])
def test_the_remote_neither_saves_presets_nor_toggles_the_hud(remote, address):
    status, answer = control(remote, address, 1)
    assert status == 400 and "not offered by the web remote" in answer["error"]
    assert remote.drain() == []


@pytest.mark.parametrize(
    "body",
    [
        '{"address": "/dreamcam/steps", "args": [' + "9" * 3000 + "]}",  # OverflowError on main
        '{"address": "/dreamcam/strength", "args": ' + "[" * 2000 + "]" * 2000 + "}",  # RecursionError
        "[" * 2000 + "]" * 2000,
    ],
)
def test_huge_numbers_and_deep_json_are_400_not_500(remote, body):
    status, data, _ = request(remote, "POST", "/api/control", body)
    assert status == 400 and json.loads(data)["ok"] is False
    assert remote.drain() == []


def test_a_raw_0xff_byte_in_the_token_cookie_is_403_not_500(tmp_path, clock):
    guarded = WebRemote(
        "127.0.0.1", 0, OscRules(), snapshot_dir=str(tmp_path), clock=clock, require_token=True
    )
    try:
        status, _, _ = request(
            guarded, "GET", "/api/state", headers={"Cookie": f"{guarded.guard.cookie}=\xff"}
        )
        assert status == 403
    finally:
        guarded.close()


def test_the_token_cookie_is_named_for_its_port(tmp_path, clock):
    guarded = WebRemote(
        "127.0.0.1", 0, OscRules(), snapshot_dir=str(tmp_path), clock=clock, require_token=True
    )
    try:
        _, _, response = request(guarded, "GET", f"/?token={guarded.token}")
        assert response.headers["Set-Cookie"].startswith(f"dreamcam_token_{guarded.port}=")
    finally:
        guarded.close()


@pytest.mark.parametrize(
    "host",
    ["[::1]evil.example:{port}", "localhost:evil.example", "127.0.0.1:{port}.evil.example", "localhost:1"],
)
def test_a_host_that_only_starts_like_loopback_is_refused(remote, host):
    status, _, _ = request(remote, "GET", "/api/state", headers={"Host": host.format(port=remote.port)})
    assert status in (400, 403)


def test_a_request_without_a_host_never_looks_up_a_name(remote, monkeypatch):
    import socket

    def no_lookup(*args):
        raise AssertionError("getfqdn() blocks the web thread on a DNS lookup")

    monkeypatch.setattr(socket, "getfqdn", no_lookup)
    raw = socket.create_connection(("127.0.0.1", remote.port), timeout=5)
    with raw:
        raw.sendall(b"GET /api/state HTTP/1.0\r\n\r\n")
        assert raw.recv(64).split(b" ")[1] == b"400"


def test_rotating_addresses_share_one_bound(remote, clock, monkeypatch):
    from realtime.show.webguard import RATE_BURST, TOTAL_BURST

    monkeypatch.setattr("realtime.show.webguard.TARPIT_S", 0.0)  # the fake clock does not move
    addresses = [f"10.0.0.{n}" for n in range(40)]  # as if each came from its own address
    per = int(RATE_BURST) - 10  # each within its own share
    allowed = sum(
        remote.guard.rate.allow(a) and remote.guard.total.allow("*") for a in addresses for _ in range(per)
    )
    assert allowed == int(TOTAL_BURST) < len(addresses) * per


def test_links_are_neither_listed_nor_served(remote, tmp_path):
    from realtime.show.web import list_snapshots, read_snapshot

    outside = tmp_path.parent / "outside.png"
    outside.write_bytes(b"secret")
    (tmp_path / "dreamcam-1.png").write_bytes(b"\x89PNG one")
    os.symlink(outside, tmp_path / "dreamcam-out.png")
    os.symlink(tmp_path / "dreamcam-1.png", tmp_path / "dreamcam-in.png")  # a link swapped in later
    assert list_snapshots(str(tmp_path)) == ["dreamcam-1.png"]
    assert read_snapshot(str(tmp_path), "dreamcam-in.png") is None  # opened with O_NOFOLLOW
    assert request(remote, "GET", "/snapshots/dreamcam-out.png")[0] == 404
    assert request(remote, "GET", "/snapshots/dreamcam-1.png")[1] == b"\x89PNG one"


def test_malformed_requests_are_one_line_a_second_without_tracebacks(remote, caplog):
    import socket

    with caplog.at_level(logging.DEBUG):
        for _ in range(30):
            with socket.create_connection(("127.0.0.1", remote.port), timeout=5) as raw:
                raw.sendall(b"GARBAGE\x1b[2J / HTTP/1.1\r\n\r\n")
                raw.recv(64)
    lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert 1 <= len(lines) <= 2  # the fake clock never moves: one, and one more if a second passed
    assert all(r.exc_info is None and "\x1b" not in r.getMessage() for r in lines)


def test_an_asyncio_fault_on_the_web_thread_is_one_line_a_second(remote, caplog):
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            remote._loop_fault(
                remote._loop,
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                },
            )
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None


# --- severe 2: saving presets never re-reads the folder; a save a second, never the same look twice --


def _saving_show(folder, count=0):
    from realtime.show.plan import ShowControl
    from realtime.show.presets import dumps, load_folder

    for n in range(count):
        (folder / f"look-{n:04d}.toml").write_text(dumps(DreamParams(lr=0.001 * (n + 1))))
    state = ShowState(DreamParams(), ("block5",), presets=load_folder(str(folder)))
    return ShowControl(state, preset_save_dir=str(folder), preset_dir=str(folder))


def test_a_saved_preset_is_recallable_without_reading_the_folder_again(tmp_path, monkeypatch):
    import realtime.show.presets as presets

    show = _saving_show(tmp_path, count=100)
    reads = []
    real = presets.read_toml
    monkeypatch.setattr(presets, "read_toml", lambda *a: reads.append(a) or real(*a))
    clock = FakeClock()
    show.save_limit.clock = clock
    for n in range(10):
        clock.now += 1.0
        show.state.params = show.state.params.replace(lr=0.5 + 0.01 * n)
        show.handle(Action.SAVE_PRESET)
    assert reads == []  # on main: the whole folder (100, 101, ... files) read again per save
    assert len(show.state.presets) == 110 == len(list(tmp_path.glob("*.toml")))
    paths = [p.path for p in show.state.presets]
    assert paths == sorted(paths)
    saved = sorted(p.params.lr for p in show.state.presets[100:])  # "look-*" sort first
    assert saved == pytest.approx([0.5 + 0.01 * n for n in range(10)])
    apply_action(show.state, Command(Action.PRESET, show.state.presets[-1].name))


def test_a_save_flood_makes_one_file_a_second_and_none_for_the_same_look(tmp_path, caplog):
    show = _saving_show(tmp_path)
    clock = FakeClock()
    show.save_limit.clock = clock
    with caplog.at_level(logging.INFO):
        for n in range(40):  # 20 a second for 2 s, each a new look
            clock.now += 0.05
            show.state.params = show.state.params.replace(lr=0.1 + 0.001 * n)
            show.handle(Action.SAVE_PRESET)
        for _ in range(5):  # the same look again, seconds apart
            clock.now += 2.0
            show.handle(Action.SAVE_PRESET)
    assert 2 <= len(list(tmp_path.glob("*.toml"))) <= 4  # on main: 45
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 3


# --- severe 7: a preset file whose name is not UTF-8 --------------------------------------------------


def test_a_preset_name_that_is_not_utf8_is_drawn_and_sent(tmp_path):
    from realtime.show.osc import OscFeedback
    from realtime.show.presets import dumps, load_folder

    name = os.fsdecode(b"caf\xe9-\x1b[2J.toml")
    (tmp_path / name).write_text(dumps(DreamParams(lr=0.2)))
    (preset,) = load_folder(str(tmp_path))
    assert preset.name == "caf\\xe9-\\x1b[2J"
    preset.name.encode("utf-8")  # the HUD's font and OSC both need text that encodes
    feedback = OscFeedback("127.0.0.1", 9)
    try:
        feedback.update({"preset": os.fsdecode(b"caf\xe9")})  # python-osc: BuildError on main
        assert feedback.failed == 1
    finally:
        feedback.close()


def test_the_window_draws_a_recalled_preset_with_a_non_utf8_name(tmp_path):
    from realtime.io.display import Window
    from realtime.show.plan import ShowControl
    from realtime.show.presets import dumps, load_folder

    (tmp_path / os.fsdecode(b"1-caf\xe9.toml")).write_text(dumps(DreamParams(lr=0.2)))
    state = ShowState(DreamParams(), ("block5",), presets=load_folder(str(tmp_path)))
    show = ShowControl(state)
    apply_action(state, Command(Action.PRESET, 1))
    with Window(fullscreen=False, size=(160, 90)) as window:
        window.show(np.zeros((90, 160, 3), np.uint8), show.hud_lines())  # UnicodeEncodeError on main


# --- severe 8: config readers open only regular files, without blocking -----------------------------


def _reads_without_hanging(call) -> BaseException | None:
    """Runs `call` on a thread; fails the test if it hangs (on main, open() of a FIFO blocks)."""
    outcome: list = []

    def run():
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    return outcome[0] if outcome else TimeoutError("hung")


@pytest.mark.parametrize("reader", ["preset", "playlist", "folder", "midi"])
def test_a_fifo_given_as_a_config_file_is_one_line_not_a_hang(tmp_path, reader):
    from realtime.show.midi import load_mapping
    from realtime.show.playlist import load_playlist
    from realtime.show.presets import load_folder, load_preset

    fifo = tmp_path / "x.toml"
    os.mkfifo(fifo)
    try:
        call = {
            "preset": lambda: load_preset(str(fifo)),
            "playlist": lambda: load_playlist(str(fifo), []),
            "folder": lambda: load_folder(str(tmp_path)),
            "midi": lambda: load_mapping(str(fifo)),
        }[reader]
        outcome = _reads_without_hanging(call)
        assert isinstance(outcome, ConfigError) and "not a regular file" in str(outcome)
    finally:
        with open(os.open(fifo, os.O_RDWR | os.O_NONBLOCK), "wb"):  # frees a reader hung on main
            pass


# --- severe 3: snapshots are written off the show's thread, capped, and never take the last space ----


def test_a_snapshot_flood_writes_a_few_files_and_the_show_never_waits(tmp_path):
    from realtime.loop.showio import ShowIO

    io = ShowIO(snapshot_dir=str(tmp_path))
    state = ShowState(DreamParams(), ("block5",))
    image = np.zeros((54, 96, 3), np.uint8)
    for _ in range(100):  # as fast as the loop can: keys, OSC, MIDI all reach it
        apply_action(state, Action.SNAPSHOT)
        io.handle_events(state, image)
    writer = getattr(io, "snapshots", None)  # main wrote each on the show's thread
    if writer is not None:
        writer.flush()
    assert 1 <= len(list(tmp_path.glob("*.png"))) <= 3  # on main: 100


def test_the_show_hands_a_snapshot_over_and_goes_on_while_the_disk_is_slow(tmp_path):
    from realtime.io.snapshots import WAITING, SnapshotWriter

    release, started = threading.Event(), threading.Event()

    def slow_save(image, folder):
        started.set()
        release.wait(10)
        return str(tmp_path / "x.png")

    clock = FakeClock()
    writer = SnapshotWriter(str(tmp_path), clock=clock, save=slow_save)
    taken = []
    for _ in range(WAITING + 3):
        clock.now += 1.0
        taken.append(writer.take(np.zeros((8, 8, 3), np.uint8)))  # returns at once: never waits
        started.wait(5)
    assert taken.count(True) == WAITING + 1 and writer.refused == 2  # one writing, WAITING queued
    release.set()
    writer.close()
    assert len(writer.saved) == WAITING + 1


def test_a_snapshot_never_takes_the_disk_a_recording_needs(tmp_path, caplog):
    from realtime.io.snapshots import KEEP_FREE_BYTES, SnapshotWriter

    clock = FakeClock()
    writer = SnapshotWriter(str(tmp_path), clock=clock, free=lambda folder: KEEP_FREE_BYTES // 2)
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            clock.now += 1.0
            writer.take(np.zeros((8, 8, 3), np.uint8))
        writer.close()
    assert list(tmp_path.glob("*.png")) == [] and "nearly full" in writer.failure
    assert len([r for r in caplog.records if "nearly full" in r.getMessage()]) <= 2  # one a second


def test_a_failed_snapshot_stays_on_the_hud_until_one_is_saved(tmp_path):
    from realtime.loop.showio import ShowIO

    blocker = tmp_path / "snapshots"
    blocker.write_text("a file where the folder should be")
    io = ShowIO(snapshot_dir=str(blocker))
    clock = FakeClock()
    io.snapshots.clock = clock
    io.snapshots.take(np.zeros((8, 8, 3), np.uint8))
    io.snapshots.flush()
    assert any("snapshot not saved" in line for line in io.hud_lines())
    blocker.unlink()
    clock.now += 1.0
    io.snapshots.take(np.zeros((8, 8, 3), np.uint8))
    io.close()
    assert io.hud_lines() == [] and len(io.snapshots.saved) == 1


# --- severe 4 and 6: record toggles keep nothing for good; a headless show with a remote goes on -----


class _FakeRecorder:
    def __init__(self, path, fps, fail=None):
        self.path, self.frames_dropped, self.failure = path, 1, fail

    def write(self, image):
        pass

    def close(self):
        pass


def test_record_toggles_let_every_closed_take_go(tmp_path):
    from realtime.io.recording import RecordingSwitch

    made = []

    def factory(path, fps):
        made.append(_FakeRecorder(path, fps, fail="disk full" if len(made) % 10 == 0 else None))
        return made[-1]

    switch = RecordingSwitch(str(tmp_path), 30.0, recorder_factory=factory)
    for _ in range(200):  # 100 takes, as fast as a flood of OSC or web toggles
        switch.toggle()
        switch.write(np.zeros((8, 8, 3), np.uint8))
    switch.close()
    alive = [weakref.ref(r) for r in made]
    failed = sum(r.failure is not None for r in made)
    made.clear()
    assert sum(ref() is not None for ref in alive) == 0  # on main: every one of them kept
    assert switch.frames_dropped == len(alive) and switch.failures >= failed  # their figures are kept


def test_takes_still_closing_cap_new_ones(tmp_path, caplog):
    from realtime.io.recording import MAX_CLOSING, RecordingSwitch

    release = threading.Event()

    class SlowClose(_FakeRecorder):
        def close(self):
            release.wait(10)

    switch = RecordingSwitch(str(tmp_path), 30.0, recorder_factory=SlowClose)
    for _ in range(2 * (MAX_CLOSING + 5)):
        switch.toggle()
    assert threading.active_count() < 40 and len(switch.paths) == MAX_CLOSING
    assert "still being finished" in switch.failure
    release.set()
    switch.close()


class _Remote:
    """Any remote (OSC, MIDI, the web): something that can start another take."""

    def drain(self):
        return []

    def hud_line(self):
        return "remote"

    def close(self):
        pass


@pytest.mark.parametrize("remote_kind", ["osc", None])
def test_a_take_that_cannot_start_ends_a_headless_show_only_without_a_remote(tmp_path, remote_kind):
    from realtime.io.recording import RecordingSwitch
    from realtime.show.plan import ShowControl

    blocker = tmp_path / "recs"
    blocker.write_text("a file where the folder should be")
    state = ShowState(DreamParams(), ("block5",))
    show = ShowControl(state, recording=RecordingSwitch(str(blocker), 30.0))
    if remote_kind:
        show.osc = _Remote()
    show.quit_on_record_failure = True  # headless
    show.handle(Command(Action.TOGGLE_RECORD, True, "osc"))  # record tapped: cannot make the folder
    assert show.recording.failure
    quits = [i for _ in range(3) for i in show.intents([]) if i is Action.QUIT]
    assert bool(quits) == (remote_kind is None)  # on main: QUIT with a remote too


# --- severe 9: dream checks an image's size in its header before decoding it -------------------------


def _png_header_only(path, width, height):
    """A PNG that says width x height and holds no pixels: what its header claims is all we read."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)


def test_a_huge_png_is_refused_from_its_header_before_decoding(tmp_path, capsys):
    from realtime.commands.cli import main

    image = tmp_path / "huge.png"
    _png_header_only(image, 20000, 20000)
    assert main(["dream", str(image), "-o", str(tmp_path / "out.png")]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "20000x20000" in line and "megapixels" in line  # on main: "cannot decode"


def test_sizes_are_read_from_png_jpeg_and_bmp_headers(tmp_path):
    import cv2

    from realtime.io.imagesize import image_size

    image = np.zeros((123, 457, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp"):
        cv2.imwrite(str(tmp_path / f"a{ext}"), image)
        assert image_size(str(tmp_path / f"a{ext}")) == (457, 123)
    (tmp_path / "text.png").write_text("not an image")
    assert image_size(str(tmp_path / "text.png")) is None
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe1\x10\x00")  # a segment cut short
    assert image_size(str(tmp_path / "cut.jpg")) is None


def test_an_image_larger_than_a_4k_frame_is_reduced_with_one_line(tmp_path, caplog, monkeypatch):
    import cv2

    import realtime.commands.still as still

    monkeypatch.setattr(still, "MAX_DREAM_PIXELS", 100 * 100)
    cv2.imwrite(str(tmp_path / "big.jpg"), np.zeros((300, 400, 3), np.uint8))
    with caplog.at_level(logging.WARNING):
        image = still.load_image(str(tmp_path / "big.jpg"), None)
    assert image.shape[0] * image.shape[1] <= 100 * 100 and image.shape[1] > image.shape[0]
    assert len(caplog.records) == 1 and "dreamt at" in caplog.records[0].getMessage()


def test_a_huge_jpeg_is_decoded_reduced(tmp_path, monkeypatch):
    import cv2

    import realtime.commands.still as still

    monkeypatch.setattr(still, "MAX_DECODE_PIXELS", 100 * 100)
    monkeypatch.setattr(still, "MAX_DREAM_PIXELS", 10**9)
    cv2.imwrite(str(tmp_path / "big.jpg"), np.zeros((240, 320, 3), np.uint8))
    assert still.load_image(str(tmp_path / "big.jpg"), None).shape == (60, 80, 3)  # decoded at 1/4


# --- minor: one live range for every controller ------------------------------------------------------


def test_every_controller_stops_steps_where_the_page_and_the_keys_do(remote):
    from realtime.params import LIVE_RANGES, MAX_LIVE_STEPS
    from realtime.show.midi import Mapping, MidiMapper

    assert control(remote, "/dreamcam/steps", 100)[0] == 200
    (web,) = remote.drain()
    osc = OscRules().translate("/dreamcam/steps", [100])
    cc = type("CC", (), {"type": "control_change", "control": 7, "value": 127})()
    midi = MidiMapper({7: Mapping("steps", 1, 100)}, ("block5",)).translate(cc)
    assert web.value == osc.value == midi.value == {"steps": MAX_LIVE_STEPS}  # on main: 100 from OSC/web
    state = ShowState(DreamParams(steps=MAX_LIVE_STEPS), ("block5",))
    apply_action(state, Action.MORE_STEPS)
    assert state.params.steps == MAX_LIVE_STEPS == LIVE_RANGES["steps"][1]


# --- minor: files and commands -------------------------------------------------------------------------


def test_a_second_sigterm_right_after_the_first_exits_143(tmp_path):
    import subprocess
    import sys

    script = (
        "import os, signal, time\n"
        "from realtime.commands.signals import Interrupted, stop_on_signals\n"
        "try:\n"
        "    with stop_on_signals():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(5)\n"
        "except Interrupted:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the second, while the command cleans up\n"
        "    time.sleep(5)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 143 and "exiting at once" in done.stderr  # on main: -15, nothing said


def test_a_take_whose_file_was_deleted_says_it_was_lost(tmp_path, caplog):
    import shutil

    from realtime.io.sinks import VideoRecorder

    folder = tmp_path / "recs"
    folder.mkdir()
    recorder = VideoRecorder(str(folder / "take.mp4"), 30.0)
    for _ in range(3):
        recorder.write(np.zeros((32, 32, 3), np.uint8))
    recorder.wait_until_written()
    shutil.rmtree(folder)  # rm -rf mid-take
    with caplog.at_level(logging.INFO):
        recorder.close()
    assert "was lost" in (recorder.failure or "")  # on main: "recorded 3 frames to ...take.mp4"
    assert not any("recorded 3 frames" in r.getMessage() for r in caplog.records)


def test_a_record_output_that_is_a_link_is_replaced_not_written_through(tmp_path):
    from realtime.io.sinks import VideoRecorder

    target = tmp_path / "precious.mp4"
    target.write_bytes(b"footage")
    link = tmp_path / "x.mp4"
    os.symlink(target, link)
    recorder = VideoRecorder(str(link), 30.0)  # --record x.mp4 --overwrite
    recorder.write(np.zeros((32, 32, 3), np.uint8))
    recorder.close()
    assert target.read_bytes() == b"footage" and not link.is_symlink() and link.stat().st_size > 0


def test_render_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    from realtime.commands.cli import main

    assert main(["render", str(tmp_path), "-o", str(tmp_path / "out.mp4")]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_eval_of_a_1x1_clip_is_one_line(tmp_path, capsys):
    from realtime.commands.cli import main
    from realtime.io.videofile import VideoFileWriter

    clip = tmp_path / "dot.mp4"
    writer = VideoFileWriter(str(clip), 30.0, live=False)
    for _ in range(3):
        writer.write(np.zeros((1, 1, 3), np.uint8))
    writer.close()
    assert main(["eval", str(clip)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "at least 16x16" in err


def test_doctor_says_a_cache_that_is_a_file_is_not_ok(tmp_path, monkeypatch):
    from realtime.commands.doctor import OK, check_cache

    cache = tmp_path / "cache"
    cache.write_text("a file")
    monkeypatch.setenv("DREAMCAM_CACHE", str(cache))
    (finding,) = check_cache()
    assert finding.status != OK and "is a file" in finding.what


def test_bench_refuses_a_budget_below_zero():
    from realtime.commands.bench import compare_backends

    with pytest.raises(ConfigError, match="--budget-s"):
        compare_backends(["eager"], lambda backend: {}, 2, -1.0)


def test_the_qr_code_is_made_once(remote, monkeypatch):
    import realtime.show.web as web

    calls = []
    monkeypatch.setattr(web, "qr_modules", lambda url: calls.append(url))
    for _ in range(100):
        remote.hud_lines()
    assert calls == []  # made at start-up; on main: once a frame for 30 s


def test_the_terminal_log_escapes_what_a_client_sent():
    from realtime.untrusted import TerminalFormatter

    record = logging.LogRecord(
        "x", logging.WARNING, "f", 1, "osc ignored %s", ("\x1b]0;owned\x07\x1b[2J",), None
    )
    line = TerminalFormatter("dreamcam: %(message)s").format(record)
    assert (
        "\x1b" not in line and "\x07" not in line and line.startswith("dreamcam: osc ignored \\x1b]0;owned")
    )


# --- round 3 hostile pass: the keepsake link through this pass's door ----------------------------------


@pytest.fixture
def booth(tmp_path):
    from realtime.show.keepsake import KeepsakeStore

    clock = FakeClock()
    store = KeepsakeStore(str(tmp_path / "cache"), clock=clock)
    remote = WebRemote("127.0.0.1", 0, OscRules(), require_token=True, clock=clock, keepsakes=store)
    image = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    keepsake = store.take(image)
    assert keepsake.ready.wait(20)
    yield remote, keepsake
    remote.close()
    store.close()


@pytest.mark.parametrize("host", ["localhost:evil.example", "[::1]evil.example:{port}", "127.0.0.1:1"])
def test_a_keepsake_link_answers_only_under_its_own_host(booth, host):
    remote, keepsake = booth
    headers = {"Host": host.format(port=remote.port)}
    status, data, _ = request(remote, "GET", f"/k/{keepsake.id}.png", headers=headers)
    assert status in (400, 403) and not data.startswith(b"\x89PNG")


def test_a_keepsake_link_with_a_0xff_cookie_or_a_forged_token_cookie_is_still_served(booth):
    remote, keepsake = booth
    for cookie in (f"{remote.guard.cookie}=\xff", f"{remote.guard.cookie}=wrong"):
        status, data, response = request(remote, "GET", f"/k/{keepsake.id}.png", headers={"Cookie": cookie})
        assert status == 200 and data.startswith(b"\x89PNG") and "Set-Cookie" not in response.headers


def test_keepsake_links_from_many_addresses_share_the_one_bound(booth, monkeypatch):
    from realtime.show.webguard import TOTAL_BURST

    remote, keepsake = booth
    monkeypatch.setattr("realtime.show.webguard.TARPIT_S", 0.0)
    remote.guard.rate.rate = remote.guard.rate.burst = 1e6  # as if each came from its own address
    statuses = [request(remote, "GET", f"/k/{keepsake.id}")[0] for _ in range(int(TOTAL_BURST) + 20)]
    assert statuses.count(429) >= 20 and statuses.count(200) <= int(TOTAL_BURST)


def test_a_keepsake_link_without_a_host_is_400_without_a_lookup(booth, monkeypatch):
    import socket

    remote, keepsake = booth
    monkeypatch.setattr(socket, "getfqdn", lambda *a: pytest.fail("getfqdn() blocks the web thread"))
    with socket.create_connection(("127.0.0.1", remote.port), timeout=5) as raw:
        raw.sendall(f"GET /k/{keepsake.id}.png HTTP/1.0\r\n\r\n".encode())
        assert raw.recv(64).split(b" ")[1] == b"400"
