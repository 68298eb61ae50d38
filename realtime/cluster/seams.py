"""How two chunks meet in the output: the later chunk's first `fade` frames blended with the
earlier chunk's tail (the same frames, dreamt by both), evenly over the fade (realtime.cluster.plan).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from realtime.cluster.plan import Chunk, seam_weight


def blend(earlier: np.ndarray, later: np.ndarray, weight: float) -> np.ndarray:
    """A crossfade's frame: `weight` of the later chunk's render over the earlier's."""
    return cv2.addWeighted(earlier, 1.0 - weight, later, weight, 0.0)


def stitched(chunk: Chunk, frames: np.ndarray, carry: np.ndarray | None) -> Iterator[np.ndarray]:
    """The frames `chunk` writes, from its result `frames` (its start to its tail's end) and the
    earlier chunk's tail `carry` (None at a scene cut or the first chunk)."""
    for n in range(chunk.stop - chunk.start):
        if n < chunk.fade and carry is not None:
            yield blend(carry[n], frames[n], seam_weight(n, chunk.fade))
        else:
            yield frames[n]


def tail(chunk: Chunk, frames: np.ndarray) -> np.ndarray | None:
    """What `chunk` dreamt past its end for the next chunk's crossfade (None when nothing)."""
    return frames[chunk.stop - chunk.start :] if chunk.tail else None
