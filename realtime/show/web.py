"""The web remote (`--web`): a control page for a phone, served beside the show on its own thread.

It joins the show's one control plane. Each message the page (or a script) sends is OSC's address
space as JSON, `{"address": "/dreamcam/strength", "args": [0.05]}`, turned into an intent by the
same `OscRules` the OSC server uses, so a value OSC refuses is refused here too, with its message
sent back to the page; what passes is queued and drained by the loop between frames (`drain`),
like OSC's. The loop thread never waits for the web: it hands over the state (`publish`, a few
times a second) and a small frame (`offer_frame`, a few times a second; a JPEG is made from it on
the encoder's own thread, and a frame that finds the encoder busy is dropped, never queued).
Who may connect, how often and from where is `realtime.show.webguard`'s job. docs/REMOTE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import json
import logging
import os
import queue
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import cv2
import numpy as np
from aiohttp import WSMsgType, web

from realtime.control.plane import Action, Command, Intent, Preset, action_of, find_preset
from realtime.control.ratelimit import QuietLibraryLog, WarnLimit
from realtime.errors import ConfigError, DreamcamError
from realtime.io.qrline import QrLine, qr_modules
from realtime.params import LIVE_RANGES, DreamParams
from realtime.show.keepsake import KeepsakeStore
from realtime.show.keepsake import Status as Kept
from realtime.show.osc import ALIASES, OscRules, Rejected
from realtime.show.webguard import (
    MAX_BODY,
    TOKEN_PARAM,
    TOTAL_BURST,
    TOTAL_RATE_PER_S,
    Guard,
    RateLimiter,
    is_loopback,
    new_token,
)
from realtime.untrusted import printable

log = logging.getLogger(__name__)

THUMB_FPS = 4.0  # enough to see what the show shows; each costs ~1 ms of resize on the loop thread
THUMB_WIDTH = 320  # px: a phone's width at 1x; ~10-15 kB a JPEG
JPEG_QUALITY = 70
STATE_EVERY_S = 0.1  # the page's sliders follow keys, OSC and MIDI within this
QUEUE_SIZE = 64  # intents waiting for the next frame; a flood beyond is refused, not queued
MAX_SOCKETS = 16  # WebSockets open at once (a phone or two, a laptop); more are refused 503
SOCKET_BACKLOG = 32 * 1024  # bytes unsent to a socket beyond which its frames are dropped (never queued)
SOCKET_RATE, SOCKET_BURST = 20.0, 40.0  # messages a second per socket (a slider drag sends ~10)
KEEPALIVE_S = 5.0  # an idle connection is closed after this (the page's own traffic is on its socket)
HEARTBEAT_S = 10.0  # a socket that answers no ping for this long is closed (a phone gone to sleep)
QR_ON_HUD_S = 30.0
MAX_LISTED = 50  # snapshots listed on the page, newest first
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.png")  # no separators, no leading dot
PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
KEEPSAKE_PREFIX = "/k/"  # a keepsake's page and picture: no token, their own id is their key
KEEPSAKE_FILES = ("keepsake.html", "gone.html", "keepsake.css")
KEEPSAKE_ROUTES = ("keepsake-page", "keepsake-png", "keepsake-css")
KEEPSAKE_WAIT_S = 10.0  # a link opened while its picture is still being written waits this long
# a visitor's picture: never cached on the way, never indexed, never named to another site
KEEPSAKE_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex, nofollow"}
LIVE_CONTROLS = ("lr", "steps", "persistence", "depth", "stillness_boost")  # the page's sliders
# what the remote may not do, though OSC may: the HUD is the operator's screen, and a saved preset is a
# file in the operator's folder (a phone sending 20 a second left 950 files and 952 buttons)
NOT_FROM_THE_WEB = {Action.TOGGLE_HUD: "the HUD", Action.SAVE_PRESET: "saving presets"}
MAX_SNAPSHOT_BYTES = 64 * 2**20  # a PNG of the largest frame is ~25 MB; anything bigger is not ours
OSC_NAMES = {field: name for name, field in ALIASES.items()}  # lr -> strength


def parse_web_address(text: str) -> tuple[str, int]:
    """'8080' -> ('127.0.0.1', 8080); '0.0.0.0:8080', '[::]:8080'; port 0: any free port."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or not host:
        raise ConfigError(
            f"--web must be [HOST:]PORT with a port of 0-65535 (e.g. 8080, or 0.0.0.0:8080 to reach it "
            f"from a phone), got '{text}'"
        )
    return host, int(port_text)


def page_url(host: str, port: int, token: str | None) -> str:
    """The address a phone opens: an interface's address when listening on all of them."""
    if host in ("0.0.0.0", "::", ""):
        host = _lan_address()
    shown = f"[{host}]" if ":" in host else host
    query = f"/?{TOKEN_PARAM}={token}" if token else "/"
    return f"http://{shown}:{port}{query}"


def _lan_address() -> str:
    """This machine's address on its default route (no packet is sent); loopback if there is none."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        return probe.getsockname()[0]
    return "127.0.0.1"


class ThumbnailEncoder:
    """JPEGs of the output on a thread of their own; a frame that finds it busy is dropped."""

    def __init__(self, deliver: Callable[[bytes], None]):
        self._deliver = deliver
        self._frame: np.ndarray | None = None
        self._wake = threading.Condition()
        self._closed = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="web-thumbnails", daemon=True)
        self._thread.start()

    def offer(self, small: np.ndarray) -> None:
        with self._wake:
            if self._frame is not None:
                self.dropped += 1
                return
            self._frame = small
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._frame is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                frame = self._frame
            ok, jpeg = cv2.imencode(  # OpenCV lets go of the GIL while it encodes
                ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            with self._wake:
                self._frame = None
            if ok:
                self._deliver(jpeg.tobytes())

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=2)


@dataclasses.dataclass(eq=False)  # one per connection, kept in a set by identity
class _Socket:
    ws: web.WebSocketResponse
    transport: Any  # asyncio.Transport: its unsent bytes say whether the phone keeps up


class WebRemote:
    """Serves the page on host:port (port 0: any free port, see `.port`) until `close()`.

    A token is needed for every request unless the host is loopback (`require_token` overrides,
    for tests). `presets` and `snapshot_dir` are what the page lists; `rules` checks every message."""

    def __init__(
        self,
        host: str,
        port: int,
        rules: OscRules,
        *,
        presets: list[Preset] | None = None,
        snapshot_dir: str = "snapshots",
        require_token: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        keepsakes: KeepsakeStore | None = None,
    ):
        self.rules, self.snapshot_dir, self.clock = rules, snapshot_dir, clock
        self.keepsakes = keepsakes  # the booth's pictures (--web): their links open them and nothing else
        self.presets: list[Preset] = list(presets or [])
        need_token = not is_loopback(host) if require_token is None else require_token
        self.token = new_token() if need_token else None
        total = RateLimiter(TOTAL_RATE_PER_S, TOTAL_BURST, clock)
        self.guard = Guard(host, self.token, RateLimiter(clock=clock), total, public=_keepsake_route)
        self.refused = 0  # control messages the rules refused
        self.accepted = 0
        self._queue: queue.Queue[Intent] = queue.Queue(maxsize=QUEUE_SIZE)
        self._state: dict[str, object] = {}
        self._state_at = -float("inf")
        self._thumb_at = -float("inf")
        self._jpeg: bytes | None = None
        self._sockets: set[_Socket] = set()
        self._closing = False
        self.pusher_restarts = 0  # times the push task failed and was started again (logged)
        self._push_warnings = WarnLimit()
        self._page = {name: _page_file(name) for name in PAGE_FILES}
        # a malformed request never reaches the middleware: aiohttp logs each with a traceback
        # (32,504 in 20 s took the display from 30 to 10.6 fps); at most one line a second here
        self._server_log = QuietLibraryLog("aiohttp.server", "web remote")
        self._server_log.attach()
        self._loop_warnings = WarnLimit()
        self._keepsake_page = {name: _page_file(name) for name in KEEPSAKE_FILES}
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_fault)
        self._news: asyncio.Event | None = None  # made on the web thread's loop
        self._ready = threading.Event()
        self._failure: OSError | None = None
        self._thread = threading.Thread(target=self._serve, args=(host, port), name="web", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            self._server_log.detach()
            raise ConfigError(
                f"cannot serve the web remote on {host}:{port} ({self._failure.strerror or self._failure}); "
                "choose another --web port or host"
            )
        self.encoder = ThumbnailEncoder(self._thumbnail_ready)
        self.started_at = clock()
        self.url = page_url(self.host, self.port, self.token)
        self._qr = qr_modules(self.url)  # once: 2.9 ms a call, and the HUD asks every frame for 30 s

    # --- the loop's side (between frames, on the show's thread) ----------------------------------

    def drain(self) -> list[Intent]:
        """Every intent the page sent since the last call, in arrival order."""
        intents = []
        for _ in range(QUEUE_SIZE):
            try:
                intents.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return intents

    def publish(self, state: Callable[[], Mapping[str, object]]) -> None:
        """Hand the page the show's state (built only when due, a few times a second)."""
        now = self.clock()
        if now - self._state_at < STATE_EVERY_S:
            return
        self._state_at = now
        self._state = dict(state())  # replaced whole: the web thread reads a finished dict
        self._loop.call_soon_threadsafe(self._wake_pusher)

    def offer_frame(self, image: np.ndarray) -> None:
        """A small copy of the output for the thumbnail, THUMB_FPS times a second at most."""
        now = self.clock()
        if now - self._thumb_at < 1.0 / THUMB_FPS:
            return
        self._thumb_at = now
        h, w = image.shape[:2]
        size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
        # the copy the encoder owns (the composer may reuse the frame's memory): one small resize
        self.encoder.offer(cv2.resize(image, size, interpolation=cv2.INTER_AREA))

    def hud_lines(self) -> list[str]:
        where = page_url(self.host, self.port, None).removesuffix("/")
        line = f"web {where}  {len(self._sockets)} connected  {self.accepted} ok  {self.refused} refused"
        if self.guard.counts.total:
            line += f"  {self.guard.counts.total} turned away"
        lines = [line]
        if self.clock() - self.started_at < QR_ON_HUD_S:
            lines.append(QrLine(f"scan to control: {self.url}", self._qr))
        return lines

    def keepsake_url(self, keepsake_id: str) -> str:
        """A keepsake's link: the address a phone on the booth's network opens, without the token."""
        return page_url(self.host, self.port, None) + KEEPSAKE_PREFIX.lstrip("/") + keepsake_id

    def print_invitation(self, out) -> None:
        """The page's address (with its token) and its QR code, for the terminal."""
        import segno  # only the terminal and the HUD need it

        print(f"dreamcam: web remote: {self.url}", file=out)
        if self.token is not None:
            segno.make(self.url, error="l").terminal(out=out, compact=True)

    def close(self) -> None:
        self.encoder.close()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._server_log.detach()

    # --- the web thread ---------------------------------------------------------------------------

    def _serve(self, host: str, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            runner = self._loop.run_until_complete(self._start(host, port))
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._stop(runner))
            self._loop.close()

    async def _start(self, host: str, port: int) -> web.AppRunner:
        self._news = asyncio.Event()
        app = web.Application(middlewares=[self.guard.middleware], client_max_size=MAX_BODY)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/api/thumb.jpg", self._api_thumb)
        app.router.add_get("/api/snapshots", self._api_snapshots)
        app.router.add_post("/api/control", self._api_control)
        app.router.add_get("/snapshots/{name}", self._snapshot)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/k/page.css", self._keepsake_css, name="keepsake-css")
        app.router.add_get("/k/{id:[A-Za-z0-9_-]+}.png", self._keepsake_png, name="keepsake-png")
        app.router.add_get("/k/{id:[A-Za-z0-9_-]+}", self._keepsake_html, name="keepsake-page")
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0, keepalive_timeout=KEEPALIVE_S
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self.host, self.port = runner.addresses[0][:2]
        self.guard.listening(self.port)
        server = runner.server
        self.guard.open_connections = lambda: len(server.connections)
        self._start_pusher()
        return runner

    def _start_pusher(self) -> None:
        self._pusher = asyncio.ensure_future(self._push())
        self._pusher.add_done_callback(self._pusher_ended)

    def _pusher_ended(self, task: asyncio.Task) -> None:
        """The pusher never ends but at close: a fault in it is logged and it starts again, so
        one bad socket cannot leave every phone without state and thumbnails."""
        if task.cancelled() or self._closing:
            return
        exc = task.exception()
        self.pusher_restarts += 1
        self._push_warnings.warn(
            log, "web remote: the push to the phones failed (%s: %s); restarted", type(exc).__name__, exc
        )
        self._start_pusher()

    async def _stop(self, runner: web.AppRunner) -> None:
        self._closing = True
        self._pusher.cancel()
        for sock in list(self._sockets):
            sock.transport.abort()  # a phone that stopped reading would hold a polite close forever
        await runner.cleanup()

    def _loop_fault(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """asyncio's own complaints on the web thread ("socket.accept() out of system resource" when
        file descriptors run out, ~250 a second with a low limit): one line a second, no traceback."""
        exc = context.get("exception")
        why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
        self._loop_warnings.warn(log, "web remote: %s%s", context.get("message", "fault"), printable(why))

    def _wake_pusher(self) -> None:
        self._news.set()

    def _thumbnail_ready(self, jpeg: bytes) -> None:  # on the encoder's thread
        with contextlib.suppress(RuntimeError):  # the loop closed while it encoded: nobody to tell
            self._loop.call_soon_threadsafe(self._new_thumbnail, jpeg)

    def _new_thumbnail(self, jpeg: bytes) -> None:
        self._jpeg = jpeg
        self._news.set()

    async def _push(self) -> None:
        """Send the newest state and thumbnail to every socket that keeps up; skip the others."""
        sent_state: dict[str, object] | None = None
        sent_jpeg: bytes | None = None
        while True:
            await self._news.wait()
            self._news.clear()
            state, jpeg = self._state, self._jpeg
            text = _state_message(state) if state is not sent_state else None
            new_jpeg = jpeg if jpeg is not sent_jpeg else None
            sent_state, sent_jpeg = state, jpeg
            for sock in list(self._sockets):
                await self._send_to(sock, text, new_jpeg)

    async def _send_to(self, sock: _Socket, text: str | None, jpeg: bytes | None) -> None:
        """One socket's share of a push; a phone that dropped its connection (a reset, a closed
        transport) is forgotten here and costs the others nothing."""
        transport = sock.transport
        if sock.ws.closed or transport is None or transport.is_closing():
            self._sockets.discard(sock)
            return
        if transport.get_write_buffer_size() > SOCKET_BACKLOG:
            return  # drop, never queue: the next one will be newer
        try:
            if text is not None:
                await sock.ws.send_str(text)
            if jpeg is not None:
                await sock.ws.send_bytes(jpeg)
        except (ConnectionError, RuntimeError) as exc:  # reset mid-send; aiohttp's "closing transport"
            log.debug("web socket dropped during a push: %s", exc)
            self._sockets.discard(sock)
            transport.abort()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if request.query.get(TOKEN_PARAM):  # from the QR code: the cookie is set, drop the token from the URL
            return web.Response(status=303, headers={"Location": "/"})
        return web.Response(body=self._page["index.html"], content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "index.html" or name not in self._page:  # only our own files, from memory
            raise web.HTTPNotFound()
        return web.Response(body=self._page[name], content_type=PAGE_FILES[name], charset="utf-8")

    async def _api_state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._state)

    async def _api_thumb(self, request: web.Request) -> web.StreamResponse:
        if self._jpeg is None:
            return web.json_response({"ok": False, "error": "no picture yet"}, status=503)
        return web.Response(body=self._jpeg, content_type="image/jpeg")

    async def _api_snapshots(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"snapshots": list_snapshots(self.snapshot_dir)})

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        data = await asyncio.get_running_loop().run_in_executor(None, read_snapshot, self.snapshot_dir, name)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=data,
            content_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def _api_control(self, request: web.Request) -> web.StreamResponse:
        try:
            message = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... 2,000 deep
            return web.json_response({"ok": False, "error": "expects a JSON object"}, status=400)
        error = self.control(message)
        return web.json_response({"ok": error is None, "error": error}, status=200 if error is None else 400)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if len(self._sockets) >= MAX_SOCKETS:
            refusal = web.json_response(
                {"ok": False, "error": f"{MAX_SOCKETS} remotes are connected already"}, status=503
            )
            refusal.force_close()  # free the connection: a client that opens hundreds gets them back
            return refusal
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_BODY, compress=False)
        await ws.prepare(request)
        sock = _Socket(ws, request.transport)
        self._sockets.add(sock)
        limiter = RateLimiter(SOCKET_RATE, SOCKET_BURST, self.clock)
        try:
            if self._state:
                await ws.send_str(_state_message(self._state))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(msg.data)
                except (ValueError, RecursionError):
                    message = None
                if not limiter.allow("socket"):
                    error = "too many messages: slow down"
                else:
                    error = self.control(message)
                reply = {"type": "reply", "id": message.get("id") if isinstance(message, dict) else None}
                if sock.transport is not None and sock.transport.get_write_buffer_size() <= SOCKET_BACKLOG:
                    await ws.send_str(json.dumps({**reply, "ok": error is None, "error": error}))
        finally:
            self._sockets.discard(sock)
        return ws

    # --- keepsakes: a visitor's own picture, and nothing else ---------------------------------

    async def _keepsake_html(self, request: web.Request) -> web.StreamResponse:
        keepsake, refusal = await self._keepsake(request)
        if refusal is not None:
            return refusal
        left_s = max(0.0, keepsake.expires_at - self.clock())
        fields = {
            "id": keepsake.id,
            "name": keepsake.name,
            "width": keepsake.width,
            "height": keepsake.height,
            "until": time.strftime("%H:%M", time.localtime(time.time() + left_s)),
        }
        return self._keepsake_text("keepsake.html", fields, 200)

    async def _keepsake_png(self, request: web.Request) -> web.StreamResponse:
        keepsake, refusal = await self._keepsake(request)
        if refusal is not None:
            return refusal
        how = "attachment" if request.query.get("download") else "inline"
        headers = {**KEEPSAKE_HEADERS, "Content-Disposition": f'{how}; filename="{keepsake.name}"'}
        return web.FileResponse(keepsake.path, headers=headers)

    async def _keepsake_css(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=self._keepsake_page["keepsake.css"], content_type="text/css", charset="utf-8"
        )

    async def _keepsake(self, request: web.Request) -> tuple[Any, web.Response | None]:
        """The keepsake a link names, once its picture is written; or the answer to give instead:
        404 for an id this show never made (or whose picture the disk refused), 410 for an expired one."""
        status, keepsake = (
            self.keepsakes.find(request.match_info["id"])
            if self.keepsakes is not None
            else (Kept.UNKNOWN, None)
        )
        if status is Kept.EXPIRED:
            text = "Pictures are kept for a short while only, then deleted. Ask at the booth for a new one."
            return None, self._keepsake_text(
                "gone.html", {"title": "This picture has expired", "text": text}, 410
            )
        if keepsake is not None:
            waited = 0.0
            while not keepsake.ready.is_set() and waited < KEEPSAKE_WAIT_S:
                await asyncio.sleep(0.05)
                waited += 0.05
            if keepsake.ready.is_set() and keepsake.failure is None:
                return keepsake, None
        text = "No picture has this address: check it against the one on the screen."
        return None, self._keepsake_text("gone.html", {"title": "No such picture", "text": text}, 404)

    def _keepsake_text(self, name: str, fields: Mapping[str, object], status: int) -> web.Response:
        page = self._keepsake_page[name].decode()
        for key, value in fields.items():
            page = page.replace("{" + key + "}", html.escape(str(value)))
        return web.Response(
            text=page, status=status, content_type="text/html", charset="utf-8", headers=KEEPSAKE_HEADERS
        )

    # --- the one way in -----------------------------------------------------------------------

    def control(self, message: object) -> str | None:
        """Check one message with OSC's rules and queue its intent; the refusal's text, or None."""
        try:
            intent = self._intent(message)
        except (ArithmeticError, RecursionError, ValueError):  # a 3,000-digit number, a deep list
            self.refused += 1
            return "not a value dreamcam takes: send small numbers and short texts"
        except (Rejected, DreamcamError) as exc:
            self.refused += 1
            log.debug("web refused %r: %s", message, exc)
            return str(exc)
        if intent is None:
            return None
        try:
            self._queue.put_nowait(intent)
        except queue.Full:
            self.refused += 1
            return "too many changes at once: the show is behind"
        self.accepted += 1
        return None

    def _intent(self, message: object) -> Intent | None:
        if not isinstance(message, dict) or not isinstance(message.get("address"), str):
            raise Rejected('expects {"address": "/dreamcam/...", "args": [...]}')
        args = message.get("args", [])
        if not isinstance(args, list):
            raise Rejected("args must be a list")
        intent = self.rules.translate(message["address"], args)
        if intent is not None and (what := NOT_FROM_THE_WEB.get(action_of(intent))):
            raise Rejected(f"{what} is not offered by the web remote (keys or OSC can)")
        if isinstance(intent, Command) and intent.action is Action.PRESET:
            find_preset(self.presets, intent.value)  # the look must exist: same lookup as the show's
        return dataclasses.replace(intent, origin="web") if isinstance(intent, Command) else intent


def _keepsake_route(request: web.Request) -> bool:
    """A keepsake's page, picture or style: what a visitor's phone may open without the token. By
    the route the router matched (never by the path's text, which `..` and %2e could dress up)."""
    route = request.match_info.route
    return request.method in ("GET", "HEAD") and getattr(route, "name", None) in KEEPSAKE_ROUTES


def _state_message(state: Mapping[str, object]) -> str:
    return json.dumps({"type": "state", **state})


def list_snapshots(folder: str) -> list[str]:
    """The snapshot files' names, newest first (only names the download route serves: regular
    files, never a link)."""
    try:
        with os.scandir(folder) as scan:
            entries = [
                e for e in scan if SNAPSHOT_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)
            ]
        entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    except OSError:
        return []
    return [e.name for e in entries[:MAX_LISTED]]


def read_snapshot(folder: str, name: str) -> bytes | None:
    """The bytes of the snapshot `name`, or None: a name with a separator or a leading dot, a link
    (O_NOFOLLOW), anything but a regular file, or a file larger than any snapshot is nothing to serve.
    The file is opened once and checked as opened: a link swapped in after a check cannot be served."""
    if not SNAPSHOT_NAME.fullmatch(name):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(os.path.join(folder, name), flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SNAPSHOT_BYTES:
            return None
        return f.read(MAX_SNAPSHOT_BYTES + 1)


def _page_file(name: str) -> bytes:
    return (resources.files("realtime.show") / "web_page" / name).read_bytes()


def web_state(
    live: Mapping[str, object],
    params: DreamParams,
    *,
    frozen: bool,
    looks: list[str],
    figures: Mapping[str, object],
) -> dict[str, object]:
    """What the page and GET /api/state show: the OSC feedback's state, the show's figures, the
    looks to choose from and each slider's value and range, under its OSC name."""
    controls = {}
    for name in LIVE_CONTROLS:
        low, high, kind = LIVE_RANGES[name]  # the one range every controller is held to
        osc_name = OSC_NAMES.get(name, name)
        controls[osc_name] = {"value": getattr(params, name), "min": low, "max": high, "int": kind is int}
    return {
        **live,
        "look": live.get("preset", ""),
        "recording": bool(live.get("record")),
        "frozen": frozen,
        "looks": looks,
        "controls": controls,
        **figures,
    }
