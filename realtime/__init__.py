"""dreamcam's live program: sources, dream kernel, warm start, backends, pipeline, display, CLI.

`from realtime import LiveDreamer` is the embedding API (realtime.live); it is imported on first
use, so `import realtime` stays light (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["LiveDreamer", "__version__"]

if TYPE_CHECKING:
    from realtime.live import LiveDreamer


def __getattr__(name: str):
    if name == "LiveDreamer":
        from realtime.live import LiveDreamer

        return LiveDreamer
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")
