"""Command-line wiring of the model registry: register, promote, verify, registry
show/history/sync-mlflow, audit. The work is done in modelops_ci.commands (over
modelops_ci.registry); this module parses, calls and prints.

cli/main.py calls `register_commands(cli)`; feature modules are imported inside each command so
`modelops-ci --help` and the git hooks start fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelops_ci.cli.options import repo_option

JSON_HELP = "Print JSON instead of a table."
KEY_HELP = ("Signing key: an SSH private key path (or its text), or a GPG key id. Default: "
            "$MODELOPS_SIGNING_KEY, then git's user.signingkey.")
PUSH_HELP = "Push the tag to the remote (atomically) or keep it local."
REMOTE_HELP = "The remote whose tags are the registry (one of `git remote`)."
RECOMPUTE_HELP = ("Re-run the gate stages at the commit in a temporary worktree, from the DVC cache and remote, "
                  "and sign only if they give the committed gates.json (what the promotion workflow does).")


def register_commands(cli: click.Group) -> None:
    """Add the registry commands to the top-level group."""
    for command in (register, promote, verify, registry, audit):
        cli.add_command(command)


# -- writing --------------------------------------------------------------------------------------


@click.command()
@click.argument("name")
@click.option("--version", "version", metavar="vX.Y.Z", default=None,
              help="The version to register (semver with a leading v).")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), default=None,
              help="Register the highest version so far, bumped (default: patch; v0.0.1 first).")
@click.option("--commit", "rev", default="HEAD", show_default=True,
              help="The commit to register (a branch, tag or commit id).")
@click.option("--signing-key", default=None, help=KEY_HELP)
@click.option("--push/--no-push", default=True, show_default=True, help=PUSH_HELP)
@click.option("--remote", default="origin", show_default=True, help=REMOTE_HELP)
@click.option("--recompute-gates", is_flag=True, help=RECOMPUTE_HELP)
@repo_option
def register(name: str, version: str | None, bump: str | None, rev: str, signing_key: str | None,
             push: bool, remote: str, recompute_gates: bool, repo: Path) -> None:
    """Register a version of pipeline NAME: a signed tag NAME@vX.Y.Z carrying the evidence.

    Refuses a version that exists, a commit that already holds a version, uncommitted pipeline
    results (dvc.lock, gates.json) and a commit whose gates did not pass (exit 1), or with
    --recompute-gates whose gates re-run do not give the committed report (exit 1).
    """
    from modelops_ci.commands.register import register as sign

    click.echo(sign(repo, name, version=version, bump=bump, rev=rev, signing_key=signing_key, remote=remote,
                    push=push, recompute_gates=recompute_gates))


@click.command()
@click.argument("target", metavar="NAME@vX.Y.Z")
@click.option("--to", "stage", required=True, metavar="STAGE", help="The stage to assign (one of the policy's).")
@click.option("--pr", type=click.IntRange(min=1), default=None, help="The promotion pull request's number.")
@click.option("--approver", "approvers", multiple=True, metavar="LOGIN",
              help="A reviewer who approved the PR, recorded in the evidence as a claim (repeatable): "
                   "verify checks the PR's approvals on GitHub, audit shows these as unverified.")
@click.option("--signing-key", default=None, help=KEY_HELP)
@click.option("--push/--no-push", default=True, show_default=True, help=PUSH_HELP)
@click.option("--remote", default="origin", show_default=True, help=REMOTE_HELP)
@click.option("--recompute-gates", is_flag=True, help=RECOMPUTE_HELP)
@repo_option
def promote(target: str, stage: str, pr: int | None, approvers: tuple[str, ...], signing_key: str | None,
            push: bool, remote: str, recompute_gates: bool, repo: Path) -> None:
    """Promote NAME@vX.Y.Z to STAGE: a signed tag NAME#STAGE#N with the evidence, pushed atomically.

    Before the push the tag must pass every rule of `modelops-ci verify`, the PR's approvals
    included (from GitHub, when the stage requires them; a stage that does needs --pr), or it is
    removed: a refused tag never leaves this clone. N is the name's next counter; if another
    promoter takes it first, the next N is signed, verified and pushed instead. Running it again
    after a crash or success returns the same tag, once it verifies.
    """
    from modelops_ci.commands.promote import promote as assign

    click.echo(assign(repo, target, stage, pr=pr, approvers=approvers, signing_key=signing_key, remote=remote,
                      push=push, recompute_gates=recompute_gates))


@click.command()
@click.argument("tags", nargs=-1, metavar="[TAG]...")
@click.option("--all", "every", is_flag=True, help="Verify every registry tag in the repository.")
@click.option("--trust-ref", default=None, metavar="REF",
              help="Where allowed signers and policies are read (default: origin's default branch).")
@click.option("--skip-approvals", is_flag=True,
              help="Do not ask GitHub about the promotion PR's approvals (offline checks only; say so).")
@click.option("--newest", is_flag=True,
              help="Also require each TAG's N to exceed every other N of its name (the check of a tag just pushed).")
@click.option("--series", default=None, metavar="SERIES",
              help="Of a batched family's TAG, re-check only this series' model (default: every series').")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@repo_option
def verify(tags: tuple[str, ...], every: bool, trust_ref: str | None, skip_approvals: bool, newest: bool,
           series: str | None, as_json: bool, repo: Path) -> None:
    """Verify registry tags: signature and signer, evidence, gates, stage order, approvals.

    A batched family's tag also has each series' model, as the DVC cache holds it (`dvc pull`),
    checked against the sha256 its evidence names. Exits 0 when every tag verifies and 1 naming
    the rule (and series) a refused tag breaks. Trust (allowed signers, policies) comes from the
    trusted ref, never from the commit being promoted.
    """
    from modelops_ci.commands import verify as commands

    results = commands.verify(repo, tags, every=every, trust_ref=trust_ref, skip_approvals=skip_approvals,
                              newest=newest, series=series)
    for line in commands.lines(results, json_output=as_json):
        click.echo(line)
    commands.enforce(results)


# -- reading --------------------------------------------------------------------------------------


@click.group()
def registry() -> None:
    """The model registry: git tags in GTO's grammar (name@vX.Y.Z, name#stage#N)."""


@registry.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--deprecated", is_flag=True, help="Include names retired with name@deprecated.")
@click.option("--trust-ref", help="Read allowed signers and policies from this ref (default: origin's default "
                                  "branch, else main/master).")
@repo_option
def show(name: str | None, as_json: bool, deprecated: bool, trust_ref: str | None, repo: Path) -> None:
    """Show every name's latest version and the version in each stage (or NAME's versions).

    Only tags that verify (offline rules) count; the others are listed as not counted.
    """
    from modelops_ci.commands import registry as commands

    click.echo(commands.show(repo, name, deprecated=deprecated, trust_ref=trust_ref, json_output=as_json))


@registry.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def history(name: str, as_json: bool, repo: Path) -> None:
    """List NAME's registry events, oldest first: registrations, stage assignments and so on."""
    from modelops_ci.commands import registry as commands

    click.echo(commands.history(repo, name, json_output=as_json))


@registry.command("sync-mlflow")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def sync_mlflow(names: tuple[str, ...], dry_run: bool, as_json: bool, repo: Path) -> None:
    """Set MLflow registered-model aliases to the git stages (alias STAGE on the version holding it).

    The MLflow model version is found by the sha256 of the model the stage's tag names. Running it
    again changes nothing. Exits 1 if some stage's model version cannot be found in MLflow.
    """
    from modelops_ci.commands import registry as commands

    changes = commands.sync_mlflow(repo, names, dry_run=dry_run)
    for line, to_stderr in commands.sync_lines(changes, dry_run=dry_run, json_output=as_json):
        click.echo(line, err=to_stderr)
    commands.enforce_synced(changes)


@click.command()
@click.argument("target", metavar="NAME[#STAGE]")
@click.option("--series", default=None, metavar="SERIES",
              help="Of a batched family, also trace this series: its key, params, model, verdict, data source.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@repo_option
def audit(target: str, series: str | None, as_json: bool, repo: Path) -> None:
    """Trace NAME's stages (or one) to their data: tag, version, commit, dvc.lock hashes, gate
    report, PR and approvers, signer; and whether the evidence still matches the commit. A batched
    family shows its series summary; --series SERIES traces one of its series."""
    from modelops_ci.commands.audit import audit_target, render

    name, lineages = audit_target(repo, target, series)
    click.echo(render(name, lineages, json_output=as_json))
