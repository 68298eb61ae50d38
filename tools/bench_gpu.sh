#!/usr/bin/env bash
# `make bench-gpu`'s measurements, one place for make and tools/gpu_check.sh.
#
# GoogLeNet inception4c at 640x360, 2 steps, on a CUDA machine. Random weights of the same
# architecture (speed does not depend on weight values; offline GPU hosts cannot download them).
# Every backend side by side, each run 3 times in alternating order (rows are medians), with the
# precision pinned (fp32: all three; bf16: eager and cudagraph, the ONNX export being fp32), synced
# kernel timing, and the goal's ratios (cudagraph / eager, onnx / cudagraph) at the end of each JSON
# object; no window is drawn (--window none), so the ratios compare the backends, not the CPU blit.
# A backend that fails is a row saying why; the other rows are still printed; the exit status is
# non-zero at the end if any backend failed. --budget-s bounds each half (8 minutes in all on an
# H100/H200, the ONNX export included, is the goal).
#
#   DREAMCAM: the command (default: dreamcam); OUTDIR (optional, first argument): where the two
#   JSON objects are written as bench-gpu-fp32.json and bench-gpu-bf16.json beside stdout;
#   REPEATS (3), FP32_BUDGET_S (180), BF16_BUDGET_S (120): tools/gpu_check.sh passes smaller ones;
#   BENCH_DEVICE, BENCH_MODEL, BENCH_LAYER, BENCH_SIZE, BENCH_FRAMES: its CPU rehearsal's toy run.
set -u -o pipefail
DREAMCAM=${DREAMCAM:-dreamcam}
OUTDIR=${1:-}
common=(bench --device "${BENCH_DEVICE:-cuda}" --model "${BENCH_MODEL:-googlenet}" --weights random
        --layer "${BENCH_LAYER:-inception4c}" --dream-size "${BENCH_SIZE:-640x360}" --steps 2
        --frames "${BENCH_FRAMES:-300}" --window none --backend all --repeats "${REPEATS:-3}" --json)
status=0
for precision in fp32 bf16; do
    extra=()
    budget=${BF16_BUDGET_S:-120}
    if [ "$precision" = fp32 ]; then extra=(--compare-cold); budget=${FP32_BUDGET_S:-180}; fi
    out=/dev/null
    [ -n "$OUTDIR" ] && out="$OUTDIR/bench-gpu-$precision.json"
    # shellcheck disable=SC2086 # DREAMCAM may be a command with arguments (python3 -m ...)
    $DREAMCAM "${common[@]}" --precision "$precision" --budget-s "$budget" "${extra[@]}" | tee "$out" || status=1
done
exit $status
