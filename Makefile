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

# On a CUDA machine: GoogLeNet inception4c at 640x360, 2 steps. Random weights of the same
# architecture (speed does not depend on weight values; offline GPU hosts cannot download them).
# Every backend side by side in one run with the precision pinned (fp32: all three; bf16: eager and
# cudagraph, the ONNX export being fp32), synced kernel timing, and the goal's ratios
# (cudagraph / eager, onnx / cudagraph) at the end of each JSON object; no window is drawn
# (--window none), so the ratios compare the backends, not the CPU blit beside them.
bench-gpu: $(STAMP)
	$(BIN)/dreamcam bench --device cuda --model googlenet --weights random --layer inception4c \
		--dream-size 640x360 --steps 2 --frames 300 --window none --backend all --precision fp32 --compare-cold --json
	$(BIN)/dreamcam bench --device cuda --model googlenet --weights random --layer inception4c \
		--dream-size 640x360 --steps 2 --frames 300 --window none --backend all --precision bf16 --json
