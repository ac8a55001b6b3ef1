"""The package's shape (issue 16): no import cycles, engines load on first use, size limits hold."""

from __future__ import annotations

import subprocess
import sys

import grimp

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
