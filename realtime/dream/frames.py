"""The one boundary between camera frames (numpy, HxWx3 uint8 RGB) and dream tensors (1x3xHxW).

Everything that crosses between OpenCV's world and torch's goes through here, so the layout
(channels first, [0, 1] for images, pixel units for residuals), the resize filter and the CPU's
memory format are decided once.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` at `size` (width, height); shrinking averages (INTER_AREA), no copy when it fits."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array onto `device` without a host sync: on CUDA through pinned memory (the
    caching host allocator reuses its blocks and keeps each alive until its copy has run, PyTorch
    CUDA semantics notes, "Use pinned memory buffers"), so the copy is truly asynchronous."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}
STAGING_BUFFERS = 4  # pinned buffers per shape at most; beyond that one buffer's copy is waited for


class Staging:
    """Pinned host buffers for uploads of one kind of array (a camera frame, a flow field), made
    once per shape and reused, so a steady frame allocates and pins nothing new.

    A buffer is written again only once the copy that read it has run: each upload records an
    event on the current stream after its copy, and a buffer whose event has not completed yet is
    skipped (`query`, which never waits). Normally one or two buffers are in flight; with
    STAGING_BUFFERS in flight the first one's copy is waited for (the GPU is that far behind:
    waiting is right).
    `pin` and `event`: CUDA's on a GPU; elsewhere plain buffers, each free again at once (no
    asynchronous copy reads them later); the CPU tests hand in counting fakes.
    """

    def __init__(
        self,
        device: torch.device,
        pin: Callable[[tuple[int, ...], torch.dtype], torch.Tensor] | None = None,
        event: Callable[[], object] | None = None,
    ):
        self.device = device
        cuda = device.type == "cuda"
        self._pin = pin or (lambda shape, dtype: torch.empty(shape, dtype=dtype, pin_memory=cuda))
        self._event = event or (torch.cuda.Event if cuda else None)
        self._buffers: list[tuple[torch.Tensor, object | None]] = []  # (buffer, its last copy's event)
        self._taken = 0  # the buffer `take` handed out last
        self.made = 0  # pinned buffers made so far (the tests count them)

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """`array` on the device, copied through a free pinned buffer without a host sync."""
        self.take(array.shape, TORCH_DTYPES[array.dtype])[...] = array
        return self.send()

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
        """A free pinned buffer of this shape to write the next upload into (then `send`)."""
        self._taken = self._free(tuple(shape), dtype)
        return self._buffers[self._taken][0].numpy()

    def send(self, into: torch.Tensor | None = None) -> torch.Tensor:
        """The buffer `take` handed out, copied to the device (asynchronously): into a new
        tensor, or into `into` (a graph's static input)."""
        buffer = self._buffers[self._taken][0]
        if into is not None:
            moved = into.copy_(buffer, non_blocking=True)
        elif self.device.type == "cpu":
            moved = buffer.clone()  # the buffer is written again by the next upload
        else:
            moved = buffer.to(self.device, non_blocking=True)
        if self._event is not None:
            event = self._event()
            event.record()  # on the current stream, after the copy that reads `buffer`
            self._buffers[self._taken] = (buffer, event)
        return moved

    def _free(self, shape: tuple[int, ...], dtype: torch.dtype) -> int:
        if self._buffers and (
            tuple(self._buffers[0][0].shape) != shape or self._buffers[0][0].dtype != dtype
        ):
            self._buffers.clear()  # a new size: the old buffers go back to the caching host allocator
        for index, (_, event) in enumerate(self._buffers):
            if event is None or event.query():
                return index
        if len(self._buffers) >= STAGING_BUFFERS:
            self._buffers[0][1].synchronize()
            return 0
        self._buffers.append((self._pin(shape, dtype), None))
        self.made += 1
        return len(self._buffers) - 1


def image_tensor(
    image: np.ndarray, size: tuple[int, int], device: torch.device, staging: Staging | None = None
) -> torch.Tensor:
    """An RGB uint8 frame at any size -> 1x3xHxW float in [0, 1] at `size` (width, height);
    through `staging`'s pinned buffers when given (the live dreamer's), else `upload`'s."""
    frame = resized(image, size)
    x = upload(frame, device) if staging is None else staging.upload(np.ascontiguousarray(frame))
    x = x.permute(2, 0, 1).unsqueeze(0).div(255.0)  # uint8 / a float: float32, in one op
    if device.type == "cpu":  # oneDNN's convolutions are fastest on NHWC
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def residual_array(residual: torch.Tensor) -> np.ndarray:
    """A 1x3xhxw residual (pixel units) -> hxwx3 float32 numpy, for OpenCV (a download on a GPU)."""
    return residual.detach()[0].permute(1, 2, 0).float().contiguous().cpu().numpy()


def residual_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """`residual_array` back: hxwx3 float32 -> 1x3xhxw on `device`."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0).to(device)


def grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxW uint8 grey at `size` (width, height): what optical flow reads."""
    return cv2.cvtColor(resized(image, size), cv2.COLOR_RGB2GRAY)
