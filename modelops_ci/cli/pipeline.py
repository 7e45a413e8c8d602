"""Command-line wiring of the pipeline commands: validate, compile, schema, init, run, gate, step,
report, drift profile, contract infer and ci. The work is done in modelops_ci.commands; this
module parses, calls and prints.

cli/main.py calls `register_commands(cli)`; feature modules are imported inside each command so
`modelops-ci --help` and the pre-commit hooks start fast (no jsonschema, pandas, DVC or MLflow until
a command needs them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from modelops_ci.cli.options import repo_option
from modelops_ci.executor.shards import MAX_SHARDS, SERIES_PER_SHARD


def register_commands(cli: click.Group) -> None:
    """Add the pipeline commands to the top-level group."""
    for command in (validate, compile_command, schema, init, run, gate, step, report, drift, contract, ci):
        cli.add_command(command)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--deep", is_flag=True,
              help="Also import every plug-in and estimator and look for each data source (slower).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How to print the problems.")
@repo_option
def validate(paths: tuple[Path, ...], deep: bool, output: str, repo: Path) -> None:
    """Check specs and policies under pipelines/ and policies/ (or PATHS).

    Prints every problem as `path:line:col: yaml.path: message (hint)` and exits 2 if any.
    """
    from modelops_ci.commands.validate import validate as run
    from modelops_ci.commands.validate import warnings as spec_warnings

    space = run(repo, paths, deep=deep)
    warnings = spec_warnings(space)
    if output == "json":
        click.echo(json.dumps({"files": space.files, "problems": [p.__dict__ for p in space.problems],
                               "warnings": [w.__dict__ for w in warnings],
                               "pipelines": [p.name for p in space.pipelines]}, indent=2))
    if output == "text":
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    space.raise_problems()
    if output == "text":
        click.echo(f"{len(space.files)} file(s) valid: {space.describe()}, "
                   f"{len(space.policies)} polic{'y' if len(space.policies) == 1 else 'ies'}")


@click.command("compile")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 with a unified diff if the compiled files are stale.")
@click.option("--target", type=click.Choice(["dvc", "github-matrix"]), default="dvc", show_default=True,
              help="dvc: write the DVC pipelines. github-matrix: print the GitHub Actions matrix (JSON) "
                   "that splits the families' changed series into shards, for `ci --shard`.")
@click.option("--series-per-shard", type=click.IntRange(min=1), default=SERIES_PER_SHARD, show_default=True,
              help="With --target github-matrix: one shard per this many changed series (at most 256 shards).")
@repo_option
def compile_command(check: bool, target: str, series_per_shard: int, repo: Path) -> None:
    """Compile the specs and policies into DVC pipelines (dvc.yaml + compiled/<pipeline>/).

    Policies are applied as transformers: each gate a policy requires becomes a stage.
    The output is byte-identical for the same inputs.
    """
    from modelops_ci.commands.compile import compile_repo

    if target == "github-matrix":
        _print_matrix(repo, series_per_shard)
        return
    result = compile_repo(repo, check=check)
    if check:
        click.echo(f"compiled pipeline is fresh ({len(result.pipelines)} pipeline(s))")
        return
    for path in result.changed:
        click.echo(f"{'removed' if path in result.removed else 'wrote'} {path}")
    click.echo(f"{len(result.pipelines)} pipeline(s) compiled, {len(result.changed)} file(s) changed")


def _print_matrix(repo: Path, series_per_shard: int) -> None:
    """The matrix alone on stdout (a workflow step reads it); what was found, on stderr."""
    from modelops_ci.commands.compile import compile_repo
    from modelops_ci.commands.shards import github_matrix

    compile_repo(repo, check=True)
    found, said = github_matrix(repo, series_per_shard)
    for line in said:
        click.echo(line, err=True)
    click.echo(json.dumps(found, separators=(",", ":")))


@click.command()
@click.argument("kind", metavar="KIND")
def schema(kind: str) -> None:
    """Print the JSON Schema of KIND (pipeline, pipeline-template or policy).

    The schema is the one `validate` uses on files as written; point your editor's YAML
    language server at it.
    """
    from modelops_ci.spec import schema as schemas

    click.echo(json.dumps(schemas.bundle(schemas.kind_for_cli(kind)), indent=2))


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path())
@click.option("--yes", "-y", is_flag=True, help="Point core.hooksPath at hooks/ without asking, even if it is set.")
def init(directory: Path, yes: bool) -> None:
    """Scaffold a working ModelOps repo in DIRECTORY (default: here).

    Runs `git init` and `dvc init` when needed, adds an example pipeline, template and
    policy, a pre-commit config and hooks/pre-push, points git's core.hooksPath at hooks/ (asking
    first if it names another folder), and compiles. Existing files are never overwritten.
    """
    from modelops_ci.commands.init import scaffold

    result = scaffold(directory)
    for path in result.created:
        click.echo(f"created {path}")
    for path in result.kept:
        click.echo(f"kept existing {path}")
    if result.hooks_path:
        click.echo(f"git config core.hooksPath {result.hooks_path} (pre-push refuses registry tags that do not verify)")
    if result.other_hooks_path:
        _offer_hooks_path(result.root, result.other_hooks_path, yes)
    click.echo("next: modelops-ci validate && modelops-ci ci")


def _offer_hooks_path(root: Path, current: str, yes: bool) -> None:
    """core.hooksPath names another folder: change it only if the user says so."""
    from modelops_ci.commands.init import use_hooks

    question = f"git's core.hooksPath is {current}; point it at hooks/ (pre-push checks registry tags)?"
    if not yes and not sys.stdin.isatty():
        click.echo(f"core.hooksPath left at {current} (no terminal to ask on): run `modelops-ci init --yes`, or "
                   f"copy hooks/pre-push into {current}/, so a registry tag that does not verify is never pushed")
        return
    if yes or click.confirm(question, default=False):
        click.echo(f"git config core.hooksPath {use_hooks(root)}")
        return
    click.echo(f"core.hooksPath left at {current}: copy hooks/pre-push into {current}/ to check registry tags")


KEEP_GOING_HELP = ("After a stage fails, still run every stage that does not need its outputs; report each "
                   "failure at the end.")


@click.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("--all", "run_all", is_flag=True, help="Run every compiled pipeline.")
@click.option("--force", is_flag=True, help="Re-run stages even when DVC finds them up to date.")
@click.option("--keep-going", is_flag=True, help=KEEP_GOING_HELP)
@repo_option
def run(pipelines: tuple[str, ...], run_all: bool, force: bool, keep_going: bool, repo: Path) -> None:
    """Run compiled pipelines through DVC (`dvc repro`): only what changed runs again.

    Data and models go to the DVC cache (and the default remote), runs and model versions to
    MLflow. Ends with a table (stage, ran or cached, seconds, key metrics) and the verdict. Exits
    2 if a stage failed on the input, 1 if a gate failed.
    """
    from modelops_ci.commands import run as runner
    from modelops_ci.gates import verdict as verdicts
    from modelops_ci.report.console import stage_line, summary_table, verdict_line

    live = sys.stdout.isatty()
    report = runner.run(repo, pipelines, run_all=run_all, force=force, keep_going=keep_going,
                        on_stage=(lambda *done: click.echo(stage_line(*done))) if live else None)
    click.echo(summary_table(report))
    results = runner.current_verdicts(repo, pipelines)
    for line in verdicts.lines(results):
        click.echo(line)
    verdict = verdict_line(report, results)
    if verdict:
        click.echo(verdict)
    runner.enforce(report, results)


@click.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("--only", default="", metavar="KIND,...",
              help="Evaluate only these gate kinds (data_contract, performance, compare, fairness, drift).")
@repo_option
def gate(pipelines: tuple[str, ...], only: str, repo: Path) -> None:
    """Evaluate the gates the policies require, on the pipelines' current outputs.

    Writes reports/<pipeline>/gates/<kind>.json and gates.json; exits 0 when every blocking gate
    passed, 1 when any failed or could not be evaluated.
    """
    from modelops_ci.commands.gate import evaluate
    from modelops_ci.gates import verdict as verdicts

    results = evaluate(repo, pipelines, only.split(",") if only else ())
    for line in verdicts.lines(results):
        click.echo(line)
    verdicts.enforce(results)


@click.command(hidden=True)
@click.argument("step_name", metavar="STEP")
@click.argument("pipeline", required=False)
@repo_option
def step(step_name: str, pipeline: str | None, repo: Path) -> None:
    """Run one STEP of PIPELINE; what the DVC stages call.

    Steps: ingest, split, train, evaluate, gate-KIND, gates, and summary (no PIPELINE).
    """
    from modelops_ci.steps import run_step

    summary = run_step(repo, step_name, pipeline)
    click.echo(f"{pipeline or 'repo'} {step_name}: " + ", ".join(f"{k}={_short(v)}" for k, v in summary.items()))


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@repo_option
def report(pipelines: tuple[str, ...], repo: Path) -> None:
    """Render each pipeline's gates.json as report.md (PR comment, job summary) and a
    self-contained report.html with plots, plus reports/summary.md for the whole repo.

    Only a gates.json produced for this commit's inputs (as compiled/<p>/dvc.lock records) is a
    verdict: a missing or stale one is listed as "no verdict for this commit" and exits 1."""
    from modelops_ci.commands.report import report as render
    from modelops_ci.gates import verdict as verdicts

    root = repo.resolve()
    rendered = render(root, pipelines)
    for path in rendered.written:
        click.echo(f"wrote {path.relative_to(root)}")
    for line in verdicts.lines(rendered.refused):
        click.echo(line, err=True)
    verdicts.enforce(rendered.refused)


@click.group()
def drift() -> None:
    """Drift references: precomputed profiles of the reference data."""


@drift.command("profile")
@click.argument("pipeline")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the profile (.npz); default: reports/<pipeline>/drift-reference.npz.")
@repo_option
def drift_profile(pipeline: str, output: Path | None, repo: Path) -> None:
    """Precompute PIPELINE's drift reference (histograms and sketches) into a small file.

    Point spec.drift.reference at it (and version it with DVC or git): the drift gate then needs
    no raw reference data and runs in about a second on a million rows.
    """
    from modelops_ci.commands.drift_profile import profile

    root = repo.resolve()
    target = profile(root, pipeline, output)
    click.echo(f"wrote {target.relative_to(root) if target.is_relative_to(root) else target}")


@click.group()
def contract() -> None:
    """Data contracts: the columns, types, ranges, null rates and categories data must keep."""


@contract.command("infer")
@click.argument("pipeline")
@repo_option
def contract_infer(pipeline: str, repo: Path) -> None:
    """Infer PIPELINE's data contract from its reference data and write it (into git).

    Ingests the data first if needed. Review the file, then commit it: the data_contract gate
    checks every new dataset against it.
    """
    from modelops_ci.commands.contract import infer

    click.echo(f"wrote {infer(repo, pipeline).relative_to(repo.resolve())}")


@click.command()
@click.option("--keep-going/--fail-fast", default=True, show_default=True,
              help="After a stage fails, run every stage that does not need its outputs (or stop at once).")
@click.option("--changed", is_flag=True,
              help="First pull what the last run pushed to the DVC remote and say which pipelines and "
                   "series changed: only those run again, even on a fresh clone.")
@click.option("--base", metavar="REF", default=None,
              help="Run only the pipelines whose specs, policies or data changed since commit REF (git "
                   "diff), without a DVC remote.")
@click.option("--shard", metavar="I/N", default=None,
              help="A job of the CI matrix: compute shard I of N of the families' changed series and push "
                   "them to the DVC remote (nothing else runs).")
@click.option("--merge-shards", metavar="N", type=click.IntRange(1, MAX_SHARDS), default=None,
              help="The merge job after N shards: put their series in place (refusing if a shard is "
                   "missing), then run as --changed (no series is computed again).")
@repo_option
def ci(keep_going: bool, changed: bool, base: str | None, shard: str | None, merge_shards: int | None,
       repo: Path) -> None:
    """Run what CI runs on every commit: validate, compile --check, run with gates, reports.

    Exits 1 when a blocking gate failed, 2 on an invalid spec, a stale compile or a stage that
    failed on its input (the other pipelines still run, unless --fail-fast).
    """
    from modelops_ci.commands.ci import run_ci, run_shard

    chosen = [name for name, value in (("--changed", changed), ("--base", base), ("--shard", shard),
                                       ("--merge-shards", merge_shards)) if value]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} do not go together: pick one")
    lines = run_shard(repo, shard) if shard else run_ci(repo, keep_going=keep_going, changed=changed, base=base,
                                                         merge_shards=merge_shards)
    for line in lines:
        click.echo(line)
