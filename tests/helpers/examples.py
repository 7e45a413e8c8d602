"""This project's example specs compiled: the pipelines they hold and the stages each one gets."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run_cli

SERIES = ("japan", "nz", "uk", "us")
ARRIVALS = tuple(f"arrivals-{s}" for s in SERIES)
PIPELINES = ("arrivals-japan", "arrivals-nz", "arrivals-uk", "arrivals-us", "credit-risk")
FAMILIES = ("employment",)  # batched: one compiled folder for its 148 series
DECISIONS = ("depots",)  # task: optimize, on arrivals-uk's forecasts
COMPILED = tuple(sorted(PIPELINES + FAMILIES + DECISIONS))
CORE = ("ingest", "split", "train", "evaluate")
FINANCE_GATES = ("gate-data-contract", "gate-performance", "gate-compare", "gate-fairness",
                 "gate-drift")
FORECAST_GATES = ("gate-performance",)


def compile_ok(repo: Path, *extra: str) -> str:
    result = run_cli("compile", "-C", repo, *extra)
    assert result.exit_code == 0, result.stderr
    return result.stdout
