"""The keepsake booth: one press, a 3-2-1 over the dream, the captured frame held a moment, then the
link's QR code and short address over the dream for a while (issue 29).

It runs on the show's thread between frames and does nothing slow there: at the end of the
countdown it copies the composed frame the screen was about to show (~1.3 ms at 1080p) and hands
it to the store, whose thread (at a lower CPU priority) encodes and writes it; the link's QR code
is made on a thread of its own and goes up at once (a link opened before its picture is written
waits for it). Everything is timed by the show's clock, so a test drives it with a fake one.
One keepsake at a time: a press during a countdown or a hold is refused (counted); a press while a
card is up starts the next countdown and the card stays until the next one replaces it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.io.overlay import Banner, Countdown, KeepsakeCard
from realtime.io.qrline import qr_modules
from realtime.show.keepsake import Keepsake, KeepsakeError, KeepsakeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoothTimes:
    countdown: int = 3  # seconds of 3-2-1 over the dream; 0: the next frame is taken
    hold_s: float = 2.0  # the captured frame stays on screen this long
    card_s: float = 10.0  # the QR code and address stay on screen this long


class KeepsakeBooth:
    """`press()` from the control plane, `frame()` with every composed frame, `overlay()` for the
    window; `link(id)` makes a keepsake's address (the web remote's)."""

    def __init__(
        self,
        store: KeepsakeStore,
        link: Callable[[str], str],
        times: BoothTimes = BoothTimes(),
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.store, self.link, self.times, self.clock = store, link, times, clock
        self.refused = 0  # presses while one was being taken
        self._countdown_from: float | None = None
        self._held: np.ndarray | None = None
        self._held_until = 0.0
        self._writing: Keepsake | None = None  # taken, its file and card on their way
        self._cards: dict[str, KeepsakeCard] = {}  # made on a thread of their own, by keepsake id
        self._card: tuple[KeepsakeCard, float] | None = None  # on screen since
        self._trouble: tuple[str, float] | None = None  # a keepsake the disk refused, since

    @property
    def busy(self) -> bool:
        """A countdown runs, or the captured frame is still held."""
        held = self._held is not None and self.clock() < self._held_until
        return self._countdown_from is not None or held

    def press(self) -> bool:
        """Start a keepsake; False (and counted) while one is being taken."""
        if self.busy:
            self.refused += 1
            log.debug("keepsake press ignored: one is being taken")
            return False
        self._countdown_from = self.clock()
        log.info("keepsake: countdown")
        return True

    def frame(self, image: np.ndarray) -> np.ndarray:
        """The picture to show instead of `image` (the composed frame): the captured one while it
        is held. The end of the countdown captures `image` itself, before any overlay is drawn."""
        now = self.clock()
        if self._countdown_from is not None and now - self._countdown_from >= self.times.countdown:
            self._countdown_from = None
            self._capture(image, now)
        if self._held is not None:
            if now < self._held_until:
                return self._held
            self._held = None
        return image

    def overlay(self) -> list[str]:
        """The countdown's numeral, the newest card, or the line saying a keepsake was not kept."""
        now = self.clock()
        self._collect(now)
        lines: list[str] = []
        if self._countdown_from is not None:
            lines.append(Countdown(max(1, math.ceil(self.times.countdown - (now - self._countdown_from)))))
        if self._card is not None and now - self._card[1] < self.times.card_s:
            lines.append(self._card[0])
        if self._trouble is not None and now - self._trouble[1] < self.times.card_s:
            lines.append(Banner(f"sorry: your picture was not kept ({self._trouble[0]})"))
        return lines

    def state(self) -> dict[str, object]:
        """For the operator's page: the day's count, and the link while it is on the screen."""
        now = self.clock()
        showing = self._card is not None and now - self._card[1] < self.times.card_s
        return {
            **self.store.counts(),
            "countdown": self._countdown_from is not None,
            "held": self._held is not None,
            "showing": self._card[0].url if showing else None,
            "failure": self.store.failure,
        }

    def _capture(self, image: np.ndarray, now: float) -> None:
        still = np.array(image, copy=True)  # the composer and the source may reuse the frame's memory
        try:
            keepsake = self.store.take(still)
        except KeepsakeError as exc:
            log.warning("%s", exc)
            self._trouble = (str(exc).removeprefix("keepsake not taken: "), now)
            return
        self._held, self._held_until = still, now + self.times.hold_s
        self._writing = keepsake
        if self.times.hold_s <= 0:
            self._held = None
        # the link is known now: its card goes up at once (its page waits for the file, if need be),
        # its QR code made beside the show (segno takes ~15 ms: half a frame)
        threading.Thread(target=self._make_card, args=(keepsake,), name="keepsake-card", daemon=True).start()

    def _make_card(self, keepsake: Keepsake) -> None:
        url = self.link(keepsake.id)
        minutes = round(self.store.ttl_s / 60)
        caption = f"scan with your phone: yours for {minutes} min, then deleted"
        self._cards[keepsake.id] = KeepsakeCard(url, qr_modules(url), "Take your dream home", caption)

    def _collect(self, now: float) -> None:
        """The newest keepsake's card goes up once made; if the disk refuses its picture, the card
        comes down and a line says why."""
        keepsake = self._writing
        if keepsake is None:
            return
        card = self._cards.pop(keepsake.id, None)
        if card is not None and keepsake.failure is None:
            self._card, self._trouble = (card, now), None
        if not keepsake.ready.is_set():
            return
        showing = self._card is not None and self._card[0].url.endswith("/" + keepsake.id)
        if keepsake.failure is not None:
            if showing:
                self._card = None
            self._trouble = (keepsake.failure.removeprefix("keepsake not saved: "), now)
            self._writing = None
        elif showing:
            self._writing = None  # written, and its card is up: nothing left to wait for
