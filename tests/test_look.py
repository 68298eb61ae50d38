"""The default look: a real dream on a still frame, a face that stays a face, a converged dream that
holds still instead of boiling (the depth gate)."""

import cv2
import numpy as np
import pytest
import torch

from realtime.dream.dreamer import build_dreamer
from realtime.dream.frames import residual_array
from realtime.dream.warmstart import depth_gate
from realtime.params import DreamParams

STILL_GAIN = 2.0  # the default look's objective gain on a still photo after 2 s of live dreams


def _live(params: DreamParams, image: np.ndarray, frames: int, lite0) -> tuple[list[np.ndarray], object]:
    dreamer = build_dreamer(params, image.shape[1::-1], torch.device("cpu"), network=lite0, seed=0)
    outputs = []
    for _ in range(frames):
        residual = residual_array(dreamer.residual(image))
        outputs.append(np.clip(image + residual, 0, 255))
    return outputs, dreamer


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def test_depth_gate_fades_the_step_out_where_the_dream_is_deep():
    residual = torch.zeros(1, 3, 32, 32)
    residual[..., :, 16:] = 0.2  # right half: as deep as the limit
    gate = depth_gate(residual, 0.2)
    assert gate.shape == (1, 1, 32, 32)
    assert gate[..., :, :8].min() == 1.0 and gate[..., :, 24:].max() < 1e-5
    assert 0.0 < float(gate[0, 0, 0, 15]) < 1.0  # smooth across the border, not a hard edge


@pytest.mark.slow
def test_default_look_raises_its_layer_several_fold_on_a_still_frame(lite0, chelsea):
    image = cv2.resize(chelsea, (320, 180), interpolation=cv2.INTER_AREA)
    outputs, dreamer = _live(DreamParams(), image, 40, lite0)  # 2 s of live dreams at 20 a second
    plain = dreamer.backend.objective_value(_tensor(image))
    gain = dreamer.backend.objective_value(_tensor(outputs[-1].round().astype(np.uint8))) / plain
    assert gain > STILL_GAIN, gain


@pytest.mark.slow
def test_a_face_stays_a_face_and_a_converged_dream_holds_still(lite0):
    import skimage.data

    face = cv2.resize(skimage.data.astronaut()[0:288, 0:512], (256, 144), interpolation=cv2.INTER_AREA)
    params = DreamParams()
    outputs, _ = _live(params, face, 60, lite0)
    residual = outputs[-1] - face
    assert np.abs(residual).mean() < 1.25 * params.depth * 255  # the gate bounds the dream's depth
    grey_in = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    grey_out = cv2.cvtColor(outputs[-1].astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32).ravel()
    # the picture is still there: a classic still DeepDream as strong as the issue asks (4 octaves of
    # 20 steps, judged 2.3-3.6) keeps a grey correlation of 0.55-0.78 on chelsea, coffee and
    # astronaut; the default look keeps 0.72 here after 3 s (0.80 with persistence 0.995 and momentum
    # 0.8; 0.98 when it was 1.2 to the judge), and a gate opened to depth 0.5 drops it to 0.64, no
    # gate to 0.52
    assert np.corrcoef(grey_in, grey_out)[0, 1] > 0.68
    settled = np.mean([np.abs(b - a).mean() for a, b in zip(outputs[-10:], outputs[-9:], strict=False)])
    ungated, _ = _live(params.replace(depth=1.0), face, 60, lite0)
    boiling = np.mean([np.abs(b - a).mean() for a, b in zip(ungated[-10:], ungated[-9:], strict=False)])
    assert settled < 0.9 * boiling and settled < 2.0, (settled, boiling)  # 3 s in: still forming
