"""Every pipeline's metrics on the base branch and here, from `dvc metrics diff` (the PR comment
shows them under the verdicts)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.github.workflow import checked_ref
from modelops_ci.offline import QUIET_ENV

DVC_TIMEOUT = 300
_METRICS_FILE = re.compile(r"^reports/(?P<pipeline>[^/]+)/metrics\.json$")


@dataclass(frozen=True)
class MetricDiff:
    """One metric of one pipeline on the base branch (`old`) and here (`new`)."""

    pipeline: str
    metric: str
    old: Any
    new: Any

    @property
    def change(self) -> float | None:
        if is_number(self.old) and is_number(self.new):
            return float(self.new) - float(self.old)
        return None


@dataclass(frozen=True)
class Diffs:
    """The metric diffs against `base` (the ref DVC compared with), or why there are none
    (`problem`, markdown: anything from outside is escaped in it)."""

    base: str
    rows: tuple[MetricDiff, ...] = ()
    problem: str = ""


def metric_diffs(root: Path, base: str) -> Diffs:
    """`dvc metrics diff --json --all` against `base` (or `origin/<base>`), per pipeline.

    A base missing from the clone is no error: the comment says how to fetch it.
    """
    base = checked_ref(base)
    rev = next((r for r in (base, f"origin/{base}") if _is_commit(root, r)), None)
    if rev is None:
        return Diffs(base, problem=f"the base branch `{base}` is not in this clone: fetch it "
                                   "(actions/checkout with `fetch-depth: 0`) to compare metrics")
    command = [sys.executable, "-m", "dvc", "metrics", "diff", "--json", "--all", rev]
    try:
        done = subprocess.run(command, cwd=root, env={**git.clean_env(), **QUIET_ENV}, capture_output=True,
                              text=True, check=False, timeout=DVC_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Diffs(rev, problem=f"`dvc metrics diff` did not finish within {DVC_TIMEOUT} s")
    if done.returncode != 0:
        from modelops_ci.report.markdown import text

        said = text((done.stderr.strip().splitlines() or ["no message"])[-1], 300)
        return Diffs(rev, problem=f"`dvc metrics diff {rev}` failed: {said}")
    try:
        payload = json.loads(done.stdout or "{}")
    except ValueError:
        return Diffs(rev, problem="`dvc metrics diff` did not print JSON")
    return Diffs(rev, tuple(_rows(payload if isinstance(payload, dict) else {})))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rows(payload: dict[str, Any]) -> list[MetricDiff]:
    rows = []
    for path, metrics in sorted(payload.items()):
        found = _METRICS_FILE.match(path)
        pipeline = found["pipeline"] if found else path
        for metric, values in sorted((metrics or {}).items()):
            if isinstance(values, dict):
                rows.append(MetricDiff(pipeline, str(metric), values.get("old"), values.get("new")))
    return rows


def _is_commit(root: Path, rev: str) -> bool:
    done = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", cwd=root,
                   check=False)
    return done.returncode == 0
