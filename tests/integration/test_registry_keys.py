"""Where the signing key comes from (--signing-key, $MODELOPS_SIGNING_KEY, git config), what a wrong
key does, and the real hooks/pre-push guarding a bare remote. Real git, real ssh-keygen keys, the
installed modelops-ci; the signer of each tag is identified with ssh-keygen itself, not with the
code under test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelops_ci.errors import EXIT_USER_ERROR
from modelops_ci.registry.signing import KEY_ENV
from tests.helpers.cli import Result, run_cli, run_exe
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.registry import (
    PIPELINE,
    RegistryRepo,
    SshKey,
    assign,
    evidence_message,
    register,
    registry_repo,
    unsigned_tag,
)
from tests.helpers.repos import git

HOOK = PROJECT / "hooks" / "pre-push"
VERSION_TAG = f"{PIPELINE}@v1.0.0"
STAGING_TAG = f"{PIPELINE}#staging#1"
SSH_SIGNATURE = "-----BEGIN SSH SIGNATURE-----"


@pytest.fixture
def repo(registry_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RegistryRepo:
    monkeypatch.delenv(KEY_ENV, raising=False)  # each test says where its key comes from
    return registry_repo(registry_template, tmp_path / "repo")


@pytest.fixture
def remote(repo: RegistryRepo, tmp_path: Path) -> Path:
    """A bare `origin` holding main (the trusted ref's policies and allowed_signers)."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=repo.root)
    git("push", "-q", "origin", "main", cwd=repo.root)
    return bare


# --- helpers ---------------------------------------------------------------------------------------


def signer_of(root: Path, tag: str, keys: dict[str, SshKey]) -> str:
    """The name of the key in `keys` whose valid signature the tag object carries (ssh-keygen decides)."""
    raw = git("cat-file", "tag", tag, cwd=root)
    assert SSH_SIGNATURE in raw, f"{tag} carries no SSH signature:\n{raw}"
    payload, signature = raw.split(SSH_SIGNATURE, 1)
    folder = root.parent / f"check-{tag.replace('#', '_').replace('@', '_')}"
    folder.mkdir(exist_ok=True)
    sig = folder / "tag.sig"
    sig.write_text(SSH_SIGNATURE + signature)
    allowed = folder / "allowed"
    allowed.write_text("".join(f"{name} {key.public}\n" for name, key in keys.items()))
    found = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f", str(allowed)],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0, f"{tag} is signed by none of {sorted(keys)}: {found.stderr}"
    (name,) = found.stdout.split()
    checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", name, "-n", "git",
                              "-s", str(sig)], input=payload, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, f"{tag}: the signature of {name} does not verify: {checked.stderr}"
    return name


def local_tags(root: Path) -> list[str]:
    return git("tag", "--list", cwd=root).split()


def remote_tags(bare: Path) -> dict[str, str]:
    listing = git("ls-remote", "--tags", "--refs", str(bare), cwd=bare)
    return {ref.removeprefix("refs/tags/"): oid for oid, ref in (line.split("\t") for line in listing.splitlines())}


def register_cli(repo: RegistryRepo, *args: str) -> Result:
    return run_cli("register", PIPELINE, "--version", "v1.0.0", "--no-push", *args, "-C", repo.root)


def use_git_config_key(repo: RegistryRepo, name: str) -> None:
    git("config", "gpg.format", "ssh", cwd=repo.root)
    git("config", "user.signingkey", str(repo.keys[name].private), cwd=repo.root)


def install_hook(root: Path) -> None:
    """hooks/pre-push as the README installs it: copied into .git/hooks, executable."""
    target = root / ".git" / "hooks" / "pre-push"
    shutil.copy2(HOOK, target)
    target.chmod(0o755)


def push(root: Path, *refs: str) -> subprocess.CompletedProcess[str]:
    """`git push origin REFS` with the installed modelops-ci first on PATH (MODELOPS_CI unset)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MODELOPS_CI", "MODELOPS_VERIFY_ARGS")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["git", "push", "origin", *refs], cwd=root, env=env, capture_output=True, text=True,
                          check=False)


# --- 1. where the key comes from -----------------------------------------------------------------


def test_key_from_git_config_when_no_flag_and_no_environment(repo: RegistryRepo) -> None:
    assert KEY_ENV not in os.environ
    use_git_config_key(repo, "release-managers")
    done = register_cli(repo)
    assert done.exit_code == 0, done.stderr
    assert signer_of(repo.root, VERSION_TAG, repo.keys) == "release-managers"
    verified = run_exe("verify", "--skip-approvals", VERSION_TAG, cwd=repo.root)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert "signed by release-managers" in verified.stdout


def test_key_from_the_environment_as_private_key_text_the_ci_path(repo: RegistryRepo,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    text = repo.keys["ci-bot"].private.read_text()
    assert "PRIVATE KEY" in text
    monkeypatch.setenv(KEY_ENV, text)
    done = run_exe("register", PIPELINE, "--version", "v1.0.0", "--no-push", cwd=repo.root)
    assert done.exit_code == 0, done.stderr
    assert signer_of(repo.root, VERSION_TAG, repo.keys) == "ci-bot"
    verified = run_exe("verify", "--skip-approvals", VERSION_TAG, cwd=repo.root)
    assert verified.exit_code == 0 and "signed by ci-bot" in verified.stdout, verified.stdout


def test_key_from_the_environment_as_a_path(repo: RegistryRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, str(repo.keys["release-managers"].private))
    done = register_cli(repo)
    assert done.exit_code == 0, done.stderr
    assert signer_of(repo.root, VERSION_TAG, repo.keys) == "release-managers"


def test_precedence_flag_then_environment_then_git_config(repo: RegistryRepo,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented order (signing.resolve_key, --signing-key's help): flag > env > git config."""
    keys = repo.keys

    def signer_after(*args: str) -> str:
        done = register_cli(repo, *args)
        assert done.exit_code == 0, done.stderr
        name = signer_of(repo.root, VERSION_TAG, keys)
        git("tag", "-d", VERSION_TAG, cwd=repo.root)  # one version per commit: make it again
        return name

    use_git_config_key(repo, "ci-bot")
    monkeypatch.setenv(KEY_ENV, str(keys["release-managers"].private))
    assert signer_after() == "release-managers"  # env beats git config
    assert signer_after("--signing-key", str(keys["ci-bot"].private)) == "ci-bot"  # flag beats env
    use_git_config_key(repo, "release-managers")
    monkeypatch.setenv(KEY_ENV, str(keys["ci-bot"].private))
    assert signer_after() == "ci-bot"  # env beats git config (the other way round)
    assert signer_after("--signing-key", str(keys["release-managers"].private)) == "release-managers"
    monkeypatch.delenv(KEY_ENV)
    assert signer_after() == "release-managers"  # only git config left


# --- 2. a wrong key: exit 2, a clear message, no tag anywhere ------------------------------------


def test_no_key_anywhere_is_a_user_error(repo: RegistryRepo, remote: Path) -> None:
    done = run_cli("register", PIPELINE, "--version", "v1.0.0", "-C", repo.root)
    assert done.exit_code == EXIT_USER_ERROR, done.stdout + done.stderr
    assert "no signing key" in done.stderr and KEY_ENV in done.stderr and "Traceback" not in done.stderr
    assert local_tags(repo.root) == [] and remote_tags(remote) == {}


@pytest.mark.parametrize("garbage", [
    "not-a-key",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END OPENSSH PRIVATE KEY-----\n",
], ids=["word", "private-key-armour-around-garbage"])
def test_garbage_in_the_environment_fails_cleanly_and_makes_no_tag(repo: RegistryRepo, remote: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   garbage: str) -> None:
    monkeypatch.setenv(KEY_ENV, garbage)
    done = run_exe("register", PIPELINE, "--version", "v1.0.0", cwd=repo.root)
    made = {t: git("cat-file", "tag", t, cwd=repo.root) for t in local_tags(repo.root)}
    assert done.exit_code == EXIT_USER_ERROR, (done.stdout + done.stderr, made, remote_tags(remote))
    # git 2.39 writes the tag unsigned and exits 0 when ssh-keygen cannot load the key
    assert f"git made tag {VERSION_TAG} without a signature, so it was removed" in done.stderr
    assert "Traceback" not in done.stderr and garbage.strip() not in done.stderr  # a secret stays out of logs
    assert local_tags(repo.root) == [] and remote_tags(remote) == {}


@pytest.mark.parametrize(("key", "rule"), [("attacker", "signer-unknown"), ("release-managers", "signer-stage")])
def test_promote_with_a_key_not_allowed_for_the_stage_is_refused_and_leaves_no_tag(
        repo: RegistryRepo, remote: Path, key: str, rule: str) -> None:
    """promote verifies the tag it made before pushing (the pre-push hook, installed here as the
    README says, would refuse it too): exit 2, the rule named, the local tag deleted again."""
    install_hook(repo.root)
    registered = run_exe("register", PIPELINE, "--version", "v1.0.0", "--signing-key", repo.keys["ci-bot"].private,
                         cwd=repo.root)
    assert registered.exit_code == 0, registered.stderr
    assert set(remote_tags(remote)) == {VERSION_TAG}

    done = run_exe("promote", VERSION_TAG, "--to", "staging", "--signing-key", repo.keys[key].private,
                   cwd=repo.root)
    assert done.exit_code == EXIT_USER_ERROR, done.stdout + done.stderr
    assert f"{STAGING_TAG} does not verify, so it was removed and not pushed: [{rule}]" in done.stderr
    assert "Traceback" not in done.stderr
    assert STAGING_TAG not in local_tags(repo.root)
    assert set(remote_tags(remote)) == {VERSION_TAG}


def test_promote_in_ci_with_a_key_not_allowed_for_the_stage_makes_no_tag(
        repo: RegistryRepo, remote: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI path (promote.yml): the key's text in the environment, no pre-push hook installed. A
    real key that allowed_signers does not hold must not leave a stage tag here or on the remote."""
    registered = run_exe("register", PIPELINE, "--version", "v1.0.0", "--signing-key", repo.keys["ci-bot"].private,
                         cwd=repo.root)
    assert registered.exit_code == 0, registered.stderr
    monkeypatch.setenv(KEY_ENV, repo.keys["attacker"].private.read_text())
    done = run_exe("promote", VERSION_TAG, "--to", "staging", cwd=repo.root)
    assert done.exit_code == EXIT_USER_ERROR, (done.stdout + done.stderr, remote_tags(remote))
    assert f"{STAGING_TAG} does not verify, so it was removed and not pushed: [signer-unknown]" in done.stderr
    assert STAGING_TAG not in local_tags(repo.root)
    assert set(remote_tags(remote)) == {VERSION_TAG}


# --- 3. the real pre-push hook -------------------------------------------------------------------


def test_real_pre_push_hook_refuses_unverified_tags_and_pushes_verified_ones(repo: RegistryRepo,
                                                                             remote: Path) -> None:
    assert os.access(HOOK, os.X_OK)
    install_hook(repo.root)
    version = register(repo, "ci-bot")
    pushed = push(repo.root, f"refs/tags/{version}")
    assert pushed.returncode == 0, pushed.stderr
    assert remote_tags(remote) == {version: git("rev-parse", f"refs/tags/{version}", cwd=repo.root).strip()}

    message = evidence_message(repo.root, repo.commit, version="v1.0.0", stage="staging")
    unsigned_tag(repo.root, STAGING_TAG, repo.commit, message)
    refused = push(repo.root, f"refs/tags/{STAGING_TAG}")
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr  # git passes the hook's stdout and stderr on
    assert f"{STAGING_TAG}: REFUSED [signed]" in said and "does not verify" in refused.stderr
    assert STAGING_TAG not in remote_tags(remote)

    git("tag", "-d", STAGING_TAG, cwd=repo.root)
    assign(repo, "staging", 1, "attacker")
    refused = push(repo.root, f"refs/tags/{STAGING_TAG}")
    assert refused.returncode != 0
    assert f"{STAGING_TAG}: REFUSED [signer-unknown]" in refused.stdout + refused.stderr
    assert STAGING_TAG not in remote_tags(remote)

    git("tag", "-d", STAGING_TAG, cwd=repo.root)
    assign(repo, "staging", 1, "ci-bot")
    accepted = push(repo.root, f"refs/tags/{STAGING_TAG}")
    assert accepted.returncode == 0, accepted.stderr
    assert remote_tags(remote)[STAGING_TAG] == git("rev-parse", f"refs/tags/{STAGING_TAG}", cwd=repo.root).strip()


def test_real_pre_push_hook_refuses_a_whole_push_holding_one_bad_tag(repo: RegistryRepo, remote: Path) -> None:
    """A good tag pushed together with a bad one (signed by ci-bot's expired key) does not land either."""
    install_hook(repo.root)
    version = register(repo, "ci-bot")
    assign(repo, "staging", 1, "ci-bot-expired", date="2019-06-01T12:00:00Z")
    refused = push(repo.root, f"refs/tags/{version}", f"refs/tags/{STAGING_TAG}")
    assert refused.returncode != 0
    assert f"{STAGING_TAG}: REFUSED [signer-expired]" in refused.stdout + refused.stderr
    assert f"{STAGING_TAG} [signer-expired]" in refused.stderr and "does not verify" in refused.stderr
    assert remote_tags(remote) == {}
