"""`::error` annotations at the spec or policy line behind each failed blocking gate.

Annotations follow GitHub's workflow-command rules: `%`, CR and LF are escaped in the message, and
`:` and `,` too in properties (actions/toolkit's escapeData / escapeProperty). Everything taken
from data (reasons, names) is escaped, so no value can end the command and start another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError
from modelops_ci.gates.result import GateResult
from modelops_ci.layout import Layout

if TYPE_CHECKING:
    from modelops_ci.gates.verdict import GatesReport

MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error annotations per step


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int) -> str:
    """`::command key=value,...::message`, escaped as GitHub's runner reads it."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


@dataclass(frozen=True)
class Annotation:
    """A failed blocking gate and the line of the setting behind it."""

    pipeline: str
    gate: str
    status: str
    reason: str
    file: str
    line: int
    col: int = 1

    def command(self) -> str:
        from modelops_ci.report.format import gate_title

        title = f"{self.pipeline}: {gate_title(self.gate)} gate {'failed' if self.status == 'fail' else 'errored'}"
        message = f"{self.pipeline}: {self.reason}"
        return workflow_command("error", message, file=self.file, line=self.line, col=self.col, title=title)


def gate_annotations(root: Path) -> list[Annotation]:
    """One annotation per failed blocking gate in reports/*/gates.json, at its policy or spec line."""
    from modelops_ci.gates.verdict import load
    from modelops_ci.report.load import discover
    from modelops_ci.spec import workspace

    # Every report, current or not: an annotation only ever points at a failure, never says "ready".
    reports = [load(root / Layout(name).gates) for name in discover(root)]
    failed = [pair for report in reports for pair in _blocking(report)]
    if not failed:
        return []
    try:
        space = workspace.read(root)
    except UserError:
        space = None
    governed = {g.pipeline.name: g for g in space.governed} if space else {}
    found = []
    for pipeline, gate, report in failed:
        where = _setting_line(governed.get(pipeline), gate) or (Layout(report).gates, 1, 1)
        found.append(Annotation(pipeline, gate.gate, gate.status, " ".join(gate.reason.split()), *where))
    return found


def _blocking(report: GatesReport) -> list[tuple[str, GateResult, str]]:
    """(pipeline, gate, whose gates.json) for each failed blocking gate; a failed family's are its
    failed series' gates, each at the series' own threshold (its `series` gate only counts them)."""
    if report.series is None:
        return [(report.pipeline, gate, report.pipeline) for gate in report.gates if gate.blocks]
    if report.passed:
        return []
    return [(series.name, gate, report.pipeline) for series in report.failed_series
            for gate in series.gates if gate.blocks]


def commands(found: list[Annotation], limit: int = MAX_ANNOTATIONS) -> list[str]:
    """The workflow commands; past GitHub's per-step limit, one last line says how many more failed."""
    if len(found) <= limit:
        return [a.command() for a in found]
    shown = [a.command() for a in found[: limit - 1]]
    rest = len(found) - len(shown)
    return [*shown, workflow_command("error", f"{rest} more failed gates: see the job summary and reports/",
                                     title="modelops-ci: more failed gates")]


def _setting_line(governed: Any, gate: GateResult) -> tuple[str, int, int] | None:
    """The policy (or pipeline spec) line that sets the threshold the gate failed on."""
    from modelops_ci.spec.nodes import locate_key

    if governed is None:
        return None
    pipeline = governed.pipeline
    sources = [*((p.gates, False) for p in governed.policies), (pipeline.gates, True)]
    for path in _threshold_paths(gate):
        holders = [(gates, own) for gates, own in sources if _has(gates, path)]
        if not holders:
            continue
        effective = _get(governed.gates, path)
        chosen = next((g for g, _ in holders if _get(g, path) == effective), holders[0][0])
        mark = locate_key(chosen, list(path))
        return mark.path, mark.line, mark.col
    mark = pipeline.spec.mark
    return pipeline.source, mark.line, mark.col


def _threshold_paths(gate: GateResult) -> list[tuple[str, ...]]:
    """Where the failed checks' thresholds may be set: deepest first, then the rule that decides
    (a per-feature `alpha` tells less than `max_drifted_share`), then the checks' order."""
    kind = gate.gate
    ranked: list[tuple[tuple[int, bool, int], tuple[str, ...]]] = []
    failed = [c for c in gate.checks if c.status in ("fail", "error")]
    for order, check in enumerate(failed):
        metric = str(check.details.get("metric") or check.name)
        for key in [*(check.threshold or {}), *check.details]:
            for path in ((kind, "metrics", metric, str(key)), (kind, metric, str(key)), (kind, str(key))):
                ranked.append(((len(path), key != "alpha", -order), path))
        for path in ((kind, "metrics", metric), (kind, metric)):
            ranked.append(((len(path), True, -order), path))
    ordered = [path for _, path in sorted(ranked, key=lambda item: item[0], reverse=True)]
    return [*dict.fromkeys(ordered), (kind,)]


def _has(node: Any, path: Iterable[str]) -> bool:
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return False
        node = node[step]
    return True


def _get(node: Any, path: Iterable[str]) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node
