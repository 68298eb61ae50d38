"""The one boundary between camera frames (numpy, HxWx3 uint8 RGB) and dream tensors (1x3xHxW).

Everything that crosses between OpenCV's world and torch's goes through here, so the layout
(channels first, [0, 1] for images, pixel units for residuals), the resize filter and the CPU's
memory format are decided once.
"""

from __future__ import annotations

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


def image_tensor(image: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """An RGB uint8 frame at any size -> 1x3xHxW float in [0, 1] at `size` (width, height)."""
    x = upload(resized(image, size), device)
    x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
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
