"""Measure the live audio path's latency: a click in the input stream -> the dream parameter change.

A simulated sound card delivers a 120 BPM click track in real time, one hop per callback, to the
real `LiveAudio` thread; a show loop at `--fps` reads the newest features once per frame, as the
pipeline does, and notes when the mapped step size moves. The latency of each click is the time
from the click's first sample (the moment it would reach the sound card's converter) to the first
frame whose parameters show it. The bound the design promises is one hop (the click waits at most
that long in the card's buffer) plus one frame (the loop looks once per frame).

    python -m tools.audio_latency --seconds 20 --fps 30

Prints one JSON object. Real hardware adds its own input buffer (PortAudio's `latency`), which a
simulated card cannot measure.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

from realtime.audio.analysis import HOP, SAMPLE_RATE
from realtime.audio.live import LiveAudio
from realtime.audio.mapping import AudioMapping
from realtime.audio.show import AudioShow
from realtime.control.plane import ShowState
from realtime.params import DreamParams


class RealTimeCard:
    """Plays `samples` into the callback one hop at a time, each when its last sample would arrive."""

    def __init__(self, samples: np.ndarray):
        self.samples, self.started = samples, None
        self.late: list[float] = []  # per hop: how much later than due this (shared) machine delivered it
        self._stop = threading.Event()

    def open(self, device, sample_rate, hop, on_block, on_finished):
        card = self

        class Stream:
            def start(self):
                threading.Thread(target=card._play, args=(on_block,), daemon=True).start()

            def close(self):
                card._stop.set()

        return Stream()

    def _play(self, on_block) -> None:
        self.started = time.perf_counter()
        for k in range(len(self.samples) // HOP):
            due = self.started + (k + 1) * HOP / SAMPLE_RATE
            while (left := due - time.perf_counter()) > 0:
                if self._stop.wait(min(left, 0.002)):
                    return
            self.late.append(time.perf_counter() - due)
            on_block(self.samples[k * HOP : (k + 1) * HOP], False, False)


def click_track(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    # clicks every 0.5 s, each at a random offset inside its hop, so the buffering wait varies
    clicks = (
        np.arange(1.0, seconds - 0.5, 0.5)
        + rng.uniform(0, HOP / SAMPLE_RATE, int((seconds - 1.5) / 0.5) + 1)[
            : len(np.arange(1.0, seconds - 0.5, 0.5))
        ]
    )
    length = SAMPLE_RATE // 40
    decay = np.exp(-np.arange(length) / (SAMPLE_RATE / 200))
    for t in clicks:
        start = int(t * SAMPLE_RATE)
        samples[start : start + length] += 0.5 * rng.standard_normal(length).astype(np.float32) * decay
    return samples, clicks


def measure(seconds: float, fps: float, feature: str) -> dict:
    samples, clicks = click_track(seconds)
    card = RealTimeCard(samples)
    table = (
        {"lr": {"from": "level", "range": [0.01, 0.05]}}
        if feature == "level"
        else {"pulse": {"field": "lr", "amount": 2.0, "decay": 0.1, "on": "beat"}}
    )
    live = LiveAudio(opener=card.open)
    show = AudioShow(live, start=AudioMapping.parse(table))
    state = ShowState(DreamParams(lr=0.02), ("block5",))
    frame_s = 1.0 / fps
    changes: list[float] = []
    previous = None
    try:
        while card.started is None:
            time.sleep(0.001)
        next_frame = time.perf_counter()
        while time.perf_counter() < card.started + seconds:
            show.intents(state)
            lr = show.dream_params(state.params).lr
            now = time.perf_counter()
            if previous is not None and lr - previous > 0.008:  # a jump (a fifth of the range), not a drift
                changes.append(now - card.started)
            previous = lr
            next_frame += frame_s
            time.sleep(max(0.0, next_frame - time.perf_counter()))
    finally:
        live.close()
    latencies, ours = [], []
    for t in clicks:
        after = [c - t for c in changes if c >= t]
        if after and after[0] < 0.25:
            latencies.append(after[0] * 1000)
            # less the time the simulated card itself was late with the click's hop (scheduling)
            ours.append(latencies[-1] - 1000 * card.late[int(t * SAMPLE_RATE) // HOP])
    settled = latencies[4:] if feature == "beat" else latencies  # the tracker's first seconds
    ours = ours[4:] if feature == "beat" else ours
    return {
        "feature": feature,
        "clicks": len(clicks),
        "detected": len(latencies),
        "latency_ms_p50": round(float(np.median(settled)), 1) if settled else None,
        "latency_ms_max": round(float(np.max(settled)), 1) if settled else None,
        "card_late_ms_max": round(1000 * float(np.max(card.late)), 1),
        "without_card_lateness_ms_max": round(float(np.max(ours)), 1) if ours else None,
        "bound_ms": round(1000 * (HOP / SAMPLE_RATE + frame_s), 1),
        "overflows": live.counts.overflows,
        "dropped": live.counts.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    rows = [measure(args.seconds, args.fps, feature) for feature in ("level", "beat")]
    print(json.dumps({"hop": HOP, "sample_rate": SAMPLE_RATE, "fps": args.fps, "rows": rows}))


if __name__ == "__main__":
    main()
