"""OSC both ways: input (a UDP server turning messages into validated intents) and feedback.

The server thread never touches the show: it checks each message (address, argument types,
ranges) and queues an intent; the live loop drains the queue between frames (`drain`). Anything
malformed is ignored and counted for the HUD, never raised. `OscFeedback` sends the live state
back, in the same address space, so a controller's faders follow keys, MIDI and playlists.
Address space: docs/OSC.md.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import BuildError
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from realtime.audio.mapping import osc_entry
from realtime.control.plane import Action, Command, Intent
from realtime.control.ratelimit import PythonOscLogFilter, WarnLimit
from realtime.errors import ConfigError, DreamcamError
from realtime.params import LIVE_RANGES, RANGES, clamp, plain_digits
from realtime.untrusted import printable

log = logging.getLogger(__name__)

PREFIX = "/dreamcam/"
ALIASES = {"strength": "lr"}  # what a VJ calls it -> the DreamParams field
NUMERIC = tuple(RANGES)  # /dreamcam/steps, /dreamcam/lr, /dreamcam/persistence...
TRIGGERS = {
    "next": Action.NEXT_PRESET,
    "prev": Action.PREV_PRESET,
    "snapshot": Action.SNAPSHOT,
    "save_preset": Action.SAVE_PRESET,
    "next_layer": Action.NEXT_LAYER,
    "prev_layer": Action.PREV_LAYER,
    "keepsake": Action.KEEPSAKE,
}
SWITCHES = {"freeze": Action.FREEZE, "record": Action.TOGGLE_RECORD, "hud": Action.TOGGLE_HUD}
AUDIO_PREFIX = "audio/"  # /dreamcam/audio/KEY: one key of the look's [audio] mapping (docs/AUDIO.md)
QUEUE_SIZE = 256  # a flood of messages drops the excess (counted) instead of growing without bound
FEEDBACK_EVERY_S = 1.0  # the whole state again, for a controller that started after the show
FEEDBACK_ONLY_PERIODIC = ("fps",)  # changes every frame: sent with the once-a-second state only


class Rejected(Exception):
    """A message that is understood to be wrong: ignored, counted and logged at debug level."""


class BadValue(Rejected):
    """A well-formed message with a value the show refuses (NaN, a bad layer): ignored and counted,
    and logged as a warning (at most one a second, so a flood cannot fill the log)."""


@dataclass
class OscCounts:
    accepted: int = 0
    ignored: int = 0  # malformed packets, wrong types, unknown addresses, bad layer names, floods


class OscControl:
    """Listens on host:port (port 0: any free port, see `.port`) until `close()`."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        check_layer: Callable[[str], None] | None = None,
    ):
        self.counts = OscCounts()
        self._check_layer = check_layer or (lambda name: None)
        self._warn = WarnLimit()
        # python-osc logs each malformed datagram (raw bytes) through the root logger: limit those too
        self._third_party = PythonOscLogFilter(self._warn)
        logging.getLogger().addFilter(self._third_party)
        self._queue: queue.Queue[Intent] = queue.Queue(maxsize=QUEUE_SIZE)
        self._lock = threading.Lock()  # the counts are bumped on the server thread, read on the loop's
        dispatcher = _CountingDispatcher(self._on_packet)
        try:
            self._server = _CountingServer((host, port), dispatcher)
            self._server.on_reject = lambda size: self._ignore(f"not an OSC packet ({size} bytes)")
        except OSError as exc:
            logging.getLogger().removeFilter(self._third_party)
            raise ConfigError(
                f"cannot listen for OSC on {host}:{port} ({exc.strerror}); choose another --osc-port "
                "or --osc-host"
            ) from None
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="osc", daemon=True)
        self._thread.start()
        log.info("listening for OSC on %s:%d", self.host, self.port)

    def drain(self) -> list[Intent]:
        """Every intent queued since the last call, in arrival order (called between frames)."""
        intents = []
        for _ in range(QUEUE_SIZE):  # bounded: a flood arriving while we drain waits for the next frame
            try:
                intents.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return intents

    def hud_line(self) -> str:
        c = self.counts
        return f"osc :{self.port}  {c.accepted} ok  {c.ignored} ignored"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
        logging.getLogger().removeFilter(self._third_party)

    # --- the server thread ------------------------------------------------------------------

    def _on_packet(self, data: bytes) -> None:
        try:
            messages = [timed.message for timed in osc_packet.OscPacket(data).messages]
        except Exception as exc:  # python-osc raises ParseError, and sometimes worse, on garbage
            self._ignore(f"malformed packet ({len(data)} bytes): {exc}")
            return
        for message in messages:
            try:
                intent = self.translate(message.address, list(message.params))
            except Rejected as exc:
                self._ignore(f"{message.address}: {exc}", warn=isinstance(exc, BadValue))
                continue
            if intent is None:
                continue
            try:
                self._queue.put_nowait(intent)
            except queue.Full:
                self._ignore(f"{message.address}: too many messages, the show is behind")
                continue
            with self._lock:
                self.counts.accepted += 1

    def _ignore(self, why: str, warn: bool = False) -> None:
        with self._lock:
            self.counts.ignored += 1
            why = printable(why)  # an OSC string may carry terminal escapes
            if warn:
                self._warn.warn(log, "osc ignored %s", why)
            else:
                log.debug("osc ignored: %s", why)

    def translate(self, address: str, args: list) -> Intent | None:
        return OscRules(self._check_layer).translate(address, args)


class OscRules:
    """The address space and its checks, without a socket: OSC's server and the web remote
    (realtime.show.web) turn their messages into intents here, so both refuse the same values."""

    def __init__(self, check_layer: Callable[[str], None] | None = None):
        self._check_layer = check_layer or (lambda name: None)

    def translate(self, address: str, args: list) -> Intent | None:
        """One OSC message -> one validated intent; `Rejected` says why not."""
        if not address.startswith(PREFIX):
            raise Rejected("unknown address (dreamcam's addresses start with /dreamcam/)")
        name = address[len(PREFIX) :]
        field_name = ALIASES.get(name, name)
        if field_name in NUMERIC:
            value = _one_number(args)
            clamped = clamp(field_name, value)
            low, high, _ = LIVE_RANGES[field_name]
            if not low <= value <= high:
                log.info("osc: %s %s is out of range %s..%s; clamped to %s", name, value, low, high, clamped)
            return Command(Action.SET, {field_name: clamped}, "osc")
        if name.startswith(AUDIO_PREFIX):
            try:
                entry = osc_entry(name[len(AUDIO_PREFIX) :], args)
            except DreamcamError as exc:
                raise Rejected(str(exc)) from None
            return Command(Action.AUDIO, entry, "osc")
        if name == "layer":
            layer = _one(args, str, "a layer name such as 'block5'")
            try:
                self._check_layer(layer)
            except DreamcamError as exc:
                raise BadValue(str(exc)) from None
            return Command(Action.SET, {"layer": layer}, "osc")
        if name == "preset":
            if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int | float | str):
                raise Rejected("expects one preset number (1-based) or name")
            key = args[0]
            if isinstance(key, float):
                if not math.isfinite(key):
                    raise BadValue(f"preset number {key} is not a finite number")
                if not key.is_integer():
                    raise Rejected(f"preset number {key} is not whole")
                key = int(key)
            return Command(Action.PRESET, key, "osc")
        if name in TRIGGERS:
            if len(args) > 1:
                raise Rejected("expects no argument or one 0/1")
            if args and not _truthy(args[0]):
                return None  # a button's release (0): nothing to do
            return Command(TRIGGERS[name], None, "osc")
        if name in SWITCHES:
            if len(args) > 1:
                raise Rejected("expects no argument (toggle) or one 0/1")
            value = None if not args else _truthy(args[0])
            return Command(SWITCHES[name], value, "osc")
        raise Rejected("unknown address")


def _one(args: list, kind: type, what: str):
    if len(args) != 1 or not isinstance(args[0], kind) or isinstance(args[0], bool):
        raise Rejected(f"expects {what}, got {args!r}")
    return args[0]


def _one_number(args: list) -> float:
    value = _one(args, int | float, "one number")
    if not math.isfinite(value):
        raise BadValue(f"{value} is not a finite number")
    # OSC floats are 32-bit: keep the 7 digits they carry, so 0.05 arrives as 0.05, not 0.0500000007
    return float(f"{value:.7g}") if isinstance(value, float) else value


def _truthy(value) -> bool:
    if isinstance(value, float) and not math.isfinite(value):  # bool(nan) is True: it would act as "on"
        raise BadValue(f"{value} is not 0 or 1")
    if isinstance(value, bool | int | float):
        return bool(value)
    raise Rejected(f"expects 0 or 1, got {value!r}")


class _CountingDispatcher(Dispatcher):
    """python-osc's dispatcher swallows unparseable packets silently; we parse (and count) ourselves."""

    def __init__(self, on_packet: Callable[[bytes], None]):
        super().__init__()
        self._on_packet = on_packet

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        self._on_packet(data)
        return []


class _CountingServer(BlockingOSCUDPServer):
    """python-osc drops datagrams that do not start like OSC before any handler sees them: count those."""

    on_reject: Callable[[int], None] = staticmethod(lambda size: None)

    def verify_request(self, request, client_address) -> bool:
        if super().verify_request(request, client_address):
            return True
        self.on_reject(len(request[0]) if request and request[0] is not None else 0)
        return False


def parse_host_port(flag: str, text: str) -> tuple[str, int]:
    """'192.168.1.20:9000' -> ('192.168.1.20', 9000); a one-line ConfigError otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not plain_digits(port_text) or not 1 <= int(port_text) <= 65535:
        raise ConfigError(
            f"{flag} must be HOST:PORT with a port of 1-65535 (e.g. 127.0.0.1:9001), got '{text}'"
        )
    return host.strip("[]"), int(port_text)


class OscFeedback:
    """Sends the show's state to a controller at host:port: each value when it changes, and all of
    them once a second. UDP from a non-blocking socket: a controller that is gone costs nothing."""

    def __init__(self, host: str, port: int, clock: Callable[[], float] = time.monotonic):
        try:
            self._client = SimpleUDPClient(host, port)  # python-osc makes the socket non-blocking
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot send OSC feedback to {host}:{port} ({exc}); check --osc-feedback"
            ) from None
        self.host, self.port = host, port
        self.clock = clock
        self.sent = 0
        self.failed = 0  # sends the network refused (nobody listening, no route): counted, never raised
        self._last: dict[str, object] = {}
        self._last_full = -math.inf

    def update(self, state: Mapping[str, object]) -> None:
        """Send what changed since the last call (everything, once every FEEDBACK_EVERY_S)."""
        now = self.clock()
        full = now - self._last_full >= FEEDBACK_EVERY_S
        for name, value in state.items():
            changed = name not in FEEDBACK_ONLY_PERIODIC and self._last.get(name) != value
            if full or changed:
                self._send(PREFIX + name, value)
        self._last = dict(state)
        if full:
            self._last_full = now

    def _send(self, address: str, value: object) -> None:
        try:
            self._client.send_message(address, value)
            self.sent += 1
        # ECONNREFUSED from an earlier datagram, EAGAIN, no route; BuildError: a value OSC cannot carry
        except (OSError, BuildError) as exc:
            if not self.failed:
                log.warning("OSC feedback to %s:%d failed (%s); still trying", self.host, self.port, exc)
            self.failed += 1

    def hud_line(self) -> str:
        failed = f"  {self.failed} failed" if self.failed else ""
        return f"osc feedback → {self.host}:{self.port}  {self.sent} sent{failed}"

    def close(self) -> None:
        self._client._sock.close()  # python-osc has no close(); the socket is all it holds
