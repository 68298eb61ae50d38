"""FrameDreamer: one live frame in, its dream residual out.

Glues the pieces of one frame's dream: resize the camera frame to dream size, start from the
warm-start image, run the backend's k steps (over 1-2 octaves), keep the residual for the next
frame. Changing the model or layer rebuilds the truncated network and backend; every other
parameter is read live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np
import torch

from models.registry import Network, get_spec, load_network
from realtime.dream import kernel
from realtime.dream.backends import Backend, check_backend_name, create_backend
from realtime.dream.objectives import Objective, parse_objective
from realtime.dream.warmstart import WarmStart
from realtime.params import DreamParams

log = logging.getLogger(__name__)

WARM_STEP_FACTOR = 0.35


class FrameDreamer:
    def __init__(
        self,
        params: DreamParams,
        dream_size: tuple[int, int],
        device: torch.device,
        backend: str = "eager",
        weights: str | None = None,
        seed: int | None = None,
        network: Network | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.dream_size = dream_size  # (width, height)
        self.device = device
        check_backend_name(backend)
        self.backend_request = backend
        self.progress = progress
        self.generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.network = network or load_network(params.model, weights, device)
        self.weights = weights
        self.warm = WarmStart()
        self.params = params
        self.objective: Objective = parse_objective(params.layer, self.network.spec)
        self.backend = self._build_backend()

    # --- parameters -------------------------------------------------------------------------

    def spawn(self) -> FrameDreamer:
        """A fresh dreamer on the same loaded network (the watchdog's restart): new backend,
        new warm-start state, nothing shared that a hung predecessor might still be touching."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        return FrameDreamer(
            self.params,
            self.dream_size,
            self.device,
            self.backend_request,
            self.weights,
            seed,
            network=self.network,
            progress=self.progress,
        )

    def check(self, params: DreamParams) -> None:
        """Raise the DreamcamError `set_params` would raise, without building anything."""
        parse_objective(params.layer, get_spec(params.model))

    def set_params(self, params: DreamParams) -> None:
        """Apply new parameters between frames; rebuilds only what the change requires."""
        if params.model != self.network.spec.name:
            self.network = load_network(params.model, self.weights, self.device)
            self.warm.reset()
        objective = parse_objective(params.layer, self.network.spec)
        rebuild = params.model != self.params.model or str(objective) != str(self.objective)
        self.params, self.objective = params, objective
        if rebuild:
            self.backend = self._build_backend()
        else:
            self.backend.params = params

    def set_dream_size(self, size: tuple[int, int]) -> None:
        """Dream at another size from the next frame on; the warm residual is resized, not lost."""
        if size == self.dream_size:
            return
        self.dream_size = size
        if self.warm.residual is not None:
            width, height = size
            self.warm.residual = kernel.resize(self.warm.residual, (height, width))

    @property
    def layer_name(self) -> str:
        return str(self.objective)

    def _build_backend(self) -> Backend:
        return create_backend(
            self.backend_request,
            self.network,
            self.objective,
            self.params,
            self.generator,
            self.dream_size,
            self.progress,
        )

    # --- one frame ----------------------------------------------------------------------------

    def to_tensor(self, frame: np.ndarray) -> torch.Tensor:
        """An RGB uint8 frame at any size -> 1x3xHxW float in [0, 1] at dream size."""
        width, height = self.dream_size
        if frame.shape[1] != width or frame.shape[0] != height:
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(frame).to(self.device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def dream_tensor(self, source: torch.Tensor) -> torch.Tensor:
        """Warm start, k steps over the octaves, remember the residual; returns the dream."""
        p = self.params
        start = self.warm.initial(source, p)
        # a warm-started dream accumulates over frames, so each frame takes a third-size step: as deep
        # within a few frames, and far less flicker than full steps in a new direction every frame
        scale = WARM_STEP_FACTOR * self.warm.step_scale(p) if p.warm_start != "off" else 1.0
        self.backend.params = p.replace(lr=min(1.0, p.lr * scale)) if scale != 1.0 else p
        dreamt = kernel.dream(start, self.backend.run, p.steps, p.octaves, p.octave_scale)
        return self.warm.update(source, dreamt)

    def dream_residual(self, frame: np.ndarray) -> torch.Tensor:
        """The residual (dream − source) of one frame: 1x3xhxw on the dream's device, in pixel
        units (−255..255). It stays on the GPU there: the composer upscales and adds it there."""
        source = self.to_tensor(frame)
        dreamt = self.dream_tensor(source)
        return (dreamt - source).mul_(255.0)

    def dream_frame(self, frame: np.ndarray) -> np.ndarray:
        """`dream_residual` as an HxWx3 float32 numpy array (for OpenCV's compose)."""
        return self.dream_residual(frame).squeeze(0).permute(1, 2, 0).contiguous().cpu().numpy()
