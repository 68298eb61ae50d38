"""What every backend shares: k steps are k calls of `step`, and the objective for the HUD."""

from __future__ import annotations

import torch


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
