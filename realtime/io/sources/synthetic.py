"""The built-in scene: a photo collage with faces and animals moving over it, for demos, kiosks'
attract loops, tests and benchmarks (no hardware needed; `--source synthetic`).

It moves the way people move in front of a booth: a while of motion, then a still moment (a
visitor stops and looks), then motion again. The still moments are what the dream deepens on;
the motion is what warm start has to follow.
"""

from __future__ import annotations

import math
import time
from functools import cache

import cv2
import numpy as np

from realtime.errors import ConfigError
from realtime.io.sources.base import DEFAULT_FPS, Frame, Pacer, Source

SYNTHETIC_SIZE = (640, 360)
MOVE_S, STILL_S = 5.0, 4.0  # each cycle: seconds of motion, then seconds held still


def scene_clock(t: float) -> float:
    """Seconds of motion shown by real time t: motion eases in and out, then holds still for
    STILL_S. It starts mid-motion (at full speed), so the first frames already move."""

    def moved(u: float) -> float:  # motion seconds after u seconds of a cycle
        if u >= MOVE_S:
            return MOVE_S
        phase = u / MOVE_S
        return MOVE_S * (phase - math.sin(2.0 * math.pi * phase) / (2.0 * math.pi))

    shifted = t + MOVE_S / 2  # start at the fastest point of the first move
    cycles, u = divmod(shifted, MOVE_S + STILL_S)
    return cycles * MOVE_S + moved(u) - moved(MOVE_S / 2)


def is_still(t: float, fps: float = DEFAULT_FPS) -> bool:
    """Whether the scene does not move between real times t and t + 1/fps."""
    return scene_clock(t + 1.0 / fps) == scene_clock(t)


@cache
def _photos() -> tuple[np.ndarray, ...]:
    """astronaut, coffee, chelsea, rocket: real photos dream far better than noise or stripes."""
    import skimage.data  # lazy: ~0.5 s to import, and only the synthetic scene needs it

    photos = (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket())
    for photo in photos:
        photo.setflags(write=False)  # cached and shared by every scene
    return photos


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Crop `image` to the aspect ratio of width x height around its centre, then resize to it."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    crop_w, crop_h = min(w, round(width / scale)), min(h, round(height / scale))
    x, y = (w - crop_w) // 2, (h - crop_h) // 2
    return cv2.resize(image[y : y + crop_h, x : x + crop_w], (width, height), interpolation=cv2.INTER_AREA)


def _paste(frame: np.ndarray, sprite: np.ndarray, mask: np.ndarray | None, x: int, y: int) -> None:
    """Draw `sprite` with its top-left corner at (x, y), clipped to the frame."""
    h, w = sprite.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, frame.shape[1]), min(y + h, frame.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    part = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
    roi = frame[y0:y1, x0:x1]
    if mask is None:
        roi[...] = part
    else:
        np.copyto(roi, part, where=mask[y0 - y : y1 - y, x0 - x : x1 - x])


def _wave(t: float, period: float, phase: float = 0.0) -> float:
    return math.sin(2.0 * math.pi * t / period + phase)


class SyntheticSource(Source):
    """A deterministic scene: a photo collage panning slowly, with textured objects gliding over it,
    and still moments between the moves.

    Frame n is a pure function of n (two sources give identical frame n) and costs one crop, two small
    pastes and a circle, well under a millisecond at 640x360: benchmarks measure the dream, not this.
    """

    def __init__(
        self, size: tuple[int, int] = SYNTHETIC_SIZE, *, paced: bool = True, fps: float = DEFAULT_FPS
    ):
        width, height = size
        if width < 16 or height < 16:
            raise ConfigError(f"synthetic size {width}x{height} is too small; use at least 16x16")
        super().__init__("synthetic", fps)
        self.size = (width, height)
        self._pacer = Pacer(fps, paced, self._closed)
        astronaut, coffee, chelsea, rocket = _photos()

        # The canvas is 1.5x the frame so the view can pan over it without ever running off the edge.
        self._pan = (width // 2, height // 2)
        canvas_w, canvas_h = width + self._pan[0], height + self._pan[1]
        xs, ys = (0, canvas_w // 2, canvas_w), (0, canvas_h // 2, canvas_h)
        canvas = np.empty((canvas_h, canvas_w, 3), np.uint8)
        for (row, col), photo in zip(
            ((0, 0), (0, 1), (1, 0), (1, 1)), (astronaut, coffee, chelsea, rocket), strict=True
        ):
            cell = canvas[ys[row] : ys[row + 1], xs[col] : xs[col + 1]]
            cell[...] = _cover(photo, cell.shape[1], cell.shape[0])
        self._canvas = canvas

        short = min(width, height)
        # A disc with the cat's face and a square with the astronaut's: faces and eyes are what
        # ImageNet networks see everywhere, so moving ones show off warm start and flow well.
        self._radius = max(4, short // 7)
        diameter = 2 * self._radius
        self._disc = _cover(chelsea[20:260, 120:360], diameter, diameter)
        yy, xx = np.mgrid[:diameter, :diameter]
        centre = self._radius - 0.5
        self._disc_mask = ((yy - centre) ** 2 + (xx - centre) ** 2 <= self._radius**2)[..., None]
        self._side = max(6, short // 4)
        self._square = _cover(astronaut[20:230, 150:340], self._side, self._side)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def render(self, index: int) -> np.ndarray:
        """Frame `index` of the scene (a fresh HxWx3 uint8 RGB array); a pure function of index."""
        t = scene_clock(index / self.fps)  # everything below stops during a still moment
        w, h = self.size
        # Slow pan (periods of ~20 s); 1 - cos starts at offset 0 and never leaves the canvas.
        ox = round(self._pan[0] * 0.5 * (1.0 - math.cos(2.0 * math.pi * t / 23.0)))
        oy = round(self._pan[1] * 0.5 * (1.0 - math.cos(2.0 * math.pi * t / 17.0)))
        frame = self._canvas[oy : oy + h, ox : ox + w].copy()

        r = self._radius
        cx = w / 2 + (w / 2 - r - 1) * _wave(t, 11.0)
        cy = h / 2 + (h / 2 - r - 1) * _wave(t, 7.0, 1.0)
        _paste(frame, self._disc, self._disc_mask, round(cx) - r, round(cy) - r)

        s = self._side
        sx = (w - s) / 2 * (1.0 + 0.9 * _wave(t, 13.0, 2.0))
        sy = (h - s) / 2 * (1.0 + 0.9 * _wave(t, 9.0, 0.5))
        _paste(frame, self._square, None, round(sx), round(sy))

        # A ring whose colour cycles every few seconds: while the scene moves, something changes in
        # every frame, even at sizes where the slow motions above move less than a pixel per frame.
        ring_r = max(3, min(w, h) // 10)
        rx = round(w / 2 + (w / 2 - ring_r - 2) * _wave(t, 8.0, 3.0))
        ry = round(h / 2 + (h / 2 - ring_r - 2) * _wave(t, 10.0, 4.0))
        colour = tuple(round(127.5 * (1.0 + _wave(t, 4.0, k * 2.0 * math.pi / 3.0))) for k in range(3))
        cv2.circle(frame, (rx, ry), ring_r, colour, max(2, ring_r // 4), cv2.LINE_AA)
        return frame

    def read(self, timeout: float = 0.5) -> Frame | None:
        index = self._pacer.next_index(timeout)
        if index is None:
            return None
        t_capture = time.perf_counter()
        return Frame(self.render(index), t_capture, index)
