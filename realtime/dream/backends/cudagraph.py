"""The CUDA-graph backend: a frame's whole k-step update captured once, replayed every frame.

Launching a few hundred small kernels per step costs more than they compute at live dream sizes;
a CUDA graph replays the captured launches in one go. Everything a replay reads lives in static
buffers: the image, the jitter table of gather indices (each frame's random offsets are copied into
it, so jitter needs no re-capture), the step size and the TV weight. The captured function is the
kernel's own `gradient_steps`, which the CPU tests check. Only what changes the
graph's shape re-captures: the objective, the image size or the step count (see `capture_key`).

Half precision (autocast to bf16 or fp16) is used where it keeps the objective gain within 5 % of
fp32 on a probe image; the image and its update stay fp32 either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from models.registry import DreamNet
from realtime.dream import kernel
from realtime.dream.backends.base import (
    Shape,
    objective_value,
    pinned_jitter_table,
    precision_name,
    random_shifts,
)
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

HALF_GAIN_TOLERANCE = 0.05
WARMUP_ITERATIONS = 3  # on a side stream before capture, as torch.cuda.graphs requires


@dataclass(frozen=True)
class CaptureKey:
    """What a captured graph is specific to; anything else is a buffer written before replay."""

    objective: str
    height: int
    width: int
    steps: int
    dtype: torch.dtype


def capture_key(objective: Objective, height: int, width: int, steps: int, dtype: torch.dtype) -> CaptureKey:
    return CaptureKey(str(objective), height, width, steps, dtype)


class _Capture:
    """One captured graph and its static buffers."""

    def __init__(self, net, objective, key: CaptureKey, device: torch.device):
        self.key = key
        self.x = torch.zeros(1, 3, key.height, key.width, device=device)
        self.jitter = kernel.jitter_table([(0, 0)] * key.steps, key.height, key.width).to(device)
        self.lr = torch.zeros((), device=device)
        self.tv_weight = torch.zeros((), device=device)
        dtype = key.dtype if key.dtype != torch.float32 else None
        args = (net, objective, self.x, self.jitter, self.lr, self.tv_weight, dtype)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_ITERATIONS):
                kernel.gradient_steps(*args)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out, _ = kernel.gradient_steps(*args)

    def replay(
        self, x: torch.Tensor, shifts: list[tuple[int, int]], lr: float, tv_weight: float
    ) -> torch.Tensor:
        self.x.copy_(x)
        # the whole frame's jitter in one asynchronous copy (not a few tiny launches per step)
        self.jitter.copy_(
            pinned_jitter_table(shifts, self.key.height, self.key.width, self.x.device), non_blocking=True
        )
        self.lr.fill_(lr)
        self.tv_weight.fill_(tv_weight)
        self.graph.replay()
        return self.out.clone()  # the static output is overwritten by the next replay


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
        self._captures: dict[CaptureKey, _Capture] = {}

    @property
    def provider(self) -> str:
        return "cuda graph"

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Capture a graph for every (height, width, steps) at the chosen precision."""
        for height, width, steps in sorted(set(shapes)):
            self._capture_for(height, width, steps)

    def is_prepared(self, shape: Shape) -> bool:
        return capture_key(self.objective, *shape, self.dtype) in self._captures

    def close(self) -> None:
        self._captures.clear()

    def choose_precision(self, probe: torch.Tensor, steps: int) -> torch.dtype:
        """bf16 (or fp16) when its objective gain on `probe` is within 5 % of fp32's, else fp32."""
        candidates = [torch.bfloat16] if torch.cuda.is_bf16_supported() else [torch.float16]
        gains = {}
        for dtype in [torch.float32, *candidates]:
            self.dtype = dtype
            out = self.run(probe, steps)
            gains[dtype] = self.objective_value(out) / max(self.objective_value(probe), 1e-8)
        half = candidates[0]
        close = abs(gains[half] - gains[torch.float32]) <= HALF_GAIN_TOLERANCE * gains[torch.float32]
        self.dtype = half if close else torch.float32
        log.info(
            "cudagraph precision: %s (gain fp32 %.3f, %s %.3f)",
            self.dtype,
            gains[torch.float32],
            half,
            gains[half],
        )
        return self.dtype

    def _capture_for(self, height: int, width: int, steps: int) -> _Capture:
        key = capture_key(self.objective, height, width, steps, self.dtype)
        if key not in self._captures:
            log.info("capturing CUDA graph for %s", key)
            self._captures[key] = _Capture(self.net, self.objective, key, self.device)
        return self._captures[key]

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        p = self.params
        capture = self._capture_for(x.shape[-2], x.shape[-1], steps)
        return capture.replay(x, random_shifts(self.generator, p.jitter, steps), p.lr, p.tv_weight)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)
