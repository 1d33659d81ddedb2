"""The layout's promises: the board-side packages import nothing heavy, and the project's
modules import each other without cycles (lazy imports inside functions count too)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("calib", "qat", "hw", "btsee", "boards")
BOARD_SIDE = ("calib", "boards")  # what the driver on a PYNQ board may import
HEAVY = ("torch", "torchvision", "brevitas", "qonnx", "onnx", "onnxruntime", "finn", "qat", "hw", "btsee")
OPTIONAL_ON_BOARD = {"boards.streams": {"qonnx.core.datatype"}}
"""Imported on first use, where importable (finn-plus-driver's packing and its DataType);
without them the module packs with numpy (test_the_board_side_packs_without_finn_plus_driver)."""


def board_side_modules() -> list[str]:
    return [m for m in project_modules() if m.split(".")[0] in BOARD_SIDE]


def project_modules() -> dict[str, Path]:
    """{dotted module name: file} of every module of the project's packages."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement in `path` names, at any depth (relative
    imports resolved; `from a import b` gives a.b when that is a module, else a)."""
    modules = project_modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                names.add(full if full in modules else base)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: {n for n in imported_names(p, m) if n in modules and n != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_the_projects_modules():
    graph = import_graph()
    assert "btsee.steps" in graph and "hw.golden" in graph
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", BOARD_SIDE)
def test_board_side_packages_import_nothing_heavy(package):
    """Every import statement of calib/ and boards/, lazy ones included, names only the
    standard library, numpy, pynq or these packages themselves."""
    bad = {}
    for module, path in project_modules().items():
        if module.split(".")[0] != package:
            continue
        heavy = sorted(n for n in imported_names(path, module) - OPTIONAL_ON_BOARD.get(module, set())
                       if n.split(".")[0] in HEAVY)
        if heavy:
            bad[module] = heavy
    assert bad == {}


def test_board_side_packages_load_without_torch_or_qonnx():
    names = board_side_modules()
    code = (f"import importlib, sys\nfor m in {names!r}: importlib.import_module(m)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "print(bad)\nsys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_board_side_packs_without_finn_plus_driver():
    """On a board without finn-plus-driver (or its qonnx), the driver falls back to numpy packing."""
    code = ("import sys\nsys.modules['finn_plus_driver'] = None\nimport numpy as np\n"
            "from boards.streams import StreamLayout, default_packing, pack_images\n"
            "layout = StreamLayout((1, 2, 2), 1, 8, False, 4, 1, 4, 3, 10, 1)\n"
            "print(default_packing())\n"
            "print(pack_images(np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2), layout).ravel().tolist())")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("numpy (finn_plus_driver.packing is not importable")
    assert lines[1] == str(list(range(8)))


def test_hw_never_reaches_up_into_the_flow():
    """`hw` (export, FINN, golden, RTL) is used by the flow, never the other way round: no
    module under hw/ imports btsee, at any depth (the block-test vectors get their images
    from `btsee.block_vectors`)."""
    modules = project_modules()
    upward = {m: sorted(n for n in imported_names(p, m) if n.split(".")[0] == "btsee")
              for m, p in modules.items() if m.split(".")[0] == "hw"}
    assert {m: names for m, names in upward.items() if names} == {}
