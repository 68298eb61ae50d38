"""Show-safe, third pass (issue 27): what an allowed phone, a busy operator and an odd file could
still do to a show. Each severe case here failed on main before its fix (docs/SAFETY.md, "Third
pass"); the show's thread is checked never to wait (fake clocks and events, no timing)."""

import asyncio
import json
import logging
import os

import aiohttp
import numpy as np
import pytest

from realtime.params import DreamParams
from realtime.show.control import Preset
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
                    texts += 1
            except TimeoutError:
                pass
        return texts, binaries


def test_a_socket_reset_during_a_push_leaves_the_other_phones_served(remote, clock):
    texts, binaries = asyncio.run(_thumbnails_after_a_reset(remote, clock))
    assert binaries == 3 and texts >= 3  # on main: the first state only, then nothing, and no log


def test_a_fault_in_the_pusher_is_logged_and_it_starts_again(remote, clock, monkeypatch, caplog):
    import realtime.show.web as web

    real, faults = web._state_message, []

    def fails_once(state):
        if not faults:
            faults.append(1)
            raise ValueError("a state that cannot be sent")
        return real(state)

    monkeypatch.setattr(web, "_state_message", fails_once)
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
