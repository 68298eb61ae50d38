"""The driver of a split render: plan the chunks, send them to Ray, write what comes back in order.

Each chunk is a Ray task (one GPU each where the cluster has them). The driver keeps at most two
chunks per parallel slot in flight or waiting, writes the chunks in order as they arrive, blends each
crossfade (realtime.cluster.plan), and encodes the one output file itself: one encoder and one
timeline, so the frame count, timestamps and duration are those of the unsplit render, and the sound
is copied once from the source as the frames go in, never stitched.

A chunk whose worker dies (killed, out of memory, its node lost) is sent again, up to MAX_RETRIES
times, and the log names it; a chunk that fails for a reason of its own (its stretch of the input
will not decode) fails the render with one line naming its frames and time range. The output is
written under a temporary name beside it and renamed only when complete and read back; every other
ending removes it.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

from realtime.audio.offline import RenderAudioPlan
from realtime.cluster.chunk import ChunkInput, ChunkResult, run_chunk
from realtime.cluster.job import DreamRecipe, SplitOptions
from realtime.cluster.plan import (
    MAX_CHUNK,
    MIN_CHUNK,
    STILL_PX,
    Chunk,
    frames_that_fit,
    plan_chunks,
)
from realtime.cluster.runtime import ClusterError, ProgressBoard, Runtime, need_ray, open_runtime
from realtime.cluster.scan import ClipFacts, frame_looks, scan_video
from realtime.cluster.seams import stitched, tail
from realtime.commands.render_io import Progress, check_request, finish, partial_path, remove_temporary
from realtime.commands.signals import Interrupted
from realtime.commands.still import load_image
from realtime.errors import DreamcamError
from realtime.io.videofile import RecordingError, VideoFileWriter

log = logging.getLogger(__name__)

MAX_RETRIES = 3  # a chunk whose worker dies is sent again this many times before the render fails
STORE_SHARE = 0.5  # an input sent through the object store may take at most this share of it
POLL_S = 0.5  # how often the progress line is brought up to date


def plan_for(split: SplitOptions, facts: ClipFacts, parallel: int) -> list[Chunk]:
    """The render's chunks: `--chunk-frames` or the measured bounds, still scenes' longer seams."""
    if split.chunk_frames:
        size = {"min_chunk": split.chunk_frames, "max_chunk": split.chunk_frames}
    else:  # within the bytes a chunk may hand back (a big frame makes chunks shorter)
        most = min(MAX_CHUNK, frames_that_fit(facts.frame_bytes))
        size = {"min_chunk": min(MIN_CHUNK, most), "max_chunk": most}
    return plan_chunks(
        facts.frames,
        list(facts.cuts),
        parallel,
        warm_up=split.warm_up,
        crossfade=split.crossfade,
        still=lambda frame: facts.still_at(frame, split.warm_up, STILL_PX),
        **size,
    )


def render_split(
    input_path: str,
    output_path: str,
    recipe: DreamRecipe,
    split: SplitOptions,
    frames: int | None = None,
    progress: Progress | None = None,
    codec: str = "h264",
    audio: RenderAudioPlan | None = None,
    *,
    overwrite: bool = False,
) -> int:
    """`render` over Ray: the same file as the unsplit render would write (frames, timing, sound),
    dreamt in chunks. Returns the number of frames written."""
    is_still = check_request(input_path, output_path, frames, recipe.zoom, codec, audio, overwrite)
    need_ray()  # before the scan: no Ray is one line at once
    if is_still:
        image = load_image(input_path, None)  # a bad image fails here, not in every worker
        facts = ClipFacts(frames or 0, 30.0, (), image.nbytes)
    else:
        facts = scan_video(input_path, recipe.dream_size, frames)
    looks = frame_looks(audio, input_path, facts, recipe.params) if audio is not None else None
    sound = audio.sound_of(input_path) if audio is not None else None if is_still else input_path
    runtime = open_runtime(split.workers, split.cluster, split.use_gpus)
    try:
        chunks = plan_for(split, facts, runtime.parallel)
        _say_plan(chunks, facts)
        source = _input_for_workers(runtime, input_path, split.shared_path, is_still)
        job = _Job(runtime, recipe, source, looks, facts, chunks)
        return job.write(output_path, codec, sound, progress)
    finally:
        runtime.close()


def _say_plan(chunks: list[Chunk], facts: ClipFacts) -> None:
    seams = sum(1 for c in chunks if c.fade)
    extra = sum(c.dreamt for c in chunks) - facts.frames
    log.info(
        "ray: %d frames in %d chunk(s): %d seam(s) on scene cuts, %d crossfaded; %d extra frames "
        "dreamt (warm-up and crossfade, %.1f %% of the render)",
        facts.frames,
        len(chunks),
        len(chunks) - 1 - seams,
        seams,
        extra,
        100.0 * extra / max(1, facts.frames),
    )


def _input_for_workers(runtime: Runtime, path: str, shared: bool, still: bool) -> ChunkInput:
    """The path itself where every node sees it, else the file's bytes in the object store once."""
    name = os.path.basename(path)
    if shared:
        return ChunkInput(name, path=os.path.abspath(path), still=still)
    size = os.path.getsize(path)
    store = runtime.ray.cluster_resources().get("object_store_memory", 0)
    if store and size > STORE_SHARE * store:
        raise ClusterError(
            f"'{path}' is {size / 2**30:.1f} GiB, more than half the cluster's object store "
            f"({store / 2**30:.1f} GiB); put it where every node sees it and add --shared-path"
        )
    data = Path(path).read_bytes()
    return ChunkInput(name, data=[runtime.ray.put(data)], still=still)


class _Reporter:
    """A chunk's progress, sent to the render's ProgressBoard without waiting (picklable)."""

    def __init__(self, board) -> None:
        self.board = board

    def __call__(self, index: int, frames: int) -> None:
        self.board.report.remote(index, frames)


class _Job:
    """One split render in flight: submitting, retrying, writing in order."""

    def __init__(
        self,
        runtime: Runtime,
        recipe: DreamRecipe,
        source: ChunkInput,
        looks: list | None,
        facts: ClipFacts,
        chunks: list[Chunk],
    ):
        ray = self.ray = runtime.ray
        self.runtime, self.recipe, self.source, self.looks = runtime, recipe, source, looks
        self.facts, self.chunks = facts, chunks
        self.task = ray.remote(run_chunk).options(
            num_cpus=recipe.threads, num_gpus=1 if runtime.gpus else 0, max_retries=0
        )
        self.board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        self.reporter = _Reporter(self.board)
        self.attempts: dict[int, int] = {}
        self.pending: dict = {}  # ObjectRef -> Chunk
        self.results: dict[int, ChunkResult] = {}
        self.dreamt = 0  # frames dreamt so far, every chunk's (the progress line's count)

    def submit(self, chunk: Chunk) -> None:
        looks = self.looks[chunk.warm_from : chunk.dream_to] if self.looks is not None else None
        device = "cuda" if self.runtime.gpus else "cpu"
        ref = self.task.remote(chunk, self.recipe, self.source, looks, self.reporter, device)
        self.pending[ref] = chunk

    def write(self, output_path: str, codec: str, sound: str | None, progress: Progress | None) -> int:
        output = Path(output_path)
        partial = partial_path(output)
        queue = deque(self.chunks)
        total = sum(c.dreamt for c in self.chunks)
        written, carry, writer = 0, None, None
        started = time.perf_counter()
        try:
            writer = VideoFileWriter(str(partial), self.facts.fps, codec, live=False, audio_from=sound)
            for chunk in self.chunks:
                while chunk.index not in self.results:
                    while queue and len(self.pending) + len(self.results) < 2 * self.runtime.parallel:
                        self.submit(queue.popleft())
                    self._collect()
                    if progress is not None:
                        progress(self._dreamt(), total, time.perf_counter() - started)
                result = self.results.pop(chunk.index)
                carry = self._write_chunk(writer, chunk, result, carry)
                written += chunk.stop - chunk.start
            finish(writer, partial, output, written)
        except RecordingError as exc:
            raise RecordingError(str(exc).replace(str(partial), output_path)) from None
        finally:
            self._cancel()
            if writer is not None:
                writer.abort()
            remove_temporary(partial)
        return written

    def _write_chunk(self, writer: VideoFileWriter, chunk: Chunk, result: ChunkResult, carry):
        """Write the chunk's own frames, the first `fade` blended with the last chunk's tail; return
        its own tail (for the next chunk's crossfade)."""
        frames = result.frames
        if len(frames) != chunk.dream_to - chunk.start:
            raise ClusterError(
                f"{chunk.describe(self.facts.fps)} came back with {len(frames)} frames, "
                f"not {chunk.dream_to - chunk.start}; the render is not kept"
            )
        for line in dict.fromkeys(result.warnings):  # each worker warning once, naming the chunk
            log.warning("%s: %s", chunk.describe(self.facts.fps), line)
        for frame in stitched(chunk, frames, carry, result.fade_sources):
            writer.write(frame)
        return tail(chunk, frames)

    def _collect(self) -> None:
        """Wait a little for a chunk; keep it, send it again (a lost worker) or fail the render."""
        from ray import exceptions as rx

        try:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
        except SystemError as exc:
            # a stop signal's Interrupted, raised by its handler while Ray's compiled wait runs, comes
            # out wrapped in a SystemError: raise it as itself, so the render cleans up and exits 143
            if isinstance(exc.__cause__, Interrupted):
                raise exc.__cause__ from None
            raise
        for ref in ready:
            chunk = self.pending.pop(ref)
            where = chunk.describe(self.facts.fps)
            try:
                self.results[chunk.index] = self.ray.get(ref)
            except (rx.WorkerCrashedError, rx.NodeDiedError, rx.ObjectLostError, rx.OutOfMemoryError) as exc:
                tries = self.attempts[chunk.index] = self.attempts.get(chunk.index, 0) + 1
                reason = _reason(exc)
                if tries > MAX_RETRIES:
                    raise ClusterError(
                        f"{where} lost its worker {tries} times ({reason}); the render stops"
                    ) from None
                log.warning(
                    "%s lost its worker (%s); retrying it (%d of %d)", where, reason, tries, MAX_RETRIES
                )
                self.submit(chunk)
            except rx.RayTaskError as exc:
                cause = exc.cause
                text = str(cause) if isinstance(cause, DreamcamError) else f"{type(cause).__name__}: {cause}"
                raise ClusterError(f"{where} failed: {_reason(text)}") from None
            except rx.RayError as exc:  # the cluster itself went away
                raise ClusterError(f"{where}: the Ray cluster stopped answering ({_reason(exc)})") from None

    def _dreamt(self) -> int:
        from ray import exceptions as rx

        try:
            self.dreamt = self.ray.get(self.board.total.remote(), timeout=POLL_S)
        except rx.RayError:
            pass  # the count comes back with the next poll; the render goes on
        return self.dreamt

    def _cancel(self) -> None:
        """Stop the chunks still running (an error, Ctrl+C, SIGTERM): a cluster keeps no orphans."""
        for ref in self.pending:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished, or the cluster is gone
                pass


def _reason(exc: BaseException | str) -> str:
    """The first line of an error, without Ray's traceback."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
