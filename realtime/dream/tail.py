"""The dream's tail: everything a frame does on the device after its gradient step, as one function.

A warm frame's step is followed by about forty small operations: the momentum blend and its
debiasing, the depth gate, the clamp, the fault check's three figures, the anchor to the camera's
colours and the residual in pixel units. Op by op on a GPU each is a kernel launch that costs more
than it computes at live sizes. `warm_tail` is all of it as one tensor function, the same on every
device (the CPU runs it as it is); where the backend can capture (cudagraph), `TailGraph` captures
it once per dream size beside the step's graphs and a frame replays it: five copies in, one replay,
four copies out. Its per-frame numbers (the momentum's weight, the depth) live in a static buffer
that one asynchronous copy fills, so nothing is re-captured when they change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from realtime.dream import frames
from realtime.dream.health import fault_figures
from realtime.dream.warmstart import MOMENTUM, anchor, blend, depth_gate

Tail = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""(push, residual, pixels, figures): the momentum carried to the next frame, the anchored dream's
residual (dream − source, [−1, 1]), the same in pixel units for the display, and the fault check's
figures (realtime.dream.health.fault_figures of the dream before the anchor)."""


def gate_depth(depth: float) -> float:
    """The depth the gate runs with: `depth` itself below 1, else infinity (1 means no limit; a
    gate at infinite depth multiplies by exactly 1.0, so one captured tail serves every depth)."""
    return depth if depth < 1.0 else math.inf


def anchored(dreamt: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(residual, pixels, figures) of a dream: anchored to the source's colours (warmstart.anchor)."""
    figures = fault_figures(dreamt, source)
    residual = anchor(dreamt, source) - source
    return residual, residual * 255.0, figures


def warm_tail(
    start: torch.Tensor,
    source: torch.Tensor,
    change: torch.Tensor,
    push: torch.Tensor,
    weight: float | torch.Tensor,
    depth: float | torch.Tensor,
    momentum: float = MOMENTUM,
) -> Tail:
    """A warm frame after its step (`change`: what the step changed, at dream size): blended into
    the carried `push` (in place) and debiased by `weight` (WarmStart.momentum), faded out where
    the carried dream is `depth` deep (`gate_depth` of the look's), added to `start`, anchored.
    `weight` and `depth` are numbers on the CPU and 0-dim device tensors in a captured graph."""
    if momentum > 0.0:
        push = blend(push, change, momentum)
        change = push / weight
    change = change * depth_gate(start - source, depth)
    dreamt = (start + change).clamp_(0.0, 1.0)
    return (push, *anchored(dreamt, source))


Record = Callable[[Callable[[], Tail]], tuple[Any, Tail]]
"""Captures a function of static buffers: returns the graph (whose `replay()` runs it again) and
its static outputs (realtime.dream.backends.cudagraph.record on a GPU; the CPU tests hand in a fake)."""


class TailGraph:
    """`warm_tail` captured for one dream size: static inputs copied in, one replay, outputs
    copied out (the next replay overwrites the static outputs; the residual goes to the display's
    stream and the push to the next frame, so each gets a tensor of its own)."""

    def __init__(self, height: int, width: int, device: torch.device, record: Record):
        shape = (1, 3, height, width)
        self.inputs = tuple(
            torch.zeros(shape, device=device) for _ in range(4)
        )  # start, source, change, push
        self.numbers = torch.ones(2, device=device)  # the momentum's weight and the gate's depth
        self.staging = frames.Staging(device)  # the numbers go up through a reused pinned buffer
        weight, depth = self.numbers.unbind()
        self.graph, self.outputs = record(lambda: warm_tail(*self.inputs, weight, depth))

    def __call__(
        self,
        start: torch.Tensor,
        source: torch.Tensor,
        change: torch.Tensor,
        push: torch.Tensor,
        weight: float,
        depth: float,
    ) -> Tail:
        for static, value in zip(self.inputs, (start, source, change, push), strict=True):
            static.copy_(value)
        numbers = self.staging.take((2,), torch.float32)
        numbers[0], numbers[1] = weight, depth
        self.staging.send(into=self.numbers)
        self.graph.replay()
        push, residual, pixels, figures = (output.clone() for output in self.outputs)
        return push, residual, pixels, figures
