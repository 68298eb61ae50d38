"""`dreamcam run` (the default command): the live show's options and its entry. The show itself is
put together in realtime/commands/live_show.py."""

from __future__ import annotations

import argparse
import os

from realtime.commands.live_show import ShowStop, quality_governor, run_show
from realtime.commands.options import (
    DEPTH_HELP,
    add_backend_options,
    add_dream_options,
    add_overwrite_option,
    add_preset_option,
    add_threads_option,
    device_and_size,
    finite,
    live_params,
    set_threads,
)
from realtime.commands.signals import stop_on_signals
from realtime.errors import DreamcamError
from realtime.io.videofile import CODECS
from realtime.params import WARM_START_MODES, DreamParams


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--source", default=None, help="camera index, video, image, URL or 'synthetic'")
    add_dream_options(run, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
    run.add_argument(
        "--dream-size", default=None, help="WxH the dream runs at (default 320x180 CPU, 640x360 GPU)"
    )
    run.add_argument("--warm-start", default=DreamParams.warm_start, choices=WARM_START_MODES)
    run.add_argument("--persistence", type=finite, default=DreamParams.persistence)
    run.add_argument(
        "--stillness-boost",
        type=finite,
        default=DreamParams.stillness_boost,
        help="0 turns motion reaction off",
    )
    run.add_argument("--depth", type=finite, default=DreamParams.depth, help=DEPTH_HELP)
    add_backend_options(run)
    add_threads_option(run)
    run.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    run.add_argument("--display", type=int, default=0, help="monitor index for fullscreen")
    run.add_argument("--headless", action="store_true", help="no window (record or benchmark)")
    run.add_argument("--frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--record", default=None, metavar="OUT.mp4", help="record the composed output")
    add_overwrite_option(run)
    run.add_argument(
        "--record-codec",
        default="h264",
        choices=tuple(CODECS),
        help="h264 (default, .mp4), prores or dnxhr (.mov, for editing), h264_nvenc (NVIDIA GPU)",
    )
    run.add_argument(
        "--kiosk", action="store_true", help="unattended: fullscreen, no HUD, Ctrl+Shift+Q quits"
    )
    run.add_argument("--attract-after", type=finite, default=5.0, help="kiosk: minutes without motion (5)")
    run.add_argument("--target-fps", type=finite, default=None, help="hold this dream rate (live window)")
    run.add_argument("--min-steps", type=int, default=1, help="governor floor for --steps (default 1)")
    run.add_argument("--min-dream-size", default="160x90", help="governor floor for --dream-size")
    _add_show_options(run)


def _add_show_options(run: argparse.ArgumentParser) -> None:
    """Show control and outputs (realtime.show.plan): presets, playlists, OSC, MIDI, recording, vcam."""
    add_preset_option(run)
    run.add_argument(
        "--preset-dir", default=None, metavar="DIR", help="presets for keys 1-9 (default: bundled)"
    )
    run.add_argument("--playlist", default=None, metavar="FILE", help="cycle presets with crossfades")
    run.add_argument("--record-dir", default="recordings", metavar="DIR", help="where R records")
    run.add_argument("--osc-port", type=int, default=None, metavar="N", help="listen for OSC on UDP port N")
    run.add_argument("--osc-host", default="127.0.0.1", help="address OSC listens on (default 127.0.0.1)")
    run.add_argument("--midi", default=None, metavar="PORT", help="MIDI input port (name or part of it)")
    run.add_argument("--midi-map", default=None, metavar="FILE", help="MIDI CC mapping file (TOML)")
    run.add_argument("--virtual-cam", action="store_true", help="send the output to a virtual camera")
    run.add_argument("--virtual-cam-size", default="1280x720", metavar="WxH")
    run.add_argument("--ndi-out", default=None, metavar="NAME", help="publish the output as an NDI source")
    run.add_argument("--ndi-format", default="uyvy", choices=("uyvy", "rgba"), help="NDI pixel format")
    run.add_argument("--spout", default=None, metavar="NAME", help="Spout sender (Windows)")
    run.add_argument("--syphon", default=None, metavar="NAME", help="Syphon server (macOS)")
    run.add_argument(
        "--osc-feedback", default=None, metavar="HOST:PORT", help="send the live state to a controller"
    )
    run.add_argument(
        "--web",
        default=None,
        metavar="[HOST:]PORT",
        help="serve a control page for a phone (loopback unless HOST; docs/REMOTE.md)",
    )
    _add_keepsake_options(run)
    run.add_argument(
        "--audio",
        nargs="?",
        const="default",
        default=None,
        metavar="DEVICE",
        help="react to an audio input (index or part of its name; default input if none); 'list' lists them",
    )


def _add_keepsake_options(run: argparse.ArgumentParser) -> None:
    """The booth's keepsakes (with --web: realtime.show.plan.plan_keepsakes checks them)."""
    run.add_argument(
        "--keepsake-ttl", type=finite, default=30.0, metavar="MIN", help="minutes a keepsake lives (30)"
    )
    run.add_argument("--keepsake-dir", default=None, metavar="DIR", help="also keep every keepsake here")
    run.add_argument(
        "--keepsake-countdown", type=int, default=3, metavar="S", help="seconds of 3-2-1 before (0: none)"
    )
    run.add_argument(
        "--keepsake-qr-s", type=finite, default=10.0, metavar="S", help="seconds its QR code shows (10)"
    )


def run(args: argparse.Namespace) -> int:
    from realtime.io.paths import check_output_path
    from realtime.io.videofile import check_codec
    from realtime.show.plan import plan_show

    if args.audio == "list":
        from realtime.audio.live import describe_inputs

        print("\n".join(describe_inputs()))
        return 0
    params = live_params(args)
    device, dream_size = device_and_size(args)
    set_threads(args, device)
    if args.frames is not None and args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.record:
        source = [args.source] if args.source and os.path.exists(args.source) else []
        check_output_path(args.record, inputs=source, overwrite=args.overwrite)
        check_codec(args.record_codec, args.record)
    plan = plan_show(args, params)  # reads presets, playlist, MIDI map: mistakes show before the camera
    governor = quality_governor(args, plan.params, dream_size)
    if args.attract_after <= 0:
        raise DreamcamError(f"--attract-after must be a positive number of minutes, got {args.attract_after}")
    # SIGTERM/SIGHUP end the show the way Q does: between frames, recordings finished, exit 0
    stop = ShowStop()
    with stop_on_signals(stop.request):
        return run_show(args, plan, device, dream_size, governor, stop)
