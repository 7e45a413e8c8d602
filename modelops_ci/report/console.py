"""What `run` prints: a line per finished stage (on a terminal) and a summary table."""

from __future__ import annotations

from modelops_ci.executor.outcome import RunReport, StageRun

KEY_METRICS = 3


def stage_line(stage: StageRun) -> str:
    state = "ran" if stage.ran else "cached"
    return f"  {stage.pipeline}:{stage.stage} {state} ({stage.seconds:.1f}s)"


def summary_table(report: RunReport) -> str:
    rows = [("stage", "status", "seconds", "metrics")]
    for stage in report.stages:
        metrics = ", ".join(f"{k}={'n/a' if v is None else format(v, '.4g')}"
                            for k, v in list(stage.metrics.items())[:KEY_METRICS])
        rows.append((f"{stage.pipeline}:{stage.stage}", "ran" if stage.ran else "cached",
                     f"{stage.seconds:.1f}", metrics))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
             for row in rows]
    ran = sum(s.ran for s in report.stages)
    total = sum(s.seconds for s in report.stages)
    lines.append(f"{ran} of {len(report.stages)} stage(s) ran in {total:.1f}s"
                 + ("; outputs pushed to the DVC remote" if report.pushed else ""))
    return "\n".join(line.rstrip() for line in lines)
