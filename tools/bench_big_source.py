"""Frame rate and memory of the live window on a very large still (the issue-9 oversized source).

    SDL_VIDEODRIVER=dummy python tools/bench_big_source.py PHOTO [--reduce] [--seconds 20]

Runs the threaded live loop (window under SDL's dummy driver, default dream size) on PHOTO for a
fixed time and prints JSON: display fps, dream fps and the peak resident memory. `--reduce`
reduces the source at the source to the monitor's desktop, as `dreamcam run` does; without it the
frames stay at full size (the behaviour before). Run each variant in its own process (peak RSS).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from realtime.control.plane import ShowState
from realtime.dream.dreamer import build_dreamer
from realtime.io.display import Window, desktop_size
from realtime.io.sources.opener import open_source
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.params import DreamParams


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photo")
    parser.add_argument("--reduce", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    dreamer = build_dreamer(DreamParams(warm_start="residual"), (320, 180), torch.device("cpu"), seed=0)
    with Window(fullscreen=True) as window:
        max_size = desktop_size(0) if args.reduce else None
        with open_source(args.photo, max_size=max_size) as source:
            state = ShowState(dreamer.params, dreamer.network.spec.layers)
            pipeline = Pipeline(source, dreamer, state, ShowIO(window=window), threaded=True)
            pipeline.start_worker()
            started = time.perf_counter()
            try:
                while time.perf_counter() - started < args.seconds:
                    pipeline.tick()
            finally:
                pipeline.stop_worker()
            elapsed = time.perf_counter() - started
            stats = pipeline.stats
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "reduce": args.reduce,
                "frame": list(source._image.shape[1::-1]),
                "display_fps": round(stats.frames / elapsed, 2),
                "dreams": stats.dreams,
                "peak_rss_mb": round(rss_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
