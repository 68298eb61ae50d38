"""A render's frames in and its file out, shared by `render` and the split render (realtime.cluster):
the input's frames (a video through OpenCV, a still's zooming dream), the request checked before any
dreaming, the hidden temporary name the output is written under, and its finishing: read back,
then renamed, or removed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from realtime.audio.offline import RenderAudioPlan
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.frames import residual_array
from realtime.errors import SourceError
from realtime.io.paths import check_name_encoding, check_output_path
from realtime.io.sinks import IMAGE_EXTS
from realtime.io.videofile import VIDEO_EXTS, RecordingError, VideoFileWriter, check_codec
from realtime.loop.compose import add_upscaled

log = logging.getLogger(__name__)

Progress = Callable[[int, int, float], None]  # (frames done, total or 0, seconds elapsed)


def video_frames(path: str) -> tuple[Iterator[np.ndarray], float, int]:
    """RGB frames of a video file, its frame rate and its frame count (0 if unknown)."""
    check_name_encoding(path, "video")  # OpenCV crashes the process on such a name
    if os.path.isdir(path):
        raise SourceError(f"video '{path}' is a folder; give a video file")
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


def zoom_in(frame: np.ndarray, zoom: float) -> np.ndarray:
    """The centre 1/zoom of the frame, scaled back to its size (at least 2 pixels are kept)."""
    height, width = frame.shape[:2]
    crop_w, crop_h = max(2, int(round(width / zoom))), max(2, int(round(height / zoom)))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return cv2.resize(frame[y0 : y0 + crop_h, x0 : x0 + crop_w], (width, height), cv2.INTER_LINEAR)


def zoom_frames(
    image: np.ndarray, count: int, zoom: float, dreamer: FrameDreamer, gain: Callable[[], float] = lambda: 1.0
) -> Iterator[np.ndarray]:
    """The classic zooming dream: each frame zooms into the last dream by `zoom` and dreams again.
    Each frame is shown with its dream `gain()` times its size (the audio's swell); the frame fed
    back is the dream itself, so a swell never compounds."""
    frame = image
    for _ in range(count):
        zoomed = zoom_in(frame, zoom)
        residual = residual_array(dreamer.residual(zoomed))
        frame, shown = add_upscaled(zoomed, residual), gain()
        yield frame if shown == 1.0 else add_upscaled(zoomed, residual, shown)


def check_request(
    input_path: str,
    output_path: str,
    frames: int | None,
    zoom: float | None,
    codec: str,
    audio: RenderAudioPlan | None,
    overwrite: bool,
) -> bool:
    """A render's request checked before any dreaming (one-line errors); whether it is a still's
    zoom video."""
    check_name_encoding(input_path, "input")
    inputs = [input_path, *([audio.path] if audio is not None and audio.path else [])]
    check_output_path(output_path, VIDEO_EXTS, inputs=inputs, overwrite=overwrite)
    check_codec(codec, output_path)
    is_still = zoom is not None or Path(input_path).suffix.lower() in IMAGE_EXTS
    if is_still:
        if not frames or frames < 1:
            raise SourceError(
                "a still image renders as a zoom video: give --frames N (and --zoom, e.g. 1.02)"
            )
        if audio is not None and audio.path is None:
            raise SourceError("a still image has no sound of its own: drive it with --audio FILE")
    return is_still


def partial_path(output: Path) -> Path:
    """Where a render writes until it is complete: beside the output, hidden."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def finish(writer: VideoFileWriter, partial: Path, output: Path, written: int) -> None:
    """Close the file, read it back, and only then give it the output's name."""
    writer.close()
    _check_playable(partial, written, output)
    os.replace(partial, output)
    if writer.note:
        log.warning("%s: %s", output, writer.note)


def _check_playable(path: Path, expected: int, final: Path) -> None:
    """Read the file back: every frame's packet is there and the first frame decodes."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            packets = sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0)
            next(container.decode(video=0))
    except Exception as exc:
        raise RecordingError(f"the render of '{final}' does not read back ({exc}); nothing written") from None
    if packets != expected:
        raise RecordingError(f"the render of '{final}' reads back {packets} of {expected} frames; not kept")


def remove_temporary(path: Path) -> None:
    """Remove a temporary file; a folder that turned read-only or vanished is said, not raised."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary file %s (%s); delete it by hand", path, exc.strerror)
