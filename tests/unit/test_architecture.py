"""The package's shape (issue #10): imports flow one way, cli -> commands -> domain packages -> ml /
github client -> the small shared modules, with no cycle between modules. An AST walk over the
package: every import counts, those inside functions too (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.paths import PROJECT

PACKAGE = PROJECT / "modelops_ci"
# Lower numbers may import higher ones, never the other way round.
LAYERS: dict[str, int] = {
    "cli": 0,
    "commands": 1,
    "spec": 2, "transform": 2, "executor": 2, "steps": 2, "gates": 2, "report": 2, "registry": 2,
    "serve": 2, "rollout": 2, "monitor": 2, "optimize": 2,
    "github": 2,  # what is posted to GitHub (comment, annotations, summary) is reporting
    "github.client": 3, "ml": 3,
    "errors": 4, "fsutil": 4, "layout": 4, "git": 4, "offline": 4, "numerics": 4, "hooks": 4,
    "family_params": 4,
}
TOP_LEVEL_LIMIT = 8  # modules at the top of modelops_ci/, besides __init__ and __main__


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The modules of the package that `path` imports, anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c`: the module a.b.c if there is one, else (c is a name) a.b itself
            names = [f"{node.module}.{alias.name}" if _inner(f"{node.module}.{alias.name}") in modules
                     else node.module for alias in node.names]
        else:
            continue
        for name in names:
            inner = _inner(name)
            if inner in modules:
                yield inner


def _inner(name: str) -> str:
    return name.removeprefix("modelops_ci.") if name.startswith("modelops_ci.") else ""


def _layer(module: str) -> int | None:
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:length]))
        if layer is not None:
            return layer
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path, modules) if m != name} - {""} for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _modules() if m and m not in ("__main__",) and _layer(m) is None)
    assert unplaced == [], f"modules no layer places: {unplaced}: add their package to LAYERS"


def test_no_module_imports_up_a_layer() -> None:
    upward = sorted(f"{source} -> {target}" for source, targets in _graph().items() for target in targets
                    if _layer(source) is not None and _layer(target) is not None
                    and _layer(target) < _layer(source))  # type: ignore[operator]
    assert upward == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_top_of_the_package_stays_small() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= TOP_LEVEL_LIMIT, top
