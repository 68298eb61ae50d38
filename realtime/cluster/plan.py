"""Which frames each chunk of a split render dreams and writes: the plan is pure arithmetic on the
frame count and the scene cuts, so the same clip, seed and worker count always give the same file.

The dream has memory (the carried residual, each pixel's age, the momentum of its steps), so a chunk
cannot start cold where the last one ended. Two ways round it:
- at a scene cut the dream resets anyway (WarmStart drops everything there): a chunk starting on a
  cut starts exactly as the unsplit render restarts, and costs nothing;
- elsewhere a chunk starts `warm_up` frames early (dreamt, not written: the price of the split),
  and the chunk before it dreams `crossfade` frames past its end; the writer blends the two renders
  over those frames, so the seam is a short dissolve between two mature dreams of the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# chosen by measurement (docs/BENCHMARKS.md, "Split renders"): with 30 warm-up frames the young
# dream's age boost (YOUNG_FRAMES, 30) has run out before the first written frame. Two renders of
# the same frames are two different dreams; the crossfade spreads the change from one to the other
# over its frames. Where the scene moves the dream changes every frame anyway and 24 frames hide
# the seam (its boil 0.95-1.33x of the frames around); on a still scene the dream holds still
# (boil ~0.002), so the change is spread over 120 frames (4 s at 30 fps) after 60 of warm-up
# (1.42x; with 30 of warm-up 1.49x, too near the 1.5x goal)
WARM_UP, WARM_UP_STILL = 30, 60
CROSSFADE, CROSSFADE_STILL = 24, 120
STILL_PX = 0.15  # a scene whose dream flow moves less than this (px a frame at dream size) is still
MIN_CHUNK = 4 * WARM_UP  # a chunk writes at least this many frames: the warm-up costs <= 25 % more
MAX_CHUNK = 900  # and at most this many (30 s at 30 fps): a lost worker costs a retry of this much
# a chunk's frames come back raw through the object store: at most this many bytes of them (1080p:
# 346 frames), so the chunks in flight (two per worker) fit a store of a few GB without spilling
MAX_CHUNK_BYTES = 2 * 2**30


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # the first frame it writes
    stop: int  # the frame after its own last one
    warm_from: int  # the first frame it dreams (start − warm-up, never before its scene's first frame)
    tail: int  # frames dreamt past `stop` for the next chunk's crossfade (0 before a cut or the end)
    fade: int  # frames at its start blended with the previous chunk's tail (its tail's length)

    @property
    def dream_to(self) -> int:
        """The frame after the last one it dreams."""
        return self.stop + self.tail

    @property
    def dreamt(self) -> int:
        """Frames it dreams in all (warm-up, its own, the tail)."""
        return self.dream_to - self.warm_from

    def describe(self, fps: float) -> str:
        """'chunk 3 (frames 300-449, 10.00-15.00 s)' for the log and errors."""
        return (
            f"chunk {self.index} (frames {self.start}-{self.stop - 1}, "
            f"{self.start / fps:.2f}-{self.stop / fps:.2f} s)"
        )


def chunk_length(total: int, parallel: int, min_chunk: int = MIN_CHUNK, max_chunk: int = MAX_CHUNK) -> int:
    """Frames a chunk writes: the clip shared evenly over the parallel workers, within the bounds."""
    return max(min_chunk, min(max_chunk, math.ceil(total / max(1, parallel))))


def frames_that_fit(frame_bytes: int, limit: int = MAX_CHUNK_BYTES) -> int:
    """How many frames of `frame_bytes` a chunk may hand back (MAX_CHUNK_BYTES)."""
    return max(1, limit // max(1, frame_bytes))


def plan_chunks(
    total: int,
    cuts: list[int],
    parallel: int,
    *,
    warm_up: int = WARM_UP,
    crossfade: int = CROSSFADE,
    min_chunk: int = MIN_CHUNK,
    max_chunk: int = MAX_CHUNK,
    still: Callable[[int], bool] | None = None,
    still_warm_up: int = WARM_UP_STILL,
    still_crossfade: int = CROSSFADE_STILL,
) -> list[Chunk]:
    """The chunks of a `total`-frame clip whose scenes begin at the frames in `cuts`: every scene is
    cut into pieces of about `chunk_length` frames (a scene shorter than that is one piece), so
    seams fall on the cuts first. A seam where `still(frame)` says the scene holds still gets the
    longer `still_warm_up` and `still_crossfade`."""
    if total < 1:
        return []
    length = chunk_length(total, parallel, min_chunk, max_chunk)
    edges = [0, *sorted(c for c in set(cuts) if 0 < c < total), total]
    pieces: list[tuple[int, int, bool]] = []  # (start, stop, starts a scene)
    for first, end in zip(edges, edges[1:], strict=False):
        count = max(1, round((end - first) / length))
        bounds = [first + (end - first) * k // count for k in range(count + 1)]
        pieces += [(a, b, k == 0) for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]
    chunks = []
    for index, (start, stop, new_scene) in enumerate(pieces):
        scene_start = max(e for e in edges if e <= start)
        next_is_seam = index + 1 < len(pieces) and not pieces[index + 1][2]
        fade = still_crossfade if next_is_seam and still is not None and still(stop) else crossfade
        tail = min(fade, pieces[index + 1][1] - stop) if next_is_seam else 0
        fade = 0 if new_scene else chunks[-1].tail
        early = still_warm_up if not new_scene and still is not None and still(start) else warm_up
        warm_from = start if new_scene else max(scene_start, start - early)
        chunks.append(Chunk(index, start, stop, warm_from, tail, fade))
    return chunks


def chunk_seed(seed: int | None, index: int) -> int:
    """Chunk `index`'s dream seed: chunk 0 dreams with the render's own seed (its frames are the
    unsplit render's), each later one with its own, derived from the seed and the index alone."""
    base = 0 if seed is None else seed
    return (base + index * 1_000_003) % (2**31 - 1)


def seam_weight(position: int, fade: int) -> float:
    """The later chunk's share of frame `position` (0-based) of a `fade`-frame crossfade: rising
    evenly, never 0 or 1 (both renders show in every blended frame)."""
    return (position + 1) / (fade + 1)
