"""`dreamcam render` and `dreamcam eval` on clips the tests make themselves."""

import io
import json
import logging
import os
import signal
import threading
import time

import av
import cv2
import numpy as np
import pytest

from realtime.commands.cli import main
from realtime.commands.evaluate import (
    FlowMotion,
    Motion,
    boil,
    flow_error,
    motion_path,
    read_known_motion,
    warping_error,
)
from realtime.commands.progress import ProgressLine
from tests.videofiles import read_video, write_clip_with_sound
from tools.make_clip import write_clip

SMALL = ["--dream-size", "96x54", "--layer", "block3"]


@pytest.mark.slow
def test_render_writes_every_frame_at_the_inputs_size_and_rate(tmp_path):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=30, size=(160, 96), fps=25.0)
    out = tmp_path / "dreamt.mp4"
    assert main(["render", clip, "-o", str(out), *SMALL]) == 0
    frames, fps = read_video(out)
    source, _ = read_video(clip)
    assert len(frames) == 30 and frames[0].shape == (96, 160, 3) and fps == pytest.approx(25.0)
    assert np.abs(frames[10].astype(int) - source[10].astype(int)).mean() > 3.0  # dreamed
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_still_renders_as_a_zooming_dream(tmp_path, chelsea):
    still = tmp_path / "cat.png"
    cv2.imwrite(str(still), cv2.cvtColor(cv2.resize(chelsea, (128, 96)), cv2.COLOR_RGB2BGR))
    out = tmp_path / "zoom.mp4"
    assert main(["render", str(still), "-o", str(out), "--frames", "6", "--zoom", "1.05", *SMALL]) == 0
    frames, _ = read_video(out)
    assert len(frames) == 6 and frames[0].shape == (96, 128, 3)


@pytest.mark.parametrize("case", ["unreadable", "empty", "missing-folder"])
def test_bad_render_inputs_are_one_line_errors_and_leave_no_file(tmp_path, capsys, case):
    clip = tmp_path / "in.mp4"
    out = tmp_path / "out.mp4"
    if case == "unreadable":
        clip.write_bytes(os.urandom(3000))
    elif case == "empty":
        write_clip(str(clip), "pan", frames=0, size=(64, 48))
    else:
        write_clip(str(clip), "pan", frames=3, size=(64, 48))
        out = tmp_path / "no" / "such" / "out.mp4"
    assert main(["render", str(clip), "-o", str(out), *SMALL]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("dreamcam: error:")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("in.mp4")] == []


@pytest.mark.slow
def test_eval_warping_error_is_lower_for_a_flow_carried_dream_than_a_cold_one(tmp_path, capsys):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=10, size=(160, 96))
    assert main(["eval", clip, "--json", "--modes", "flow,off", *SMALL]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 10 and report["motion"].startswith("known")
    assert 0 < report["input"]["warping_error"] < 2.0  # codec noise only: the pan is whole pixels
    assert report["input"]["warping_error"] < report["flow"]["warping_error"] < report["off"]["warping_error"]
    assert report["flow"]["gain"] > 1.0 and report["flow"]["gain_kept"] > 0
    assert report["still"]["final_gain"] > 1.0 and "residual" not in report
    flow = report["flow"]  # the boil figures, from the clip's second half on a clip this short
    assert flow["from_frame"] == 5 and flow["dream_size"] > 1.0 and flow["boil"] < report["off"]["boil"]
    assert 0 <= flow["flow_error"] < 1.0 and "flow_error" not in report["off"]


def test_known_motion_and_flow_estimates_agree_on_a_generated_pan(tmp_path):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=6, size=(240, 136))
    frames, _ = read_video(clip)
    known = read_known_motion(clip, len(frames), (240, 136))
    assert known is not None and motion_path(clip).is_file()
    flow = FlowMotion()
    estimated = [flow(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    for truth, guess in zip(known, estimated, strict=True):
        assert np.abs(truth.backward - guess.backward)[truth.valid & guess.valid].mean() < 0.25  # px
    # a dream-like output: the scene plus a pattern that does not move with it
    rng = np.random.default_rng(0)
    outputs = [np.clip(f + rng.normal(0, 4, f.shape), 0, 255).astype(np.uint8) for f in frames]
    for images in (frames, outputs):
        assert warping_error(images, estimated) == pytest.approx(warping_error(images, known), rel=0.15)
    assert warping_error(outputs, known) > 3 * warping_error(frames, known)


def test_without_recorded_motion_eval_falls_back_to_flow(tmp_path):
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=3, size=(64, 48))
    assert read_known_motion(clip, 3, (64, 48)) is not None
    assert read_known_motion(clip, 3, (128, 96)) is None  # another size: not this clip's motion
    motion_path(clip).unlink()
    assert read_known_motion(clip, 3, (64, 48)) is None
    object_clip = write_clip(str(tmp_path / "object.mp4"), "object", frames=3, size=(64, 48))
    assert read_known_motion(object_clip, 3, (64, 48)) is None  # not one transform per frame


def test_render_keeps_odd_sizes_says_so_and_copies_the_sound(tmp_path, caplog):
    clip = write_clip_with_sound(tmp_path / "odd.mkv", frames=6, size=(451, 300))
    out = tmp_path / "out.mp4"
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = str(tmp_path)  # no ffmpeg on the PATH: PyAV copies the sound itself
    try:
        assert main(["render", clip, "-o", str(out), *SMALL]) == 0
    finally:
        os.environ["PATH"] = env_path
    with av.open(str(out)) as container:
        kinds = [s.type for s in container.streams]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert kinds == ["video", "audio"]
    assert len(frames) == 6 and frames[0].shape == (300, 452, 3)
    assert any("451x300 padded to 452x300" in r.getMessage() for r in caplog.records)


def test_the_progress_bar_ends_its_line_before_any_message():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        with ProgressLine(stream) as bar:
            bar.update("rendering ### 3/9")
            logging.getLogger("realtime.test").warning("a warning")
            bar.update("rendering ###### 6/9")
        stream.write("dreamcam: error: after the bar\n")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue() == (
        "\rrendering ### 3/9\na warning\n\rrendering ###### 6/9\ndreamcam: error: after the bar\n"
    )


def test_render_onto_a_full_disk_leaves_nothing_and_says_why(tmpfs, tmp_path, capsys):
    disk = tmpfs("160k")
    clip = write_clip_with_sound(tmp_path / "noise.mkv", frames=20, size=(160, 120), noise=True)
    assert main(["render", clip, "-o", str(disk / "out.mp4"), *SMALL]) == 2
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("dreamcam: error:") and "disk full" in errors[0]
    assert "Traceback" not in "\n".join(err)
    assert list(disk.iterdir()) == []  # neither the output nor its temporary file


def test_render_into_a_read_only_folder_is_one_line(tmpfs, tmp_path, capsys):
    folder = tmpfs("64k", read_only=True)
    clip = write_clip(str(tmp_path / "in.mp4"), "pan", frames=3, size=(64, 48))
    assert main(["render", clip, "-o", str(folder / "out.mp4"), *SMALL]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "read-only" in error[0]


def test_sigterm_during_a_render_removes_its_temporary_file(tmp_path, capsys):
    clip = write_clip(str(tmp_path / "in.mp4"), "pan", frames=300, size=(64, 48))
    out = tmp_path / "out.mp4"
    partial = tmp_path / ".out.partial.mp4"
    done = threading.Event()

    def terminate_once_writing() -> None:  # as `systemctl stop` would, mid-render
        while not done.is_set() and not (partial.exists() and partial.stat().st_size > 0):
            time.sleep(0.02)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=terminate_once_writing)
    watcher.start()
    try:
        rc = main(["render", clip, "-o", str(out), *SMALL])
    finally:
        done.set()
        watcher.join()
    assert rc == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "in.mp4.motion.json"]


def test_render_re_encodes_a_sound_track_mp4_cannot_hold(tmp_path):
    clip = tmp_path / "pcm.mkv"
    with av.open(str(clip), "w") as container:  # FFV1 video and PCM sound, as a camera might write
        video = container.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv444p"
        audio = container.add_stream("pcm_s16le", rate=44100, layout="mono")
        for _ in range(5):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "rgb24")))
        for start in range(0, 44100 // 5, 1024):
            tone = (8000 * np.sin(np.arange(1024) / 10)).astype(np.int16)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode())
        container.mux(audio.encode())
    out = tmp_path / "out.mp4"
    assert main(["render", str(clip), "-o", str(out), *SMALL]) == 0
    with av.open(str(out)) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        assert sum(1 for _ in container.decode(audio=0)) > 5


@pytest.mark.parametrize("kind", ["subpan", "zoomrot", "shake", "grain"])
def test_camera_clips_are_lossless_and_their_recorded_motion_is_the_true_one(tmp_path, kind):
    clip = write_clip(
        str(tmp_path / f"{kind}.mkv"), kind, frames=5, size=(160, 90), speed=3.5, photo="chelsea"
    )
    frames, _ = read_video(clip)
    known = read_known_motion(clip, len(frames), (160, 90))
    assert known is not None and len(frames) == 5
    # lossless, and the recorded motion undoes the camera's: only resampling (and grain) is left
    error = warping_error(frames, known)
    assert error < (GRAIN_ERROR if kind == "grain" else 2.5)
    for wrong in (np.zeros_like, np.negative):  # no motion, or the motion the other way: far worse
        guesses = [Motion(wrong(m.backward), m.valid) for m in known]
        if kind != "grain":
            assert warping_error(frames, guesses) > 1.8 * error
    offsets = np.stack([m.backward[m.valid].mean(0) for m in known])
    if kind == "subpan":  # 3.5 px right and 2.33 down a frame: the scene point was up and left
        assert offsets == pytest.approx(np.tile([3.5, 7 / 3], (4, 1)), abs=1e-3)


GRAIN_ERROR = 6.0  # σ 3 grain in both frames: |n1 - n2| averages 2σ/√π ≈ 3.4 grey levels


def test_boil_is_near_zero_for_a_dream_glued_to_the_scene_and_near_one_for_a_fresh_one():
    rng = np.random.default_rng(1)
    height, width, frames = 40, 60, 8
    shift = np.zeros((height, width, 2), np.float32)
    shift[..., 0] = -2.0  # a pan to the right: each pixel was 2 px further right in the frame before
    motions = [Motion(-shift, np.ones((height, width), bool))] * (frames - 1)
    scene = rng.uniform(0, 255, (height, width * 2, 3)).astype(np.float32)
    paint = rng.normal(0, 12, (height, width * 2, 3)).astype(np.float32)
    inputs, glued, fresh = [], [], []
    for n in range(frames):
        view = np.s_[:, 2 * n : 2 * n + width]
        inputs.append(scene[view])
        glued.append(scene[view] + paint[view])
        fresh.append(scene[view] + rng.normal(0, 12, (height, width, 3)))
    glued_boil = boil(inputs, glued, motions, start=2)
    fresh_boil = boil(inputs, fresh, motions, start=2)
    assert glued_boil["boil"] < 0.15 < 0.8 < fresh_boil["boil"]
    assert glued_boil["dream_size"] == pytest.approx(fresh_boil["dream_size"], rel=0.1)


def test_flow_error_is_measured_at_the_flows_size():
    truth = Motion(np.full((90, 160, 2), 3.0, np.float32), np.ones((90, 160), bool))
    half = np.full((45, 80, 2), 1.5, np.float32)  # the same motion at half the size
    assert flow_error(half, truth, (90, 160, 3)) == pytest.approx(0.0, abs=1e-5)
    assert flow_error(half + np.float32(0.3), truth, (90, 160, 3)) == pytest.approx(0.3 * 2**0.5, rel=1e-3)
