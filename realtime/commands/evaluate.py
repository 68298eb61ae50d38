"""`dreamcam eval`: how good is a dream over time? Quality figures for a clip, side by side.

The clip is dreamed frame by frame as the live loop would (the residual at dream size, upscaled onto
the full-size frame), once per warm-start mode (flow, residual, and off = a cold start per frame),
and measured:
- warping error (Lai et al., ECCV 2018): undo the scene's motion between frames t-1 and t and take
  the mean |out_t − warp(out_t−1)| in grey levels (0-255) over the pixels seen in both frames.
  The same figure for the input says how much of it the clip itself brings (codec noise). The motion
  is the true one when tools/make_clip.py made the clip (its `.motion.json`), else DIS optical flow
  of the input, with pixels whose forward and backward flows disagree (occlusions) left out;
- gain: the target layer's objective on the output over the plain frame's, mean over the clip;
- gain_kept: that gain over the gain of the first frame held still for as many frames: how much of
  its strength the dream keeps while the scene moves;
- still: the gain after those frames held still, against a 10-step cold dream of the same frame;
- boil (issue 13): from frame BOIL_FROM on, the output's warping error less the input's own (grain,
  resampling), over the dream's mean size |out − in| on the same pixels: the share of the dream
  that changes each frame once the motion is undone (0: glued to the scene; 1: re-made each frame).
  Measured on the frames as dreamt, never on an encoded file (a codec's chroma moves under texture);
- strength_1s, strength_3_5s: the dream's strength as an independent network sees it (the judge,
  realtime.commands.judge: EfficientNet-Lite2's layer-energy gain, calibrated so that a classic
  still DeepDream scores 2.3-3.6; 1.0 = no dream) over the frames of the first second's last third
  and of seconds 3-5; lite0_strength_1s, lite0_strength_3_5s: the same windows of `gain`, the
  dreaming network's own objective gain (not comparable with the judge's scale);
- classic_1s, classic_3_5s (once per clip): the judge's strength of a classic still DeepDream
  (judge.CLASSIC, 4 octaves of 20 steps) of a few frames of the same windows, and per mode
  vs_classic_1s, vs_classic_3_5s: the live dream's strength over it. The same photo scores
  differently at another framing (a classic dream of the astronaut's portrait scores 2.1-2.35, of the
  cat 3.5-3.9), so this ratio says how close to a classic DeepDream the live one gets on the very
  pictures it dreamt (1.0: as strong);
- flow_error: with `flow` and a known motion, the mean end-point error (dream pixels) of the flow the
  dream moved its residual with, against the true motion scaled to dream size;
- with per-pixel truth beside the clip (tools/motion_clips.py's `.motion.npz`: a flow field per frame
  and a moving object's mask; realtime.commands.trail): boil_object and boil_background, and behind
  the moving object the trail's streakiness (its residual's gradient across the motion over along it,
  per window of time since the background was uncovered; a dream texture scores about 1.0) and,
  where the clip names its background alone, the trail's size over a clean dream of it.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.commands import trail
from realtime.commands.judge import Judge
from realtime.commands.options import add_live_dream_options, offline_dreamer
from realtime.commands.render import video_frames
from realtime.commands.trail import Motion
from realtime.dream import kernel
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.flow import inside_frame, pixel_grid, warp_array
from realtime.dream.frames import image_tensor, residual_array, resized
from realtime.errors import DreamcamError, SourceError
from realtime.loop.compose import add_upscaled
from realtime.params import DreamParams

log = logging.getLogger(__name__)

MODES = ("flow", "residual", "off")
COLD_STEPS = 10
BOIL_FROM = 30  # frames before the boil counts: the dream has grown by then
STRENGTH_WINDOWS = {"strength_1s": (2 / 3, 1.0), "strength_3_5s": (3.0, 5.0)}  # seconds
# frames of each window dreamt the classic way for `classic_strength` (each ~2 s on 2 CPU cores at
# 320x180); the 3-5 s window spans more of the clip, so it takes more
CLASSIC_SAMPLES = {"strength_1s": 1, "strength_3_5s": 3}
# forward-backward check of the evaluation's flow (Sundaram et al. 2010, as Ruder et al. 2016 use it):
# a pixel is occluded when |f + b|² > CHECK_RELATIVE · (|f|² + |b|²) + CHECK_ABSOLUTE
CHECK_RELATIVE, CHECK_ABSOLUTE = 0.01, 0.5


MIN_SIDE = 16  # pixels: the smallest frame the flow and the dream size (16..8192) work with


def motion_path(clip_path: str | Path) -> Path:
    """Where a clip's true motion is recorded (tools/make_clip.py writes it): `.motion.json` appended."""
    return Path(f"{clip_path}.motion.json")


def known_motion(affine: Sequence[Sequence[float]], width: int, height: int) -> Motion:
    """The motion of a 2x3 backward affine matrix (frame t pixel -> frame t-1 pixel)."""
    grid = pixel_grid(height, width)
    matrix = np.asarray(affine, np.float32)
    where_from = grid @ matrix[:, :2].T + matrix[:, 2]
    return Motion(where_from - grid, inside_frame(where_from, width, height))


class FlowMotion:
    """The motion between input frames from DIS optical flow, with occluded pixels marked invalid."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> Motion:
        previous = cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY)
        current = cv2.cvtColor(current, cv2.COLOR_RGB2GRAY)
        backward = self._dis.calc(current, previous, None)
        forward = self._dis.calc(previous, current, None)
        height, width = current.shape
        where_from = pixel_grid(height, width) + backward
        forward_there = warp_array(forward, backward)
        mismatch = ((forward_there + backward) ** 2).sum(-1)
        magnitude = (forward_there**2).sum(-1) + (backward**2).sum(-1)
        consistent = mismatch <= CHECK_RELATIVE * magnitude + CHECK_ABSOLUTE
        return Motion(backward, consistent & inside_frame(where_from, width, height))


def read_known_motion(path: str, frames: int, size: tuple[int, int]) -> list[Motion] | None:
    """The true motion tools/make_clip.py recorded beside the clip, or None (none recorded, another
    size, or a clip whose motion is not one transform per frame)."""
    record_path = motion_path(path)
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
        affines = record["backward_affine"][:frames]
        recorded_size = tuple(record["size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(
            f"motion file '{record_path}' is unreadable ({exc}); delete it or remake the clip"
        ) from None
    if recorded_size != size or len(affines) < frames or any(a is None for a in affines[1:]):
        return None
    return [known_motion(a, *size) for a in affines[1:]]


def warping_error(frames: Sequence[np.ndarray], motions: Sequence[Motion]) -> float:
    """Mean over frame pairs of mean |I_t − warp(I_t−1)| over valid pixels, grey levels 0-255."""
    errors = []
    for previous, current, motion in zip(frames, frames[1:], motions, strict=False):
        if not motion.valid.any():
            continue
        warped = warp_array(previous.astype(np.float32), motion.backward)
        difference = np.abs(current.astype(np.float32) - warped).mean(-1)
        errors.append(float(difference[motion.valid].mean()))
    return float(np.mean(errors)) if errors else 0.0


def _tensor(image: np.ndarray, dreamer: FrameDreamer) -> torch.Tensor:
    """A dream-size image as the network reads it, on the network's device."""
    return image_tensor(image, (image.shape[1], image.shape[0]), dreamer.device)


def _shown(small: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The dreamt frame at dream size, quantised as shown."""
    return np.clip(small.astype(np.float32) + residual, 0, 255).round().astype(np.uint8)


def _gain(dreamer: FrameDreamer, small: np.ndarray, residual: np.ndarray) -> float:
    """The objective of the dreamed frame (quantised as shown) over the plain frame's, at dream size."""
    dreamt = _shown(small, residual)
    value = dreamer.backend.objective_value
    return value(_tensor(dreamt, dreamer)) / value(_tensor(small, dreamer))


def dream_clip(
    dreamer: FrameDreamer,
    frames: Sequence[np.ndarray],
    dream_size: tuple[int, int],
    truth: Sequence[Motion] | None = None,
    gain_at: Callable[[int], bool] | None = None,
    judge: Judge | None = None,
):
    """The live loop's outputs (full size), gains and the judge's gains (NaN where `gain_at` says
    to skip a frame, all NaN without a judge) for each frame of a clip; with `truth` (the known
    motion at the frames' size) also the flow's end-point errors (dream px) per frame."""
    outputs, gains, judged, flow_errors = [], [], [], []
    for n, image in enumerate(frames):
        dreamer.warm.field = None
        residual = residual_array(dreamer.residual(image))
        outputs.append(add_upscaled(image, residual))
        measured = gain_at is None or gain_at(n)
        small = resized(image, dream_size)
        gains.append(_gain(dreamer, small, residual) if measured else float("nan"))
        judge_it = measured and judge is not None
        judged.append(judge.gain(_shown(small, residual), small) if judge_it else float("nan"))
        if truth is not None and n and dreamer.warm.field is not None:
            flow_errors.append(flow_error(dreamer.warm.field.backward, truth[n - 1], image.shape))
    return outputs, gains, judged, flow_errors


def flow_error(backward: np.ndarray, truth: Motion, frame_shape: tuple) -> float:
    """Mean end-point error (px at the flow's size) of a backward flow against the true motion of
    frames of `frame_shape`, over the pixels the truth sees in both frames."""
    height, width = backward.shape[:2]
    scale = width / frame_shape[1]
    # the truth at the flow's size: a dream pixel's centre (x + 0.5) / scale - 0.5 in the frame
    true_small = cv2.resize(truth.backward, (width, height), interpolation=cv2.INTER_AREA) * scale
    valid = cv2.resize(truth.valid.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    error = np.sqrt(((backward - true_small) ** 2).sum(-1))
    return float(error[valid].mean()) if valid.any() else 0.0


def boil(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    motions: Sequence[Motion],
    start: int = BOIL_FROM,
) -> dict:
    """The output's and input's warping errors from frame `start` on, the dream's mean size
    |out − in| over the same pixels, and boil = (output error − input error) / size."""
    start = min(start, max(1, len(inputs) // 2))
    out_errors, in_errors, sizes = [], [], []
    for t in range(start, len(inputs)):
        motion = motions[t - 1]
        if not motion.valid.any():
            continue
        valid = motion.valid
        for images, errors in ((outputs, out_errors), (inputs, in_errors)):
            warped = warp_array(images[t - 1].astype(np.float32), motion.backward)
            errors.append(float(np.abs(images[t].astype(np.float32) - warped).mean(-1)[valid].mean()))
        dream = np.abs(outputs[t].astype(np.float32) - inputs[t].astype(np.float32)).mean(-1)
        sizes.append(float(dream[valid].mean()))
    if not sizes:
        return {}
    out_error, in_error, size = float(np.mean(out_errors)), float(np.mean(in_errors)), float(np.mean(sizes))
    return {
        "from_frame": start,
        "warping_error_out": round(out_error, 3),
        "warping_error_in": round(in_error, 3),
        "dream_size": round(size, 3),
        "boil": round((out_error - in_error) / size, 3) if size > 0 else None,
    }


def strength(gains: Sequence[float], fps: float, prefix: str = "") -> dict:
    """The gain around 1 s (the first second's last third) and over seconds 3-5, named
    `{prefix}strength_1s` and `{prefix}strength_3_5s`."""
    result = {}
    for name, (start, end) in STRENGTH_WINDOWS.items():
        window = [g for g in gains[int(start * fps) : int(end * fps)] if not np.isnan(g)]
        if window:
            result[prefix + name] = round(float(np.mean(window)), 3)
    return result


def classic_strength(
    frames: Sequence[np.ndarray], dream_size: tuple[int, int], fps: float, judge: Judge
) -> dict:
    """`classic_1s`, `classic_3_5s`: the judge's mean strength of a classic still DeepDream of
    CLASSIC_SAMPLES frames spread evenly inside each strength window, at dream size. A window the
    clip does not reach is left out."""
    result = {}
    for name, (start, end) in STRENGTH_WINDOWS.items():
        first, last = int(start * fps), min(int(end * fps), len(frames)) - 1
        if last < first:
            continue
        picks = np.linspace(first, last, CLASSIC_SAMPLES[name] + 2)[1:-1].round().astype(int)
        log.info("eval: dreaming %d frame(s) the classic way, the judge's reference", len(picks))
        gains = [judge.classic_gain(resized(frames[n], dream_size)) for n in picks]
        result[name.replace("strength", "classic")] = round(float(np.mean(gains)), 3)
    return result


def versus_classic(figures: dict, classic: dict) -> dict:
    """`vs_classic_1s`, `vs_classic_3_5s`: a mode's strength over the classic dream's in the same
    window (`classic_strength`), where both were measured."""
    result = {}
    for name in STRENGTH_WINDOWS:
        reference = classic.get(name.replace("strength", "classic"))
        if name in figures and reference:
            result[name.replace("strength", "vs_classic")] = round(figures[name] / reference, 3)
    return result


def strength_frame(n: int, fps: float, every: int = 3) -> bool:
    """Whether frame n's gain counts towards `strength` (every `every`-th frame of its windows)."""
    return n % every == 0 and any(start * fps <= n < end * fps for start, end in STRENGTH_WINDOWS.values())


def evaluate(
    path: str,
    make_dreamer: Callable[[DreamParams], FrameDreamer],
    params: DreamParams,
    dream_size: tuple[int, int],
    max_frames: int | None = None,
    modes: Sequence[str] = MODES,
    held_still: bool = True,
) -> dict:
    """The figures of every warm-start mode in `modes` over the clip at `path` (module docstring);
    `held_still`: also the first frame held still (the reference of gain_kept)."""
    frames_iter, fps, _ = video_frames(path)
    frames = []
    for image in frames_iter:
        frames.append(image)
        if max_frames and len(frames) >= max_frames:
            break
    if len(frames) < 2:  # a warping error compares consecutive frames: one frame would score a false 0.0
        raise SourceError(
            f"'{path}' has {len(frames)} frame; eval needs at least 2 to measure the warping error"
        )
    height, width = frames[0].shape[:2]
    if min(height, width) < MIN_SIDE:  # the optical flow's pyramid: a 1x1 clip was a cv2.error traceback
        raise SourceError(
            f"'{path}' is {width}x{height}; eval needs frames of at least {MIN_SIDE}x{MIN_SIDE} pixels"
        )
    judge = Judge()  # before minutes of dreaming: a missing judge is said at once
    motions = read_known_motion(path, len(frames), (width, height))
    truth = trail.read_truth(path, len(frames), (width, height))
    if truth is not None:
        motions = trail.motions(truth)
    known = motions is not None
    source = "known (tools/make_clip.py)" if known else "DIS flow, occlusions left out"
    clean = _clean_frames(path, truth, len(frames))
    if motions is None:
        flow = FlowMotion()
        motions = [flow(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    result: dict = {
        "clip": path,
        "frames": len(frames),
        "size": f"{width}x{height}",
        "dream_size": f"{dream_size[0]}x{dream_size[1]}",
        "motion": source,
        "input": {"warping_error": round(warping_error(frames, motions), 3)},
    }
    still = _held_still(frames[0], len(frames), make_dreamer, params, dream_size) if held_still else None
    classic = classic_strength(frames, dream_size, fps, judge)
    for mode in modes:
        log.info("eval: dreaming %d frames with warm start %s", len(frames), mode)
        result[mode] = measure_mode(
            make_dreamer(params.replace(warm_start=mode)),
            frames,
            motions,
            known,
            dream_size,
            fps,
            judge=judge,
            truth=truth,
            clean=None if clean is None else (clean, make_dreamer(params.replace(warm_start=mode))),
        )
        result[mode].update(versus_classic(result[mode], classic))
        if still is not None:
            result[mode]["gain_kept"] = round(result[mode]["gain"] / still["gain"], 3)
    if still is not None:
        result["still"] = still
    if classic:
        result["classic"] = classic
    return result


def measure_mode(
    dreamer: FrameDreamer,
    frames: Sequence[np.ndarray],
    motions: Sequence[Motion],
    known: bool,
    dream_size: tuple[int, int],
    fps: float,
    sample_gains: bool = False,
    judge: Judge | None = None,
    truth: trail.Truth | None = None,
    clean: tuple[Sequence[np.ndarray], FrameDreamer] | None = None,
) -> dict:
    """One warm-start mode's figures over a clip: warping error, gain, boil, strength (the judge's,
    and lite0's own), flow error. `sample_gains`: measure the gains only on the strength windows'
    frames (a third of them). Without a judge, only lite0's strength. With per-pixel `truth`: boil
    on the object and the background, and the trail's figures (realtime.commands.trail); `clean`:
    the background alone and a fresh dreamer for it (the trail's size)."""
    gain_at = (lambda n: strength_frame(n, fps)) if sample_gains else None
    known_motions = motions if known else None
    outputs, gains, judged, flow_errors = dream_clip(
        dreamer, frames, dream_size, known_motions, gain_at, judge
    )
    gain = float(np.nanmean(gains)) if not np.isnan(gains).all() else float("nan")
    figures = {"warping_error": round(warping_error(outputs, motions), 3), "gain": round(gain, 3)}
    figures.update(boil(frames, outputs, motions))
    figures.update(strength(judged, fps))
    figures.update(strength(gains, fps, prefix="lite0_"))
    if flow_errors:
        figures["flow_error"] = round(float(np.mean(flow_errors)), 3)
    if truth is not None:
        figures.update(trail_figures(frames, outputs, truth, fps, dream_size, clean))
    return figures


def trail_figures(
    frames: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    truth: trail.Truth,
    fps: float,
    dream_size: tuple[int, int],
    clean: tuple[Sequence[np.ndarray], FrameDreamer] | None = None,
) -> dict:
    """boil_object, boil_background and the trail's figures (realtime.commands.trail) of a clip
    with per-pixel truth; the trail's size when `clean` (the background alone, a fresh dreamer)."""
    figures: dict = {}
    regions = trail.region_motions(truth, fps)
    if regions is None:
        return figures
    for name, region in zip(("object", "background"), regions, strict=True):
        figures[f"boil_{name}"] = boil(frames, outputs, region).get("boil")
    clean_outputs = clean_inputs = None
    if clean is not None:
        clean_inputs, clean_dreamer = clean
        clean_outputs = dream_clip(clean_dreamer, clean_inputs, dream_size, gain_at=lambda n: False)[0]
    figures.update(trail.trail(frames, outputs, truth, fps, clean_outputs, clean_inputs))
    return figures


def _clean_frames(path: str, truth: trail.Truth | None, count: int) -> list[np.ndarray] | None:
    """The clip's background alone (its truth names it: tools/motion_clips.py writes it beside a
    walker clip), or None."""
    background = trail.background_path(path) if truth is not None and truth.mask is not None else None
    if background is None or not background.is_file():
        return None
    frames = []
    for image in video_frames(str(background))[0]:
        frames.append(image)
        if len(frames) >= count:
            break
    return frames if len(frames) >= count else None


def _held_still(
    image: np.ndarray,
    frames: int,
    make_dreamer: Callable[[DreamParams], FrameDreamer],
    params: DreamParams,
    dream_size: tuple[int, int],
) -> dict:
    """The first frame held still for as many frames as the clip: its mean gain (the reference of
    gain_kept), its gain at the end, and a COLD_STEPS-step cold dream's gain for comparison."""
    log.info("eval: the first frame held still for %d frames", frames)
    _, gains, _, _ = dream_clip(make_dreamer(params), [image] * frames, dream_size)
    cold = make_dreamer(params.replace(warm_start="off"))
    small = _tensor(resized(image, dream_size), cold)
    base = cold.backend.objective_value(small)
    cold_gain = cold.backend.objective_value(kernel.dream(small, cold.backend.run, COLD_STEPS)) / base
    return {
        "frames": frames,
        "gain": round(float(np.mean(gains)), 3),
        "final_gain": round(gains[-1], 3),
        f"cold_gain_{COLD_STEPS}_steps": round(cold_gain, 3),
        "final_vs_cold": round(gains[-1] / cold_gain, 3),
    }


def add_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("input", metavar="IN.mp4")
    add_live_dream_options(evaluate)
    evaluate.add_argument("--frames", type=int, default=None, help="use the first N frames")
    evaluate.add_argument(
        "--modes",
        default="flow,residual,off",
        help="warm-start modes to measure, comma-separated (default flow,residual,off)",
    )
    evaluate.add_argument("--json", action="store_true", help="one JSON object (the only output format)")


def run(args: argparse.Namespace) -> int:
    from realtime.params import WARM_START_MODES

    if args.frames is not None and args.frames < 2:
        raise DreamcamError(f"--frames must be at least 2 to measure the warping error, got {args.frames}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in WARM_START_MODES]
    if bad or not modes:
        choices = ", ".join(WARM_START_MODES)
        raise DreamcamError(f"--modes '{args.modes}': choose from {choices}, comma-separated")
    params, size, make = offline_dreamer(args)
    print(json.dumps(evaluate(args.input, make, params, size, args.frames, modes)))
    return 0
