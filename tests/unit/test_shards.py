"""The CI matrix's arithmetic and bundles (executor/shards.py), the `ci` options that drive it, and
the workflow runner's `strategy.matrix` (tests/helpers/workflow_runner.py), all in this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops_ci.errors import UserError
from modelops_ci.executor import shards
from modelops_ci.executor.shards import Shard
from tests.helpers.cli import run_cli
from tests.helpers.workflow_runner import ExpressionError, RunnerError, Scope, expand_matrix

# -- shares ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("changed", "per_shard", "count"), [
    (0, 50, 1), (1, 50, 1), (50, 50, 1), (51, 50, 2), (148, 50, 3), (3, 1, 3), (100_000, 50, 256)])
def test_one_shard_per_so_many_changed_series_from_1_to_256(changed: int, per_shard: int, count: int) -> None:
    assert shards.count_shards(changed, per_shard) == count
    assert shards.matrix(count) == {"shard": list(range(count)), "of": [count]}


def test_shares_are_sorted_dealt_round_robin_disjoint_and_complete() -> None:
    work = [("f", f"s{i:02d}") for i in (7, 3, 1, 0, 9, 4, 2)] + [("e", "x")]
    shares = shards.deal(work, 3)
    assert shares == shards.deal(list(reversed(work)), 3)  # the same on every job, whatever the order found
    assert shares[0] == [("e", "x"), ("f", "s02"), ("f", "s07")]
    assert sorted(item for share in shares for item in share) == sorted(work)
    assert [len(share) for share in shares] == [3, 3, 2]
    assert shards.by_family(shares[0]) == {"e": ["x"], "f": ["s02", "s07"]}


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1/0", "1", "a/b", "0/257", "1/3/4", "1 / 3"])
def test_a_shard_is_i_of_n(text: str) -> None:
    with pytest.raises(UserError, match="give I/N with 0 <= I < N <= 256"):
        shards.parse_shard(text)
    assert shards.parse_shard("2/3") == Shard(2, 3)


def test_ci_refuses_a_bad_shard_and_options_that_do_not_go_together(tmp_path: Path) -> None:
    bad = run_cli("ci", "--shard", "3/3", "-C", tmp_path)
    assert bad.exit_code == 2 and "--shard 3/3: not a shard" in bad.stderr, bad.stderr
    both = run_cli("ci", "--changed", "--merge-shards", "3", "-C", tmp_path)
    assert both.exit_code == 2 and "--changed and --merge-shards do not go together" in both.stderr
    many = run_cli("ci", "--merge-shards", "257", "-C", tmp_path)
    assert many.exit_code == 2 and "257" in many.stderr


# -- bundles -----------------------------------------------------------------------------------------


def _outputs(root: Path, series: str, text: str) -> None:
    for folder in (f"models/fam/series/{series}", f"reports/fam/series/{series}"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "file.txt").write_text(text)


def test_a_bundle_holds_the_shards_series_and_restores_only_them(tmp_path: Path) -> None:
    shard = tmp_path / "shard"
    for series in ("a", "b", "c"):
        _outputs(shard, series, f"new {series}")
    shards.write_bundle(shard, "fam", Shard(1, 3), {"b": "key-b", "c": "key-c"})
    bundle = shard / shards.bundle("fam", 1)
    assert json.loads((bundle / shards.MANIFEST).read_text()) == {
        "version": 1, "family": "fam", "shard": 1, "of": 3, "series": {"b": "key-b", "c": "key-c"}}
    assert sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("file.txt")) == [
        "models/b/file.txt", "models/c/file.txt", "reports/b/file.txt", "reports/c/file.txt"]

    merge = tmp_path / "merge"
    for series in ("a", "b", "c"):
        _outputs(merge, series, f"old {series}")
    (merge / shards.SHARDS_DIR).mkdir(parents=True)
    (merge / shards.SHARDS_DIR / "fam").symlink_to(shard / shards.SHARDS_DIR / "fam")
    expected = {"b": "key-b", "c": "key-c"}
    assert shards.bundle_problem(merge, "fam", Shard(1, 3), expected) == ""
    assert "made by shard 1/3 of fam, not by shard 1/4" in shards.bundle_problem(merge, "fam", Shard(1, 4), expected)
    other = shards.bundle_problem(merge, "fam", Shard(1, 3), {**expected, "c": "key-c2", "d": "key-d"})
    assert "lacks series c, d" in other
    assert "cannot be read" in shards.bundle_problem(merge, "fam", Shard(0, 3), expected)
    shards.restore_bundle(merge, "fam", 1, ["b", "c"])
    texts = {s: (merge / f"models/fam/series/{s}/file.txt").read_text() for s in ("a", "b", "c")}
    assert texts == {"a": "old a", "b": "new b", "c": "new c"}


# -- the workflow runner's matrix -------------------------------------------------------------------


def test_the_matrix_expands_as_github_does() -> None:
    assert expand_matrix({"os": ["linux", "mac"], "py": [3.11, 3.12]}) == [
        {"os": "linux", "py": 3.11}, {"os": "linux", "py": 3.12}, {"os": "mac", "py": 3.11}, {"os": "mac", "py": 3.12}]
    matrix = {"fruit": ["apple", "pear"], "animal": ["cat", "dog"],
              "exclude": [{"fruit": "pear", "animal": "cat"}],
              "include": [{"color": "green"}, {"color": "pink", "animal": "cat"}, {"fruit": "apple", "shape": "circle"},
                          {"fruit": "banana"}, {"fruit": "banana", "animal": "cat"}]}
    # GitHub's documented example: an include entry is added where it overwrites no original value
    # (later ones may overwrite what an earlier include added), else it is a combination of its own.
    assert expand_matrix(matrix) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"}, {"fruit": "banana", "animal": "cat"}]
    assert expand_matrix({"include": [{"shard": 0}, {"shard": 1}]}) == [{"shard": 0}, {"shard": 1}]
    with pytest.raises(RunnerError, match="Matrix vector 'shard' does not contain any values"):
        expand_matrix({"shard": []})


def test_from_json_and_the_matrix_context() -> None:
    scope = Scope({"needs": {"plan": {"outputs": {"matrix": '{"shard": [0, 1], "of": [2]}'}}}, "matrix": {"shard": 1}})
    assert scope.evaluate("fromJSON(needs.plan.outputs.matrix)") == {"shard": [0, 1], "of": [2]}
    assert scope.interpolate("${{ fromJSON(needs.plan.outputs.matrix).of[0] }}/${{ matrix.shard }}") == "2/1"
    with pytest.raises(ExpressionError, match="not JSON"):
        scope.evaluate("fromJSON('{')")
    with pytest.raises(ExpressionError, match=r"only defined in a job with `strategy\.matrix`"):
        Scope({"github": {}}).evaluate("matrix.shard")
