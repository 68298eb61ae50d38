"""Warm start: the dream of frame t-1 is not thrown away.

Its residual r = dream − source is carried to frame t and added to the new source frame, so a few
steps deepen an existing dream instead of starting over. With `flow`, the residual is first moved
along the scene's optical flow (hallucinations ride on moving objects; occluded areas fade
instead of smearing). A scene cut drops it. Motion sets how much of it survives when
`stillness_boost` is on: stand still and the dream deepens, move and the camera shows through.
Every dream is anchored to the camera's per-channel mean and spread, so minutes of feedback
cannot creep brighter, darker or towards one colour.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from realtime.dream import frames
from realtime.dream.flow import (
    DeviceWarp,
    FlowAhead,
    FlowEstimator,
    FlowField,
    inside_frame,
    is_scene_cut,
    pixel_grid,
    to_grey,
    warp_array,
    warp_residual,
)
from realtime.dream.plate import Plate
from realtime.dream.tensor_ops import box_mean, channel_stats
from realtime.params import DreamParams

MAX_CONTRAST = 1.25  # a dream's per-channel spread may reach this multiple of the camera's
MOTION_SCALE_PX = 3.0  # flow magnitude (px at dream size) that counts as "fast" motion
# each warm frame's step is blended with the steps before it, carried along the flow like the
# residual: consecutive frames push the same way instead of re-rolling the texture each frame (the
# jitter makes every single step's gradient a fresh draw). 0: no momentum. 0.9 (was 0.8) lifts a
# mature dream under a slow pan from 0.97 to 1.01-1.05 of a classic still DeepDream of the same
# frames, and boils less (BENCHMARKS, "Held to a classic dream of the same frames")
MOMENTUM = 0.9
# a young dream takes larger steps: each pixel's age (frames its dream has grown, carried along the
# flow like the residual; 0 where the camera's motion uncovers the scene, an occlusion ends, after a
# cut and on the first frame) sets its step, 1 + YOUNG_BOOST times the step at age 0, falling to 1x
# at YOUNG_FRAMES. It scales the warm frame's step before the momentum's blend (FrameDreamer.finish).
# The step is normalised (lr·g/mean|g|), so a per-pixel factor costs no gradient and leaves an old
# dream's step as it was
YOUNG_BOOST, YOUNG_FRAMES = 2.0, 30


def anchor(dream: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Give `dream` the source's per-channel mean and at most MAX_CONTRAST times its spread."""
    source_mean, source_std = channel_stats(source)  # tensor_ops: 10x faster than std on a CPU
    dream_mean, dream_std = channel_stats(dream)
    scale = (MAX_CONTRAST * source_std / (dream_std + 1e-6)).clamp(max=1.0)
    return ((dream - dream_mean) * scale + source_mean).clamp_(0.0, 1.0)


def blend(push: torch.Tensor, change: torch.Tensor, momentum: float) -> torch.Tensor:
    """The momentum's exponential mean, in place on `push`: push·momentum + change·(1 − momentum)."""
    return push.mul_(momentum).add_(change, alpha=1.0 - momentum)


GATE_BLUR_PX = 7  # the depth gate looks at the dream's depth around a pixel, not the pixel alone


def depth_gate(residual: torch.Tensor, depth: float) -> torch.Tensor:
    """1x1xHxW in [0, 1]: how much of a new step a pixel takes, falling from 1 where the carried
    residual is flat to 0 where its mean absolute size over channels (and neighbours) is `depth`."""
    size = residual.abs().mean(1, keepdim=True)
    size = box_mean(size, GATE_BLUR_PX)  # avg_pool2d without the padding counted, fast on a CPU
    return (1.0 - size / depth).clamp_(0.0, 1.0)


class WarmStart:
    def __init__(self) -> None:
        self.residual: torch.Tensor | None = None
        self.motion = 0.0  # mean flow (px) or frame change of the last frame, for the HUD
        self.cuts = 0
        self.field: FlowField | None = None  # the last frame's flow (eval compares it with the truth)
        self.push: torch.Tensor | None = None  # the momentum of the steps (`steer`), at dream size
        self.age: np.ndarray | None = None  # HxW float32: frames each pixel's dream has grown (`youth`)
        self._staging: frames.Staging | None = None  # off the CPU: the young dream's factor goes up
        self._push_weight = 0.0
        self._previous_grey: np.ndarray | None = None
        self._flow: FlowEstimator | FlowAhead | None = None
        self._warp: DeviceWarp | None = None  # off the CPU: the flow's buffers, made once per size
        self.plate = Plate()  # a still camera's background dream, put back where a walker uncovers it

    def flow_on_thread(self) -> None:
        """Compute the flow on a thread of its own, one frame ahead (`look_ahead`): the live loop."""
        if not isinstance(self._flow, FlowAhead):
            self._flow = FlowAhead()

    def look_ahead(self, grey: np.ndarray) -> None:
        """The next frame to dream, in grey at dream size: its flow from the frame dreamt now
        starts on the flow's thread (any thread may call this; without the thread it does nothing)."""
        previous = self._previous_grey
        if isinstance(self._flow, FlowAhead) and previous is not None and previous.shape == grey.shape:
            self._flow.ahead(previous, grey)

    def close(self) -> None:
        """Stop the flow's thread; later frames compute their flow themselves."""
        if isinstance(self._flow, FlowAhead):
            self._flow.close()
            self._flow = None

    def reset(self) -> None:
        self.residual = None
        self.push, self._push_weight = None, 0.0
        self.age = None
        self.plate.reset()

    def keep(self, residual: torch.Tensor) -> None:
        """The frame's finished residual: carried to the next frame, and remembered by the plate
        where the frame showed the still background."""
        self.residual = residual
        if self._previous_grey is not None:
            self.plate.remember(residual, self._previous_grey)

    def youth(self, like: torch.Tensor, boost: float = YOUNG_BOOST) -> torch.Tensor | None:
        """1x1xHxW step factor from each pixel's age: 1 + boost where the dream is new, 1 from
        YOUNG_FRAMES on; None when no pixel is young (nothing to multiply)."""
        height, width = like.shape[-2:]
        if self.age is None or self.age.shape != (height, width):
            self.age = np.zeros((height, width), np.float32)
        if boost <= 0.0 or self.age.min() >= YOUNG_FRAMES:
            return None
        factor = (1.0 + boost * np.clip(1.0 - self.age / YOUNG_FRAMES, 0.0, 1.0))[None, None]
        if like.device.type == "cpu":
            return torch.from_numpy(factor).to(like.dtype)
        if self._staging is None or self._staging.device != like.device:
            self._staging = frames.Staging(like.device)  # one reused pinned buffer, one copy up
        return self._staging.upload(factor).to(like.dtype)

    def grow(self) -> None:
        """Every pixel's dream is a frame older (after the frame's step)."""
        if self.age is not None:
            self.age += 1.0

    def _carry_age(self, field: FlowField) -> None:
        """Move the ages along the flow: pixels from outside the last frame are new (age 0), and
        occluded ones as young as the share of their residual that survives the occlusion (the
        flow check's `valid`, already 0 outside the frame: FlowEstimator.estimate)."""
        if self.age is None or self.age.shape != field.backward.shape[:2]:
            return
        moved = warp_array(self.age, field.backward)
        if field.valid is not None:
            moved *= field.valid
        else:  # an unchecked flow: only the frame's edge says what is new
            height, width = self.age.shape
            moved *= inside_frame(pixel_grid(height, width) + field.backward, width, height)
        self.age = moved

    def steer(self, change: torch.Tensor, momentum: float = MOMENTUM) -> torch.Tensor:
        """This frame's step blended with the earlier ones (moved with the scene in `initial`): an
        exponential mean, debiased over the first frames so a young dream grows at full rate."""
        if momentum <= 0.0:
            return change
        push, weight = self.momentum(change, momentum)
        self.push = blend(push, change, momentum)
        return self.push / weight

    def momentum(self, like: torch.Tensor, momentum: float = MOMENTUM) -> tuple[torch.Tensor, float]:
        """The carried push this frame's step blends into (zeros when there is none of its shape)
        and the debiasing weight after the blend: `steer`'s bookkeeping, on the host (the GPU's
        captured tail, realtime.dream.tail, does the blend itself and stores the push back)."""
        if self.push is None or self.push.shape != like.shape:
            self.push, self._push_weight = torch.zeros_like(like), 0.0
        self._push_weight = momentum * self._push_weight + (1.0 - momentum)
        return self.push, self._push_weight

    def initial(
        self, source: torch.Tensor, params: DreamParams, grey: np.ndarray | None = None
    ) -> torch.Tensor:
        """The image the frame's gradient steps start from. `grey`: the camera frame in grey at
        the source's size, from the numpy frame (else it is read back from `source`)."""
        if params.warm_start == "off":
            return source
        carried = self._carry(source, params, grey)
        if carried is None:
            return source
        return (source + self.persistence(params) * carried).clamp_(0.0, 1.0)

    def persistence(self, params: DreamParams) -> float:
        """The persistence after motion: fast motion lets the camera through (boost 0: unchanged)."""
        fast = min(1.0, self.motion / MOTION_SCALE_PX)
        return params.persistence * (1.0 - 0.5 * min(1.0, params.stillness_boost) * fast)

    def step_scale(self, params: DreamParams) -> float:
        """Step-size factor: a still scene dreams deeper, up to (1 + boost) times the step size."""
        stillness = math.exp(-self.motion / MOTION_SCALE_PX)
        return 1.0 + params.stillness_boost * stillness

    def _carry(
        self, source: torch.Tensor, params: DreamParams, grey: np.ndarray | None
    ) -> torch.Tensor | None:
        """The last residual, moved to this frame; None after a cut or when there is none."""
        grey = to_grey(source) if grey is None else grey
        previous, self._previous_grey = self._previous_grey, grey
        if previous is None or previous.shape != grey.shape:
            self.reset()
            return None
        if is_scene_cut(previous, grey):
            self.cuts += 1
            self.reset()
            self.motion = 0.0
            return None
        if self.residual is None or self.residual.shape != source.shape:
            return None
        if params.warm_start == "flow":
            self._flow = self._flow or FlowEstimator()
            field = self.field = self._flow.estimate(previous, grey)
            self.motion = field.motion
            move = self._mover(field, self.residual.device)  # the flow goes up once for both
            if self.push is not None and self.push.shape == self.residual.shape:
                self.push = move(self.push)
            self._carry_age(field)
            moved, restored = self.plate.restore(move(self.residual), field, grey)
            if restored is not None and self.age is not None:  # the plate's dream is a formed one
                np.maximum(self.age, restored * YOUNG_FRAMES, out=self.age)
            return moved
        self.motion = float(np.abs(grey.astype(np.float32) - previous).mean()) / 4.0  # rough px scale
        return self.residual

    def _mover(self, field: FlowField, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """What moves a residual-shaped tensor along `field`: OpenCV on the CPU, else grid_sample
        with this warm start's per-size buffers (one upload of the flow for all tensors moved)."""
        if device.type == "cpu":
            return lambda tensor: warp_residual(tensor, field)
        if self._warp is None or self._warp.device != device:
            self._warp = DeviceWarp(device)
        return self._warp.load(field)

    def update(self, source: torch.Tensor, dream: torch.Tensor) -> torch.Tensor:
        """Anchor the dream to the source, remember its residual and return the anchored dream."""
        dream = anchor(dream, source)
        self.keep(dream - source)
        return dream
