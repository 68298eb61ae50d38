"""The recording switch: toggles make separate playable files; a slow disk drops frames, never stalls."""

import os
import threading
import time

import numpy as np

from realtime.io.recording import RecordingSwitch
from realtime.io.sinks import VideoRecorder, unique_path
from realtime.params import DreamParams
from realtime.show.control import Action, Command, ShowState
from realtime.show.plan import ShowControl
from tests.videofiles import read_video


def frame(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def read_frames(path: str) -> list[np.ndarray]:
    return read_video(path)[0]


def test_two_toggles_make_two_separate_playable_files(tmp_path):
    switch = RecordingSwitch(str(tmp_path / "rec"), fps=10)
    show = ShowControl(ShowState(DreamParams(), ()), recording=switch)
    show.output(frame(10))  # not recording yet: dropped silently, not counted
    for take, count in ((1, 5), (2, 7)):
        show.handle(Action.TOGGLE_RECORD)
        assert switch.recording and show.hud_lines()[0].startswith("REC 00:00")
        for _ in range(count):
            show.output(frame(40 * take))
        show.handle(Command(Action.TOGGLE_RECORD, None, "osc"))
        assert not switch.recording
    show.close()
    first, second = switch.paths
    assert first != second and all(p.startswith(str(tmp_path / "rec")) for p in switch.paths)
    one, two = read_frames(first), read_frames(second)
    assert len(one) == 5 and len(two) == 7
    assert abs(one[0].mean() - 40) < 3 and abs(two[0].mean() - 80) < 3
    assert switch.frames_dropped == 0


def test_explicit_on_off_and_the_first_file_from_record(tmp_path):
    switch = RecordingSwitch(str(tmp_path), fps=10, first_path=str(tmp_path / "show.mp4"))
    assert switch.recording
    switch.toggle(True)  # already on: nothing new
    switch.write(frame(50))
    switch.toggle(False)
    switch.toggle(False)
    switch.close()
    assert switch.paths == [str(tmp_path / "show.mp4")]
    assert len(read_frames(switch.paths[0])) == 1


class StalledDiskRecorder(VideoRecorder):
    """A recorder whose disk does not take a single frame until `disk_ready` is set."""

    disk_ready = threading.Event()

    def _encode(self) -> None:
        self.disk_ready.wait()
        super()._encode()


def test_a_stalled_disk_drops_counted_frames_and_never_stalls_the_show(tmp_path):
    StalledDiskRecorder.disk_ready.clear()
    switch = RecordingSwitch(
        str(tmp_path), fps=10, recorder_factory=lambda path, fps: StalledDiskRecorder(path, fps, queue_size=8)
    )
    show = ShowControl(ShowState(DreamParams(), ()), recording=switch)
    show.handle(Action.TOGGLE_RECORD)
    started = time.perf_counter()
    for i in range(50):
        show.output(frame(i))
    show.handle(Action.TOGGLE_RECORD)  # stopping does not wait for the stalled disk either
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"the show waited {elapsed:.2f} s for the disk"
    assert switch.frames_dropped == 42
    assert "rec off  42 dropped" in show.hud_lines()
    StalledDiskRecorder.disk_ready.set()
    show.close()
    assert len(read_frames(switch.paths[0])) == 8


def test_r_key_in_the_live_window_records_the_composed_output(lite0, tmp_path):
    import pygame
    import torch

    from realtime.dream.dreamer import build_dreamer
    from realtime.io.display import Window
    from realtime.io.sources import open_source
    from realtime.loop.pipeline import Pipeline
    from realtime.loop.showio import ShowIO

    dreamer = build_dreamer(DreamParams(layer="block3"), (96, 54), torch.device("cpu"), network=lite0, seed=0)
    state = ShowState(dreamer.params, lite0.spec.layers)
    switch = RecordingSwitch(str(tmp_path), fps=10)
    show = ShowControl(state, recording=switch)
    with open_source("synthetic", paced=False, size=(192, 108)) as source:
        with Window(fullscreen=False, size=(192, 108)) as window:
            window.poll()
            pipeline = Pipeline(source, dreamer, state, ShowIO(window=window, show=show))
            for _ in range(2):
                pygame.event.post(
                    pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0, unicode="", scancode=0)
                )
                pipeline.tick()  # the key is read at the end of this tick
                assert switch.recording
                outputs = [pipeline.tick() for _ in range(3)]
                pygame.event.post(
                    pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0, unicode="", scancode=0)
                )
                outputs.append(pipeline.tick())
                assert not switch.recording
                assert not any("REC" in line for line in pipeline.hud_lines())
    show.close()
    assert len(switch.paths) == 2
    for path in switch.paths:
        recorded = read_frames(path)
        assert len(recorded) == 4 and recorded[0].shape == (108, 192, 3)
    # what was recorded is the composed output, frame for frame (up to the codec's noise)
    last = read_frames(switch.paths[1])[-1].astype(int)
    assert np.abs(last - outputs[-1]).mean() < np.abs(last - outputs[0]).mean()


def test_a_path_promised_to_a_writer_is_not_handed_out_again(tmp_path):
    # a recorder creates its file on its own thread, maybe after the next take already asked for a name
    first = unique_path(str(tmp_path), "dreamcam", ".mp4")
    second = unique_path(str(tmp_path), "dreamcam", ".mp4", taken=[first])
    assert not os.path.exists(first) and second != first
