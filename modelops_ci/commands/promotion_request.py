"""`modelops-ci promotion-request NAME@vX.Y.Z --to STAGE`: ask for a promotion by pull request.

The request is a branch `promote/<name>-<version>-to-<stage>` off the base branch with one commit
that writes deployments/<stage>.yaml (the version as champion, or as the challenger of a roll-out),
pushed to the remote, and a PR whose body carries the evidence. Merging the approved PR is what
promotes: promote.yml then verifies it and signs `name#stage#N`.

Everything that reaches git, a branch name or a PR title is checked against the registry's name
grammar first, so a NAME, version, stage or base with shell metacharacters or `${{ }}` is refused
before any git or API call; a remote must be one of the clone's remotes, and every such string
reaches git after `--end-of-options`, never where git would read it as an option. The commit is
built on a private index (the work tree and the current branch are not touched) and published
with one push; the PR comes last. Re-running
is safe: an open PR for the branch is returned as is, and a branch already pushed with the same
content is reused, so a PR that failed to open after the push is finished by running again.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelops_ci import git
from modelops_ci.errors import CheckFailed, ModelopsError, UserError
from modelops_ci.github.client import GitHub, GitHubError, GitHubUnavailable, checked_slug, repository
from modelops_ci.github.workflow import checked_ref
from modelops_ci.registry import evidence, tags
from modelops_ci.registry.promotion_names import Request
from modelops_ci.report.markdown import PR_COMMENT_LIMIT

MARKER = "modelops-ci:promotion"
FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "modelops-ci", "GIT_AUTHOR_EMAIL": "modelops-ci@users.noreply.github.com",
                     "GIT_COMMITTER_NAME": "modelops-ci",
                     "GIT_COMMITTER_EMAIL": "modelops-ci@users.noreply.github.com"}
_REMOTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RequestError(UserError):
    """The promotion request cannot be made as asked; the message says what to do."""


class PartlyDone(ModelopsError):
    """The branch was pushed but the PR could not be opened: the message says what exists and
    how to finish or clean up. Exits with the code of the API error behind it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Opened:
    """The request on GitHub: its branch and commit, and its PR (found or created)."""

    branch: str
    commit: str
    pushed: bool  # pushed by this run (False: the remote already had it)
    number: int
    url: str
    created: bool  # the PR was opened by this run (False: one was open already)


def parse(target: str, stage: str, base: str = "main", canary: int | None = None) -> Request:
    """The request for `NAME@vX.Y.Z` to `stage`, or RequestError; no git or network call."""
    parsed = tags.parse(target)
    if parsed is None or parsed.version is None or parsed.cancel or parsed.counter is not None:
        raise RequestError(f"'{target}' is not NAME@vX.Y.Z (e.g. loans@v1.2.0): lowercase letters, digits, "
                           "'-' and '/' in the name, a semantic version after '@'")
    tags.stage_tag(parsed.name, stage, 1)  # the stage's grammar
    if canary is not None and not 1 <= canary <= 100:
        raise RequestError(f"--canary {canary}: the share of traffic is a percentage from 1 to 100")
    request = Request(parsed.name, parsed.version, stage, checked_ref(base), canary)
    if not git_check_ref(request.branch):
        raise RequestError(f"'{request.branch}' is not a valid branch name: choose another version or stage")
    return request


def git_check_ref(branch: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True, text=True,
                          check=False, env=git.clean_env())
    return done.returncode == 0


def open_request(root: Path, request: Request, *, remote: str = "origin", client: GitHub | None = None,
                 slug: str | None = None, server_url: str | None = None) -> Opened:
    """Make the branch, push it and open the PR (or find what an earlier run made)."""
    require_remote(root, remote)
    if client is None and not os.environ.get("GITHUB_TOKEN"):
        raise RequestError("GITHUB_TOKEN is not set: the pull request is opened through the API (on Actions: "
                           "`env: GITHUB_TOKEN: ${{ github.token }}` with `pull-requests: write`)")
    client = client or GitHub.from_env()
    slug = checked_slug(slug) if slug else repository(root)
    web = (server_url or os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    base_commit = fetch_base(root, remote, request.base)
    _fetch_tags(root, remote, request.name)
    registered = _registered(root, request)
    claimed = evidence.collect(root, request.name, registered.commit, version=request.version, stage=request.stage)
    if claimed.verdict != "pass":
        raise CheckFailed(f"the gates of {request.name}@{request.version} say '{claimed.verdict or 'nothing'}' at "
                          f"{registered.commit[:12]}: only a version whose gates passed can be promoted")
    existing = _open_pull(client, slug, request)  # also proves the token works before anything is pushed
    if existing is not None:
        return Opened(request.branch, str(existing["head"]["sha"]), False, int(existing["number"]),
                      str(existing["html_url"]), created=False)
    text = deployment_yaml(_file_at(root, base_commit, request.deployment), request, claimed)
    if text == _file_at(root, base_commit, request.deployment):
        raise RequestError(f"{request.deployment} on {request.base} already deploys {request.name} {request.version} "
                           "as asked: nothing to request")
    commit, pushed = publish_branch(root, remote, request.branch, base_commit, {request.deployment: text},
                                    evidence.message(request.title, claimed))
    try:
        pull = client.post(f"/repos/{slug}/pulls", {"title": request.title, "head": request.branch,
                                                    "base": request.base, "body": pull_body(request, claimed),
                                                    "maintainer_can_modify": True})
    except GitHubError as exc:
        raise _partly_done(exc, request, remote, commit, slug, web) from None
    return Opened(request.branch, commit, pushed, int(pull["number"]), str(pull["html_url"]), created=True)


# -- what is checked ----------------------------------------------------------------------------------


def _registered(root: Path, request: Request) -> tags.Version:
    from modelops_ci.registry import state

    artifact = state.read(root, [request.name]).artifacts.get(request.name)  # verified tags only
    version = artifact.version(request.version) if artifact else None
    if artifact is None or version is None or not version.active:
        listed = ", ".join(v.version for v in artifact.versions if v.active) if artifact else ""
        raise RequestError(f"{request.name}@{request.version} is not registered (registered: {listed or 'none'}): "
                           f"`modelops-ci register {request.name} --version {request.version}` first")
    from modelops_ci.registry.promote import check_stage_order

    check_stage_order(root, artifact, version, request.stage, verb="request")
    return version


def _open_pull(client: GitHub, slug: str, request: Request) -> dict[str, Any] | None:
    owner = slug.split("/")[0]
    pulls = client.get_paginated(f"/repos/{slug}/pulls", {"state": "open", "head": f"{owner}:{request.branch}",
                                                          "base": request.base})
    return next((p for p in pulls if isinstance(p, dict) and p.get("head", {}).get("ref") == request.branch), None)


# -- the deployment file and the PR body -------------------------------------------------------------------


def deployment_yaml(current: str | None, request: Request, claimed: evidence.Evidence) -> str:
    """deployments/<stage>.yaml with `request`'s version in it (the other models kept as they are).

    With no champion in the stage yet, or `--canary 100`, the version becomes the champion. Otherwise
    it becomes the challenger at the first step of its roll-out (`--canary` sets that step), which
    `modelops-ci rollout` moves on by commits once its stage tag is signed. `commits` pins each named
    version to the commit it was registered at, which the approvals rule checks.
    """
    document = _deployment(current, request)
    models: dict[str, Any] = document["spec"]["models"]
    before = models.get(request.name)
    entry: dict[str, Any] = dict(before) if isinstance(before, dict) else {}
    pins = dict(entry.get("commits") or {})
    champion = entry.get("champion")
    if not champion or champion == request.version or request.canary == 100:
        entry = {k: v for k, v in entry.items() if k not in ("challenger", "weight", "since")}
        entry["champion"] = request.version
    else:
        entry["challenger"] = request.version
        entry["steps"] = _steps(entry.get("steps"), request)
        entry["weight"] = request.canary or entry["steps"][0]["weight"]
        entry.pop("since", None)
    pins[request.version] = claimed.commit
    named = {entry.get("champion"), entry.get("challenger")}
    entry["commits"] = {version: commit for version, commit in sorted(pins.items()) if version in named}
    models[request.name] = _ordered(entry)
    document["spec"]["models"] = dict(sorted(models.items()))
    header = (f"# Desired serving state of stage '{request.stage}' (`modelops-ci serve --stage {request.stage}`).\n"
              "# Changed by promotion pull requests (`modelops-ci promotion-request`) and by `modelops-ci rollout`,\n"
              "# which moves the challenger's `weight` step by step; see `modelops-ci schema deployment`.\n")
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


_ENTRY_ORDER = ("champion", "challenger", "mode", "weight", "since", "steps", "analysis", "abort", "commits")


def _ordered(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in sorted(entry, key=lambda k: _ENTRY_ORDER.index(k) if k in _ENTRY_ORDER
                                              else len(_ENTRY_ORDER))}


def _steps(current: Any, request: Request) -> list[dict[str, Any]]:
    """The roll-out's steps: the file's own, else the defaults starting at `--canary`."""
    from modelops_ci.spec.deployment import DEFAULT_STEPS

    if isinstance(current, list) and current:
        weights = [s.get("weight") for s in current if isinstance(s, dict)]
        if request.canary is not None and request.canary not in weights:
            raise RequestError(f"--canary {request.canary} is not a step of {request.name}'s roll-out in "
                               f"{request.deployment} (steps: {', '.join(map(str, weights))}): pass one of them, "
                               "or leave --canary out to start at the first")
        return list(current)
    first = request.canary or DEFAULT_STEPS[0][0]
    shares: list[int] = [first, *(w for w, _ in DEFAULT_STEPS if w > first)]
    return [{"weight": w, "pause": "10m"} if w < 100 else {"weight": w} for w in shares]


def _deployment(current: str | None, request: Request) -> dict[str, Any]:
    fresh: dict[str, Any] = {"apiVersion": "modelops/v1", "kind": "Deployment",
                             "metadata": {"name": request.stage}, "spec": {"stage": request.stage, "models": {}}}
    if current is None:
        return fresh
    try:
        loaded = yaml.safe_load(current)
    except yaml.YAMLError as exc:
        raise RequestError(f"{request.deployment} on {request.base} is not YAML ({exc}): fix it there first") from None
    if not isinstance(loaded, dict) or loaded.get("kind") != "Deployment" or not isinstance(loaded.get("spec"), dict):
        raise RequestError(f"{request.deployment} on {request.base} is not a Deployment (kind: Deployment, spec:): "
                           "fix it there first")
    if not isinstance(loaded["spec"].get("models"), dict):
        loaded["spec"]["models"] = {}
    return loaded


def _traffic(request: Request) -> str:
    if request.canary == 100:
        return "all of it: the version becomes the champion"
    start = f"{request.canary}%" if request.canary else "the first step's share"
    return (f"a roll-out starting at {start} of traffic when a champion is deployed (`modelops-ci rollout` "
            "moves it on); all of it otherwise")


def pull_body(request: Request, claimed: evidence.Evidence, limit: int = PR_COMMENT_LIMIT) -> str:
    """The PR's description: what merging does, then the evidence (as a table and as JSON)."""
    from modelops_ci.report.markdown import text

    rows = [("Version", f"`{request.name}@{request.version}`"), ("Commit", f"`{claimed.commit}`"),
            ("Gates", f"{text(claimed.verdict or 'missing')} (gates.json sha256 `{claimed.gates_digest or '-'}`)"),
            ("Policy", f"sha256 `{claimed.policy_digest}`"), ("Traffic", _traffic(request))]
    rows += [(f"Model {text(path)}", f"md5 {text(digest)}") for path, digest in claimed.model.items()]
    rows += [(f"Data {text(path)}", f"md5 {text(digest)}") for path, digest in claimed.data.items()]
    head = (f"<!-- {MARKER} {request.name}@{request.version} {request.stage} -->\n"
            f"## Promote `{request.name}` {request.version} to **{request.stage}**\n\n"
            f"Merging this pull request asks for `{request.name}` {request.version} in **{request.stage}** "
            f"({request.deployment}). The promotion workflow then checks the approvals and this evidence "
            f"against the base branch's policies and signs the stage tag.\n\n| | |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in rows))
    metrics = "".join(f"| {text(k, 100)} | {v:.4g} |\n" if isinstance(v, int | float) and not isinstance(v, bool)
                      else f"| {text(k, 100)} | {text(v, 100)} |\n" for k, v in sorted(claimed.metrics.items()))
    if metrics:
        head += "\n### Metrics\n\n| Metric | Value |\n|---|--:|\n" + metrics
    block = f"\n<details><summary>Evidence (JSON)</summary>\n\n```json\n{claimed.to_json()}\n```\n</details>\n"
    body = head + block
    if len(body) > limit:  # a huge evidence block: the table says it, the tag message will carry it
        body = head[: limit - 200].rsplit("\n", 1)[0] + "\n\n_(evidence shortened: see the commit message)_\n"
    return body


# -- git -----------------------------------------------------------------------------------------------


def fetch_base(root: Path, remote: str, base: str) -> str:
    """Bring branch `base` from `remote` (as refs/remotes/<remote>/<base>); its commit."""
    require_remote(root, remote)
    tracking = f"refs/remotes/{remote}/{checked_ref(base)}"
    done = git.run("fetch", "--quiet", "--no-tags", "--end-of-options", remote, f"+refs/heads/{base}:{tracking}",
                   cwd=root, check=False)
    if done.returncode != 0:
        raise RequestError(f"cannot fetch branch '{base}' from remote '{remote}' "
                           f"({done.stderr.strip() or 'no such branch'}): pass --base and --remote")
    return git.run("rev-parse", "--verify", "--end-of-options", f"{tracking}^{{commit}}", cwd=root).stdout.strip()


def require_remote(root: Path, remote: str) -> None:
    """`remote` names one of the clone's remotes (never a URL or an option), else RequestError."""
    known = git.run("remote", cwd=root).stdout.split()
    if not _REMOTE.match(remote) or remote not in known:
        raise RequestError(f"--remote '{remote}' is not a remote of {root} (remotes: {', '.join(known) or 'none'}): "
                           "pass the name of one (`git remote -v` lists them)")


def _fetch_tags(root: Path, remote: str, name: str) -> None:
    """The name's registry tags as the remote has them; the local ones serve if this fails."""
    prefix = f"refs/tags/{name.replace(':', '=')}"
    git.run("fetch", "--quiet", "--no-tags", "--end-of-options", remote,
            *(f"+{prefix}{sep}*:{prefix}{sep}*" for sep in "@#"), cwd=root, check=False)


def _file_at(root: Path, commit: str, relative: str) -> str | None:
    found = git.show_file(root, commit, relative)
    return found.decode() if found is not None else None


def publish_branch(root: Path, remote: str, branch: str, base: str, files: Mapping[str, str],
                   message: str) -> tuple[str, bool]:
    """A commit on `base` writing `files`, on `remote`'s `branch`: the commit already there with
    the same content, else a new one pushed (one push: the branch appears whole or not at all).
    Returns (commit, pushed now). Neither the work tree nor any local branch is touched."""
    tree = _tree_with(root, base, files)
    there = _remote_branch(root, remote, branch)
    if there is not None:
        if git.run("rev-parse", "--verify", "--end-of-options", f"{there}^{{tree}}", cwd=root).stdout.strip() == tree:
            return there, False
        raise RequestError(f"branch '{branch}' already exists on '{remote}' with other content (and no open "
                           f"PR for it): delete it (`git push {remote} --delete {branch}`) and run this again, "
                           "or open a PR from it yourself")
    commit = _commit_tree(root, tree, base, message)
    done = git.run("push", "--porcelain", "--end-of-options", remote, f"{commit}:refs/heads/{branch}", cwd=root,
                   check=False)
    if done.returncode != 0:
        raise RequestError(f"could not push branch '{branch}' to '{remote}': "
                           f"{(done.stderr or done.stdout).strip()}. Nothing was pushed and no PR opened. On GitHub "
                           "Actions with `persist-credentials: false`, give git the token for this step")
    return commit, True


def push_on(root: Path, remote: str, branch: str, base: str, files: Mapping[str, str], message: str) -> str:
    """A commit on `base` (the tip of `remote`'s `branch` as fetched) writing `files`, pushed to
    that branch as a fast-forward: if the branch moved meanwhile the push is refused, nothing
    changes and the error says to run again. Returns the commit."""
    commit = _commit_tree(root, _tree_with(root, base, files), base, message)
    done = git.run("push", "--porcelain", "--end-of-options", remote, f"{commit}:refs/heads/{branch}", cwd=root,
                   check=False)
    if done.returncode != 0:
        raise RequestError(f"could not push to '{branch}' on '{remote}': {(done.stderr or done.stdout).strip()}. "
                           "Nothing changed: if the branch moved meanwhile, run again; if it is protected, record "
                           "decisions by pull request (spec.rollout.commits: pull-request)")
    return commit


def _remote_branch(root: Path, remote: str, branch: str) -> str | None:
    """The commit `branch` has on `remote` (fetched here), or None when it has no such branch."""
    ref = f"refs/heads/{branch}"
    listed = git.run("ls-remote", "--heads", "--end-of-options", remote, ref, cwd=root, check=False)
    if listed.returncode != 0:
        raise RequestError(f"cannot list branches of remote '{remote}': {listed.stderr.strip()}")
    if not listed.stdout.strip():
        return None
    git.run("fetch", "--quiet", "--no-tags", "--end-of-options", remote, f"+{ref}:refs/remotes/{remote}/{branch}",
            cwd=root)
    return listed.stdout.split()[0]


def _tree_with(root: Path, base: str, files: Mapping[str, str]) -> str:
    """The tree of `base` with `files` written, built on a private index (work tree untouched)."""
    with tempfile.TemporaryDirectory(prefix="modelops-index-") as folder:
        env = {**git.clean_env(), "GIT_INDEX_FILE": str(Path(folder) / "index")}

        def run(*args: str, stdin: str | None = None) -> str:
            return subprocess.run(["git", *args], cwd=root, env=env, input=stdin, capture_output=True, text=True,
                                  check=True).stdout.strip()

        run("read-tree", base)
        for path, text in files.items():
            blob = run("hash-object", "-w", "--stdin", stdin=text)
            run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        return run("write-tree")


def _commit_tree(root: Path, tree: str, parent: str, message: str) -> str:
    env = git.clean_env()
    if subprocess.run(["git", "var", "GIT_COMMITTER_IDENT"], cwd=root, env=env, capture_output=True,
                      check=False).returncode != 0:
        env = {**env, **FALLBACK_IDENTITY}  # a CI runner without a git identity
    return subprocess.run(["git", "commit-tree", tree, "-p", parent, "-F", "-"], cwd=root, env=env, input=message,
                          capture_output=True, text=True, check=True).stdout.strip()


def _partly_done(exc: GitHubError, request: Request, remote: str, commit: str, slug: str, web: str) -> PartlyDone:
    again = (f"modelops-ci promotion-request {request.name}@{request.version} --to {request.stage} "
             f"--base {request.base}")
    return pull_not_opened(exc, branch=request.branch, base=request.base, remote=remote, commit=commit, slug=slug,
                           web=web, again=again)


def pull_not_opened(exc: GitHubError, *, branch: str, base: str, remote: str, commit: str, slug: str, web: str,
                    again: str) -> PartlyDone:
    """What exists after a pushed branch whose PR could not be opened, and how to finish or undo it."""
    maybe = (" It may have been opened anyway (GitHub did not answer): running again finds it."
             if isinstance(exc, GitHubUnavailable) else "")
    return PartlyDone(
        f"branch '{branch}' is on '{remote}' (commit {commit[:12]}), but the pull request could not be "
        f"opened: {exc}.{maybe}\n"
        f"  to finish: run `{again}` again (it reuses the branch), or open "
        f"{web}/{slug}/compare/{base}...{branch}?expand=1\n"
        f"  to clean up instead: git push {remote} --delete {branch}", exc.exit_code)
