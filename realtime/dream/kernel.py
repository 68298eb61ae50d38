"""The DeepDream kernel: gradient ascent on an image, pure torch, no I/O.

One step, on an image x with pixel values in [0, 1]:

    g = ∇x [objective(net(roll(x, jitter))) − tv_weight · TV(x)]
    x ← clamp(x + lr · g / mean|g|, 0, 1)

`dream` wraps steps in an octave pyramid (classic DeepDream: dream small, carry the detail up).
The same kernel serves a still image (many steps, several octaves) and the live loop (1-4 steps,
1-2 octaves, started from the warm-start image). How a step is executed (eager, captured in a CUDA
graph, exported to ONNX) is the backends' business; `step` below is the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from realtime.dream.objectives import Objective

StepFn = Callable[[torch.Tensor], torch.Tensor]


# --- transforms -------------------------------------------------------------------------------


def random_shift(generator: torch.Generator, max_px: int) -> tuple[int, int]:
    """A jitter offset (dy, dx) in [-max_px, max_px]: rolling the image each step hides the
    network's stride grid, which would otherwise print itself into the dream."""
    if max_px == 0:
        return 0, 0
    dy, dx = torch.randint(-max_px, max_px + 1, (2,), generator=generator).tolist()
    return dy, dx


def roll(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    return torch.roll(x, shifts=shift, dims=(2, 3)) if shift != (0, 0) else x


# --- regularisers -----------------------------------------------------------------------------


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels: penalising it keeps dreams from noise."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


# --- the step ---------------------------------------------------------------------------------


def ascent_direction(
    net: Callable[[torch.Tensor], dict],
    x: torch.Tensor,
    objective: Objective,
    shift: tuple[int, int],
    tv_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(gradient normalised by its mean magnitude, objective value) at x, seen through a jitter."""
    with torch.enable_grad():  # callers may run under no_grad (inference code paths)
        shifted = roll(x.detach(), shift).requires_grad_(True)
        value = objective(net(shifted))
        loss = value - tv_weight * total_variation(shifted) if tv_weight else value
        (grad,) = torch.autograd.grad(loss, shifted)
    grad = roll(grad, (-shift[0], -shift[1]))
    return grad / (grad.abs().mean() + 1e-8), value.detach()


def step(
    net: Callable[[torch.Tensor], dict],
    x: torch.Tensor,
    objective: Objective,
    lr: float,
    shift: tuple[int, int],
    tv_weight: float = 0.0,
) -> torch.Tensor:
    direction, _ = ascent_direction(net, x, objective, shift, tv_weight)
    return (x + lr * direction).clamp_(0.0, 1.0)


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
