"""The layers can be seen, and a test keeps them so (DESIGN: "Layout").

* ``qmux._core`` is the actor system: it imports only trio, attrs, structlog, outcome and the
  standard library, never an edge (backends, journal stores, HTTP, the wire, qiskit, SQL).
* The edges reach the core through ``qmux._core`` itself, never through its private modules.
* No module of ``qmux`` takes part in an import circle, lazy or type-only imports included:
  a circle hidden in a function body is still a circle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "qmux"
CORE_MAY_IMPORT = {"trio", "attrs", "structlog", "outcome"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str) -> Iterator[tuple[int, str]]:
    """Every module `module` imports, anywhere in its body, as absolute dotted names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
            if len(submodules) < len(node.names):  # a name the module itself defines
                yield node.lineno, target
            for submodule in submodules:  # "from . import _wire": the submodule is what is imported
                yield node.lineno, submodule


def _resolve(target: str) -> str | None:
    """The qmux module an import names (a package's ``__init__`` for a package), if any."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


@pytest.mark.parametrize("module", [m for m in MODULES if m == "qmux._core" or m.startswith("qmux._core.")])
def test_the_core_imports_nothing_but_trio_attrs_structlog_outcome_and_the_standard_library(module: str) -> None:
    for line, target in _imports(module):
        top = target.split(".")[0]
        if top == "qmux":
            assert target == "qmux._core" or target.startswith("qmux._core."), (
                f"{module} line {line} imports {target}: the core must not reach an edge"
            )
        else:
            assert top in CORE_MAY_IMPORT or top in sys.stdlib_module_names, (
                f"{module} line {line} imports {target}: the core may import only "
                f"{', '.join(sorted(CORE_MAY_IMPORT))} and the standard library"
            )


@pytest.mark.parametrize("module", [m for m in MODULES if not m.startswith("qmux._core")])
def test_edges_reach_the_core_only_through_its_front_module(module: str) -> None:
    for line, target in _imports(module):
        if target.startswith("qmux._core."):
            pytest.fail(f"{module} line {line} imports {target}; import it from qmux._core instead")


def test_no_module_of_qmux_takes_part_in_an_import_circle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for _, target in _imports(module):
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                graph[module].add(resolved)
    cycles = _cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found
