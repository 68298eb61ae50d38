"""What every backend shares: k steps are k calls of `step`, the objective for the HUD, and the
jitter table moved to the image's device."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from realtime.dream import kernel


class SteppingBackend:
    """Backends that run a frame's steps one `step` call at a time (eager, onnx)."""

    net: torch.nn.Module
    objective: object

    def step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        for _ in range(steps):
            x = self.step(x)
        return x

    @torch.no_grad()
    def objective_value(self, x: torch.Tensor) -> float:
        return float(self.objective(self.net(x)))


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
