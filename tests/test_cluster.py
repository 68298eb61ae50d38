"""`dreamcam render --workers N / --cluster`: the split render (realtime.cluster) on clips the tests
make. The plan and the chunk run in-process; the renders over Ray share one local runtime (a Ray
start is slow), and one test starts a real head on loopback. Every Ray process a test starts is
stopped by it, and the tests check that none outlives its command."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from realtime.cluster.chunk import ChunkFailed, ChunkInput, run_chunk
from realtime.cluster.job import DreamRecipe
from realtime.cluster.plan import chunk_seed, plan_chunks
from realtime.cluster.runtime import ClusterError, check_reachable
from realtime.cluster.seams import stitched, tail
from realtime.commands.cli import main
from realtime.commands.render import render
from realtime.dream.dreamer import build_dreamer
from realtime.params import DreamParams
from tests.videofiles import read_video, write_clip_with_sound
from tools.make_clip import write_clip

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--dream-size", "96x54", "--layer", "block3", "--seed", "5"]
SPLIT = ["--workers", "2", "--chunk-frames", "16"]
PARAMS = DreamParams(layer="block3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(root: int) -> set[int]:
    """Every live process below `root` (by /proc's parent ids)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (zombies waiting for their parent's wait() are not running)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _video_facts(path) -> tuple:
    """Frame count, every video timestamp, the duration and the sound's packets of a file."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        stamps = sorted(p.pts for p in container.demux(video) if p.size)
        container.seek(0)
        sound = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
        return len(stamps), stamps, container.duration, sound


@pytest.fixture
def clip(tmp_path, chelsea) -> str:
    """40 frames of a pan over the cat, with a tone (lossless video, AAC sound)."""
    frames = [cv2.resize(chelsea[y : y + 240, y : y + 400], (160, 96)) for y in range(0, 80, 2)]
    return write_clip_with_sound(tmp_path / "pan.mkv", len(frames), (160, 96), image=frames)


# --- the plan, the seams and one chunk, in-process -----------------------------------------------


def test_the_plan_puts_seams_on_cuts_and_warms_up_elsewhere():
    chunks = plan_chunks(300, [100], 2, warm_up=30, crossfade=8, min_chunk=100, max_chunk=100)
    assert [(c.start, c.stop) for c in chunks] == [(0, 100), (100, 200), (200, 300)]
    first, on_cut, inside = chunks
    assert (first.warm_from, first.fade, first.tail) == (0, 0, 0)  # the next one starts on the cut
    assert (on_cut.warm_from, on_cut.fade, on_cut.tail) == (100, 0, 8)  # no warm-up at a cut
    assert (inside.warm_from, inside.fade, inside.tail) == (170, 8, 0)
    assert inside.dreamt == 130 and inside.describe(25.0) == "chunk 2 (frames 200-299, 8.00-12.00 s)"
    assert plan_chunks(300, [100], 2, min_chunk=100, max_chunk=100) == plan_chunks(
        300, [100], 2, min_chunk=100, max_chunk=100
    )
    # the warm-up never reaches back over a cut: the dream resets there anyway
    assert plan_chunks(200, [90], 1, warm_up=30, min_chunk=60, max_chunk=60)[-1].warm_from >= 90
    # where the scene holds still the seam gets the longer warm-up and crossfade
    still = plan_chunks(600, [], 2, min_chunk=300, max_chunk=300, still=lambda frame: frame == 300)
    assert (still[0].tail, still[1].fade, still[1].warm_from) == (120, 120, 240)
    assert chunk_seed(7, 0) == 7 and len({chunk_seed(7, k) for k in range(50)}) == 50


def test_a_seam_blends_only_its_crossfade():
    chunks = plan_chunks(40, [], 2, warm_up=10, crossfade=4, min_chunk=20, max_chunk=20)
    earlier = np.zeros((24, 2, 2, 3), np.uint8)
    later = np.full((20, 2, 2, 3), 200, np.uint8)
    carry = tail(chunks[0], earlier)
    assert len(list(stitched(chunks[0], earlier, None))) == 20 and len(carry) == 4
    written = [int(f[0, 0, 0]) for f in stitched(chunks[1], later, carry)]
    assert written[:5] == [40, 80, 120, 160, 200] and set(written[5:]) == {200}


def test_the_first_chunk_is_the_unsplit_render_frame_for_frame(tmp_path, clip):
    """Chunk 0 dreams with the render's own seed from frame 0: its frames are the unsplit
    render's (both written by the same writer as ProRes, which encodes the same frames to the same
    bytes; x264's threads do not, see docs/CLUSTER.md)."""
    from realtime.io.videofile import VideoFileWriter

    threads = torch.get_num_threads()
    try:
        recipe = DreamRecipe(PARAMS, (96, 54), backend="eager", precision="fp32", seed=5)
        chunk = plan_chunks(20, [], 1, min_chunk=20, max_chunk=20)[0]
        mine = run_chunk(chunk, recipe, ChunkInput("pan.mkv", path=clip)).frames
        writer = VideoFileWriter(str(tmp_path / "chunk.mov"), 25.0, "prores", live=False)
        for frame in mine:
            writer.write(frame)
        writer.close()
        dreamer = build_dreamer(PARAMS, (96, 54), torch.device("cpu"), "eager", None, 5, precision="fp32")
        render(clip, str(tmp_path / "whole.mov"), dreamer, frames=20, codec="prores")
    finally:
        torch.set_num_threads(threads)
    split, whole = read_video(tmp_path / "chunk.mov")[0], read_video(tmp_path / "whole.mov")[0]
    assert len(split) == len(whole) == 20
    assert all(np.array_equal(a, b) for a, b in zip(split, whole, strict=True))


def test_a_chunk_dreams_with_the_sound_s_looks_for_its_frames(tmp_path, chelsea):
    """--audio FILE split: the driver works out every frame's look from the sound, in order; a chunk
    given the looks of its frames dreams them as the unsplit render does (chunk 0, frame for frame)."""
    import soundfile

    from realtime.audio.analysis import SAMPLE_RATE
    from realtime.audio.mapping import DEFAULT_MAPPING, Swell
    from realtime.audio.offline import RenderAudioPlan
    from realtime.cluster.scan import frame_looks, scan_video
    from realtime.io.videofile import VideoFileWriter
    from tools.audio_figures import click_track

    samples, _ = click_track(1.6)  # 120 BPM: a click every half second from 0.5 s
    soundfile.write(tmp_path / "clicks.wav", samples, SAMPLE_RATE)
    image = cv2.resize(chelsea, (96, 54))
    clip = write_clip_with_sound(tmp_path / "still.mkv", 40, (96, 54), image=image, sound=np.zeros(1))
    # the swell on onsets: a click track this short ends before the beat tracker locks on
    swell_on_onsets = replace(DEFAULT_MAPPING, swell=Swell(on="onset"))
    plan = RenderAudioPlan(str(tmp_path / "clicks.wav"), swell_on_onsets)
    facts = scan_video(clip, (96, 54))
    looks = frame_looks(plan, clip, facts, PARAMS)
    assert len(looks) == 40 and len({look.params.lr for look in looks}) > 3  # the beats move the look
    assert max(look.gain for look in looks[:24]) > 1.5  # and swell the dream as shown
    threads = torch.get_num_threads()
    try:
        recipe = DreamRecipe(PARAMS, (96, 54), backend="eager", precision="fp32", seed=2)
        chunk = plan_chunks(24, [], 1, min_chunk=24, max_chunk=24)[0]
        mine = run_chunk(chunk, recipe, ChunkInput("still.mkv", path=clip), looks[:24]).frames
        writer = VideoFileWriter(str(tmp_path / "chunk.mov"), facts.fps, "prores", live=False)
        for frame in mine:
            writer.write(frame)
        writer.close()
        dreamer = build_dreamer(PARAMS, (96, 54), torch.device("cpu"), "eager", None, 2, precision="fp32")
        render(clip, str(tmp_path / "whole.mov"), dreamer, frames=24, codec="prores", audio=plan)
    finally:
        torch.set_num_threads(threads)
    split, whole = read_video(tmp_path / "chunk.mov")[0], read_video(tmp_path / "whole.mov")[0]
    assert len(split) == len(whole) == 24
    assert all(np.array_equal(a, b) for a, b in zip(split, whole, strict=True))


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--workers", "2", "--chunk-frames", "3"], "--chunk-frames must be at least 10, got 3"),
        (["--cluster"], "--cluster without an address reads RAY_ADDRESS, which is not set"),
        (["--workers", "2", "EXISTS"], "exists"),
    ],
)
def test_bad_split_requests_are_one_line_before_ray_starts(tmp_path, clip, monkeypatch, capsys, extra, says):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = tmp_path / "out.mp4"
    if "EXISTS" in extra:
        out.write_bytes(b"the user's own file")
        extra = extra[:-1]
    assert main(["render", clip, "-o", str(out), *SMALL, *extra]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and says in error[0]
    assert not out.exists() or out.read_bytes() == b"the user's own file"
    assert not _ray_started_here()


def _ray_started_here() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray and ray.is_initialized())


def test_a_stretch_that_will_not_decode_fails_its_chunk_naming_the_frame(tmp_path):
    path = write_clip(str(tmp_path / "short.mkv"), "pan", frames=12, size=(64, 48))
    chunk = plan_chunks(30, [], 1, min_chunk=30, max_chunk=30)[0]  # planned on a longer clip
    recipe = DreamRecipe(PARAMS, (64, 36), backend="eager")
    with pytest.raises(ChunkFailed, match=r"stops decoding at frame 12 \(0\.40 s\)"):
        run_chunk(chunk, recipe, ChunkInput("short.mkv", path=path))


def test_without_ray_workers_says_what_to_install(tmp_path, clip, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    out = tmp_path / "out.mp4"
    assert main(["render", clip, "-o", str(out), *SMALL, "--workers", "2"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        "dreamcam: error: --workers and --cluster need Ray, which is not installed: "
        "pip install 'dreamcam[cluster]'"
    ]
    assert not out.exists()


def test_a_cluster_that_does_not_answer_is_one_line(tmp_path, clip, capsys):
    pytest.importorskip("ray")
    port = _free_port()
    with pytest.raises(ClusterError, match="no Ray cluster answers at 127.0.0.1"):
        check_reachable(f"127.0.0.1:{port}")
    out = tmp_path / "out.mp4"
    started = time.monotonic()
    assert main(["render", clip, "-o", str(out), *SMALL, "--cluster", f"127.0.0.1:{port}"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"ray start --head --port {port}" in error[0]
    assert time.monotonic() - started < 30 and not out.exists()
    assert main(["render", clip, "-o", str(out), *SMALL, "--cluster", "not-an-address"]) == 2
    assert "is not HOST:PORT" in capsys.readouterr().err


# --- over Ray: one local runtime for the module --------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray runtime of 2 CPUs, shared by this module's renders (each render uses it as it
    finds it) and shut down at the end, its processes with it."""
    ray = pytest.importorskip("ray")
    from realtime.cluster.runtime import open_runtime

    open_runtime(2, None)  # starts it as a render would (quiet, no dashboard, no usage stats)
    started = _descendants(os.getpid())
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 20
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(started), "Ray processes outlived the tests' runtime"


@pytest.mark.slow
def test_a_split_render_is_the_unsplit_one_in_frames_time_and_sound(tmp_path, clip, local_ray):
    whole, split = tmp_path / "whole.mp4", tmp_path / "split.mp4"
    assert main(["render", clip, "-o", str(whole), *SMALL]) == 0
    assert main(["render", clip, "-o", str(split), *SMALL, *SPLIT]) == 0
    count, stamps, duration, sound = _video_facts(whole)
    assert count == 40 and _video_facts(split) == (count, stamps, duration, sound) and sound
    source = read_video(clip)[0]
    dreamt = read_video(split)[0]
    assert np.mean([np.abs(d.astype(int) - s).mean() for d, s in zip(dreamt, source, strict=True)]) > 3.0
    # the same seed and workers, the same file (ProRes: x264's threads make the same frames into
    # different bytes from one run to the next, split or not)
    # the second time the workers read the input from its path instead of the object store
    once, again = tmp_path / "once.mov", tmp_path / "again.mov"
    assert main(["render", clip, "-o", str(once), *SMALL, *SPLIT, "--codec", "prores"]) == 0
    assert main(["render", clip, "-o", str(again), *SMALL, *SPLIT, "--codec", "prores", "--shared-path"]) == 0
    assert once.read_bytes() == again.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_costs_a_retry_of_that_chunk(tmp_path, clip, local_ray, caplog):
    """kill -9 of the worker running a chunk: the chunk runs again, the log names it, and the file is
    the one a render without the kill writes."""
    clean, killed = tmp_path / "clean.mov", tmp_path / "killed.mov"
    assert main(["render", clip, "-o", str(clean), *SMALL, *SPLIT, "--codec", "prores"]) == 0
    victims: list[int] = []

    def kill_a_chunk_worker() -> None:
        deadline = time.monotonic() + 120
        while not victims and time.monotonic() < deadline:
            for pid in _descendants(os.getpid()):
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"ray::run_chunk"):
                    time.sleep(0.3)  # mid-chunk, not at its first frame
                    os.kill(pid, signal.SIGKILL)
                    victims.append(pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_chunk_worker)
    killer.start()
    with caplog.at_level(logging.WARNING):
        assert main(["render", clip, "-o", str(killed), *SMALL, *SPLIT, "--codec", "prores"]) == 0
    killer.join()
    assert victims, "no chunk worker was seen running"
    retried = [r.getMessage() for r in caplog.records if "retrying it" in r.getMessage()]
    assert len(retried) == 1 and retried[0].startswith("chunk ") and "lost its worker" in retried[0]
    assert killed.read_bytes() == clean.read_bytes()


@pytest.mark.slow
def test_a_chunk_failing_on_its_own_fails_the_render_naming_its_time_range(
    tmp_path, clip, local_ray, monkeypatch, capsys
):
    """The workers' copy of the input breaks off in the second chunk's frames: one line names the
    chunk that failed with its frames and seconds, and nothing is left where the output goes."""
    from realtime.cluster import split

    data = Path(clip).read_bytes()
    truncated = data[: int(len(data) * 0.7)]
    monkeypatch.setattr(
        split,
        "_input_for_workers",
        lambda runtime, path, shared, still: ChunkInput("pan.mkv", data=[runtime.ray.put(truncated)]),
    )
    out = tmp_path / "out.mp4"
    assert main(["render", clip, "-o", str(out), *SMALL, *SPLIT]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    # both chunks read the broken stretch (chunk 0's crossfade tail reaches the clip's end): the
    # first to fail is named, with its frames and seconds
    named = r"chunk (0 \(frames 0-19, 0\.00-0\.80 s\)|1 \(frames 20-39, 0\.80-1\.60 s\))"
    assert re.fullmatch(f"dreamcam: error: {named} failed: the input stops decoding at frame 2\\d .*", error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pan.mkv"]


@pytest.mark.slow
def test_a_full_disk_and_an_input_too_big_for_the_store_are_one_line(
    tmp_path, clip, local_ray, tmpfs, monkeypatch, capsys
):
    from realtime.cluster import split

    full = tmpfs("48k")
    assert main(["render", clip, "-o", str(full / "out.mp4"), *SMALL, *SPLIT]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("dreamcam: error:") and "disk full" in error and str(full / "out.mp4") in error
    assert list(full.iterdir()) == []  # no output, no temporary file
    monkeypatch.setattr(split, "STORE_SHARE", 1e-9)
    assert main(["render", clip, "-o", str(tmp_path / "out.mp4"), *SMALL, *SPLIT]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "more than half the cluster's object store" in error and "--shared-path" in error
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_a_still_zooms_split_as_whole(tmp_path, chelsea, local_ray):
    still = tmp_path / "cat.png"
    cv2.imwrite(str(still), cv2.cvtColor(cv2.resize(chelsea, (128, 96)), cv2.COLOR_RGB2BGR))
    out = tmp_path / "zoom.mp4"
    args = ["render", str(still), "-o", str(out), "--frames", "36", "--zoom", "1.05", *SMALL, *SPLIT]
    assert main(args) == 0
    frames = read_video(out)[0]
    assert len(frames) == 36 and frames[0].shape == (96, 128, 3)
    # the zoom goes on across the seam: no frame jumps back to the still
    still_rgb = cv2.resize(chelsea, (128, 96))
    assert all(np.abs(f.astype(int) - still_rgb).mean() > 5 for f in frames[10:])


# --- real processes: a head on loopback, SIGTERM -------------------------------------------------


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "realtime.commands.cli", *args]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_a_render_through_a_ray_head_on_loopback(tmp_path, clip):
    """`ray start --head` with its own ports and 2 CPUs; `render --cluster` joins it, the input goes
    through its object store; the head and every process under it stop at the end, pass or fail."""
    pytest.importorskip("ray")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    ray_dir = tempfile.mkdtemp(prefix="dcray", dir="/tmp")
    ports = [str(_free_port()) for _ in range(2)]
    head_log = open(tmp_path / "head.log", "w")  # noqa: SIM115  (closed below)
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",  # in the foreground: its processes stay under it and stop with it
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--node-ip-address=127.0.0.1",
            f"--node-manager-port={ports[0]}",
            f"--object-manager-port={ports[1]}",
            f"--temp-dir={ray_dir}",  # short: Ray's socket paths must fit 107 characters
        ],
        env=env,
        stdout=head_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    below: set[int] = set()
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts a head slowly
        while head.poll() is None:
            try:
                check_reachable(f"127.0.0.1:{port}")
                break
            except ClusterError:
                assert time.monotonic() < deadline, "the head did not come up"
                time.sleep(1)
        assert head.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
        out = tmp_path / "out.mp4"
        render_cli = _cli(
            "render", clip, "-o", str(out), *SMALL, "--chunk-frames", "16", "--cluster", f"127.0.0.1:{port}"
        )
        _, err = render_cli.communicate(timeout=400)
        below = _descendants(head.pid)
        assert render_cli.returncode == 0, err
        assert "frames dreamt" in err and "ETA" in err and "wrote 40 frames" in err
        assert len(read_video(out)[0]) == 40
    finally:
        below |= _descendants(head.pid)
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in _alive(below | {head.pid}):
                os.kill(pid, signal.SIGKILL)
        head_log.close()
        shutil.rmtree(ray_dir, ignore_errors=True)
    deadline = time.monotonic() + 30
    while _alive(below) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(below), "processes of the Ray head outlived it"


@pytest.mark.slow
def test_sigterm_mid_render_leaves_no_file_and_no_ray_process(tmp_path, clip):
    out = tmp_path / "out.mp4"
    render_cli = _cli("render", clip, "-o", str(out), *SMALL, *SPLIT, start_new_session=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and render_cli.poll() is None:
        seen |= _descendants(render_cli.pid)
        titles = []
        for pid in seen:
            try:
                titles.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                pass
        if any(t.startswith(b"ray::run_chunk") for t in titles):
            break
        time.sleep(0.2)
    assert render_cli.poll() is None, "the render ended before a chunk was seen running"
    render_cli.send_signal(signal.SIGTERM)
    _, err = render_cli.communicate(timeout=60)
    assert render_cli.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "dreamcam: stopped by SIGTERM"
    deadline = time.monotonic() + 30
    while _alive(seen) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(seen), "Ray processes outlived the render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pan.mkv"]
