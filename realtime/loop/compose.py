"""Compose: the small dream residual, upscaled, added onto the full-resolution camera frame.

Upscaling the residual rather than the dreamed image keeps the camera's detail sharp while the
dream itself runs at a fraction of the resolution. `Composer.compose` is the one entry point;
`add_upscaled` (OpenCV, CPU) and `add_upscaled_tensor` (torch, the GPU path) do the arithmetic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from realtime.dream import frames


def add_upscaled(frame: np.ndarray, residual: np.ndarray | None, gain: float = 1.0) -> np.ndarray:
    """frame: HxWx3 uint8; residual: hxwx3 float32 in pixel units, shown `gain` times its size
    (the audio's swell). Returns HxWx3 uint8."""
    if residual is None:
        return frame
    if gain != 1.0:  # at dream size: a fraction of the full frame's pixels
        residual = residual * np.float32(gain)
    height, width = frame.shape[:2]
    if residual.shape[:2] != (height, width):
        residual = cv2.resize(residual, (width, height), interpolation=cv2.INTER_LINEAR)
    # a saturating add straight into uint8: no float copy of the full-resolution frame
    return cv2.add(frame, residual, dtype=cv2.CV_8U)


def add_upscaled_tensor(frame: torch.Tensor, residual: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """`add_upscaled` in torch: HxWx3 uint8 frame + gain x 1x3xhxw residual, upscaled -> HxWx3 uint8."""
    height, width = frame.shape[:2]
    image = frame.permute(2, 0, 1).unsqueeze(0).float()
    big = torch.nn.functional.interpolate(residual, size=(height, width), mode="bilinear")
    return image.add_(big, alpha=gain).round_().clamp_(0, 255).to(torch.uint8).squeeze(0).permute(1, 2, 0)


class Composer:
    """Composes camera frames with the dream's residual, on the dream's device.

    CPU: the residual is brought to numpy once per residual (the display reuses it for every
    camera frame until the next one) and OpenCV adds it. GPU: all the display's CUDA work (the
    tracker's warp, the upscale and add) runs on a stream of its own, inside `turn`, which holds
    the worker's build lock without waiting for it (no CUDA call from the display while a graph is
    captured); the stream waits on each new dream's event, not on the device; frames go up and
    come down through pinned buffers.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.guarded = device.type == "cuda"  # the display's CUDA work respects the build lock
        self._residual_of: torch.Tensor | None = None  # held, so its id cannot be reused by a new tensor
        self._residual_np: np.ndarray | None = None
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._pinned: dict[tuple, torch.Tensor] = {}

    @contextlib.contextmanager
    def turn(self, build_lock) -> Iterator[bool]:
        """One display frame's device work. False: a build holds the GPU, show the camera alone."""
        if not self.guarded:
            yield True
            return
        with build_lock.display_turn() as free:
            if not free:
                yield False
                return
            with self._on_stream():
                yield True

    def _on_stream(self):
        return torch.cuda.stream(self._stream) if self._stream is not None else contextlib.nullcontext()

    def wait_for(self, ready: torch.cuda.Event | None, residual: torch.Tensor) -> None:
        """Order the display's stream after a new dream's residual was written (its event only).
        The residual was made on the worker's stream and is read on this one (the tracker, a
        playlist fade, the compose): tell the caching allocator so (Tensor.record_stream), or it
        could hand the memory out again while this stream still reads it."""
        if self._stream is None:
            return
        if ready is not None:
            self._stream.wait_event(ready)
        residual.record_stream(self._stream)

    def compose(
        self, frame: np.ndarray, residual: torch.Tensor | np.ndarray | None, gain: float = 1.0
    ) -> np.ndarray:
        """The camera frame (HxWx3 uint8) with the residual (1x3xhxw tensor or, on the CPU, the
        tracker's hxwx3 array; pixel units) added, `gain` times its size (the audio's swell: the
        dream as shown, never the dream carried to the next frame)."""
        if residual is None:
            return frame
        if isinstance(residual, np.ndarray):
            return add_upscaled(frame, residual, gain)
        if self._stream is None:
            return add_upscaled(frame, self._as_numpy(residual), gain)
        return self._compose_on_gpu(frame, residual, gain)

    def _as_numpy(self, residual: torch.Tensor) -> np.ndarray:
        if residual is not self._residual_of:
            self._residual_np = frames.residual_array(residual)
            self._residual_of = residual
        return self._residual_np

    def _pinned_like(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        key = (name, shape)
        if key not in self._pinned:  # allocated once per frame size, reused every frame
            self._pinned[key] = torch.empty(shape, dtype=torch.uint8).pin_memory()
        return self._pinned[key]

    def _compose_on_gpu(self, frame: np.ndarray, residual: torch.Tensor, gain: float) -> np.ndarray:
        """Call inside `turn` (the display's stream is current)."""
        upload = self._pinned_like("in", frame.shape)  # read by the copy below, synchronised before reuse
        # a new output each frame, from torch's caching host allocator (pinned blocks are reused
        # once nothing holds them): the recorder may still queue the last frames, so no buffer
        # is overwritten under it, and no copy is made
        download = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
        upload.numpy()[...] = frame
        out = add_upscaled_tensor(upload.to(self.device, non_blocking=True), residual, gain)
        download.copy_(out, non_blocking=True)
        self._stream.synchronize()  # this stream only: the frame is needed on the host now
        return download.numpy()
