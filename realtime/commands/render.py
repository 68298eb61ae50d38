"""`dreamcam render`: a video file (or a zooming still) through the live kernel, frame-exact.

Every frame of the input is dreamed with the same kernel and warm start as the live show, none
dropped, at the input's size and frame rate (odd sides are padded by one pixel: H.264 needs even
ones). The output is written through PyAV under a temporary name in the target folder, read back,
and renamed only when complete and playable; every other ending (an error, a full disk, Ctrl+C,
SIGTERM) removes the temporary file. The input's sound is copied through PyAV too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from realtime.audio.offline import RenderAudioPlan
from realtime.commands.options import add_live_dream_options, add_overwrite_option, finite, offline_dreamer
from realtime.commands.still import load_image
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.frames import residual_array
from realtime.errors import DreamcamError, SourceError
from realtime.io.paths import check_name_encoding, check_output_path
from realtime.io.sinks import IMAGE_EXTS
from realtime.io.videofile import CODECS, VIDEO_EXTS, RecordingError, VideoFileWriter, check_codec
from realtime.loop.compose import add_upscaled
from realtime.params import DreamParams

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
    codec: str = "h264",
    audio: RenderAudioPlan | None = None,
    *,
    overwrite: bool = False,
) -> int:
    """Render and return the number of frames written. With `audio`, a sound track drives the dream
    frame by frame (docs/AUDIO.md) and is kept in the output. An existing output is replaced only
    with `overwrite`, and never when it is one of the inputs."""
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
        image = load_image(input_path, None)
        source, fps, total = zoom_frames(image, frames, zoom or 1.02, dreamer), 30.0, frames
    else:
        source, fps, total = video_frames(input_path)
        if frames:
            total = min(total, frames) if total else frames
    drive = audio.start(input_path, fps, dreamer.params) if audio is not None else None
    sound = audio.sound_of(input_path) if audio is not None else None if is_still else input_path
    output = Path(output_path)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    written = 0
    started = time.perf_counter()
    writer = None
    try:
        writer = VideoFileWriter(str(partial), fps, codec, live=False, audio_from=sound)
        if drive is not None:
            dreamer.set_params(drive.params_for(0))
        for image in source:
            if frames and written >= frames:
                break
            if not is_still:
                image = add_upscaled(image, residual_array(dreamer.residual(image)))
            writer.write(image)
            written += 1
            if drive is not None:  # the next frame's look, from the sound up to its time
                dreamer.set_params(drive.params_for(written))
            if progress is not None:
                progress(written, total, time.perf_counter() - started)
        if written == 0:
            raise SourceError(f"'{input_path}' gave no frames to render")
        if not is_still and total and written < total:  # the file was cut short (or is damaged)
            log.warning(
                "'%s' ended after %d of its %d frames (truncated or damaged?); the render has %d",
                input_path,
                written,
                total,
                written,
            )
        writer.close()
        _check_playable(partial, written, output)
        os.replace(partial, output)
        if writer.note:
            log.warning("%s: %s", output_path, writer.note)
    except RecordingError as exc:
        raise RecordingError(str(exc).replace(str(partial), output_path)) from None
    finally:
        if writer is not None:
            writer.abort()
        _remove(partial)
    return written


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


def _remove(path: Path) -> None:
    """Remove a temporary file; a folder that turned read-only or vanished is said, not raised."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary file %s (%s); delete it by hand", path, exc.strerror)


def add_arguments(render: argparse.ArgumentParser) -> None:
    render.add_argument("input", metavar="IN", help="video file, or an image with --frames/--zoom")
    render.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    add_overwrite_option(render)
    add_live_dream_options(render)
    render.add_argument("--frames", type=int, default=None, help="stop after N frames (a still: N frames)")
    render.add_argument("--zoom", type=finite, default=None, help="a still's zoom per frame, e.g. 1.02")
    render.add_argument("--codec", default="h264", choices=tuple(CODECS), help="h264 (default), prores")
    sound = render.add_mutually_exclusive_group()
    sound.add_argument("--audio-react", action="store_true", help="the dream follows the input's own sound")
    sound.add_argument("--audio", default=None, metavar="FILE", help="a sound track drives the dream (kept)")


def run(args: argparse.Namespace) -> int:
    from realtime.commands.progress import ProgressLine
    from realtime.commands.signals import stop_on_signals

    if args.frames is not None and args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.zoom is not None and not 1.0 < args.zoom <= 2.0:
        raise DreamcamError(f"--zoom must be above 1 and at most 2 (e.g. 1.02), got {args.zoom}")
    params, _, make = offline_dreamer(args)
    audio = _render_audio(args, params) if args.audio_react or args.audio else None
    if args.zoom is not None:
        params = params.replace(warm_start="off")  # the zoom feeds the last dream back itself

    # SIGTERM/SIGHUP abort the render (Interrupted): render's cleanup removes its temporary file
    with stop_on_signals(), ProgressLine() as bar:

        def progress(done: int, total: int, elapsed: float) -> None:
            rate = done / elapsed if elapsed > 0 else 0.0
            if total:
                eta = (total - done) / rate if rate else 0.0
                filled = "#" * (24 * done // total)
                bar.update(f"rendering {filled:<24} {done}/{total} frames  {rate:4.1f} fps  ETA {eta:4.0f} s")
            else:
                bar.update(f"rendering {done} frames  {rate:4.1f} fps")

        written = render(
            args.input,
            args.output,
            make(params),
            args.frames,
            args.zoom,
            progress,
            args.codec,
            audio,
            overwrite=args.overwrite,
        )
    print(f"dreamcam: wrote {written} frames to {args.output}", file=sys.stderr)
    return 0


def _render_audio(args: argparse.Namespace, params: DreamParams) -> RenderAudioPlan:
    """The sound that drives a render: checked (aubio there, the file there) before any dreaming."""
    from models.registry import get_spec
    from realtime.audio.analysis import FeatureAnalyzer
    from realtime.audio.filein import check_sound_file
    from realtime.audio.mapping import DEFAULT_MAPPING
    from realtime.show.presets import bundled_dir, load_audio_mapping, load_folder, look_path

    FeatureAnalyzer()  # no aubio: one line saying what to install, before the network loads
    if args.audio:
        check_sound_file(args.audio)
    mapping = (load_audio_mapping(look_path(args.preset)) if args.preset else None) or DEFAULT_MAPPING
    return RenderAudioPlan(
        args.audio,
        mapping,
        get_spec(params.model).layers,
        tuple(load_folder(bundled_dir())) if mapping.every else (),
    )
