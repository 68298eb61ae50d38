"""The backend contract, and what the backends share.

A backend is built for one DreamNet and objective. Step size, jitter and TV weight are read from
its `params` on every `run`, so changing them never rebuilds anything; only a new shape (image
size, step count) may need building (an export, a capture), and `prepare` does that ahead of the
show for every shape the show can reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import torch

from realtime.dream import kernel
from realtime.dream.objectives import Objective
from realtime.params import DreamParams

Shape = tuple[int, int, int]
"""(height, width, steps): what one `run` call is specific to."""

PRECISIONS = ("fp32", "bf16", "fp16")


@runtime_checkable
class Backend(Protocol):
    """What the dreamer, the bench and the HUD may ask of any backend."""

    name: str  # "eager", "onnx", "cudagraph"
    params: DreamParams  # read on every run: lr, jitter, tv_weight

    @property
    def provider(self) -> str:
        """What really runs the step, for the HUD and bench JSON ("torch cpu", "CUDAExecutionProvider")."""
        ...

    @property
    def precision(self) -> str:
        """The precision the network runs in: one of PRECISIONS."""
        ...

    @property
    def captured(self) -> bool:
        """Whether the step replays a captured graph (cudagraph; onnx with onnxruntime's CUDA
        graph): False for op-by-op launches, including after a failed capture."""
        ...

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Build (export, capture, first run) whatever `run` needs at each shape, now, so that no
        frame of the show waits for a build. Idempotent."""
        ...

    def is_prepared(self, shape: Shape) -> bool:
        """Whether `run` at `shape` starts at once; False means its first run builds (a watchdog
        should report "building", not a stall)."""
        ...

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """`steps` gradient steps on x (1x3xHxW in [0, 1], on the network's device)."""
        ...

    def objective_value(self, x: torch.Tensor) -> float:
        """The objective at x, for HUDs and tests."""
        ...

    def close(self) -> None:
        """Free what the backend holds (graphs, sessions); it is not used afterwards."""
        ...


@torch.no_grad()
def objective_value(net: torch.nn.Module, objective: Objective, x: torch.Tensor) -> float:
    return float(objective(net(x)))


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def pinned_jitter_table(shifts: Sequence[tuple[int, int]], height: int, width: int, device: torch.device):
    """`kernel.jitter_table`, ready to copy to `device` in one launch without a host sync.

    On CUDA the table is pinned so that `copy_(..., non_blocking=True)` is truly asynchronous; the
    caching host allocator keeps a pinned block alive until the copy that reads it has run (PyTorch
    CUDA semantics notes, "Use pinned memory buffers"), so a fresh table per frame is safe.
    """
    table = kernel.jitter_table(shifts, height, width)
    return table.pin_memory() if device.type == "cuda" else table


def jitter_on(
    shifts: Sequence[tuple[int, int]], height: int, width: int, device: torch.device
) -> torch.Tensor:
    """The jitter table for `shifts` on `device` (one asynchronous copy on CUDA)."""
    return pinned_jitter_table(shifts, height, width, device).to(device, non_blocking=True)


def random_shifts(generator: torch.Generator, max_px: int, steps: int) -> list[tuple[int, int]]:
    """One jitter offset per step, drawn on the host from the backend's generator."""
    return [kernel.random_shift(generator, max_px) for _ in range(steps)]
