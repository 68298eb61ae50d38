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
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from realtime.audio.offline import RenderAudio, RenderAudioPlan
from realtime.cluster import options as split_options
from realtime.commands.options import add_live_dream_options, add_overwrite_option, finite, offline_dreamer
from realtime.commands.render_io import (
    Progress,
    check_request,
    finish,
    partial_path,
    remove_temporary,
    video_frames,
    zoom_frames,
)
from realtime.commands.still import load_image
from realtime.dream.dreamer import FrameDreamer
from realtime.dream.frames import residual_array
from realtime.errors import DreamcamError, SourceError
from realtime.io.videofile import CODECS, RecordingError, VideoFileWriter
from realtime.loop.compose import add_upscaled
from realtime.params import DreamParams

log = logging.getLogger(__name__)


def dreamt_frames(
    images: Iterable[np.ndarray],
    dreamer: FrameDreamer,
    drive: RenderAudio | None = None,
    *,
    composed: bool = False,
) -> Iterator[np.ndarray]:
    """What `render` writes, frame by frame: each image dreamt and composed (`composed`: a zoom's
    frames, dreamt already, passed on). With `drive`, each frame's look comes from the sound up to
    that frame's time, set before it is dreamt, and its dream is shown with that frame's swell
    (docs/AUDIO.md). tools/audio_figures.py measures these frames, before any encoder."""
    if drive is not None:
        dreamer.set_params(drive.params_for(0))
    for n, image in enumerate(images, start=1):
        if composed:
            yield image
        else:
            gain = drive.shown_gain() if drive is not None else 1.0
            yield add_upscaled(image, residual_array(dreamer.residual(image)), gain)
        if drive is not None:  # the next frame's look, from the sound up to its time
            dreamer.set_params(drive.params_for(n))


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
    is_still = check_request(input_path, output_path, frames, zoom, codec, audio, overwrite)
    if is_still:
        fps, total = 30.0, frames
    else:
        source, fps, total = video_frames(input_path)
        if frames:
            total = min(total, frames) if total else frames
    drive = audio.start(input_path, fps, dreamer.params) if audio is not None else None
    if is_still:
        gain = drive.shown_gain if drive is not None else lambda: 1.0
        source = zoom_frames(load_image(input_path, None), frames, zoom or 1.02, dreamer, gain)
    sound = audio.sound_of(input_path) if audio is not None else None if is_still else input_path
    output = Path(output_path)
    partial = partial_path(output)
    written = 0
    started = time.perf_counter()
    writer = None
    try:
        writer = VideoFileWriter(str(partial), fps, codec, live=False, audio_from=sound)
        for image in dreamt_frames(source, dreamer, drive, composed=is_still):
            writer.write(image)
            written += 1
            if progress is not None:
                progress(written, total, time.perf_counter() - started)
            if frames and written >= frames:
                break
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
        finish(writer, partial, output, written)
    except RecordingError as exc:
        raise RecordingError(str(exc).replace(str(partial), output_path)) from None
    finally:
        if writer is not None:
            writer.abort()
        remove_temporary(partial)
    return written


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
    split_options.add_arguments(render)


def run(args: argparse.Namespace) -> int:
    from realtime.commands.progress import ProgressLine
    from realtime.commands.signals import stop_on_signals

    _check_counts(args)
    if split_options.wanted(args):
        return _run_split(args)
    params, _, make = offline_dreamer(args)
    audio = _render_audio(args, params) if args.audio_react or args.audio else None
    if args.zoom is not None:
        params = params.replace(warm_start="off")  # the zoom feeds the last dream back itself

    # SIGTERM/SIGHUP abort the render (Interrupted): render's cleanup removes its temporary file
    with stop_on_signals(), ProgressLine() as bar:
        written = render(
            args.input,
            args.output,
            make(params),
            args.frames,
            args.zoom,
            _progress(bar),
            args.codec,
            audio,
            overwrite=args.overwrite,
        )
    print(f"dreamcam: wrote {written} frames to {args.output}", file=sys.stderr)
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    if args.frames is not None and args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.zoom is not None and not 1.0 < args.zoom <= 2.0:
        raise DreamcamError(f"--zoom must be above 1 and at most 2 (e.g. 1.02), got {args.zoom}")


def _progress(bar, what: str = "frames") -> Progress:
    """The render's progress line: frames done of all, rate and time left."""

    def progress(done: int, total: int, elapsed: float) -> None:
        rate = done / elapsed if elapsed > 0 else 0.0
        if total:
            eta = (total - done) / rate if rate else 0.0
            filled = "#" * (24 * done // total)
            bar.update(f"rendering {filled:<24} {done}/{total} {what}  {rate:4.1f} fps  ETA {eta:4.0f} s")
        else:
            bar.update(f"rendering {done} {what}  {rate:4.1f} fps")

    return progress


def _run_split(args: argparse.Namespace) -> int:
    """`render --workers N` / `--cluster`: the same file, dreamt in chunks over Ray (docs/CLUSTER.md)."""
    from realtime.cluster.runtime import need_ray
    from realtime.cluster.split import render_split
    from realtime.commands.options import device_and_size, live_params
    from realtime.commands.progress import ProgressLine
    from realtime.commands.signals import stop_on_signals

    need_ray()  # no Ray: one line with the install command, before anything loads
    params = live_params(args)
    device, size = device_and_size(args)
    split = split_options.split_options(args, device.type if args.device != "auto" else "auto")
    audio = _render_audio(args, params) if args.audio_react or args.audio else None
    if args.zoom is not None:
        params = params.replace(warm_start="off")  # the zoom feeds the last dream back itself
    recipe = split_options.recipe(args, params, size)
    # SIGTERM/SIGHUP abort the render (Interrupted): the driver cancels its chunks, stops the Ray it
    # started and removes its temporary file
    with stop_on_signals(), ProgressLine() as bar:
        written = render_split(
            args.input,
            args.output,
            recipe,
            split,
            args.frames,
            _progress(bar, "frames dreamt"),
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
