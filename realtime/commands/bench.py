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

A bench that cannot lie (`compare_backends`): each backend runs `--repeats` times, the order
alternating round by round (eager, onnx, cudagraph, then cudagraph, onnx, eager...), so a GPU that
warms up or throttles favours none; every figure of a row is the median over its repeats. A
backend that fails (a missing onnxruntime-gpu, a capture that breaks) becomes a row saying why,
the others are still measured and printed, and the command exits non-zero at the end. Labels say
what ran: `captured` (a CUDA graph replayed, not just asked for) and `tf32` (on CUDA, whether fp32
matrix products and convolutions may round through TF32, which makes "fp32" faster than fp32).
`--budget-s` stops starting new rounds once spent, so `make bench-gpu` ends in bounded time.

`--profile` (`profile_stages`) times one frame's stages apart: upload, flow, warm start (its flow
excluded), step, anchor (with the fault check), compose, download. CUDA events on a GPU (each
stage's GPU time, read after one synchronisation at the end) beside the host's perf_counter
(launch and CPU time; all there is on a CPU), p50 and p99 over the frames.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from models.registry import load_network
from realtime.commands.options import (
    add_backend_options,
    add_dream_options,
    add_preset_option,
    add_threads_option,
    device_and_size,
    dream_params,
    finite,
    set_threads,
)
from realtime.control.plane import ShowState
from realtime.dream import frames, kernel
from realtime.dream.backends import BACKENDS
from realtime.dream.backends.onnx_export import print_progress
from realtime.dream.dreamer import FrameDreamer, build_dreamer
from realtime.errors import ConfigError, DreamcamError
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.loop.stats import PipelineStats, Rolling
from realtime.params import WARM_START_MODES, DreamParams, parse_size

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
    network=None,
) -> dict:
    camera_fps = camera_fps or (GPU_CAMERA_FPS if device.type == "cuda" else CPU_CAMERA_FPS)
    dreamer = build_dreamer(
        params,
        dream_size,
        device,
        backend,
        weights,
        seed,
        network=network,
        progress=print_progress,
        precision=precision,
    )
    state = ShowState(params, dreamer.network.spec.layers)
    with (
        SyntheticSource(source_size(dream_size), paced=True, fps=camera_fps) as source,
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
        **labels(params, dreamer, device, dream_size),
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


def labels(params: DreamParams, dreamer: FrameDreamer, device: torch.device, dream_size) -> dict:
    """What ran, as a row's labels: the look, the backend, whether it really replayed a graph."""
    return {
        "model": params.model,
        "layer": dreamer.layer_name,
        "backend": dreamer.backend.name,
        "provider": dreamer.backend.provider,
        "precision": dreamer.backend.precision,
        "choice": getattr(dreamer.backend, "reason", None),  # why `auto` chose it
        "captured": bool(getattr(dreamer.backend, "captured", False)),
        "tf32": tf32_state(device),
        "device": str(device),
        "device_name": device_name(device),
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
        "steps": params.steps,
        "warm_start": params.warm_start,
    }


def source_size(dream_size: tuple[int, int]) -> tuple[int, int]:
    """The synthetic camera's size: 640x360, or the dream's own where that is larger (a full-HD
    dream is dreamt from a full-HD frame, not an upscaled one)."""
    return max(SOURCE_SIZE, dream_size, key=lambda size: size[0] * size[1])


def tf32_state(device: torch.device) -> dict | None:
    """On CUDA: whether fp32 matrix products and cuDNN convolutions may use TF32 (cuDNN's default
    is yes); None elsewhere."""
    if device.type != "cuda":
        return None
    return {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


# --- the comparison -------------------------------------------------------------------------------


def alternating_orders(backends: Sequence[str], repeats: int) -> list[list[str]]:
    """One order per round: as given, then reversed, and so on."""
    return [list(backends) if r % 2 == 0 else list(reversed(backends)) for r in range(repeats)]


def compare_backends(
    backends: Sequence[str],
    measure: Callable[[str], dict],
    repeats: int = 1,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict]:
    """Every backend measured `repeats` times in alternating order; one row each, the medians of
    its repeats. A backend that raises becomes {"backend", "ok": false, "error"} and is not tried
    again; the others go on. No new round starts once `budget_s` is spent."""
    check_budget(budget_s)
    started = clock()
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    errors: dict[str, str] = {}
    for round_index, order in enumerate(alternating_orders(backends, repeats)):
        if round_index and budget_s is not None and clock() - started >= budget_s:
            break
        for backend in order:
            if backend in errors:
                continue
            try:
                runs[backend].append(measure(backend))
            except Exception as exc:  # noqa: BLE001 - the row says why; the other backends go on
                message = str(exc).splitlines()[0] if str(exc) else ""
                errors[backend] = f"{type(exc).__name__}: {message}"
    rows = []
    for backend in backends:
        if backend in errors and not runs[backend]:
            rows.append({"backend": backend, "ok": False, "error": errors[backend]})
        else:
            row = median_row(runs[backend])
            row.update(ok=backend not in errors, repeats=len(runs[backend]))
            if backend in errors:
                row["error"] = errors[backend]
            rows.append(row)
    return rows


def median_row(runs: Sequence[dict]) -> dict:
    """The first run's labels with every number replaced by the median over the runs."""
    row = dict(runs[0])
    for key, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
            median = statistics.median(values)
            whole = all(isinstance(v, int) for v in values) and float(median).is_integer()
            row[key] = int(median) if whole else round(median, 3)
    if len(runs) > 1:
        row["kernel_fps_runs"] = [run.get("kernel_fps") for run in runs]
    return row


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
    is fp32 only; OpenVINO runs it on the CPU, where its wheel installs)."""
    from realtime.dream.backends.openvino import openvino_available

    usable = {
        "eager": True,
        "onnx": precision in ("auto", "fp32"),
        "openvino": precision in ("auto", "fp32") and device.type == "cpu" and openvino_available(),
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
    """The goal's ratios between backends measured in one run: cudagraph / eager, onnx / cudagraph,
    openvino / eager and onnx, of the kernel rate and the dream rate (only pairs both measured)."""
    by_backend = {row["backend"]: row for row in rows}
    ratios = {}
    pairs = (
        ("cudagraph", "eager"),
        ("onnx", "cudagraph"),
        ("onnx", "eager"),
        ("openvino", "eager"),
        ("openvino", "onnx"),
    )
    for faster, slower in pairs:
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


# --- per-stage profile --------------------------------------------------------------------------


class StageTimer:
    """Times named stages: host time (perf_counter) always, GPU time (CUDA events on the current
    stream, read after one synchronisation in `report`) on CUDA. A stage timed inside another is
    excluded from the outer one's host time (the flow inside the warm start)."""

    def __init__(self, device: torch.device, clock: Callable[[], float] = time.perf_counter):
        self.cuda = device.type == "cuda"
        self.device, self.clock = device, clock
        self.host_ms: dict[str, list[float]] = defaultdict(list)
        self._events: dict[str, list[tuple]] = defaultdict(list)
        self._inner: list[float] = []  # host ms spent in nested stages, one entry per open stage

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        events = None
        if self.cuda:
            events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            events[0].record()
        self._inner.append(0.0)
        started = self.clock()
        try:
            yield
        finally:
            elapsed = (self.clock() - started) * 1000.0
            inner = self._inner.pop()
            self.host_ms[name].append(elapsed - inner)
            if self._inner:
                self._inner[-1] += elapsed
            if events is not None:
                events[1].record()
                self._events[name].append(events)

    def report(self) -> dict:
        """{stage: {host_ms_p50, host_ms_p99, gpu_ms_p50, gpu_ms_p99}} (GPU figures None off CUDA)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
        out = {}
        for name, samples in self.host_ms.items():
            host = percentiles(samples)
            gpu = percentiles([a.elapsed_time(b) for a, b in self._events[name]]) if self.cuda else None
            out[name] = {
                "host_ms_p50": round(host[0], 3),
                "host_ms_p99": round(host[1], 3),
                "gpu_ms_p50": round(gpu[0], 3) if gpu else None,
                "gpu_ms_p99": round(gpu[1], 3) if gpu else None,
            }
        return out


class _TimedFlow:
    """The warm start's flow estimator with its calls timed as the "flow" stage."""

    def __init__(self, estimator, timer: StageTimer):
        self.estimator, self.timer = estimator, timer

    def __getattr__(self, name: str):
        method = getattr(self.estimator, name)
        if not callable(method):
            return method

        def timed(*args, **kwargs):
            with self.timer.stage("flow"):
                return method(*args, **kwargs)

        return timed


STAGES = ("upload", "flow", "warm start", "step", "anchor", "compose", "download")


def profile_stages(
    params: DreamParams,
    dream_size: tuple[int, int],
    device: torch.device,
    backend: str = "auto",
    frames_to_time: int = 60,
    weights: str | None = None,
    seed: int | None = 0,
    precision: str = "auto",
) -> dict:
    """One frame's stages timed apart, `frames_to_time` frames after WARMUP_DREAMS untimed ones:
    what the worker does for a dream (FrameDreamer.residual, stage by stage) and what the display
    does with it (compose at the source's size, and the residual's download)."""
    from realtime.dream.flow import FlowEstimator
    from realtime.loop.compose import Composer

    dreamer = build_dreamer(
        params, dream_size, device, backend, weights, seed, progress=print_progress, precision=precision
    )
    dreamer.prepare(dreamer.frame_shapes())
    composer = Composer(device)
    with SyntheticSource(source_size(dream_size), paced=False) as source:
        images = [source.read().image for _ in range(WARMUP_DREAMS + frames_to_time)]
    timer = StageTimer(device)
    warm = dreamer.warm
    for index, image in enumerate(images):
        if index == WARMUP_DREAMS:
            timer = StageTimer(device)  # the warm-up's samples (builds, first runs) are dropped
        if hasattr(warm, "_flow"):
            flow = warm._flow.estimator if isinstance(warm._flow, _TimedFlow) else warm._flow
            warm._flow = _TimedFlow(flow or FlowEstimator(), timer)
        _profile_frame(dreamer, composer, image, timer)
    stages = timer.report()
    return {
        "profile": {name: stages[name] for name in STAGES if name in stages},
        **labels(params, dreamer, device, dream_size),
        "source_size": "{}x{}".format(*source_size(dream_size)),
        "frames": frames_to_time,
        "timer": "CUDA events and perf_counter" if device.type == "cuda" else "perf_counter",
        # against realtime.dream.budget's estimate (BYTES_PER_DREAM_PIXEL), which is the CPU's
        "gpu_memory_peak_gib": (
            round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None
        ),
    }


def _profile_frame(dreamer: FrameDreamer, composer, image: np.ndarray, timer: StageTimer) -> None:
    """FrameDreamer.residual, stage by stage (the same calls in the same order), then the display."""
    p = dreamer.params
    with timer.stage("upload"):
        source = dreamer.source_tensor(image)
        grey = frames.grey(image, dreamer.dream_size) if p.warm_start != "off" else None
    with timer.stage("warm start"):
        start = dreamer.warm.initial(source, p, grey)
    with timer.stage("step"):
        stepped = dreamer.run_steps(start)
    with timer.stage("anchor"):  # the tail: momentum, depth gate, fault check, anchor, residual
        residual = dreamer.finish(start, source, stepped)
    with timer.stage("compose"):
        composer.compose(image, residual)
    with timer.stage("download"):
        frames.residual_array(residual)


def add_arguments(bench: argparse.ArgumentParser) -> None:
    add_dream_options(bench, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
    add_preset_option(bench)
    bench.add_argument("--dream-size", default=None)
    bench.add_argument("--warm-start", default=DreamParams.warm_start, choices=WARM_START_MODES)
    bench.add_argument("--persistence", type=finite, default=DreamParams.persistence)
    bench.add_argument("--stillness-boost", type=finite, default=DreamParams.stillness_boost)
    bench.add_argument(
        "--window",
        default="1920x1080",
        metavar="WxH|none",
        help="the show window's size (off-screen without a display; default 1920x1080); none: no window",
    )
    add_threads_option(bench)
    add_backend_options(bench, (*BACKENDS, "all"))
    bench.add_argument("--frames", type=int, default=60, help="dreams to time (default 60)")
    bench.add_argument(
        "--camera-fps", type=finite, default=None, help="synthetic camera rate (default 30 CPU, 240 GPU)"
    )
    bench.add_argument("--compare-cold", action="store_true", help="also time the classic cold-start loop")
    bench.add_argument(
        "--repeats", type=int, default=1, help="runs per backend, in alternating order; rows are medians"
    )
    bench.add_argument(
        "--budget-s", type=finite, default=None, help="start no new round of repeats after this many seconds"
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="time one frame's stages apart (upload, flow, warm start, step, anchor, compose, download)",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")


def check_budget(budget_s: float | None) -> None:
    if budget_s is not None and budget_s <= 0:  # -1 was accepted, and meant "no round after the first"
        raise ConfigError(f"--budget-s must be a number of seconds above 0, got {budget_s:g}")


def run(args: argparse.Namespace) -> int:
    check_budget(args.budget_s)
    if args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.repeats < 1:
        raise DreamcamError(f"--repeats must be at least 1, got {args.repeats}")
    if args.camera_fps is not None and not 1.0 <= args.camera_fps <= 1000.0:
        raise DreamcamError(f"--camera-fps must be 1..1000 frames a second, got {args.camera_fps:g}")
    params = dream_params(
        args, warm_start=args.warm_start, persistence=args.persistence, stillness_boost=args.stillness_boost
    )
    device, dream_size = device_and_size(args)
    window = None if args.window.lower() == "none" else parse_size(args.window)
    set_threads(args, device)
    if args.profile:
        if args.backend == "all":
            raise DreamcamError("--profile times one backend; choose it with --backend")
        profile = profile_stages(
            params, dream_size, device, args.backend, args.frames, args.weights, args.seed, args.precision
        )
        print(json.dumps(profile))
        return 0
    backends = bench_backends(device, args.precision) if args.backend == "all" else [args.backend]
    network = load_network(params.model, args.weights, device)  # once, for every backend and repeat

    def measure(backend: str) -> dict:
        return run_bench(
            params,
            dream_size,
            device,
            backend,
            args.frames,
            args.compare_cold,
            weights=args.weights,
            seed=args.seed,
            camera_fps=args.camera_fps,
            precision=args.precision,
            window_size=window,
            network=network,
        )

    if args.backend != "all" and args.repeats == 1:
        print(json.dumps(measure(args.backend)))  # one backend: its error is the command's
        return 0
    rows = compare_backends(backends, measure, args.repeats, args.budget_s)
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"dreamcam bench: backend {row['backend']} failed: {row['error']}", file=sys.stderr)
    if args.backend == "all":
        measured = [row for row in rows if "kernel_fps" in row]
        print(json.dumps({"backends": rows, "ratios": goal_ratios(measured), "ok": not failed}))
    else:
        print(json.dumps(rows[0]))
    return 1 if failed else 0
