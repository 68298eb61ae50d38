"""The eager backend: the kernel's step run by plain PyTorch autograd, on any device."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from models.registry import DreamNet
from realtime.dream import kernel
from realtime.dream.backends import base
from realtime.dream.objectives import Objective
from realtime.params import DreamParams


class EagerBackend:
    name = "eager"
    captured = False  # op by op, always

    def __init__(
        self,
        net: DreamNet,
        objective: Objective,
        params: DreamParams,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ):
        self.net, self.objective, self.params, self.generator = net, objective, params, generator
        self.device = next(net.buffers()).device
        self.dtype = dtype  # the network's precision (autocast); the image stays fp32

    @property
    def precision(self) -> str:
        return base.precision_name(self.dtype)

    @property
    def provider(self) -> str:
        return f"torch {self.device.type}"

    def prepare(self, shapes: Iterable[base.Shape]) -> None:
        """Nothing to build on the CPU or MPS. On CUDA one step per shape, so that cuDNN's
        autotuner (cudnn.benchmark) has picked its kernels before the show."""
        if self.device.type != "cuda":
            return
        for height, width, _ in set(shapes):
            x = torch.full((1, 3, height, width), 0.5, device=self.device)
            jitter = kernel.jitter_table([(0, 0)], height, width).to(self.device)
            kernel.gradient_steps(self.net, self.objective, x, jitter, 0.0, 0.0, self.dtype)

    def is_prepared(self, shape: base.Shape) -> bool:
        return True

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        p = self.params
        jitter = base.jitter_on(base.random_shifts(self.generator, p.jitter, steps), *x.shape[-2:], x.device)
        x, _ = kernel.gradient_steps(self.net, self.objective, x, jitter, p.lr, p.tv_weight, self.dtype)
        return x

    def objective_value(self, x: torch.Tensor) -> float:
        return base.objective_value(self.net, self.objective, x)

    def close(self) -> None:
        pass
