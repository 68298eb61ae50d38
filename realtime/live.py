"""`LiveDreamer`: dreamcam's live dream as one call, for embedding (TouchDesigner's Script TOP, a
notebook, another program's render loop).

    from realtime import LiveDreamer
    d = LiveDreamer(preset="eyes")
    out = d(frame_rgb_uint8)  # HxWx3 uint8 in, the same size out

It is the live show's dreamer, not a copy: the same kernel, warm start (each call deepens the
dream of the last one, moved along the optical flow in `flow` mode) and backend selection
(`backend="auto"`: cudagraph on a GPU, eager on a CPU), and the same compose (the small residual
upscaled onto the full-size frame). torch loads when the first LiveDreamer is made, not on
`import realtime`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realtime.errors import ConfigError
from realtime.params import DreamParams

CPU_DREAM_SIZE, GPU_DREAM_SIZE = (320, 180), (640, 360)


class LiveDreamer:
    """Call it with consecutive frames (HxWx3 uint8 RGB); `reset()` at a cut to start afresh."""

    def __init__(
        self,
        preset: str | None = None,
        *,
        params: DreamParams | None = None,
        dream_size: tuple[int, int] | None = None,
        device: str = "auto",
        backend: str = "auto",
        weights: str | None = None,
        seed: int | None = 0,
        **changes: Any,
    ):
        """`preset`: a bundled look's name ("eyes", see `dreamcam looks`) or a preset file; or
        `params`; or neither (the defaults). `changes` override single fields (layer="block8")."""
        # lazy: `import realtime` must stay light for hosts that only look at it
        from models.registry import get_spec
        from realtime.dream.backends import onnx_export, resolve_device
        from realtime.dream.dreamer import build_dreamer
        from realtime.loop.compose import Composer
        from realtime.show.presets import load_look

        if preset is not None and params is not None:
            raise ConfigError("give LiveDreamer a preset or params, not both")
        look = load_look(preset) if preset is not None else (params or DreamParams())
        look = look.replace(**changes) if changes else look
        if look.layer is None:
            look = look.replace(layer=get_spec(look.model).default_layer)
        torch_device = resolve_device(device)
        size = dream_size or (GPU_DREAM_SIZE if torch_device.type == "cuda" else CPU_DREAM_SIZE)
        _check_dream_size(size, look.model, torch_device)
        self._dreamer = build_dreamer(
            look, size, torch_device, backend, weights, seed, progress=onnx_export.print_progress
        )
        self._composer = Composer(torch_device)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """The dreamed frame: same size, uint8 RGB; warm-started from the previous call's dream."""
        _check_frame(frame)
        self._check_open()
        residual = self._dreamer.residual(np.ascontiguousarray(frame))
        return self._composer.compose(frame, residual)

    @property
    def params(self) -> DreamParams:
        self._check_open()
        return self._dreamer.params

    def set(self, **changes: Any) -> None:
        """Change the look between frames (layer="block8", lr=0.05...); validated like OSC input."""
        self._check_open()
        params = self._dreamer.params.replace(**changes)
        self._dreamer.check(params)
        self._dreamer.set_params(params)

    def _check_open(self) -> None:
        if self._dreamer is None:
            raise ConfigError("this LiveDreamer is closed; make a new one")

    def close(self) -> None:
        """Let go of the network and its buffers (GPU memory too); a closed dreamer cannot dream."""
        if self._dreamer is None:
            return
        device = self._dreamer.device
        self._dreamer = self._composer = None
        if device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def __enter__(self) -> LiveDreamer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the carried dream (a scene cut): the next frame starts from the camera picture."""
        self._check_open()
        self._dreamer.warm.reset()

    @property
    def backend(self) -> str:
        """The backend in use after `auto` chose ("eager", "cudagraph", "onnx")."""
        self._check_open()
        return self._dreamer.backend.name

    def activation(self, frame: np.ndarray) -> float:
        """How strongly the look's layer (its objective) fires on `frame`, at dream size."""
        import torch

        _check_frame(frame)
        self._check_open()
        with torch.no_grad():
            source = self._dreamer.source_tensor(np.ascontiguousarray(frame))
            return self._dreamer.backend.objective_value(source)


def _check_dream_size(size: Any, model: str, device) -> None:
    """The CLI's checks of --dream-size: two whole numbers 16..8192 that fit in the device's memory."""
    from realtime.dream.budget import check_dream_size

    ok = isinstance(size, tuple | list) and len(size) == 2
    ok = ok and all(isinstance(n, int) and not isinstance(n, bool) and 16 <= n <= 8192 for n in size)
    if not ok:
        raise ConfigError(
            f"LiveDreamer dream_size must be (width, height), each 16..8192 pixels, got {size!r}"
        )
    check_dream_size(tuple(size), model, device)


def _check_frame(frame: Any) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ConfigError(f"LiveDreamer takes HxWx3 uint8 RGB frames, got shape {shape} {dtype}")
    if min(frame.shape[:2]) < 16:
        raise ConfigError(
            f"LiveDreamer needs frames of at least 16x16 pixels, got {frame.shape[1]}x{frame.shape[0]}"
        )
