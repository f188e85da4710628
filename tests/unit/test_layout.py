"""The package's layout: no import cycles inside ``resilient_client/``, and every room that
``resilient_client._call.PIPELINE`` names exists.

Modules are read with :mod:`ast`, never imported, so a cycle is found even where it would
not fail at import time: every ``import`` counts, including those guarded by
``TYPE_CHECKING`` and those inside functions (a cycle the type checker or a late import
hides is still two rooms that cannot be read, tested or moved apart).

Edges: ``import a.b`` is an edge to ``a.b``; ``from a import b`` is an edge to ``a.b`` when
``b`` is a submodule, else to ``a``; relative imports are resolved against the importing
module's package. A package's ``__init__.py`` is the package itself, so an edge into it is
an edge to the package.
"""

from __future__ import annotations

import ast
import importlib.util
from collections import deque
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "resilient_client"

Graph = Mapping[str, Set[str]]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``: dotted name → file."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> Iterator[str]:
    """The dotted names one import statement in module ``name`` may reach, most specific
    first for each (``a.b.c`` before ``a.b``), so the caller takes the first known one."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        # A module's own package is level 1; a package's __init__ is its own package.
        anchor = name.split(".") if is_package else name.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        yield base if alias.name == "*" else ".".join(filter(None, (base, alias.name)))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module → the modules of ``package`` it imports (self-imports dropped)."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(node, name, is_package):
                # `from a import b` where b is a name, not a module: the edge is to `a`.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """The components of more than one module (Tarjan), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as modules in import order
    (the first repeated at the end)."""
    start = component[0]
    members = set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{component} is not strongly connected")  # pragma: no cover


def cycles(graph: Graph) -> list[list[str]]:
    """One shortest cycle per strongly connected component."""
    return [shortest_cycle(graph, component) for component in strongly_connected(graph)]


def pipeline_rooms(root: Path) -> list[tuple[str, str]]:
    """``(strategy, room)`` for each row of ``resilient_client._call.PIPELINE``, read as a
    literal from the source (it is data; importing the package is not needed)."""
    tree = ast.parse((root / PACKAGE / "_call" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign | ast.Assign)
            and node.value is not None
            and "PIPELINE" in {t.id for t in _targets(node) if isinstance(t, ast.Name)}
        ):
            rows = ast.literal_eval(node.value)
            return [(row[0], row[1]) for row in rows]
    raise AssertionError("resilient_client/_call/__init__.py no longer assigns PIPELINE")


def _targets(node: ast.AnnAssign | ast.Assign) -> list[ast.expr]:
    return [node.target] if isinstance(node, ast.AnnAssign) else node.targets


def _describe(graph: Graph) -> str:
    """Each cycle in import order, then every module caught in the same knot."""
    lines = []
    for component in strongly_connected(graph):
        lines.append(" → ".join(shortest_cycle(graph, component)))
        lines.append(f"    (knot of {len(component)}: {', '.join(component)})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the package


def test_no_import_cycle_inside_the_package() -> None:
    graph = import_graph(ROOT, PACKAGE)
    found = cycles(graph)
    assert not found, f"{len(found)} import cycle(s) inside {PACKAGE}/:\n{_describe(graph)}"


def test_the_graph_reads_the_package() -> None:
    # Guards the test above against passing because it read nothing.
    graph = import_graph(ROOT, PACKAGE)
    assert f"{PACKAGE}._call" in graph
    assert f"{PACKAGE}._breaker" in graph[PACKAGE]
    assert sum(len(targets) for targets in graph.values()) > len(graph)


@pytest.mark.parametrize(("strategy", "room"), pipeline_rooms(ROOT))
def test_every_room_of_the_pipeline_exists(strategy: str, room: str) -> None:
    if room.split(".")[0] == PACKAGE:
        assert room in module_files(ROOT, PACKAGE), f"{strategy}: no module or package {room}"
    else:
        assert importlib.util.find_spec(room) is not None, f"{strategy}: {room} is not installed"


def test_the_pipeline_names_its_rooms() -> None:
    rooms = pipeline_rooms(ROOT)
    assert len(rooms) >= 2
    assert rooms[-1][0] == "inner transport"


# ------------------------------------------------------------- the checker on known shapes


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "import pkg.a\n"},
            [["pkg.a", "pkg.b", "pkg.a"]],
            id="absolute-import",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from .b import thing\n",
                "pkg/b.py": "def f():\n    from . import a\n",
            },
            [["pkg.a", "pkg.b", "pkg.a"]],
            id="relative-and-function-local",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from pkg.sub import x\n",
                "pkg/sub/__init__.py": "from ..c import y\n",
                "pkg/c.py": "from .a import z\n",
            },
            [["pkg.a", "pkg.sub", "pkg.c", "pkg.a"]],
            id="type-checking-and-package-init",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from .a import A\n",
                "pkg/a.py": "from . import b\nfrom .b import B\n",
                "pkg/b.py": "from . import A\n",
            },
            [["pkg", "pkg.a", "pkg.b", "pkg"]],
            id="into-the-package-init",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from . import a, b\n",
                "pkg/a.py": "from . import b\n",
                "pkg/b.py": "import os\nfrom .sub import c\n",
                "pkg/sub/__init__.py": "",
                "pkg/sub/c.py": "from ..a import *\n",
            },
            [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]],
            id="deep-relative-and-star",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from .a import A\nfrom .b import B\n",
                "pkg/a.py": "from . import b\n",
                "pkg/b.py": "import os\nfrom pkg import c\n",
                "pkg/c.py": "",
            },
            [],
            id="acyclic",
        ),
    ],
)
def test_the_checker_finds_exactly_the_cycles_there_are(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    _write(tmp_path, files)
    assert cycles(import_graph(tmp_path, "pkg")) == expected
