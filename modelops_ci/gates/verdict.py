"""A pipeline's verdict: its gates.json read back, whether it is this commit's (bound through
compiled/<p>/dvc.lock), the lines `run`/`ci`/`gate` print and the exit code they decide (0 all
passed, 1 any blocking gate failed or no verdict for this commit).

A batched family (DESIGN §9) is one unit here: its gates.json holds the family's verdict (its
`series` gate counts the failed series against the policy's rule) and each series' own results,
and its one `batch` stage binds that report to the commit as a pipeline's `gates` stage does."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modelops_ci.errors import CheckFailed, UserError
from modelops_ci.gates.result import GateResult
from modelops_ci.layout import COMPILED_DIR, Layout

GATES_STAGE = "gates"  # the stage of a pipeline that writes its gates.json
SHOWN_SERIES = 10  # failed series a family's verdict lines name one by one


@dataclass(frozen=True)
class SeriesResult:
    """One series of a batched family as the family's gates.json lists it: its verdict and its
    gates' results in brief (its full results are in reports/<family>/series/<name>/gates.json)."""

    name: str
    verdict: str  # "pass" or "fail"
    reason: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    rows: int = 0
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesResult:
        """An item of a family's `series` that passed its schema check; a brief check has no reason."""
        gates = [GateResult.from_json({**g, "checks": [{"reason": "", **c} for c in g.get("checks") or []]})
                 for g in data["gates"]]
        metrics = {str(k): v for k, v in (data.get("metrics") or {}).items()}
        return cls(str(data["series"]), str(data["verdict"]), str(data["reason"]), metrics,
                   int(data.get("rows") or 0), gates)


@dataclass(frozen=True)
class GatesReport:
    """A pipeline's gates.json as the reports read it: the verdict and every gate's result."""

    pipeline: str
    verdict: str  # "pass" or "fail"
    reason: str
    version: int
    policies: list[str] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    series: list[SeriesResult] | None = None  # a batched family's series (worst first); None: a pipeline
    allowed: int | None = None  # a family's: how many series its policy lets fail (its `series` gate)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def family(self) -> bool:
        return self.series is not None

    @property
    def failed_series(self) -> list[SeriesResult]:
        return [s for s in self.series or [] if not s.passed]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GatesReport:
        """A gates.json that passed its schema check (report.load.validate)."""
        series = data.get("series")
        return cls(str(data["pipeline"]), str(data["verdict"]), str(data["reason"]), int(data["version"]),
                   [str(p) for p in data.get("policies") or []],
                   [GateResult.from_json(g) for g in data["gates"]],
                   None if series is None else [SeriesResult.from_json(s) for s in series],
                   _allowed(data["gates"]))


@dataclass(frozen=True)
class Verdict:
    """A pipeline's gates.json, read back; without a report, `stale` says why there is no verdict
    for this commit."""

    pipeline: str
    report: GatesReport | None
    stale: str = ""

    @property
    def passed(self) -> bool:
        return not self.stale and self.report is not None and self.report.passed


def _allowed(gates: list[Mapping[str, Any]]) -> int | None:
    """The failed series a family's `series` gate allows (its threshold's max)."""
    rule = next((g for g in gates if g.get("gate") == "series"), {})
    allowed = (rule.get("threshold") or {}).get("max")
    return int(allowed) if isinstance(allowed, int | float) and not isinstance(allowed, bool) else None


def gated_pipelines(root: Path, names: Iterable[str] = ()) -> list[str]:
    """Compiled pipelines that have gates, and batched families (every series is gated; the
    family has one verdict): all, or the named ones — each must exist."""
    compiled = {p.parent.name: p for p in sorted((root / COMPILED_DIR).glob("*/dvc.yaml"))}
    wanted = list(names) or list(compiled)
    unknown = [n for n in wanted if n not in compiled]
    if unknown:
        raise UserError(f"no compiled pipeline {', '.join(unknown)}: run `modelops-ci compile` "
                        f"(compiled: {', '.join(compiled) or 'none'})")
    return [n for n in wanted if _verdict_stage(compiled[n].read_text(encoding="utf-8"))]


def _verdict_stage(stages: str) -> str:
    """The stage of a compiled dvc.yaml that writes the gates.json ('' when none does)."""
    from modelops_ci.executor.family import BATCH_STAGE

    return next((name for name in (GATES_STAGE, BATCH_STAGE) if f"\n  {name}:\n" in stages), "")


def read(root: Path, name: str) -> Verdict:
    return Verdict(name, load(root / Layout(name).gates))


def load(path: Path) -> GatesReport:
    """gates.json, checked against the shipped schema: a report that is not one is refused."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no gates report: run the pipeline's gate stages first (`modelops-ci run`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the gates report ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): re-run the gate stages") from None
    validate(report, str(path))
    return GatesReport.from_json(report)


def validate(report: Any, source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    problems = sorted(validator.iter_errors(report), key=lambda e: [str(p) for p in e.absolute_path])
    if problems:
        lines = [f"{source}: {_json_path(p.absolute_path)}: {p.message}" for p in problems[:10]]
        more = f"\n... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise UserError("not a valid gates report (schema spec/schemas/gates.json):\n" + "\n".join(lines) + more
                        + "\nre-run the gate stages (`modelops-ci run`) to rewrite it")


@cache
def schema() -> dict[str, Any]:
    text = resources.files("modelops_ci.spec").joinpath("schemas", "gates.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _json_path(parts: Iterable[str | int]) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return "$" + path


def read_current(root: Path, name: str) -> Verdict:
    """The pipeline's verdict if its gates.json was produced for the inputs in the workspace (the
    commit's), else a Verdict that says why not and never passes."""
    why = why_stale(root, name)
    if why:
        return Verdict(name, None, stale=why)
    return read(root, name)


def lines(verdicts: list[Verdict]) -> list[str]:
    """One line per gate: pipeline, gate, status, reason; under a family's `series` gate, one line
    per failed series (the first SHOWN_SERIES)."""
    out = []
    for verdict in verdicts:
        if verdict.report is None:
            out.append(f"{verdict.pipeline}: NO VERDICT for this commit: {verdict.stale}")
            continue
        report = verdict.report
        size = f" (a family of {len(report.series)} series)" if report.series is not None else ""
        out.append(f"{verdict.pipeline}: {report.verdict.upper()}{size}")
        for result in report.gates:
            flag = " (advisory)" if result.advisory else ""
            out.append(f"  {result.gate:<14} {result.status:<5}{flag} {result.reason}")
        out += _series_lines(report)
    return out


def _series_lines(report: GatesReport) -> list[str]:
    failed = report.failed_series
    shown = [f"    {s.name}: {s.reason}" for s in failed[:SHOWN_SERIES]]
    if len(failed) > SHOWN_SERIES:
        shown.append(f"    and {len(failed) - SHOWN_SERIES} more failed series: every series is in "
                     f"{Layout(report.pipeline).reports}/report.html (`modelops-ci report`)")
    return shown


def enforce(verdicts: list[Verdict]) -> None:
    """Exit 1 (CheckFailed) when any pipeline's verdict is fail."""
    failed = [v for v in verdicts if not v.passed]
    if failed:
        reasons = "; ".join(f"{v.pipeline}: {_failure(v)}" for v in failed)
        raise CheckFailed(f"gate(s) failed: {reasons}")


def _failure(verdict: Verdict) -> str:
    if verdict.report is None:
        return f"no verdict for this commit: {verdict.stale}"
    return verdict.report.reason


# -- is gates.json this commit's verdict? --------------------------------------------------------
#
# gates.json is an output recorded in compiled/<p>/dvc.lock, so it cannot name the commit holding
# it. It is bound to the commit through the lock instead: its md5 is the one the lock records for
# the gates stage, every stage upstream of the gates ran on what the stage before it made (the
# lock's chain is unbroken: no run stopped half-way), and every input and params value of those
# stages that is in the workspace is the one the lock records. Data and models that are not
# checked out (a reporting job without `dvc pull`) are judged by the chain alone. A family's
# gates.json is written by its one `batch` stage: the same checks, on a chain of one stage.


def why_stale(root: Path, name: str) -> str:
    """Why reports/<name>/gates.json is not the verdict for the workspace's inputs ('' when it is)."""
    layout = Layout(name)
    rerun = f"run `modelops-ci run {name}` (and commit {layout.lock} and {layout.reports}/)"
    if not (root / layout.gates).is_file():
        return f"{layout.gates} is missing (a stage failed, or the gates have not run): {rerun}"
    try:
        problem = _first_problem(root, layout)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problem = f"{layout.lock} or {layout.stages} cannot be read ({exc})"
    return f"{problem}: {rerun}" if problem else ""


def _first_problem(root: Path, layout: Layout) -> str:
    from modelops_ci.registry.evidence import parse_lock

    raw = (root / layout.lock).read_bytes() if (root / layout.lock).is_file() else b""
    if not raw:
        return f"{layout.lock} is missing: the gates of {layout.name} have no recorded run"
    digests = parse_lock(raw).get("stages") or {}  # text: an md5 of digits stays text
    values = (yaml.load(raw, Loader=_Yaml12Loader) or {}).get("stages") or {}  # noqa: S506 - a SafeLoader
    from modelops_ci.executor.family import BATCH_STAGE

    defined = (yaml.safe_load((root / layout.stages).read_text(encoding="utf-8")) or {}).get("stages") or {}
    last = BATCH_STAGE if BATCH_STAGE in defined else GATES_STAGE
    chain = _upstream(defined, last)
    checks = (_missing_stages(layout, defined, digests, chain, last), _report_digest(root, layout, digests, last),
              _broken_chain(layout, digests, chain), _changed_files(root, layout, digests, chain),
              _changed_params(root, layout, values, chain))
    return next((problem for problem in checks if problem), "")


def _upstream(defined: dict[str, Any], last: str) -> list[str]:
    """`last` and every stage it depends on, in the order dvc.yaml lists them."""
    producer = {_path(out): name for name, body in defined.items() for out in body.get("outs") or []}
    wanted, todo = set(), [last]
    while todo:
        name = todo.pop()
        if name in wanted or name not in defined:
            continue
        wanted.add(name)
        todo += [producer[dep] for dep in defined[name].get("deps") or [] if dep in producer]
    return [name for name in defined if name in wanted]


def _path(entry: Any) -> str:
    return str(next(iter(entry)) if isinstance(entry, dict) else entry)


def _missing_stages(layout: Layout, defined: dict[str, Any], lock: dict[str, Any], chain: list[str],
                    last: str) -> str:
    if last not in chain:
        return f"{layout.stages} has no {last} stage: run `modelops-ci compile`"
    for name in chain:
        if name not in lock:
            return f"stage '{name}' has no result in {layout.lock}: it never finished"
        if str(lock[name].get("cmd")) != str(defined[name].get("cmd")):
            return f"stage '{name}' of {layout.stages} changed since it ran"
    return ""


def _report_digest(root: Path, layout: Layout, lock: dict[str, Any], last: str) -> str:
    recorded = {str(out.get("path")): str(out.get("md5")) for out in lock[last].get("outs") or []}
    if recorded.get(layout.gates) != _md5(root / layout.gates):
        return f"{layout.gates} is not the report {layout.lock} records (it was made for other inputs)"
    return ""


def _broken_chain(layout: Layout, lock: dict[str, Any], chain: list[str]) -> str:
    made = {str(out.get("path")): (name, str(out.get("md5"))) for name in chain for out in lock[name].get("outs") or []}
    for name in chain:
        for dep in lock[name].get("deps") or []:
            producer, md5 = made.get(str(dep.get("path")), ("", str(dep.get("md5"))))
            if md5 != str(dep.get("md5")):
                return (f"stage '{name}' last ran on another {dep.get('path')} than stage '{producer}' "
                        f"last made ({layout.lock}): a run stopped between them")
    return ""


def _changed_files(root: Path, layout: Layout, lock: dict[str, Any], chain: list[str]) -> str:
    for name in chain:
        for dep in lock[name].get("deps") or []:
            path = root / str(dep.get("path"))
            if path.is_file() and _md5(path) != str(dep.get("md5")):
                return f"{dep.get('path')} changed since stage '{name}' ran"
    return ""


def _changed_params(root: Path, layout: Layout, lock: dict[str, Any], chain: list[str]) -> str:
    for name in chain:
        for file, recorded in (lock[name].get("params") or {}).items():
            current = yaml.load((root / str(file)).read_text(encoding="utf-8"), Loader=_Yaml12Loader) or {}  # noqa: S506
            for key, value in recorded.items():
                if _dotted(current, str(key)) != value:
                    return f"{file}: '{key}' changed since stage '{name}' ran"
    return ""


def _dotted(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _md5(path: Path) -> str:
    """The md5 DVC 3 records for a file (of its bytes); '' for a missing file."""
    if not path.is_file():
        return ""
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not a security check
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans and floats: DVC writes dvc.lock as YAML 1.2, where
    `yes` (a class label) is a string and `1e-06` (a tolerance) a float, and params.yaml says the same."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2's core schema float, whose exponent needs no dot (PyYAML's 1.1 pattern reads `1e-06` as text)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))
