"""What a step or gate reads, declared once: `compile` makes it the stage's `params:` and `deps:`, and
the step is handed only those params. So DVC re-runs a stage whenever anything its step reads changes:
a read left out of the declaration finds nothing at run time (and its feature's test fails), it cannot
leave a stale result cached (issue 11: a fairness verdict outlived a change of the favourable class).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci.layout import Layout


@dataclass(frozen=True)
class SpecFile:
    """A params key whose value names a file (or folder) in the repository."""

    key: str
    unset: str | None = None  # the pipeline's own file (a Layout name) read when the key is not set
    own: tuple[str, ...] = ()  # values naming the pipeline's own file of that name (drift's `train`)

    def paths(self, params: Mapping[str, Any], layout: Layout) -> list[str]:
        values = [str(value) for value in values_under(params, self.key)]
        if not values:
            return [getattr(layout, self.unset)] if self.unset else []
        return [getattr(layout, value) if value in self.own else value for value in values]


@dataclass(frozen=True)
class Reads:
    """Everything one step or gate reads besides the package's own code.

    `params`: dotted keys of the compiled params.yaml (`data.target`, `split.seed`); `outputs`: files
    the pipeline's earlier stages write (or keeps, like its contract), by their Layout name; `files`:
    params keys whose values are repository files; `code`: params keys whose values are dotted paths
    of plug-in code (a module found in the repository is a dependency, an installed one is not).
    """

    params: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    files: tuple[SpecFile, ...] = ()
    code: tuple[str, ...] = ()

    def keys_in(self, params: Mapping[str, Any]) -> list[str]:
        """The declared keys this pipeline sets (DVC refuses a params key that is not there)."""
        return [key for key in self.params if _has(params, key)]

    def select(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` cut down to the declared keys: all that the step may see. The sections holding a
        declared key stay, even when the key itself is not set (`model` without `model.horizon`)."""
        selected: dict[str, Any] = {}
        for key in self.params:
            node, source = selected, params
            *parents, last = key.split(".")
            for part in parents:
                if not isinstance(source.get(part), Mapping):
                    break
                node, source = node.setdefault(part, {}), source[part]
            else:
                if last in source:
                    node[last] = source[last]
        return selected

    def deps(self, params: Mapping[str, Any], layout: Layout, root: Path) -> list[str]:
        """The files the stage depends on: earlier outputs, files the spec names, plug-in modules."""
        from modelops_ci.steps.estimators import repo_module_files

        named = {path for spec_file in self.files for path in spec_file.paths(params, layout)}
        found = [getattr(layout, name) for name in self.outputs] + sorted(named)
        modules = {path for key in self.code for dotted in values_under(params, key)
                   for path in repo_module_files(str(dotted), root)}
        return _unique([*found, *sorted(modules)])


def value_at(tree: Mapping[str, Any], dotted: str) -> Any:
    """The value at `a.b.c` in nested mappings, or None."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def values_under(tree: Any, dotted: str) -> Iterator[Any]:
    """Every value at `a.b.c`, looking into each item of a list on the way (`data.source.path` finds
    the path of one source or of each of several); `*` stands for every key of a mapping."""
    if isinstance(tree, list):
        for item in tree:
            yield from values_under(item, dotted)
        return
    if not dotted:
        if tree is not None:
            yield tree
        return
    head, _, rest = dotted.partition(".")
    if head == "*" and isinstance(tree, Mapping):  # every value of a mapping (`data.inputs.*.path`)
        for value in tree.values():
            yield from values_under(value, rest)
        return
    if isinstance(tree, Mapping) and head in tree:
        yield from values_under(tree[head], rest)


def _has(tree: Mapping[str, Any], dotted: str) -> bool:
    *parents, last = dotted.split(".")
    node = value_at(tree, ".".join(parents)) if parents else tree
    return isinstance(node, Mapping) and last in node


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
