"""Shared helpers for registry tests: real ssh-keygen keys, an allowed_signers file, a repo with
the `loans` pipeline run and committed (so evidence can be collected), and signed tags.

Build the trained repo once per module and clone it per test (a run takes ~10 s):

    @pytest.fixture(scope="module")
    def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp("registry")

    @pytest.fixture
    def repo(_template: Path, tmp_path: Path) -> RegistryRepo:
        return registry_repo(_template, tmp_path / "repo")

`registry_repo` builds lazily inside the first test, under conftest's isolated HOME and git
identity. The repo's branch is `main`; it holds `policies/test.yaml` (`policy_yaml()`: stages
staging → production, ci-bot signs staging, release-managers signs production, which needs one
approval) and `policies/allowed_signers` with the keys in `KEYS` (`attacker` is not in it;
`ci-bot-expired` is ci-bot's old key, valid before 2020 only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.commands.promotion_request import Request, deployment_yaml
from modelops_ci.registry import evidence, signing, tags
from tests.helpers.cli import run_exe
from tests.helpers.github_server import REPO, FakeGitHub
from tests.helpers.repos import git, make_ml_repo, write
from tests.helpers.specs import PERFORMANCE_GATE
from tests.helpers.templates import build_once, copy_repo, session_folder

PIPELINE = "loans"
ALLOWED_SIGNERS = "policies/allowed_signers"
POLICY_FILE = "policies/test.yaml"
EXPIRED = "20200101"
# key name -> (principal in allowed_signers, valid-before) ; None principal: not in the file
KEYS: dict[str, tuple[str | None, str | None]] = {
    "ci-bot": ("ci-bot", None),
    "release-managers": ("release-managers", None),
    "ci-bot-expired": ("ci-bot", EXPIRED),
    "attacker": (None, None),
}


@dataclass(frozen=True)
class SshKey:
    """An ed25519 key made by ssh-keygen: `private` is its file, `public` 'ssh-ed25519 AAAA...'."""

    name: str
    private: Path
    public: str

    @property
    def signing_key(self) -> signing.SigningKey:
        return signing.SigningKey("ssh", str(self.private))


def make_key(folder: Path, name: str) -> SshKey:
    """A new passphrase-less ed25519 key `folder/name` (and `name.pub`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    public = " ".join(path.with_suffix(".pub").read_text().split()[:2])
    return SshKey(name, path, public)


def signer_line(key: SshKey, principals: str, *, valid_before: str | None = None,
                valid_after: str | None = None, namespaces: str | None = "git") -> str:
    """One allowed_signers line: `principals [options] key` (see ALLOWED SIGNERS in ssh-keygen(1))."""
    options = [f'namespaces="{namespaces}"'] if namespaces else []
    options += [f'valid-before="{valid_before}"'] if valid_before else []
    options += [f'valid-after="{valid_after}"'] if valid_after else []
    return " ".join([principals, ",".join(options), key.public] if options else [principals, key.public])


def allowed_signers(keys: Mapping[str, SshKey], spec: Mapping[str, tuple[str | None, str | None]] = KEYS) -> str:
    """allowed_signers text for `keys` as `spec` says (name -> principal, valid-before)."""
    lines = [signer_line(keys[name], principal, valid_before=before)
             for name, (principal, before) in spec.items() if principal is not None]
    return "".join(line + "\n" for line in lines)


def policy_yaml(*, pipeline: str = PIPELINE, stages: Sequence[str] = ("staging", "production"),
                signers: Mapping[str, Sequence[str]] | None = None,
                approvals: Mapping[str, int] | None = None, gates: Sequence[str] = (PERFORMANCE_GATE,)) -> str:
    """A Policy selecting `pipeline` by name, with its stages, signers, approvals and gates."""
    signers = {"staging": ["ci-bot"], "production": ["release-managers"]} if signers is None else signers
    approvals = {"production": 1} if approvals is None else approvals
    promotion = "".join(
        f"    {stage}: {{" + ", ".join(
            ([f"signers: [{', '.join(signers[stage])}]"] if stage in signers else [])
            + ([f"approvals: {approvals[stage]}"] if stage in approvals else [])) + "}\n"
        for stage in stages if stage in signers or stage in approvals)
    gate_lines = "".join(f"    {g}\n" for g in gates)
    return (f"apiVersion: modelops/v1\nkind: Policy\nmetadata: {{name: test}}\nspec:\n"
            f"  selector: {{names: [{pipeline}]}}\n"
            + (f"  gates:\n{gate_lines}" if gates else "")
            + f"  stages: [{', '.join(stages)}]\n"
            + (f"  promotion:\n{promotion}" if promotion else ""))


@dataclass(frozen=True)
class RegistryRepo:
    """A trained, committed repo on branch `main` (`commit`), and the keys its tests sign with."""

    root: Path
    commit: str
    keys: dict[str, SshKey]
    pipeline: str = PIPELINE

    def key(self, name: str | signing.SigningKey) -> signing.SigningKey:
        """The signing key of `KEYS` entry `name` (a SigningKey, e.g. a GPG one, passes through)."""
        return name if isinstance(name, signing.SigningKey) else self.keys[name].signing_key


def build_registry_repo(root: Path, keys_dir: Path, *, policy: str | None = None) -> RegistryRepo:
    """make_ml_repo + a policy + allowed_signers, `run loans`, everything committed on main."""
    make_ml_repo(root)
    git("branch", "-M", "main", cwd=root)
    keys = {name: make_key(keys_dir, name) for name in KEYS}
    write(root, POLICY_FILE, policy or policy_yaml())
    write(root, ALLOWED_SIGNERS, allowed_signers(keys))
    compiled = run_exe("compile", cwd=root)
    assert compiled.exit_code == 0, compiled.stderr
    ran = run_exe("run", PIPELINE, cwd=root)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    git("add", "-A", cwd=root)
    git("commit", "-qm", "run loans", cwd=root)
    return RegistryRepo(root, head(root), keys)


def shared_template(factory: pytest.TempPathFactory) -> Path:
    """The one folder per session (shared by the xdist workers) where the trained registry repo is
    built on first use: every module that clones or copies it (registry_repo, trained_repo) reads
    the same build."""
    return session_folder(factory, "registry-trained")


def _built(template_dir: Path) -> tuple[Path, dict[str, SshKey]]:
    """The trained repo in `template_dir` (built on first use) and its keys."""
    source, keys_dir = template_dir / "repo", template_dir / "keys"

    def build() -> None:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(keys_dir, ignore_errors=True)
        build_registry_repo(source, keys_dir)

    build_once(template_dir, build)
    keys = {name: SshKey(name, keys_dir / name, " ".join((keys_dir / f"{name}.pub").read_text().split()[:2]))
            for name in KEYS}
    return source, keys


def registry_repo(template_dir: Path, dest: Path) -> RegistryRepo:
    """A clone at `dest` (no remote, branch main) of the trained repo kept in `template_dir`
    (built on first use). Only committed files are there: DVC outputs and .modelops/ are not."""
    source, keys = _built(template_dir)
    git("clone", "-q", str(source), str(dest), cwd=template_dir)  # committed files are all verify reads
    git("remote", "remove", "origin", cwd=dest)  # so the trusted ref is this copy's main
    return RegistryRepo(dest, head(dest), keys)


def trained_repo(template_dir: Path, dest: Path) -> RegistryRepo:
    """A full copy at `dest` of the trained repo in `template_dir` (built on first use): git, the
    DVC outputs (data splits, model, predictions) and the DVC cache, as a CI checkout after `dvc pull`."""
    source, keys = _built(template_dir)
    copy_repo(source, dest)
    return RegistryRepo(dest, git("rev-parse", "HEAD", cwd=dest).strip(), keys)


def with_origin(root: Path, tmp_path: Path) -> Path:
    """A bare repository as `origin`, holding main and the registry tags."""
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    git("remote", "add", "origin", str(origin), cwd=root)
    git("push", "-q", "origin", "main", "--tags", cwd=root)
    return origin



def head(root: Path, rev: str = "HEAD") -> str:
    return git("rev-parse", f"{rev}^{{commit}}", cwd=root).strip()


def commit_files(root: Path, files: Mapping[str, str], message: str = "change", *,
                 branch: str | None = None) -> str:
    """Commit `files` (path -> text), on a new `branch` from HEAD if given; returns the commit."""
    if branch:
        git("checkout", "-qb", branch, cwd=root)
    for relative, text in files.items():
        write(root, relative, text)
    git("add", *files, cwd=root)
    git("commit", "-qm", message, cwd=root)
    return head(root)


def evidence_message(root: Path, commit: str, /, *, version: str, stage: str | None = None,
                     pipeline: str = PIPELINE, pr: int | None = None, approvers: Sequence[str] = (),
                     title: str | None = None, **changes: Any) -> str:
    """A tag message with the evidence collected at `commit`; `changes` overwrite fields (to lie)."""
    found = evidence.collect(root, pipeline, commit, version=version, stage=stage, pr=pr,
                             approvers=tuple(approvers))
    title = title or (f"Promote {pipeline} {version} to {stage}" if stage else f"Register {pipeline} {version}")
    return evidence.message(title, replace(found, **changes))


@contextlib.contextmanager
def tagger_date(date: str | None) -> Iterator[None]:
    """Tags made inside carry `date` (e.g. '2019-06-01T12:00:00Z') as their tagger date."""
    if date is None:
        yield
        return
    old = os.environ.get("GIT_COMMITTER_DATE")
    os.environ["GIT_COMMITTER_DATE"] = date
    try:
        yield
    finally:
        if old is None:
            del os.environ["GIT_COMMITTER_DATE"]
        else:
            os.environ["GIT_COMMITTER_DATE"] = old


def sign_tag(root: Path, tag: str, commit: str, message: str, key: signing.SigningKey, *,
             date: str | None = None) -> str:
    """Create the signed annotated `tag` on `commit` with signing.create_tag; returns `tag`."""
    with tagger_date(date):
        signing.create_tag(root, tag, commit, message, key)
    return tag


def register(repo: RegistryRepo, key: str | signing.SigningKey = "ci-bot", /, *, version: str = "v1.0.0",
             at: str | None = None, date: str | None = None, **changes: Any) -> str:
    """Sign `loans@version` on commit `at` (default the trained one) with key `key`; `changes`
    overwrite evidence fields."""
    commit = at or repo.commit
    message = evidence_message(repo.root, commit, version=version, pipeline=repo.pipeline, **changes)
    return sign_tag(repo.root, tags.version_tag(repo.pipeline, version), commit, message, repo.key(key), date=date)


def assign(repo: RegistryRepo, stage: str, counter: int, key: str | signing.SigningKey = "ci-bot", /, *,
           version: str = "v1.0.0", at: str | None = None, date: str | None = None, **changes: Any) -> str:
    """Sign `loans#stage#counter` for `version` on commit `at` (default the trained one) with key
    `key`; `changes` overwrite evidence fields (`stage=`, `model=`, `commit=`, ... to lie)."""
    commit = at or repo.commit
    changes.setdefault("stage", stage)
    message = evidence_message(repo.root, commit, version=version, pipeline=repo.pipeline, **changes)
    tag = tags.stage_tag(repo.pipeline, stage, counter)
    return sign_tag(repo.root, tag, commit, message, repo.key(key), date=date)


def promotion_files(claimed: evidence.Evidence, stage: str, *, version: str | None = None,
                    current: str | None = None) -> dict[str, str]:
    """{deployments/<stage>.yaml: text} as `promotion-request` writes it for `claimed` (at `version`
    instead of claimed.version if given) over the `current` file."""
    request = Request(claimed.pipeline, version or claimed.version, stage, "main")
    return {request.deployment: deployment_yaml(current, request, claimed)}


def add_promotion_pull(server: FakeGitHub, claimed: evidence.Evidence, stage: str, number: int | None = None, *,
                       repo: str = REPO, author: str = "alice", merged: bool = True, base_ref: str = "main",
                       head_ref: str | None = None, files: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The PR `modelops-ci promotion-request` opens for `claimed` to `stage`, merged into main (by
    default): its branch, its title and its one-file diff; `head_ref`, `files`, ... to make it lie."""
    request = Request(claimed.pipeline, claimed.version, stage, base_ref)
    changed = promotion_files(claimed, stage) if files is None else files
    pull = server.add_pull(repo, number, author=author, head_ref=head_ref or request.branch, base_ref=base_ref,
                           title=request.title, files=changed)
    return server.merge(repo, int(pull["number"])) if merged else pull


def unsigned_tag(root: Path, tag: str, commit: str, message: str) -> str:
    """An annotated tag without a signature."""
    git("tag", "-a", "-m", message, tag, commit, cwd=root)
    return tag


def lightweight_tag(root: Path, tag: str, commit: str) -> str:
    git("tag", tag, commit, cwd=root)
    return tag


def tag_object(root: Path, tag: str) -> str:
    """The id of the tag object `refs/tags/<tag>` names."""
    return git("rev-parse", f"refs/tags/{tag}", cwd=root).strip()


def rewrite_tag(root: Path, tag: str, edit: Callable[[str], str]) -> str:
    """Re-make `tag`'s object with `edit` applied to its raw text (signature kept) via `git mktag`,
    and point the ref at it: what an attacker editing a signed message after the fact does."""
    raw = git("cat-file", "tag", tag, cwd=root)
    new = subprocess.run(["git", "mktag"], cwd=root, input=edit(raw), capture_output=True, text=True,
                         check=True).stdout.strip()
    git("update-ref", f"refs/tags/{tag}", new, cwd=root)
    return new


def repoint(root: Path, tag: str, other: str) -> None:
    """Make ref `tag` name the (signed) tag object of `other`."""
    git("update-ref", f"refs/tags/{tag}", tag_object(root, other), cwd=root)


# --- GPG -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpgKey:
    """A passphrase-less ed25519 OpenPGP key in the GnuPG home `home`."""

    home: Path
    fingerprint: str

    @property
    def signing_key(self) -> signing.SigningKey:
        return signing.SigningKey("openpgp", self.fingerprint)

    def public(self) -> str:
        """The armored public key, as committed under policies/gpg/<principal>.asc."""
        return _gpg(self.home, "--armor", "--export", self.fingerprint)


@contextlib.contextmanager
def gpg_home() -> Iterator[Path]:
    """A fresh GnuPG home with a short path (agent sockets live in it); its agent is stopped after."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gpg", dir="/tmp") as folder:
        home = Path(folder)
        home.chmod(0o700)
        try:
            yield home
        finally:
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def make_gpg_key(home: Path, uid: str, *, expire: str = "1y", faked_time: str | None = None) -> GpgKey:
    """A new signing key for `uid`; `faked_time` (e.g. 20190101T000000) makes it in the past, so
    a short `expire` gives an expired key."""
    before = set(_fingerprints(home))
    faked = ["--faked-system-time", faked_time] if faked_time else []
    _gpg(home, *faked, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519",
         "sign", expire)
    (fingerprint,) = set(_fingerprints(home)) - before
    return GpgKey(home, fingerprint)


def gpg_program_at(root: Path, faked_time: str) -> None:
    """Make git in `root` sign with gpg believing it is `faked_time` (a backdated signature)."""
    wrapper = root.parent / "gpg-faked-time"
    wrapper.write_text(f'#!/bin/sh\nexec gpg --faked-system-time {faked_time} "$@"\n')
    wrapper.chmod(0o755)
    git("config", "gpg.program", str(wrapper), cwd=root)


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], check=True, capture_output=True,
                          text=True).stdout


def _fingerprints(home: Path) -> list[str]:
    listing = _gpg(home, "--with-colons", "--list-keys")
    lines = listing.splitlines()
    return [lines[i + 1].split(":")[9] for i, line in enumerate(lines)
            if line.startswith("pub:") and i + 1 < len(lines) and lines[i + 1].startswith("fpr:")]
