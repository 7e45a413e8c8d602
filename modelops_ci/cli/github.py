"""Command-line wiring of the GitHub integration: `github comment|annotations|summary`, `monitor`
and `promotion-request`. The work is done in the github package (comment, annotations, summary),
monitor and promotion_request; this module parses, calls and prints.

cli.py calls `register_commands(cli)`; feature modules are imported inside each command so
`modelops-ci --help` and the git hooks start fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelops_ci.cli.options import repo_option
from modelops_ci.errors import UserError

BASE_HELP = "The branch to compare with / open the pull request against."


def register_commands(cli: click.Group) -> None:
    """Add the GitHub commands to the top-level group."""
    for command in (github, monitor, promotion_request):
        cli.add_command(command)




@click.group()
def github() -> None:
    """Report to GitHub from a workflow: the PR comment, annotations and the job summary."""


@github.command()
@click.option("--pr", "number", type=click.IntRange(min=1), default=None,
              help="The pull request's number (default: the one in $GITHUB_EVENT_PATH).")
@click.option("--marker", default="modelops-ci:report", show_default=True,
              help="The hidden marker that identifies the comment to update.")
@click.option("--base", default=None, metavar="BRANCH",
              help="The branch to diff metrics against (default: $GITHUB_BASE_REF, else main).")
@click.option("--dry-run", is_flag=True, help="Print the comment instead of posting it.")
@repo_option
def comment(number: int | None, marker: str, base: str | None, dry_run: bool, repo: Path) -> None:
    """Post or update the one PR comment with the verdict and metric diffs against the base branch.

    Finds the comment by its marker (every page of comments) and updates it, else creates it;
    over GitHub's 65,536 characters the reports are shortened and the comment links to the run.
    """
    from modelops_ci.github.client import GitHub, repository
    from modelops_ci.github.comment import comment_body, marker_comment, upsert_comment
    from modelops_ci.github.metrics import metric_diffs
    from modelops_ci.github.workflow import default_base, event_number, run_url
    from modelops_ci.report.pages import current

    root = repo.resolve()
    marker_comment(marker)  # checked before any work
    number = number or event_number()
    if number is None and not dry_run:
        raise UserError("no pull request: pass --pr N (or run on a pull_request event)")
    diffs = metric_diffs(root, base or default_base())
    found = current(root)  # this commit's verdicts only: checked against the schema and dvc.lock
    body = comment_body(found.reports, diffs, marker=marker, link=run_url(), refused=found.refused)
    if dry_run:
        click.echo(body)
        return
    assert number is not None
    posted = upsert_comment(GitHub.from_env(), repository(root), number, body, marker=marker)
    click.echo(f"{posted.action} comment {posted.comment_id} on PR #{number}: {posted.url}")


@github.command("annotations")
@repo_option
def annotations_command(repo: Path) -> None:
    """Print an `::error` annotation for each failed blocking gate, at the policy or spec line
    of the threshold it failed (GitHub shows them on the PR's files). Always exits 0."""
    from modelops_ci.github.annotations import commands, gate_annotations

    for line in commands(gate_annotations(repo.resolve())):
        click.echo(line)


@github.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=Path("reports/summary.md"))
def summary(path: Path) -> None:
    """Append PATH (default reports/summary.md) to the job summary ($GITHUB_STEP_SUMMARY),
    cut with a note so the page stays under GitHub's 1 MiB."""
    import os

    from modelops_ci.github.summary import append_summary
    from modelops_ci.github.workflow import run_url

    page = os.environ.get("GITHUB_STEP_SUMMARY")
    if not page:
        click.echo("GITHUB_STEP_SUMMARY is not set (not on GitHub Actions): nothing to do")
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc}): run `modelops-ci report` first") from None
    whole = append_summary(text, Path(page), link=run_url())
    click.echo(f"job summary: {'added' if whole else 'added, truncated to 1 MiB'} {path}")


@click.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("--batch", default=None, metavar="PATH",
              help="Check this data file instead of the spec's drift.current (one pipeline).")
@click.option("--open", "open_as", type=click.Choice(["issue", "pr", "none"]), default="issue", show_default=True,
              help="What to open on GitHub when a model's data drifted.")
@click.option("--stage", default="production", show_default=True, help="The stage whose models are watched.")
@click.option("--base", default="main", show_default=True, help="The branch a retraining PR targets.")
@click.option("--remote", default="origin", show_default=True, help="Where a retraining PR's branch is pushed.")
@click.option("--traffic", is_flag=True,
              help="Watch the served traffic instead: the prediction log's windows against each deployed version's "
                   "reference, alerts as incident issues (the policy's monitoring: block).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --traffic: the prediction log. Default: .modelops/serve/STAGE.sqlite.")
@click.option("--rotated", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --traffic: the rotated Parquet files. Default: predictions/STAGE.")
@click.option("--rows", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --traffic: a Parquet or CSV file of logged rows (model, version, time, features...) instead "
                   "of the log.")
@click.option("--retrain", is_flag=True,
              help="With --traffic: a new incident of a cause the policy's monitoring.retrain_on names also opens a "
                   "retraining PR (the logged rows as a DVC-tracked snapshot added to the pipeline's sources).")
@click.option("--now", type=float, default=None, metavar="UNIX",
              help="With --traffic: the time the look happens at (unix seconds; default: now), to replay a log.")
@repo_option
def monitor(pipelines: tuple[str, ...], batch: str | None, open_as: str, stage: str, base: str, remote: str,
            traffic: bool, log_path: Path | None, rotated: Path | None, rows: Path | None, retrain: bool,
            now: float | None, repo: Path) -> None:
    """Check each production model's newest data batch (spec drift.current) for drift.

    Writes reports/<pipeline>/monitor.json and monitor.md. On drift over the policy's threshold
    opens a retraining issue (or PR) with the report, once per batch, and exits 1; exits 0 and
    opens nothing when there is no drift. With --traffic, watches the served traffic instead
    (reports/monitoring/STAGE.json and .md) and exits 1 while an alert fires.
    """
    if traffic:
        _monitor_traffic(repo, stage, open_as, log_path, rotated, rows, pipelines, batch, now,
                         retrain=retrain, base=base, remote=remote)
        return
    from modelops_ci.commands.monitor import monitor as check

    result = check(repo, pipelines, batch=batch, stage=stage, open_as=open_as, base=base, remote=remote)
    for skipped in result.skipped:
        click.echo(f"{skipped.pipeline}: not monitored ({skipped.reason})")
    for outcome in result.outcomes:
        said = {"fail": "DRIFT", "error": "NOT CHECKED"}.get(outcome.status, "no drift")
        click.echo(f"{outcome.pipeline} {outcome.version} on {outcome.batch.path or '-'}: {said}: {outcome.reason}")
        if outcome.url:
            click.echo(f"  {'already open' if outcome.existing else 'opened'}: {outcome.url}")
    if not result.outcomes:
        click.echo(f"no pipeline to monitor: none has drift.current and a version in '{stage}'")
    result.enforce()


def _monitor_traffic(repo: Path, stage: str, open_as: str, log_path: Path | None, rotated: Path | None,
                     rows: Path | None, pipelines: tuple[str, ...], batch: str | None, now: float | None, *,
                     retrain: bool, base: str, remote: str) -> None:
    from modelops_ci.commands.monitor_traffic import TrafficOptions, monitor_traffic
    from modelops_ci.errors import UserError

    if pipelines or batch:
        raise UserError("--traffic watches every model the stage's deployment names: give no PIPELINE or --batch")
    if open_as == "pr":
        raise UserError("--traffic opens incident issues (--open issue) or nothing (--open none), not PRs")
    if retrain and open_as != "issue":
        raise UserError("--retrain opens its PR with a new incident issue: use it with --open issue")
    options = TrafficOptions(stage, log_path, rotated, rows, "issue" if open_as == "issue" else "none", retrain,
                             base, remote)
    result = monitor_traffic(repo.resolve(), options, now=now)
    for watched in result.models:
        counts: dict[str, int] = {}
        for window in watched.watch.assessments:
            counts[window.status] = counts.get(window.status, 0) + 1
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no windows"
        windows = len(watched.watch.assessments)
        click.echo(f"{watched.model}: {windows} windows of {watched.monitoring.window} ({shown})")
        for action in watched.actions:
            url = watched.urls.get(action.cause, "")
            click.echo(f"  alert {action.cause}: {action.kind}{' ' + url if url else ''}: {action.reason}")
        if watched.retraining:
            click.echo(f"  retraining PR: {watched.retraining}")
    for problem in result.problems:
        click.echo(f"not assessed: {problem}")
    click.echo(f"wrote {', '.join(str(p.relative_to(repo.resolve())) for p in result.written)}")
    result.enforce()


@click.command("promotion-request")
@click.argument("target", metavar="NAME@vX.Y.Z")
@click.option("--to", "stage", required=True, metavar="STAGE", help="The stage to promote to.")
@click.option("--base", default="main", show_default=True, help=BASE_HELP)
@click.option("--canary", type=int, default=None,
              help="Where the roll-out starts: the share of traffic (percent) the version first gets when the "
                   "stage has a champion (default: the first step's); 100 makes it the champion at once.")
@click.option("--remote", default="origin", show_default=True, help="Where the branch is pushed.")
@repo_option
def promotion_request(target: str, stage: str, base: str, canary: int | None, remote: str, repo: Path) -> None:
    """Ask for a promotion by pull request: a branch promote/NAME-VERSION-to-STAGE whose commit
    writes deployments/STAGE.yaml, pushed, and a PR with the evidence. Merging the approved PR
    promotes (the promotion workflow signs the stage tag). Safe to run again."""
    from modelops_ci.commands import promotion_request as requests

    request = requests.parse(target, stage, base, canary)  # the grammar first: nothing happens on bad input
    opened = requests.open_request(repo.resolve(), request, remote=remote)
    branch = f"branch {opened.branch} ({'pushed' if opened.pushed else 'already on ' + remote})"
    click.echo(f"{'opened' if opened.created else 'already open'}: PR #{opened.number} {opened.url}; {branch}")
