"""A batched family compiled (issue 12): one folder and one stage for all its series, params that
hold what the series share once, and every series' own params put back exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops_ci.family_params import series_params, split_common
from tests.helpers.cli import run_cli
from tests.helpers.examples import compile_ok
from tests.helpers.family import FAMILY, FAMILY_SPEC, series_names, write_family
from tests.helpers.repos import write

leaves = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2))
trees = st.recursive(leaves, lambda inner: st.dictionaries(st.sampled_from("abcd"), inner, max_size=3),
                     max_leaves=8)
params_trees = st.dictionaries(st.sampled_from(["data", "model", "gates", "x"]), trees, max_size=4)


# No timing decides the test: a busy CI machine draws slowly (the too_slow check failed there).
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(params_trees, min_size=1, max_size=5))
def test_every_series_params_are_put_back_exactly(each: list[dict[str, Any]]) -> None:
    common, own = split_common(each)
    family = {**common, "series": {f"s{i}": extra for i, extra in enumerate(own)}}

    for index, params in enumerate(each):
        rebuilt = series_params(family, f"s{index}")
        assert rebuilt.pop("pipeline") == f"s{index}"
        assert rebuilt == params


def test_shared_settings_are_written_once_and_each_series_holds_only_its_own(empty_repo: Path) -> None:
    write_family(empty_repo, series_names(3))

    out = compile_ok(empty_repo)

    assert "1 pipeline(s) compiled" in out
    assert sorted(p.name for p in (empty_repo / "compiled").iterdir()) == [FAMILY]
    folder = empty_repo / "compiled" / FAMILY
    params, table = yaml.safe_load((folder / "params.yaml").read_text()), (folder / "series.yaml").read_text()
    assert params["batch"] is True and params["task"] == "forecast"
    assert "series" not in params  # DVC parses params.yaml whenever it reads the dvc.yaml beside it
    assert yaml.safe_load(table) == {f"{FAMILY}-s0{i}": {"data": {"filter": {"series": f"s0{i}"}}} for i in range(3)}
    assert f"\n{FAMILY}-s01: {{data: {{filter: {{series: s01}}}}}}\n" in table  # one line per series
    assert params["governance"]["family"] == [{"max_failed": 0}]


def test_the_family_is_one_stage_depending_on_its_params_and_data(empty_repo: Path) -> None:
    write_family(empty_repo, series_names(3))

    compile_ok(empty_repo)

    stages = yaml.safe_load((empty_repo / "compiled" / FAMILY / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["batch"]
    stage = stages["batch"]
    assert stage["cmd"] == f"modelops-ci step batch {FAMILY}"
    assert stage["deps"] == [f"compiled/{FAMILY}/params.yaml", f"compiled/{FAMILY}/series.yaml", "data/panel.csv"]
    assert stage["outs"][:2] == [{f"models/{FAMILY}/series": {"persist": True}},
                                 {f"reports/{FAMILY}/series": {"persist": True}}]
    top = yaml.safe_load((empty_repo / "dvc.yaml").read_text())
    assert top["stages"]["summary"]["deps"] == [f"reports/{FAMILY}/gates.json"]


@pytest.mark.parametrize(("setting", "count", "batched"), [
    ("", 19, False), ("", 20, True), ("  batch: false\n", 30, False), ("  batch: true\n", 2, True)])
def test_auto_batches_from_twenty_items_unless_the_spec_says(empty_repo: Path, setting: str, count: int,
                                                             batched: bool) -> None:
    write_family(empty_repo, series_names(count))
    write(empty_repo, "pipelines/panel.yaml", FAMILY_SPEC.replace("  batch: true\n", setting))

    out = compile_ok(empty_repo)

    compiled = sorted(p.name for p in (empty_repo / "compiled").iterdir())
    assert compiled == ([FAMILY] if batched else [f"{FAMILY}-{n}" for n in series_names(count)])
    assert f"{1 if batched else count} pipeline(s) compiled" in out


def test_batch_without_foreach_is_refused_at_its_line(empty_repo: Path) -> None:
    spec = FAMILY_SPEC.split("  foreach:")[0].replace("filter", "x")
    write(empty_repo, "pipelines/panel.yaml", spec)

    result = run_cli("validate", "-C", empty_repo)

    assert result.exit_code == 2
    assert "pipelines/panel.yaml" in result.stderr and "foreach" in result.stderr


def test_series_governed_by_different_policies_are_refused(empty_repo: Path) -> None:
    write_family(empty_repo, series_names(3))
    write(empty_repo, "policies/one.yaml", (empty_repo / "policies/panel.yaml").read_text()
          .replace("name: panel-policy", "name: one").replace("labels: {domain: panel}", "names: [panel-s01]"))

    result = run_cli("compile", "-C", empty_repo)

    assert result.exit_code == 2
    assert "family panel: series panel-s01 are governed by other policies" in result.stderr
    assert not (empty_repo / "compiled").exists()


@pytest.mark.parametrize(("rule", "series", "allowed"), [
    ({"max_failed": 0}, 300, 0), ({"max_failed": 3}, 2, 3), ({"max_failed_share": 0.02}, 300, 6),
    ({"max_failed_share": 0.02}, 49, 0), ({"max_failed_share": 0.1}, 5, 0), ({"max_failed_share": 1}, 7, 7)])
def test_a_share_of_failed_series_rounds_down_exactly(rule: dict[str, Any], series: int, allowed: int) -> None:
    from modelops_ci.family_params import allowed_failures

    assert allowed_failures(rule, series) == allowed


PANEL_WITH_STRAY_TEXT = """\
series,month,value,note
a,2020-01,1.5,x
b,2020-01,abc,7
a,2020-02,2.5,y
b,2020-02,3,8
c,2020-01,,
c,2020-02,4,
"""


@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_a_series_is_keyed_by_its_rows_typed_as_if_read_alone(name: str) -> None:
    """The panel's row hashes taken at a series' positions give the digest of the series read from
    a file of its own; one series' stray text ('abc') types only that series' column as text."""
    import io

    import pandas as pd

    from modelops_ci.steps.batch import _Panel, _rows_digest

    panel = pd.read_csv(io.StringIO(PANEL_WITH_STRAY_TEXT))
    header, *lines = PANEL_WITH_STRAY_TEXT.splitlines()
    alone = pd.read_csv(io.StringIO("\n".join([header, *(li for li in lines if li.startswith(f"{name},"))])))
    rows, digest = _Panel(panel).rows({"series": name})
    assert [str(t) for t in rows.dtypes] == [str(t) for t in alone.dtypes]
    assert digest == _rows_digest(alone)
    assert _rows_digest(rows.iloc[::-1]) != digest  # the rows' order is part of the series
