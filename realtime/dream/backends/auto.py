"""`--backend auto` and `--precision auto` off CUDA: the fastest step on this machine, by measurement.

The candidates (`candidates`) are eager fp32, the reference; eager bf16 where the CPU computes
bf16 natively (AVX-512 BF16 or AMX) and the dream's update in bf16 points where fp32's does; the
exported ONNX step (fp32) run by onnxruntime where it is installed, and the same file run by
OpenVINO where it is (its wheel is missing on some platforms: then it is simply not a candidate).
On Apple's MPS only eager fp32: nothing else has been run there.

`AutoBackend` measures them in the show itself: the first frames at a dream size run the
candidates in turn (a warm-up run each, then `TRIALS` timed runs each, interleaved, so a change in
the machine's load hits them all alike), and from then on the fastest one runs that size alone.
A candidate must beat eager fp32 by `MARGIN` to replace it. The choice is cached per machine
(CPU model and flags, core count, torch, onnxruntime and OpenVINO versions) and look (model, objective,
size) in `choices.json` under the dreamcam cache, so later starts skip the trials for a week
(`CACHE_DAYS`: a choice made during a load spike does not stick); delete it to measure again.
The ONNX export is never waited for: once the ready candidates are measured it runs in a
`dreamcam export` process of low priority (or ahead, by hand), and until it is done the show runs
the best of the others. The HUD line `reason` says what was chosen and why.

One export at a time in the whole process (`EXPORTS`), however many AutoBackends there are: a
layer change builds a new one (DreamEngine.use closes the one it replaces), and a closed backend's
export is stopped, or never started. The export process dies with the show
(realtime/commands/export_process.py), and whatever still runs when the interpreter exits is
stopped (`atexit`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.registry import RANDOM_ORIGIN, RANDOM_WEIGHTS, DreamNet, Network
from realtime.dream import kernel
from realtime.dream.backends.base import Backend, Shape, objective_value
from realtime.dream.backends.eager import EagerBackend
from realtime.dream.backends.onnx import OnnxBackend
from realtime.dream.backends.onnx_export import cache_dir, cached_path
from realtime.dream.backends.openvino import OpenVinoBackend, openvino_version
from realtime.dream.objectives import Objective
from realtime.errors import BackendError
from realtime.params import DreamParams

log = logging.getLogger(__name__)

TRIALS = 5  # timed runs per candidate and dream size
MARGIN = 0.05  # how much faster than eager fp32 another candidate must be to replace it
# bf16's update against fp32's on the first frame (same jitter). Measured 0.80-0.86 on three photos
# at block5/block10, where issue 13's measure holds (strength -1.6 %, boil 0.196 vs 0.197, same look
# by eye: docs/BENCHMARKS.md); below this, something in the bf16 path is broken, not just rounding
BF16_MIN_COSINE = 0.75
CACHE_NAME = "choices.json"
CACHE_DAYS = 7.0  # a choice is measured again after this: a load spike may have fooled it

Clock = Callable[[], float]


@dataclass(frozen=True)
class Candidate:
    backend: str  # "eager", "onnx" or "openvino"
    precision: str  # "fp32" or "bf16"

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision}"


REFERENCE = Candidate("eager", "fp32")
EXPORTED = ("onnx", "openvino")  # the backends that run the exported step: they wait for its export


def exported(candidate: Candidate) -> bool:
    return candidate.backend in EXPORTED


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """AVX-512 BF16 or AMX: bf16 maths in hardware. Without it torch emulates bf16 (slower)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def candidates(
    device_type: str, backend: str, precision: str, native_bf16: bool, onnx: bool, openvino: bool = False
) -> list[Candidate]:
    """What auto may choose between, reference first. `backend`/`precision` are the user's
    requests ("auto" or a pinned value); `onnx`, `openvino`: whether their runtimes import. MPS
    gets eager fp32 only (bf16 and the ONNX step have not been run there; onnxruntime and
    OpenVINO would run on the CPU besides)."""
    if device_type != "cpu":
        return [Candidate("eager", precision if precision != "auto" else "fp32")]
    backends = ["eager", "onnx", "openvino"] if backend == "auto" else [backend]
    installed = {"onnx": onnx, "openvino": openvino}
    precisions = ["fp32", "bf16"] if precision == "auto" else [precision]
    chosen = []
    for b in backends:
        for p in precisions:
            if b in EXPORTED and (p != "fp32" or not installed[b]):
                continue  # the exported step is fp32 only (see onnx.py, openvino.py)
            if p == "bf16" and precision == "auto" and not native_bf16:
                continue  # emulated bf16: slower, never worth a trial
            chosen.append(Candidate(b, p))
    return chosen


def machine_key() -> str:
    """What a measured choice is valid for: this CPU, its core count, the maths libraries."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model
            )
    except OSError:
        pass
    flags = "bf16" if cpu_has_native_bf16() else "no-bf16"
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "none"
    threads = f"{os.cpu_count()} cores, {torch.get_num_threads()} threads"
    ov = openvino_version() or "none"
    return f"{model}|{threads}|{flags}|torch {torch.__version__}|onnxruntime {ort}|openvino {ov}"


@dataclass
class ChoiceCache:
    """Measured choices in one JSON file: {machine key: {look key: {"choice", "steps_per_s"}}}.
    A file that cannot be read is measured over, never an error."""

    path: Path = field(default_factory=lambda: cache_dir() / CACHE_NAME)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, machine: str, look: str, now: float | None = None) -> dict | None:
        """The choice kept for this machine and look, unless it is older than CACHE_DAYS."""
        entry = self._read().get(machine, {})
        entry = entry.get(look) if isinstance(entry, dict) else None
        if not (isinstance(entry, dict) and isinstance(entry.get("choice"), str)):
            return None
        age_days = ((now or time.time()) - float(entry.get("measured_at", 0))) / 86400
        return entry if age_days <= CACHE_DAYS else None

    def put(self, machine: str, look: str, entry: dict) -> None:
        data = self._read()
        data.setdefault(machine, {})[look] = entry
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(f".{os.getpid()}.partial")
            partial.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(partial, self.path)
        except OSError as exc:  # a read-only cache only costs the next start its trials
            log.warning("could not save the backend choice to %s (%s)", self.path, exc)


def update_cosine(net: DreamNet, objective: Objective, x: torch.Tensor, dtype: torch.dtype) -> float:
    """Cosine between one step's update in `dtype` and in fp32, same jitter (none), lr 1."""
    height, width = x.shape[-2:]
    jitter = kernel.jitter_table([(0, 0)], height, width)[0]
    updates = [kernel.step(net, objective, x, jitter, 1.0, 0.0, d)[0] - x for d in (None, dtype)]
    a, b = (u.flatten().double() for u in updates)
    return float(a @ b / (a.norm() * b.norm() + 1e-12))


@dataclass
class _Trial:
    """One dream size's measurement: step times of the candidates ready to run, side by side."""

    candidates: list[Candidate]
    seconds: dict[Candidate, list[float]] = field(default_factory=dict)
    warmed: set[Candidate] = field(default_factory=set)
    ready: frozenset[Candidate] = frozenset()
    bf16_checked: bool = False
    turn: int = 0

    def next(self, ready: list[Candidate]) -> Candidate | None:
        """The next ready candidate to time, in turn; None when every ready one has TRIALS. A
        candidate that became ready (an export finished) restarts the timing of them all, so
        that every figure compared was taken under the same load."""
        if frozenset(ready) != self.ready:
            self.ready, self.seconds = frozenset(ready), {}
        waiting = [c for c in ready if len(self.seconds.get(c, [])) < TRIALS]
        if not waiting:
            return None
        self.turn += 1
        return waiting[self.turn % len(waiting)]

    def record(self, candidate: Candidate, seconds_per_step: float) -> None:
        if candidate not in self.warmed:
            self.warmed.add(candidate)  # the first run at a size builds oneDNN's kernels
            return
        self.seconds.setdefault(candidate, []).append(seconds_per_step)

    def done(self) -> bool:
        return all(len(self.seconds.get(c, [])) >= TRIALS for c in self.candidates)

    def steps_per_s(self) -> dict[Candidate, float]:
        return {c: 1.0 / statistics.median(t) for c, t in self.seconds.items() if t}


def pick(rates: dict[Candidate, float]) -> Candidate:
    """The fastest candidate, if it beats the reference by MARGIN; else the reference."""
    best = max(rates, key=rates.get)
    reference = rates.get(REFERENCE)
    if reference is not None and best != REFERENCE and rates[best] < (1 + MARGIN) * reference:
        return REFERENCE
    return best


class AutoBackend:
    """The Backend contract over measured candidates (see the module docstring)."""

    def __init__(
        self,
        network: Network,
        net: DreamNet,
        objective: Objective,
        params: DreamParams,
        backends: dict[Candidate, Backend],
        cache: ChoiceCache | None = None,
        clock: Clock = time.perf_counter,
        background: bool = True,
    ):
        """`backends`: the candidates, built (cheaply: nothing exports until measured), the
        reference first; `background` False exports in the caller's thread (tests)."""
        self.network, self.net, self.objective, self._params = network, net, objective, params
        self.backends = backends
        self.options = list(backends)
        self.cache = cache or ChoiceCache()
        self.clock = clock
        self.machine = machine_key()
        self._background = background
        self.chosen: dict[tuple[int, int], Candidate] = {}
        self.reasons: dict[tuple[int, int], str] = {}  # what the last run at a size used, and why
        self.verdicts: dict[tuple[int, int], str] = {}  # the choice at a size and why, once made
        self.trials: dict[tuple[int, int], _Trial] = {}
        self.current = self.options[0]
        self.bf16_cosine: float | None = None
        self._last_size: tuple[int, int] | None = None
        self._seen: set[tuple[int, int]] = set()
        self._exports: dict[tuple[Candidate, tuple[int, int]], threading.Thread] = {}
        self._process: subprocess.Popen | None = None
        self._state = threading.Lock()  # `_closed` and `_process` change together (close vs export)
        self._closed = False

    # --- the contract ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.current.backend

    @property
    def provider(self) -> str:
        return self.backends[self.current].provider

    @property
    def precision(self) -> str:
        return self.current.precision

    @property
    def params(self) -> DreamParams:
        return self._params

    @params.setter
    def params(self, value: DreamParams) -> None:
        self._params = value
        for backend in self.backends.values():
            backend.params = value

    @property
    def reason(self) -> str:
        """Why the last run used what it used, for the HUD and bench."""
        return self.reasons.get(self._last_size, "auto: measuring")

    def settled(self) -> bool:
        """Whether every size run so far runs its final choice (no trials, no export pending)."""
        return all(size in self.chosen and self._ready(self.chosen[size], size) for size in self._seen)

    def prepare(self, shapes: Iterable[Shape]) -> None:
        """Nothing to build ahead: eager fp32 runs every shape at once, and each dream size looks up
        its cached choice (or starts its trials and export) when the show first reaches it."""

    def is_prepared(self, shape: Shape) -> bool:
        return True  # eager fp32 is always there to run while anything else builds

    def run(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        self._start(*size)
        self._last_size = size
        self._seen.add(size)
        candidate = self.chosen.get(size)
        if candidate is None or not self._ready(candidate, size):
            return self._trial_run(size, x, steps)
        self.current = candidate
        self.reasons[size] = self.verdicts[size]  # no longer "exporting; eager until then"
        return self.backends[candidate].run(x, steps)

    def objective_value(self, x: torch.Tensor) -> float:
        return objective_value(self.net, self.objective, x)

    def close(self) -> None:
        """Stop this backend's export (an unfinished one is not worth waiting for; one not started
        yet never starts) and free the candidates."""
        with self._state:
            self._closed = True
            process = self._process
        if process is not None:
            EXPORTS.stop(process)
        for backend in self.backends.values():
            backend.close()

    # --- measuring ------------------------------------------------------------------------

    def look_key(self, height: int, width: int) -> str:
        return f"{self.network.spec.name}|{self.network.weights_origin}|{self.objective}|{width}x{height}"

    def _start(self, height: int, width: int) -> None:
        """First sight of a size: the cached choice, or trials; an ONNX export in the background."""
        size = (height, width)
        if size in self.chosen or size in self.trials:
            return
        cached = self.cache.get(self.machine, self.look_key(height, width))
        by_label = {c.label: c for c in self.options}
        if cached is not None and cached["choice"] in by_label:
            self.chosen[size] = by_label[cached["choice"]]
            verdict = f"auto: {cached['choice']} ({cached.get('why', 'measured earlier')})"
            self.reasons[size] = self.verdicts[size] = verdict
        else:
            self.trials[size] = _Trial(list(self.options))
        for c in filter(exported, self.options):
            path = cached_path(self.network, str(self.objective), (width, height), steps=1)
            if path.exists() or self.chosen.get(size) == c:
                self._export_in_background(c, height, width)

    def _ready(self, candidate: Candidate, size: tuple[int, int]) -> bool:
        return not exported(candidate) or self.backends[candidate].is_prepared((*size, 1))

    def _trial_run(self, size: tuple[int, int], x: torch.Tensor, steps: int) -> torch.Tensor:
        trial = self.trials.get(size)
        if trial is None:  # the cached choice is still exporting: eager meanwhile
            self.current = REFERENCE if REFERENCE in self.backends else self.options[0]
            waiting = self.chosen[size].label
            self.reasons[size] = f"auto: {waiting} chosen earlier, exporting; {self.current.label} until then"
            return self.backends[self.current].run(x, steps)
        if not trial.bf16_checked:
            trial.bf16_checked = True
            if any(c.precision == "bf16" for c in trial.candidates):
                self._check_bf16(trial, x)
        candidate = trial.next([c for c in trial.candidates if self._ready(c, size)])
        if candidate is None:  # the ready ones are measured; the others' exports start now
            self.current = pick(trial.steps_per_s())
            pending = [c for c in trial.candidates if not self._ready(c, size)]
            for c in pending:
                self._export_in_background(c, *size)
            exporting = ", ".join(c.label for c in pending)
            self.reasons[size] = f"auto: {self.current.label} for now (measured); {exporting} exporting"
            return self.backends[self.current].run(x, steps)
        self.current = candidate
        started = self.clock()
        out = self.backends[candidate].run(x, steps)
        trial.record(candidate, (self.clock() - started) / max(1, steps))
        self.reasons[size] = f"auto: measuring {', '.join(c.label for c in trial.candidates)}"
        if trial.done():
            self._decide(size, trial)
        return out

    def bf16_check(self, x: torch.Tensor) -> float:
        """bf16's update against fp32's on `x` (the show's first frame): their cosine."""
        return update_cosine(self.net, self.objective, x, torch.bfloat16)

    def _check_bf16(self, trial: _Trial, x: torch.Tensor) -> None:
        """Drop bf16 where its update does not point where fp32's does."""
        self.bf16_cosine = cosine = self.bf16_check(x)
        if cosine < BF16_MIN_COSINE:
            trial.candidates = [c for c in trial.candidates if c.precision != "bf16"]
            log.info("precision auto: bf16 not tried, its update's cosine to fp32's is %.3f", cosine)

    def _decide(self, size: tuple[int, int], trial: _Trial) -> None:
        rates = trial.steps_per_s()
        choice = pick(rates)
        reference = rates.get(REFERENCE)
        if reference and choice != REFERENCE:
            why = f"{rates[choice] / reference:.2f}x eager fp32, measured"
        elif len(rates) > 1:
            others = ", ".join(f"{c.label} {r / reference:.2f}x" for c, r in rates.items() if c != REFERENCE)
            why = f"measured fastest ({others})" if reference else "measured fastest"
        else:
            why = "the only candidate"
        self.chosen[size] = self.current = choice
        self.reasons[size] = self.verdicts[size] = f"auto: {choice.label} ({why})"
        del self.trials[size]
        height, width = size
        entry = {
            "choice": choice.label,
            "why": why,
            "steps_per_s": {c.label: round(r, 2) for c, r in rates.items()},
            "measured_at": time.time(),
        }
        self.cache.put(self.machine, self.look_key(height, width), entry)
        log.info("backend auto at %dx%d: %s (%s)", width, height, choice.label, why)

    # --- the ONNX export, never in the show's way -------------------------------------------

    def _export_in_background(self, candidate: Candidate, height: int, width: int) -> None:
        """Export the ONNX step at this size in a separate process of lower priority (`dreamcam
        export`: the tracing holds the interpreter's lock for seconds, which a thread would take
        from the show, and a process can be stopped when the show ends), then open the
        candidate's session (onnxruntime's, or OpenVINO's compiled step: both run the same file).
        An export already in the cache only opens its session (OpenVINO's compile takes a second
        or more: on a thread too, never in a frame's way)."""
        size = (height, width)
        if (candidate, size) in self._exports:
            return
        backend = self.backends[candidate]
        path = cached_path(self.network, str(self.objective), (width, height), steps=1)

        def open_session() -> None:
            try:
                with EXPORTS.turn:  # one export or compile at a time, process-wide
                    if self._closed:
                        return  # replaced (a layer change) or the show ended while it waited
                    if not path.exists():
                        self._export_process(height, width)
                    backend.session_for(height, width)
                    if self._closed:  # closed while it compiled: free what it just built
                        backend.close()
            except Exception as exc:  # the show goes on without it
                if not (self._closed or EXPORTS.stopping):
                    log.warning(
                        "backend auto: %s at %dx%d is unavailable (%s)", candidate.label, width, height, exc
                    )
                self._drop(candidate, size)

        if not self._background:
            self._exports[(candidate, size)] = threading.current_thread()  # done when this returns
            open_session()
            return
        thread = threading.Thread(target=open_session, name=f"dreamcam-export-{width}x{height}")
        thread.daemon = True  # it only waits for the export process, which close() stops
        self._exports[(candidate, size)] = thread
        thread.start()

    def _export_process(self, height: int, width: int) -> None:
        command = export_command(self.network, str(self.objective), (width, height))
        _lower_this_thread_priority()  # the export process inherits it (Linux)
        with self._state:
            if self._closed:
                raise RuntimeError("the show ended")
            self._process = process = EXPORTS.start(command)
        try:
            _, err = process.communicate()
        finally:
            EXPORTS.forget(process)
        if process.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"dreamcam export exited {process.returncode}: {last}")

    def _drop(self, candidate: Candidate, size: tuple[int, int]) -> None:
        """The candidate cannot run at this size (its export or compile failed): measure without it."""
        trial = self.trials.get(size)
        if trial is not None:
            trial.candidates = [c for c in trial.candidates if c != candidate]
        if self.chosen.get(size, REFERENCE) == candidate:
            self.chosen.pop(size)
            self.trials[size] = _Trial([c for c in self.options if c != candidate])


class Exports:
    """The background export processes of this whole process: one at a time (`turn`, held from
    the export to its session's opening), each stopped on request or when the interpreter exits."""

    STOP_WAIT_S = 2.0  # a terminated export gets this long to remove its partial file

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self.stopping = False  # the interpreter is exiting: an export that ends now was stopped
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def start(self, command: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        with self._lock:
            self._running.add(process)
        return process

    def forget(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(process)

    def running(self) -> list[subprocess.Popen]:
        with self._lock:
            return [p for p in self._running if p.poll() is None]

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()  # export_process.py ends through its `finally`: no partial file

    def stop_all(self) -> None:
        """Stop every export still running, and wait a moment for each (the interpreter's exit)."""
        self.stopping = True
        running = self.running()
        for process in running:
            self.stop(process)
        for process in running:
            try:
                process.wait(self.STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()


EXPORTS = Exports()
atexit.register(EXPORTS.stop_all)


def export_command(network: Network, objective: str, size: tuple[int, int]) -> list[str]:
    """`dreamcam export` for this network's weights, objective and size, into the live cache, in a
    process that dies with this one (realtime/commands/export_process.py)."""
    command = [sys.executable, "-m", "realtime.commands.export_process", str(os.getpid())]
    command += ["export", "--model", network.spec.name]
    command += ["--layer", objective, "--dream-size", f"{size[0]}x{size[1]}"]
    if network.weights_origin == RANDOM_ORIGIN:
        command += ["--weights", RANDOM_WEIGHTS]
    elif network.weights_origin != network.spec.weights.description:
        command += ["--weights", network.weights_origin]  # a file given with --weights
    return command


def build_candidates(
    network: Network,
    net: DreamNet,
    objective: Objective,
    params: DreamParams,
    generator: torch.Generator,
    options: list[Candidate],
    progress: Callable[[str], None] | None = None,
) -> dict[Candidate, Backend]:
    """The candidates' backends, sharing one generator (so the jitter sequence is the show's)."""
    backends: dict[Candidate, Backend] = {}
    for c in options:
        if c.backend == "onnx":
            backends[c] = OnnxBackend(network, net, objective, params, generator, progress)
        elif c.backend == "openvino":
            try:
                backends[c] = OpenVinoBackend(network, net, objective, params, generator, progress)
            except BackendError as exc:  # a device it does not have, a broken install: not a candidate
                log.warning("backend auto: openvino not tried: %s", exc)
        else:
            dtype = torch.bfloat16 if c.precision == "bf16" else torch.float32
            backends[c] = EagerBackend(net, objective, params, generator, dtype)
    return backends


def _lower_this_thread_priority() -> None:
    """A background build yields the CPU to the show (Linux: niceness is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
