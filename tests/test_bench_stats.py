"""`dreamcam bench`'s statistics, CPU side: what the GPU figures of `make bench-gpu` are made of."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from realtime.commands import bench
from realtime.params import DreamParams


def test_p99_covers_the_whole_timed_run_not_the_last_300():
    stats = bench.whole_run_stats()
    for ms in [100.0] * 700 + [10.0] * 300:  # a slow start, then fast: the HUD window forgets it
        stats.dream_ms.add(ms)
    assert stats.dream_ms.p99 == 100.0
    assert len(stats.dream_ms.samples) == 1000


def test_percentiles_are_over_every_sample():
    samples = list(range(1, 1001))
    p50, p99 = bench.percentiles(samples)
    assert p50 == pytest.approx(500.5) and p99 == pytest.approx(990.01)
    assert all(np.isnan(v) for v in bench.percentiles([]))


def test_kernel_timer_on_the_cpu_times_each_call(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: now[0])
    timer = bench.KernelTimer(torch.device("cpu"))

    def work(seconds):
        now[0] += seconds

    timer.time(lambda: work(0.004))
    timer.time(lambda: work(0.010))
    assert timer.milliseconds() == pytest.approx([4.0, 10.0])


class _RecordingDreamer:
    """Stands in for FrameDreamer: records the shapes and step counts its backend is run with."""

    def __init__(self, steps=2, octaves=2):
        self.calls = []
        self.device = torch.device("cpu")
        self.effective = self.params = DreamParams(steps=steps, octaves=octaves)
        self.backend = SimpleNamespace(run=self._run)

    def _run(self, x, steps):
        self.calls.append((tuple(x.shape[-2:]), steps))
        return x

    def source_tensor(self, image):
        return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def test_kernel_timing_warms_up_exactly_what_it_times():
    dreamer = _RecordingDreamer(steps=3, octaves=2)
    images = [np.zeros((36, 64, 3), np.uint8)] * 2
    p50, p99 = bench.kernel_timing(dreamer, images, runs=5)
    warm_up, timed = dreamer.calls[:2], dreamer.calls[2:]
    assert len(timed) == 5 * 2  # two octaves per dream
    assert set(warm_up) == set(timed) and {steps for _, steps in timed} == {3}
    assert 0 <= p50 <= p99


def test_cold_comparison_warms_up_with_the_step_count_it_times(monkeypatch):
    dreamer = _RecordingDreamer()
    frames = 2
    bench._cold_fps(dreamer, frames)
    per_dream = bench.COLD_OCTAVES
    assert len(dreamer.calls) == (frames + 1) * per_dream
    assert {steps for _, steps in dreamer.calls} == {bench.COLD_STEPS}  # the warm-up too


def test_goal_ratios_compare_backends_of_one_run():
    rows = [
        {"backend": "eager", "kernel_fps": 10.0, "dream_fps": 8.0},
        {"backend": "onnx", "kernel_fps": 30.0, "dream_fps": 20.0},
        {"backend": "cudagraph", "kernel_fps": 40.0, "dream_fps": 25.0},
    ]
    ratios = bench.goal_ratios(rows)
    assert ratios["cudagraph/eager"] == {"kernel_fps": 4.0, "dream_fps": 3.125}
    assert ratios["onnx/cudagraph"] == {"kernel_fps": 0.75, "dream_fps": 0.8}
    assert bench.goal_ratios(rows[:1]) == {}  # nothing to compare
    openvino = {"backend": "openvino", "kernel_fps": 25.0, "dream_fps": 16.0}
    ratios = bench.goal_ratios([*rows[:2], openvino])
    assert ratios["openvino/eager"] == {"kernel_fps": 2.5, "dream_fps": 2.0}
    assert ratios["openvino/onnx"] == {"kernel_fps": 0.833, "dream_fps": 0.8}


def test_all_means_the_backends_this_device_and_precision_can_run():
    from realtime.dream.backends.openvino import openvino_available

    on_cpu = ["eager", "onnx", "openvino"] if openvino_available() else ["eager", "onnx"]
    assert bench.bench_backends(torch.device("cpu")) == on_cpu
    assert bench.bench_backends(torch.device("cpu"), "bf16") == ["eager"]
    assert bench.bench_backends(torch.device("cuda"), "fp32") == ["eager", "onnx", "cudagraph"]
    assert bench.bench_backends(torch.device("cuda"), "bf16") == ["eager", "cudagraph"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_kernel_timer_on_the_gpu_reads_the_gpus_time():
    timer = bench.KernelTimer(torch.device("cuda"))
    a = torch.randn(4096, 4096, device="cuda")
    for _ in range(3):
        timer.time(lambda: a @ a)
    times = timer.milliseconds()
    assert len(times) == 3 and all(t > 0.1 for t in times)  # a 4096² matmul is not free


def test_a_failing_backend_is_a_row_saying_why_and_the_others_still_run():
    """`make bench-gpu` survives a failing backend: its row says why, the others are measured
    (medians over alternating repeats), and the caller can exit non-zero."""
    from realtime.commands.bench import alternating_orders, compare_backends

    calls = []
    kernel_fps = {"eager": iter([10.0, 30.0, 20.0]), "cudagraph": iter([50.0, 70.0, 60.0])}

    def measure(backend):
        calls.append(backend)
        if backend == "onnx":
            raise RuntimeError("onnxruntime could not load its CUDA provider\nsecond line")
        return {
            "backend": backend,
            "kernel_fps": next(kernel_fps[backend]),
            "captured": backend == "cudagraph",
        }

    rows = compare_backends(["eager", "onnx", "cudagraph"], measure, repeats=3)
    assert calls == ["eager", "onnx", "cudagraph", "cudagraph", "eager", "eager", "cudagraph"]
    eager, onnx, graph = rows
    assert onnx == {
        "backend": "onnx",
        "ok": False,
        "error": "RuntimeError: onnxruntime could not load its CUDA provider",
    }
    assert eager["ok"] and eager["kernel_fps"] == 20.0 and eager["repeats"] == 3
    assert graph["kernel_fps"] == 60.0 and graph["captured"] is True
    assert alternating_orders(["a", "b"], 3) == [["a", "b"], ["b", "a"], ["a", "b"]]


def test_no_round_starts_once_the_budget_is_spent():
    from realtime.commands.bench import compare_backends

    now = [0.0]

    def measure(backend):
        now[0] += 100.0
        return {"backend": backend, "kernel_fps": 1.0}

    rows = compare_backends(["eager", "cudagraph"], measure, repeats=5, budget_s=150.0, clock=lambda: now[0])
    assert [row["repeats"] for row in rows] == [1, 1]


def test_bench_all_prints_every_row_and_exits_non_zero_when_one_failed(monkeypatch, capsys):
    import json

    from realtime.commands import bench
    from realtime.commands.cli import main

    real = bench.run_bench

    def run_or_fail(params, dream_size, device, backend, *args, **kwargs):
        if backend == "onnx":
            raise RuntimeError("export failed on purpose")
        return real(params, dream_size, device, backend, *args, **kwargs)

    monkeypatch.setattr(bench, "run_bench", run_or_fail)
    argv = [
        "bench",
        "--backend",
        "all",
        "--frames",
        "2",
        "--dream-size",
        "64x36",
        "--window",
        "none",
        "--json",
    ]
    assert main(argv) == 1
    out = json.loads(capsys.readouterr().out)
    by_backend = {row["backend"]: row for row in out["backends"]}
    assert by_backend["onnx"]["error"] == "RuntimeError: export failed on purpose" and not out["ok"]
    eager = by_backend["eager"]
    assert eager["ok"] and eager["kernel_fps"] > 0
    assert eager["captured"] is False and eager["tf32"] is None  # true labels on a CPU


def test_profile_times_every_stage_of_a_frame_on_the_cpu(capsys):
    import json

    from realtime.commands.cli import main

    argv = ["bench", "--profile", "--frames", "3", "--dream-size", "64x36", "--warm-start", "flow", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["profile"]) == ["upload", "flow", "warm start", "step", "anchor", "compose", "download"]
    for stage in out["profile"].values():
        assert stage["host_ms_p50"] >= 0 and stage["gpu_ms_p50"] is None
    assert out["timer"] == "perf_counter" and out["captured"] is False


def test_a_nested_stage_is_excluded_from_the_outer_ones_host_time():
    from realtime.commands.bench import StageTimer

    now = [0.0]
    timer = StageTimer(torch.device("cpu"), clock=lambda: now[0])
    with timer.stage("warm start"):
        now[0] += 0.002
        with timer.stage("flow"):
            now[0] += 0.010
        now[0] += 0.001
    report = timer.report()
    assert report["flow"]["host_ms_p50"] == 10.0 and report["warm start"]["host_ms_p50"] == 3.0


def test_a_full_hd_dream_is_dreamt_from_a_full_hd_frame():
    from realtime.commands.bench import source_size

    assert source_size((320, 180)) == (640, 360)
    assert source_size((1920, 1080)) == (1920, 1080)
