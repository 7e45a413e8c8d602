"""Data contract: inferring one, its margins, the deterministic file, each broken rule as a check
that names the column, and the gate on a real repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_ci import gates
from modelops_ci.commands.contract import write_inferred
from modelops_ci.errors import UserError
from modelops_ci.gates.context import GateContext
from modelops_ci.steps.context import load_context
from tests.helpers.cli import run_cli
from tests.helpers.repos import write
from tests.helpers.specs import LOANS_SPEC

# -- the gate and the command on a real repo ---------------------------------------------------------


def _gate(repo: Path) -> dict[str, Any]:
    result = run_cli("step", "gate-data-contract", "loans", cwd=repo)
    assert result.exit_code == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads((repo / "reports/loans/gates/data_contract.json").read_text())
    return report


def test_contract_gate_on_a_repo(ml_repo: Path) -> None:
    repo = ml_repo
    write(repo, "pipelines/loans.yaml", LOANS_SPEC + "  gates:\n    data_contract: {}\n")
    assert run_cli("compile", cwd=repo).exit_code == 0
    with pytest.raises(UserError, match="ingest the data first"):
        write_inferred(repo, "loans")
    assert run_cli("step", "ingest", "loans", cwd=repo).exit_code == 0

    missing = _gate(repo)
    assert missing["status"] == "error"
    assert missing["reason"] == ("contracts/loans.yaml: no data contract: run `modelops-ci contract infer "
                                 "loans` and commit it")

    path = write_inferred(repo, "loans")
    assert path == repo / "contracts" / "loans.yaml"
    contract = yaml.safe_load(path.read_text())
    assert contract["columns"]["default"]["categories"] == ["no", "yes"]
    assert contract["columns"]["age_band"]["categories"] == ["[0, 40)", "[40, 120)"]
    assert _gate(repo)["status"] == "pass"

    source = repo / "data/raw/loans.csv"
    lines = source.read_text().splitlines()
    lines[1] = "50.0,20.0,33,west,no"
    lines[2] = "50.0,20.0,-4,north,no"
    source.write_text("\n".join(lines) + "\n")
    assert run_cli("step", "ingest", "loans", cwd=repo).exit_code == 0
    broken = _gate(repo)
    assert broken["status"] == "fail"
    assert {c["name"] for c in broken["checks"]} == {"region.categories", "age.range"}
    assert "column 'region': 1 of 400 values are not among the 3 categories" in broken["reason"]

    ctx = GateContext(load_context(repo, "loans"))
    assert gates.evaluate("data_contract", ctx, {"contract": "contracts/elsewhere.yaml"}).status == "error"
