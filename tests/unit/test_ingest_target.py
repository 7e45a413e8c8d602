"""The target at ingest (issue 11): `favorable` and `positive` must be classes the target takes (item 2),
and rows with a missing target are refused, dropped or filled as `data.target.missing` says (item 11).

Each test writes the loans spec and data into a fresh folder, compiles, and runs `modelops-ci step
ingest` in this process.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.data import loans_csv
from tests.helpers.repos import write
from tests.helpers.specs import LOANS_SPEC
from tests.helpers.steps import dataset, loans, spec, step

LOANS_CSV = "data/raw/loans.csv"
TARGET = 'target: {column: default, positive: "yes"}'


def loans_with(repo: Path, target: str, frame: pd.DataFrame | None = None) -> None:
    """The loans pipeline with `target` as its spec.data.target line, on `frame` (default: the loans table)."""
    if frame is None:
        write(repo, LOANS_CSV, loans_csv())
    else:
        write(repo, LOANS_CSV, frame.to_csv(index=False))
    spec(repo, LOANS_SPEC.replace(TARGET, target))


def refused(repo: Path) -> str:
    result = run_cli("step", "ingest", "loans", cwd=repo)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert not (repo / "data/loans/dataset.parquet").exists()
    return result.stderr.strip()


def with_missing_targets(rows: list[int]) -> pd.DataFrame:
    frame = loans()
    frame.loc[rows, "default"] = None
    return frame


# -- item 2: the classes --------------------------------------------------------------------------


def test_a_favorable_class_the_target_never_takes_is_refused_naming_the_classes(empty_repo: Path) -> None:
    loans_with(empty_repo, 'target: {column: default, positive: "yes", favorable: approved}')

    assert refused(empty_repo) == ("pipelines/loans.yaml:10: spec.data.target.favorable: 'approved' is not a "
                                   "class of 'default' (found: no, yes): name one of the classes found")


def test_a_positive_class_the_target_never_takes_is_refused_the_same_way(empty_repo: Path) -> None:
    loans_with(empty_repo, 'target: {column: default, positive: "Yes"}')

    assert refused(empty_repo) == ("pipelines/loans.yaml:10: spec.data.target.positive: 'Yes' is not a "
                                   "class of 'default' (found: no, yes): name one of the classes found")


def test_a_favorable_class_the_target_takes_is_accepted(empty_repo: Path) -> None:
    loans_with(empty_repo, 'target: {column: default, positive: "yes", favorable: "no"}')

    step(empty_repo, "ingest")

    assert set(dataset(empty_repo)["default"]) == {"no", "yes"}


# -- item 11: missing targets ---------------------------------------------------------------------


def test_missing_targets_are_refused_by_default_saying_how_to_drop_or_fill_them(empty_repo: Path) -> None:
    loans_with(empty_repo, TARGET, with_missing_targets([3, 9]))

    message = refused(empty_repo)

    assert message.startswith("pipelines/loans.yaml:10: spec.data.target.column: target 'default' is missing "
                              "in 2 of 400 rows (first at data/raw/loans.csv row 4): ")
    assert "data.target.missing: drop" in message


def test_missing_targets_dropped_when_the_spec_says_drop(empty_repo: Path) -> None:
    source = with_missing_targets([3, 9, 17])
    loans_with(empty_repo, 'target: {column: default, positive: "yes", missing: drop}', source)

    summary = step(empty_repo, "ingest")

    kept = dataset(empty_repo)
    assert len(kept) == 397
    expected = source.drop(index=[3, 9, 17]).reset_index(drop=True)
    pd.testing.assert_series_equal(kept["income"], expected["income"])
    assert "rows=397, columns=6, dropped_missing_target=3" in summary


def test_missing_targets_filled_when_the_spec_gives_a_value(empty_repo: Path) -> None:
    loans_with(empty_repo, 'target: {column: default, positive: "yes", missing: {fill: "no"}}',
               with_missing_targets([3, 9]))

    step(empty_repo, "ingest")

    kept = dataset(empty_repo)
    assert len(kept) == 400
    assert list(kept.loc[[3, 9], "default"]) == ["no", "no"]
    assert kept["default"].notna().all()


def test_a_fill_value_that_is_not_a_class_is_refused(empty_repo: Path) -> None:
    loans_with(empty_repo, 'target: {column: default, positive: "yes", missing: {fill: maybe}}',
               with_missing_targets([3]))

    assert refused(empty_repo).startswith("pipelines/loans.yaml:10: spec.data.target.missing.fill: 'maybe' is "
                                          "not a class of 'default' (found: no, yes)")


def test_dropping_every_row_is_refused(empty_repo: Path) -> None:
    frame = loans().assign(default=None)
    loans_with(empty_repo, 'target: {column: default, positive: "yes", missing: drop}', frame)

    assert "no rows are left" in refused(empty_repo)


@pytest.mark.parametrize("missing", ["discard", "{fill: [1, 2]}", "{drop: true}"])
def test_a_missing_setting_outside_the_language_is_refused_by_validate(empty_repo: Path, missing: str) -> None:
    write(empty_repo, "pipelines/loans.yaml",
          LOANS_SPEC.replace(TARGET, f'target: {{column: default, positive: "yes", missing: {missing}}}'))

    result = run_cli("validate", "-C", empty_repo)

    assert result.exit_code == 2, result.stdout
    assert "pipelines/loans.yaml:10:" in result.stderr and "spec.data.target.missing" in result.stderr
