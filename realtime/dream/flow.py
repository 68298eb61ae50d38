"""Optical flow at dream resolution: how the scene moved between two frames, and moving a
residual along with it.

OpenCV's DIS flow on small grey frames costs a millisecond or two at 320x180. The backward flow
(current -> previous) says, for every pixel of the new frame, where it was in the old one, so the
old residual can be pulled along (`cv2.remap`). Where forward and backward flows disagree the
pixel was occluded or just uncovered: there the residual fades instead of smearing.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from realtime.dream import frames

# forward-backward disagreement (px): up to CONSISTENT_PX the flow is trusted, from OCCLUDED_PX on the
# pixel counts as occluded, and in between its trust fades (a hard 1 px cut failed on ~9 % of a plain
# pan's pixels, where ultrafast DIS is merely noisy, and wore the dream away there every frame)
CONSISTENT_PX, OCCLUDED_PX = 1.0, 3.0
OCCLUDED_KEEP = 0.2  # fraction of the residual kept where the flow check fails
# the residual is resampled every frame: bilinear would blur it a little more each time
RESIDUAL_INTERPOLATION, RESIDUAL_MODE = cv2.INTER_CUBIC, "bicubic"  # OpenCV's and torch's names
CUT_THRESHOLD = 40.0  # mean absolute grey change (0-255) that means a new scene, not motion


@dataclass(frozen=True)
class DisSettings:
    """An OpenCV DIS preset, optionally with a finer finest scale (1: half resolution's detail)."""

    preset: int
    finest_scale: int | None = None

    def create(self) -> cv2.DISOpticalFlow:
        dis = cv2.DISOpticalFlow_create(self.preset)
        if self.finest_scale is not None:
            dis.setFinestScale(self.finest_scale)
        return dis


# the dream's flow: ULTRAFAST misses sub-pixel motion by ~0.2-0.5 px, which the carried residual then
# slides by every frame (boil). FAST at MEDIUM's finest scale (1) is as exact as MEDIUM on sub-pixel
# pans, zooms and rotations (end-point error 0.044 px against 0.049 once glued to the camera, on 12
# random sub-pixel affine motions of 4 photos) at 0.75 of its time; it runs on the flow's own thread,
# one frame ahead, and boil and strength on pan, zoom and shake clips are MEDIUM's
DREAM_FLOW = DisSettings(cv2.DISOPTICAL_FLOW_PRESET_FAST, finest_scale=1)
# the forward flow only checks the backward one for occlusions, which its 1-3 px fade tolerates:
# FAST costs 1.0 ms a call at 320x180 instead of MEDIUM's 5.6, with the same boil and strength on
# pan, zoom and still clips (ULTRAFAST, 0.5 ms, flagged 9 % more of a pan's dream as occluded)
CHECK_FLOW = DisSettings(cv2.DISOPTICAL_FLOW_PRESET_FAST)
# the display's per-frame tracking runs on the display's own thread every tick: it keeps the cheap
# preset (it only carries a dream between two dreams; the dream's own flow is the accurate one)
TRACKING_FLOW = DisSettings(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
# the camera's own motion: an affine fit to the flow (every CAMERA_STRIDE-th pixel, refit on the
# pixels within each of CAMERA_INLIER_PX of the fit before: a walker's flow, which DIS smears a px
# wide into the background behind it, biased a one-refit fit by 0.1 px, enough to slide the whole
# still background every frame) replaces the local flow wherever they agree within
# CAMERA_AGREE_PX, fading to the local flow at CAMERA_DISAGREE_PX (a moving object keeps its own)
CAMERA_STRIDE, CAMERA_INLIER_PX = 4, (1.0, 0.5, 0.25)
CAMERA_AGREE_PX, CAMERA_DISAGREE_PX = 0.3, 0.6
STILL_PX = 0.05  # a camera motion under this everywhere is no motion: no resampling, no blur
# ... and wherever the local flow explains the new frame clearly better than the camera's motion
# does (a face turning at 0.4 px a frame "agrees" with a still camera within 1 px, and its dream
# was not moved at all): the warped previous frame's error (grey levels, blurred over
# PHOTO_BLUR px) is compared. The local flow wins from LOCAL_BETTER to LOCAL_BEST of
# (camera error − local error) / (camera error + PHOTO_NOISE): grain alone, which a fractional warp
# blurs a little, stays near 0.05 and glued
PHOTO_BLUR, PHOTO_NOISE = 3, 4.0
DECIDE_BLUR = 9  # the local flow's advantage is judged over this window (flat parts take their neighbours')
LOCAL_BETTER, LOCAL_BEST = 0.08, 0.2  # grain alone: 0.07 at the 99th percentile
CAMERA_BETTER, CAMERA_BEST = 0.15, 0.3
# with a still camera stillness is the prior: the local flow must earn each pixel. DIS smears a
# walker's motion up to ten pixels into the flat background it uncovers, where both motions explain
# the frame alike; moving the dream there stretched it along the walk every frame (the wake of
# streaks). So the local flow keeps only the pixels where it explains the frame clearly better
# (judged per pixel, a 3x3 median: a blur bled the walker's edge 4 px into the background), closed
# over STILL_BODY_PX (a moving body's flat parts between its textured ones) and grown by
# STILL_BODY_GROW px; everywhere else the still camera's zero motion holds. With a moving camera the
# same body keeps its own flow, flat parts included (`moving_body`)
STILL_BODY_PX, STILL_BODY_GROW = 15, 1
# ... and a pixel the moving body has just left is uncovered: it changed (camera error from
# PHOTO_OK to PHOTO_BAD grey levels, 3x3 mean) while the place its local flow copies it from did not
# (3x3 median camera error under STATIC_OK, fading out at STATIC_BAD), and that flow moves it at
# least UNCOVERED_MOVE_PX: a copy of a still pixel is not motion, it is the background showing again.
# Its residual is dropped (young dream grows there, or the plate's comes back)
STATIC_OK, STATIC_BAD, UNCOVERED_MOVE_PX = 4.0, 8.0, 0.5
# brightness constancy: where the previous frame pulled along the final flow misses the new frame
# by PHOTO_OK grey levels (blurred) or more the flow is wrong there, and from PHOTO_BAD on the pixel
# counts as uncovered: the background behind someone walking past, where the flow extends the
# walker's motion and the forward-backward check agrees with it (it cannot see that error)
PHOTO_OK, PHOTO_BAD = 8.0, 16.0


def to_grey(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW [0, 1] tensor -> HxW uint8 grey image for OpenCV."""
    rgb = (x.detach()[0].permute(1, 2, 0).clamp(0, 1) * 255).to(torch.uint8).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


@dataclass
class FlowField:
    backward: np.ndarray  # HxWx2: for each pixel of the new frame, offset to where it was before
    valid: np.ndarray | None  # HxW in [0, 1]: 1 where forward and backward flow agree; None: not checked
    motion: float  # mean flow magnitude in pixels (at dream resolution)
    # HxW in [0, 1]: 1 where the pixel moves with the camera (glued), 0 where it moves on its own;
    # None: not glued. With a still camera, what moves with it is the background (WarmStart's plate)
    glued: np.ndarray | None = None
    still: bool = False  # the camera did not move (the glued flow is zero wherever it is glued)
    # HxW in [0, 1]: 0 where the previous frame pulled along the flow misses the new one (brightness
    # constancy); None: not checked. Nothing of the residual survives there (`_keep`)
    matched: np.ndarray | None = None


def exposure_matched(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """`previous` (uint8 grey) scaled to `current`'s mean brightness: a webcam's exposure
    flicker (±2 % a frame under fluorescent light) is not motion, nor a reason to doubt the flow."""
    mean_previous, mean_current = float(previous.mean()), float(current.mean())
    if mean_previous < 1.0 or abs(mean_current / mean_previous - 1.0) < 1e-3:
        return previous
    gain = min(1.25, max(0.8, mean_current / mean_previous))
    return cv2.convertScaleAbs(previous, alpha=gain)


def photo_error(
    previous: np.ndarray, current: np.ndarray, backward: np.ndarray, blur: int = PHOTO_BLUR
) -> np.ndarray:
    """HxW float32: |current − previous pulled along `backward`| in grey levels, blurred over
    `blur` px (so one pixel's grain is not an error; 0: not blurred)."""
    pulled = warp_array(previous.astype(np.float32), backward)
    error = cv2.absdiff(pulled, current.astype(np.float32))
    return cv2.blur(error, (blur, blur)) if blur else error


class FlowEstimator:
    def __init__(
        self, settings: DisSettings = DREAM_FLOW, camera: bool = True, check: DisSettings = CHECK_FLOW
    ) -> None:
        self._dis = settings.create()
        self._check = self._dis if check == settings else check.create()
        self.camera = camera  # glue the flow to the camera's affine motion where they agree

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> FlowField:
        current = np.ascontiguousarray(current)
        previous = np.ascontiguousarray(exposure_matched(previous, current))
        backward = self._dis.calc(current, previous, None)
        forward = self._check.calc(previous, current, None)
        glued, still, uncovered = None, False, None
        if self.camera:
            backward, glued, still, uncovered = camera_glued(backward, previous, current)
        # forward flow sampled where each new pixel came from should cancel the backward flow
        forward_there = warp_array(forward, backward)
        if still and glued is not None:
            # the forward flow was not glued: where the backward flow holds still, its smear
            # (the walker's motion in the background behind it) is not a disagreement
            forward_there *= (1.0 - glued)[..., None]
        disagreement = _length(forward_there + backward)
        valid = np.clip((OCCLUDED_PX - disagreement) / (OCCLUDED_PX - CONSISTENT_PX), 0.0, 1.0)
        # ... and the old frame pulled along it should look like the new one (brightness constancy)
        matched = _ramp(PHOTO_BAD - photo_error(previous, current, backward), 0.0, PHOTO_BAD - PHOTO_OK)
        np.minimum(valid, matched, out=valid)
        # pixels that come from outside the old frame (an edge uncovered by a pan) had no dream
        height, width = backward.shape[:2]
        valid[~inside_frame(pixel_grid(height, width) + backward, width, height)] = 0.0
        if uncovered is not None:
            valid *= 1.0 - uncovered
        motion = float(_length(backward).mean())
        return FlowField(backward, valid, motion, glued, still, matched)

    def estimate_backward(
        self, previous: np.ndarray, current: np.ndarray, size: tuple[int, int]
    ) -> FlowField:
        """Backward flow only, computed on these (smaller) frames and scaled up to `size` (w, h).

        For the display's per-frame tracking, which runs beside the dream on the same cores: a
        quarter of the pixels and no occlusion check cost a fraction of `estimate`.
        """
        backward = self._dis.calc(np.ascontiguousarray(current), np.ascontiguousarray(previous), None)
        scale = size[0] / backward.shape[1]
        backward = cv2.resize(backward, size, interpolation=cv2.INTER_LINEAR) * np.float32(scale)
        motion = float(_length(backward).mean())
        return FlowField(backward, None, motion)


class FlowAhead:
    """`FlowEstimator` on a thread of its own, one frame ahead of the dream.

    The live loop hands each new camera frame in (`ahead`, from the display's thread) while the
    worker still dreams the frame before; this thread computes the flow between the two, so when
    the worker takes the new frame up its flow is ready or nearly: the worker makes no DIS call
    itself, and a finer flow costs the dream rate only what the cores cannot run beside the step.
    `estimate` has FlowEstimator's contract: the flow of exactly this pair of frames (asked for
    now, if nobody asked ahead or a newer frame took its place).
    """

    def __init__(self, estimator: FlowEstimator | None = None) -> None:
        self._estimator = estimator or FlowEstimator()
        self._lock = threading.Condition()
        # the pair the worker waits for comes first, and nothing replaces it: when the display's
        # newer `ahead` pairs could displace it, a slow flow (480x270, a loaded CPU) left the worker
        # waiting for a pair never computed, and the watchdog restarted it until memory ran out
        self._demanded: tuple[np.ndarray, np.ndarray] | None = None
        self._wanted: tuple[np.ndarray, np.ndarray] | None = None  # the newest pair handed ahead
        self._done: deque[tuple[np.ndarray, np.ndarray, FlowField | BaseException]] = deque(maxlen=3)
        self._running: tuple[np.ndarray, np.ndarray] | None = None
        self._closed = False
        self.computed = 0  # flows computed (tests, HUD)
        self._thread = threading.Thread(target=self._run, name="flow ahead", daemon=True)
        self._thread.start()

    def ahead(self, previous: np.ndarray, current: np.ndarray) -> None:
        """Start on the flow of this pair (grey frames) when the thread is free; a newer pair
        replaces one not started yet (never one the worker waits for)."""
        with self._lock:
            self._wanted = (previous, current)
            self._lock.notify_all()

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> FlowField:
        """The flow of this pair: computed ahead, or next on the flow's thread."""
        with self._lock:
            while (result := self._result(previous, current)) is None:
                if self._closed:
                    raise RuntimeError("the flow thread was closed")
                pair = (previous, current)
                if not (self._is(self._running, *pair) or self._is(self._demanded, *pair)):
                    if self._is(self._wanted, *pair):
                        self._wanted = None  # handed ahead and not started: it moves up, once
                    self._demanded = pair
                    self._lock.notify_all()
                self._lock.wait()
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _result(self, previous: np.ndarray, current: np.ndarray) -> FlowField | BaseException | None:
        return next((done[2] for done in self._done if self._is(done, previous, current)), None)

    @staticmethod
    def _is(pair, previous: np.ndarray, current: np.ndarray) -> bool:
        return pair is not None and pair[0] is previous and pair[1] is current

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._demanded is None and self._wanted is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                if self._demanded is not None:
                    self._running, self._demanded = self._demanded, None
                else:
                    self._running, self._wanted = self._wanted, None
            previous, current = self._running
            try:
                result: FlowField | BaseException = self._estimator.estimate(previous, current)
            except Exception as exc:  # handed to the worker, which reports it as a failed dream
                result = exc
            with self._lock:
                self._done.append((previous, current, result))
                self._running = None
                self.computed += 1
                self._lock.notify_all()


def camera_affine(backward: np.ndarray) -> np.ndarray | None:
    """2x3 affine (pixel -> where it was) fitted to a backward flow by least squares on a grid of
    pixels, then again on the pixels within each of CAMERA_INLIER_PX of the fit before (moving
    objects left out);
    None when too few pixels fit."""
    height, width = backward.shape[:2]
    grid = pixel_grid(height, width)[::CAMERA_STRIDE, ::CAMERA_STRIDE].reshape(-1, 2)
    target = grid + backward[::CAMERA_STRIDE, ::CAMERA_STRIDE].reshape(-1, 2)
    design = np.hstack([grid, np.ones((len(grid), 1), np.float32)])
    chosen = np.ones(len(grid), bool)
    affine = None
    for inlier_px in (*CAMERA_INLIER_PX, None):
        if chosen.sum() < 6:
            return affine
        solution, *_ = np.linalg.lstsq(design[chosen], target[chosen], rcond=None)
        affine = solution.T.astype(np.float32)  # 2x3
        if inlier_px is not None:
            chosen = ((design @ solution - target) ** 2).sum(-1) < inlier_px**2
    return affine


def camera_glued(
    backward: np.ndarray, previous: np.ndarray | None = None, current: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None, bool, np.ndarray | None]:
    """(flow, glued, still, uncovered): the flow with the camera's affine motion put in wherever the local
    flow agrees with it (a smooth, exact motion instead of DIS's noisy estimate: the dream does not
    slide); where they disagree by CAMERA_DISAGREE_PX or more (a moving object), or where the
    local flow explains the new frame clearly better (`previous`, `current`: the grey frames; a slow
    deformation), the local flow is kept. `glued`: HxW, 1 where the camera's motion was put in,
    None when no camera motion was found. A camera motion under STILL_PX everywhere becomes zero
    (`still`): a still scene is not resampled at all, and the local flow must earn each pixel
    (`moving_body`). `uncovered`: HxW in [0, 1], the background a moving body has just left
    (a still camera, with the grey frames), else None."""
    affine = camera_affine(backward)
    if affine is None:
        return backward, None, False, None
    height, width = backward.shape[:2]
    grid = pixel_grid(height, width)
    camera = grid @ affine[:, :2].T + affine[:, 2] - grid
    corners = camera[[0, 0, -1, -1], [0, -1, 0, -1]]
    still = float(np.abs(corners).max()) < STILL_PX
    if still:
        camera = np.zeros_like(camera)
    apart = _length(backward - camera)
    local = np.clip((apart - CAMERA_AGREE_PX) / (CAMERA_DISAGREE_PX - CAMERA_AGREE_PX), 0.0, 1.0)
    near_camera = None  # the camera's error over PHOTO_BLUR px, with the grey frames
    if previous is not None and current is not None:
        camera_error = photo_error(previous, current, camera, blur=0)
        local_error = photo_error(previous, current, backward, blur=0)
        # each way round: the local flow where it explains the frame clearly better over a wide
        # window (a slow deformation, whose flat parts take the textured neighbours' word), then
        # the camera's where it does over a narrow one (the background just behind a walker,
        # into which DIS smears the walker's motion by up to a pixel or more)
        wide_camera, wide_local = (
            cv2.blur(e, (DECIDE_BLUR, DECIDE_BLUR)) for e in (camera_error, local_error)
        )
        local_better = (wide_camera - wide_local) / (wide_camera + PHOTO_NOISE)
        np.maximum(local, _ramp(local_better, LOCAL_BETTER, LOCAL_BEST), out=local)
        near_camera, near_local = (cv2.blur(e, (PHOTO_BLUR, PHOTO_BLUR)) for e in (camera_error, local_error))
        camera_better = (near_local - near_camera) / (near_local + PHOTO_NOISE)
        local *= 1.0 - _ramp(camera_better, CAMERA_BETTER, CAMERA_BEST)
        body = moving_body(camera_error, local_error)
        if still:
            local *= body
        else:  # a moving camera: the body keeps its own flow too, flat parts included (a slow
            # deformation boiled 0.128 on coffee, 0.099 so; pan, zoom and shake as they were)
            np.maximum(local, body, out=local)
    flow = camera + local[..., None] * (backward - camera)
    uncovered = None
    if still and near_camera is not None:
        uncovered = uncovered_by_motion(camera_error, near_camera, flow)
    return flow, 1.0 - local, still, uncovered


def moving_body(camera_error: np.ndarray, local_error: np.ndarray) -> np.ndarray:
    """HxW float32, 1 on what moves on its own in front of the camera: the pixels whose local flow
    explains the frame clearly better than the camera's (unblurred errors, a 3x3 median), closed over
    STILL_BODY_PX and grown by STILL_BODY_GROW px; 0 elsewhere."""
    better = cv2.medianBlur((camera_error - local_error) / (camera_error + PHOTO_NOISE), 3)
    body = (_ramp(better, LOCAL_BETTER, LOCAL_BEST) > 0.5).astype(np.uint8)
    body = cv2.morphologyEx(body, cv2.MORPH_CLOSE, _disc(STILL_BODY_PX))
    return cv2.dilate(body, _disc(2 * STILL_BODY_GROW + 1)).astype(np.float32)


def uncovered_by_motion(camera_error: np.ndarray, near_camera: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """HxW in [0, 1] for a still camera (`camera_error`: the unblurred grey error of no motion,
    `near_camera` the same blurred over PHOTO_BLUR px; `flow`: the glued backward flow): 1 where a
    pixel changed but its flow copies it from a place that did not (the background a moving body
    has just left, STATIC_OK)."""
    changed = _ramp(near_camera, PHOTO_OK, PHOTO_BAD)
    static = 1.0 - _ramp(cv2.medianBlur(camera_error, 3), STATIC_OK, STATIC_BAD)
    moved = _length(flow) >= UNCOVERED_MOVE_PX
    return changed * warp_array(static, flow) * moved


@functools.lru_cache(maxsize=4)
def _disc(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _ramp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below `low`, 1 above `high`, linear between."""
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def _length(vectors: np.ndarray) -> np.ndarray:
    """HxW lengths of HxWx2 float32 vectors (cv2.magnitude: ten times faster than np.linalg.norm here)."""
    return cv2.magnitude(np.ascontiguousarray(vectors[..., 0]), np.ascontiguousarray(vectors[..., 1]))


@functools.lru_cache(maxsize=8)
def pixel_grid(height: int, width: int) -> np.ndarray:
    """HxWx2 float32 pixel coordinates (x, y): built once per size, not per frame (shared: never
    write into it)."""
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([grid_x, grid_y])


def inside_frame(where_from: np.ndarray, width: int, height: int) -> np.ndarray:
    """HxW bool: True where a pixel's source position lies inside a width x height frame."""
    x, y = where_from[..., 0], where_from[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def warp_array(image: np.ndarray, backward: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Pull `image` (HxW or HxWxC float32) along a backward flow (bilinear, edges replicated)."""
    where_from = pixel_grid(*backward.shape[:2]) + backward
    return cv2.remap(image, where_from, None, interpolation=interpolation, borderMode=cv2.BORDER_REPLICATE)


def warp_residual(residual: torch.Tensor, field: FlowField) -> torch.Tensor:
    """Move a 1x3xHxW residual along the flow; occluded pixels keep only OCCLUDED_KEEP of it.

    On the CPU OpenCV's remap does it on the numpy view; elsewhere only the flow goes up to the
    device and `warp_tensor` resamples there (no download of the residual, no host sync)."""
    if residual.device.type != "cpu":
        return warp_tensor(residual, field)
    moved = warp_field(frames.residual_array(residual), field, RESIDUAL_INTERPOLATION)
    return frames.residual_tensor(moved, residual.device).to(residual.dtype)


def warp_field(array: np.ndarray, field: FlowField, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """`warp_residual` for an hxwx3 float32 numpy residual (bilinear by default: the CPU display's
    tracker, which warps a fresh copy of the dream each camera frame)."""
    moved = warp_array(array, field.backward, interpolation)
    if field.valid is not None:
        moved *= _keep(field)[..., None]
    return moved


def _keep(field: FlowField) -> np.ndarray:
    """HxW: the share of the residual a pixel keeps. OCCLUDED_KEEP where the forward-backward check
    fails (DIS is merely noisy there, often), nothing where the frame's brightness says the flow
    is wrong: behind a walker the residual there is the walker's, and a fifth of it, amplified
    by the next frames' steps, drew streaks along the walk."""
    keep = OCCLUDED_KEEP + (1.0 - OCCLUDED_KEEP) * field.valid
    return keep if field.matched is None else keep * field.matched


def warp_tensor(residual: torch.Tensor, field: FlowField, warp: DeviceWarp | None = None) -> torch.Tensor:
    """`warp_residual` with torch's grid_sample on the residual's device: the same bicubic
    resampling with edges replicated as `cv2.remap` (align_corners=True maps pixel centres to
    pixel centres). The GPU runs this; the CPU tests check it against the OpenCV path. `warp`:
    the caller's per-size buffers (a fresh set without one)."""
    warp = warp or DeviceWarp(residual.device)
    return warp.load(field)(residual)


class DeviceWarp:
    """`warp_tensor`'s buffers, made once per size and reused: the pixel grid lives on the device
    already scaled to grid_sample's [-1, 1] coordinates, and the flow (with its occlusion keep
    factor packed beside it where there is one) goes up in one copy through reused pinned
    buffers. A frame's warp is then one upload, one grid op and, per tensor moved, one resample
    and one multiply.
    `staging`: the upload's buffers (the CPU tests hand in counting fakes)."""

    def __init__(self, device: torch.device, staging: frames.Staging | None = None):
        self.device = device
        self.staging = staging or frames.Staging(device)
        self._size: tuple[int, int] | None = None
        self._base: torch.Tensor | None = None  # HxWx2: pixel centres in grid_sample's coordinates
        self._scale: torch.Tensor | None = None  # 2: pixels -> grid_sample's coordinates, x and y
        self.grids = 0  # pixel grids built so far (the tests count them)

    def load(self, field: FlowField) -> Callable[[torch.Tensor], torch.Tensor]:
        """Upload this flow once; returns the warp of a 1x3xHxW tensor along it (any number)."""
        height, width = field.backward.shape[:2]
        self._build(height, width)
        # written straight into pinned memory; the keep factor only where the flow was checked
        host = self.staging.take((height, width, 2 if field.valid is None else 3), torch.float32)
        host[..., :2] = field.backward
        if field.valid is not None:
            host[..., 2] = _keep(field)
        flow = self.staging.send()
        grid = torch.addcmul(self._base, flow[..., :2], self._scale).unsqueeze(0)  # (base + flow) * scale
        keep = flow[..., 2] if field.valid is not None else None

        def warp(residual: torch.Tensor) -> torch.Tensor:
            sample = grid if grid.dtype == residual.dtype else grid.to(residual.dtype)
            moved = torch.nn.functional.grid_sample(
                residual, sample, mode=RESIDUAL_MODE, padding_mode="border", align_corners=True
            )
            if keep is not None:
                moved = moved.mul_(keep if keep.dtype == moved.dtype else keep.to(moved.dtype))
            return moved

        return warp

    def _build(self, height: int, width: int) -> None:
        if self._size == (height, width):
            return
        # x and y scaled by numbers made on the host and uploaded once per size: a
        # torch.tensor(..., device=) per frame was a host sync per call
        scale = torch.tensor([2.0 / max(1, width - 1), 2.0 / max(1, height - 1)])
        base = torch.from_numpy(pixel_grid(height, width)) * scale - 1.0
        # non_blocking from pageable memory: CUDA stages the copy before returning, so the
        # temporaries may go; no stream wait either way
        self._base = base.to(self.device, non_blocking=True)
        self._scale = scale.to(self.device, non_blocking=True)
        self._size = (height, width)
        self.grids += 1


def is_scene_cut(previous: np.ndarray, current: np.ndarray) -> bool:
    return float(np.abs(current.astype(np.float32) - previous.astype(np.float32)).mean()) > CUT_THRESHOLD


class ResidualTracker:
    """Keeps the newest dream residual on the moving scene between dream updates.

    The display shows camera frames faster than the dream updates; each new camera frame moves
    the residual along that frame's flow, so dream patterns ride on moving objects at display
    rate instead of jumping when the next dream lands. Flow is computed from the numpy camera
    frames. On the CPU the residual is kept as a numpy array (OpenCV warps it, the composer adds
    it: no tensor round trip per camera frame); on a GPU only the flow field goes up and the
    residual is resampled there.
    """

    def __init__(self, device: torch.device | None = None) -> None:
        self.on_cpu = device is None or device.type == "cpu"
        self._flow = FlowEstimator(TRACKING_FLOW)
        # on a GPU: the pixel grid and the flow's pinned buffers, made once per size
        self.warp = None if self.on_cpu else DeviceWarp(device)
        self._grey: np.ndarray | None = None  # the camera frame the residual is aligned to
        self._frame_index: int | None = None
        self.residual: np.ndarray | torch.Tensor | None = None

    def new_dream(self, residual: torch.Tensor, dreamt_from: np.ndarray, frame_index: int) -> None:
        self.residual = frames.residual_array(residual) if self.on_cpu else residual
        self._grey = frames.grey(dreamt_from, self._tracking_size())
        self._frame_index = frame_index

    def follow(self, image: np.ndarray, frame_index: int) -> np.ndarray | torch.Tensor | None:
        """The residual moved onto camera frame `image` (computed once per new frame)."""
        if self.residual is None or frame_index == self._frame_index:
            return self.residual
        grey = frames.grey(image, self._tracking_size())
        if is_scene_cut(self._grey, grey):
            self.residual = None  # a new scene: the old dream does not belong on it
            return None
        field = self._flow.estimate_backward(self._grey, grey, self._residual_size())
        if self.on_cpu:
            self.residual = warp_field(self.residual, field)
        else:
            self.residual = warp_tensor(self.residual, field, self.warp)
        self._grey, self._frame_index = grey, frame_index
        return self.residual

    def _residual_size(self) -> tuple[int, int]:
        """(width, height) of the residual being tracked."""
        if self.on_cpu:
            return self.residual.shape[1], self.residual.shape[0]
        return self.residual.shape[-1], self.residual.shape[-2]

    def _tracking_size(self) -> tuple[int, int]:
        # half the dream size: this runs for every camera frame, beside the dream on the same cores
        width, height = self._residual_size()
        return max(16, width // 2), max(16, height // 2)
