"""How two chunks meet in the output: the later chunk's first `fade` frames blended with the
earlier chunk's tail (the same frames, dreamt by both) over the fade (realtime.cluster.plan).

Two dreams of the same frames are different textures on the same picture. Blended evenly, what
they do not share cancels, and the dream mid-seam would be a quarter weaker (measured: the judge's
strength 0.83 of the frames around). So the blend is of the dreams, not the frames: the two
residuals (frame − source) are mixed evenly, then scaled back to the size the two dreams have at
that point (their sizes interpolated), and added to the source. A still's zoom has no common
source (each chunk zooms its own dream); there the frames are mixed evenly.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from realtime.cluster.plan import Chunk, seam_weight


def blend(
    earlier: np.ndarray, later: np.ndarray, weight: float, source: np.ndarray | None = None
) -> np.ndarray:
    """A crossfade's frame: `weight` of the later chunk's dream over the earlier's (module doc)."""
    if source is None:
        return cv2.addWeighted(earlier, 1.0 - weight, later, weight, 0.0)
    base = source.astype(np.float32)
    a, b = earlier.astype(np.float32) - base, later.astype(np.float32) - base
    mixed = (1.0 - weight) * a + weight * b
    size = (1.0 - weight) * _rms(a) + weight * _rms(b)
    gain = size / max(_rms(mixed), 1e-6)
    return np.clip(base + gain * mixed, 0, 255).round().astype(np.uint8)


def _rms(residual: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(residual))))


def stitched(
    chunk: Chunk, frames: np.ndarray, carry: np.ndarray | None, sources: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """The frames `chunk` writes, from its result `frames` (its start to its tail's end), the
    earlier chunk's tail `carry` (None at a scene cut or the first chunk) and the source frames of
    its fade (`ChunkResult.fade_sources`; None: mixed as frames)."""
    for n in range(chunk.stop - chunk.start):
        if n < chunk.fade and carry is not None:
            source = sources[n] if sources is not None else None
            yield blend(carry[n], frames[n], seam_weight(n, chunk.fade), source)
        else:
            yield frames[n]


def tail(chunk: Chunk, frames: np.ndarray) -> np.ndarray | None:
    """What `chunk` dreamt past its end for the next chunk's crossfade (None when nothing)."""
    return frames[chunk.stop - chunk.start :] if chunk.tail else None
