"""The eager backend: the kernel's step run by plain PyTorch autograd, on any device."""

from __future__ import annotations

import torch

from models.registry import DreamNet
from realtime.dream import kernel
from realtime.dream.backends.base import SteppingBackend, jitter_on
from realtime.dream.objectives import Objective
from realtime.params import DreamParams


class EagerBackend(SteppingBackend):
    name = "eager"

    def __init__(self, net: DreamNet, objective: Objective, params: DreamParams, generator: torch.Generator):
        self.net, self.objective, self.params, self.generator = net, objective, params, generator

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        p = self.params
        shifts = [kernel.random_shift(self.generator, p.jitter) for _ in range(steps)]
        jitter = jitter_on(shifts, x.shape[-2], x.shape[-1], x.device)
        x, _ = kernel.gradient_steps(self.net, self.objective, x, jitter, p.lr, p.tv_weight)
        return x

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, 1)
