"""tools/gpu_check.sh and tools/bench_gpu.sh as far as a CPU allows: no GPU is said in one line
with a non-zero exit, the plan fits its deadline, and make bench-gpu's script exits non-zero
when its backends fail. The full run on the CPU (GPU_CHECK_REHEARSAL=1, toy sizes) takes minutes:
docs/BENCHMARKS.md, "The GPU check"."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def _run(args, tmp_path, **env):
    environment = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(args, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


@no_gpu
def test_without_a_gpu_the_check_says_why_in_one_line_and_exits_non_zero(tmp_path):
    done = _run(["tools/gpu_check.sh", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 2
    assert "gpu_check: no CUDA GPU: " in done.stderr and "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] is False and summary["why"]


def test_the_plan_covers_every_step_within_the_deadline(tmp_path):
    done = _run(["tools/gpu_check.sh", "--dry-run", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stderr
    plan = dict(re.findall(r"^(\w+)\s+(\d+)s", done.stdout, re.MULTILINE))
    assert list(plan)[-7:] == [
        "gpu_tests",
        "profile_640",
        "profile_1080",
        "bench_1080",
        "make_clip",
        "eval_640",
        "bench_gpu",
    ]
    assert "--dream-size 1920x1080" in done.stdout and "-m gpu" in done.stdout
    assert all(int(limit) <= 240 for limit in plan.values())  # no step may take the whole budget
    script = (ROOT / "tools" / "gpu_check.sh").read_text()
    deadline = int(re.search(r"DEADLINE_S=\$\{DEADLINE_S:-(\d+)\}", script)[1])
    assert deadline < 9 * 60


def test_bench_gpu_exits_non_zero_when_its_backends_fail(tmp_path):
    """On a machine without a GPU every run of make bench-gpu's script fails (--device cuda):
    both halves are still tried, and the exit status says so."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    done = _run(["tools/bench_gpu.sh"], tmp_path, DREAMCAM=f"{sys.executable} -m realtime.commands.cli")
    assert done.returncode != 0
    assert done.stderr.count("--device cuda asked for, but no CUDA GPU is available") == 2
