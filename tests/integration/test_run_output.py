"""What `modelops-ci run` prints: per-stage progress on a terminal only, then a summary table.

One real git + DVC repo serves the module: `sales` runs first under a pseudo-terminal, then
`loans` runs with its output piped, then `--all` runs again and finds everything cached.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.cli import Result, run_exe
from tests.helpers.paths import BIN
from tests.helpers.repos import make_ml_repo

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

STAGES = ("ingest", "split", "train", "evaluate")
HEADER = ("stage", "status", "seconds", "metrics")
SUMMARY = re.compile(r"^(\d+) of (\d+) stage\(s\) ran in (\d+\.\d)s")
PROGRESS = re.compile(r"^\s*\[(\d+) of (\d+)\] (\w+):(\w+) (ran|cached) \((\d+\.\d)s\)$")
SECONDS = re.compile(r"^\d+\.\d$")
CONTROL = re.compile(r"[\r\x1b\x08]")  # carriage return (redrawn bars), ANSI escapes, backspace


@dataclass
class Row:
    stage: str
    status: str
    seconds: float
    metrics: dict[str, float]


@dataclass
class Terminal:
    """What a run under a pseudo-terminal showed, and when, with what was on disk at that moment."""

    exit_code: int
    text: str
    seen: dict[str, float]  # "sales:ingest" -> seconds since start when its progress line arrived
    model_existed: dict[str, bool]  # "sales:ingest" -> models/sales/model.skops existed then


@dataclass
class Runs:
    repo: Path
    tty: Terminal
    piped: Result


def _table(stdout: str) -> tuple[list[Row], re.Match[str]]:
    """Parse the summary table: the header row, one row per stage, then the totals line."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if tuple(re.split(r"\s{2,}", line.strip())) == HEADER]
    assert len(starts) == 1, f"one table header {HEADER} expected in:\n{stdout}"
    header = lines[starts[0]]
    columns = [header.index(name) for name in HEADER]
    rows: list[Row] = []
    for line in lines[starts[0] + 1:]:
        total = SUMMARY.match(line)
        if total:
            return rows, total
        cells = re.split(r"\s{2,}", line.strip(), maxsplit=3)
        assert len(cells) in (3, 4), f"not a table row: {line!r}"
        stage, status, seconds = cells[:3]
        assert line.index(status, len(stage)) == columns[1], f"status column misaligned: {line!r}"
        assert line.index(seconds, columns[2]) == columns[2], f"seconds column misaligned: {line!r}"
        assert SECONDS.match(seconds), f"seconds not in 0.0 format: {line!r}"
        metrics: dict[str, float] = {}
        if len(cells) == 4:
            assert line.index(cells[3], columns[3]) == columns[3], f"metrics column misaligned: {line!r}"
            for pair in cells[3].split(", "):
                key, value = pair.split("=")
                metrics[key] = float(value)
        rows.append(Row(stage, status, float(seconds), metrics))
    raise AssertionError(f"no totals line after the table in:\n{stdout}")


def _run_on_terminal(repo: Path, *args: str, timeout: float = 240) -> Terminal:
    """Run the installed CLI with stdin/stdout/stderr on a real pty; read the master until exit."""
    master, slave = os.openpty()
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / "modelops-ci"), *args], cwd=repo, stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True, start_new_session=True)
    os.close(slave)
    model = repo / "models" / args[1] / "model.skops"
    data, seen, existed = b"", {}, {}
    try:
        while time.monotonic() - started < timeout:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end of the terminal
                break
            if not chunk:
                break
            data += chunk
            for line in data.decode(errors="replace").splitlines():
                found = PROGRESS.match(line.strip("\r"))
                if found:
                    name = f"{found.group(3)}:{found.group(4)}"
                    if name not in seen:
                        seen[name] = time.monotonic() - started
                        existed[name] = model.exists()
        else:
            proc.kill()
            raise AssertionError(f"run under a terminal did not finish in {timeout}s:\n{data.decode()}")
    finally:
        os.close(master)
    return Terminal(proc.wait(timeout=30), data.decode(errors="replace"), seen, existed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """`run sales` on a terminal, then `run loans` piped: each pipeline's stages run exactly once."""
    base = tmp_path_factory.mktemp("run_output")
    with pytest.MonkeyPatch.context() as env:  # the function-scoped isolation is not active yet
        for name in [n for n in os.environ if n.startswith("GIT_")]:
            env.delenv(name)
        (base / "home").mkdir()
        env.setenv("HOME", str(base / "home"))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for kind in ("AUTHOR", "COMMITTER"):
            env.setenv(f"GIT_{kind}_NAME", "Test Author")
            env.setenv(f"GIT_{kind}_EMAIL", "author@example.com")
        for name, value in {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
                            "DO_NOT_TRACK": "true", "TERM": "xterm-256color"}.items():
            env.setenv(name, value)
        env.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        repo = make_ml_repo(base / "repo")
        tty = _run_on_terminal(repo, "run", "sales")
        assert tty.exit_code == 0, tty.text
        piped = run_exe("run", "loans", cwd=repo)
        assert piped.exit_code == 0, piped.stdout + piped.stderr
        yield Runs(repo, tty, piped)


def test_piped_run_prints_no_progress_and_a_summary_table_of_the_stages_that_ran(runs: Runs) -> None:
    out = runs.piped.stdout + runs.piped.stderr
    assert not CONTROL.search(out), f"control characters in piped output: {CONTROL.findall(out)!r}"
    assert not [line for line in out.splitlines() if PROGRESS.match(line)], "progress lines when not a TTY"

    rows, total = _table(runs.piped.stdout)
    assert [row.stage for row in rows] == [f"loans:{s}" for s in STAGES]
    assert all(row.status == "ran" for row in rows)
    assert all(row.seconds > 0 for row in rows), "a stage that ran took some time"
    assert total.group(1, 2) == ("4", "4")
    assert abs(float(total.group(3)) - sum(row.seconds for row in rows)) <= 0.05 * len(rows) + 0.05

    evaluate = rows[-1]
    assert set(evaluate.metrics) == {"roc_auc", "accuracy", "brier"}
    written = json.loads((runs.repo / "reports/loans/metrics.json").read_text())
    for key, shown in evaluate.metrics.items():
        assert shown == float(format(written[key], ".4g")), key
    assert 0.5 < evaluate.metrics["roc_auc"] <= 1.0
    assert all(not row.metrics for row in rows[:-1]), "only evaluate has metrics"


def test_terminal_run_shows_each_stage_as_it_finishes_before_the_summary(runs: Runs) -> None:
    names = [f"sales:{s}" for s in STAGES]
    lines = [line.strip("\r") for line in runs.tty.text.splitlines()]
    progress = [PROGRESS.match(line) for line in lines]
    shown = [(m.group(3) + ":" + m.group(4), m.group(5)) for m in progress if m]
    assert shown == [(name, "ran") for name in names], runs.tty.text
    counted = [(int(m.group(1)), int(m.group(2))) for m in progress if m]
    assert counted == [(n, len(names)) for n in range(1, len(names) + 1)], "n of N, N planned from the start"

    header = next(i for i, line in enumerate(lines) if tuple(re.split(r"\s{2,}", line.strip())) == HEADER)
    last_progress = max(i for i, m in enumerate(progress) if m)
    assert last_progress < header, "progress comes before the summary table"

    # live, not printed at the end: each line arrived while later stages had yet to run
    assert list(runs.tty.seen) == names
    assert runs.tty.model_existed["sales:ingest"] is False
    assert runs.tty.model_existed["sales:split"] is False
    assert runs.tty.model_existed["sales:train"] is True
    assert runs.tty.seen["sales:evaluate"] - runs.tty.seen["sales:ingest"] > 0.5

    rows, total = _table("\n".join(lines))
    assert [row.stage for row in rows] == names
    assert total.group(1, 2) == ("4", "4")


def test_second_run_shows_every_stage_cached_with_its_metrics(runs: Runs) -> None:
    result = run_exe("run", "--all", cwd=runs.repo)
    assert result.exit_code == 0, result.stdout + result.stderr
    rows, total = _table(result.stdout)
    assert sorted(row.stage for row in rows) == sorted(f"{p}:{s}" for p in ("loans", "sales") for s in STAGES)
    assert {row.status for row in rows} == {"cached"}
    assert all(row.seconds >= 0 for row in rows)
    assert total.group(1, 2) == ("0", "8")
    metrics = {row.stage: row.metrics for row in rows}
    assert set(metrics["loans:evaluate"]) == {"roc_auc", "accuracy", "brier"}
    assert set(metrics["sales:evaluate"]) == {"mae", "smape", "mase"}
    assert not [line for line in result.stdout.splitlines() if PROGRESS.match(line)]
