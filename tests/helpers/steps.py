"""The steps run in this process on a folder of specs and data (no git, no DVC), and what they write."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from tests.helpers.cli import run_cli
from tests.helpers.data import loans_csv
from tests.helpers.repos import write


def spec(repo: Path, text: str, name: str = "loans") -> None:
    write(repo, f"pipelines/{name}.yaml", text)
    compiled = run_cli("compile", cwd=repo)
    assert compiled.exit_code == 0, compiled.stderr


def step(repo: Path, name: str, pipeline: str = "loans") -> str:
    result = run_cli("step", name, pipeline, cwd=repo)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def loans(rows: int = 400) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(loans_csv(rows)))


def dataset(repo: Path, pipeline: str = "loans") -> pd.DataFrame:
    return pd.read_parquet(repo / f"data/{pipeline}/dataset.parquet")
