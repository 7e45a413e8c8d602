"""The data steps on good data: ingest from each kind of source, the data profile, and each kind of split.

Each test writes its specs and data into a fresh folder, runs `modelops-ci compile`, then the steps one by
one (`modelops-ci step STEP PIPELINE`), and checks the tables and the profile they write against the
source data, read back with pandas.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_exe
from tests.helpers.repos import write
from tests.helpers.steps import dataset, spec


@pytest.fixture
def repo(empty_repo: Path) -> Path:
    """A folder with pipelines/ and policies/: the steps need no git or DVC."""
    return empty_repo


# --- ingest: sources -------------------------------------------------------------------------------


PLUGIN = '''\
"""A data loader of this repo, for `source: {plugin: ...}`."""
import pandas as pd


def load(rows=10, region="north"):
    return pd.DataFrame({
        "income": [float(i % 17) for i in range(rows)],
        "region": [region if i % 3 else "south" for i in range(rows)],
        "default": ["yes" if i % 4 == 0 else "no" for i in range(rows)],
    })
'''


@pytest.mark.parametrize(("imports", "plugin"), [
    ("", "repo_loaders.credit:load"),  # package.module:callable
    ("", "repo_loaders.credit.load"),  # package.module.callable
    ("imports: {credit_loader: repo_loaders.credit:load}\n", "credit_loader"),  # a name under imports:
])
def test_ingest_from_a_plugin_callable_in_the_repo(repo: Path, imports: str, plugin: str) -> None:
    write(repo, "repo_loaders/__init__.py", "")
    write(repo, "repo_loaders/credit.py", PLUGIN)
    spec(repo, f"""\
apiVersion: modelops/v1
kind: Pipeline
metadata: {{name: plug}}
{imports}spec:
  task: classification
  data:
    source: {{plugin: {plugin}, args: {{rows: 60, region: east}}}}
    target: {{column: default, positive: "yes"}}
  split: {{kind: stratified, test_size: 0.25, seed: 1}}
  model: {{estimator: sklearn.linear_model.LogisticRegression}}
  metrics: [accuracy]
""", "plug")

    # In a process of its own, as DVC runs it: the repo is not on the path, the step puts it there.
    result = run_exe("step", "ingest", "plug", cwd=repo)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "plug ingest: rows=60, columns=3\n"
    expected = pd.DataFrame({  # the loader's rows for the spec's args (rows=60, region=east)
        "income": [float(i % 17) for i in range(60)],
        "region": ["east" if i % 3 else "south" for i in range(60)],
        "default": ["yes" if i % 4 == 0 else "no" for i in range(60)],
    })
    pd.testing.assert_frame_equal(dataset(repo, "plug"), expected)
