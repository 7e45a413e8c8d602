"""`${namespace.path}` placeholders: typed when a value is one placeholder, text otherwise.

Written by hand because the rules are ours (an env allow-list, late-bound `${item}`, errors
located in the file); DVC's and OmegaConf's interpolation offer neither.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_ci.errors import Problem
from modelops_ci.spec.nodes import Mark, MDict, MList, clone

PLACEHOLDER = re.compile(r"\$(\$?)\{\s*([^}]*?)\s*\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
LATE_BOUND = frozenset({"item", "key"})
NAMESPACES = ("params", "metadata", "labels", "env", "item", "key")


class _Unresolved(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class Scope:
    """What placeholders can see. `late` names are left in place for a later pass."""

    values: dict[str, Any]
    env_allowed: frozenset[str] = frozenset()
    env: Mapping[str, str] = field(default_factory=dict)
    late: frozenset[str] = frozenset()
    problems: list[Problem] = field(default_factory=list)

    def lookup(self, expression: str) -> Any:
        if not _NAME.match(expression):
            raise _Unresolved(f"'${{{expression}}}' is not a placeholder name",
                              "write ${params.NAME}, ${item}, ${key} or ${metadata.name}")
        head, *rest = expression.split(".")
        if head == "env":
            return self._env(rest)
        if head in LATE_BOUND and head not in self.values:
            raise _Unresolved(f"'${{{expression}}}' is only defined inside foreach",
                              "use it under spec.do, or add spec.foreach")
        if head not in self.values:
            known = ", ".join(f"${{{n}}}" for n in NAMESPACES if n in self.values or n == "env")
            raise _Unresolved(f"'${{{expression}}}' is not defined here", f"known: {known}")
        return _walk(self.values[head], head, rest)

    def _env(self, rest: list[str]) -> str:
        name = ".".join(rest)
        if name not in self.env_allowed:
            raise _Unresolved(f"environment variable '{name}' is not allowed",
                              f"add {name} to this file's `env:` list")
        if name not in self.env:
            raise _Unresolved(f"environment variable '{name}' is not set", f"export {name}=...")
        return self.env[name]


def _walk(value: Any, head: str, rest: list[str]) -> Any:
    trail = head
    for step in rest:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            known = sorted(value) if isinstance(value, dict) else []
            hint = f"defined under {trail}: {', '.join(known)}" if known else f"{trail} has no '{step}'"
            close = difflib.get_close_matches(step, known, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean '${{{trail}.{close[0]}}}'? {hint}"
            raise _Unresolved(f"'${{{trail}.{step}}}' is not defined", hint)
        trail += f".{step}"
    return value


def substitute(node: Any, scope: Scope, mark: Mark) -> Any:
    """A copy of `node` with its placeholders replaced; problems go to `scope.problems`."""
    if isinstance(node, MDict):
        out = MDict(node.mark)
        for key, value in node.items():
            out.copy_entry(node, key, substitute(value, scope, node.value_mark(key)))
        return out
    if isinstance(node, MList):
        return MList(node.mark, ((substitute(v, scope, node.item_mark(i)), node.item_mark(i))
                                 for i, v in enumerate(node)))
    if isinstance(node, str) and "${" in node:
        try:
            return _substitute_text(node, scope)
        except _Unresolved as exc:
            scope.problems.append(Problem(mark.path, mark.line, mark.col, "", exc.message, exc.hint))
    return node


def _substitute_text(text: str, scope: Scope) -> Any:
    whole = PLACEHOLDER.fullmatch(text)
    if whole and not whole.group(1):
        name = whole.group(2)
        if name.split(".")[0] in scope.late:
            return text
        return clone(scope.lookup(name))

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${x} is an escaped, literal ${x}
            return match.group(0)[1:] if not scope.late else match.group(0)
        name = match.group(2)
        if name.split(".")[0] in scope.late:
            return match.group(0)
        value = scope.lookup(name)
        if isinstance(value, dict | list):
            raise _Unresolved(f"'${{{name}}}' is a {'mapping' if isinstance(value, dict) else 'list'}"
                              " and cannot be part of a longer string",
                              "use it as the whole value")
        return _text(value)

    return PLACEHOLDER.sub(replace, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


