"""The show window: puts a dream frame on screen (scaled to fit, with a HUD) and turns keys into Actions.

`Window` only displays and listens. What an Action means (including TOGGLE_HUD and
TOGGLE_FULLSCREEN) is decided in `realtime.control.plane`; the pipeline then calls back into the window
(`hud_visible`, `toggle_fullscreen()`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from types import TracebackType

import cv2
import numpy as np

# pygame prints a banner on import; dreamcam's output is for the show, not for pygame's greeting.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# SDL presents a window surface through an OpenGL renderer by default; on a machine without a GPU
# that is Mesa's software rasteriser, measured at 12 ms of CPU (and threads of its own) per 1080p
# frame, against 0.2 ms for the window system's own framebuffer (X11: shared memory). So it is
# turned off there. Where the NVIDIA driver is loaded, OpenGL runs on the GPU and SDL's default
# stays (not measured yet: no GPU machine with a display has run dreamcam; the variable, set
# either way, wins).
if not os.path.exists("/proc/driver/nvidia/version"):
    os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
import pygame  # noqa: E402  (must follow the environment tweak above)

from realtime.control.plane import Action, Command, Intent  # noqa: E402
from realtime.errors import ConfigError, DreamcamError  # noqa: E402
from realtime.io.cstderr import quiet_c_stderr  # noqa: E402
from realtime.io.hud import (  # noqa: E402
    ALERT_MARK,
    MeterLine,  # noqa: E402
    is_alert,
)
from realtime.io.overlay import Banner, Countdown, KeepsakeCard, Overlay  # noqa: E402
from realtime.io.qrline import QrLine  # noqa: E402

log = logging.getLogger(__name__)

KEY_ACTIONS: dict[int, Intent] = {
    pygame.K_q: Action.QUIT,
    pygame.K_ESCAPE: Action.QUIT,
    pygame.K_SPACE: Action.FREEZE,
    pygame.K_LEFT: Action.PREV_LAYER,
    pygame.K_RIGHT: Action.NEXT_LAYER,
    pygame.K_UP: Action.STRONGER,
    pygame.K_DOWN: Action.WEAKER,
    pygame.K_LEFTBRACKET: Action.FEWER_STEPS,
    pygame.K_RIGHTBRACKET: Action.MORE_STEPS,
    pygame.K_s: Action.SNAPSHOT,
    pygame.K_h: Action.TOGGLE_HUD,
    pygame.K_f: Action.TOGGLE_FULLSCREEN,
    pygame.K_p: Action.SAVE_PRESET,
    pygame.K_COMMA: Action.PREV_PRESET,
    pygame.K_PERIOD: Action.NEXT_PRESET,
    pygame.K_r: Action.TOGGLE_RECORD,
    pygame.K_l: Action.MIDI_LEARN,
    pygame.K_k: Action.KEEPSAKE,
    # 1-9 recall the presets of the preset folder, in file-name order
    **{pygame.K_1 + n - 1: Command(Action.PRESET, n) for n in range(1, 10)},
}

# held for the quit chord (Ctrl+Shift+Q), never a keepsake in kiosk mode
MODIFIER_KEYS = frozenset(
    (pygame.K_LCTRL, pygame.K_RCTRL, pygame.K_LSHIFT, pygame.K_RSHIFT, pygame.K_LALT, pygame.K_RALT)
    + (pygame.K_LGUI, pygame.K_RGUI, pygame.K_CAPSLOCK, pygame.K_NUMLOCK, pygame.K_MODE)
)

HUD_MARGIN = 8  # px between the HUD box and the window's corner, and between box edge and text
HUD_ALPHA = 160  # of 255: dark enough to read white text over a bright dream, light enough to see through
HUD_TEXT = (255, 255, 255)
HUD_ALERT = (255, 64, 64)  # a line the operator must act on (a recording that stopped...)
BLACK = (0, 0, 0)
METER_LINES = 8  # the audio level bar is this many line heights long
METER_FILL = (90, 220, 120)
METER_EMPTY = (60, 60, 60)
BEAT_LAMP = (255, 200, 40)
QR_QUIET = 4  # modules of white around a QR code: what a phone's reader needs to find it
CARD_QR_SHARE = 0.42  # a keepsake's QR code is this share of the screen's height: a phone reads it from 2 m
CARD_WIDTH = 1.35  # the card is this much wider than its QR code: room for the address, large enough to type
CARD_WHITE = (255, 255, 255)
CARD_INK = (20, 20, 20)
COUNTDOWN_SHARE = 0.3  # the countdown's disc: a third of the screen's height, at the left, off the faces
COUNTDOWN_DISC = (0, 0, 0, 140)
BANNER_RED = (170, 20, 20)


# pygame's built-in font (FreeSans) has no arrows: the HUD's "NDI → stage", "lr 0.04→0.02" would draw
# a box; these read the same in ASCII
HUD_FALLBACKS = str.maketrans({"→": "->", "←": "<-"})


def _drawable(line: str) -> str:
    return line if line.isascii() else line.translate(HUD_FALLBACKS)


def desktop_size(display: int = 0) -> tuple[int, int] | None:
    """(width, height) of a monitor's desktop: the most a fullscreen show can show; None if unknown."""
    try:
        with quiet_c_stderr():  # SDL's own "XDG_RUNTIME_DIR is invalid" without a session
            pygame.display.init()
        sizes = pygame.display.get_desktop_sizes()
    except pygame.error:
        return None
    return tuple(sizes[display]) if 0 <= display < len(sizes) and min(sizes[display]) > 0 else None


class Window:
    """A pygame window (fullscreen on a chosen display, or a resizable window) that shows RGB frames."""

    def __init__(
        self,
        *,
        fullscreen: bool = True,
        display: int = 0,
        size: tuple[int, int] = (1280, 720),
        title: str = "dreamcam",
        hud: bool = True,
        kiosk: bool = False,
    ) -> None:
        if len(size) != 2 or min(size) < 1:
            raise ConfigError(f"window size must be two positive numbers (width, height), got {size}")
        self.hud_visible = hud
        self.kiosk = kiosk  # unattended: keys ignored, window close ignored, Ctrl+Shift+Q quits
        self._display = display
        self._windowed_size = (int(size[0]), int(size[1]))
        self._fullscreen = fullscreen
        self._closed = False
        self._scaled: np.ndarray | None = None  # reused cv2.resize destination, reallocated on size change
        self._font: pygame.font.Font | None = None
        self._font_px = 0
        self._hud_box: pygame.Surface | None = None
        self._qr: tuple[tuple[str, int], pygame.Surface] | None = None  # the drawn QR code, kept
        self._overlays: dict[tuple, pygame.Surface] = {}  # drawn countdown numerals, cards, banners
        self._fonts: dict[int, pygame.font.Font] = {}
        try:
            with quiet_c_stderr():
                pygame.display.init()
        except pygame.error as exc:
            raise DreamcamError(
                f"cannot open a display ({exc}); run with --headless to dream without a window"
            ) from exc
        try:
            count = pygame.display.get_num_displays()
            if not 0 <= display < count:
                raise ConfigError(
                    f"display {display} does not exist: this machine has {count} display(s), "
                    f"choose one of 0-{count - 1}"
                )
            pygame.display.set_caption(title)
            self._open(fullscreen)
        except BaseException:
            # The caller never gets a Window to close, so do not leave a half-open display behind.
            pygame.display.quit()
            raise
        self._init_font()

    # -- lifecycle ---------------------------------------------------------------------------------

    def _open(self, fullscreen: bool) -> None:
        """(Re)create the display surface; set_mode again is more portable than display.toggle_fullscreen."""
        try:
            if fullscreen:
                # (0, 0) means the chosen display's desktop resolution: no mode switch, no blurry rescale.
                pygame.display.set_mode((0, 0), pygame.FULLSCREEN, display=self._display)
            else:
                surface = pygame.display.set_mode(
                    self._windowed_size, pygame.RESIZABLE, display=self._display
                )
                if surface.get_size() != self._windowed_size:
                    # Coming out of fullscreen, pygame's first set_mode keeps the fullscreen size
                    # (pygame issue #4322; seen with SDL's dummy driver too); asking again takes.
                    pygame.display.set_mode(self._windowed_size, pygame.RESIZABLE, display=self._display)
        except pygame.error as exc:
            raise DreamcamError(
                f"cannot open the window ({exc}); try --windowed, another --display, or --headless"
            ) from exc
        self._fullscreen = fullscreen
        # A cursor parked in the middle of an installation is a blemish; a window still needs it.
        pygame.mouse.set_visible(not fullscreen)
        log.info(
            "window %dx%d %s on display %d",
            *self.size,
            "fullscreen" if fullscreen else "windowed",
            self._display,
        )

    def _init_font(self) -> None:
        try:
            pygame.font.init()
        except (pygame.error, NotImplementedError) as exc:  # pygame built without SDL_ttf
            log.warning("no fonts available (%s): the HUD stays hidden", exc)
            self._font_px = -1

    def toggle_fullscreen(self) -> None:
        """Switch between fullscreen and windowed; the show goes on at the new size."""
        surface = self._surface()
        if not self._fullscreen:
            # Come back to the size the user last dragged the window to, not the start-up size.
            w, h = surface.get_size()
            self._windowed_size = (w, h)
        self._open(not self._fullscreen)

    @property
    def fullscreen(self) -> bool:
        return self._fullscreen

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the current window surface (it changes when the user resizes)."""
        w, h = self._surface().get_size()
        return w, h

    def close(self) -> None:
        """Close the window; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._font = None
        self._hud_box = None
        self._scaled = None
        pygame.display.quit()
        log.info("window closed")

    def __enter__(self) -> Window:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _surface(self) -> pygame.Surface:
        # Ask pygame every time: a resize or set_mode can replace the display surface under us.
        surface = None if self._closed else pygame.display.get_surface()
        if surface is None:
            raise RuntimeError("the window is closed")
        return surface

    # -- drawing -----------------------------------------------------------------------------------

    def show(self, image: np.ndarray, hud_lines: Sequence[str] = ()) -> None:
        """Draw an HxWx3 uint8 RGB frame, scaled to fit and centred on black, then the HUD, then flip."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
        screen = self._surface()
        sw, sh = screen.get_size()
        ih, iw = image.shape[:2]
        scale = min(sw / iw, sh / ih)
        w, h = max(1, round(iw * scale)), max(1, round(ih * scale))
        if (w, h) != (sw, sh):
            screen.fill(BLACK)  # the letterbox / pillarbox bars
        x, y = (sw - w) // 2, (sh - h) // 2
        if not self._draw_into(screen, image, x, y, w, h):
            frame = np.ascontiguousarray(image) if (w, h) == (iw, ih) else self._resize(image, w, h)
            # frombuffer wraps the array without copying; the blit is the only copy to the screen.
            screen.blit(pygame.image.frombuffer(frame, (w, h), "RGB"), (x, y))
        text_lines = [line for line in hud_lines if not isinstance(line, Overlay)]
        if self.hud_visible and text_lines:
            self._draw_hud(screen, text_lines)
        for line in hud_lines:  # for the visitor (and the remote's address): shown with the HUD hidden too
            if isinstance(line, QrLine):
                self._draw_qr(screen, line)
            elif isinstance(line, Overlay):
                self._draw_overlay(screen, line)
        pygame.display.flip()

    def _draw_into(self, screen: pygame.Surface, image: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
        """Scale the frame straight into the screen's pixels (32-bit XRGB, the usual format):
        one pass over the screen instead of a resize, a 24->32 bit conversion and a blit.
        False when the screen has another format (then the caller blits)."""
        if screen.get_bitsize() != 32 or screen.get_masks()[:3] != (0xFF0000, 0xFF00, 0xFF):
            return False
        small = cv2.cvtColor(image, cv2.COLOR_RGB2BGRA)  # XRGB in memory is B, G, R, X bytes
        pixels = np.frombuffer(screen.get_buffer(), np.uint8)  # locks the surface while held
        rows = pixels.reshape(screen.get_height(), screen.get_pitch())[y : y + h, 4 * x : 4 * (x + w)]
        target = rows.reshape(h, w, 4)
        if (w, h) == (image.shape[1], image.shape[0]):
            target[...] = small
        else:
            interpolation = cv2.INTER_AREA if w < image.shape[1] else cv2.INTER_LINEAR
            drawn = cv2.resize(small, (w, h), dst=target, interpolation=interpolation)
            if drawn is not target and not np.shares_memory(drawn, target):
                target[...] = drawn  # OpenCV would not write into the strided rows: copy once
        del target, rows, pixels  # unlocks the surface for the HUD and the flip
        return True

    def _resize(self, image: np.ndarray, w: int, h: int) -> np.ndarray:
        if self._scaled is None or self._scaled.shape != (h, w, 3):
            self._scaled = np.empty((h, w, 3), np.uint8)
        # AREA averages when shrinking (no aliasing shimmer); LINEAR is the cheap, smooth choice upwards.
        shrinking = w < image.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), dst=self._scaled, interpolation=interpolation)

    def _draw_hud(self, screen: pygame.Surface, lines: Sequence[str]) -> None:
        font = self._hud_font(screen.get_height())
        if font is None:
            return
        texts = [
            font.render(
                _drawable(line.removeprefix(ALERT_MARK)), True, HUD_ALERT if is_alert(line) else HUD_TEXT
            )
            for line in lines
        ]
        line_h = font.get_linesize()
        # an audio line gets a beat lamp and a level bar after its text
        extra = [(2 + METER_LINES) * line_h if isinstance(line, MeterLine) else 0 for line in lines]
        box_w = max(t.get_width() + e for t, e in zip(texts, extra, strict=True)) + 2 * HUD_MARGIN
        box_h = line_h * len(texts) + 2 * HUD_MARGIN
        if self._hud_box is None or self._hud_box.get_size() != (box_w, box_h):
            self._hud_box = pygame.Surface((box_w, box_h), pygame.SRCALPHA)
            self._hud_box.fill((0, 0, 0, HUD_ALPHA))
        screen.blit(self._hud_box, (HUD_MARGIN, HUD_MARGIN))
        for i, text in enumerate(texts):
            y = 2 * HUD_MARGIN + i * line_h
            screen.blit(text, (2 * HUD_MARGIN, y))
            if isinstance(lines[i], MeterLine):
                self._draw_meter(screen, lines[i], 2 * HUD_MARGIN + text.get_width() + line_h // 2, y, line_h)

    def _draw_qr(self, screen: pygame.Surface, line: QrLine) -> None:
        """A QR code in the bottom-right corner, a third of the screen's height, with its quiet zone."""
        sw, sh = screen.get_size()
        n = len(line.modules) + 2 * QR_QUIET
        cell = max(2, min(sw, sh) // 3 // n)
        if self._qr is None or self._qr[0] != (str(line), cell):
            dark = np.array(line.modules, np.uint8)
            pixels = np.pad(np.where(dark > 0, 0, 255).astype(np.uint8), QR_QUIET, constant_values=255)
            pixels = np.repeat(np.repeat(pixels, cell, axis=0), cell, axis=1)
            surface = pygame.surfarray.make_surface(np.stack([pixels.T] * 3, axis=-1))
            self._qr = ((str(line), cell), surface)
        surface = self._qr[1]
        screen.blit(surface, (sw - surface.get_width() - HUD_MARGIN, sh - surface.get_height() - HUD_MARGIN))

    def _draw_overlay(self, screen: pygame.Surface, line: Overlay) -> None:
        """A keepsake's countdown (left: the visitor poses in the middle), card (right) or
        banner (bottom), each drawn once and kept."""
        sw, sh = screen.get_size()
        key = (type(line).__name__, str(line), sh)
        surface = self._overlays.get(key)
        if surface is None:
            if len(self._overlays) > 16:  # a show makes a few a minute: keep the newest only
                self._overlays.clear()
            surface = self._overlays[key] = self._make_overlay(line, sh)
        if surface is None:
            return
        w, h = surface.get_size()
        if isinstance(line, Countdown):
            where = (4 * HUD_MARGIN, (sh - h) // 2)
        elif isinstance(line, KeepsakeCard):
            where = (sw - w - 2 * HUD_MARGIN, (sh - h) // 2)
        else:
            where = ((sw - w) // 2, sh - h - 2 * HUD_MARGIN)
        screen.blit(surface, where)

    def _make_overlay(self, line: Overlay, sh: int) -> pygame.Surface | None:
        if isinstance(line, Countdown):
            return self._countdown_surface(line.number, sh)
        if isinstance(line, KeepsakeCard):
            return self._card_surface(line, sh)
        if isinstance(line, Banner):
            return self._boxed_text(str(line), max(14, sh // 30), BANNER_RED, HUD_TEXT)
        return None

    def _font_of(self, px: int) -> pygame.font.Font | None:
        if self._font_px < 0:  # no SDL_ttf: no text
            return None
        if px not in self._fonts:
            self._fonts[px] = pygame.font.Font(None, px)
        return self._fonts[px]

    def _countdown_surface(self, number: int, sh: int) -> pygame.Surface:
        size = max(32, round(sh * COUNTDOWN_SHARE))
        surface = pygame.Surface((size, size), pygame.SRCALPHA)
        pygame.draw.circle(surface, COUNTDOWN_DISC, (size // 2, size // 2), size // 2)
        font = self._font_of(round(size * 1.1))
        if font is not None:
            text = font.render(str(number), True, HUD_TEXT)
            surface.blit(text, ((size - text.get_width()) // 2, (size - text.get_height()) // 2 + size // 20))
        return surface

    def _card_surface(self, card: KeepsakeCard, sh: int) -> pygame.Surface:
        """A white card: a title, the QR code, the address to type, the caption."""
        n = len(card.modules) + 2 * QR_QUIET
        cell = max(2, round(sh * CARD_QR_SHARE) // n)
        dark = np.pad(np.array(card.modules, np.uint8), QR_QUIET)
        pixels = np.repeat(np.repeat(np.where(dark > 0, 0, 255).astype(np.uint8), cell, 0), cell, 1)
        qr = pygame.surfarray.make_surface(np.stack([pixels.T] * 3, axis=-1))
        width = round(qr.get_width() * CARD_WIDTH)
        title = self._fitted(card.title, sh // 20, width, bold=True)
        below = [self._fitted(card.short, sh // 30, width), self._fitted(card.caption, sh // 40, width)]
        parts = [t for t in (title, qr, *below) if t is not None]
        surface = pygame.Surface((width, sum(p.get_height() for p in parts) + 2 * HUD_MARGIN))
        surface.fill(CARD_WHITE)
        y = HUD_MARGIN
        for part in parts:
            surface.blit(part, ((width - part.get_width()) // 2, y))
            y += part.get_height()
        return surface

    def _fitted(self, text: str, px: int, width: int, bold: bool = False) -> pygame.Surface | None:
        """`text` in ink, in the largest size up to `px` that fits `width` (less a margin)."""
        px, room = max(12, px), width - 2 * HUD_MARGIN
        while (font := self._font_of(px)) is not None and font.size(text)[0] > room and px > 12:
            px -= 1
        if font is None:
            return None
        font.set_bold(bold)
        rendered = font.render(text, True, CARD_INK)
        font.set_bold(False)
        return rendered

    def _boxed_text(self, text: str, px: int, box: tuple, ink: tuple) -> pygame.Surface | None:
        font = self._font_of(px)
        if font is None:
            return None
        rendered = font.render(_drawable(text), True, ink)
        surface = pygame.Surface(
            (rendered.get_width() + 4 * HUD_MARGIN, rendered.get_height() + 2 * HUD_MARGIN)
        )
        surface.fill(box)
        surface.blit(rendered, (2 * HUD_MARGIN, HUD_MARGIN))
        return surface

    @staticmethod
    def _draw_meter(screen: pygame.Surface, line: MeterLine, x: int, y: int, line_h: int) -> None:
        """The beat lamp (lit on a beat, fading) and the loudness bar of an audio HUD line."""
        size = max(4, line_h * 3 // 4)
        top = y + (line_h - size) // 2
        lamp = tuple(round(c * line.flash + 50 * (1 - line.flash)) for c in BEAT_LAMP)
        pygame.draw.rect(screen, lamp, (x, top, size, size))
        bar_x, bar_w = x + line_h + line_h // 2, METER_LINES * line_h - line_h
        pygame.draw.rect(screen, METER_EMPTY, (bar_x, top, bar_w, size))
        filled = round(bar_w * line.level)
        if filled > 0:
            pygame.draw.rect(screen, METER_FILL, (bar_x, top, filled, size))

    def _hud_font(self, screen_height: int) -> pygame.font.Font | None:
        if self._font_px < 0:
            return None
        # Text grows with the screen so the HUD is readable on a projector and small in a test window.
        px = max(12, screen_height // 45)
        if self._font is None or px != self._font_px:
            self._font = pygame.font.Font(None, px)
            self._font_px = px
        return self._font

    # -- input -------------------------------------------------------------------------------------

    def poll(self) -> list[Intent]:
        """Drain pygame's event queue; return the Actions its keys and close button ask for, in order."""
        self._surface()
        actions: list[Intent] = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT and not self.kiosk:
                actions.append(Action.QUIT)
            elif event.type == pygame.KEYDOWN and self.kiosk:
                # an unattended booth: only the chord quits; any other key (a USB arcade button types
                # one, which one depends on the button) takes a keepsake, where the show has them
                if event.key == pygame.K_q and event.mod & pygame.KMOD_CTRL and event.mod & pygame.KMOD_SHIFT:
                    actions.append(Action.QUIT)
                elif event.key not in MODIFIER_KEYS:
                    actions.append(Action.KEEPSAKE)
            elif event.type == pygame.KEYDOWN:
                action = KEY_ACTIONS.get(event.key)
                if action is not None:
                    actions.append(action)
        return actions
