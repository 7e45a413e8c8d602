"""`when:` conditions: comparisons and boolean logic over the given names, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from modelops_ci.errors import UserError
from modelops_ci.spec.conditions import ConditionError, evaluate

NAMES: dict[str, Any] = {
    "params": {"region": "EU", "threshold": 0.8, "shift": -2, "tiers": ["gold", "silver"],
               "enabled": True},
    "item": "eu",
    "key": 3,
    "labels": {"domain": "finance"},
}


@pytest.mark.parametrize(("condition", "expected"), [
    (True, True),
    (False, False),
    ("true", True),
    ("false", False),
    ("params.region == 'EU'", True),
    ("params.region != 'EU'", False),
    ("params.threshold < 0.9", True),
    ("params.threshold <= 0.8", True),
    ("params.threshold > 0.9", False),
    ("params.threshold >= 0.8", True),
    ("0.5 < params.threshold < 0.9", True),
    ("0.5 < params.threshold < 0.7", False),
    ("item in ['eu', 'uk']", True),
    ("item not in ('eu', 'uk')", False),
    ("'gold' in params.tiers", True),
    ("params['region'] == 'EU'", True),
    ("params.tiers[0] == 'gold'", True),
    ("params.tiers[-1] == 'silver'", True),
    ("labels.domain == 'finance' and key == 3", True),
    ("labels.domain == 'retail' or key == 3", True),
    ("not params.enabled", False),
    ("params.enabled", True),
    ("params.shift > -3", True),
    ("params.shift == -2.0", True),
    ("  item == 'eu'  ", True),
])
def test_allowed_operators_evaluate(condition: bool | str, expected: bool) -> None:
    assert evaluate(condition, NAMES) is expected


@pytest.mark.parametrize("condition", [
    "__import__('os').system('true')",            # a call
    "print(item)",
    "item.upper()",                               # a method call
    "item.upper",                                 # attribute access on a string
    "params.__class__",                           # dunder on a mapping
    "params.tiers.__len__",                       # dunder on a list
    "().__class__.__bases__[0].__subclasses__()",  # the classic sandbox escape
    "item['__class__']",
    "params.tiers[0:1]",                          # slicing
    "lambda: 1",
    "[x for x in params.tiers]",
    "{'a': 1}",
    "params.threshold + 1 > 0",                   # arithmetic
    "-params.shift > 0",                          # negation of a name, not a literal
    "item if key else 'x'",
    "item is None",                               # `is` compares identity, not values
    "key is not 3",
    "(x := 1)",
])
def test_anything_else_is_refused(condition: str) -> None:
    with pytest.raises(ConditionError):
        evaluate(condition, NAMES)


def test_refusal_names_the_expression_and_the_allowed_operators() -> None:
    with pytest.raises(ConditionError, match=r"'print\(item\)' is not allowed in a condition "
                                             r"\(use ==, !=, <, >, in, not in, and, or, not\)"):
        evaluate("print(item)", NAMES)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConditionError, match=r"unknown name 'region' \(known: item, key, labels, params\)"):
        evaluate("region == 'EU'", NAMES)


def test_missing_member_is_refused() -> None:
    with pytest.raises(ConditionError, match="'country' is not defined"):
        evaluate("params.country == 'FR'", NAMES)


def test_syntax_error_is_a_condition_error() -> None:
    with pytest.raises(ConditionError, match=r"cannot read condition 'item ==': invalid syntax"):
        evaluate("item ==", NAMES)


def test_comparing_incompatible_types_is_a_condition_error() -> None:
    with pytest.raises(ConditionError, match="cannot compare in 'item < 3': '<' not supported"):
        evaluate("item < 3", NAMES)


@pytest.mark.parametrize("condition", [1, None, 0.5, ["item"], {"a": 1}])
def test_a_condition_must_be_a_boolean_or_a_string(condition: Any) -> None:
    with pytest.raises(ConditionError, match="a condition is true, false or an expression"):
        evaluate(condition, NAMES)


@pytest.mark.parametrize("condition", ["not " * 5000 + "true", "params" + ".x" * 5000,
                                       "(" * 300 + "1" + ")" * 300])
def test_deeply_nested_condition_is_refused_not_a_crash(condition: str) -> None:
    with pytest.raises(ConditionError):
        evaluate(condition, NAMES)


def test_condition_errors_are_user_errors() -> None:
    assert issubclass(ConditionError, UserError)
    assert ConditionError.exit_code == 2
