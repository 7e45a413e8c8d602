"""Command-line wiring of serving and roll-out: `serve`, `rollout`, `feedback` and `rotate-log`.
The work is done in commands/serve.py, commands/rollout.py and serve/ (the app, the log); this
module parses, calls and prints. Feature modules are imported inside each command so
`modelops-ci --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelops_ci.cli.options import repo_option

STAGE_HELP = "The stage whose deployments/STAGE.yaml is served."
LOG_HELP = "The prediction log (SQLite). Default: .modelops/serve/STAGE.sqlite."
ROTATED_HELP = "Where rotated Parquet files go (DVC can track it). Default: predictions/STAGE."


def register_commands(cli: click.Group) -> None:
    """Add the serving commands to the top-level group."""
    for command in (serve, rollout, feedback, rotate_log):
        cli.add_command(command)


@click.command()
@click.option("--stage", default="production", show_default=True, help=STAGE_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="The port to listen on.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LOG_HELP)
@click.option("--max-batch", type=click.IntRange(min=1), default=256, show_default=True,
              help="At most this many rows are scored in one model call.")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="How long a batch may wait for more requests while the model is busy.")
@click.option("--shadow-cpu", type=click.FloatRange(min=0, min_open=True, max=1), default=0.05, show_default=True,
              help="A shadow challenger's work may take at most this share of the CPU the rest of the server uses "
                   "(at least 1% of a CPU when it is idle); copies it cannot score in time are dropped and counted "
                   "(modelops_shadow_dropped_total).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between looks at the deployment file and the tags for a change.")
@click.option("--log-survives", type=click.Choice(["process", "power"]), default="process", show_default=True,
              help="What an answered request's record outlives: the server's crash (SIGKILL, OOM), or also a "
                   "power cut (an fsync per group commit: ~1-4 ms more per answer at one client).")
@repo_option
def serve(stage: str, host: str, port: int, log_path: Path | None, max_batch: int, max_wait_ms: float,
          shadow_cpu: float, poll: float, log_survives: str, repo: Path) -> None:
    """Serve the versions deployments/STAGE.yaml names that hold a verified STAGE tag:
    POST /v1/models/NAME/predict, GET /healthz, /readyz, /metrics. Every request and answer is
    in the prediction log before the answer is sent."""
    from modelops_ci.commands.serve import Options
    from modelops_ci.commands.serve import serve as run

    run(repo.resolve(), Options(stage, host, port, log_path, max_batch, max_wait_ms, shadow_cpu, poll,
                                log_survives))  # type: ignore[arg-type]  # click checked the choice


@click.command()
@click.option("--stage", default="production", show_default=True, help="The stage whose roll-outs to move.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LOG_HELP)
@click.option("--rotated", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROTATED_HELP)
@click.option("--dry-run", is_flag=True, help="Print each decision and its reasons; change nothing.")
@click.option("--now", type=float, default=None, hidden=True,
              help="Decide as at this time (unix seconds) instead of the clock: for replaying a log.")
@click.option("--base", default="main", show_default=True, help="The branch the deployment file lives on.")
@click.option("--remote", default="origin", show_default=True, help="Where commits and branches are pushed.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the report goes (STAGE.json, .md, .html). Default: reports/rollout.")
@repo_option
def rollout(stage: str, log_path: Path | None, rotated: Path | None, dry_run: bool, now: float | None, base: str,
            remote: str, report_dir: Path | None, repo: Path) -> None:
    """Move each roll-out of deployments/STAGE.yaml one decision on: analyse the logged traffic
    since its step began, then advance, hold, pause, abort or promote, recorded as a commit or PR
    to the deployment file (an abort also opens one incident issue)."""
    import os

    from modelops_ci.commands.rollout import Options, write_report
    from modelops_ci.commands.rollout import rollout as run
    from modelops_ci.github.summary import append_summary

    root = repo.resolve()
    outcomes = run(root, Options(stage, log_path, rotated, dry_run, now, remote, base))
    for outcome in outcomes:
        decision = outcome.decision
        click.echo(f"{decision.model}: {decision.action} ({decision.weight}% -> {decision.next_weight}%)"
                   + (f" {outcome.recorded}" if outcome.recorded else "") + (f"; incident {outcome.issue}"
                                                                               if outcome.issue else ""))
        for reason in decision.reasons:
            click.echo(f"  - {reason}")
    if not outcomes:
        click.echo(f"no roll-out in progress in deployments/{stage}.yaml (no model has a challenger)")
    paths = write_report(report_dir or root / "reports" / "rollout", stage, outcomes)
    page = os.environ.get("GITHUB_STEP_SUMMARY")
    if page:  # on Actions: the report on the run's page too
        append_summary(paths[1].read_text(encoding="utf-8"), Path(page))


@click.command()
@click.argument("table", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--stage", default="production", show_default=True, help=STAGE_HELP)
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LOG_HELP)
@click.option("--rotated", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROTATED_HELP)
@repo_option
def feedback(table: Path, stage: str, log_path: Path | None, rotated: Path | None, repo: Path) -> None:
    """Join true labels that arrived later (TABLE: CSV or Parquet with request_id, row, label) to
    the logged answers, by request id."""
    from modelops_ci.commands.serve import default_log, default_rotated
    from modelops_ci.serve.feedback import join_feedback

    root = repo.resolve()
    joined = join_feedback(log_path or default_log(root, stage), table, rotated=rotated or default_rotated(root, stage))
    click.echo(f"{joined} label(s) joined")


@click.command("rotate-log")
@click.option("--stage", default="production", show_default=True, help=STAGE_HELP)
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LOG_HELP)
@click.option("--rotated", type=click.Path(file_okay=False, path_type=Path), default=None, help=ROTATED_HELP)
@click.option("--older-than", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Move only records older than this many seconds.")
@repo_option
def rotate_log(stage: str, log_path: Path | None, rotated: Path | None, older_than: float, repo: Path) -> None:
    """Move the prediction log's records into Parquet files (safe while the server runs)."""
    import time

    from modelops_ci.commands.serve import default_log, default_rotated
    from modelops_ci.serve.predlog import rotate

    root = repo.resolve()
    written = rotate(log_path or default_log(root, stage), rotated or default_rotated(root, stage),
                     before=time.time() - older_than)
    for path in written:
        click.echo(str(path))
    click.echo(f"{len(written)} file(s) written")
