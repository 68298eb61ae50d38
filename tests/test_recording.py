"""The recording switch: toggles make separate playable files; a slow disk drops frames, never stalls."""

import logging
import os
import threading
import time

import av
import numpy as np
import pytest

from realtime.commands.cli import main
from realtime.control.plane import Action, Command, ShowState
from realtime.io.hud import is_alert
from realtime.io.recording import RecordingSwitch
from realtime.io.sinks import VideoRecorder, unique_path
from realtime.params import DreamParams
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
    from realtime.io.sources.opener import open_source
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


def decoded_frames(path) -> list[np.ndarray]:
    """Every frame PyAV decodes, stopping at a packet cut short (a take killed mid-fragment)."""
    frames = []
    with av.open(str(path)) as container:
        try:
            for packet in container.demux(video=0):
                frames.extend(f.to_ndarray(format="rgb24") for f in packet.decode())
        except av.error.InvalidDataError:
            pass
    return frames


def test_recordings_are_fragmented_h264_that_play_up_to_a_cut(tmp_path):
    recorder = VideoRecorder(str(tmp_path / "take.mp4"), fps=5)
    for i in range(12):
        recorder.write(frame(20 * i))
    recorder.close()
    data = (tmp_path / "take.mp4").read_bytes()
    assert b"moof" in data and data.count(b"moof") >= 2  # a fragment a second (5 frames)
    with av.open(str(tmp_path / "take.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    # cut where a power cut might: the fragments before the cut still play
    (tmp_path / "cut.mp4").write_bytes(data[: data.rindex(b"moof") - 4])
    assert 5 <= len(decoded_frames(tmp_path / "cut.mp4")) < 12


def test_a_full_disk_stops_the_take_with_a_red_hud_line_and_the_show_goes_on(tmpfs, caplog):
    disk = tmpfs("192k")
    switch = RecordingSwitch(
        str(disk), fps=10, recorder_factory=lambda path, fps: VideoRecorder(path, fps, queue_size=512)
    )
    show = ShowControl(ShowState(DreamParams(), ()), recording=switch)
    show.quit_on_record_failure = True  # as headless runs do
    show.handle(Action.TOGGLE_RECORD)
    recorder = switch.recorder
    noise = np.random.default_rng(0)
    with caplog.at_level(logging.ERROR):
        for _ in range(60):  # noise does not compress: ~30 kB a frame, the disk takes a few
            show.output(noise.integers(0, 256, (120, 160, 3), dtype=np.uint8))
        recorder.wait_until_written()
        show.output(frame(1))  # the switch sees the failure at the next frame
    assert not switch.recording and switch.failures == 1
    alerts = [line for line in show.hud_lines() if is_alert(line)]
    assert len(alerts) == 1 and "disk full" in alerts[0] and "REC 00" not in " ".join(show.hud_lines())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "disk full" in errors[0]
    assert Action.QUIT in show.intents([])  # headless: the run ends (and exits non-zero)
    show.output(frame(2))  # the show goes on
    show.close()


def test_recording_into_a_read_only_folder_says_so_and_does_not_pretend(tmpfs, capsys):
    folder = tmpfs("64k", read_only=True)
    switch = RecordingSwitch(str(folder), fps=10)
    show = ShowControl(ShowState(DreamParams(), ()), recording=switch)
    show.handle(Action.TOGGLE_RECORD)
    for _ in range(5):
        show.output(frame(3))
    lines = show.hud_lines()
    assert not switch.recording and not any("REC 00" in line or "dropped" in line for line in lines)
    assert any(is_alert(line) and "read-only" in line for line in lines)
    show.close()
    # --record at launch: one line before anything opens
    assert main(["--source", "synthetic", "--headless", "--record", str(folder / "x.mp4")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "read-only" in error[0]


def test_a_one_pixel_picture_records_padded_to_two(tmp_path):
    recorder = VideoRecorder(str(tmp_path / "dot.mp4"), fps=10)
    for value in (10, 200, 90):
        recorder.write(np.full((1, 1, 3), value, np.uint8))
    recorder.close()
    assert recorder.failure is None
    frames = decoded_frames(tmp_path / "dot.mp4")
    assert len(frames) == 3 and frames[1].shape == (2, 2, 3) and abs(int(frames[1].mean()) - 200) < 8


def test_prores_for_editing_goes_into_a_mov(tmp_path, capsys):
    recorder = VideoRecorder(str(tmp_path / "take.mov"), fps=10, codec="prores")
    recorder.write(frame(100))
    recorder.close()
    with av.open(str(tmp_path / "take.mov")) as container:
        assert container.streams.video[0].codec_context.name == "prores"
    args = ["--headless", "--record", str(tmp_path / "take.mp4"), "--record-codec", "prores"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and ".mov" in error[0]


@pytest.mark.slow
def test_a_headless_recording_onto_a_full_disk_ends_the_run_with_status_1(tmpfs, caplog):
    disk = tmpfs("48k")
    args = ["--source", "synthetic", "--headless", "--record", str(disk / "take.mp4"), "--frames", "400"]
    with caplog.at_level(logging.ERROR):
        assert main([*args, "--dream-size", "32x18", "--layer", "block3"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "disk full" in errors[0]
