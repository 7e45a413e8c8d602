"""`when:` conditions: a small, safe expression language over params, item, key and labels.

Python's own parser reads the expression; only comparisons, boolean logic, literals and
attribute/index access on the given names are evaluated, so nothing can be executed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from modelops_ci.errors import UserError

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


class ConditionError(UserError):
    """The condition cannot be read or evaluated."""


def evaluate(condition: Any, names: Mapping[str, Any]) -> bool:
    """The truth of `condition` (true, false or an expression) with `names` in scope."""
    if isinstance(condition, bool):
        return condition
    if not isinstance(condition, str):
        raise ConditionError(f"a condition is true, false or an expression, not {condition!r}")
    try:
        tree = ast.parse(condition.strip(), mode="eval")
        return bool(_eval(tree.body, names))
    except SyntaxError as exc:
        raise ConditionError(f"cannot read condition {condition!r}: {exc.msg}") from None
    except TypeError as exc:
        raise ConditionError(f"cannot compare in {condition!r}: {exc}") from None
    except RecursionError:  # Python's parser and _eval both recurse per nesting level
        raise ConditionError(f"condition {condition[:40]!r}... is nested too deeply") from None


def _eval(node: ast.expr, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return node.id == "true"
        if node.id not in names:
            raise ConditionError(f"unknown name '{node.id}' (known: {', '.join(sorted(names))})")
        return names[node.id]
    if isinstance(node, ast.Attribute):
        return _member(_eval(node.value, names), node.attr)
    if isinstance(node, ast.Subscript):
        return _member(_eval(node.value, names), _eval(node.slice, names))
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(item, names) for item in node.elts]
    if isinstance(node, ast.BoolOp):
        values = (_eval(value, names) for value in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, names)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_number(node.operand):
        return -_eval(node.operand, names)  # a negative literal, e.g. `params.shift > -1`
    if isinstance(node, ast.Compare):
        return _compare(node, names)
    raise ConditionError(f"'{ast.unparse(node)}' is not allowed in a condition "
                         "(use ==, !=, <, >, in, not in, and, or, not)")


def _compare(node: ast.Compare, names: Mapping[str, Any]) -> bool:
    left = _eval(node.left, names)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise ConditionError(f"'{ast.unparse(node)}' is not allowed in a condition "
                                 "(use ==, !=, <, >, in, not in, and, or, not)")
        right = _eval(right_node, names)
        if not compare(left, right):
            return False
        left = right
    return True


def _is_number(node: ast.expr) -> bool:
    value = node.value if isinstance(node, ast.Constant) else None
    return isinstance(value, int | float) and not isinstance(value, bool)


def _member(container: Any, name: Any) -> Any:
    if isinstance(container, Mapping) and name in container:
        return container[name]
    if isinstance(container, list) and isinstance(name, int) and -len(container) <= name < len(container):
        return container[name]
    raise ConditionError(f"'{name}' is not defined")
