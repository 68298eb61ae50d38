"""The eager backend: the reference kernel step run by plain PyTorch autograd, on any device."""

from __future__ import annotations

import torch

from models.registry import DreamNet
from realtime.dream import kernel
from realtime.dream.backends.base import SteppingBackend
from realtime.dream.objectives import Objective
from realtime.params import DreamParams


class EagerBackend(SteppingBackend):
    name = "eager"

    def __init__(self, net: DreamNet, objective: Objective, params: DreamParams, generator: torch.Generator):
        self.net, self.objective, self.params, self.generator = net, objective, params, generator

    def step(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        shift = kernel.random_shift(self.generator, p.jitter)
        return kernel.step(self.net, x, self.objective, p.lr, shift, p.tv_weight)
