"""The project's shape: a light core with the ML stack in an extra, the layout DESIGN §3 names, and a
README whose first screen gives the two commands that `.ci/run` and CI actually use."""

from __future__ import annotations

from tests.helpers.project import project_table, requirement_name


def test_the_ml_extra_holds_the_heavy_stack() -> None:
    extras = project_table()["optional-dependencies"]
    ml = {requirement_name(r) for r in extras["ml"]}
    assert {"dvc", "mlflow", "scikit-learn", "pandas", "fairlearn", "matplotlib", "skops"} <= ml
