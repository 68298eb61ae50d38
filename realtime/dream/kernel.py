"""The DeepDream kernel: gradient ascent on an image, pure torch, no I/O.

One step, on an image x with pixel values in [0, 1]:

    g = ∇x [objective(net(roll(x, jitter))) − tv_weight · TV(x)]
    x ← clamp(x + lr · g / mean|g|, 0, 1)

`dream` wraps steps in an octave pyramid (classic DeepDream: dream small, carry the detail up).
The same kernel serves a still image (many steps, several octaves) and the live loop (1-4 steps,
1-2 octaves, started from the warm-start image).

`step` is the one implementation of the step: the eager backend runs it, the cudagraph backend
captures it and the ONNX export traces it (k at a time, `gradient_steps`). So it is capturable:
the jitter arrives as a table of gather indices (`jitter_table`), step size and TV weight may be
tensors, shapes are static and nothing reads a value back to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from realtime.dream.objectives import Objective

# --- transforms -------------------------------------------------------------------------------


def random_shift(generator: torch.Generator, max_px: int) -> tuple[int, int]:
    """A jitter offset (dy, dx) in [-max_px, max_px]: rolling the image each step hides the
    network's stride grid, which would otherwise print itself into the dream."""
    if max_px == 0:
        return 0, 0
    dy, dx = torch.randint(-max_px, max_px + 1, (2,), generator=generator).tolist()
    return dy, dx


def jitter_table(shifts: Sequence[tuple[int, int]], height: int, width: int) -> torch.Tensor:
    """Gather indices for each step's jitter, one row per step: [rows | cols | rows_back | cols_back]
    (length 2·height + 2·width). Gathering with `rows`, `cols` rolls the image by (dy, dx), like
    torch.roll; `*_back` roll its gradient back. Built on the host, int64, on the CPU."""
    rows, cols = torch.arange(height), torch.arange(width)
    return torch.stack(
        [
            torch.cat([(rows - dy) % height, (cols - dx) % width, (rows + dy) % height, (cols + dx) % width])
            for dy, dx in shifts
        ]
    )


def roll(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x rolled by gathering rows, then columns (torch.roll with the offset held in tensors)."""
    return x.index_select(2, rows).index_select(3, cols)


# --- regularisers -----------------------------------------------------------------------------


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels: penalising it keeps dreams from noise."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


# --- the step ---------------------------------------------------------------------------------

Net = Callable[[torch.Tensor], dict]


def step(
    net: Net,
    objective: Objective,
    x: torch.Tensor,
    jitter: torch.Tensor,
    lr: torch.Tensor | float,
    tv_weight: torch.Tensor | float,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One gradient step; returns (the new image, the objective before it). `jitter` is one row of
    `jitter_table`; `autocast_dtype` (bf16/fp16) runs the network in half precision, while the
    image and its update stay in x's dtype."""
    height, width = x.shape[-2:]
    rows, cols, rows_back, cols_back = jitter.split([height, width, height, width])
    with torch.enable_grad():  # callers may run under no_grad (inference code paths)
        shifted = roll(x.detach(), rows, cols).requires_grad_(True)
        with _autocast(x.device, autocast_dtype):
            features = net(shifted)
            value = objective(features).float()
        loss = value - tv_weight * total_variation(shifted) if _weighs(tv_weight) else value
        # scaled so that half-precision gradients stay normal numbers (see Objective.gradient_scale)
        (grad,) = torch.autograd.grad(loss * objective.gradient_scale(features), shifted)
    grad = roll(grad, rows_back, cols_back)
    return (x + lr * grad / (grad.abs().mean() + 1e-8)).clamp(0.0, 1.0), value.detach()


def gradient_steps(
    net: Net,
    objective: Objective,
    x: torch.Tensor,
    jitter: torch.Tensor,
    lr: torch.Tensor | float,
    tv_weight: torch.Tensor | float,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`step` once per row of the jitter table; returns (image, objective before the last step)."""
    value = torch.zeros(())
    for k in range(jitter.shape[0]):
        x, value = step(net, objective, x, jitter[k], lr, tv_weight, autocast_dtype)
    return x, value


def _weighs(weight: torch.Tensor | float) -> bool:
    """Whether a regulariser's term must be computed. A number 0 (every look's TV weight) skips
    its forward and backward passes; a tensor weight may change between replays of a traced or
    captured step without a rebuild, and reading it back would sync, so it is always computed."""
    return isinstance(weight, torch.Tensor) or weight != 0


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()  # no autocast context at all: nothing extra to trace
    # no autocast weight cache: graph capture requires that (PyTorch CUDA graphs notes, "Usage with
    # torch.cuda.amp"), and the cache buys nothing here as each weight is cast once per forward
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


# --- octaves ----------------------------------------------------------------------------------


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from smallest to full, each `scale` times the previous (never below 16 px)."""
    sizes = []
    for i in reversed(range(octaves)):
        sizes.append((max(16, round(height / scale**i)), max(16, round(width / scale**i))))
    return sizes


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def dream(
    image: torch.Tensor,
    run_steps: Callable[[torch.Tensor, int], torch.Tensor],
    steps: int,
    octaves: int = 1,
    octave_scale: float = 1.4,
) -> torch.Tensor:
    """Classic DeepDream over an octave pyramid; `run_steps(x, k)` performs k gradient steps.

    The detail (dream − image) found at each octave is upscaled and carried to the next, so big
    structures form at low resolution and fine texture at full resolution.
    """
    height, width = image.shape[-2:]
    detail = None
    for size in octave_sizes(height, width, octaves, octave_scale):
        base = resize(image, size)
        x = base if detail is None else (base + resize(detail, size)).clamp_(0.0, 1.0)
        x = run_steps(x, steps)
        detail = x - base
    return (image + resize(detail, (height, width))).clamp_(0.0, 1.0)
