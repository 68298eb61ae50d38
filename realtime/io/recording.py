"""The recording switch: `R` (or OSC /dreamcam/record) starts and stops recording the show.

Each start opens a new timestamped file in the record folder (never overwriting); `--record FILE`
is the first recording, started at launch. Stopping hands the old recorder to a closing thread,
so finishing its queue on a slow disk never stalls the show; frames the disk could not take are
dropped by the recorder and counted here. A recording the disk refuses (full, read-only, gone)
is stopped here and stays on the HUD as a red line until the next take starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from realtime.errors import DreamcamError
from realtime.io.hud import alert
from realtime.io.sinks import VideoRecorder, unique_path

log = logging.getLogger(__name__)

RECORD_EXT = ".mp4"
# takes still being finished (their queues encoded, their files closed) beyond which a new one is
# refused: 20 toggles a second kept every closed recorder, 6 MB and 6 threads each, for good
MAX_CLOSING = 4


class RecordingSwitch:
    def __init__(
        self,
        folder: str,
        fps: float,
        first_path: str | None = None,
        recorder_factory: Callable[[str, float], VideoRecorder] = VideoRecorder,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.folder, self.fps = folder, fps
        self.factory, self.clock = recorder_factory, clock
        self.recorder: VideoRecorder | None = None
        self.paths: list[str] = []  # every file this show recorded, in order
        # takes being finished on their own threads; once done, only their figures are kept
        self._closing: list[tuple[threading.Thread, VideoRecorder]] = []
        self._done_dropped = 0  # frames the finished takes dropped
        self._done_failures: list[str] = []  # why finished takes failed (disk full...)
        self._started_at = 0.0
        self.failure: str | None = None  # why the last recording ended on its own (disk full...)
        self._start_failures = 0
        if first_path is not None:
            self.start(first_path)

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def _open_recorders(self) -> list[VideoRecorder]:
        self._let_go()
        return [r for _, r in self._closing] + ([self.recorder] if self.recorder else [])

    def _let_go(self) -> None:
        """Keep the figures of takes whose files are closed, and let the recorders go."""
        for thread, recorder in [c for c in self._closing if not c[0].is_alive()]:
            self._closing.remove((thread, recorder))
            self._done_dropped += recorder.frames_dropped
            if recorder.failure is not None:
                self._done_failures.append(recorder.failure)

    @property
    def frames_dropped(self) -> int:
        return self._done_dropped + sum(r.frames_dropped for r in self._open_recorders())

    def toggle(self, on: bool | None = None) -> None:
        """None flips; True/False start/stop (a no-op when already in that state)."""
        want = not self.recording if on is None else on
        if want and not self.recording:
            self.start()
        elif not want and self.recording:
            self.stop()

    def start(self, path: str | None = None) -> str | None:
        """Start a take (at launch, `path` from --record: a failure raises; later ones are logged)."""
        first = path is not None and not self.paths
        self._let_go()
        if len(self._closing) >= MAX_CLOSING:
            self._failed(f"{len(self._closing)} takes are still being finished; start again in a moment")
            return None
        try:
            # a take stopped and restarted within a second: its file may not be on disk yet
            path = path or unique_path(self.folder, "dreamcam", RECORD_EXT, taken=self.paths)
            self.recorder = self.factory(path, self.fps)
        except (OSError, DreamcamError) as exc:
            if first:
                raise
            why = str(exc) if isinstance(exc, DreamcamError) else f"cannot record into '{self.folder}': {exc}"
            self._failed(why)
            return None
        self.failure = None
        self.paths.append(path)
        self._started_at = self.clock()
        log.info("recording to %s", path)
        return path

    def stop(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        # closing waits for the queued frames to be encoded: not on the show's thread
        thread = threading.Thread(target=recorder.close, name="recorder-close", daemon=True)
        thread.start()
        self._closing.append((thread, recorder))
        log.info("recording stopped: %s", recorder.path)

    def write(self, image: np.ndarray) -> None:
        if self.recorder is None:
            return
        if self.recorder.failure is not None:  # the disk refused it: logged by the recorder
            failure = self.recorder.failure
            self.stop()
            self._failed(failure, logged=True)
            return
        self.recorder.write(image)

    def _failed(self, message: str, logged: bool = False) -> None:
        self.failure = message
        if not logged:
            self._start_failures += 1
            log.error("%s; not recording (the show goes on)", message)

    @property
    def failures(self) -> int:
        """Recordings of this show that failed (could not start, or the disk refused them)."""
        open_failures = sum(r.failure is not None for r in self._open_recorders())
        return self._start_failures + len(self._done_failures) + open_failures

    def close(self) -> None:
        """Stop and wait until every file is complete (at the end of the show)."""
        self.stop()
        for thread, _ in self._closing:
            thread.join()
        self._let_go()
        if self._done_failures and self.failure is None:  # the disk refused the last bytes, at the end
            self.failure = self._done_failures[-1]

    def hud_line(self) -> str | None:
        if self.failure is not None and not self.recording:
            return alert(f"REC STOPPED: {self.failure}")
        dropped = self.frames_dropped
        dropped_text = f"  {dropped} dropped" if dropped else ""
        if self.recording:
            seconds = int(self.clock() - self._started_at)
            return f"REC {seconds // 60:02d}:{seconds % 60:02d}{dropped_text}"
        return f"rec off{dropped_text}" if dropped else None
