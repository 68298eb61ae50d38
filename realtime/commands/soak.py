"""`dreamcam soak`: hours of show in minutes: the live loop, headless, with random control changes.

It drives the same pipeline, dream worker and controls a show uses, on the synthetic scene, and
every few frames applies a random action (layer, strength, steps, freeze) the way a VJ or a
playlist would. Memory is read from the OS before and after: a leak shows as RSS growth.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time

import torch

from realtime.commands.options import add_dream_options, dream_params
from realtime.control.plane import Action, ShowState, apply_action
from realtime.dream.dreamer import build_dreamer
from realtime.errors import DreamcamError
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.params import DreamParams

SOAK_ACTIONS = (
    Action.NEXT_LAYER,
    Action.PREV_LAYER,
    Action.STRONGER,
    Action.WEAKER,
    Action.MORE_STEPS,
    Action.FEWER_STEPS,
    Action.FREEZE,
)
CHANGE_EVERY = 5  # frames between random control changes
# RSS is first read after a warm-up: the first visits to each layer and step count build kernel
# caches (oneDNN primitives, allocator pools) once; growth after that is what a leak looks like
WARMUP_FRAMES = 1000


def rss_mb() -> float:
    """Resident memory now, in MiB (Linux /proc; elsewhere the peak, which only grows)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_soak(
    params: DreamParams,
    dream_size: tuple[int, int],
    device: torch.device,
    frames: int,
    seed: int = 0,
    progress=None,
) -> dict:
    rng = random.Random(seed)
    dreamer = build_dreamer(params, dream_size, device, seed=seed)
    state = ShowState(params, dreamer.network.spec.layers)
    with SyntheticSource((dream_size[0] * 2, dream_size[1] * 2), paced=False) as source:
        pipeline = Pipeline(source, dreamer, state, threaded=True)
        pipeline.start_worker()
        try:
            pipeline.tick()
            warmup = min(WARMUP_FRAMES, frames // 10)
            rss_start = rss_mb()
            started = time.perf_counter()
            for n in range(1, frames + 1):
                if n == warmup + 1:
                    rss_start = rss_mb()
                if not state.frozen:  # a dream per frame, as fast as the dream goes
                    pipeline.worker.wait_for(pipeline.stats.dreams + 1, timeout=10.0)
                pipeline.tick()
                if n % CHANGE_EVERY == 0:
                    apply_action(state, rng.choice(SOAK_ACTIONS))
                    pipeline.apply_params()
                if progress is not None and n % 1000 == 0:
                    progress(n, frames)
            elapsed = time.perf_counter() - started
            rss_end = rss_mb()
            if pipeline.stats.dreams == 0:  # a soak that dreamt nothing has tested nothing
                why = pipeline.worker.error or "see the log"
                raise DreamcamError(
                    f"the soak dreamt no frame in {frames} ({why}); try a smaller --dream-size"
                )
        finally:
            pipeline.stop_worker()
    return {
        "frames": frames,
        "fps": round(frames / elapsed, 2),
        "dreams": pipeline.stats.dreams,
        "restarts": pipeline.restarts,
        "warmup_frames": warmup,
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
    }


def add_arguments(soak: argparse.ArgumentParser) -> None:
    add_dream_options(soak, steps=1, octaves=1, lr=DreamParams.lr)
    soak.add_argument("--dream-size", default="96x54", help="small by default: many frames, quickly")
    soak.add_argument("--frames", type=int, default=10_000)


def run(args: argparse.Namespace) -> int:
    from realtime.dream.backends import resolve_device
    from realtime.dream.budget import check_dream_size
    from realtime.params import parse_size

    if args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    device, size = resolve_device(args.device), parse_size(args.dream_size)
    check_dream_size(size, args.model, device)

    def progress(done: int, total: int) -> None:
        print(f"\rsoak {done}/{total} frames", end="\n" if done == total else "", file=sys.stderr, flush=True)

    result = run_soak(
        dream_params(args),
        size,
        device,
        args.frames,
        args.seed or 0,
        progress,
    )
    print(json.dumps(result))
    return 0
