"""`dreamcam render`: a video file (or a zooming still) through the live kernel, frame-exact.

Every frame of the input is dreamed with the same kernel and warm start as the live show, none
dropped, at the input's size and frame rate. The output is written under a temporary name in the
target folder and renamed only when complete, so a failure never leaves a half-written file.
Audio is copied from the input when ffmpeg is installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from realtime.commands.still import load_image
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.frames import residual_array
from realtime.errors import SourceError
from realtime.io.sinks import IMAGE_EXTS, VIDEO_EXTS, check_output_path
from realtime.loop.compose import add_upscaled

log = logging.getLogger(__name__)

Progress = Callable[[int, int, float], None]  # (frames done, total or 0, seconds elapsed)


def video_frames(path: str) -> tuple[Iterator[np.ndarray], float, int]:
    """RGB frames of a video file, its frame rate and its frame count (0 if unknown)."""
    if not os.path.isfile(path):
        raise SourceError(f"video '{path}' does not exist; check the path")
    capture = cv2.VideoCapture(path)
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise SourceError(
            f"cannot read video '{path}': it has no frames, or is corrupt or in a format OpenCV cannot "
            f"decode; re-encode it (e.g. ffmpeg -i '{path}' out.mp4)"
        )
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def frames() -> Iterator[np.ndarray]:
        bgr = first
        try:
            while bgr is not None:
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                ok, bgr = capture.read()
                bgr = bgr if ok else None
        finally:
            capture.release()

    return frames(), fps if 1.0 <= fps <= 240.0 else 30.0, count


def zoom_frames(image: np.ndarray, count: int, zoom: float, dreamer: FrameDreamer) -> Iterator[np.ndarray]:
    """The classic zooming dream: each frame zooms into the last dream by `zoom` and dreams again."""
    height, width = image.shape[:2]
    frame = image
    for _ in range(count):
        crop_w, crop_h = int(round(width / zoom)), int(round(height / zoom))
        x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
        zoomed = cv2.resize(frame[y0 : y0 + crop_h, x0 : x0 + crop_w], (width, height), cv2.INTER_LINEAR)
        frame = add_upscaled(zoomed, residual_array(dreamer.residual(zoomed)))
        yield frame


def render(
    input_path: str,
    output_path: str,
    dreamer: FrameDreamer,
    frames: int | None = None,
    zoom: float | None = None,
    progress: Progress | None = None,
) -> int:
    """Render and return the number of frames written."""
    check_output_path(output_path, VIDEO_EXTS)
    is_still = zoom is not None or Path(input_path).suffix.lower() in IMAGE_EXTS
    if is_still:
        if not frames or frames < 1:
            raise SourceError(
                "a still image renders as a zoom video: give --frames N (and --zoom, e.g. 1.02)"
            )
        image = load_image(input_path, None)
        source, fps, total = zoom_frames(image, frames, zoom or 1.02, dreamer), 30.0, frames
    else:
        source, fps, total = video_frames(input_path)
        if frames:
            total = min(total, frames) if total else frames
    output = Path(output_path)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    written = 0
    started = time.perf_counter()
    writer = None
    try:
        for image in source:
            if frames and written >= frames:
                break
            if not is_still:
                image = add_upscaled(image, residual_array(dreamer.residual(image)))
            if writer is None:
                writer = _open_writer(partial, fps, image.shape[1], image.shape[0])
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            written += 1
            if progress is not None:
                progress(written, total, time.perf_counter() - started)
        if writer is not None:
            writer.release()
            writer = None
        if written == 0:
            raise SourceError(f"'{input_path}' gave no frames to render")
        final = _with_audio(partial, input_path) if not is_still else partial
        os.replace(final, output)
    finally:
        if writer is not None:
            writer.release()
        for leftover in (partial, partial.with_name(partial.stem + ".audio" + partial.suffix)):
            leftover.unlink(missing_ok=True)
    return written


def _open_writer(path: Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() in (".avi", ".mkv") else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise SourceError(
            f"cannot write '{path.with_name(path.name.replace('.partial', ''))}'; check the folder"
        )
    return writer


def _with_audio(video: Path, original: str) -> Path:
    """The rendered video with the original's audio track when ffmpeg is present (else as is)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        log.warning("ffmpeg not found: the render has no audio (install ffmpeg to copy the sound)")
        return video
    muxed = video.with_name(video.stem + ".audio" + video.suffix)
    command = [ffmpeg, "-y", "-loglevel", "error", "-i", str(video), "-i", original]
    command += ["-map", "0:v:0", "-map", "1:a?", "-c:v", "copy", "-c:a", "copy", "-shortest", str(muxed)]
    if subprocess.run(command, capture_output=True).returncode != 0:
        log.warning("ffmpeg could not copy the audio; the render has none")
        return video
    video.unlink(missing_ok=True)
    return muxed
