"""The live show's assembly: the source, the dreamer, the window, the show's controls and outputs,
wired into the pipeline and run until Q, a signal or --frames ends it (what `dreamcam run` starts)."""

from __future__ import annotations

import argparse
import sys

from realtime.dream.backends.onnx_export import print_progress
from realtime.errors import DreamcamError, SourceError
from realtime.params import DreamParams, parse_size

DEFAULT_CAMERA = "0"
HEADLESS_MAX_SIZE = (3840, 2160)  # UHD: the largest picture a headless show records


class ShowStop:
    """A stop asked for by a signal: ends the show's loop (or keeps it from starting)."""

    def __init__(self) -> None:
        self.requested = False
        self.state = None  # the ShowState, once there is one

    def request(self, signum: int = 0) -> None:
        self.requested = True
        if self.state is not None:
            self.state.quit = True


def run_show(args, plan, device, dream_size, governor, stop: ShowStop) -> int:
    from realtime.control.plane import ShowState
    from realtime.dream.dreamer import build_dreamer
    from realtime.loop.pipeline import AttractLoop, Pipeline
    from realtime.loop.showio import ShowIO

    params = plan.params
    source = open_live_source(args.source, show_max_size(args))
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
            from realtime.io.sources.opener import open_source
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


def quality_governor(args: argparse.Namespace, params: DreamParams, dream_size: tuple[int, int]):
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


def show_max_size(args: argparse.Namespace) -> tuple[int, int]:
    """The largest picture the show can use: the monitor's desktop with a window, else UHD."""
    if args.headless:
        return HEADLESS_MAX_SIZE
    from realtime.io.display import desktop_size

    return desktop_size(args.display) or HEADLESS_MAX_SIZE


def open_live_source(spec: str | None, max_size: tuple[int, int] | None = None):
    """The asked-for source; with no --source, camera 0, or the synthetic scene if it does not answer.
    Frames larger than `max_size` are reduced at the source."""
    from realtime.io.sources.opener import open_source

    if spec is not None:
        return open_source(spec, max_size=max_size)
    try:
        return open_source(DEFAULT_CAMERA, max_size=max_size)
    except SourceError as exc:
        print(f"dreamcam: {exc}; dreaming on the synthetic scene instead", file=sys.stderr)
        return open_source("synthetic")
