"""GPU discipline of the live loop, checked on the CPU with fakes (and on a GPU where there is one):
builds run on the worker's thread behind the build lock, the display makes no device call while a
capture runs, builds are not stalls, and a RuntimeError in a parameter change does not end the worker."""

import copy
import dataclasses
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from realtime.control.plane import ShowState
from realtime.dream.dreamer import FrameDreamer
from realtime.io.sources.synthetic import SyntheticSource
from realtime.loop.pipeline import Pipeline
from realtime.params import DreamParams

gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class CaptureRecordingBackend:
    """Stands in for the cudagraph backend: `prepare` is a capture that stays open until released,
    and records the thread and the time span it ran in."""

    name, provider, precision = "fake-capture", "fake", "fp32"

    def __init__(self):
        self.params = DreamParams()
        self.prepared: set = set()
        self.captures: list[tuple[str, float, float]] = []
        self.capturing, self.release = threading.Event(), threading.Event()

    def prepare(self, shapes) -> None:
        started = time.perf_counter()
        self.capturing.set()
        self.release.wait(10)
        self.prepared.update(shapes)
        self.captures.append((threading.current_thread().name, started, time.perf_counter()))

    def is_prepared(self, shape) -> bool:
        return shape in self.prepared

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return (x + 0.05).clamp_(0, 1)

    def objective_value(self, x) -> float:
        return 0.0

    def close(self) -> None:
        pass


class FakeEngine:
    def __init__(self, backend, size=(64, 36)):
        self.backend, self.size, self.device = backend, size, torch.device("cpu")
        self.network = SimpleNamespace(spec=SimpleNamespace(name="efficientnet_lite0", layers=("block5",)))
        self.layer_name = "block5"
        self.use_error: Exception | None = None
        self.rebuilds = False  # what would_rebuild answers

    def would_rebuild(self, params) -> bool:
        return self.rebuilds

    def check(self, params) -> None:
        pass

    def use(self, params) -> bool:
        if self.use_error is not None:
            raise self.use_error
        return False


def _pipeline(backend) -> tuple[Pipeline, SyntheticSource, FrameDreamer]:
    params = DreamParams(warm_start="off")
    dreamer = FrameDreamer(FakeEngine(backend), params)
    source = SyntheticSource((64, 36), paced=True, fps=120.0)
    pipeline = Pipeline(source, dreamer, ShowState(params, ("block5",)), threaded=True, watchdog_s=0.3)
    return pipeline, source, dreamer


def test_no_device_call_on_the_display_thread_while_a_capture_runs():
    backend = CaptureRecordingBackend()
    pipeline, source, _ = _pipeline(backend)
    pipeline.composer.guarded = True  # the GPU's rule, exercised on the CPU
    device_calls: list[tuple[str, float]] = []
    compose = pipeline.composer.compose

    def recording_compose(frame, residual):
        device_calls.append((threading.current_thread().name, time.perf_counter()))
        return compose(frame, residual)

    pipeline.composer.compose = recording_compose
    with source:
        pipeline.start_worker()
        try:
            assert backend.capturing.wait(10)
            frames_before = pipeline.stats.frames
            for _ in range(6):  # the display goes on during the capture...
                assert pipeline.tick() is pipeline.last_frame.image  # ...with the camera alone
                assert pipeline.worker.stalled_for(time.perf_counter() + 60) == 0.0  # a build, not a stall
                pipeline.dreams.watch()
            assert pipeline.stats.frames == frames_before + 6 and pipeline.restarts == 0
            assert "building the dream" in " ".join(pipeline.hud_lines())
            backend.release.set()
            pipeline.worker.wait_for(1, timeout=10)
            for _ in range(3):
                pipeline.tick()
        finally:
            backend.release.set()
            pipeline.stop_worker()
    ((thread, started, ended),) = backend.captures
    assert thread == "dream worker"  # captured on the worker's thread, at start-up
    assert device_calls, "the display composed again after the capture"
    assert not [t for name, t in device_calls if started <= t <= ended]
    assert {name for name, _ in device_calls} == {"MainThread"}


def test_a_first_run_at_a_new_shape_is_a_build_behind_the_lock():
    backend = CaptureRecordingBackend()
    backend.release.set()
    pipeline, source, dreamer = _pipeline(backend)
    with source:
        pipeline.start_worker()
        try:
            pipeline.tick()
            pipeline.worker.wait_for(1, timeout=10)
            assert not dreamer.needs_build()  # prepared at start-up
            dreamer.set_cap(None, (48, 26))  # a size nobody prepared
            assert dreamer.needs_build()
        finally:
            pipeline.stop_worker()


def test_a_runtime_error_while_applying_parameters_does_not_end_the_worker(caplog):
    backend = CaptureRecordingBackend()
    backend.release.set()
    pipeline, source, dreamer = _pipeline(backend)
    dreamer.engine.use_error = RuntimeError("CUDA error: an illegal memory access was encountered")
    with source:
        pipeline.start_worker()
        try:
            pipeline.tick()
            pipeline.worker.wait_for(1, timeout=10)
            pipeline.state.params = pipeline.state.params.replace(lr=0.05)
            pipeline.apply_params()
            count = pipeline.stats.dreams
            for _ in range(200):
                pipeline.tick()
                if pipeline.stats.dreams >= count + 2:
                    break
        finally:
            pipeline.stop_worker()
    assert pipeline.stats.dreams >= count + 2  # still dreaming, with the last good look
    assert "illegal memory access" in caplog.text
    assert pipeline.restarts == 0


@gpu
@needs_cuda
def test_the_composer_waits_on_the_dream_event_and_matches_opencv():
    from realtime.loop.compose import Composer, add_upscaled
    from realtime.loop.worker import BuildLock

    device = torch.device("cuda")
    worker_stream = torch.cuda.Stream(device)
    frame = np.random.default_rng(0).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    with torch.cuda.stream(worker_stream):
        residual = torch.randn(1, 3, 90, 160, device=device) * 30
        ready = torch.cuda.Event()
        ready.record(worker_stream)
    composer = Composer(device)
    with composer.turn(BuildLock()) as free:
        assert free
        composer.wait_for(ready, residual)
        out = composer.compose(frame, residual).copy()
    expected = add_upscaled(frame, residual.cpu()[0].permute(1, 2, 0).numpy())
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


@gpu
@needs_cuda
def test_capture_beside_a_running_worker_and_display(lite0):
    """The cudagraph backend captures every reachable shape at start-up on the worker's thread
    while the display keeps showing frames; then dreams replay."""
    from models.registry import load_network
    from realtime.dream.dreamer import build_dreamer

    network = load_network("efficientnet_lite0", device=torch.device("cuda"))
    params = DreamParams(layer="block3", steps=1)
    dreamer = build_dreamer(params, (160, 90), torch.device("cuda"), "cudagraph", network=network)
    with SyntheticSource((320, 180), paced=True, fps=60.0) as source:
        pipeline = Pipeline(source, dreamer, ShowState(params, lite0.spec.layers), threaded=True)
        pipeline.start_worker()
        try:
            for _ in range(120):
                pipeline.tick()
            assert pipeline.worker.wait_for(3, timeout=60) is not None
            for _ in range(30):
                pipeline.tick()
            error = pipeline.worker.error
        finally:
            pipeline.stop_worker()
    assert pipeline.restarts == 0 and not error
    assert pipeline.stats.frames == 150 and np.abs(pipeline.last_output.astype(int) - 0).sum() > 0


class RecordingLock:
    """A BuildLock that counts the builds that took it."""

    def __init__(self):
        from realtime.loop.worker import BuildLock

        self.inner, self.taken = BuildLock(), 0

    def building(self):
        self.taken += 1
        return self.inner.building()

    def display_turn(self):
        return self.inner.display_turn()


def _worker(backend, **kwargs):
    from realtime.loop.worker import DreamWorker

    dreamer = FrameDreamer(FakeEngine(backend), DreamParams(warm_start="off"))
    return dreamer, DreamWorker(dreamer, **kwargs)


def test_a_change_that_builds_nothing_never_takes_the_build_lock():
    """T1: with audio on every frame changes a parameter; only a rebuild may lock the display out."""
    backend = CaptureRecordingBackend()
    backend.release.set()
    lock = RecordingLock()
    dreamer, worker = _worker(backend, build_lock=lock, prepare=lambda d: d.frame_shapes())
    try:
        assert worker.wait_for(0, timeout=1) is None
        started = lock.taken  # the start-up build
        for lr in (0.01, 0.02, 0.03):
            worker._apply(dreamer.params.replace(lr=lr))
        assert lock.taken == started and dreamer.params.lr == 0.03
        dreamer.engine.rebuilds = True
        backend.prepared.clear()
        worker._apply(dreamer.params.replace(layer="block3"))
        assert lock.taken == started + 1
        # C1: the rebuild prepared every reachable shape in the same build, not mid-show
        assert all(backend.is_prepared(s) for s in dreamer.frame_shapes())
    finally:
        worker.stop()


def test_the_governors_cap_resizes_the_residual_on_the_dreams_stream():
    """T2: set_cap resizes the carried residual: it must run on the worker's stream."""
    from contextlib import contextmanager

    backend = CaptureRecordingBackend()
    backend.release.set()
    quality = SimpleNamespace(steps=1, size=(32, 18))
    governor = SimpleNamespace(update=lambda ms: quality, last_change="smaller")
    dreamer, worker = _worker(backend, governor=governor)
    on_stream, calls = [False], []

    @contextmanager
    def stream():
        on_stream[0] = True
        try:
            yield
        finally:
            on_stream[0] = False

    set_cap = dreamer.set_cap
    dreamer.set_cap = lambda steps, size: (calls.append(on_stream[0]), set_cap(steps, size))
    worker._on_stream = stream
    try:
        worker._govern(0.5)
    finally:
        worker.stop()
    assert calls == [True] and dreamer.dream_size == (32, 18)


def test_a_short_build_keeps_the_last_dream_on_screen_a_long_one_shows_the_camera():
    """T1: a display that cannot take its turn keeps the last composed picture (no flicker to
    the raw camera); once a build has run HOLD_S, the live camera goes on."""
    from realtime.loop.pipeline import HOLD_S

    backend = CaptureRecordingBackend()
    backend.release.set()
    pipeline, source, _ = _pipeline(backend)
    pipeline.composer.guarded = True  # the GPU's rule, exercised on the CPU
    with source:
        pipeline.start_worker()
        try:
            pipeline.worker.wait_for(0, timeout=1)
            for _ in range(100):
                pipeline.tick()
                if pipeline._composed is not None and pipeline.stats.dreams:
                    break
            composed = pipeline._composed
            assert composed is not None
            with pipeline.dreams.build_lock.building():  # a build holds the GPU
                pipeline.worker.building = True
                pipeline.worker.build_started = pipeline.clock()
                assert pipeline.tick() is composed
                pipeline.worker.build_started = pipeline.clock() - HOLD_S - 0.1
                assert pipeline.tick() is pipeline.last_frame.image
                pipeline.worker.building = False
        finally:
            pipeline.stop_worker()


class HostSyncs:
    """A fake device for the CPU: tensors on torch's "meta" device hold no data, so any read back
    (tolist, item, float(), .cpu(), numpy) raises, as a sync would stall on a GPU. Uploads that
    would block (Tensor.to a device without non_blocking) and tensors built from Python numbers
    straight on the device (torch.tensor(..., device=)) are counted."""

    def __init__(self, monkeypatch):
        self.syncs: list[str] = []
        self.downloads = 0
        to, tensor = torch.Tensor.to, torch.tensor

        def counting_to(t, *args, **kwargs):
            target = next((a for a in args if isinstance(a, torch.device | str)), kwargs.get("device"))
            if target is not None and torch.device(target).type == "meta" and t.device.type == "cpu":
                if not kwargs.get("non_blocking", False):
                    self.syncs.append("blocking upload")
            return to(t, *args, **kwargs)

        def counting_tensor(*args, **kwargs):
            if kwargs.get("device") is not None and torch.device(kwargs["device"]).type == "meta":
                self.syncs.append("torch.tensor(..., device=)")
            return tensor(*args, **kwargs)

        monkeypatch.setattr(torch.Tensor, "to", counting_to)
        monkeypatch.setattr(torch, "tensor", counting_tensor)

    def download(self, host: torch.Tensor, figures: torch.Tensor) -> None:
        """The fault check's asynchronous copy to pinned memory (no data on meta: a count)."""
        self.downloads += 1
        host.zero_()
        host[1] = host[2] = 1.0  # the verdict reads "a picture"


class DoneEvent:
    def record(self) -> None:
        pass

    def query(self) -> bool:
        return True


@pytest.mark.parametrize("warm_start", ["off", "residual", "flow"])
def test_a_whole_dream_never_waits_for_the_device(lite0, monkeypatch, warm_start):
    """T4: FrameDreamer.residual, upload to download-free residual, on a fake device that counts
    host syncs: none (the upload is asynchronous, the flow's grid scale is Python numbers, the
    fault check reads its figures back a frame later from pinned memory)."""
    from realtime.dream.dreamer import build_dreamer
    from realtime.dream.health import FaultCheck
    from realtime.io.sources.synthetic import SyntheticSource

    params = DreamParams(layer="block3", warm_start=warm_start)
    # pinned fp32: with precision auto a CPU measures its candidates first (auto.py), which is not
    # what this test is about
    dreamer = build_dreamer(params, (64, 36), torch.device("cpu"), network=lite0, precision="fp32")
    meta = torch.device("meta")
    dreamer.engine.recipe = dataclasses.replace(dreamer.engine.recipe, device=meta)
    backend = dreamer.backend
    backend.net, backend.device = copy.deepcopy(backend.net).to(meta), meta  # lite0 stays whole
    counter = HostSyncs(monkeypatch)
    dreamer.fault_check = FaultCheck(deferred=True, event=DoneEvent, download=counter.download)
    with SyntheticSource((64, 36), paced=False) as source:
        for _ in range(4):
            residual = dreamer.residual(source.read().image)
    assert residual.device == meta and residual.shape == (1, 3, 36, 64)
    assert counter.syncs == []
    assert counter.downloads >= 2 and dreamer.faults == 0  # checked, late, without waiting


@gpu
@needs_cuda
@pytest.mark.parametrize("backend", ["eager", "cudagraph"])
def test_a_whole_dream_never_waits_for_the_gpu(backend):
    """T4 on a real GPU: torch's sync debug mode turns any host sync in FrameDreamer.residual
    (upload, warm start with flow, steps, anchor, fault check) into an error."""
    from models.registry import load_network
    from realtime.dream.dreamer import build_dreamer

    network = load_network("efficientnet_lite0", device="cuda")
    params = DreamParams(layer="block3", warm_start="flow")
    dreamer = build_dreamer(
        params, (160, 90), torch.device("cuda"), backend, network=network, precision="fp32"
    )
    dreamer.prepare(dreamer.frame_shapes())
    with SyntheticSource((320, 180), paced=False) as source:
        images = [source.read().image for _ in range(6)]
    for image in images[:3]:  # first runs may allocate, autotune and capture
        dreamer.residual(image)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for image in images[3:]:
            dreamer.residual(image)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert dreamer.faults == 0


def test_precision_auto_probes_once_per_look_not_at_every_layer_change(lite0, monkeypatch):
    """C1: with --precision auto each ←/→ used to re-run the precision probe (a build mid-show);
    the engine keeps what the probe chose per look and pins it when the look comes back."""
    from realtime.dream import engine as engine_module
    from realtime.dream.engine import DreamEngine, EngineRecipe

    asked = []

    def fake_create_backend(request, network, objective, params, generator, size, progress, precision):
        asked.append((str(objective), precision))
        return SimpleNamespace(name="cudagraph", precision="bf16")

    monkeypatch.setattr(engine_module, "create_backend", fake_create_backend)
    recipe = EngineRecipe(torch.device("cpu"), backend="auto", precision="auto")
    engine = DreamEngine(recipe, DreamParams(layer="block5"), (64, 36), network=lite0)
    assert engine.would_rebuild(DreamParams(layer="block3")) and not engine.would_rebuild(
        DreamParams(layer="block5")
    )
    engine.use(DreamParams(layer="block3"))
    engine.use(DreamParams(layer="block5"))  # back to the first look: its probe's answer, pinned
    assert asked == [("block5", "auto"), ("block3", "auto"), ("block5", "bf16")]
