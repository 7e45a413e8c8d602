"""What `run` and `ci` print at scale (issue 11, items 10, 12 and 16): the progress line counts `n of N`,
the table shows the gated metrics first and says why a stage after one that ran stayed cached, one
final line gives the verdict, and a run that kept going exits with the most serious failure."""

from __future__ import annotations

import pytest

from modelops_ci.commands.run import enforce
from modelops_ci.errors import CheckFailed, StagesFailed
from modelops_ci.executor.outcome import RunReport, StageFailure, StageRun
from modelops_ci.gates.verdict import GatesReport, Verdict
from modelops_ci.report.console import stage_line, summary_table, verdict_line

METRICS = {"accuracy": 0.81, "brier": 0.13, "f1": 0.9, "roc_auc": 0.77}


def verdict(pipeline: str, passed: bool = True) -> Verdict:
    reason = "all gates passed" if passed else "performance: ROC AUC is not surely at least 0.9"
    return Verdict(pipeline, GatesReport(pipeline, "pass" if passed else "fail", reason, 1))


def rows(table: str) -> dict[str, str]:
    """Each table row's status and metrics cells, by stage."""
    cells = [line.split("  ") for line in table.splitlines()[1:-1]]
    return {row[0]: "  ".join(c for c in row[1:] if c).strip() for row in cells}


def test_the_progress_line_counts_n_of_n() -> None:
    line = stage_line(StageRun("sales", "train", True, 1.25), 3, 12)
    assert line == "  [3 of 12] sales:train ran (1.2s)"


def test_the_gated_metrics_come_first() -> None:
    gated = StageRun("cards", "evaluate", True, 2.0, METRICS, gated=("roc_auc",))
    plain = StageRun("other", "evaluate", True, 2.0, METRICS)
    shown = rows(summary_table(RunReport([gated, plain])))
    assert shown["cards:evaluate"].endswith("roc_auc=0.77, accuracy=0.81, brier=0.13")
    assert shown["other:evaluate"].endswith("accuracy=0.81, brier=0.13, f1=0.9")


def test_every_gated_metric_is_shown_even_past_the_usual_three() -> None:
    many = StageRun("cards", "evaluate", True, 2.0, METRICS, gated=("brier", "f1", "roc_auc", "missing"))
    assert rows(summary_table(RunReport([many])))["cards:evaluate"].endswith("brier=0.13, f1=0.9, roc_auc=0.77")


def test_a_stage_cached_after_its_inputs_ran_says_they_were_unchanged() -> None:
    stages = [StageRun("cards", "evaluate", True, 3.0), StageRun("cards", "gate-performance", False, 0.1),
              StageRun("loans", "ingest", False, 0.1), StageRun("loans", "gate-drift", False, 0.1)]
    shown = rows(summary_table(RunReport(stages)))
    assert shown["cards:gate-performance"].startswith("cached (inputs unchanged)")
    assert shown["loans:ingest"].startswith("cached") and "unchanged" not in shown["loans:ingest"]
    assert "unchanged" not in shown["loans:gate-drift"], "nothing of loans ran: plainly cached"


def test_the_verdict_line_counts_failed_gates_and_broken_pipelines() -> None:
    passed = [verdict(f"series-{i:03d}") for i in range(136)]
    failed = [verdict(f"bad-{i:02d}", passed=False) for i in range(12)]
    assert verdict_line(RunReport(), passed + failed) == "verdict: 12 of 148 pipelines failed their gates"
    assert verdict_line(RunReport(), passed) == "verdict: 136 of 136 pipelines passed their gates"
    assert verdict_line(RunReport(), passed[:1]) == "verdict: 1 of 1 pipeline passed its gates"
    broken = RunReport(failures=[StageFailure("series-064", "ingest", 2, "21 months missing")])
    assert verdict_line(broken, passed + failed) == (
        "verdict: 12 of 148 pipelines failed their gates; 1 could not run to the end (a stage failed)")
    assert verdict_line(broken, []) == "verdict: 1 of 1 pipeline could not run to the end (a stage failed)"
    assert verdict_line(RunReport(), []) == ""


def test_a_run_that_kept_going_exits_with_its_most_serious_failure() -> None:
    def failing(*codes: int) -> RunReport:
        return RunReport(failures=[StageFailure(f"p{i}", "ingest", code, f"said {i}") for i, code in enumerate(codes)])

    for codes, expected in (((2,), 2), ((1,), 1), ((1, 2), 2), ((2, 3, 1), 3)):
        with pytest.raises(StagesFailed) as raised:
            enforce(failing(*codes), [])
        assert raised.value.exit_code == expected, codes
    with pytest.raises(CheckFailed):
        enforce(RunReport(), [verdict("cards", passed=False)])
    enforce(RunReport(), [verdict("cards")])


def test_the_failure_report_names_each_stage_its_message_and_the_other_gate_failures() -> None:
    report = RunReport(failures=[StageFailure("series-064", "ingest", 2, "data.csv: 21 months missing\nfill them")],
                       skipped=[f"series-064:{s}" for s in ("split", "train", "evaluate")])
    stale = Verdict("series-064", None, stale="reports/series-064/gates.json is missing")
    with pytest.raises(StagesFailed) as raised:
        enforce(report, [stale, verdict("series-001"), verdict("series-002", passed=False)])
    lines = str(raised.value).splitlines()
    assert lines[:3] == ["1 stage failed; every stage that does not need its outputs ran:",
                         "  series-064:ingest (exit 2): data.csv: 21 months missing", "    fill them"]
    assert lines[3].startswith("3 stage(s) skipped: series-064:split, series-064:train, series-064:evaluate")
    assert lines[4].startswith("gate(s) failed: series-002: performance")
    assert "gates.json is missing" not in str(raised.value), "the broken pipeline's missing verdict is no news"
