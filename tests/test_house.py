"""The house's shape: start-up stays light, and the import graph of realtime/ has no circle and no
arrow that runs up a floor."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv", [["--help"], ["looks"]])
def test_help_and_looks_start_without_torch(argv):
    code = (
        "import sys, contextlib, io\n"
        "from realtime.commands.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", out.stderr


# The floors, lowest first: a module may import from its own floor or any floor below, never above.
# They follow a frame's trip (README, "The code follows a frame's trip"): the shared bundle and
# errors; the control plane every controller drives; frames in and out; the dream; the controllers
# (audio and show, one floor: OSC and presets read audio's mapping); the live loop; the commands and
# the embedding API on top.
FLOORS = (
    ("realtime.errors", "realtime.params", "realtime.untrusted"),
    ("realtime.control",),
    ("realtime.io",),
    ("realtime.dream",),
    ("realtime.audio", "realtime.show"),
    ("realtime.loop",),
    ("realtime.commands", "realtime.cluster", "realtime.live", "realtime"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "realtime").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the realtime modules it imports, anywhere in it (a lazy import is an arrow too)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        arrows = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                arrows |= submodules or {node.module}
            elif isinstance(node, ast.Import):
                arrows |= {alias.name for alias in node.names if alias.name in modules}
        graph[name] = arrows - {name}
    return graph


def _floor(module: str) -> int:
    for level, packages in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in packages if p != "realtime"):
            return level
    assert module == "realtime", f"{module} is on no floor: add its package to FLOORS"
    return len(FLOORS) - 1


def test_no_import_circle_in_realtime():
    graph = _import_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_no_module_imports_from_a_floor_above_its_own():
    upward = [
        f"{module} (floor {_floor(module)}) -> {target} (floor {_floor(target)})"
        for module, targets in _import_graph().items()
        for target in targets
        if _floor(target) > _floor(module)
    ]
    assert not upward, "\n".join(upward)
