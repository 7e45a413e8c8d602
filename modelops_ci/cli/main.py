"""Command-line wiring only: parse, call the module that does the work, print, map errors.

Feature modules are imported inside each command so `--help` and the pre-commit hooks start
fast (no jsonschema, pandas, DVC or MLflow until a command needs them).
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from modelops_ci import __version__, numerics, offline
from modelops_ci.cli import github as cli_github
from modelops_ci.cli.options import repo_option
from modelops_ci.cli.registry import register_commands
from modelops_ci.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    DiskFullError,
    ModelopsError,
    disk_full_in,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="modelops-ci",
                      help="Show the version and exit.")
def cli() -> None:
    """GitOps for ML models: specs and policies in git, compiled to DVC, gated and promoted.

    Exit codes: 0 success, 1 a gate or check failed, 2 invalid input or usage,
    3 internal error (a bug), 130 interrupted.
    """


@cli.command()
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
    from modelops_ci.commands.validate import import_warnings
    from modelops_ci.commands.validate import validate as run

    space = run(repo, paths, deep=deep)
    warnings = import_warnings(space)
    if output == "json":
        click.echo(json.dumps({"files": space.files, "problems": [p.__dict__ for p in space.problems],
                               "warnings": [w.__dict__ for w in warnings],
                               "pipelines": [p.name for p in space.pipelines]}, indent=2))
    if output == "text":
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    space.raise_problems()
    if output == "text":
        click.echo(f"{len(space.files)} file(s) valid: {len(space.pipelines)} pipeline(s), "
                   f"{len(space.policies)} polic{'y' if len(space.policies) == 1 else 'ies'}")


@cli.command("compile")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 with a unified diff if the compiled files are stale.")
@repo_option
def compile_command(check: bool, repo: Path) -> None:
    """Compile the specs and policies into DVC pipelines (dvc.yaml + compiled/<pipeline>/).

    Policies are applied as transformers: each gate a policy requires becomes a stage.
    The output is byte-identical for the same inputs.
    """
    from modelops_ci.commands.compile import compile_repo

    result = compile_repo(repo, check=check)
    if check:
        click.echo(f"compiled pipeline is fresh ({len(result.pipelines)} pipeline(s))")
        return
    for path in result.changed:
        click.echo(f"{'removed' if path in result.removed else 'wrote'} {path}")
    click.echo(f"{len(result.pipelines)} pipeline(s) compiled, {len(result.changed)} file(s) changed")


@cli.command()
@click.argument("kind", metavar="KIND")
def schema(kind: str) -> None:
    """Print the JSON Schema of KIND (pipeline, pipeline-template or policy).

    The schema is the one `validate` uses on files as written; point your editor's YAML
    language server at it.
    """
    from modelops_ci.spec import schema as schemas

    click.echo(json.dumps(schemas.bundle(schemas.kind_for_cli(kind)), indent=2))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path())
def init(directory: Path) -> None:
    """Scaffold a working ModelOps repo in DIRECTORY (default: here).

    Runs `git init` and `dvc init` when needed, adds an example pipeline, template and
    policy, a pre-commit config, and compiles. Existing files are never overwritten.
    """
    from modelops_ci.commands.init import scaffold

    result = scaffold(directory)
    for path in result.created:
        click.echo(f"created {path}")
    for path in result.kept:
        click.echo(f"kept existing {path}")
    click.echo("next: modelops-ci validate && modelops-ci compile --check")


@cli.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@click.option("--all", "run_all", is_flag=True, help="Run every compiled pipeline.")
@click.option("--force", is_flag=True, help="Re-run stages even when DVC finds them up to date.")
@repo_option
def run(pipelines: tuple[str, ...], run_all: bool, force: bool, repo: Path) -> None:
    """Run compiled pipelines through DVC (`dvc repro`): only what changed runs again.

    Data and models go to the DVC cache (and the default remote), runs and model versions to
    MLflow. Ends with a table: stage, ran or cached, seconds, key metrics.
    """
    from modelops_ci.commands import run as runner
    from modelops_ci.gates import verdict as verdicts
    from modelops_ci.report.console import stage_line, summary_table

    live = sys.stdout.isatty()
    report = runner.run(repo, pipelines, run_all=run_all, force=force,
                        on_stage=(lambda s: click.echo(stage_line(s))) if live else None)
    click.echo(summary_table(report))
    results = [verdicts.read_current(repo, name) for name in verdicts.gated_pipelines(repo, pipelines)]
    for line in verdicts.lines(results):
        click.echo(line)
    verdicts.enforce(results)


@cli.command()
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


@cli.command(hidden=True)
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


@cli.command()
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@repo_option
def report(pipelines: tuple[str, ...], repo: Path) -> None:
    """Render each pipeline's gates.json as report.md (PR comment, job summary) and a
    self-contained report.html with plots, plus reports/summary.md for the whole repo.

    Only a gates.json produced for this commit's inputs (as compiled/<p>/dvc.lock records) is a
    verdict: a missing or stale one is listed as "no verdict for this commit" and exits 1."""
    from modelops_ci.gates import verdict as verdicts
    from modelops_ci.report.pages import render_current

    root = repo.resolve()
    rendered = render_current(root, pipelines)
    for path in rendered.written:
        click.echo(f"wrote {path.relative_to(root)}")
    for line in verdicts.lines(rendered.refused):
        click.echo(line, err=True)
    verdicts.enforce(rendered.refused)


@cli.group()
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
    from modelops_ci.gates import profile
    from modelops_ci.gates.context import GateContext
    from modelops_ci.gates.drift.inputs import reference_profile
    from modelops_ci.steps.context import load_context

    root = repo.resolve()
    target = (output if output is not None else Path("reports") / pipeline / "drift-reference.npz")
    target = target if target.is_absolute() else root / target
    built, _ = reference_profile(GateContext(load_context(root, pipeline)), grid=profile.GRID)
    profile.save(built, target)
    click.echo(f"wrote {target.relative_to(root) if target.is_relative_to(root) else target}")


@cli.group()
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
    from modelops_ci.commands import run as runner
    from modelops_ci.gates.data import infer
    from modelops_ci.layout import Layout

    if not (repo / Layout(pipeline).dataset).is_file():
        runner.run(repo, [pipeline], upto="ingest")
    click.echo(f"wrote {infer(repo.resolve(), pipeline).relative_to(repo.resolve())}")


@cli.command()
@click.argument("tags", nargs=-1, metavar="[TAG]...")
@click.option("--all", "every", is_flag=True, help="Verify every registry tag in the repository.")
@click.option("--trust-ref", default=None, metavar="REF",
              help="Where allowed signers and policies are read (default: origin's default branch).")
@click.option("--skip-approvals", is_flag=True,
              help="Do not ask GitHub about the promotion PR's approvals (offline checks only; say so).")
@click.option("--newest", is_flag=True,
              help="Also require each TAG's N to exceed every other N of its name (the check of a tag just pushed).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@repo_option
def verify(tags: tuple[str, ...], every: bool, trust_ref: str | None, skip_approvals: bool, newest: bool,
           as_json: bool, repo: Path) -> None:
    """Verify registry tags: signature and signer, evidence, gates, stage order, approvals.

    Exits 0 when every tag verifies and 1 naming the rule a refused tag breaks. Trust (allowed
    signers, policies) comes from the trusted ref, never from the commit being promoted.
    """
    from modelops_ci.errors import CheckFailed, UserError
    from modelops_ci.registry import verify as verifier

    root = repo.resolve()
    if not tags and not every:
        raise UserError("name the tag(s) to verify, or pass --all")
    judge = verifier.SKIP if skip_approvals else _github_approvals(root, trust_ref)
    results = (verifier.verify_all(root, trust_ref=trust_ref, approvals=judge) if every else
               [verifier.verify(root, tag, trust_ref=trust_ref, approvals=judge, newest=newest) for tag in tags])
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for result in results:
            click.echo(str(result))
    refused = [r for r in results if not r.ok]
    if refused:
        raise CheckFailed(f"{len(refused)} of {len(results)} tag(s) refused: "
                          + "; ".join(f"{r.tag} [{r.rule}]" for r in refused))


@cli.command()
@repo_option
def ci(repo: Path) -> None:
    """Run what CI runs on every commit: validate, compile --check, run with gates, reports.

    Exits 1 when a blocking gate failed, 2 on an invalid spec or a stale compile.
    """
    from modelops_ci.commands.ci import run_ci

    for line in run_ci(repo):
        click.echo(line)


register_commands(cli)
cli_github.register_commands(cli)


def _github_approvals(root: Path, trust_ref: str | None) -> Any:
    # Imported only when asked: the GitHub client costs 40 ms the offline pre-push check need not pay.
    from modelops_ci.registry import approvals, trust

    return approvals.from_env(trust.promotion_rule(root, trust_ref), root)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and turn every outcome into the documented exit code."""
    offline.apply()
    numerics.pin_portable_kernels()
    try:
        cli.main(args=argv, prog_name="modelops-ci", standalone_mode=False)
    except ModelopsError as exc:
        if exc.exit_code == EXIT_INTERNAL:  # raised on purpose, still a bug: logged like any other
            sys.exit(_crash(exc))
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USER_ERROR if exc.exit_code == 2 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        sys.exit(_crash(exc))
    sys.exit(0)


def _crash(exc: Exception) -> int:
    """Report an internal error briefly; the traceback goes to a log file, not the terminal.

    A full disk met outside our own writes (DVC's cache, a library's file) is still the user's
    to fix, and said as such."""
    full = disk_full_in(exc)
    if full is not None:
        error = DiskFullError(full.filename)
        click.echo(error.render(), err=True)
        return error.exit_code
    with tempfile.NamedTemporaryFile("w", prefix="modelops-ci-crash-", suffix=".log",
                                     delete=False) as log:
        traceback.print_exc(file=log)
    kind, value, _ = sys.exc_info()
    name = kind.__name__ if kind else "error"
    click.echo(f"internal error: {name}: {value}\nThis is a bug in modelops-ci; the traceback is in "
               f"{log.name}", err=True)
    return EXIT_INTERNAL
