"""Sizes bounded by the machine: an oversized source is reduced once at the source; dream and
virtual camera sizes that would not fit in memory are one line naming the largest that does."""

import logging
import time
import tracemalloc

import cv2
import numpy as np
import pytest
import torch

from realtime.commands.cli import main
from realtime.control.plane import ShowState
from realtime.dream.budget import check_dream_size, check_virtual_cam_size, largest_size
from realtime.dream.dreamer import build_dreamer, fresh_dreamer
from realtime.errors import ConfigError
from realtime.io.sources.opener import open_source
from realtime.loop.pipeline import Pipeline
from realtime.params import DreamParams

GiB = 2**30


@pytest.fixture(scope="module")
def huge_photo(tmp_path_factory, chelsea):
    """An 8000x8000 photo (JPEG, as a camera or a phone would write it)."""
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    cv2.imwrite(str(path), cv2.resize(chelsea[:, :, ::-1], (8000, 8000), interpolation=cv2.INTER_NEAREST))
    return str(path)


def seconds_per_tick(pipelines: list[Pipeline], rounds: int) -> list[float]:
    """Each pipeline's median tick time, taking turns, so a busy machine slows all of them alike."""
    times: list[list[float]] = [[] for _ in pipelines]
    for pipeline in pipelines:
        pipeline.tick()  # warm-up
    for _ in range(rounds):
        for pipeline, spent in zip(pipelines, times, strict=True):
            started = time.perf_counter()
            pipeline.tick()
            spent.append(time.perf_counter() - started)
    return [float(np.median(spent)) for spent in times]


@pytest.mark.slow
def test_an_8000px_photo_is_reduced_once_at_the_source_and_runs_like_a_small_one(
    huge_photo, tmp_path, chelsea, lite0, caplog
):
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), cv2.resize(chelsea[:, :, ::-1], (640, 640)))
    dreamer = build_dreamer(
        DreamParams(layer="block3", warm_start="residual"), (64, 64), torch.device("cpu"), network=lite0
    )
    state = ShowState(dreamer.params, lite0.spec.layers)
    with caplog.at_level(logging.INFO):
        huge = open_source(huge_photo, paced=False, max_size=(1024, 768))
    normal = open_source(str(small), paced=False)
    with huge, normal:
        huge_pipeline = Pipeline(huge, dreamer, state)
        normal_pipeline = Pipeline(normal, fresh_dreamer(dreamer), state)
        huge_s, normal_s = seconds_per_tick([huge_pipeline, normal_pipeline], 5)
        tracemalloc.start()  # numpy's buffers are traced: what one frame's trip allocates
        huge_pipeline.tick()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert huge_pipeline.last_output.shape == (768, 768, 3)
    reduced = [r.getMessage() for r in caplog.records if "larger than the show needs" in r.getMessage()]
    assert reduced == [
        "image huge.jpg: 8000x8000 frames are larger than the show needs; reduced to 768x768 at the source"
    ]
    assert peak < 30 * 2**20  # a full-size frame alone would be 183 MiB
    assert huge_s < 3.0 * normal_s  # side by side (full size it was 150x slower: docs/BENCHMARKS.md)


def test_a_dream_size_that_does_not_fit_names_the_largest_that_does(capsys):
    with pytest.raises(ConfigError) as info:
        check_dream_size((8192, 8192), "efficientnet_lite0", torch.device("cpu"), free=16 * GiB)
    message = str(info.value)
    assert "8192x8192" in message and "largest that fits is 2384x2384" in message
    check_dream_size((2384, 2384), "efficientnet_lite0", torch.device("cpu"), free=16 * GiB)  # it does fit
    # on this machine too (it has far less than the ~94 GB free that 8192x8192 needs)
    assert main(["--source", "synthetic", "--headless", "--frames", "1", "--dream-size", "8192x8192"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "largest that fits is" in lines[0]


def test_a_virtual_camera_size_that_does_not_fit_names_the_largest_that_does():
    with pytest.raises(ConfigError, match="--virtual-cam-size 8192x4608 .* largest that fits is 6304x3536"):
        check_virtual_cam_size((8192, 4608), free=1 * GiB)
    check_virtual_cam_size((1280, 720), free=1 * GiB)


def test_largest_size_keeps_the_aspect_and_the_budget():
    width, height = largest_size(1_000_000, 16 / 9)
    assert width * height <= 1_000_000 and abs(width / height - 16 / 9) < 0.05 and width % 16 == 0


def test_a_full_hd_dream_is_buildable_on_a_gpu():
    """The goal's `--dream-size 1920x1080` (EfficientNet-Lite0, cudagraph bf16): the memory check
    lets it through on a data-centre GPU and on a 24 GB card, the CPU's slowness warning does not
    apply to a GPU, and its frame's shapes are what the bench captures (no upscaled source)."""
    import torch

    from realtime.commands.bench import source_size
    from realtime.dream.budget import check_dream_size, slow_on_cpu

    cuda = torch.device("cuda")
    for free_gib in (139, 20):  # an H200's free memory; a 24 GB card with a desktop on it
        check_dream_size((1920, 1080), "efficientnet_lite0", cuda, free=free_gib * 2**30)
    check_dream_size((1920, 1080), "googlenet", cuda, free=60 * 2**30)
    assert not slow_on_cpu((1920, 1080), cuda) and slow_on_cpu((1920, 1080), torch.device("cpu"))
    assert source_size((1920, 1080)) == (1920, 1080)


def test_a_live_dream_on_the_cpu_leaves_one_core_to_the_display_and_the_flow(monkeypatch):
    import argparse
    import os

    from realtime.commands.options import set_threads as _set_threads
    from realtime.dream.budget import live_dream_threads

    assert [live_dream_threads(n) for n in (None, 1, 2, 8)] == [1, 1, 1, 7]
    before = torch.get_num_threads()
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    try:
        _set_threads(argparse.Namespace(threads=None), torch.device("cpu"))
        assert torch.get_num_threads() == 3
        _set_threads(argparse.Namespace(threads=2), torch.device("cpu"))  # --threads wins
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        _set_threads(argparse.Namespace(threads=None), torch.device("meta"))  # not the CPU's maths
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
