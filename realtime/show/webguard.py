"""The web remote's door: who may ask (token, host, origin) and how often (rate, size, sockets).

Every request passes `Guard.middleware` before any handler runs, cheapest check first: a cap on
open connections (file descriptors are the show's too), the rate limit (a flood is answered 429
after a short wait, so a client that waits for its answers is slowed to a trickle and the show's
CPU is not spent on it), the Host header on loopback (a DNS-rebinding page cannot reach 127.0.0.1
under its own name), the token when the server listens beyond loopback (every request, page and
state included: 401 without one, 403 with a wrong one, compared in constant time), and the Origin
of anything that changes state (POST and WebSocket: a link or a form on another site cannot drive
the show). A route the server names public (a keepsake's link, whose own unguessable id is its key)
needs no token and gets no cookie; every other check holds for it. Nothing here knows what the
show is.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

TOKEN_COOKIE = "dreamcam_token"
TOKEN_PARAM = "token"
COOKIE_MAX_AGE_S = 7 * 24 * 3600  # a week: the run of a festival, and the cookie dies with the token anyway
MAX_BODY = 4096  # bytes: a control message is a few dozen; anything bigger is not ours (413)
RATE_PER_S = 40.0  # requests a second per client address: a page needs ~2 (its socket carries the rest)
RATE_BURST = 80.0  # the page's first load (html, css, js, state, snapshots) and a few quick presses
TARPIT_S = 0.5  # a client over its rate waits this long for its 429: a flood slows itself down
MAX_CONNECTIONS = 512  # open at once; beyond, 503 and closed: half of a usual 1,024 file descriptors
MAX_CLIENTS = 1024  # rate buckets kept (oldest forgotten): a spoofed-address flood cannot grow memory
# every address together: 250 rotating loopback addresses, each within its own share, took the display
# from 30 to 6.6 fps; a phone or two need a few requests a second (their sockets carry the rest)
TOTAL_RATE_PER_S, TOTAL_BURST = 200.0, 400.0
ALL_CLIENTS = "*"  # the shared bucket's key
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
# a Host header: a name or an address (IPv6 in brackets), then an optional port, and nothing else
HOST_HEADER = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """128 random bits, URL-safe: short enough for a QR code a phone reads from across a room."""
    return secrets.token_urlsafe(16)


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per client address; the least recently seen are forgotten past MAX_CLIENTS."""

    rate: float = RATE_PER_S
    burst: float = RATE_BURST
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, Bucket] = field(default_factory=OrderedDict)

    def allow(self, client: str) -> bool:
        now = self.clock()
        bucket = self._buckets.pop(client, None) or Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[client] = bucket
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


@dataclass
class GuardCounts:
    """What the door refused, by status, for the HUD line and the tests."""

    refused: dict[int, int] = field(default_factory=dict)

    def add(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.refused.values())


class Guard:
    """The checks above, for a server on `host` (a token is needed unless `host` is loopback)."""

    def __init__(
        self,
        host: str,
        token: str | None,
        rate: RateLimiter | None = None,
        total: RateLimiter | None = None,
        public: Callable[[web.Request], bool] = lambda request: False,
    ):
        self.loopback = is_loopback(host)
        self.token = token  # None: no token asked (loopback only)
        # requests that need no token (a keepsake's link: its own unguessable id is its key); every
        # other check still applies to them: connections, rate, Host
        self.public = public
        self.rate = rate or RateLimiter()
        self.total = total or RateLimiter(TOTAL_RATE_PER_S, TOTAL_BURST)
        self.counts = GuardCounts()
        self.open_connections: Callable[[], int] = int  # set by the server once it runs (int() is 0)
        self.port: int | None = None  # set by the server once it listens: the Host must name it
        self.cookie = TOKEN_COOKIE  # per port once it listens (`listening`)

    def listening(self, port: int) -> None:
        """The server's port is known: Hosts must name it, and the cookie is this show's alone (a
        browser sends a host's cookies to every port on it: two shows would overwrite each other)."""
        self.port = port
        self.cookie = f"{TOKEN_COOKIE}_{port}"

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        public = self.public(request)
        refusal = await self._refusal(request, public)
        if refusal is not None:
            self.counts.add(refusal.status)
            # nothing more to say to it: its connection is freed. Not after a 429: closing those was
            # measured costlier (a flood's reconnects took the display from 30 to 19-27 fps); an
            # idle one is closed after KEEPALIVE_S anyway
            if refusal.status != 429:
                refusal.force_close()
            return refusal
        response = await handler(request)
        if response.prepared:  # a WebSocket or a file already on its way: its headers are sent
            return response
        if self.token is not None and request.query.get(TOKEN_PARAM) and not public:
            # the URL from the QR code: keep the token in a cookie, so the phone stays in (never on a
            # public route, where the token was not checked: any ?token= would earn the real one)
            response.set_cookie(
                self.cookie, self.token, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="Strict"
            )
        _harden(response)
        return response

    async def _refusal(self, request: web.Request, public: bool = False) -> web.StreamResponse | None:
        if self.open_connections() > MAX_CONNECTIONS:
            await asyncio.sleep(TARPIT_S)  # answered at once, a flood reconnects at once: slow it too
            return _refuse(503, "too many connections: try again in a moment")
        if not self.rate.allow(request.remote or "?") or not self.total.allow(ALL_CLIENTS):
            return await self._too_many()
        # the raw header: aiohttp's request.host falls back to socket.getfqdn(), which can block the
        # loop on a DNS lookup for seconds
        host = request.headers.get("Host", "")
        name = _host_name(host, self.port)
        if name is None:
            return _refuse(400, "a Host header naming this server (HOST:PORT) is needed")
        if self.loopback and name not in LOOPBACK_NAMES:
            return _refuse(
                403, "this remote answers to localhost only (start with --web HOST:PORT to share it)"
            )
        if self.token is not None and not public:
            given = request.query.get(TOKEN_PARAM) or request.cookies.get(self.cookie)
            if not given:
                return _refuse(401, "this remote needs its token: scan the QR code the show printed")
            # "replace": a cookie with a raw 0xff byte arrives as a lone surrogate, not a traceback
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
                return _refuse(403, "wrong token: scan the QR code the show printed at start-up")
        changes = request.method not in ("GET", "HEAD") or request.headers.get("Upgrade", "").lower() == (
            "websocket"
        )
        if changes and not self._same_origin(request):
            return _refuse(403, "refused: this request comes from another site")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refuse(413, f"too large: at most {MAX_BODY} bytes")
        return None

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        """A browser names the page that sent a POST or opened a socket; it must be ours. A script
        (curl, a test) sends no Origin: it already passed the token, or it runs on this machine."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        own = f"{request.scheme}://{request.headers.get('Host', '')}"
        return hmac.compare_digest(origin.encode("utf-8", "replace"), own.encode("utf-8", "replace"))

    async def _too_many(self) -> web.StreamResponse:
        # every connection of a flood waits: answering at once and closing was measured costlier
        # (the reconnects: 1,100 requests a second and the display at 24 fps, against 30 with this)
        await asyncio.sleep(TARPIT_S)
        return _refuse(429, "too many requests: slow down")


def _host_name(host: str, port: int | None = None) -> str | None:
    """'127.0.0.1:8080' -> '127.0.0.1', '[::1]:8080' -> '[::1]' (lower case); None for a header
    that is not one name and an optional port (`[::1]evil.example:80`, `localhost:evil.example`)
    or that names another port than the server's."""
    match = HOST_HEADER.fullmatch(host)
    if match is None:
        return None
    if port is not None and match["port"] is not None and int(match["port"]) != port:
        return None
    return match["name"].lower()


def _refuse(status: int, text: str) -> web.Response:
    response = web.json_response({"ok": False, "error": text}, status=status)
    _harden(response)
    return response


def _harden(response: web.StreamResponse) -> None:
    """No caching of a page that carries state, no framing (clickjacking), no referrer with the
    token in it, and nothing loaded from anywhere but dreamcam itself."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'",
    )
