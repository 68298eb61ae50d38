"""The audio figures of docs/BENCHMARKS.md: beats and tempo on a click track, and how much more
dream `render --audio-react` shows on beat frames than between beats, before and after the swell.

    python -m tools.audio_figures --seconds 5 --size 160x90 --fps 15 --clips subpan,still \\
        --looks default,eyes [--sheet docs/images/beat-sheet.jpg]

Each clip (tools/make_clip.py: `subpan`, a slow diagonal pan, 3.5 px a frame at 480x270 and 30 fps
scaled to the size and rate asked for; `still`, a still photo) gets a 120 BPM click track as its
sound and is dreamt in-process frame by frame exactly as `render --audio-react` writes it
(realtime.commands.render.dreamt_frames: the look's `[audio]` table driving the dream, the swell
on what is shown), before any encoder. Each look runs three times: `silent`, nothing mapped (the
look's own dream, as without sound); `before`, its `[audio]` table as it was before issue 24 (no
swell; the persistence brought down with the loudness and the step multiplied on each beat,
BEFORE_PERSISTENCE and BEFORE_PULSE); `now`, its table as it is. Per run:
- ratio: mean |output − input| (grey levels) on the frames a beat falls on, over the frames between
  beats (the frame right after a beat, still swelling, and the tracker's first two seconds left out);
- boil_between: the boil (realtime.commands.evaluate.boil, against the clip's true motion) over the
  pairs of frames between beats; boil: over every pair from 2 s on, beats included.
Prints one JSON object; `--sheet` writes a beat frame beside an off-beat frame, before and now.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import replace

import av
import cv2
import numpy as np
import torch

from realtime.audio.analysis import HOP, SAMPLE_RATE, FeatureAnalyzer, FrameFeatures
from realtime.audio.filein import read_audio
from realtime.audio.mapping import DEFAULT_MAPPING, AudioMapping, FieldMap, Pulse
from realtime.audio.offline import RenderAudio
from realtime.commands.evaluate import Motion, boil, known_motion
from realtime.commands.render import dreamt_frames
from realtime.control.plane import ShowState
from realtime.dream.dreamer import build_dreamer
from realtime.params import parse_size
from realtime.show.presets import load_audio_mapping, look_path
from tools.boil_table import look_params
from tools.make_clip import camera_frames, clip_frames

SETTLE_S = 2.0  # the beat tracker needs about two seconds of music to find the period
PAN_PX, PAN_WIDTH, PAN_FPS = 3.5, 480, 30  # issue 13's slow pan: 3.5 px a frame at 480 wide, 30 fps
# the persistence each look's [audio] table brought down with the loudness before issue 24 (the
# tables were otherwise as they are now, without a swell)
BEFORE_PERSISTENCE = {
    "default": (0.5, 0.75),
    "subtle": (0.5, 0.7),
    "eyes": (0.55, 0.8),
    "fur": (0.6, 0.85),
    "architecture": (0.5, 0.75),
    "wild": (0.6, 0.85),
}
# and multiplied the step size on each beat (each onset for architecture): (amount, half-life s)
BEFORE_PULSE = {
    "default": Pulse("lr", 3.0, 0.15),
    "subtle": Pulse("lr", 2.0, 0.15),
    "eyes": Pulse("lr", 3.0, 0.15),
    "fur": Pulse("lr", 3.0, 0.2),
    "architecture": Pulse("lr", 3.0, 0.1, "onset"),
    "wild": Pulse("lr", 4.0, 0.2),
}


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


def write_clip(path: str, images: list[np.ndarray], fps: int, sound: np.ndarray) -> str:
    """`images` (RGB, lossless FFV1) with `sound` (48 kHz mono) as AAC, in Matroska."""
    height, width = images[0].shape[:2]
    with av.open(path, "w") as container:
        video = container.add_stream("ffv1", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv444p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        for image in images:
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
    return path


def beat_accuracy(samples: np.ndarray, clicks: np.ndarray) -> dict:
    analyzer = FeatureAnalyzer()
    beats, previous = [], 0
    for k in range(len(samples) // HOP):
        f = analyzer.process(samples[k * HOP : (k + 1) * HOP])
        if f.beats > previous:
            beats.append(f.last_beat_t)
        previous = f.beats
    settled = [c for c in clicks if c >= SETTLE_S]
    errors = [1000 * min(abs(b - c) for b in beats) for c in settled]
    return {
        "clicks_after_2s": len(settled),
        "beats_after_2s": sum(b >= SETTLE_S - 0.025 for b in beats),
        "max_error_ms": round(max(errors), 1),
        "bpm": round(analyzer.features.bpm, 2),
    }


def clip(kind: str, frames: int, size: tuple[int, int], fps: int) -> tuple[list[np.ndarray], list[Motion]]:
    """A clip's frames and true motion (frame t-1 -> t, for t >= 1)."""
    if kind == "subpan":
        speed = PAN_PX * size[0] / PAN_WIDTH * PAN_FPS / fps
        images, affines = camera_frames("subpan", frames, size, speed, "astronaut")
    else:
        images, affines = clip_frames("still", frames, size, photo="astronaut")
    return images, [known_motion(a, *size) for a in affines[1:]]


def mapping_of(look: str, when: str) -> AudioMapping:
    """The look's [audio] mapping now, as it was before issue 24 (`when` = "before"), or nothing
    mapped ("silent": the look's own dream, as without sound)."""
    own = load_audio_mapping(look_path(look)) if look != "default" else None
    mapping = own or DEFAULT_MAPPING
    if when == "silent":
        return AudioMapping()
    if when == "now":
        return mapping
    low, high = BEFORE_PERSISTENCE[look]
    before = (*mapping.maps, FieldMap("persistence", "level", low, high))
    return replace(mapping, swell=None, maps=before, pulse=BEFORE_PULSE[look])


def measure(
    images: list[np.ndarray], motions: list[Motion], shown: list[np.ndarray], beats: list[int], fps: int
) -> dict:
    """The beat ratio and the boil (module docstring) of the frames `shown` for `images`."""
    depth = np.array([np.abs(o.astype(np.float32) - s).mean() for o, s in zip(shown, images, strict=True)])
    settle = int(SETTLE_S * fps)
    on_beats = [n for n in beats if n >= settle]
    after = {n + 1 for n in beats}
    between = [n for n in range(settle, len(images)) if n not in beats and n not in after]
    pairs = set(between) & {n + 1 for n in between}  # both frames of the pair between beats
    # evaluate.boil skips a pair whose motion sees nothing: only the pairs between beats count
    unseen = [Motion(m.backward, m.valid & (t + 1 in pairs)) for t, m in enumerate(motions)]
    return {
        "beat_frames": len(on_beats),
        "depth_on_beats": round(float(depth[on_beats].mean()), 2),
        "depth_between": round(float(depth[between].mean()), 2),
        "ratio": round(float(depth[on_beats].mean() / depth[between].mean()), 3),
        "boil_between": boil(images, shown, unseen, settle).get("boil"),
        "boil": boil(images, shown, motions, settle).get("boil"),
    }


def dream(
    images: list[np.ndarray], sound: np.ndarray, fps: int, look: str, mapping: AudioMapping, seed: int
) -> tuple[list[np.ndarray], list[int]]:
    """The frames `render --audio-react` writes for `images` with `sound` as their own (before the
    encoder), and the frames a beat fell on."""
    params = look_params(look)
    size = (images[0].shape[1], images[0].shape[0])
    dreamer = build_dreamer(params, size, torch.device("cpu"), seed=seed)
    drive = RenderAudio(FrameFeatures(sound, fps), ShowState(params, dreamer.network.spec.layers), mapping)
    shown = list(dreamt_frames(images, dreamer, drive))
    return shown, sorted(set(drive.beat_frames))


def sheet(path: str, images: list[np.ndarray], runs: dict, fps: int) -> None:
    """A beat frame beside the frame half a beat (at 120 BPM) later, `before` above `now`, labelled."""
    later = round(0.25 * fps)
    beats = [n for n in runs["now"]["beats"] if n >= SETTLE_S * fps and n + later < len(images)]
    beat = beats[len(beats) // 2]
    off = beat + later
    scale = max(1, round(480 / images[0].shape[1]))  # cells at least ~480 px wide: readable labels
    rows = []
    for when in ("before", "now"):
        cells = []
        for n, name in ((beat, "on the beat"), (off, "between beats")):
            cell = cv2.resize(runs[when]["shown"][n], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            label = f"{when}: {name} (frame {n})"
            cv2.putText(cell, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(cell, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(cell)
        rows.append(np.concatenate(cells, 1))
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", default="160x90")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--clips", default="subpan,still")
    parser.add_argument("--looks", default="default,eyes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", default=None, help="PNG: the first clip and look, beat vs off-beat")
    args = parser.parse_args()
    size = parse_size(args.size)
    samples, clicks = click_track(args.seconds)
    result = {"click_track": beat_accuracy(samples, clicks), "renders": {}}
    frames = int(args.seconds * args.fps)
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.clips.split(","):
            images, motions = clip(kind, frames, size, args.fps)
            # the clip's own sound, as render --audio-react reads it back (AAC through PyAV)
            sound = read_audio(write_clip(os.path.join(folder, f"{kind}.mkv"), images, args.fps, samples))
            for look in args.looks.split(","):
                runs = {}
                for when in ("silent", "before", "now"):
                    shown, beats = dream(images, sound, args.fps, look, mapping_of(look, when), args.seed)
                    runs[when] = {"shown": shown, "beats": beats}
                    figures = measure(images, motions, shown, beats, args.fps)
                    result["renders"][f"{kind} {look} {when}"] = figures
                    print(json.dumps({f"{kind} {look} {when}": figures}), flush=True)
                if args.sheet and kind == args.clips.split(",")[0] and look == args.looks.split(",")[0]:
                    sheet(args.sheet, images, runs, args.fps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
