"""`dreamcam bench`: the live window's loop on the synthetic scene, timed; JSON out.

It runs exactly what `dreamcam` runs behind its window: a camera at a fixed rate, the display
loop composing every camera frame with the newest residual, tracking it along the flow, drawing
the HUD and showing the frame in a window (SDL's off-screen driver unless one is chosen with
SDL_VIDEODRIVER), and the dream worker beside it. So its figures are the HUD's: `dream_fps` the
rate of finished dreams, `display_fps` the frames shown, `dream_latency_ms` from a frame's
capture to the first display of its dream, and `kernel_fps` the dream call alone
(1000 / kernel_ms_p50): `dream_fps / kernel_fps` says how much the rest of the loop costs.
Warm-up dreams are dropped before timing. `--compare-cold` runs the classic cold-start loop
(3 octaves x 10 steps per frame, from scratch) on the same scene in the same run.

Statistics, so that GPU figures mean what they say: percentiles cover every sample of the timed
window (not the HUD's last 300); rates count what happened in the timed window only; `kernel_ms`
is the dream alone, timed apart from the loop with CUDA events on a GPU (the GPU's own time, read
after one synchronisation) and the wall clock elsewhere; every timed shape is warmed up first with
the step count it is timed with (a CUDA graph or an export per shape must not land in the timing).
`--backend all` prints {"backends": [rows], "ratios": {...}}: the goal's cudagraph / eager and
onnx / cudagraph, for kernel and dream rates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from realtime.dream import kernel
from realtime.dream.backends import BACKENDS
from realtime.dream.backends.onnx_export import print_progress
from realtime.dream.dreamer import FrameDreamer, build_dreamer
from realtime.io.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.loop.stats import PipelineStats, Rolling
from realtime.params import DreamParams
from realtime.show.control import ShowState

T = TypeVar("T")

WARMUP_DREAMS = 3
COLD_STEPS, COLD_OCTAVES = 10, 3
SOURCE_SIZE = (640, 360)
WINDOW_SIZE = (1920, 1080)  # the live window opens fullscreen: a 1080p screen's worth of pixels
CPU_CAMERA_FPS, GPU_CAMERA_FPS = 30.0, 240.0


@contextlib.contextmanager
def bench_window(size: tuple[int, int] | None) -> Iterator[object | None]:
    """The show's window with its HUD: on the display when there is one (the flip to the screen
    is part of what the show pays), else drawn off-screen (SDL's dummy driver)."""
    if size is None:
        yield None
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from realtime.io.display import Window

    with Window(fullscreen=False, size=size, title="dreamcam bench") as window:
        window.poll()
        yield window


def run_bench(
    params: DreamParams,
    dream_size: tuple[int, int],
    device: torch.device,
    backend: str = "auto",
    frames: int = 60,
    compare_cold: bool = False,
    cold_frames: int = 5,
    weights: str | None = None,
    seed: int | None = 0,
    camera_fps: float | None = None,
    window_size: tuple[int, int] | None = WINDOW_SIZE,
    precision: str = "auto",
) -> dict:
    camera_fps = camera_fps or (GPU_CAMERA_FPS if device.type == "cuda" else CPU_CAMERA_FPS)
    dreamer = build_dreamer(
        params, dream_size, device, backend, weights, seed, progress=print_progress, precision=precision
    )
    state = ShowState(params, dreamer.network.spec.layers)
    with (
        SyntheticSource(SOURCE_SIZE, paced=True, fps=camera_fps) as source,
        bench_window(window_size) as window,
    ):
        video_driver = _video_driver() if window is not None else None
        pipeline = Pipeline(source, dreamer, state, ShowIO(window=window), threaded=True)
        pipeline.start_worker()
        try:
            _show_until(pipeline, WARMUP_DREAMS)
            _settle(pipeline, dreamer)
            pipeline.stats = whole_run_stats()
            started = time.perf_counter()
            shown = _show_until(pipeline, frames)
            elapsed = time.perf_counter() - started
        finally:
            pipeline.stop_worker()
        images = [source.read().image for _ in range(2)]
        # timed on a thread of its own, as the worker dreams: on a loaded CPU the main thread's
        # OpenMP team measured 5-50x slower than a fresh thread for the very same dream
        kernel_ms = _on_a_thread(lambda: kernel_timing(dreamer, images, frames))
    s = pipeline.stats
    dreams = s.dreams
    result = {
        "model": params.model,
        "layer": dreamer.layer_name,
        "backend": dreamer.backend.name,
        "provider": dreamer.backend.provider,
        "precision": dreamer.backend.precision,
        "choice": getattr(dreamer.backend, "reason", None),  # why `auto` chose it
        "device": str(device),
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
        "steps": params.steps,
        "warm_start": params.warm_start,
        "window": f"{window_size[0]}x{window_size[1]}" if window_size else None,
        "video_driver": video_driver,
        "torch_threads": torch.get_num_threads(),
        "frames": frames,
        "seconds": round(elapsed, 2),
        "fps": round(dreams / elapsed, 2),
        "dream_fps": round(dreams / elapsed, 2),
        "display_fps": round(shown / elapsed, 2),
        "camera_fps": camera_fps,
        "kernel_fps": round(1000.0 / kernel_ms[0], 2),
        "frame_ms_p50": round(s.frame_ms.p50, 2),
        "frame_ms_p99": round(s.frame_ms.p99, 2),
        "display_ms_p50": round(s.display_ms.p50, 2),
        "kernel_ms_p50": round(kernel_ms[0], 2),
        "kernel_ms_p99": round(kernel_ms[1], 2),
        "worker_dream_ms_p50": round(s.dream_ms.p50, 2),  # the loop's dream call, unsynchronised
        "worker_dream_ms_p99": round(s.dream_ms.p99, 2),
        "latency_ms_p50": round(s.latency_ms.p50, 2),
        "latency_ms_p99": round(s.latency_ms.p99, 2),
        "dream_latency_ms_p50": round(s.dream_latency_ms.p50, 2),
        "dream_latency_ms_p99": round(s.dream_latency_ms.p99, 2),
    }
    if compare_cold:
        cold_fps = _cold_fps(dreamer, min(cold_frames, frames))
        result.update(cold_frames=min(cold_frames, frames), cold_fps=round(cold_fps, 3))
        result["speedup"] = round(result["fps"] / cold_fps, 1)
    return result


def _settle(pipeline: Pipeline, dreamer: FrameDreamer, limit_s: float = 900.0) -> None:
    """Under `auto`, run the show until its choice is made (trials, a background export), so that
    the timed window measures the choice, not the measuring."""
    settled = getattr(dreamer.backend, "settled", None)
    started = time.perf_counter()
    while settled is not None and not settled() and time.perf_counter() - started < limit_s:
        pipeline.tick()


def _video_driver() -> str:
    import pygame

    return pygame.display.get_driver()


def _show_until(pipeline: Pipeline, dreams: int) -> int:
    """Run display turns until `dreams` more dreams have finished; returns the frames shown."""
    target = pipeline.stats.dreams + dreams
    shown_before = pipeline.stats.frames
    while pipeline.stats.dreams < target:
        pipeline.tick()
    return pipeline.stats.frames - shown_before


def bench_backends(device: torch.device, precision: str = "auto") -> list[str]:
    """The backends `--backend all` compares on this device at this precision (the ONNX export
    is fp32 only)."""
    usable = {
        "eager": True,
        "onnx": precision in ("auto", "fp32"),
        "cudagraph": device.type == "cuda",
    }
    return [b for b in BACKENDS if usable.get(b, False)]


# --- statistics ---------------------------------------------------------------------------------


def whole_run_stats() -> PipelineStats:
    """PipelineStats that keep every sample: the bench's p99 is the timed window's, not the
    HUD's rolling last 300."""
    stats = PipelineStats()
    for field in dataclasses.fields(stats):
        if isinstance(getattr(stats, field.name), Rolling):
            setattr(stats, field.name, Rolling(window=None))
    return stats


class KernelTimer:
    """Times calls as the device sees them: on CUDA, event pairs recorded on the current stream
    and read after one synchronisation (the GPU's time, not the launch's); elsewhere the clock."""

    def __init__(self, device: torch.device):
        self.device = device
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._wall_ms: list[float] = []

    def time(self, call: Callable[[], object]) -> None:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            self._events.append((start, end))
        else:
            started = time.perf_counter()
            call()
            self._wall_ms.append((time.perf_counter() - started) * 1000.0)

    def milliseconds(self) -> list[float]:
        if self._events:
            torch.cuda.synchronize(self.device)
            return [start.elapsed_time(end) for start, end in self._events]
        return list(self._wall_ms)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) over every sample."""
    if not samples:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(samples, dtype=np.float64), [50, 99])
    return float(p50), float(p99)


def kernel_timing(dreamer: FrameDreamer, images: Sequence[np.ndarray], runs: int) -> tuple[float, float]:
    """(p50, p99) milliseconds of the dream alone (the frame's steps over its octaves), `runs`
    times, after one warm-up with the same steps and octaves."""
    p = dreamer.effective  # what the live frames ran with: the governor's cap, the scaled step
    sources = [dreamer.source_tensor(image) for image in images]

    def dream(source: torch.Tensor) -> None:
        kernel.dream(source, dreamer.backend.run, p.steps, p.octaves, p.octave_scale)

    dream(sources[0])  # the same shapes as timed: nothing builds inside the timing
    timer = KernelTimer(dreamer.device)
    for i in range(runs):
        timer.time(lambda: dream(sources[i % len(sources)]))  # noqa: B023 - called at once
    return percentiles(timer.milliseconds())


def goal_ratios(rows: Sequence[dict]) -> dict:
    """The goal's ratios between backends measured in one run: cudagraph / eager and
    onnx / cudagraph, of the kernel rate and the dream rate (only pairs both measured)."""
    by_backend = {row["backend"]: row for row in rows}
    ratios = {}
    for faster, slower in (("cudagraph", "eager"), ("onnx", "cudagraph"), ("onnx", "eager")):
        if faster in by_backend and slower in by_backend:
            a, b = by_backend[faster], by_backend[slower]
            ratios[f"{faster}/{slower}"] = {
                key: round(a[key] / b[key], 3) if b[key] else None for key in ("kernel_fps", "dream_fps")
            }
    return ratios


def _on_a_thread(call: Callable[[], T]) -> T:
    """call() on a new thread (as the live loop's worker runs), its result or its exception here."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="dreamcam-bench-kernel")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cold_fps(dreamer: FrameDreamer, frames: int) -> float:
    """Frames per second of the classic loop: every frame dreamed from scratch, many steps."""
    p = dreamer.params
    with SyntheticSource(SOURCE_SIZE, paced=False) as source:
        images = [source.read().image for _ in range(frames + 1)]
    # one untimed cold frame with the very step count that is timed: the first use of each octave
    # size builds its convolution kernels (and, on cudagraph, its graph for that step count)
    kernel.dream(
        dreamer.source_tensor(images[0]), dreamer.backend.run, COLD_STEPS, COLD_OCTAVES, p.octave_scale
    )
    _synchronize(dreamer.device)
    started = time.perf_counter()
    for image in images[1:]:
        source = dreamer.source_tensor(image)
        kernel.dream(source, dreamer.backend.run, COLD_STEPS, COLD_OCTAVES, p.octave_scale)
    _synchronize(dreamer.device)
    return frames / (time.perf_counter() - started)
