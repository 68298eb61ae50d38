"""The driver's one pass over the input before a split render: how many frames it really has (the
container's count can be wrong), where its scene cuts are (as the dream itself finds them, so a seam
on a cut is a reset the unsplit render makes too), and, with sound, each frame's look.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from realtime.audio.offline import RenderAudioPlan
from realtime.commands.render_io import video_frames
from realtime.dream.flow import FlowEstimator, is_scene_cut
from realtime.dream.frames import grey
from realtime.errors import SourceError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

MOTION_EVERY = 10  # the scene's motion is sampled every this many frames (the dream's own flow)


@dataclass(frozen=True)
class ClipFacts:
    frames: int  # frames the render writes
    fps: float
    cuts: tuple[int, ...]  # frames that start a new scene
    frame_bytes: int = 0  # one RGB frame's bytes (width x height x 3)
    motion: dict[int, float] | None = None  # frame -> mean flow (px at dream size) since the one before

    def still_at(self, frame: int, around: int, still_px: float) -> bool:
        """Whether the scene barely moves around `frame` (the median of the motion samples within
        `around` frames is under `still_px`); unknown motion counts as moving."""
        near = [m for n, m in (self.motion or {}).items() if abs(n - frame) <= around]
        return bool(near) and float(np.median(near)) < still_px


def scan_video(path: str, dream_size: tuple[int, int], limit: int | None = None) -> ClipFacts:
    """Decode the video once: its frames (up to `limit`), the cuts between them at dream size and
    a sample of its motion (as the dream's flow sees it, every MOTION_EVERY frames)."""
    frames, fps, count = video_frames(path)
    cuts, previous, seen, frame_bytes = [], None, 0, 0
    flow, motion = FlowEstimator(), {}
    for image in frames:
        frame_bytes = image.nbytes
        if limit and seen >= limit:
            frames.close()
            break
        small = grey(image, dream_size)
        if previous is not None and is_scene_cut(previous, small):
            cuts.append(seen)
        elif previous is not None and seen % MOTION_EVERY == 0:
            motion[seen] = flow.estimate(previous, small).motion
        previous, seen = small, seen + 1
    if seen == 0:
        raise SourceError(f"'{path}' gave no frames to render")
    expected = min(count, limit) if limit and count else count
    if expected and seen < expected:  # as the unsplit render says it
        log.warning(
            "'%s' ended after %d of its %d frames (truncated or damaged?); the render has %d",
            path,
            seen,
            expected,
            seen,
        )
    return ClipFacts(seen, fps, tuple(cuts), frame_bytes, motion)


class FrameLook(NamedTuple):
    """One frame's look as the sound drives it: the parameters it is dreamt with, and the swell its
    dream is shown with (the composed residual's gain; docs/AUDIO.md)."""

    params: DreamParams
    gain: float


def frame_looks(
    audio: RenderAudioPlan, input_path: str, facts: ClipFacts, params: DreamParams
) -> list[FrameLook]:
    """Every frame's look as the sound drives it, in order (the drive has state: beats counted,
    presets stepped, the swell easing back), so each chunk gets exactly what the unsplit render
    uses (render.dreamt_frames: a frame's params set, then its swell read)."""
    drive = audio.start(input_path, facts.fps, params)
    looks = []
    for n in range(facts.frames):
        frame_params = drive.params_for(n)
        looks.append(FrameLook(frame_params, drive.shown_gain()))
    return looks
