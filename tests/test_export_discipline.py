"""`--backend auto`'s background exports (issue 27, severe 5): one at a time in the whole process,
a replaced backend's export stopped, and no export outliving the show, however it ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from realtime.dream import engine as engine_module
from realtime.dream.backends import auto
from realtime.dream.backends.auto import REFERENCE, AutoBackend, Candidate, ChoiceCache
from realtime.dream.engine import DreamEngine, EngineRecipe
from realtime.params import DreamParams

ONNX = Candidate("onnx", "fp32")
MARK = "dreamcam-test-fake-export"  # in the fake export's command line, to find it among processes


# the export process's own module: the show's `python -c` text says "export" too, and a child it
# forks (before that child's exec) carries the show's command line
EXPORT = "realtime.commands.export_process"


def _children(marker: str, parent: int | None = None) -> list[int]:
    """Live processes (not zombies) whose command line holds `marker` (and whose parent is `parent`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid = fields[0], int(fields[1])
        if marker in command and state != "Z" and (parent is None or ppid == parent):
            found.append(int(entry.name))
    return found


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class _Fake:
    def __init__(self, name):
        self.name, self.precision, self.provider, self.params = name, "fp32", name, DreamParams()
        self.closed = False

    def run(self, x, steps):
        return x

    def is_prepared(self, shape):
        return False

    def session_for(self, height, width):
        pass

    def close(self):
        self.closed = True


def _auto_choosing_onnx(tmp_path, name) -> AutoBackend:
    """An AutoBackend whose cached choice at 32x18 is the ONNX step, not exported yet: its first
    frame starts the export in the background."""
    network = SimpleNamespace(spec=SimpleNamespace(name=name), weights_origin="bundled")
    cache = ChoiceCache(tmp_path / f"{name}.json")
    backend = AutoBackend(
        network, None, "block10", DreamParams(), {REFERENCE: _Fake("eager"), ONNX: _Fake("onnx")}, cache
    )
    cache.put(backend.machine, backend.look_key(18, 32), {"choice": ONNX.label, "measured_at": time.time()})
    return backend


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_one_export_at_a_time_in_the_process_and_close_stops_it(tmp_path, monkeypatch):
    """Two looks in a row (a layer change): never two exports at once, and closing a backend stops
    its export at once; on main each AutoBackend had a lock of its own, and two ran side by side."""
    monkeypatch.setattr(auto, "cached_path", lambda *args, **kwargs: tmp_path / "never.onnx")
    sleeper = [sys.executable, "-c", f"import time; time.sleep(60)  # {MARK}"]
    monkeypatch.setattr(auto, "export_command", lambda *args: sleeper)
    first, second = _auto_choosing_onnx(tmp_path, "a"), _auto_choosing_onnx(tmp_path, "b")
    try:
        first.run(torch.zeros(1, 3, 18, 32), 1)
        assert _wait_for(lambda: len(_children(MARK, os.getpid())) == 1)
        second.run(torch.zeros(1, 3, 18, 32), 1)
        time.sleep(1.0)
        assert len(_children(MARK, os.getpid())) == 1  # the second waits its turn
        first.close()  # replaced: its export ends and the next one starts
        assert _wait_for(lambda: second._process is not None)
        assert len(_children(MARK, os.getpid())) == 1
        second.close()
        assert _wait_for(lambda: not _children(MARK, os.getpid()))
    finally:
        first.close()
        second.close()


def test_a_layer_change_closes_the_backend_it_replaces(lite0, monkeypatch):
    built = []

    def fake_create(*args, **kwargs):
        built.append(_Fake("eager"))
        return built[-1]

    monkeypatch.setattr(engine_module, "create_backend", fake_create)
    engine = DreamEngine(
        EngineRecipe(torch.device("cpu")), DreamParams(layer="block3"), (32, 18), network=lite0
    )
    assert engine.use(DreamParams(layer="block5"))
    assert built[0].closed and not built[1].closed and engine.backend is built[1]
    assert not engine.use(DreamParams(layer="block5"))  # nothing rebuilt: nothing closed
    assert not built[1].closed


SHOW = textwrap.dedent(
    """
    import sys, time, torch
    from models.registry import load_network
    from realtime.commands.signals import stop_on_signals
    from realtime.dream.backends.auto import REFERENCE, AutoBackend, Candidate, ChoiceCache
    from realtime.dream.backends.eager import EagerBackend
    from realtime.dream.backends.onnx import OnnxBackend
    from realtime.dream.objectives import parse_objective
    from realtime.params import DreamParams

    network = load_network("efficientnet_lite0")
    objective = parse_objective("block3", network.spec)
    net, params, generator = network.truncated(sorted(objective.layers)), DreamParams(), torch.Generator()
    onnx = Candidate("onnx", "fp32")
    backends = {
        REFERENCE: EagerBackend(net, objective, params, generator),
        onnx: OnnxBackend(network, net, objective, params, generator),
    }
    cache = ChoiceCache()
    backend = AutoBackend(network, net, objective, params, backends, cache)
    cache.put(backend.machine, backend.look_key(18, 32), {"choice": onnx.label, "measured_at": time.time()})
    with stop_on_signals():
        backend.run(torch.rand(1, 3, 18, 32), 1)  # the cached choice: its export starts
        print("dreaming", flush=True)
        time.sleep(120)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_export_outlives_the_show(tmp_path, how):
    """A show ended by SIGTERM (or killed outright) while its background export runs: the export
    ends with it, and leaves no partial file in the cache. On main it ran on to its end."""
    env = dict(os.environ, DREAMCAM_CACHE=str(tmp_path), PYTHONPATH=os.getcwd())
    show = subprocess.Popen([sys.executable, "-c", SHOW], env=env, stdout=subprocess.PIPE, text=True)
    export = None
    try:
        assert show.stdout.readline().strip() == "dreaming"
        assert _wait_for(lambda: _children(EXPORT, show.pid), timeout=60)
        (export,) = _children(EXPORT, show.pid)
        time.sleep(1.0)  # into its tracing
        show.send_signal(how)
        show.wait(60)  # a loaded machine takes seconds to tear torch down
        assert _wait_for(lambda: not _children(EXPORT, show.pid) and export not in _children(EXPORT))
        assert _wait_for(lambda: not list(tmp_path.glob("*.partial")), timeout=5)
        assert not list(tmp_path.glob("*.onnx"))
    finally:
        show.kill()
        show.wait()
        if export is not None and export in _children(EXPORT):  # only the one this test started
            os.kill(export, signal.SIGKILL)
