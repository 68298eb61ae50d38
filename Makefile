# Two commands for a fresh machine: `make demo` and `make test` (both create .venv when needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-gpu venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Dream live on the webcam (or the built-in moving scene when no camera answers). Q or Esc quits.
demo: $(STAMP)
	$(BIN)/dreamcam --windowed

# The whole suite, headless: SDL's dummy drivers stand in for a screen and a sound card.
test: $(STAMP)
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/dreamcam bench --compare-cold --json

# On a CUDA machine: every backend side by side on GoogLeNet inception4c at 640x360, fp32 and bf16,
# 3 alternating repeats each (rows are medians); a failing backend is a row saying why and makes
# the exit status non-zero at the end. What it runs and why: tools/bench_gpu.sh.
bench-gpu: $(STAMP)
	DREAMCAM=$(BIN)/dreamcam tools/bench_gpu.sh
