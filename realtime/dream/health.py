"""Is a dream still a picture? The last line of defence after validation.

A dream that went non-finite (NaN spreads through the warm start and never leaves: every later
frame would be black) or collapsed to one colour while the camera shows detail is thrown away:
the caller shows the camera frame and drops the carried dream, so the next frame starts clean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from realtime.dream.tensor_ops import spread

COLLAPSE_RATIO = 0.05  # a dream with under this share of the source's contrast has lost the picture
MIN_SOURCE_STD = 0.02  # a camera frame flatter than this (lens cap, black screen) may dream flat


def fault_figures(dream: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The three numbers the verdict needs, on the dream's device: sum, std of dream and source."""
    return torch.stack([dream.sum(), spread(dream), spread(source)])


class FaultCheck:
    """Why a dream (its `fault_figures`) is not a picture of its source, without a host sync on a GPU.

    Immediate on the CPU (reading three numbers back costs nothing there). Deferred on a GPU: the
    figures of a dream are copied into pinned host memory with an event recorded after them, and
    read once that event has completed (`query`, which never waits), a frame or two later. A NaN
    spreads through the warm start and never leaves, so a late verdict still catches it; the
    caller then drops the carried dream exactly as for an immediate one.
    """

    def __init__(
        self,
        deferred: bool,
        event: Callable[[], object] | None = None,
        download: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    ):
        """`event` and `download` (host buffer, device figures): CUDA's by default; the CPU
        tests hand in fakes to run the deferred path on a device whose tensors hold no data."""
        self.deferred = deferred
        self._event = event or (lambda: torch.cuda.Event())
        self._download = download or (lambda host, figures: host.copy_(figures, non_blocking=True))
        self._pending: tuple[torch.Tensor, object] | None = None

    def check(self, figures: torch.Tensor) -> str | None:
        """The fault these `fault_figures` show (the dream's tail makes them), or None; deferred on
        a GPU: the verdict on an earlier dream's figures, once they have reached the host."""
        if not self.deferred:
            return verdict(figures.tolist())
        fault = None
        if self._pending is not None and self._pending[1].query():
            fault = verdict(self._pending[0].tolist())  # host memory, already written
            self._pending = None
        if self._pending is None:
            host = torch.empty(3, dtype=figures.dtype, pin_memory=figures.device.type == "cuda")
            self._download(host, figures)
            event = self._event()
            event.record()
            self._pending = (host, event)
        return fault

    def reset(self) -> None:
        """Forget the pending figures (after a verdict dropped the carried dream)."""
        self._pending = None


def verdict(figures: list[float]) -> str | None:
    """The fault the figures (sum, dream std, source std) show, or None."""
    total, dream_std, source_std = figures
    if total != total or abs(total) == float("inf"):  # NaN or inf somewhere in the dream
        return "the dream went non-finite (NaN)"
    if source_std > MIN_SOURCE_STD and dream_std < COLLAPSE_RATIO * source_std:
        return "the dream collapsed to one colour"
    return None
