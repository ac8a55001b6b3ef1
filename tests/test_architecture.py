"""The package's shape (issue 16): no import cycles, engines load on first use, size limits hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[1] / "qsetfit"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_even_through_imports_inside_functions():
    graph = grimp.build_graph("qsetfit")  # every import statement, including those inside functions
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert _cycles(edges) == []


def test_the_torch_engine_does_not_import_aer_or_ibm():
    code = ("import sys, qsetfit; from qsetfit import HeadConfig, build_head_circuit, make_engine; "
            "make_engine(build_head_circuit(HeadConfig.preset('tiny')), 'torch'); "
            "print(sorted(m for m in sys.modules if m.startswith(('qsetfit.engines.aer', 'qsetfit.engines.ibm'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_and_functions_stay_small():
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 400:
            long_modules.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long_functions.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert long_modules == []
    assert long_functions == []


# Modules whose tests predate the one-test-file-per-module rule and live under another name (STYLE 15). The list
# may only shrink: rename the file to test_<module>.py (or split it) and drop the entry.
TESTED_ELSEWHERE = {
    "cli/bench.py": "test_reproduce.py", "cli/common.py": "test_cli.py", "cli/jobs.py": "test_ledger.py",
    "cli/main.py": "test_cli.py", "engines/aer/engine.py": "engines/test_aer.py",
}


def test_every_module_has_a_test_file_naming_it():
    tests = PACKAGE.parent / "tests"
    named = {p.stem.removeprefix("test_") for p in tests.rglob("test_*.py")}
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if p.stem != "__init__"]
    missing = [str(p.relative_to(PACKAGE)) for p in modules if p.stem not in named]
    assert sorted(set(missing) - set(TESTED_ELSEWHERE)) == []  # a new module comes with tests/**/test_<name>.py
    assert sorted(set(TESTED_ELSEWHERE) - set(missing)) == []  # an entry whose module now has its own file: drop it
    assert all((tests / f).is_file() for f in TESTED_ELSEWHERE.values())
