"""The `dreamcam` command: run (live), dream (one still), bench (JSON timing), models (registry).

Every user mistake ends as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import torch

from models.registry import get_spec, list_specs
from realtime.commands.signals import Interrupted, stop_on_signals
from realtime.dream.backends import BACKENDS, DEVICES, PRECISION_CHOICES
from realtime.dream.backends.onnx_export import print_progress
from realtime.errors import DreamcamError, SourceError
from realtime.io.videofile import CODECS
from realtime.params import WARM_START_MODES, DreamParams, parse_size

log = logging.getLogger("dreamcam")

COMMANDS = ("run", "dream", "render", "eval", "bench", "export", "soak", "models", "looks", "doctor")
CPU_DREAM_SIZE, GPU_DREAM_SIZE = "320x180", "640x360"
DEFAULT_CAMERA = "0"
HEADLESS_MAX_SIZE = (3840, 2160)  # UHD: the largest picture a headless show records


def finite(text: str) -> float:
    """argparse's float, without nan and inf (which float() accepts and every range check lets by)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (exit 2) like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_dream_options(p: argparse.ArgumentParser, steps: int, octaves: int, lr: float) -> None:
    p.add_argument("--model", default="efficientnet_lite0", help="network (see 'dreamcam models')")
    p.add_argument("--layer", default=None, help="layer, layer:channel, class:NAME, or a+0.5*b")
    p.add_argument("--steps", type=int, default=steps, help=f"gradient steps per octave (default {steps})")
    p.add_argument("--octaves", type=int, default=octaves, help=f"octaves (default {octaves})")
    p.add_argument("--lr", type=finite, default=lr, help=f"step size (default {lr})")
    p.add_argument("--seed", type=int, default=None, help="random seed for jitter")
    p.add_argument("--weights", default=None, help="weights file to load instead of the model's own")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto: cuda, then mps, then cpu")


def _add_backend_options(p: argparse.ArgumentParser, choices: Sequence[str] = BACKENDS) -> None:
    help_all = "; all: each in turn" if "all" in choices else ""
    p.add_argument("--backend", default="auto", choices=choices, help=f"how the step runs{help_all}")
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="the network's precision; auto: fp32, or on cudagraph half where a probe finds it as good",
    )


def _add_show_options(run: argparse.ArgumentParser) -> None:
    """Show control and outputs (realtime.show.plan): presets, playlists, OSC, MIDI, recording, vcam."""
    _add_preset_option(run)
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


def _add_overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the dream's maths (default on a CPU: one per core but one, which the "
        "display and the flow need)",
    )


def _set_threads(args: argparse.Namespace, device: torch.device) -> None:
    """--threads, or for a live dream on the CPU one core fewer than the machine has (the display
    and the flow need the other: budget.live_dream_threads)."""
    from realtime.dream.budget import live_dream_threads

    if args.threads is None:
        if device.type == "cpu":
            torch.set_num_threads(live_dream_threads(os.cpu_count()))
            log.info("the dream's maths on %d of %d cores", torch.get_num_threads(), os.cpu_count())
        return
    if not 1 <= args.threads <= 256:
        raise DreamcamError(f"--threads must be 1..256, got {args.threads}")
    torch.set_num_threads(args.threads)


def _add_preset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default=None,
        metavar="NAME|FILE",
        help="a look: a bundled name (see 'dreamcam looks') or a preset file; replaces the dream options",
    )


DEPTH_HELP = (
    f"how deep a warm dream grows: mean residual (0-1) where it stops stepping (default {DreamParams.depth})"
)


def _add_live_dream_options(p: argparse.ArgumentParser) -> None:
    """The live loop's dream options, for commands that replay it offline (render, eval)."""
    _add_dream_options(p, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
    _add_preset_option(p)
    p.add_argument("--dream-size", default=None, help="WxH (default 320x180 CPU, 640x360 GPU)")
    p.add_argument("--warm-start", default=DreamParams.warm_start, choices=WARM_START_MODES)
    p.add_argument("--persistence", type=finite, default=DreamParams.persistence)
    p.add_argument("--stillness-boost", type=finite, default=DreamParams.stillness_boost)
    p.add_argument("--depth", type=finite, default=DreamParams.depth, help=DEPTH_HELP)
    _add_backend_options(p)


def build_parser() -> argparse.ArgumentParser:
    levels = ("debug", "info", "warning", "error")
    parser = OneLineParser(prog="dreamcam", description="Real-time webcam DeepDream.")
    parser.add_argument("--log-level", default="warning", choices=levels)
    # accepted after the command too (`dreamcam bench --log-level info`), without overriding the default
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=levels)
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    run = sub.add_parser("run", parents=[common], help="dream live (camera, video, image, synthetic)")
    run.add_argument("--source", default=None, help="camera index, video, image, URL or 'synthetic'")
    _add_dream_options(run, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
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
    _add_backend_options(run)
    _add_threads_option(run)
    run.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    run.add_argument("--display", type=int, default=0, help="monitor index for fullscreen")
    run.add_argument("--headless", action="store_true", help="no window (record or benchmark)")
    run.add_argument("--frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--record", default=None, metavar="OUT.mp4", help="record the composed output")
    _add_overwrite_option(run)
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

    dream = sub.add_parser("dream", parents=[common], help="dream one still image at full quality")
    dream.add_argument("input", metavar="IN", help="image file, or 'noise'")
    dream.add_argument("-o", "--output", required=True, metavar="OUT")
    _add_overwrite_option(dream)
    _add_dream_options(dream, steps=10, octaves=4, lr=0.02)

    bench = sub.add_parser("bench", parents=[common], help="time the live window's loop; prints JSON")
    _add_dream_options(bench, steps=DreamParams.steps, octaves=DreamParams.octaves, lr=DreamParams.lr)
    _add_preset_option(bench)
    bench.add_argument("--dream-size", default=None)
    bench.add_argument("--warm-start", default=DreamParams.warm_start, choices=WARM_START_MODES)
    bench.add_argument("--persistence", type=finite, default=DreamParams.persistence)
    bench.add_argument("--stillness-boost", type=finite, default=DreamParams.stillness_boost)
    bench.add_argument(
        "--window",
        default="1920x1080",
        metavar="WxH|none",
        help="the show window's size (off-screen without a display; default 1920x1080); none: no window",
    )
    _add_threads_option(bench)
    _add_backend_options(bench, (*BACKENDS, "all"))
    bench.add_argument("--frames", type=int, default=60, help="dreams to time (default 60)")
    bench.add_argument(
        "--camera-fps", type=finite, default=None, help="synthetic camera rate (default 30 CPU, 240 GPU)"
    )
    bench.add_argument("--compare-cold", action="store_true", help="also time the classic cold-start loop")
    bench.add_argument(
        "--repeats", type=int, default=1, help="runs per backend, in alternating order; rows are medians"
    )
    bench.add_argument(
        "--budget-s", type=finite, default=None, help="start no new round of repeats after this many seconds"
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="time one frame's stages apart (upload, flow, warm start, step, anchor, compose, download)",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")

    render = sub.add_parser("render", parents=[common], help="dream every frame of a video file")
    render.add_argument("input", metavar="IN", help="video file, or an image with --frames/--zoom")
    render.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    _add_overwrite_option(render)
    _add_live_dream_options(render)
    render.add_argument("--frames", type=int, default=None, help="stop after N frames (a still: N frames)")
    render.add_argument("--zoom", type=finite, default=None, help="a still's zoom per frame, e.g. 1.02")
    render.add_argument("--codec", default="h264", choices=tuple(CODECS), help="h264 (default), prores")
    sound = render.add_mutually_exclusive_group()
    sound.add_argument("--audio-react", action="store_true", help="the dream follows the input's own sound")
    sound.add_argument("--audio", default=None, metavar="FILE", help="a sound track drives the dream (kept)")

    evaluate = sub.add_parser("eval", parents=[common], help="quality figures of a clip's dream (JSON)")
    evaluate.add_argument("input", metavar="IN.mp4")
    _add_live_dream_options(evaluate)
    evaluate.add_argument("--frames", type=int, default=None, help="use the first N frames")
    evaluate.add_argument(
        "--modes",
        default="flow,residual,off",
        help="warm-start modes to measure, comma-separated (default flow,residual,off)",
    )
    evaluate.add_argument("--json", action="store_true", help="one JSON object (the only output format)")

    export = sub.add_parser("export", parents=[common], help="export the gradient step to ONNX")
    export.add_argument("--model", default="efficientnet_lite0")
    export.add_argument("--layer", default=None)
    export.add_argument("--dream-size", default=CPU_DREAM_SIZE)
    export.add_argument("--steps", type=int, default=1, help="steps unrolled in one graph (default 1)")
    export.add_argument("--weights", default=None)
    export.add_argument("-o", "--output", default=None, help="FILE.onnx (default: the live cache)")
    _add_overwrite_option(export)

    soak = sub.add_parser("soak", parents=[common], help="headless endurance run; prints JSON")
    _add_dream_options(soak, steps=1, octaves=1, lr=DreamParams.lr)
    soak.add_argument("--dream-size", default="96x54", help="small by default: many frames, quickly")
    soak.add_argument("--frames", type=int, default=10_000)

    sub.add_parser("models", parents=[common], help="list networks, layers and weights")
    sub.add_parser("looks", parents=[common], help="list the bundled looks (for --preset NAME)")
    doctor = sub.add_parser("doctor", parents=[common], help="what this machine can run, and what to fix")
    doctor.add_argument("--json", action="store_true", help="print one JSON object only")
    return parser


# commands that install their own SIGTERM/SIGHUP handling: the show finishes like Q, render cleans up
OWN_SIGNAL_HANDLING = ("run", "render")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--log-level")):
        argv.insert(0, "run")  # `dreamcam [run] ...`
    elif argv[0] == "--log-level" and (len(argv) < 3 or argv[2] not in COMMANDS):
        argv.insert(2, "run")
    args = build_parser().parse_args(argv)
    _quiet_opencv()
    logging.basicConfig(level=args.log_level.upper(), format="dreamcam: %(message)s", stream=sys.stderr)
    # Python warnings (torch's about a pickle's protocol, a library's deprecations) are not ours to
    # show before our one-line error: they go to the log, shown with --log-level debug only
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if args.log_level == "debug" else logging.ERROR)
    for chatty in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's internals, not ours
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        commands = {
            "run": cmd_run,
            "dream": cmd_dream,
            "render": cmd_render,
            "eval": cmd_eval,
            "bench": cmd_bench,
            "export": cmd_export,
            "soak": cmd_soak,
            "models": cmd_models,
            "looks": cmd_looks,
            "doctor": cmd_doctor,
        }
        if args.command in OWN_SIGNAL_HANDLING:
            return commands[args.command](args)
        # every other command holds SIGTERM/SIGHUP too (Interrupted, below): left to the default,
        # SDL takes them for a bench's window and posts a quit event nothing reads, and a `kill`
        # left the bench running
        with stop_on_signals():
            return commands[args.command](args)
    except DreamcamError as exc:
        print(f"dreamcam: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Interrupted as exc:  # SIGTERM/SIGHUP where the command cannot finish its work (render)
        print(f"dreamcam: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:  # `dreamcam models | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def _quiet_opencv() -> None:
    """OpenCV's and FFmpeg's own warnings (a camera probe, a broken file) would break our one-line
    error promise; our errors say what went wrong instead."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg starts
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _params(args: argparse.Namespace, **extra) -> DreamParams:
    """The look from the options, or from --preset NAME|FILE where it is given (the same look live
    and offline: a preset is every DreamParams field)."""
    if getattr(args, "preset", None):
        from realtime.show.presets import load_look

        return load_look(args.preset)
    spec = get_spec(args.model)
    return DreamParams(
        model=spec.name,
        layer=args.layer or spec.default_layer,
        steps=args.steps,
        octaves=args.octaves,
        lr=args.lr,
        **extra,
    )


def _live_params(args: argparse.Namespace) -> DreamParams:
    """The look with the live loop's warm-start options: `run`, `render` and `eval` dream alike."""
    return _params(
        args,
        warm_start=args.warm_start,
        persistence=args.persistence,
        stillness_boost=args.stillness_boost,
        depth=args.depth,
    )


def _device_and_size(args: argparse.Namespace) -> tuple[torch.device, tuple[int, int]]:
    from realtime.dream.backends import resolve_device
    from realtime.dream.budget import check_dream_size, slow_on_cpu

    device = resolve_device(args.device)
    size = parse_size(args.dream_size or (GPU_DREAM_SIZE if device.type == "cuda" else CPU_DREAM_SIZE))
    check_dream_size(size, args.model, device)
    if slow_on_cpu(size, device):
        log.warning(
            "dream size %dx%d on a CPU: expect seconds per frame (the CPU default is %s)",
            *size,
            CPU_DREAM_SIZE,
        )
    return device, size


def cmd_run(args: argparse.Namespace) -> int:
    from realtime.io.paths import check_output_path
    from realtime.io.videofile import check_codec
    from realtime.show.plan import plan_show

    if args.audio == "list":
        from realtime.audio.live import describe_inputs

        print("\n".join(describe_inputs()))
        return 0
    params = _live_params(args)
    device, dream_size = _device_and_size(args)
    _set_threads(args, device)
    if args.frames is not None and args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.record:
        source = [args.source] if args.source and os.path.exists(args.source) else []
        check_output_path(args.record, inputs=source, overwrite=args.overwrite)
        check_codec(args.record_codec, args.record)
    plan = plan_show(args, params)  # reads presets, playlist, MIDI map: mistakes show before the camera
    governor = _governor(args, plan.params, dream_size)
    if args.attract_after <= 0:
        raise DreamcamError(f"--attract-after must be a positive number of minutes, got {args.attract_after}")
    # SIGTERM/SIGHUP end the show the way Q does: between frames, recordings finished, exit 0
    stop = ShowStop()
    with stop_on_signals(stop.request):
        return _run_show(args, plan, device, dream_size, governor, stop)


class ShowStop:
    """A stop asked for by a signal: ends the show's loop (or keeps it from starting)."""

    def __init__(self) -> None:
        self.requested = False
        self.state = None  # the ShowState, once there is one

    def request(self, signum: int = 0) -> None:
        self.requested = True
        if self.state is not None:
            self.state.quit = True


def _run_show(args, plan, device, dream_size, governor, stop: ShowStop) -> int:
    from realtime.dream.dreamer import build_dreamer
    from realtime.loop.pipeline import AttractLoop, Pipeline
    from realtime.loop.showio import ShowIO
    from realtime.show.control import ShowState

    params = plan.params
    source = _open_live_source(args.source, _show_max_size(args))
    window = show = attract = attract_source = None
    try:
        dreamer = build_dreamer(
            params,
            dream_size,
            device,
            args.backend,
            args.weights,
            args.seed,
            progress=print_progress,
            precision=args.precision,
        )
        if not args.headless:
            from realtime.io.display import Window

            window = Window(
                fullscreen=args.kiosk or not args.windowed, display=args.display, kiosk=args.kiosk
            )
        state = ShowState(params, dreamer.network.spec.layers, hud=not args.kiosk)
        stop.state, state.quit = state, stop.requested
        show = plan.start(state, dreamer.network.spec, source.fps, record_codec=args.record_codec)
        if show.web is not None:
            show.web.print_invitation(sys.stderr)
        # a headless run records or counts frames: a recording the disk refuses ends it (exit 1)
        show.quit_on_record_failure = args.headless
        if args.kiosk:
            from realtime.io.sources import open_source
            from realtime.show.attract import AttractMode

            attract = AttractMode(idle_s=args.attract_after * 60.0)
            attract_source = open_source("synthetic")
        # with a window the display runs at the camera's rate and never waits for the dream;
        # headless (recording a file), every frame is dreamed before it is written
        pipeline = Pipeline(
            source,
            dreamer,
            state,
            ShowIO(window=window, show=show, snapshot_dir=plan.snapshot_dir),
            threaded=window is not None,
            governor=governor,
            attract=AttractLoop(attract, attract_source) if attract is not None else None,
        )
        show.figures = pipeline.figures
        if args.headless and not args.record and args.frames is None:
            print(
                "dreamcam: --headless without --record or --frames: frames go nowhere (no window, "
                "no file); stop with Ctrl+C or SIGTERM",
                file=sys.stderr,
            )
        pipeline.run(args.frames)
    finally:
        source.close()
        if attract_source is not None:
            attract_source.close()
        if show is not None:
            show.close()
        if window is not None:
            window.close()
    recording = show.recording
    if args.headless and recording is not None and recording.failures:
        return 1  # the recorder's log line said why
    return 0


def _governor(args: argparse.Namespace, params: DreamParams, dream_size: tuple[int, int]):
    """The quality governor for --target-fps (None without it), its floor checked up front."""
    from realtime.loop.governor import GovernorLimits, Quality, QualityGovernor

    if args.target_fps is None:
        return None
    if not 0.1 <= args.target_fps <= 1000.0:
        raise DreamcamError(f"--target-fps must be 0.1..1000 dreams a second, got {args.target_fps:g}")
    limits = GovernorLimits(
        best=Quality(params.steps, dream_size), worst=Quality(args.min_steps, parse_size(args.min_dream_size))
    )
    return QualityGovernor(args.target_fps, limits)


def _show_max_size(args: argparse.Namespace) -> tuple[int, int]:
    """The largest picture the show can use: the monitor's desktop with a window, else UHD."""
    if args.headless:
        return HEADLESS_MAX_SIZE
    from realtime.io.display import desktop_size

    return desktop_size(args.display) or HEADLESS_MAX_SIZE


def _open_live_source(spec: str | None, max_size: tuple[int, int] | None = None):
    """The asked-for source; with no --source, camera 0, or the synthetic scene if it does not answer.
    Frames larger than `max_size` are reduced at the source."""
    from realtime.io.sources import open_source

    if spec is not None:
        return open_source(spec, max_size=max_size)
    try:
        return open_source(DEFAULT_CAMERA, max_size=max_size)
    except SourceError as exc:
        print(f"dreamcam: {exc}; dreaming on the synthetic scene instead", file=sys.stderr)
        return open_source("synthetic")


def cmd_dream(args: argparse.Namespace) -> int:
    from realtime.commands.still import dream_still, load_image, write_image
    from realtime.dream.backends import resolve_device
    from realtime.io.paths import check_output_path
    from realtime.io.sinks import IMAGE_EXTS

    params = _params(args)
    check_output_path(args.output, IMAGE_EXTS, inputs=[args.input], overwrite=args.overwrite)
    image = load_image(args.input, args.seed)

    def progress(done: int, total: int) -> None:
        bar = "#" * (20 * done // total)
        print(
            f"\rdreaming {bar:<20} octave {done}/{total}", end="\n" if done == total else "", file=sys.stderr
        )

    dreamt = dream_still(image, params, resolve_device(args.device), args.weights, args.seed, progress)
    write_image(args.output, dreamt)
    print(f"dreamcam: wrote {args.output}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from models.registry import load_network
    from realtime.commands.bench import (
        bench_backends,
        compare_backends,
        goal_ratios,
        profile_stages,
        run_bench,
    )

    if args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.repeats < 1:
        raise DreamcamError(f"--repeats must be at least 1, got {args.repeats}")
    if args.camera_fps is not None and not 1.0 <= args.camera_fps <= 1000.0:
        raise DreamcamError(f"--camera-fps must be 1..1000 frames a second, got {args.camera_fps:g}")
    params = _params(
        args, warm_start=args.warm_start, persistence=args.persistence, stillness_boost=args.stillness_boost
    )
    device, dream_size = _device_and_size(args)
    window = None if args.window.lower() == "none" else parse_size(args.window)
    _set_threads(args, device)
    if args.profile:
        if args.backend == "all":
            raise DreamcamError("--profile times one backend; choose it with --backend")
        profile = profile_stages(
            params, dream_size, device, args.backend, args.frames, args.weights, args.seed, args.precision
        )
        print(json.dumps(profile))
        return 0
    backends = bench_backends(device, args.precision) if args.backend == "all" else [args.backend]
    network = load_network(params.model, args.weights, device)  # once, for every backend and repeat

    def measure(backend: str) -> dict:
        return run_bench(
            params,
            dream_size,
            device,
            backend,
            args.frames,
            args.compare_cold,
            weights=args.weights,
            seed=args.seed,
            camera_fps=args.camera_fps,
            precision=args.precision,
            window_size=window,
            network=network,
        )

    if args.backend != "all" and args.repeats == 1:
        print(json.dumps(measure(args.backend)))  # one backend: its error is the command's
        return 0
    rows = compare_backends(backends, measure, args.repeats, args.budget_s)
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"dreamcam bench: backend {row['backend']} failed: {row['error']}", file=sys.stderr)
    if args.backend == "all":
        measured = [row for row in rows if "kernel_fps" in row]
        print(json.dumps({"backends": rows, "ratios": goal_ratios(measured), "ok": not failed}))
    else:
        print(json.dumps(rows[0]))
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export (or refresh) the ONNX gradient step; without -o it fills the cache `--backend onnx`
    reads, so a show can start without the export's pause."""
    from pathlib import Path

    from models.registry import load_network
    from realtime.dream.backends.onnx_export import cached_path, export_step
    from realtime.dream.objectives import parse_objective
    from realtime.io.paths import check_output_path

    size = parse_size(args.dream_size)
    if not 1 <= args.steps <= 8:
        raise DreamcamError(f"--steps must be 1..8 for an export, got {args.steps}")
    if args.output:
        check_output_path(args.output, (".onnx",), overwrite=args.overwrite)
    network = load_network(args.model, args.weights)
    objective = parse_objective(args.layer or network.spec.default_layer, network.spec)
    path = Path(args.output) if args.output else cached_path(network, str(objective), size, args.steps)
    export_step(network, objective, size, args.steps, path, print_progress)
    print(path)
    return 0


def _offline_dreamer(args: argparse.Namespace):
    """Parameters and a dreamer factory for render/eval, from the live options."""
    from realtime.dream.dreamer import FrameDreamer, build_dreamer

    params = _live_params(args)
    device, size = _device_and_size(args)
    network = None

    def make(p: DreamParams) -> FrameDreamer:
        nonlocal network
        dreamer = build_dreamer(
            p, size, device, args.backend, args.weights, args.seed, network, print_progress, args.precision
        )
        network = dreamer.network  # loaded once, shared by every dreamer of the run
        return dreamer

    return params, size, make


def cmd_render(args: argparse.Namespace) -> int:
    from realtime.commands.progress import ProgressLine
    from realtime.commands.render import render

    if args.frames is not None and args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    if args.zoom is not None and not 1.0 < args.zoom <= 2.0:
        raise DreamcamError(f"--zoom must be above 1 and at most 2 (e.g. 1.02), got {args.zoom}")
    params, _, make = _offline_dreamer(args)
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


def _render_audio(args: argparse.Namespace, params: DreamParams):
    """The sound that drives a render: checked (aubio there, the file there) before any dreaming."""
    from realtime.audio.analysis import FeatureAnalyzer
    from realtime.audio.filein import check_sound_file
    from realtime.audio.mapping import DEFAULT_MAPPING
    from realtime.audio.offline import RenderAudioPlan
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


def cmd_eval(args: argparse.Namespace) -> int:
    from realtime.commands.evaluate import evaluate
    from realtime.params import WARM_START_MODES

    if args.frames is not None and args.frames < 2:
        raise DreamcamError(f"--frames must be at least 2 to measure the warping error, got {args.frames}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in WARM_START_MODES]
    if bad or not modes:
        choices = ", ".join(WARM_START_MODES)
        raise DreamcamError(f"--modes '{args.modes}': choose from {choices}, comma-separated")
    params, size, make = _offline_dreamer(args)
    print(json.dumps(evaluate(args.input, make, params, size, args.frames, modes)))
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    from realtime.commands.soak import run_soak
    from realtime.dream.backends import resolve_device
    from realtime.dream.budget import check_dream_size

    if args.frames < 1:
        raise DreamcamError(f"--frames must be at least 1, got {args.frames}")
    device, size = resolve_device(args.device), parse_size(args.dream_size)
    check_dream_size(size, args.model, device)

    def progress(done: int, total: int) -> None:
        print(f"\rsoak {done}/{total} frames", end="\n" if done == total else "", file=sys.stderr, flush=True)

    result = run_soak(
        _params(args),
        size,
        device,
        args.frames,
        args.seed or 0,
        progress,
    )
    print(json.dumps(result))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for spec in list_specs():
        missing = "not downloaded yet" if spec.weights.url else "not installed"
        state = "available" if spec.weights.available() else missing
        print(f"{spec.name}: {spec.title}")
        print(f"  weights: {state} ({spec.weights.description}; {spec.licence})")
        print(f"  default layer: {spec.default_layer}")
        print(f"  layers: {' '.join(spec.layers)}")
    return 0


def cmd_looks(args: argparse.Namespace) -> int:
    from realtime.show.presets import bundled_looks, load_preset

    for number, (name, description, path) in enumerate(bundled_looks(), start=1):
        p = load_preset(path)
        print(f"{name}: {description}")
        print(f"  key {number}  {p.model} {p.layer}  steps {p.steps}  lr {p.lr:g}  warm start {p.warm_start}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from realtime.commands import doctor

    return doctor.main(as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
