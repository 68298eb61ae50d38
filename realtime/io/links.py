"""Live video links to other programs (NDI, Spout, Syphon, a virtual camera) behind one small interface.

The show hands every composed frame to `Link.send()`, which only drops it into a one-slot mailbox
and returns: the link's own thread opens the library, publishes the newest frame and closes it
again, so a slow, stuck or dropped link never stalls the show (frames it could not take are
counted as skipped). A link that fails mid-show is reopened with back-off, as cameras are, and the
HUD says so. Every library call happens on that one thread, which GPU-texture links need (an
OpenGL context belongs to the thread that made it).
"""

from __future__ import annotations

import abc
import logging
import sys
import threading
from typing import ClassVar

import cv2
import numpy as np

from realtime.errors import ConfigError, DreamcamError

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0  # a link opened at start-up (fixed size) must answer within this
RETRY_DELAY_S, MAX_RETRY_DELAY_S = 0.5, 5.0
POLL_S = 0.5  # how often an idle link refreshes its state (receivers, clients) for the HUD
_JOIN_TIMEOUT_S = 2.0


class LinkError(DreamcamError):
    """A link that cannot be set up on this machine (missing package, wrong platform, no driver)."""


# links whose library exists on one platform only: flag -> (sys.platform prefix, what it needs)
PLATFORM_ONLY = {
    "--spout": ("win32", "Windows (Spout shares textures between Windows programs)"),
    "--syphon": ("darwin", "macOS (Syphon shares textures between Mac programs)"),
}


def require_platform(flag: str) -> None:
    """One line for a flag whose library exists on another platform than this one."""
    platform, needs = PLATFORM_ONLY.get(flag, ("", ""))
    if not sys.platform.startswith(platform):
        raise LinkError(f"{flag} needs {needs}; this machine runs {sys.platform}")


def check_link_name(flag: str, name: str) -> str:
    """The name other programs will list; empty or unprintable names are one-line errors."""
    stripped = name.strip()
    if not stripped or not stripped.isprintable() or len(stripped) > 200:
        raise ConfigError(f"{flag} needs a printable name of 1-200 characters, got {name!r}")
    return stripped


class Link(abc.ABC):
    """One outgoing video link. Subclasses implement `_open`, `_publish`, `_close` (and may `_poll`).

    `size` (width, height) opens the link at once and waits for it, so a missing driver is an error
    at start-up; without it the link opens at its first frame's size. Frames of another size are
    scaled to the opened one (a receiver's canvas does not change size mid-show).
    """

    kind: ClassVar[str]  # what the HUD calls it: "NDI", "Spout", "Syphon", "virtual camera"

    def __init__(self, name: str, fps: float, size: tuple[int, int] | None = None):
        self.name, self.fps = name, fps
        self.size = size
        self.frames_sent = 0
        self.frames_skipped = 0  # overwritten in the mailbox before the link thread took them
        self._state = "starting"
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._closing = False
        self._open_result: BaseException | None = None
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"link {self.kind} {name}", daemon=True)
        self._thread.start()
        if size is not None:
            if not self._opened.wait(OPEN_TIMEOUT_S):
                self.close()
                raise LinkError(f"{self.kind} '{name}' did not open within {OPEN_TIMEOUT_S:g} s")
            if self._open_result is not None:
                self.close()
                raise self._open_result

    # --- the show's side (never blocks) ---------------------------------------------------------

    def send(self, image: np.ndarray) -> None:
        """Offer the newest composed frame (HxWx3 uint8 RGB); returns at once."""
        with self._cond:
            if self._frame is not None:
                self.frames_skipped += 1
            self._frame = image
            self._cond.notify()

    def hud_line(self) -> str:
        return f"{self.kind} → {self.name} {self._state}".rstrip()

    @property
    def state(self) -> str:
        """ "2 receivers", "no receiver", "lost: reopening (attempt 3)"... for the HUD and tests."""
        return self._state

    def close(self) -> None:
        """Stop the link thread (it closes the library); safe to call more than once."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("%s '%s' is stuck; leaving its thread to end on its own", self.kind, self.name)

    # --- what a link implements (all called on the link's thread) --------------------------------

    @abc.abstractmethod
    def _open(self, width: int, height: int) -> None:
        """Create the library's sender at this size; raise LinkError with the fix if it cannot."""

    @abc.abstractmethod
    def _publish(self, image: np.ndarray) -> None:
        """Send one HxWx3 uint8 RGB frame of the opened size."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the library's sender (must not raise)."""

    def _poll(self) -> str:
        """The link's state for the HUD, refreshed every POLL_S and after each frame."""
        return "open"

    # --- the link's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        is_open = False
        if self.size is not None:
            is_open = self._try_open(*self.size, first=True)
            self._opened.set()
            if not is_open:
                return
        delay, attempt = RETRY_DELAY_S, 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._frame is not None or self._closing, POLL_S)
                image, self._frame = self._frame, None
                closing = self._closing
            if closing:  # the last frame offered still goes out, so a short run sends all it showed
                if is_open and image is not None:
                    self._publish_or_drop(image)
                break
            if image is None:
                if is_open:
                    self._refresh()
                continue
            if not is_open:
                if attempt and not self._sleep(delay):
                    break
                height, width = image.shape[:2]
                is_open = self._try_open(*(self.size or (width, height)), first=not attempt)
                if not is_open:
                    attempt += 1
                    delay = min(delay * 2.0, MAX_RETRY_DELAY_S) if attempt > 1 else delay
                    self._state = f"lost: reopening (attempt {attempt})"
                    continue
                if attempt:
                    log.info("%s '%s' back", self.kind, self.name)
                delay, attempt = RETRY_DELAY_S, 0
            if not self._publish_or_drop(image):
                is_open, attempt = False, 1
                self._state = "lost: reopening (attempt 1)"
                continue
            self._refresh()
        if is_open:
            self._safe_close()
        self._state = "closed"

    def _publish_or_drop(self, image: np.ndarray) -> bool:
        try:
            self._publish(self._fit(image))
        except Exception as exc:  # a library that fails mid-show: reopen with back-off, never crash
            log.warning("%s '%s' failed (%s); reopening", self.kind, self.name, _first_line(exc))
            self._safe_close()
            return False
        self.frames_sent += 1
        return True

    def _try_open(self, width: int, height: int, first: bool) -> bool:
        try:
            self._open(width, height)
        except Exception as exc:
            if first and self.size is not None:
                self._open_result = (
                    exc
                    if isinstance(exc, DreamcamError)
                    else LinkError(f"{self.kind} '{self.name}' cannot open: {_first_line(exc)}")
                )
            elif first:
                log.warning("%s '%s' cannot open (%s); retrying", self.kind, self.name, _first_line(exc))
            self._safe_close()
            return False
        self.size = (width, height)
        self._refresh()
        log.info("%s '%s' open (%dx%d)", self.kind, self.name, width, height)
        return True

    def _refresh(self) -> None:
        try:
            self._state = self._poll()
        except Exception as exc:  # a state query is never worth stopping the link for
            log.debug("%s '%s' state query failed: %s", self.kind, self.name, exc)

    def _sleep(self, seconds: float) -> bool:
        """Wait out a back-off; False when the link was closed meanwhile."""
        with self._cond:
            return not self._cond.wait_for(lambda: self._closing, seconds)

    def _fit(self, image: np.ndarray) -> np.ndarray:
        assert self.size is not None
        width, height = self.size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image)

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:
            log.debug("%s '%s' close failed", self.kind, self.name, exc_info=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def link_findings(find_s: float = 1.0) -> list[tuple[str, str, str]]:
    """(status "ok"|"warn"|"missing", what, fix) per video link, for `dreamcam doctor`.

    NDI also looks for senders on the network for `find_s` seconds and names them: those are the
    names `--source ndi:NAME` takes. (The virtual camera's package is among doctor's modules.)
    """
    import importlib.metadata
    import importlib.util

    findings = [_ndi_finding(find_s)]
    for flag, module, package, link in (
        ("--spout", "SpoutGL", "SpoutGL", "Spout"),
        ("--syphon", "syphon", "syphon-python", "Syphon"),
    ):
        platform, needs = PLATFORM_ONLY[flag]
        if not sys.platform.startswith(platform):
            findings.append(
                ("ok", f"{link} ({flag}): {needs.split(' (')[0]} only, not this {sys.platform}", "")
            )
        elif importlib.util.find_spec(module) is None:
            findings.append(
                ("missing", f"{link} ({flag}): {package} not installed", "pip install 'dreamcam[vj]'")
            )
        else:
            version = importlib.metadata.version(package)
            findings.append(
                ("ok", f"{link} ({flag}): {package} {version}, untested on hardware (docs/VJ.md)", "")
            )
    return findings


def _ndi_finding(find_s: float) -> tuple[str, str, str]:
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("cyndilib") is None:
        return (
            "missing",
            "NDI (--ndi-out, --source ndi:): cyndilib not installed",
            "pip install 'dreamcam[ndi]'",
        )
    version = importlib.metadata.version("cyndilib")
    try:
        from cyndilib.finder import Finder

        with Finder() as finder:
            finder.wait_for_sources(find_s)
            names = finder.get_source_names()
    except Exception as exc:  # a runtime that does not load is exactly what doctor is for
        return (
            "missing",
            f"NDI: cyndilib {version}, but the NDI runtime fails: {_first_line(exc)}",
            "reinstall cyndilib",
        )
    if names:
        return ("ok", f"NDI: cyndilib {version}; sources visible: {', '.join(names)}", "")
    hint = "Linux: run avahi-daemon; other subnets: NDI's config file (docs/VJ.md)"
    return ("warn", f"NDI: cyndilib {version}; no NDI source visible within {find_s:g} s", hint)
