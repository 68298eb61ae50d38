"""`dreamcam doctor`: what this machine can run, one line per finding, with the fix where one is needed.

What a venue technician runs first. Each check is a small function returning findings; add yours
to CHECKS (audio input, NDI, ...). A check that raises becomes a finding of its own, so one broken
probe never hides the others. `--json` prints only JSON.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

OK, WARN, MISSING = "ok", "warn", "missing"
CAMERA_INDICES = range(4)
CAMERA_TIMEOUT_S = 3.0  # a camera that has not opened and delivered a frame by then does not count


@dataclass(frozen=True)
class Finding:
    area: str  # "torch", "gpu", "onnxruntime", "openvino", "camera", "display", "module", "cache", ...
    status: str  # OK, WARN (works, but not at its best) or MISSING (something to install or plug in)
    what: str
    fix: str = ""

    def line(self) -> str:
        mark = {OK: "ok  ", WARN: "warn", MISSING: "MISS"}.get(self.status, self.status)
        text = f"{mark} {self.area:<11} {self.what}"
        return f"{text}  -> {self.fix}" if self.fix else text


Check = Callable[[], list[Finding]]


# --- the checks -----------------------------------------------------------------------------


def check_torch() -> list[Finding]:
    import torch

    built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    findings = [Finding("torch", OK, f"torch {torch.__version__} ({built}, cuDNN {cudnn or 'none'})")]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_built():
        status = OK if mps.is_available() else WARN
        findings.append(
            Finding(
                "torch", status, f"Apple MPS {'available' if mps.is_available() else 'built, not available'}"
            )
        )
    return findings


def cpu_backends() -> str:
    """What `--backend auto` measures on this CPU (auto.py), in words."""
    from realtime.dream.backends import auto, onnxruntime_available, openvino_available

    options = auto.candidates(
        "cpu", "auto", "auto", auto.cpu_has_native_bf16(), onnxruntime_available(), openvino_available()
    )
    if len(options) == 1:
        return options[0].label
    return f"auto measures {', '.join(c.label for c in options)} and keeps the fastest"


def check_gpu() -> list[Finding]:
    import torch

    from realtime.commands.options import CPU_DREAM_SIZE
    from realtime.dream import cuda_driver

    driver = cuda_driver.driver_version()
    floor = cuda_driver.floor_for(cuda_driver.cuda_major(torch.version.cuda))
    if not torch.cuda.is_available():
        too_old = cuda_driver.too_old(driver, torch.version.cuda)
        if too_old:  # a GPU is there and cannot be used: as serious as a missing module
            return [Finding("gpu", MISSING, too_old.split(": ")[0], too_old.split(": ", 1)[1])]
        how = "a CUDA GPU with the NVIDIA driver" + ("" if torch.version.cuda else " and torch's CUDA build")
        why = cuda_driver.unavailable_reason(torch.version.cuda)
        return [
            Finding(
                "gpu",
                WARN,
                f"no CUDA GPU: dreams run on the CPU at {CPU_DREAM_SIZE}, {cpu_backends()}; {why}",
                f"for 640x360 and more: {how}",
            )
        ]
    findings = []
    if driver is not None and floor is not None:
        what = (
            f"NVIDIA driver {cuda_driver.text(driver)} (torch's CUDA {torch.version.cuda} needs "
            f"{cuda_driver.text(floor)} or newer)"
        )
        findings.append(Finding("gpu", OK, what))
    problem = cuda_driver.mismatch(torch.version.cuda, cuda_driver.onnxruntime_cuda_major())
    if problem:
        findings.append(Finding("gpu", MISSING, problem.split(": ")[0], problem.split(": ", 1)[1]))
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        bf16 = "bf16" if torch.cuda.is_bf16_supported() else "no bf16"
        memory = props.total_memory / 2**30
        what = f"cuda:{index} {props.name}, {memory:.1f} GiB, compute {props.major}.{props.minor}, {bf16}"
        findings.append(Finding("gpu", OK, what))
    failure = graph_capture_failure()
    if failure is None:
        findings.append(Finding("gpu", OK, "CUDA graph capture works (--backend cudagraph replays)"))
    else:
        findings.append(
            Finding(
                "gpu",
                WARN,
                f"CUDA graph capture fails ({failure}): --backend cudagraph would run eager",
                "update the NVIDIA driver, or use --backend eager",
            )
        )
    return findings


def graph_capture_failure() -> str | None:
    """Capture and replay a one-op CUDA graph as the cudagraph backend does (warm-up on a side
    stream, capture, replay): None when it works, else what failed."""
    import torch

    try:
        x = torch.ones(8, device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            x * 2
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = x * 2
        graph.replay()
        torch.cuda.synchronize()
        return None if float(y.sum()) == 16.0 else "the replay computed a wrong result"
    except Exception as exc:  # noqa: BLE001 - what failed is the finding
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def check_onnxruntime() -> list[Finding]:
    """Every provider this onnxruntime was built with, tried for real on a one-node graph."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [
            Finding(
                "onnxruntime",
                MISSING,
                "onnxruntime not installed (--backend onnx)",
                "pip install onnxruntime",
            )
        ]
    import torch

    from realtime.dream.backends.onnx import native_output_captured, provider_fix

    model = _one_node_model()
    gpu = torch.cuda.is_available()
    findings = [Finding("onnxruntime", OK, f"onnxruntime {ort.__version__}")]
    for provider in ort.get_available_providers():
        if provider == "TensorrtExecutionProvider":  # never asked for: realtime.dream.backends.onnx
            findings.append(Finding("onnxruntime", OK, f"{provider} compiled in, not used by dreamcam"))
            continue
        with native_output_captured() as printed:
            if provider != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
                ort.preload_dlls()
            try:
                session = ort.InferenceSession(model, providers=[provider])
                loaded = provider in session.get_providers()
            except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
                loaded, printed.err = False, f"{printed.err}\n{exc}"
        if loaded:
            findings.append(Finding("onnxruntime", OK, f"{provider} loads"))
        else:
            missing, fix = provider_fix(printed.out + printed.err)
            # without a GPU a provider that does not load costs nothing
            status = MISSING if gpu and provider == "CUDAExecutionProvider" else WARN
            findings.append(
                Finding("onnxruntime", status, f"{provider} does not load (missing {missing})", fix)
            )
    return findings


def check_openvino() -> list[Finding]:
    """OpenVINO Runtime (--backend openvino, and one of auto's candidates on a CPU): its version and
    every device it sees, each tried for real on a one-node graph."""
    from realtime.dream.backends import openvino as ov_backend

    problem = ov_backend.why_unavailable()
    if problem:
        # without a wheel for this platform auto simply goes without it: nothing to fix
        status = MISSING if ov_backend.has_wheel() else OK
        fix = ov_backend.INSTALL if ov_backend.has_wheel() else ""
        return [Finding("openvino", status, f"{problem} (auto runs without it)", fix)]
    import tempfile

    import openvino as ov

    core = ov.Core()
    findings = [Finding("openvino", OK, f"OpenVINO {ov_backend.openvino_version()}")]
    wanted = ov_backend.requested_device()
    devices = ov_backend.available_devices(core)
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "one-node.onnx")
        with open(model, "wb") as f:
            f.write(_one_node_model())
        for device, full_name in devices.items():
            measured = "measured" if device in ov_backend.MEASURED_DEVICES else "unmeasured here"
            use = "" if device == "CPU" else f"; {ov_backend.DEVICE_VARIABLE}={device} uses it"
            try:
                core.compile_model(model, device)
            except Exception as exc:  # noqa: BLE001 - a device that cannot compile is the finding
                first = (str(exc).strip().splitlines() or [""])[0][:160]
                findings.append(
                    Finding("openvino", WARN, f"{device}: {full_name} does not compile ({first})")
                )
                continue
            findings.append(Finding("openvino", OK, f"{device}: {full_name} ({measured}{use})"))
    if wanted not in devices:
        findings.append(
            Finding(
                "openvino",
                MISSING,
                f"{ov_backend.DEVICE_VARIABLE}={wanted} is not one of OpenVINO's devices here",
                f"set it to one of {', '.join(devices) or 'none'}, or unset it for the CPU",
            )
        )
    return findings


def check_cameras(indices=CAMERA_INDICES, timeout_s: float = CAMERA_TIMEOUT_S) -> list[Finding]:
    """The camera indices that open and deliver a frame, probed side by side, each with a timeout."""
    results: dict[int, str | None] = {}

    def probe(index: int) -> None:
        import cv2

        capture = cv2.VideoCapture(index)
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
            results[index] = f"{frame.shape[1]}x{frame.shape[0]}" if ok and frame is not None else None
        finally:
            capture.release()

    threads = [threading.Thread(target=probe, args=(i,), daemon=True) for i in indices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)  # a hung driver leaves its daemon thread behind, not the doctor
    found = [Finding("camera", OK, f"camera {i} opens, {results[i]}") for i in indices if results.get(i)]
    if found:
        return found
    probed = f"{indices[0]}-{indices[-1]}" if len(indices) > 1 else str(indices[0])
    return [
        Finding(
            "camera",
            WARN,
            f"no camera answers at indices {probed}",
            "plug one in (and allow camera access), or use --source FILE / URL / synthetic",
        )
    ]


def check_displays() -> list[Finding]:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # its greeting would land on stdout
    import pygame

    from realtime.io.cstderr import quiet_c_stderr

    driver = os.environ.get("SDL_VIDEODRIVER")
    try:
        with quiet_c_stderr():  # SDL prints "error: XDG_RUNTIME_DIR is invalid" itself without a session
            pygame.display.init()
        sizes = pygame.display.get_desktop_sizes()
    except pygame.error as exc:
        return [
            Finding(
                "display",
                MISSING,
                f"no display ({exc})",
                "connect a monitor (or set DISPLAY), or run --headless",
            )
        ]
    name = pygame.display.get_driver()
    with quiet_c_stderr():  # ... and again when it shuts down (at exit, after our report)
        pygame.display.quit()
    findings = [Finding("display", OK, f"display {i}: {w}x{h} ({name})") for i, (w, h) in enumerate(sizes)]
    if driver == "dummy" or name in ("dummy", "offscreen"):
        findings.append(
            Finding(
                "display",
                WARN,
                f"SDL video driver '{name}': nothing will be seen",
                "unset SDL_VIDEODRIVER on the show machine",
            )
        )
    return findings


# module, what it gives, how to install it
MODULES = (
    ("pygame", "the show window", "pip install pygame"),
    ("cv2", "cameras, video files, DIS optical flow", "pip install opencv-python"),
    ("av", "PyAV: recording and render", "pip install av"),
    ("pythonosc", "OSC control", "pip install python-osc"),
    ("mido", "MIDI controllers", "pip install 'dreamcam[vj]'"),
    ("pyvirtualcam", "the virtual camera", "pip install 'dreamcam[vj]'"),
)


def check_modules(modules=MODULES) -> list[Finding]:
    findings = []
    for module, purpose, fix in modules:
        try:
            imported = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - ImportError, or a native library that fails to load
            findings.append(
                Finding("module", MISSING, f"{module} does not import ({purpose}: {type(exc).__name__})", fix)
            )
            continue
        version = getattr(imported, "__version__", "")
        findings.append(Finding("module", OK, f"{module} {version} ({purpose})".replace("  ", " ")))
        if module == "cv2" and not hasattr(imported, "DISOpticalFlow_create"):
            findings.append(
                Finding(
                    "module",
                    MISSING,
                    "OpenCV without DIS optical flow (flow warm start)",
                    "pip install opencv-python",
                )
            )
    return findings


def check_cache() -> list[Finding]:
    from realtime.dream.backends.onnx_export import cache_dir

    folder = cache_dir()
    if folder.exists() and not folder.is_dir():  # exports would fail on first use, not here
        return [
            Finding("cache", MISSING, f"{folder} is a file, not a folder", "point DREAMCAM_CACHE at a folder")
        ]
    if not folder.exists():
        return [Finding("cache", OK, f"{folder} (empty: exports are made on first use)")]
    exports = sorted(folder.glob("*.onnx"))
    size = sum(p.stat().st_size for p in exports) / 2**20
    engines = list((folder / "tensorrt").glob("*")) if (folder / "tensorrt").is_dir() else []
    what = f"{folder}: {len(exports)} ONNX export(s), {size:.1f} MB, {len(engines)} TensorRT cache file(s)"
    if not os.access(folder, os.W_OK):
        return [Finding("cache", MISSING, f"{what}, not writable", "make it writable or set DREAMCAM_CACHE")]
    findings = [Finding("cache", OK, what)]
    findings += [Finding("cache", OK, f"  {p.name}") for p in exports[:20]]
    return findings


def check_audio() -> list[Finding]:
    """aubio, PortAudio and the audio inputs (`--audio N`, `render --audio-react`)."""
    from realtime.audio.live import audio_findings

    return [Finding("audio", status, what, fix) for status, what, fix in audio_findings()]


def check_links() -> list[Finding]:
    """NDI (with the senders it sees), Spout, Syphon: realtime.io.links."""
    from realtime.io.links import link_findings

    return [Finding("link", status, what, fix) for status, what, fix in link_findings()]


CHECKS: list[Check] = [
    check_torch,
    check_gpu,
    check_onnxruntime,
    check_openvino,
    check_cameras,
    check_displays,
    check_modules,
    check_audio,
    check_cache,
    check_links,
]


# --- running them ---------------------------------------------------------------------------


def run_checks(checks: list[Check] | None = None) -> list[Finding]:
    findings = []
    for check in checks or CHECKS:
        try:
            findings += check()
        except Exception as exc:  # noqa: BLE001 - a broken probe is itself a finding
            area = check.__name__.removeprefix("check_")
            findings.append(Finding(area, MISSING, f"the {area} check failed ({type(exc).__name__}: {exc})"))
    return findings


def report(findings: list[Finding], as_json: bool) -> str:
    if as_json:
        import json

        return json.dumps(
            {"findings": [asdict(f) for f in findings], "missing": sum(f.status == MISSING for f in findings)}
        )
    return "\n".join(f.line() for f in findings)


def _one_node_model() -> bytes:
    """The smallest graph a provider can run: y = x + x (float32, 1x4)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "doctor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what every onnxruntime of the last years reads
    return model.SerializeToString()


def main(as_json: bool = False) -> int:
    if as_json:  # stdout is the JSON's alone: what libraries print while probed goes elsewhere
        from realtime.dream.backends.onnx import native_output_captured

        with native_output_captured() as printed:
            findings = run_checks()
        sys.stderr.write(printed.err)
    else:
        findings = run_checks()
    print(report(findings, as_json), flush=True)
    return 0


def add_arguments(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument("--json", action="store_true", help="print one JSON object only")


def run(args: argparse.Namespace) -> int:
    return main(as_json=args.json)
