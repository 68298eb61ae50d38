"""Does taking keepsakes cost the show? The live window's loop with and without them, side by side.

The loop is `dreamcam bench`'s (a paced synthetic camera, the dream worker, the display composing
every camera frame into an off-screen window), with a booth in the show's hooks as `dreamcam --web`
has it. Rounds alternate: a quiet stretch, then a busy one in which a keepsake is taken every
`--every` seconds (no countdown, a short hold: as many as a flood of presses could make), each
written as a PNG at the camera's resolution by the store's thread. Prints one JSON object: each
stretch's display rate, the medians, their ratio, and how long the keepsakes took to be written.

    PYTHONPATH=. python tools/keepsake_bench.py --camera 1920x1080 --rounds 3 --seconds 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from realtime.commands.bench import bench_window
from realtime.control.plane import ShowState
from realtime.dream.budget import live_dream_threads
from realtime.dream.dreamer import build_dreamer
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.loop.showio import ShowIO
from realtime.params import DreamParams, parse_size
from realtime.show import keepsake as store_module
from realtime.show.booth import BoothTimes, KeepsakeBooth
from realtime.show.keepsake import KeepsakeStore
from realtime.show.plan import ShowControl


def stretch(
    pipeline: Pipeline, seconds: float, booth: KeepsakeBooth | None, every_s: float
) -> tuple[float, float]:
    """Display frames a second over `seconds`, pressing the booth's button every `every_s`, and the
    display thread's own CPU time per frame (ms: what a keepsake adds to the display's work,
    whatever else the machine runs)."""
    frames, started, cpu = pipeline.stats.frames, time.perf_counter(), time.thread_time()
    next_press = started
    while (now := time.perf_counter()) - started < seconds:
        if booth is not None and now >= next_press:
            booth.press()
            next_press = now + every_s
        pipeline.tick()
    shown = pipeline.stats.frames - frames
    return shown / (time.perf_counter() - started), 1000.0 * (time.thread_time() - cpu) / max(1, shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", default="1920x1080", help="the camera's resolution (the keepsake's)")
    parser.add_argument("--window", default="1920x1080")
    parser.add_argument("--dream-size", default="320x180")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="each stretch")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between keepsakes when busy")
    parser.add_argument("--nice", type=int, default=None, help="the writer's nice (default: the store's)")
    args = parser.parse_args()
    if args.nice is not None:
        store_module.WRITER_NICE = args.nice

    import os

    torch.set_num_threads(live_dream_threads(os.cpu_count()))
    params = DreamParams()
    dreamer = build_dreamer(params, parse_size(args.dream_size), torch.device("cpu"), "auto", None, 0)
    state = ShowState(params, dreamer.network.spec.layers)
    quiet, busy, quiet_ms, busy_ms = [], [], [], []
    with (
        tempfile.TemporaryDirectory() as root,
        SyntheticSource(parse_size(args.camera), paced=True, fps=30.0) as source,
        bench_window(parse_size(args.window)) as window,
    ):
        store = KeepsakeStore(root)
        booth = KeepsakeBooth(store, lambda i: f"http://10.0.0.5:8080/k/{i}", BoothTimes(0, 0.5, 10.0))
        show = ShowControl(state)
        show.booth = booth
        pipeline = Pipeline(source, dreamer, state, ShowIO(window=window, show=show), threaded=True)
        pipeline.start_worker()
        taken = []
        real_take = store.take

        def timed_take(image, then=None):
            keepsake = real_take(image, then)
            taken.append((time.perf_counter(), keepsake))
            return keepsake

        store.take = timed_take
        try:
            stretch(pipeline, 5.0, None, 0)  # start-up: the first dreams, the caches
            for _ in range(args.rounds):
                for rates, costs, pressing in ((quiet, quiet_ms, None), (busy, busy_ms, booth)):
                    rate, cost = stretch(pipeline, args.seconds, pressing, args.every)
                    rates.append(rate)
                    costs.append(cost)
            for _, keepsake in taken:
                keepsake.ready.wait(60)
            written = [k for _, k in taken if k.ready.is_set() and k.failure is None]
        finally:
            pipeline.stop_worker()
            store.close()
    print(
        json.dumps(
            {
                "camera": args.camera,
                "writer_nice": store_module.WRITER_NICE,
                "window": args.window,
                "dream_size": args.dream_size,
                "quiet_fps": [round(x, 1) for x in quiet],
                "busy_fps": [round(x, 1) for x in busy],
                "quiet_fps_median": round(statistics.median(quiet), 1),
                "busy_fps_median": round(statistics.median(busy), 1),
                "busy_over_quiet": round(statistics.median(busy) / statistics.median(quiet), 3),
                "keepsakes_taken": len(taken),
                "keepsakes_written": len(written),
                "refused_presses": booth.refused,
                "busy_min_fps": round(min(busy), 1),
                "display_cpu_ms_per_frame_quiet": round(statistics.median(quiet_ms), 2),
                "display_cpu_ms_per_frame_busy": round(statistics.median(busy_ms), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
