"""What `run` and `ci` print: a line per finished stage (on a terminal), a summary table, and one
final line with the overall verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_ci.executor.outcome import RunReport, StageRun

if TYPE_CHECKING:
    from modelops_ci.gates.verdict import Verdict

KEY_METRICS = 3
UNCHANGED = "cached (inputs unchanged)"


def stage_line(stage: StageRun, done: int, planned: int) -> str:
    """`[n of N] pipeline:stage ran (1.2s)`: N counts every stage DVC visits, cached ones too."""
    state = "ran" if stage.ran else "cached"
    return f"  [{done} of {planned}] {stage.pipeline}:{stage.stage} {state} ({stage.seconds:.1f}s)"


def summary_table(report: RunReport) -> str:
    rows = [("stage", "status", "seconds", "metrics")]
    for stage, status in zip(report.stages, _statuses(report.stages), strict=True):
        rows.append((f"{stage.pipeline}:{stage.stage}", status, f"{stage.seconds:.1f}", _key_metrics(stage)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
             for row in rows]
    ran = sum(s.ran for s in report.stages)
    total = sum(s.seconds for s in report.stages)
    lines.append(f"{ran} of {len(report.stages)} stage(s) ran in {total:.1f}s"
                 + ("; outputs pushed to the DVC remote" if report.pushed else ""))
    return "\n".join(line.rstrip() for line in lines)


def _statuses(stages: list[StageRun]) -> list[str]:
    """`ran` or `cached`; a stage cached after an earlier stage of its pipeline ran says why DVC did
    not run it again: what it reads came out byte-identical."""
    statuses, upstream_ran = [], set()
    for stage in stages:
        if stage.ran:
            statuses.append("ran")
            upstream_ran.add(stage.pipeline)
        elif stage.pipeline in upstream_ran:
            statuses.append(UNCHANGED)
        else:
            statuses.append("cached")
    return statuses


def _key_metrics(stage: StageRun) -> str:
    """The metrics the gates judge first, then the others, up to KEY_METRICS in all."""
    gated = [name for name in stage.gated if name in stage.metrics]
    ordered = gated + [name for name in stage.metrics if name not in gated]
    shown = [(name, stage.metrics[name]) for name in ordered[:max(KEY_METRICS, len(gated))]]
    return ", ".join(f"{name}={'n/a' if value is None else format(value, '.4g')}" for name, value in shown)


def verdict_line(report: RunReport, verdicts: list[Verdict]) -> str:
    """One line for the whole run: how many pipelines failed their gates, and how many could not
    run to the end (a stage failed); '' when no pipeline has gates and none failed."""
    broken = report.broken
    judged = [v for v in verdicts if v.pipeline not in broken]
    total = len(broken) + len(judged)
    if not total:
        return ""
    failed = sum(not v.passed for v in judged)
    noun = "pipeline" if total == 1 else "pipelines"
    their = "its" if total == 1 else "their"
    if not failed and not broken:
        return f"verdict: {total} of {total} {noun} passed {their} gates"
    outcomes = [(failed, f"failed {their} gates"), (len(broken), "could not run to the end (a stage failed)")]
    (count, what), *rest = [(count, what) for count, what in outcomes if count]
    return f"verdict: {count} of {total} {noun} {what}" + "".join(f"; {n} {said}" for n, said in rest)
