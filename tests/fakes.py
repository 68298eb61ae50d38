"""Test doubles shared by several test modules."""

import time
from types import SimpleNamespace

import numpy as np
import torch

from realtime.params import DreamParams


class SlowDreamer:
    """Stands in for FrameDreamer: each dream takes `seconds` and adds a constant residual."""

    def __init__(self, seconds: float, fail_on: set[int] = frozenset()):
        self.seconds, self.fail_on, self.calls = seconds, fail_on, 0
        self.params = DreamParams()
        self.layer_name = "block5"
        self.backend = SimpleNamespace(name="fake", provider="fake", precision="fp32")
        self.device = torch.device("cpu")
        self.dream_size = self.requested_size = (32, 18)
        self.effective = self.params
        self.network = SimpleNamespace(spec=SimpleNamespace(layers=("block5",)))
        self.warm = SimpleNamespace(motion=0.0)

    def flow_on_thread(self) -> None:
        pass

    def look_ahead(self, image: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass

    def residual(self, image: np.ndarray) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.seconds)
        if self.calls in self.fail_on:
            raise RuntimeError("the GPU driver hiccuped")
        return torch.full((1, 3, 18, 32), 40.0)

    def check(self, params: DreamParams) -> None:
        pass

    def needs_build(self) -> bool:
        return False

    def prepare(self, shapes) -> None:
        pass

    def frame_shapes(self) -> list:
        return [(18, 32, self.params.steps)]

    def set_params(self, params: DreamParams) -> None:
        self.params = self.effective = params
