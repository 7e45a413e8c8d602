"""What changed since the last recorded run, and the CI matrix that recomputes only that (issue 12).

On a fresh clone, the outputs the last run pushed are pulled from the DVC remote first; then DVC's
status names the plain pipelines to run again, and each family's stage keys its series without
running them (steps/batch.py `plan`). Without a remote, `--base REF` judges by what git says
changed since REF. The matrix itself (shares, bundles, manifests) is executor/shards.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_ci import git
from modelops_ci.commands import run as runner
from modelops_ci.errors import UserError
from modelops_ci.executor import shards
from modelops_ci.executor.shards import Shard, Work
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.offline import apply as stay_offline


@dataclass(frozen=True)
class FamilyChange:
    """A family's series to recompute (with their keys, when known), how many stand, which are gone."""

    todo: list[str]
    unchanged: int
    gone: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Changes:
    """The plain pipelines to run again and each family's changed series."""

    pipelines: list[str]
    families: dict[str, FamilyChange]

    def work(self) -> list[Work]:
        return [(family, series) for family, change in self.families.items() for series in change.todo]

    def units(self) -> list[str]:
        touched = [family for family, change in self.families.items() if change.todo or change.gone]
        return sorted(self.pipelines + touched)

    def lines(self) -> Iterator[str]:
        if not self.units():
            yield "changed: nothing since the last recorded run"
            return
        if self.pipelines:
            yield f"changed: {len(self.pipelines)} pipeline(s): {', '.join(self.pipelines)}"
        for family, change in self.families.items():
            if change.todo or change.gone:
                gone = f", {len(change.gone)} gone" if change.gone else ""
                yield (f"changed: {family}: {len(change.todo)} of {len(change.todo) + change.unchanged} series"
                       f"{gone}: {shards.shown(change.todo)}")


def compiled(root: Path) -> tuple[list[str], list[str]]:
    """The compiled plain pipelines and the batched families."""
    names = sorted(p.parent.name for p in (root / COMPILED_DIR).glob("*/dvc.yaml"))
    families = [name for name in names if runner.is_family(root, name)]
    return [name for name in names if name not in families], families


def pull_outputs(root: Path, names: list[str]) -> Iterator[str]:
    """Pull what the last run pushed for these pipelines, so that only what changed runs again."""
    if not names:
        return
    problem = runner.pull(root, [Layout(name).stages for name in names])
    if problem:
        yield f"pull: {problem}; what is missing is computed again"
    else:
        yield f"pull: the outputs of {len(names)} pipeline(s) are in place"


def changes(root: Path, *, base: str | None = None, plain: bool = True) -> Changes:
    """What a run would recompute: from the pulled outputs (DVC status, the families' keys), or
    with `base`, from the files git says changed since that commit."""
    pipelines, families = compiled(root)
    if base is not None:
        return _changes_since(root, base, pipelines, families)
    stale = runner.stale(root, pipelines) if plain and pipelines else []
    return Changes(stale, {family: _family_plan(root, family) for family in families})


def _family_plan(root: Path, family: str) -> FamilyChange:
    from modelops_ci.steps import batch

    stay_offline()
    planned = batch.plan(root, family)
    return FamilyChange(planned.todo, len(planned.unchanged), planned.gone,
                        {series: planned.keys[series] for series in planned.todo})


# -- since a commit, by git ----------------------------------------------------------------------


def _changes_since(root: Path, base: str, pipelines: list[str], families: list[str]) -> Changes:
    changed = _changed_files(root, base)
    plain = [name for name in pipelines if changed & _inputs(root, name)]
    found = {}
    for family in families:
        touched = changed & _inputs(root, family)
        found[family] = _family_since(root, base, family, touched)
    return Changes(plain, found)


def _changed_files(root: Path, base: str) -> set[str]:
    resolved = git.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}", cwd=root,
                       check=False)
    if resolved.returncode != 0:
        raise UserError(f"--base {base}: no such commit in this clone: fetch it (actions/checkout with "
                        "fetch-depth: 0) or name another branch, tag or commit")
    diff = git.run("diff", "--name-only", "--no-renames", resolved.stdout.strip(), cwd=root)
    return set(diff.stdout.splitlines())


def _inputs(root: Path, name: str) -> set[str]:
    """The files a compiled pipeline is made from: its compiled folder (specs and policies compile
    into it) and every dependency of its stages that no stage makes."""
    import yaml

    layout = Layout(name)
    stages = (yaml.safe_load((root / layout.stages).read_text(encoding="utf-8")) or {}).get("stages") or {}
    made = {_path(out) for body in stages.values() for out in body.get("outs") or []}
    deps = {str(dep) for body in stages.values() for dep in body.get("deps") or []}
    return {layout.stages, layout.params} | (deps - made)


def _path(entry: Any) -> str:
    return str(next(iter(entry)) if isinstance(entry, dict) else entry)


def _family_since(root: Path, base: str, family: str, touched: set[str]) -> FamilyChange:
    """A family's series whose own params changed since `base`; all of them when what they share
    (settings, data, code) changed."""
    from modelops_ci.family_params import load as load_family
    from modelops_ci.steps import batch

    current = batch.load(root, family).params
    series = list(current["series"])
    if not touched:
        return FamilyChange([], len(series))
    layout = Layout(family)
    before = load_family(git.show_file(root, base, layout.params), git.show_file(root, base, layout.series_table))
    if not touched <= {layout.params, layout.series_table} or not before or _shared(before) != _shared(current):
        return FamilyChange(series, 0)
    old = before.get("series") or {}
    todo = [name for name in series if name not in old or old[name] != current["series"][name]]
    return FamilyChange(todo, len(series) - len(todo), sorted(set(old) - set(series)))


def _shared(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key != "series"}


# -- the matrix -------------------------------------------------------------------------------------


def github_matrix(root: Path, per_shard: int) -> tuple[dict[str, list[int]], list[str]]:
    """The GitHub Actions matrix for the families' changed series, and what was found on the way."""
    _, families = compiled(root)
    said = list(pull_outputs(root, families))
    found = changes(root, plain=False)
    said += list(found.lines())
    return shards.matrix(shards.count_shards(len(found.work()), per_shard)), said


def run_shard(root: Path, shard: Shard) -> Iterator[str]:
    """Recompute this shard's share of the changed series and push it as one bundle per family."""
    from modelops_ci.steps import batch

    _, families = compiled(root)
    yield from pull_outputs(root, families)
    found = changes(root, plain=False)
    share = shards.by_family(shards.deal(found.work(), shard.total)[shard.index])
    if not share:
        yield f"shard {shard}: nothing to compute ({len(found.work())} changed series, all in other shards)"
    for family, names in share.items():
        done = batch.run(root, family, only=names)
        keys = {name: found.families[family].keys[name] for name in names}
        shards.write_bundle(root, family, shard, keys)
        where = runner.push_tracked(root, shards.bundle(family, shard.index))
        yield (f"shard {shard}: {family}: computed {done['ran']} series ({shards.shown(names)}); "
               f"pushed {where}")


def restore_shards(root: Path, total: int, found: Changes) -> Iterator[str]:
    """Put every shard's series in place, after checking that every expected bundle is here, pulls
    and holds its series with the keys this commit gives them: otherwise nothing is copied.
    `found`: what changed, before the shards' series are in place."""
    shares = shards.deal(found.work(), total)
    expected = {(family, index): names for index, share in enumerate(shares)
                for family, names in shards.by_family(share).items()}
    missing = [(family, index) for family, index in expected if not (root / shards.pointer(family, index)).is_file()]
    if missing:
        raise UserError(_missing(missing, expected, total))
    pointers = [shards.pointer(family, index) for family, index in expected]
    problem = runner.pull(root, pointers, scm=False)
    problems = [f"shard {index}/{total}: {why}" for (family, index), names in expected.items()
                if (why := shards.bundle_problem(root, family, Shard(index, total),
                                                 {n: found.families[family].keys[n] for n in names}))]
    if problems:
        pulled = f" (pull: {problem})" if problem else ""
        raise UserError("cannot merge the shards, nothing was merged:\n  " + "\n  ".join(problems) + pulled
                        + "\nre-run the shard jobs named, then this job")
    for (family, index), names in expected.items():
        shards.restore_bundle(root, family, index, names)
    shutil.rmtree(root / shards.SHARDS_DIR, ignore_errors=True)  # DVC would read its pointers as stages
    yield f"merge: {len(found.work())} series from {len({i for _, i in expected})} of {total} shard(s) in place"


def _missing(missing: list[tuple[str, int]], expected: dict[tuple[str, int], list[str]], total: int) -> str:
    lines = [f"shard {index}/{total} left no results for {family} "
             f"(expected series {shards.shown(expected[family, index])})" for family, index in missing]
    return ("cannot merge the shards, nothing was merged:\n  " + "\n  ".join(lines)
            + f"\n(no {shards.SHARDS_DIR}/<family>/<shard>.dvc pointer was downloaded for it: its job failed, "
            "was cancelled or did not upload its artifact): re-run the shard jobs named, then this job")
