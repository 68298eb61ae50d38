"""`--backend auto` / `--precision auto` off CUDA: candidates, measurement, cache, never a pause."""

import json
import time
from types import SimpleNamespace

import pytest
import torch

from realtime.dream.backends import auto, create_backend
from realtime.dream.backends.auto import (
    REFERENCE,
    AutoBackend,
    Candidate,
    ChoiceCache,
    candidates,
    export_command,
    pick,
)
from realtime.dream.objectives import parse_objective
from realtime.params import DreamParams

EAGER_BF16, ONNX = Candidate("eager", "bf16"), Candidate("onnx", "fp32")


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeBackend:
    """Each step costs `seconds` on the fake clock; `ready` False stands for an export not done."""

    def __init__(self, name, precision, seconds, clock, ready=True):
        self.name, self.precision, self.provider = name, precision, f"fake {name}"
        self.seconds, self.clock, self.ready, self.runs = seconds, clock, ready, 0
        self.params = DreamParams()

    def run(self, x, steps):
        self.runs += 1
        self.clock.now += self.seconds * steps
        return x

    def is_prepared(self, shape):
        return self.ready

    def session_for(self, height, width):
        self.ready = True

    def close(self):
        pass


def _auto(tmp_path, costs: dict, ready=(), cache=None, clock=None):
    clock = clock or FakeClock()
    backends = {
        c: FakeBackend(c.backend, c.precision, cost, clock, ready=not auto.exported(c) or c in ready)
        for c, cost in costs.items()
    }
    network = SimpleNamespace(spec=SimpleNamespace(name="net"), weights_origin="bundled")
    backend = AutoBackend(
        network,
        None,
        "block10",
        DreamParams(),
        backends,
        cache=cache or ChoiceCache(tmp_path / "choices.json"),
        clock=clock,
        background=False,
    )
    return backend, backends


def _frames(backend, n, size=(18, 32)):
    x = torch.zeros(1, 3, *size)
    for _ in range(n):
        backend.run(x, 1)


@pytest.mark.parametrize(
    ("device", "backend", "precision", "bf16", "expected"),
    [
        ("cpu", "auto", "auto", True, [REFERENCE, EAGER_BF16, ONNX]),
        ("cpu", "auto", "auto", False, [REFERENCE, ONNX]),  # emulated bf16 is never tried
        ("cpu", "auto", "bf16", False, [EAGER_BF16]),  # asked for: given, the export is fp32 only
        ("cpu", "auto", "fp32", True, [REFERENCE, ONNX]),
        ("cpu", "eager", "auto", True, [REFERENCE, EAGER_BF16]),
        ("mps", "auto", "auto", True, [REFERENCE]),  # nothing else has run on Apple's GPU
        ("mps", "eager", "auto", True, [REFERENCE]),
    ],
)
def test_candidates_per_device_and_request(device, backend, precision, bf16, expected):
    assert candidates(device, backend, precision, native_bf16=bf16, onnx=True) == expected


def test_without_onnxruntime_onnx_is_not_a_candidate():
    assert ONNX not in candidates("cpu", "auto", "auto", native_bf16=True, onnx=False)


def test_auto_on_mps_is_plain_eager_fp32_whatever_the_cpu_has(lite0, monkeypatch):
    """A fake MPS device: auto never picks bf16 or the ONNX step there, even on a bf16 CPU."""
    monkeypatch.setattr(auto, "cpu_has_native_bf16", lambda flags=None: True)
    network = SimpleNamespace(**vars(lite0))
    network.device = torch.device("mps")
    network.truncated = lambda layers: lite0.truncated(layers)  # the maths stays on the CPU here
    objective = parse_objective("block3", lite0.spec)
    backend = create_backend("auto", network, objective, DreamParams(), torch.Generator(), (32, 18))
    assert (backend.name, backend.precision) == ("eager", "fp32")


def test_pick_wants_a_margin_over_the_reference():
    assert pick({REFERENCE: 10.0, ONNX: 10.3}) == REFERENCE  # within the noise: the reference
    assert pick({REFERENCE: 10.0, ONNX: 13.0}) == ONNX
    assert pick({REFERENCE: 10.0, EAGER_BF16: 8.0}) == REFERENCE


def test_measures_side_by_side_then_runs_the_fastest_and_caches_it(tmp_path):
    backend, fakes = _auto(tmp_path, {REFERENCE: 0.030, EAGER_BF16: 0.020})
    backend.bf16_check = lambda x: 0.99
    _frames(backend, 2 * (1 + auto.TRIALS))  # a warm-up and TRIALS timed runs each
    assert backend.settled() and (backend.name, backend.precision) == ("eager", "bf16")
    assert "1.50x eager fp32" in backend.reason
    runs = fakes[EAGER_BF16].runs
    _frames(backend, 3)
    assert fakes[EAGER_BF16].runs == runs + 3 and fakes[REFERENCE].runs == 1 + auto.TRIALS

    # the next start reads the choice: no trials at all
    again, fakes = _auto(tmp_path, {REFERENCE: 0.030, EAGER_BF16: 0.020})
    _frames(again, 2)
    assert fakes[REFERENCE].runs == 0 and fakes[EAGER_BF16].runs == 2
    assert "measured" in again.reason


def test_bf16_whose_update_strays_from_fp32_is_not_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(auto, "update_cosine", lambda *args: 0.5)
    backend, fakes = _auto(tmp_path, {REFERENCE: 0.030, EAGER_BF16: 0.010})
    _frames(backend, 1 + auto.TRIALS)
    assert fakes[EAGER_BF16].runs == 0 and backend.precision == "fp32" and backend.settled()


def test_the_onnx_export_waits_for_the_ready_ones_and_never_blocks_a_frame(tmp_path, monkeypatch):
    """ONNX joins once exported; until then the show runs the measured best of what is ready."""
    exported = []
    monkeypatch.setattr(AutoBackend, "_export_process", lambda self, h, w: exported.append((h, w)))
    monkeypatch.setattr(auto, "cached_path", lambda *args, **kwargs: tmp_path / "missing.onnx")
    backend, fakes = _auto(tmp_path, {REFERENCE: 0.030, ONNX: 0.015})
    _frames(backend, 2 + auto.TRIALS)  # eager fp32 measured; the next frame starts the export
    assert exported == [(18, 32)] and fakes[ONNX].ready and fakes[ONNX].runs == 0
    _frames(backend, 2 * (1 + auto.TRIALS))  # now both, side by side
    assert backend.settled() and backend.name == "onnx"
    assert json.loads((tmp_path / "choices.json").read_text())  # kept for the next start


def test_onnx_and_openvino_share_one_export_and_both_join(tmp_path, monkeypatch):
    """Both run the same exported file: one export, then each opens its own session; the faster
    of the three is chosen by measurement."""
    exported, step = [], tmp_path / "step.onnx"

    def export(self, height, width):
        exported.append((height, width))
        step.touch()

    monkeypatch.setattr(AutoBackend, "_export_process", export)
    monkeypatch.setattr(auto, "cached_path", lambda *args, **kwargs: step)
    openvino = Candidate("openvino", "fp32")
    backend, fakes = _auto(tmp_path, {REFERENCE: 0.030, ONNX: 0.025, openvino: 0.014})
    _frames(backend, 2 + auto.TRIALS)
    assert fakes[ONNX].ready and fakes[openvino].ready and exported == [(18, 32)]  # one export
    _frames(backend, 3 * (1 + auto.TRIALS))
    assert backend.settled() and backend.name == "openvino" and "2.14x eager fp32" in backend.reason


def test_an_unreadable_cache_is_measured_over(tmp_path):
    (tmp_path / "choices.json").write_text("{not json")
    backend, _ = _auto(tmp_path, {REFERENCE: 0.030, EAGER_BF16: 0.020})
    backend.bf16_check = lambda x: 0.99
    _frames(backend, 2 * (1 + auto.TRIALS))
    assert backend.settled() and backend.precision == "bf16"


def test_export_command_names_the_weights_that_are_not_the_bundled_ones(lite0):
    command = export_command(lite0, "block10", (480, 270))
    assert command[-6:] == ["--model", "efficientnet_lite0", "--layer", "block10", "--dream-size", "480x270"]
    other = SimpleNamespace(spec=lite0.spec, weights_origin="/models/mine.pth")
    assert export_command(other, "block10", (480, 270))[-2:] == ["--weights", "/models/mine.pth"]


def test_the_hud_says_what_auto_chose_and_why():
    from realtime.loop.hud import dream_lines
    from tests.fakes import SlowDreamer

    dreamer = SlowDreamer(0.0)
    assert not any("auto:" in line for line in dream_lines(dreamer.params, dreamer))
    dreamer.backend.reason = "auto: onnx fp32 (1.35x eager fp32, measured)"
    assert dream_lines(dreamer.params, dreamer)[-1] == dreamer.backend.reason


def test_a_cached_choice_is_measured_again_after_a_week(tmp_path):
    cache = ChoiceCache(tmp_path / "choices.json")
    cache.put("machine", "look", {"choice": "onnx fp32", "measured_at": 1000.0})
    assert cache.get("machine", "look", now=1000.0 + 86400)["choice"] == "onnx fp32"
    assert cache.get("machine", "look", now=1000.0 + 8 * 86400) is None


def test_the_default_show_on_a_cpu_measures_openvino_and_names_what_it_picked(lite0, tmp_path, monkeypatch):
    """`dreamcam run` with no backend option on a CPU where OpenVINO imports: auto, whose candidates
    include OpenVINO's step (built, not yet compiled); once measured faster it runs, and the HUD's
    line and bench's labels (`name`, `provider`) name it."""
    pytest.importorskip("openvino")
    from realtime.commands.bench import labels
    from realtime.commands.cli import build_parser
    from realtime.loop.hud import dream_lines
    from tests.fakes import SlowDreamer

    args = build_parser().parse_args(["run"])
    assert (args.backend, args.precision) == ("auto", "auto")
    objective = parse_objective("block3", lite0.spec)
    built = create_backend(args.backend, lite0, objective, DreamParams(), torch.Generator(), (32, 18))
    assert isinstance(built, AutoBackend)
    assert Candidate("openvino", "fp32") in built.options and built.options[0] == REFERENCE
    assert "openvino" in built.backends[Candidate("openvino", "fp32")].provider.lower()
    built.close()

    openvino = Candidate("openvino", "fp32")
    monkeypatch.setattr(auto, "cached_path", lambda *args, **kwargs: tmp_path / "step.onnx")
    (tmp_path / "step.onnx").touch()
    backend, _ = _auto(tmp_path, {REFERENCE: 0.030, ONNX: 0.030, openvino: 0.015}, ready=(ONNX, openvino))
    _frames(backend, 3 * (1 + auto.TRIALS))
    assert backend.settled() and (backend.name, backend.precision) == ("openvino", "fp32")
    dreamer = SlowDreamer(0.0)
    dreamer.backend = backend
    lines = dream_lines(dreamer.params, dreamer)
    assert lines[-2].startswith("openvino (fake openvino, fp32) on cpu")
    assert lines[-1] == "auto: openvino fp32 (2.00x eager fp32, measured)"
    row = labels(dreamer.params, dreamer, torch.device("cpu"), (32, 18))
    assert (row["backend"], row["provider"], row["choice"]) == ("openvino", "fake openvino", backend.reason)


def test_once_a_cached_choice_has_compiled_the_hud_says_it_runs_not_that_it_is_exporting(
    tmp_path, monkeypatch
):
    """The usual start on a CPU: the choice is cached, its step compiles in the background while
    eager runs; once it runs, the reason is the choice's, not "exporting; eager until then"."""
    openvino = Candidate("openvino", "fp32")
    monkeypatch.setattr(AutoBackend, "_export_in_background", lambda self, c, h, w: None)  # still compiling
    cache = ChoiceCache(tmp_path / "choices.json")
    first, _ = _auto(tmp_path, {REFERENCE: 0.030, openvino: 0.015}, cache=cache)
    look = first.look_key(18, 32)
    cache.put(
        first.machine,
        look,
        {"choice": "openvino fp32", "why": "2.00x eager fp32, measured", "measured_at": time.time()},
    )
    backend, fakes = _auto(tmp_path, {REFERENCE: 0.030, openvino: 0.015}, cache=cache)
    _frames(backend, 2)
    assert backend.name == "eager" and "exporting; eager fp32 until then" in backend.reason
    fakes[openvino].ready = True  # its compile finished
    _frames(backend, 1)
    assert (backend.name, backend.reason) == ("openvino", "auto: openvino fp32 (2.00x eager fp32, measured)")
