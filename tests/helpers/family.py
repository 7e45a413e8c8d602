"""A small batched family (spec.batch) on a seeded synthetic panel: the spec, the panel CSV, a repo.

`panel_rows` and `panel_csv` build every synthetic panel the tests use (this family's, the registry
family's, the Dask and the CI-matrix families'): the shape (names, periods, monthly or quarterly,
column names) is each test's; the values are always made the same way."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from tests.helpers.cli import run_exe
from tests.helpers.repos import git, write

FAMILY = "panel"
PANEL = "data/panel.csv"
MONTHS = 96
TEST_PERIODS = 12

FAMILY_SPEC = f"""\
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: {FAMILY}
  labels: {{domain: panel}}
spec:
  task: forecast
  batch: true
  data:
    source: {{path: {PANEL}}}
    time: month
    target: {{column: value}}
    features: {{drop: [series]}}
  split: {{kind: temporal, test_periods: {TEST_PERIODS}}}
  model:
    estimator: sklearn.linear_model.Ridge
    lags: [1, 12]
    season: 12
    log_target: true
    trend: false
    horizon: 1
  metrics: [mae, mase]
  foreach: {{from: pipelines/series/panel.csv, column: series}}
  do:
    data:
      filter: {{series: "${{item}}"}}
"""

FAMILY_POLICY = """\
apiVersion: modelops/v1
kind: Policy
metadata: {name: panel-policy}
spec:
  selector: {labels: {domain: panel}}
  gates:
    performance:
      confidence: 0.9
      metrics: {mase: {max: 2.5}}
  family: {max_failed: 0}
  stages: [dev, production]
"""


def series_names(count: int) -> list[str]:
    return [f"s{index:02d}" for index in range(count)]


def period_label(index: int, season: int, start: int) -> str:
    """The time label of period `index` from January `start`: a month's first day (season 12,
    "2000-01-01") or a quarter (season 4, "2000 Q1")."""
    year, period = start + index // season, index % season + 1
    if season == 4:
        return f"{year} Q{period}"
    return f"{year}-{period:02d}-01"


def panel_rows(names: Iterable[str], periods: int = MONTHS, *, season: int = 12, start: int = 2000,
               seed: int = 12) -> list[list[str]]:
    """The one synthetic panel of the tests: per series (name, period label, value) rows, each
    level x growth^t x seasonal swing x lognormal noise, seeded by `seed` and the name (so a series'
    rows do not depend on which others are in the panel)."""
    rows = []
    for name in names:
        rng = random.Random(f"{seed}-{name}")
        level, growth, swing = rng.uniform(50, 500), rng.uniform(1.0, 1.01), rng.uniform(0.05, 0.3)
        for t in range(periods):
            seasonal = 1 + swing * math.sin(2 * math.pi * t / season)
            value = level * growth**t * seasonal * math.exp(rng.gauss(0, 0.03))
            rows.append([name, period_label(t, season, start), f"{value:.3f}"])
    return rows


def panel_csv(rows: list[list[str]], header: str = "series,month,value") -> str:
    return header + "\n" + "".join(",".join(row) + "\n" for row in rows)


def series_csv(names: list[str]) -> str:
    return "series\n" + "".join(f"{name}\n" for name in names)


def write_family(repo: Path, names: list[str], rows: list[list[str]] | None = None) -> None:
    """The family's spec, policy, series list and panel (the panel from `rows`, else seeded)."""
    write(repo, "pipelines/panel.yaml", FAMILY_SPEC)
    write(repo, "policies/panel.yaml", FAMILY_POLICY)
    write(repo, "pipelines/series/panel.csv", series_csv(names))
    write(repo, PANEL, panel_csv(rows if rows is not None else panel_rows(names)))


def make_family_repo(repo: Path, count: int = 4) -> Path:
    """A git + DVC repo holding one batched family of `count` series, compiled and committed."""
    from modelops_ci.commands.init import DVC_CONFIG

    repo.mkdir(parents=True, exist_ok=True)
    git("init", "-q", cwd=repo)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / ".dvc" / "config").write_text(DVC_CONFIG)
    write(repo, ".gitignore", ".modelops/\n")
    write_family(repo, series_names(count))
    assert run_exe("compile", cwd=repo).exit_code == 0
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "family", cwd=repo)
    return repo
