"""No import cycles among the project's modules, function-local imports included.

The graph is read from the source (ast), not from importing it: every `import x` / `from x import y`
of a project module is an edge, wherever it stands (a function-local import that only breaks a
cycle at import time still ties the two modules together). Imports under `if TYPE_CHECKING:` are
not edges. A package is its `__init__.py`: `from reasonlab.tasks import load_task` depends on
tasks/__init__.py, `from reasonlab.tasks import base` or `from reasonlab.tasks.base import Task` on
tasks/base.py only (that Python runs tasks/__init__.py first is not a dependency the importing module
chose). Each folder is named as it is installed: tasks/ is `reasonlab.tasks` (pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ["reasonlab", "core", "tasks", "models", "eval", "rewards", "trainers", "launch", "bench"]


def installed_name(folder: str) -> str:
    """The package a folder is imported as: bench/ runs from the checkout, the rest is reasonlab's."""
    return folder if folder in ("reasonlab", "bench") else f"reasonlab.{folder}"


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file; a package's name maps to its __init__.py."""
    modules = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root / pkg).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([installed_name(pkg), *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes anywhere in the tree (functions, classes, try blocks), except TYPE_CHECKING blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` is, or the closest project package above it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = project_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:  # relative: from its package (a package's own __init__ counts as in it)
                    base_parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # `from pkg import submodule` depends on the submodule, anything else on `base`
                    targets.append(sub if sub in modules else base)
            for target in targets:
                dep = _resolve(target, modules)
                if dep is not None and dep != name:
                    graph[name].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:  # Tarjan; the graph is small enough for recursion
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)

    found = []
    for comp in components:
        cycle = _shortest_cycle(comp[0], graph, set(comp))
        if len(comp) > len(cycle) - 1:  # more modules are tangled in than this one loop
            cycle.append(f"(and the rest of {{{', '.join(comp)}}})")
        found.append(cycle)
    return found


def _shortest_cycle(start: str, graph: dict[str, set[str]], members: set[str]) -> list[str]:
    """start -> ... -> start, breadth first inside the component."""
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in a component but on no cycle")


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among project modules:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_check_would_catch_a_cycle(tmp_path):
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
    (tmp_path / "launch" / "__init__.py").write_text("")
    (tmp_path / "launch" / "a.py").write_text("from reasonlab.launch.b import f\n")
    (tmp_path / "launch" / "b.py").write_text("def f():\n    from reasonlab.launch import a\n")  # function-local
    (tmp_path / "launch" / "c.py").write_text("from reasonlab.launch.a import f\n")  # depends on the cycle, not in it
    (tmp_path / "tasks" / "__init__.py").write_text("from reasonlab.tasks.x import X\n")
    (tmp_path / "tasks" / "x.py").write_text("from reasonlab.tasks.y import Y\n")  # runs tasks/__init__ first: no edge
    (tmp_path / "tasks" / "y.py").write_text("from . import x\nfrom .x import X\n")  # relative imports
    (tmp_path / "core").joinpath("__init__.py").write_text("if TYPE_CHECKING:\n    from reasonlab.launch import c\n")
    graph = import_graph(tmp_path)
    launch, tasks = "reasonlab.launch", "reasonlab.tasks"
    assert graph[f"{launch}.b"] == {f"{launch}.a"} and graph[tasks] == {f"{tasks}.x"} and graph["reasonlab.core"] == set()
    assert graph[f"{tasks}.y"] == {f"{tasks}.x"}
    assert cycles(graph) == [[f"{launch}.a", f"{launch}.b", f"{launch}.a"], [f"{tasks}.x", f"{tasks}.y", f"{tasks}.x"]]
