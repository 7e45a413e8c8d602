"""The README's rule table names every rule `verify` can refuse a tag by: its own (verify.RULES) and
every one the approvals checker returns, so a refusal's `[rule]` can always be looked up."""

from __future__ import annotations

import re

from modelops_ci.registry import approvals
from modelops_ci.registry.verify import RULES
from tests.helpers.paths import PROJECT

TABLE_START = "| rule | what must hold |"


def _documented_rules() -> set[str]:
    """The rule ids in the first column of the README's verify table."""
    lines = (PROJECT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_START)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1])
    return {rule for row in rows for rule in re.findall(r"`([a-z-]+)`", row)}


def test_every_rule_verify_can_name_is_in_the_readme_table() -> None:
    documented = _documented_rules()
    missing = sorted((set(RULES) | set(approvals.RULE_IDS)) - documented)
    assert not missing, f"add these rules to README.md's verify table: {missing}"


def test_the_table_names_no_rule_the_code_cannot_return() -> None:
    stale = sorted(_documented_rules() - set(RULES) - set(approvals.RULE_IDS))
    assert not stale, stale
