"""A gate cannot stay cached when what it judges has changed (issue 11, item 1): after a real run, change
one spec field a gate reads (or a plug-in's code) and DVC must see that stage's inputs changed.

One repo (loans from a loader plug-in in the repository, under a fairness and a drift gate) is run once
per module; each test copies it, edits one thing, compiles, and asks `dvc status`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.repos import git, write
from tests.helpers.specs import loans_policy
from tests.helpers.templates import copy_repo, trained_ml_copy

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

LOADER = '''\
"""Loads the loans table (a data source plug-in kept in the repository)."""

import pandas as pd


def load(path):
    return pd.read_csv(path)
'''

SPEC = """\
apiVersion: modelops/v1
kind: Pipeline
metadata: {name: loans, labels: {domain: test}}
imports: {bank: loaders.bank:load}
spec:
  task: classification
  data:
    source: {plugin: bank, args: {path: data/raw/loans.csv}}
    target: {column: default, positive: "yes", favorable: "no"}
    features: {numeric: [income, debt, age], categorical: [region]}
    sensitive: [region, {derive: age_band, from: age, bins: [0, 40, 120]}]
  split: {kind: stratified, test_size: 0.3, seed: 7}
  model: {estimator: sklearn.linear_model.LogisticRegression, params: {C: 1.0, max_iter: 500}}
  metrics: [roc_auc, accuracy]
  drift: {reference: train}
"""
POLICY = loans_policy("fairness: {min_group_size: 20, metrics: {demographic_parity_ratio: {min: 0.8}}}",
                      "drift: {alpha: 0.05}")
SPEC_FILE = "pipelines/loans.yaml"
POLICY_FILE = "policies/test.yaml"


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs") / "ml"


@pytest.fixture
def ran(_template: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """The ml repo with loans loaded by a repo plug-in and gated, run once and committed; copied per test.
    It starts from the session's trained repo: only the stages the changes touch run here."""
    if not _template.exists():
        trained_ml_copy(tmp_path_factory, _template)
        write(_template, "loaders/__init__.py", "")
        write(_template, "loaders/bank.py", LOADER)
        write(_template, SPEC_FILE, SPEC)
        write(_template, POLICY_FILE, POLICY)
        assert run_exe("compile", cwd=_template).exit_code == 0
        done = run_exe("run", "loans", cwd=_template)
        assert done.exit_code in (0, 1), done.stdout + done.stderr  # a gate may fail: its verdict is not tested here
        git("add", "-A", cwd=_template)
        git("commit", "-qm", "ran", cwd=_template)
    return copy_repo(_template, tmp_path / "ml")


def edit(repo: Path, relative: str, old: str, new: str) -> None:
    path = repo / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, (old, relative)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def changed_stages(repo: Path) -> set[str]:
    """The loans stages whose own inputs (params, deps) differ from what dvc.lock recorded."""
    compiled = run_exe("compile", cwd=repo)
    assert compiled.exit_code == 0, compiled.stderr
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", "compiled/loans/dvc.yaml"],
                            cwd=repo, check=True, capture_output=True, text=True)
    return {name.rpartition(":")[2] for name in json.loads(status.stdout)}


def test_the_run_left_every_stage_up_to_date(ran: Path) -> None:
    assert changed_stages(ran) == set()


@pytest.mark.parametrize(("file", "old", "new", "stage"), [
    pytest.param(SPEC_FILE, ', favorable: "no"', "", "gate-fairness", id="favorable-removed"),
    pytest.param(SPEC_FILE, 'positive: "yes", favorable: "no"', 'positive: "yes", favorable: "yes"',
                 "gate-fairness", id="favorable-changed"),
    pytest.param(SPEC_FILE, 'positive: "yes"', 'positive: "no"', "gate-fairness", id="positive"),
    pytest.param(SPEC_FILE, "sensitive: [region, ", "sensitive: [", "gate-fairness", id="sensitive"),
    pytest.param(SPEC_FILE, "seed: 7", "seed: 8", "gate-fairness", id="bootstrap-seed"),
    pytest.param(POLICY_FILE, "min_group_size: 20", "min_group_size: 25", "gate-fairness", id="fairness-settings"),
    pytest.param(SPEC_FILE, "reference: train", "reference: data/raw/loans.csv", "gate-drift", id="drift-reference"),
    pytest.param(SPEC_FILE, "numeric: [income, debt, age]", "numeric: [income, debt]", "gate-drift",
                 id="drift-features"),
    pytest.param(POLICY_FILE, "alpha: 0.05", "alpha: 0.01", "gate-drift", id="drift-settings"),
])
def test_changing_a_field_a_gate_reads_makes_its_stage_run_again(ran: Path, file: str, old: str, new: str,
                                                                 stage: str) -> None:
    edit(ran, file, old, new)

    assert stage in changed_stages(ran)


def test_a_field_no_gate_reads_leaves_the_gates_cached(ran: Path) -> None:
    edit(ran, SPEC_FILE, "metrics: [roc_auc, accuracy]", "metrics: [roc_auc, accuracy, brier]")

    assert changed_stages(ran) == {"evaluate"}


def test_editing_the_loader_plugin_in_the_repository_runs_ingest_again(ran: Path) -> None:
    edit(ran, "loaders/bank.py", "    return pd.read_csv(path)", "    return pd.read_csv(path).head(300)")

    assert changed_stages(ran) == {"ingest"}
    again = run_exe("run", "loans", cwd=ran)
    assert again.exit_code in (0, 1), again.stdout + again.stderr
    assert "ingest" in _ran(again.stdout)
    import pandas as pd

    assert len(pd.read_parquet(ran / "data/loans/dataset.parquet")) == 300


def _ran(stdout: str) -> list[str]:
    """The stages the run table says ran."""
    return [line.split()[0].rpartition(":")[2] for line in stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1] == "ran"]
