#!/usr/bin/env bash
# Which CPU dream size holds the window's loop (issue 25, goal 5): OpenVINO's kernel at each size,
# then the window's loop (`dreamcam bench`, openvino fp32) at every size side by side, rounds
# interleaved. Run it on a quiet machine (`uptime` is printed before and after) from the repo root:
#   SDL_VIDEODRIVER=dummy tools/size_race.sh [SIZE ...]    (default: 320x180 384x216 416x234 448x252 480x270)
# ROUNDS (3) and FRAMES (120) set the loop's rounds and timed dreams; PYTHON the interpreter.
# A size may become the CPU default where its loop holds >= 20 dreams/s and display >= 29 fps.
set -euo pipefail
PY=${PYTHON:-python}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(320x180 384x216 416x234 448x252 480x270)
uptime
for s in "${SIZES[@]}"; do
  $PY tools/kernel_race.py --size "$s" --rounds 3 --steps 10 "openvino fp32: openvino fp32" "eager fp32: eager fp32"
done
variants=()
for s in "${SIZES[@]}"; do variants+=("$s openvino: --dream-size $s --backend openvino --precision fp32"); done
$PY tools/bench_side_by_side.py --rounds "${ROUNDS:-3}" --frames "${FRAMES:-120}" "${variants[@]}"
uptime
