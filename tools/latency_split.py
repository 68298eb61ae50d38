"""Where a dream's latency goes in the window's loop (issue 25, goal 4): `dreamcam bench`'s run, with
each dream followed from its camera frame's capture to the display tick that first shows it.

    SDL_VIDEODRIVER=dummy python tools/latency_split.py --dream-size 320x180 --backend openvino

Per dream (medians over the timed dreams): capture -> the worker starts it (the frame waits while
the worker finishes the dream before), start -> published (upload, warm start including the wait
for its flow, the step, the tail), published -> shown (the display shows a dream at its next
camera frame). The stages are timed by wrapping the dreamer's and the loop's own methods, so the
run is the bench's run with a few perf_counter calls added.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from realtime.commands import bench
from realtime.dream.dreamer import FrameDreamer
from realtime.loop import pipeline, worker
from realtime.params import DreamParams, parse_size


def _median(values) -> float:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dream-size", default="320x180")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the show's team on 2 cores (budget.live_dream_threads)
    started: dict[int, float] = {}
    shown: list[tuple[float, float | None, float, float]] = []
    parts: dict[str, list[float]] = {}

    dream = worker.DreamWorker._dream

    def _dream(self, frame):
        started[id(frame)] = time.perf_counter()
        return dream(self, frame)

    show = pipeline.Pipeline._show_newest_dream

    def _show(self, frame):
        before = self._shown_dream
        show(self, frame)
        result = self._shown_dream
        if result is not None and result is not before:
            shown.append(
                (result.frame.t_capture, started.get(id(result.frame)), result.finished, time.perf_counter())
            )

    def timed(name, function):
        def inner(*a, **k):
            t = time.perf_counter()
            out = function(*a, **k)
            parts.setdefault(name, []).append((time.perf_counter() - t) * 1000)
            return out

        return inner

    residual = FrameDreamer.residual

    def _residual(self, image):
        if not getattr(self, "_timed", False):
            self._timed = True
            self.source_tensor = timed("upload", self.source_tensor)
            self.warm.initial = timed("warm start (with the flow's wait)", self.warm.initial)
            self.run_steps = timed("step", self.run_steps)
            self.finish = timed("tail", self.finish)
        return timed("dream", residual)(self, image)

    worker.DreamWorker._dream, pipeline.Pipeline._show_newest_dream = _dream, _show
    FrameDreamer.residual = _residual
    size = parse_size(args.dream_size)
    result = bench.run_bench(
        DreamParams(), size, torch.device("cpu"), args.backend, args.frames, precision="fp32"
    )
    timed_dreams = shown[-result["frames"] :]
    out = {key: result[key] for key in ("dream_fps", "display_fps", "dream_latency_ms_p50", "display_ms_p50")}
    out["capture -> start"] = _median((s - c) * 1000 if s else None for c, s, f, d in timed_dreams)
    out["start -> published"] = _median((f - s) * 1000 if s else None for c, s, f, d in timed_dreams)
    out["published -> shown"] = _median((d - f) * 1000 for c, s, f, d in timed_dreams)
    out.update({name: _median(values[-args.frames :]) for name, values in parts.items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
