"""One chunk of a split render, as a Ray worker runs it: read the chunk's frames (warm-up first),
dream them with the live kernel exactly as `render` does, and hand back the frames it writes.

Nothing here imports Ray: the driver (realtime.cluster.split) makes the task of it, so this runs (and is
tested) in-process as well. The input comes as a path every node sees or as the file's bytes from
the object store (written to a temporary file for OpenCV, removed when the chunk ends); either way
the frames are decoded by the same OpenCV reader as the unsplit render's.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from models.registry import Network
from realtime.cluster.job import DreamRecipe
from realtime.cluster.plan import Chunk, chunk_seed
from realtime.cluster.scan import FrameLook
from realtime.commands.render_io import zoom_frames, zoom_in
from realtime.commands.still import load_image
from realtime.dream.dreamer import FrameDreamer, build_dreamer
from realtime.dream.frames import residual_array
from realtime.errors import SourceError
from realtime.loop.compose import add_upscaled

log = logging.getLogger(__name__)

REPORT_EVERY = 5  # frames between a chunk's progress reports


@dataclass(frozen=True)
class ChunkInput:
    """Where a worker finds the input: `path` where every node sees it, else `data`, the file's
    bytes in the object store (a list, so Ray hands the worker the reference, not the bytes)."""

    name: str  # the input's file name (its suffix tells OpenCV the format)
    path: str | None = None
    data: list = field(default_factory=list)
    still: bool = False


@dataclass
class ChunkResult:
    index: int
    frames: np.ndarray  # NxHxWx3 uint8: the frames from the chunk's start to its tail's end
    fade_sources: np.ndarray | None = None  # the source frames of its crossfade (not for a zoom)
    seconds: float = 0.0  # the chunk's wall time in the worker
    warnings: list[str] = field(default_factory=list)  # what the worker logged, for the driver's log


class ChunkFailed(SourceError):
    """A chunk that cannot be done for a reason of its own (its stretch of the input will not
    decode): the render fails, naming the chunk's time range."""


_networks: dict[tuple[str, str | None], Network] = {}  # loaded once per worker process


def run_chunk(
    chunk: Chunk,
    recipe: DreamRecipe,
    source: ChunkInput,
    looks: list[FrameLook] | None = None,
    report: Callable[[int, int], None] | None = None,
    device: str | None = None,
) -> ChunkResult:
    """Dream `chunk`: frames warm_from..dream_to, returning those from its start on. `looks`: each
    dreamt frame's parameters and swell (the sound's drive, worked out once on the driver), else the
    recipe's throughout, shown as dreamt. `report(index, frames dreamt)` from time to time."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, recipe.threads))
    dreamer = _dreamer(chunk, recipe, device)
    warnings = _Collect()
    logging.getLogger().addHandler(warnings)
    try:
        with _local_copy(source) as path:
            gains = [look.gain for look in looks] if looks is not None else None
            frames = _zoom(path, chunk, recipe, dreamer, gains) if source.still else _video(path, chunk)
            kept = []
            if looks is not None:
                dreamer.set_params(looks[0].params)
            fade_sources = []
            for n, image in enumerate(frames):
                frame_index = chunk.warm_from + n
                if not source.still:
                    if chunk.start <= frame_index < chunk.start + chunk.fade:
                        fade_sources.append(image)
                    gain = gains[n] if gains is not None else 1.0
                    image = add_upscaled(image, residual_array(dreamer.residual(image)), gain)
                if frame_index >= chunk.start:
                    kept.append(image)
                if looks is not None and n + 1 < len(looks):  # the next frame's look (a zoom's too)
                    dreamer.set_params(looks[n + 1].params)
                if report is not None and (n + 1) % REPORT_EVERY == 0:
                    report(chunk.index, n + 1)
    finally:
        logging.getLogger().removeHandler(warnings)
        dreamer.close()
    if report is not None:
        report(chunk.index, chunk.dreamt)
    seconds = time.perf_counter() - started
    sources = np.stack(fade_sources) if fade_sources else None
    return ChunkResult(chunk.index, np.stack(kept), sources, seconds, warnings.lines)


def _dreamer(chunk: Chunk, recipe: DreamRecipe, device: str | None) -> FrameDreamer:
    """A fresh dreamer for the chunk (its own seed), on the worker's cached network."""
    where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    key = (recipe.params.model, recipe.weights)
    backend, precision = recipe.backend, recipe.precision
    if where.type != "cuda" and backend == "auto":
        # auto off CUDA times its candidates on each machine: nodes (and runs) could choose apart,
        # and a chunk would dream unlike its neighbours; the reference step is the same everywhere
        backend, precision = "eager", "fp32" if precision == "auto" else precision
    dreamer = build_dreamer(
        recipe.params,
        recipe.dream_size,
        where,
        backend,
        recipe.weights,
        chunk_seed(recipe.seed, chunk.index),
        _networks.get(key),
        precision=precision,
    )
    _networks[key] = dreamer.network
    return dreamer


def _video(path: str, chunk: Chunk) -> Iterator[np.ndarray]:
    """The chunk's frames of the video, RGB, as `render`'s reader gives them (the frames before its
    warm-up are only grabbed, not converted); a stretch that will not decode fails the chunk."""
    capture = cv2.VideoCapture(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    try:
        for n in range(chunk.dream_to):
            if n < chunk.warm_from:
                ok = capture.grab()
            else:
                ok, bgr = capture.read()
            if not ok:
                raise ChunkFailed(
                    f"the input stops decoding at frame {n} ({n / fps:.2f} s): it is damaged there; "
                    "re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4) or render up to there (--frames)"
                )
            if n >= chunk.warm_from:
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _zoom(
    path: str, chunk: Chunk, recipe: DreamRecipe, dreamer: FrameDreamer, gains: list[float] | None
) -> Iterator[np.ndarray]:
    """A still's zoom video from frame warm_from on: the still zoomed in as far as the unsplit
    render has zoomed by then stands in for the dream before it (the warm-up grows one on it).
    `gains`: each frame's swell from warm_from on, shown as render's zoom shows it."""
    zoom = recipe.zoom or 1.02
    frame = load_image(path, None)
    if chunk.warm_from:
        frame = zoom_in(frame, zoom**chunk.warm_from)
    shown = iter(gains) if gains is not None else None
    gain = (lambda: next(shown)) if shown is not None else (lambda: 1.0)
    return zoom_frames(frame, chunk.dream_to - chunk.warm_from, zoom, dreamer, gain)


class _local_copy:  # noqa: N801  (a context manager used like a function)
    """The input as a local path: the shared path itself, or the object store's bytes written to a
    temporary file (removed at the end)."""

    def __init__(self, source: ChunkInput):
        self.source, self.temporary = source, None

    def __enter__(self) -> str:
        if self.source.path is not None:
            if not os.path.isfile(self.source.path):
                raise ChunkFailed(
                    f"'{self.source.path}' is not there on this node; give a path every node sees"
                )
            return self.source.path
        import ray  # only a worker fed from the object store gets here

        data = ray.get(self.source.data[0])
        suffix = os.path.splitext(self.source.name)[1]
        handle, self.temporary = tempfile.mkstemp(prefix="dreamcam-chunk-", suffix=suffix)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        return self.temporary

    def __exit__(self, *exc) -> None:
        if self.temporary is not None:
            os.unlink(self.temporary)


class _Collect(logging.Handler):
    """The worker's warnings, handed back to the driver (Ray's own log forwarding is off)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
