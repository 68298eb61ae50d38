"""The web remote as an attacker and as a script see it: a real server on a loopback port.

Each refusal is checked by its status code; each control message by what the show's loop would
drain (nothing, for a refused one). The rate limiter runs on a fake clock: no sleeps, no timing.
"""

import asyncio
import http.client
import json
import os

import aiohttp
import numpy as np
import pytest

from realtime.control.plane import Action, Command, Preset
from realtime.errors import ConfigError, DreamcamError
from realtime.io.qrline import QrLine, qr_modules
from realtime.params import DreamParams
from realtime.show.osc import OscRules
from realtime.show.web import MAX_SOCKETS, QR_ON_HUD_S, WebRemote, parse_web_address, web_state
from realtime.show.webguard import MAX_BODY, RATE_BURST

PRESETS = [Preset("eyes", "eyes.toml", DreamParams()), Preset("fur", "fur.toml", DreamParams())]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def check_layer(name: str) -> None:
    if name not in ("block5", "block8"):
        raise DreamcamError(f"no layer '{name}'")


@pytest.fixture
def clock():
    return FakeClock()


def make_remote(tmp_path, clock, **kw) -> WebRemote:
    remote = WebRemote(
        "127.0.0.1", 0, OscRules(check_layer), presets=PRESETS, snapshot_dir=str(tmp_path), clock=clock, **kw
    )
    remote.publish(lambda: {"look": "", "fps": 30.0, "frames": 1})
    return remote


@pytest.fixture
def remote(tmp_path, clock):
    remote = make_remote(tmp_path, clock)
    yield remote
    remote.close()


@pytest.fixture
def guarded(tmp_path, clock):
    """As if listening beyond loopback: every request needs the token."""
    remote = make_remote(tmp_path, clock, require_token=True)
    yield remote
    remote.close()


def request(remote, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", remote.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def control(remote, address, *args, headers=None):
    body = json.dumps({"address": address, "args": list(args)})
    status, data, _ = request(remote, "POST", "/api/control", body, headers)
    return status, json.loads(data)


# --- one control plane ---------------------------------------------------------------------------


def test_good_messages_become_the_same_intents_as_osc(remote):
    assert control(remote, "/dreamcam/strength", 0.05) == (200, {"ok": True, "error": None})
    assert control(remote, "/dreamcam/layer", "block8")[0] == 200
    assert control(remote, "/dreamcam/preset", "fur")[0] == 200
    assert control(remote, "/dreamcam/record", 1)[0] == 200
    assert control(remote, "/dreamcam/next")[0] == 200
    osc = OscRules(check_layer)
    expected = [
        osc.translate("/dreamcam/strength", [0.05]),
        osc.translate("/dreamcam/layer", ["block8"]),
        osc.translate("/dreamcam/preset", ["fur"]),
        osc.translate("/dreamcam/record", [1]),
        osc.translate("/dreamcam/next", []),
    ]
    drained = remote.drain()
    assert [(i.action, i.value) for i in drained] == [(i.action, i.value) for i in expected]
    assert {i.origin for i in drained} == {"web"}
    assert drained[0] == Command(Action.SET, {"lr": 0.05}, "web")


@pytest.mark.parametrize(
    "message, says",
    [
        ({"address": "/dreamcam/strength", "args": [float("nan")]}, "finite"),
        ({"address": "/dreamcam/strength", "args": ["loud"]}, "number"),
        ({"address": "/dreamcam/layer", "args": ["../../etc"]}, "no layer"),
        ({"address": "/dreamcam/preset", "args": ["nope"]}, "no preset 'nope'"),
        ({"address": "/dreamcam/quit", "args": []}, "unknown address"),
        ({"address": "/other/strength", "args": [1]}, "unknown address"),
        ({"address": "/dreamcam/steps", "args": 3}, "list"),
        ({"args": [1]}, "address"),
        ([1, 2], "address"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_and_never_queued(remote, message, says):
    status, data, _ = request(remote, "POST", "/api/control", json.dumps(message))
    answer = json.loads(data)
    assert status == 400 and answer["ok"] is False and says in answer["error"]
    assert remote.drain() == []
    assert remote.refused == 1


def test_not_json_is_400(remote):
    assert request(remote, "POST", "/api/control", b"{not json")[0] == 400


def test_state_page_and_assets_are_served_from_dreamcam_itself(remote):
    status, data, _ = request(remote, "GET", "/api/state")
    assert status == 200 and json.loads(data)["fps"] == 30.0
    status, page, response = request(remote, "GET", "/")
    assert status == 200 and b"/static/app.js" in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert b"http" not in page.replace(b"http-equiv", b"")  # no CDN: every asset is ours
    for name in ("app.js", "style.css"):
        assert request(remote, "GET", f"/static/{name}")[0] == 200


def test_web_state_names_the_sliders_as_osc_does():
    state = web_state(
        {"preset": "fur", "record": 1, "fps": 29.5},
        DreamParams(lr=0.04, steps=2),
        frozen=True,
        looks=["eyes", "fur"],
        figures={"dreams_per_s": 20.0},
    )
    assert state["look"] == "fur" and state["recording"] is True and state["frozen"] is True
    assert state["controls"]["strength"]["value"] == 0.04 and state["controls"]["steps"]["max"] == 8
    assert state["dreams_per_s"] == 20.0


def test_the_thumbnail_is_a_small_jpeg(remote, clock):
    remote.offer_frame(np.full((720, 1280, 3), 200, np.uint8))
    for _ in range(200):
        status, data, response = request(remote, "GET", "/api/thumb.jpg")
        if status == 200:
            break
    assert status == 200 and data[:2] == b"\xff\xd8" and len(data) < 30_000
    # a second frame within 1/THUMB_FPS is not even resized
    clock.now += 0.01
    remote.offer_frame(np.zeros((720, 1280, 3), np.uint8))
    assert remote.encoder.dropped == 0


def test_parse_web_address():
    assert parse_web_address("8080") == ("127.0.0.1", 8080)
    assert parse_web_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_web_address("[::1]:0") == ("::1", 0)
    for bad in ("", "host:", "99999", "a:b", "١٢٣"):
        with pytest.raises(ConfigError, match="--web must be"):
            parse_web_address(bad)


def test_a_port_in_use_is_one_line(remote, tmp_path, clock):
    with pytest.raises(ConfigError, match="cannot serve the web remote on 127.0.0.1"):
        WebRemote("127.0.0.1", remote.port, OscRules(), snapshot_dir=str(tmp_path), clock=clock)


# --- the door: tokens, origins, sizes, paths ----------------------------------------------------


def test_beyond_loopback_a_token_is_asked_for():
    remote = WebRemote("0.0.0.0", 0, OscRules())
    try:
        assert remote.token and f"token={remote.token}" in remote.url
        assert request(remote, "GET", "/api/state")[0] == 401
    finally:
        remote.close()


@pytest.mark.parametrize("path", ["/", "/api/state", "/api/thumb.jpg", "/api/snapshots", "/static/app.js"])
def test_no_token_no_page_no_state_no_thumbnail(guarded, path):
    assert request(guarded, "GET", path)[0] == 401
    assert request(guarded, "GET", f"{path}?token=wrong")[0] == 403
    assert request(guarded, "GET", path, headers={"Cookie": f"{guarded.guard.cookie}=wrong"})[0] == 403


def test_no_token_no_control(guarded):
    assert control(guarded, "/dreamcam/strength", 0.05)[0] == 401
    wrong = {"Cookie": f"{guarded.guard.cookie}={guarded.token[:-1]}x"}
    assert control(guarded, "/dreamcam/strength", 0.05, headers=wrong)[0] == 403
    assert guarded.drain() == []


def test_the_qr_url_sets_a_cookie_that_keeps_the_phone_in(guarded):
    status, _, response = request(guarded, "GET", f"/?token={guarded.token}")
    assert status == 303 and response.headers["Location"] == "/"  # the token leaves the address bar
    cookie = response.headers["Set-Cookie"]
    assert guarded.token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": f"{guarded.guard.cookie}={guarded.token}"}
    assert request(guarded, "GET", "/", headers=jar)[0] == 200
    assert control(guarded, "/dreamcam/strength", 0.05, headers=jar)[0] == 200
    assert len(guarded.drain()) == 1


def test_a_forged_origin_cannot_drive_the_show(remote):
    forged = {"Origin": "http://evil.example"}
    assert control(remote, "/dreamcam/strength", 0.05, headers=forged)[0] == 403
    ours = {"Origin": f"http://127.0.0.1:{remote.port}"}
    assert control(remote, "/dreamcam/strength", 0.05, headers=ours)[0] == 200
    assert len(remote.drain()) == 1


def test_a_rebound_host_name_is_refused_on_loopback(remote):
    assert request(remote, "GET", "/api/state", headers={"Host": f"evil.example:{remote.port}"})[0] == 403
    assert request(remote, "GET", "/api/state", headers={"Host": f"localhost:{remote.port}"})[0] == 200


def test_a_get_changes_nothing(remote):
    assert request(remote, "GET", "/api/control")[0] == 405
    assert remote.drain() == []


def test_an_oversized_body_is_413(remote):
    big = json.dumps({"address": "/dreamcam/layer", "args": ["x" * (MAX_BODY * 4)]})
    assert request(remote, "POST", "/api/control", big)[0] == 413
    assert remote.drain() == []


@pytest.mark.parametrize(
    "path",
    [
        "/snapshots/../secret.png",
        "/snapshots/..%2Fsecret.png",
        "/snapshots/%2e%2e%2fsecret.png",
        "/snapshots/.hidden.png",
        "/snapshots/",
        "/snapshots",
        "/static/../web.py",
        "/static/%2e%2e/web.py",
        "/static/",
        "/snapshots/link.png",
        "/snapshots/notes.txt",
        "/../../etc/passwd",
    ],
)
def test_no_listing_and_no_way_out_of_the_snapshots(remote, tmp_path, path):
    secret = tmp_path.parent / "secret.png"
    secret.write_bytes(b"secret")
    (tmp_path / ".hidden.png").write_bytes(b"hidden")
    (tmp_path / "notes.txt").write_bytes(b"notes")
    if not (tmp_path / "link.png").exists():
        os.symlink(secret, tmp_path / "link.png")
    status, data, _ = request(remote, "GET", path)
    assert status == 404 and b"secret" not in data and b"hidden" not in data


def test_snapshots_are_listed_and_downloaded(remote, tmp_path):
    (tmp_path / "dreamcam-1.png").write_bytes(b"\x89PNG one")
    status, data, _ = request(remote, "GET", "/api/snapshots")
    assert json.loads(data) == {"snapshots": ["dreamcam-1.png"]}
    status, data, response = request(remote, "GET", "/snapshots/dreamcam-1.png")
    assert (
        status == 200 and data == b"\x89PNG one" and "attachment" in response.headers["Content-Disposition"]
    )


# --- floods -------------------------------------------------------------------------------------


async def _burst(port: int, total: int, connections: int) -> dict[int, int]:
    """`total` GETs over keep-alive connections, as fast as they are answered."""
    statuses: dict[int, int] = {}
    per = total // connections

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per):
            writer.write(f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
            )
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return statuses


def test_a_burst_is_answered_429_beyond_the_rate(remote, clock, monkeypatch):
    monkeypatch.setattr("realtime.show.webguard.TARPIT_S", 0.0)  # the fake clock does not move
    statuses = asyncio.run(_burst(remote.port, 400, 20))
    assert statuses == {200: int(RATE_BURST), 429: 400 - int(RATE_BURST)}
    assert remote.guard.counts.refused[429] == 400 - int(RATE_BURST)
    clock.now += 1.0  # a second later the bucket has refilled: the page works again
    assert request(remote, "GET", "/api/state")[0] == 200


async def _sockets(port: int, count: int, origin: str | None) -> dict[int, int]:
    statuses: dict[int, int] = {}
    held = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            try:
                ws = await session.ws_connect(
                    f"http://127.0.0.1:{port}/ws", headers={"Origin": origin} if origin else None
                )
                held.append(ws)  # opened and never read
                statuses[101] = statuses.get(101, 0) + 1
            except aiohttp.WSServerHandshakeError as exc:
                statuses[exc.status] = statuses.get(exc.status, 0) + 1
        for ws in held:
            await ws.close()
    return statuses


def test_sockets_are_capped_and_a_forged_origin_is_refused(remote, clock):
    remote.guard.rate.rate = 1e6  # this test is about sockets, not the request rate
    remote.guard.rate.burst = 1e6
    assert asyncio.run(_sockets(remote.port, 1, "http://evil.example")) == {403: 1}
    statuses = asyncio.run(_sockets(remote.port, MAX_SOCKETS + 20, f"http://127.0.0.1:{remote.port}"))
    assert statuses == {101: MAX_SOCKETS, 503: 20}


async def _socket_control(port: int) -> list[dict]:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
        await ws.send_str(json.dumps({"id": 1, "address": "/dreamcam/strength", "args": [0.07]}))
        await ws.send_str(json.dumps({"id": 2, "address": "/dreamcam/layer", "args": ["bogus"]}))
        replies = []
        while len(replies) < 2:
            message = json.loads((await ws.receive()).data)
            if message["type"] == "reply":
                replies.append(message)
        return replies


def test_the_socket_speaks_the_same_rules(remote):
    first, second = asyncio.run(_socket_control(remote.port))
    assert first == {"type": "reply", "id": 1, "ok": True, "error": None}
    assert second["id"] == 2 and second["ok"] is False and "no layer 'bogus'" in second["error"]
    assert remote.drain() == [Command(Action.SET, {"lr": 0.07}, "web")]


def test_connections_beyond_the_cap_are_refused_503(remote, monkeypatch):
    monkeypatch.setattr("realtime.show.webguard.MAX_CONNECTIONS", 3)
    held = []
    try:
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", remote.port, timeout=10)
            conn.request("GET", "/api/state")
            assert conn.getresponse().read() and conn.sock is not None  # kept alive
            held.append(conn)
        assert request(remote, "GET", "/api/state")[0] == 503
    finally:
        for conn in held:
            conn.close()


# --- the show's side: the HUD, the window, the control plane --------------------------------------


def test_the_qr_code_is_on_the_hud_for_30_seconds(guarded, clock):
    codes = [line for line in guarded.hud_lines() if isinstance(line, QrLine)]
    assert len(codes) == 1 and guarded.token in codes[0] and len(codes[0].modules) >= 21
    assert f"web http://127.0.0.1:{guarded.port}" in guarded.hud_lines()[0]
    assert guarded.token not in guarded.hud_lines()[0]
    clock.now += QR_ON_HUD_S + 1
    assert not any(isinstance(line, QrLine) for line in guarded.hud_lines())


def test_the_window_draws_the_qr_code_with_the_hud_hidden():
    import pygame

    from realtime.io.display import Window

    black = np.zeros((240, 320, 3), np.uint8)
    with Window(fullscreen=False, size=(320, 240), hud=False) as window:
        window.show(black, ["a status line"])
        plain = pygame.surfarray.array3d(pygame.display.get_surface()).copy()
        window.show(black, ["a status line", QrLine("scan", qr_modules("http://10.0.0.2:8080/?token=abc"))])
        drawn = pygame.surfarray.array3d(pygame.display.get_surface())  # indexed [x, y]
    assert plain.max() == 0  # the HUD is hidden: no text, no box
    corner = drawn[200:312, 130:232]
    assert corner.max() == 255 and corner.min() == 0  # white quiet zone, black modules
    assert drawn[:150, :100].max() == 0  # nothing else was drawn


def test_show_control_joins_the_web_remote(remote, clock):
    from realtime.control.plane import ShowState, apply_action
    from realtime.show.plan import ShowControl

    state = ShowState(DreamParams(layer="block5"), ("block5", "block8"), presets=PRESETS)
    show = ShowControl(state, web=remote)
    show.figures = lambda: {"dreams_per_s": 12.0, "backend": "eager"}
    assert control(remote, "/dreamcam/freeze", 1)[0] == 200
    intents = show.intents([])
    assert intents == [Command(Action.FREEZE, True, "web")]
    for intent in intents:
        apply_action(state, intent)
    clock.now += 1.0
    show.output(np.zeros((36, 64, 3), np.uint8))
    published = json.loads(request(remote, "GET", "/api/state")[1])
    assert published["frozen"] is True and published["dreams_per_s"] == 12.0
    assert published["looks"] == ["eyes", "fur"] and published["layer"] == "block5"
    assert any(line.startswith("web http://127.0.0.1") for line in show.hud_lines())


def test_a_bad_web_address_is_one_line_before_the_camera(capsys):
    from realtime.commands.cli import main

    assert main(["run", "--source", "synthetic", "--headless", "--web", "99999"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--web must be [HOST:]PORT" in err and len(err.splitlines()) == 1


def test_the_terminal_gets_the_address_and_its_qr_code(guarded):
    import io

    out = io.StringIO()
    guarded.print_invitation(out)
    text = out.getvalue()
    assert f"web remote: {guarded.url}" in text and guarded.token in text
    assert "█" in text or "▀" in text  # segno's compact terminal QR code


def test_without_the_web_extra_the_flag_says_what_to_install(monkeypatch):
    import sys

    import realtime.show
    from realtime.show.plan import web_module

    monkeypatch.delattr(realtime.show, "web")
    monkeypatch.setitem(sys.modules, "realtime.show.web", None)  # its import fails, as without aiohttp
    with pytest.raises(ConfigError, match=r"pip install 'dreamcam\[web\]'"):
        web_module()
