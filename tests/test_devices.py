"""Devices people have and the precision a backend runs in: chosen, pinned, refused clearly."""

import pytest
import torch

from realtime.dream import backends
from realtime.dream.backends import create_backend, resolve_device
from realtime.dream.objectives import parse_objective
from realtime.errors import BackendError
from realtime.params import DreamParams


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(backends, "mps_available", lambda: mps)
    assert resolve_device("auto").type == expected


def test_a_missing_device_names_the_alternative(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(backends, "mps_available", lambda: False)
    with pytest.raises(BackendError, match="no CUDA GPU.*--device auto or cpu"):
        resolve_device("cuda")
    with pytest.raises(BackendError, match="MPS.*--device cpu"):
        resolve_device("mps")
    with pytest.raises(BackendError, match="auto, cuda, mps, cpu"):
        resolve_device("tpu")


def test_precision_is_pinned_or_refused_with_the_fix(lite0):
    objective = parse_objective("block3", lite0.spec)
    make = lambda backend, precision: create_backend(  # noqa: E731
        backend, lite0, objective, DreamParams(), torch.Generator(), (64, 48), precision=precision
    )
    assert make("eager", "auto").precision == "fp32"
    assert make("eager", "bf16").precision == "bf16"
    with pytest.raises(BackendError, match="onnx backend runs fp32 only"):
        make("onnx", "fp16")
    with pytest.raises(BackendError, match="auto, fp32, bf16, fp16"):
        make("eager", "fp8")


def test_cli_refuses_an_unknown_precision_in_one_line(capsys):
    from realtime.commands.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--precision", "fp64"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--precision" in err and "fp32" in err


def test_eval_measures_gains_on_the_networks_device():
    """`dreamcam eval` used to hand CPU tensors to a CUDA network; every tensor it measures must
    be on the dreamer's device (a stand-in device here: 'meta')."""
    from types import SimpleNamespace

    import numpy as np

    from realtime.commands.evaluate import _gain

    seen = []

    def objective_value(x):
        seen.append(x.device)
        return 2.0 if len(seen) % 2 else 1.0

    dreamer = SimpleNamespace(
        device=torch.device("meta"), backend=SimpleNamespace(objective_value=objective_value)
    )
    small = np.full((18, 32, 3), 100, np.uint8)
    assert _gain(dreamer, small, np.full((18, 32, 3), 20.0, np.float32)) == 2.0
    assert seen == [torch.device("meta")] * 2
