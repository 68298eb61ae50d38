"""The audio figures of docs/BENCHMARKS.md: beats and tempo on a click track, and how much harder
`render --audio-react` dreams on beat frames than between beats.

    python -m tools.audio_figures --seconds 8 --size 160x90 --fps 10

Makes a clip of a still photo with a 120 BPM click track as its own sound, renders it with
`--audio-react` in each warm-start mode (and with the bundled `eyes` look), and compares the mean
|output − input| (grey levels 0-255) on the frames a beat falls on with the frames between beats
(the frame right after a beat, still pulsing, and the tracker's first two seconds left out).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import av
import cv2
import numpy as np
import skimage.data

from realtime.audio.analysis import HOP, SAMPLE_RATE, FeatureAnalyzer, features_at_frames
from realtime.audio.filein import read_audio
from realtime.commands.cli import main as dreamcam
from realtime.params import parse_size


def click_track(seconds: float, bpm: float = 120.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    samples = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    clicks = np.arange(0.5, seconds - 0.1, 60.0 / bpm)
    length = SAMPLE_RATE // 20
    decay = np.exp(-np.arange(length) / (SAMPLE_RATE / 120))
    for t in clicks:
        start = int(round(t * SAMPLE_RATE))
        samples[start : start + length] += 0.5 * rng.standard_normal(length).astype(np.float32) * decay
    return samples, clicks


def write_clip(path: str, image: np.ndarray, frames: int, fps: int, sound: np.ndarray) -> None:
    """`image` for every frame (lossless FFV1) with `sound` (48 kHz mono) as AAC, in Matroska."""
    height, width = image.shape[:2]
    with av.open(path, "w") as container:
        video = container.add_stream("ffv1", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv444p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        for _ in range(frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        for start in range(0, len(sound), 1024):
            chunk = np.zeros(1024, np.float32)
            part = sound[start : start + 1024]
            chunk[: len(part)] = part
            frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            container.mux(audio.encode(frame))
        container.mux(video.encode())
        container.mux(audio.encode())


def read_frames(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def beat_ratio(clip: str, out: str, fps: float) -> dict:
    source, output = read_frames(clip), read_frames(out)
    depth = np.array([np.abs(o.astype(np.float32) - s).mean() for o, s in zip(output, source, strict=True)])
    features = features_at_frames(read_audio(clip), fps, len(depth))
    beats = [n for n in range(1, len(depth)) if features[n].beats > features[n - 1].beats]
    between = [n for n in range(int(2 * fps), len(depth)) if n not in beats and n - 1 not in beats]
    return {
        "beat_frames": len(beats),
        "depth_on_beats": round(float(depth[beats].mean()), 2),
        "depth_between": round(float(depth[between].mean()), 2),
        "ratio": round(float(depth[beats].mean() / depth[between].mean()), 3),
    }


def beat_accuracy(samples: np.ndarray, clicks: np.ndarray) -> dict:
    analyzer = FeatureAnalyzer()
    beats, previous = [], 0
    for k in range(len(samples) // HOP):
        f = analyzer.process(samples[k * HOP : (k + 1) * HOP])
        if f.beats > previous:
            beats.append(f.last_beat_t)
        previous = f.beats
    settled = [c for c in clicks if c >= 2.0]
    errors = [1000 * min(abs(b - c) for b in beats) for c in settled]
    return {
        "clicks_after_2s": len(settled),
        "beats_after_2s": sum(b >= 2.0 - 0.025 for b in beats),
        "max_error_ms": round(max(errors), 1),
        "bpm": round(analyzer.features.bpm, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", default="160x90")
    parser.add_argument("--fps", type=int, default=10)
    args = parser.parse_args()
    width, height = parse_size(args.size)
    samples, clicks = click_track(args.seconds)
    result = {"click_track": beat_accuracy(samples, clicks), "renders": {}}
    image = cv2.resize(skimage.data.chelsea(), (width, height), interpolation=cv2.INTER_AREA)
    with tempfile.TemporaryDirectory() as folder:
        clip = os.path.join(folder, "beat.mkv")
        write_clip(clip, image, int(args.seconds * args.fps), args.fps, samples)
        runs = {"flow": ["--warm-start", "flow"], "residual": ["--warm-start", "residual"]}
        runs |= {"off": ["--warm-start", "off"], "eyes look": ["--preset", "eyes"]}
        for name, options in runs.items():
            out = os.path.join(folder, f"{name.replace(' ', '_')}.mp4")
            size = ["--dream-size", args.size]
            assert dreamcam(["render", clip, "-o", out, "--audio-react", *size, *options]) == 0
            result["renders"][name] = beat_ratio(clip, out, args.fps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
