"""What a split render is asked to do, as plain data: how every chunk dreams (DreamRecipe) and how
the render is split (SplitOptions). Apart from the modules that act on them, so the command's
options (realtime.cluster.options) can make them without importing the worker or the driver."""

from __future__ import annotations

from dataclasses import dataclass

from realtime.cluster.plan import CROSSFADE, WARM_UP
from realtime.params import DreamParams


@dataclass(frozen=True)
class DreamRecipe:
    """How every chunk builds its dreamer: the render's look and options, the same on every node."""

    params: DreamParams
    dream_size: tuple[int, int]
    backend: str = "eager"
    weights: str | None = None
    precision: str = "auto"
    seed: int | None = None
    zoom: float | None = None  # a still's zoom video: each frame zooms into the last dream
    threads: int = 1  # torch's CPU threads in each worker


@dataclass(frozen=True)
class SplitOptions:
    workers: int | None = None  # a local runtime of N CPUs (with a cluster: at most N chunks at once)
    cluster: str | None = None  # an existing cluster's address
    shared_path: bool = False  # the input's path is the same on every node: no copy through the store
    use_gpus: bool = True  # chunks ask for a GPU each where the cluster has them (--device cpu: no)
    chunk_frames: int | None = None  # frames a chunk writes (default: the clip over the workers)
    warm_up: int = WARM_UP
    crossfade: int = CROSSFADE
