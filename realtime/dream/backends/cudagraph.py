"""The CUDA-graph backend: a frame's whole k-step update captured once, replayed every frame.

Launching a few hundred small kernels per step costs more than they compute at live dream sizes;
a CUDA graph replays the captured launches in one go. The captured function is the kernel's own
`gradient_steps` (the CPU tests check it). Everything a replay reads lives in static buffers: the
image, the jitter table (each frame's offsets arrive in one copy, so jitter needs no re-capture),
the step size and the TV weight. Only a new shape captures: image size, step count, precision.

Written to the PyTorch notes "CUDA Graphs" (docs.pytorch.org/docs/stable/notes/cuda.html#cuda-graphs):
- whole-network capture: warm up on a side stream before capturing, and capture on that same
  stream (`torch.cuda.graph(..., stream=)`, as its docs ask when a pool is shared);
- graph memory management: every capture shares one private pool (`graph_pool_handle`). Sharing is
  safe here because replays are serialised on one stream and each replay's output is copied out
  before the next replay, so no graph ever reads memory another graph's replay wrote;
- no host sync, no CPU tensors, static shapes and no autocast cache inside the captured region
  (see realtime.dream.kernel).
The dream's tail after the step (realtime.dream.tail: momentum, depth gate, anchor, residual) is
captured the same way per dream size, in the same pool, on the same stream (`tail`); its outputs
are copied out after each replay like the step's.
A capture that fails is not retried: that shape runs its fp32 graph (when a half-precision capture
failed) or eager, from then on, with one log line; `captured` and `provider` then say so (the
HUD, the bench JSON), never "cuda graph" for a step that launches op by op.
The cache holds at most MAX_GRAPHS graphs (least recently used goes first): run-time shapes are
snapped to the prepared set upstream (realtime.show.playlist, realtime.audio.mapping), so this
bound only stops an unforeseen source of shapes from eating the GPU's memory.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

import torch

from models.registry import DreamNet
from realtime.dream import kernel
from realtime.dream.backends.base import (
    Shape,
    jitter_on,
    objective_value,
    pinned_jitter_table,
    precision_name,
    random_shifts,
)
from realtime.dream.objectives import Objective
from realtime.dream.tail import TailGraph
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

HALF_GAIN_TOLERANCE = 0.05
PRECISION_PROBES = 3  # jitter draws the precision probe averages over (one draw is noisy)
PROBE_SEED = 20261130  # the probe's own jitter draws: the show's generator is never consumed
MAX_GRAPHS = 64  # governor sizes x steps x octaves of one look fit; an LRU bound beyond that
WARMUP_ITERATIONS = 3  # the notes' example warms up 3 iterations: cuDNN autotuning, lazy inits

G = TypeVar("G")
R = TypeVar("R")
CaptureKey = tuple[int, int, int, torch.dtype]
"""(height, width, steps, dtype): what a captured graph is specific to. The objective is fixed
per backend (a new objective builds a new backend)."""


class _Capture:
    """One captured graph and its static buffers."""

    def __init__(self, backend: CudaGraphBackend, key: CaptureKey):
        height, width, steps, dtype = key
        device = backend.device
        self.height, self.width = height, width
        self.x = torch.zeros(1, 3, height, width, device=device)
        self.jitter = kernel.jitter_table([(0, 0)] * steps, height, width).to(device)
        self.lr = torch.zeros((), device=device)
        self.tv_weight = torch.zeros((), device=device)
        half = dtype if dtype != torch.float32 else None
        args = (backend.net, backend.objective, self.x, self.jitter, self.lr, self.tv_weight, half)
        self.graph, (self.out, _) = backend.record(lambda: kernel.gradient_steps(*args))

    def replay(
        self, x: torch.Tensor, shifts: list[tuple[int, int]], lr: float, tv_weight: float
    ) -> torch.Tensor:
        self.x.copy_(x)
        # the frame's whole jitter table in one asynchronous copy, not a few launches per step
        table = pinned_jitter_table(shifts, self.height, self.width, self.x.device)
        self.jitter.copy_(table, non_blocking=True)
        self.lr.fill_(lr)
        self.tv_weight.fill_(tv_weight)
        self.graph.replay()
        return self.out.clone()  # the static output is overwritten by the next replay


def record(function: Callable[[], R], stream: torch.cuda.Stream, pool) -> tuple[torch.cuda.CUDAGraph, R]:
    """`function` (of static buffers only) captured as a CUDA graph: the graph and its static
    outputs. The notes' whole-network recipe: WARMUP_ITERATIONS runs on the side stream `stream`
    (which first waits for the current stream, where the static inputs were written), the current
    stream waits for them, then the capture on that same stream into the shared `pool`. A replay
    runs on the caller's current stream (the dream worker's)."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_ITERATIONS):
            function()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool, stream=stream):
        outputs = function()
    return graph, outputs


def describe_step(key: CaptureKey) -> str:
    height, width, steps, dtype = key
    return f"{width}x{height}, {steps} steps, {precision_name(dtype)}"


def describe_tail(key: CaptureKey) -> str:
    return f"the dream's tail at {key[1]}x{key[0]}"


class GraphCache(Generic[G]):
    """Which graph runs a shape. Policy only, no CUDA (the CPU tests run it): a graph is captured
    on first use; a failed capture is never retried, and its shape falls back to its fp32 graph
    (when a half-precision capture failed) or to eager (None), with one log line."""

    def __init__(
        self,
        capture: Callable[[CaptureKey], G],
        limit: int = MAX_GRAPHS,
        describe: Callable[[CaptureKey], str] = describe_step,
    ):
        self._capture, self.limit, self.describe = capture, limit, describe
        self.graphs: OrderedDict[CaptureKey, G] = OrderedDict()  # least recently used first
        self.failed: set[CaptureKey] = set()
        self.ran: dict[Shape, CaptureKey | None] = {}  # what really ran each shape: a graph, or eager

    def get(self, shape: Shape, dtype: torch.dtype) -> G | None:
        graph = self._get(shape, dtype)
        self.ran[shape] = None if graph is None else self._key_of(shape, dtype)
        return graph

    @property
    def captured(self) -> bool:
        """Whether every shape run so far replayed a graph (False: some shape runs eager)."""
        return all(key is not None for key in self.ran.values())

    def eager_shapes(self) -> list[Shape]:
        return sorted(shape for shape, key in self.ran.items() if key is None)

    def _key_of(self, shape: Shape, dtype: torch.dtype) -> CaptureKey:
        key = (*shape, dtype)
        return key if key in self.graphs else (*shape, torch.float32)

    def _get(self, shape: Shape, dtype: torch.dtype) -> G | None:
        key = (*shape, dtype)
        if key in self.graphs:
            self.graphs.move_to_end(key)
            return self.graphs[key]
        if key not in self.failed:
            try:
                log.info("capturing a CUDA graph: %s", self.describe(key))
                self.graphs[key] = self._capture(key)
                while len(self.graphs) > self.limit:
                    evicted, _ = self.graphs.popitem(last=False)
                    log.info("CUDA graph cache full: freed the least recently used (%s)", evicted[:3])
                return self.graphs[key]
            except Exception as exc:  # a driver, memory or capture problem must not stop the show
                self.failed.add(key)
                log.warning(
                    "CUDA graph capture failed for %s (%s: %s); that shape runs %s from now",
                    self.describe(key),
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    "eager" if dtype == torch.float32 else "in fp32",
                )
        return None if dtype == torch.float32 else self._get(shape, torch.float32)

    def is_ready(self, shape: Shape, dtype: torch.dtype) -> bool:
        """Whether `get` answers without capturing."""
        key = (*shape, dtype)
        if key in self.graphs:
            return True
        if key not in self.failed:
            return False
        return dtype == torch.float32 or self.is_ready(shape, torch.float32)

    def keep_only(self, dtype: torch.dtype) -> None:
        """Free the graphs of other precisions: after a precision choice nothing reaches them."""
        for key in [k for k in self.graphs if k[3] != dtype]:
            del self.graphs[key]

    def clear(self) -> None:
        self.graphs.clear()
        self.failed.clear()
        self.ran.clear()


def probe_gains(
    run: Callable[[torch.Tensor, list[tuple[int, int]], torch.dtype], torch.Tensor],
    value: Callable[[torch.Tensor], float],
    probe: torch.Tensor,
    steps: int,
    jitter: int,
    dtypes: Sequence[torch.dtype],
    probes: int = PRECISION_PROBES,
) -> dict[torch.dtype, float]:
    """Each precision's objective gain on `probe` (value after / before), averaged over `probes`
    jitter draws; every precision runs the very same draws (from a generator of the probe's own,
    so the show's jitter sequence is not consumed)."""
    draws = torch.Generator().manual_seed(PROBE_SEED)
    shift_sets = [random_shifts(draws, jitter, steps) for _ in range(probes)]
    base = max(value(probe), 1e-8)
    return {
        dtype: sum(value(run(probe, shifts, dtype)) for shifts in shift_sets) / (probes * base)
        for dtype in dtypes
    }


def half_is_close(gains: dict[torch.dtype, float], half: torch.dtype) -> bool:
    full = gains[torch.float32]
    return abs(gains[half] - full) <= HALF_GAIN_TOLERANCE * full


class CudaGraphBackend:
    name = "cudagraph"

    def __init__(self, net: DreamNet, objective: Objective, params: DreamParams, generator: torch.Generator):
        if not torch.cuda.is_available():
            raise BackendError("the cudagraph backend needs a CUDA GPU; use --backend eager or onnx")
        self.net, self.objective, self.params, self.generator = net, objective, params, generator
        self.device = next(net.buffers()).device
        if self.device.type != "cuda":
            raise BackendError("the cudagraph backend needs the model on the GPU; use --device cuda")
        self.dtype = torch.float32
        self.capture_stream = torch.cuda.Stream(self.device)
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: GraphCache[_Capture] = GraphCache(self._capture)
        # the dream's tail (realtime.dream.tail) per dream size, beside the steps' graphs: fp32
        # always (it works on the images), keyed (height, width, 0, fp32)
        self.tails: GraphCache[TailGraph] = GraphCache(self._capture_tail, describe=describe_tail)

    # --- the contract ---------------------------------------------------------------------

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    @property
    def captured(self) -> bool:
        """False once any shape's step or tail runs eager after a failed capture (the bench's
        `captured`)."""
        return self.graphs.captured and self.tails.captured

    @property
    def provider(self) -> str:
        """What really runs: "cuda graph", or which steps and tails run eager after a failed capture."""
        failed = []
        if eager := self.graphs.eager_shapes():
            failed.append("eager at " + ", ".join(f"{w}x{h}" for h, w, _ in eager[:3]))
        if eager := self.tails.eager_shapes():
            failed.append("tail eager at " + ", ".join(f"{w}x{h}" for h, w, _ in eager[:3]))
        return "cuda graph" + "".join(f", {f}" for f in failed) + (" (capture failed)" if failed else "")

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Capture a graph for every (height, width, steps) at the chosen precision, and the tail's
        for every size among them (a dream size's tail, and a few small ones at octave sizes that
        only a dream that small uses: cheaper than telling them apart here)."""
        for shape in sorted(set(shapes)):
            self.graphs.get(shape, self.dtype)
            self.tail(*shape[:2])

    def is_prepared(self, shape: Shape) -> bool:
        return self.graphs.is_ready(shape, self.dtype) and self.tails.is_ready((*shape[:2], 0), torch.float32)

    def tail(self, height: int, width: int) -> TailGraph | None:
        """The captured tail at this dream size (captured now if it is not yet), or None where its
        capture failed: the caller then runs `warm_tail` eagerly, the same maths."""
        return self.tails.get((height, width, 0), torch.float32)

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return self._run(x, random_shifts(self.generator, self.params.jitter, steps), self.dtype)

    def _run(self, x: torch.Tensor, shifts: list[tuple[int, int]], dtype: torch.dtype) -> torch.Tensor:
        p = self.params
        height, width = x.shape[-2:]
        steps = len(shifts)
        capture = self.graphs.get((height, width, steps), dtype)
        if capture is None:  # this shape could not be captured: eager, the same maths
            jitter = jitter_on(shifts, height, width, self.device)
            x, _ = kernel.gradient_steps(self.net, self.objective, x, jitter, p.lr, p.tv_weight)
            return x
        return capture.replay(x, shifts, p.lr, p.tv_weight)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)

    def close(self) -> None:
        """Drop every graph; the shared pool goes back to the caching allocator with the last one."""
        self.graphs.clear()
        self.tails.clear()

    # --- precision ------------------------------------------------------------------------

    def use_precision(self, dtype: torch.dtype) -> None:
        """Run in `dtype` from now on; graphs of the other precisions are freed (unreachable)."""
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise BackendError("this GPU has no bf16; use --precision fp16 or fp32")
        self.dtype = dtype
        self.graphs.keep_only(dtype)

    def choose_precision(self, probe: torch.Tensor, steps: int) -> torch.dtype:
        """bf16 (or fp16) when its objective gain on `probe` is within 5 % of fp32's, else fp32:
        both with the same jitter draws, averaged over PRECISION_PROBES (`probe_gains`). The probe
        is only meaningful with the real weights (see create_backend)."""
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        gains = probe_gains(
            self._run, self.objective_value, probe, steps, self.params.jitter, (torch.float32, half)
        )
        self.graphs.ran.clear()  # the probe's runs are not the show's
        close = half_is_close(gains, half)
        captured = (*probe.shape[-2:], steps, half) not in self.graphs.failed
        chosen = half if close and captured else torch.float32
        self.use_precision(chosen)
        log.info(
            "cudagraph precision: %s (objective gain fp32 %.3f, %s %.3f)",
            precision_name(chosen),
            gains[torch.float32],
            precision_name(half),
            gains[half],
        )
        return chosen

    # --- captures -------------------------------------------------------------------------

    def record(self, function: Callable[[], R]) -> tuple[torch.cuda.CUDAGraph, R]:
        """`record` on this backend's capture stream, into its shared pool."""
        return record(function, self.capture_stream, self.pool)

    def _capture(self, key: CaptureKey) -> _Capture:
        try:
            return _Capture(self, key)
        except Exception:
            torch.cuda.synchronize(self.device)  # let the aborted capture's work settle first
            raise

    def _capture_tail(self, key: CaptureKey) -> TailGraph:
        try:
            return TailGraph(key[0], key[1], self.device, self.record)
        except Exception:
            torch.cuda.synchronize(self.device)
            raise
