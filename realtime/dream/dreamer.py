"""FrameDreamer: one camera frame in, its dream residual out.

Per frame: the frame becomes a tensor at dream size, the warm start gives the image to start from,
the engine's backend runs the frame's steps over the octaves, the tail (realtime.dream.tail:
momentum, depth gate, fault check, anchor; a captured graph on cudagraph) finishes the dream, and
the residual is kept for the next frame. The parameters it holds are the ones asked for (by keys,
OSC, presets); the quality governor only sets a cap (fewer steps, a smaller size) that is applied
on top, so the next key press cannot undo it, and `effective` says what the last frame really ran
with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from models.registry import Network
from realtime.dream import frames, kernel
from realtime.dream.engine import DreamEngine, EngineRecipe
from realtime.dream.health import FaultCheck
from realtime.dream.tail import TailGraph, anchored, gate_depth, warm_tail
from realtime.dream.warmstart import WarmStart
from realtime.params import DreamParams

log = logging.getLogger(__name__)

WARM_STEP_FACTOR = 0.35

Shape = tuple[int, int, int]
"""(height, width, steps): what one backend run is specific to (the backend contract's Shape)."""


class FrameDreamer:
    def __init__(self, engine: DreamEngine, params: DreamParams):
        self.engine = engine
        self.params = params  # as asked for; the governor never writes here
        self.requested_size = engine.size  # (width, height)
        self.cap_steps: int | None = None  # the governor's cap, None: no cap
        self.cap_size: tuple[int, int] | None = None
        self.warm = WarmStart()
        self.effective = params  # what the last frame ran with (capped steps, scaled lr)
        self.frames = 0  # frames dreamt: which scale of the pyramid the next warm frame steps
        self.faults = 0  # dreams thrown away as non-finite or collapsed (see realtime.dream.health)
        self._faulty = False  # the last dream was thrown away: warn once per run of bad dreams
        self.fault_check = FaultCheck(deferred=self.device.type == "cuda")  # no host sync on a GPU
        self._ahead: tuple[np.ndarray, np.ndarray] | None = None  # (camera frame, its grey) handed ahead
        # off the CPU the camera frame goes up through pinned buffers made once per size
        self._staging = None if self.device.type == "cpu" else frames.Staging(self.device)

    # --- what it dreams with ------------------------------------------------------------------

    @property
    def dream_size(self) -> tuple[int, int]:
        """(width, height) the frames are dreamt at: the requested size or the governor's cap."""
        return self.cap_size or self.requested_size

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def backend(self):
        return self.engine.backend

    @property
    def network(self) -> Network:
        return self.engine.network

    @property
    def layer_name(self) -> str:
        return self.engine.layer_name

    def check(self, params: DreamParams) -> None:
        """Raise the DreamcamError `set_params` would raise, without building anything."""
        self.engine.check(params)

    def needs_rebuild(self, params: DreamParams) -> bool:
        """Whether `set_params(params)` rebuilds the backend (a new model or layer)."""
        return self.engine.would_rebuild(params)

    def set_params(self, params: DreamParams) -> None:
        """Apply new parameters between frames; rebuilds only what a model or layer change needs."""
        model_changed = params.model != self.network.spec.name
        self.engine.use(params)
        self.params = params
        if model_changed:
            self.warm.reset()

    def set_cap(self, steps: int | None, size: tuple[int, int] | None) -> None:
        """The governor's cap: at most `steps` steps, dreamt at `size`; the warm residual is
        resized, not lost."""
        before = self.dream_size
        self.cap_steps = steps
        self.cap_size = None if size == self.requested_size else size
        width, height = self.dream_size
        if self.dream_size != before and self.warm.residual is not None:
            self.warm.residual = kernel.resize(self.warm.residual, (height, width))

    def frame_params(self) -> DreamParams:
        """The parameters this frame runs with: the cap applied, the warm-start step scale."""
        p = self.params
        if self.cap_steps is not None and self.cap_steps < p.steps:
            p = p.replace(steps=self.cap_steps)
        if p.warm_start != "off":
            # a warm-started dream accumulates over frames, so each frame takes a third-size step:
            # as deep within a few frames, and far less flicker than full steps every frame
            p = p.replace(lr=min(1.0, p.lr * WARM_STEP_FACTOR * self.warm.step_scale(p)))
        return p

    # --- building ahead -----------------------------------------------------------------------

    def frame_shapes(self, size: tuple[int, int] | None = None, steps: int | None = None) -> list[Shape]:
        """The backend runs one frame needs (one per octave) at `size` and `steps` (default:
        the next frame's)."""
        p = self.params
        width, height = size or self.dream_size
        if steps is None:
            steps = min(p.steps, self.cap_steps) if self.cap_steps is not None else p.steps
        sizes = kernel.octave_sizes(height, width, p.octaves, p.octave_scale)
        return [(h, w, steps) for h, w in sizes]

    def reachable_shapes(self, sizes: list[tuple[int, int]], steps: range) -> list[Shape]:
        """Every run the show can reach over these dream sizes and step counts (the governor's)."""
        shapes = {s for size in sizes for k in steps for s in self.frame_shapes(size, k)}
        return sorted(shapes)

    def needs_build(self) -> bool:
        """Whether the next frame's runs start with a build (an export, a capture, a first run)."""
        return not all(self.backend.is_prepared(s) for s in self.frame_shapes())

    def prepare(self, shapes: list[Shape]) -> None:
        """Build every shape now (on the caller's thread: the dream worker's, under its lock)."""
        self.backend.prepare(shapes)

    # --- one frame ----------------------------------------------------------------------------

    def source_tensor(self, image: np.ndarray) -> torch.Tensor:
        """The camera frame as the dream sees it: 1x3xhxw in [0, 1] at dream size."""
        return frames.image_tensor(image, self.dream_size, self.device, self._staging)

    def dream(self, source: torch.Tensor, grey: np.ndarray | None = None) -> torch.Tensor:
        """Warm start, the frame's steps, the tail; the residual in pixel units (zeros when the
        dream was thrown away). `grey`: the frame in grey at dream size, for the flow (computed
        from the numpy frame)."""
        start = self.warm.initial(source, self.params, grey)
        return self.finish(start, source, self.run_steps(start))

    def run_steps(self, start: torch.Tensor) -> torch.Tensor:
        """The frame's gradient steps from `start` (the governor's cap and the warm step scale
        applied): warm start off, the dream itself (all octaves, cold); warm, the change one scale
        of the pyramid makes, at dream size (`finish` blends it in)."""
        p = self.effective = self.frame_params()
        self.backend.params = p
        if p.warm_start == "off":
            stepped = kernel.dream(start, self.backend.run, p.steps, p.octaves, p.octave_scale)
        else:
            stepped = self._step_one_scale(start, p)
        self.frames += 1
        return stepped

    def _step_one_scale(self, start: torch.Tensor, p: DreamParams) -> torch.Tensor:
        """A warm frame steps one scale of the octave pyramid, the next frame the next scale: the
        carried dream keeps what every scale added (big structures from the coarse ones) for the
        price of one scale a frame. Returns the change, at dream size."""
        height, width = start.shape[-2:]
        sizes = kernel.octave_sizes(height, width, p.octaves, p.octave_scale)
        size = sizes[self.frames % len(sizes)]
        at_scale = kernel.resize(start, size)
        return kernel.resize(self.backend.run(at_scale, p.steps) - at_scale, (height, width))

    def finish(self, start: torch.Tensor, source: torch.Tensor, stepped: torch.Tensor) -> torch.Tensor:
        """After the steps (`run_steps`'s output): a warm frame's change scaled up where the dream
        is young (WarmStart.youth), then the tail (realtime.dream.tail: the change blended with the
        momentum and faded out where the carried dream is already `depth` deep, so a converged dream
        holds still instead of boiling; the anchor), replayed as a captured graph where the backend
        has one; the fault check; the carried residual kept. Returns the residual in pixel units."""
        p = self.effective
        if p.warm_start == "off":
            residual, pixels, figures = anchored(stepped, source)
        else:
            youth = self.warm.youth(stepped)
            if youth is not None:  # a young dream (new to the picture) grows faster
                stepped = stepped * youth
            self.warm.grow()
            push, weight = self.warm.momentum(stepped)
            run = self._tail(*start.shape[-2:]) or warm_tail
            push, residual, pixels, figures = run(start, source, stepped, push, weight, gate_depth(p.depth))
            self.warm.push = push
        fault = self.fault_check.check(figures)
        if fault is not None:  # show the camera and start the next frame clean
            self.faults += 1
            if not self._faulty:
                log.warning("%s (layer %s); dropped it and the carried dream", fault, self.layer_name)
            self._faulty = True
            self.warm.reset()
            self.fault_check.reset()  # figures still pending were dreamt from the dropped dream
            return torch.zeros_like(source)
        self._faulty = False
        self.warm.keep(residual)
        return pixels

    def _tail(self, height: int, width: int) -> TailGraph | None:
        """The backend's captured tail at this size (cudagraph's), or None: `warm_tail` eagerly."""
        tail = getattr(self.backend, "tail", None)
        return tail(height, width) if tail is not None else None

    def flow_on_thread(self) -> None:
        """The live loop's dreamer: optical flow on a thread of its own, fed by `look_ahead`."""
        self.warm.flow_on_thread()

    def close(self) -> None:
        """Stop the flow's thread, if any (the dreamer may still dream, computing flow itself)."""
        self.warm.close()

    def look_ahead(self, image: np.ndarray) -> None:
        """The camera frame this dreamer will dream next (the live loop's mailbox, any thread): with
        the flow on its own thread (`warm.flow_on_thread`), its flow starts now, beside the dream."""
        if self.params.warm_start == "flow":
            grey = frames.grey(image, self.dream_size)
            self._ahead = (image, grey)
            self.warm.look_ahead(grey)

    def residual(self, image: np.ndarray) -> torch.Tensor:
        """The residual (dream − source) of one camera frame: 1x3xhxw on the dream's device, in
        pixel units (−255..255). It stays on the GPU there: the composer upscales and adds it."""
        source = self.source_tensor(image)
        grey = None
        if self.params.warm_start != "off":
            ahead = self._ahead
            grey = ahead[1] if ahead is not None and ahead[0] is image else None
            if grey is None or grey.shape != (source.shape[-2], source.shape[-1]):
                grey = frames.grey(image, self.dream_size)
        return self.dream(source, grey)


def build_dreamer(
    params: DreamParams,
    dream_size: tuple[int, int],
    device: torch.device,
    backend: str = "eager",
    weights: str | None = None,
    seed: int | None = None,
    network: Network | None = None,
    progress: Callable[[str], None] | None = None,
    precision: str = "auto",
) -> FrameDreamer:
    """Load (or reuse `network`), build the backend, and return a dreamer ready for frame one."""
    recipe = EngineRecipe(device, backend, weights, progress, precision)
    return FrameDreamer(DreamEngine(recipe, params, dream_size, seed, network), params)


def fresh_dreamer(dreamer: FrameDreamer) -> FrameDreamer:
    """The watchdog's restart: a new dreamer with a new engine on the same loaded network, the
    same requested parameters and cap, and a fresh warm start."""
    engine = dreamer.engine.fresh(dreamer.params, dreamer.requested_size)
    fresh = FrameDreamer(engine, dreamer.params)
    fresh.set_cap(dreamer.cap_steps, dreamer.cap_size)
    return fresh
