"""The registry's write and read side: register, promote, show, history, audit, sync-mlflow, the
pre-push hook, GTO interop. Real git, real ssh-keygen keys, a bare remote in tmp_path.

The repos here are built by hand rather than by running pipelines: a commit needs only what the
evidence reads (compiled/<p>/dvc.lock, params.yaml, reports/<p>/gates.json and metrics.json,
policies/), which keeps these tests to seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelops_ci.registry import evidence, tags
from modelops_ci.registry import promote as writer
from modelops_ci.registry.signing import SigningKey, create_tag
from modelops_ci.registry.verify import SKIP, verify
from tests.helpers.cli import run_cli
from tests.helpers.model_registry import NAME, STAGES, Registry, card, lock, make_registry, make_ssh_key, md5, policy
from tests.helpers.paths import BIN, PROJECT
from tests.helpers.repos import git, write

HOOK = PROJECT / "hooks" / "pre-push"


def _replayed(repo: Path, name: str, stage: str) -> tags.Champion | None:
    """The stage's holder as GTO's replay of every tag gives it (verification aside)."""
    artifact = tags.state(tags.read(repo, names=[name])).get(name)
    return artifact.stages.get(stage) if artifact else None


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return make_registry(tmp_path)


def tag_object(repo: Path, tag: str) -> str:
    return git("cat-file", "tag", tag, cwd=repo)


# -- register and promote -----------------------------------------------------------------------


def test_register_then_promote_through_the_stages(reg: Registry) -> None:
    code, out, err = reg.cli("register", NAME, "--version", "v1.0.0", "--commit", reg.commits[0],
                             "--signing-key", reg.key)
    assert code == 0, err
    assert f"registered loans@v1.0.0 at {reg.commits[0][:12]} (pushed to origin)" in out
    for stage in STAGES:
        code, out, err = reg.cli("promote", "loans@v1.0.0", "--to", stage, "--pr", "7", "--approver", "alice",
                                 "--approver", "bob", "--signing-key", reg.key)
        assert code == 0, err
        assert f"promoted loans@v1.0.0 to {stage}" in out
    assert set(reg.remote_tags()) == {"loans@v1.0.0", "loans#dev#1", "loans#staging#2", "loans#production#3"}

    raw = tag_object(reg.repo, "loans#production#3")
    assert f"object {reg.commits[0]}" in raw and "-----BEGIN SSH SIGNATURE-----" in raw
    claimed = evidence.parse(raw)
    assert (claimed.stage, claimed.version, claimed.pr, claimed.approvers) == ("production", "v1.0.0", 7,
                                                                              ("alice", "bob"))
    assert claimed == evidence.collect(reg.repo, NAME, reg.commits[0], version="v1.0.0", stage="production",
                                       pr=7, approvers=("alice", "bob"))
    assert claimed.verdict == "pass" and claimed.model["models/loans/model.json"] == md5(card(0))

    code, out, _ = reg.cli("promote", "loans@v1.0.0", "--to", "production", "--pr", "7", "--approver", "alice",
                           "--approver", "bob", "--signing-key", reg.key)
    assert code == 0 and "already promoted: loans#production#3" in out
    assert len(reg.remote_tags()) == 4  # a re-run makes no second tag


def test_register_bumps_from_the_highest_version(reg: Registry) -> None:
    key = reg.signing
    assert writer.register(reg.repo, NAME, key, rev=reg.commits[0]).tag == "loans@v0.0.1"
    assert writer.register(reg.repo, NAME, key, rev=reg.commits[1], bump="minor").tag == "loans@v0.1.0"
    written = writer.register(reg.repo, NAME, key, bump="major", remote=writer.Remote(None))
    assert (written.tag, written.commit, written.pushed) == ("loans@v1.0.0", reg.commits[2], False)
    assert "loans@v1.0.0" not in reg.remote_tags()
    assert tags.bump("v1.2.3-rc.1", "patch") == "v1.2.4"


def test_promote_without_push_stays_local_and_is_idempotent(reg: Registry) -> None:
    local = writer.Remote(None)
    writer.register(reg.repo, NAME, reg.signing, version="v2.0.0", remote=local)
    first = writer.promote(reg.repo, NAME, "v2.0.0", "dev", reg.signing, remote=local)
    again = writer.promote(reg.repo, NAME, "v2.0.0", "dev", reg.signing, remote=local)
    assert (first.tag, first.created, again.tag, again.created) == ("loans#dev#1", True, "loans#dev#1", False)
    assert reg.remote_tags() == {}


def test_promoting_an_older_version_again_makes_a_new_tag(reg: Registry) -> None:
    """Idempotence covers re-running the latest promotion; rolling back is a new event."""
    for index, version in enumerate(("v1.0.0", "v1.1.0")):
        writer.register(reg.repo, NAME, reg.signing, version=version, rev=reg.commits[index])
    assert writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing).tag == "loans#dev#1"
    assert writer.promote(reg.repo, NAME, "v1.1.0", "dev", reg.signing).tag == "loans#dev#2"
    back = writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing)
    assert (back.tag, back.created) == ("loans#dev#3", True)
    assert _replayed(reg.repo, NAME, "dev") == tags.Champion("v1.0.0", reg.commits[0], "loans#dev#3")


# -- bad input: exit 2 (a failed gate or skipped stage: exit 1) with a message naming the fix ---------


@pytest.mark.parametrize(("args", "message"), [
    (("register", "Loans"), "not a valid registry name"),
    (("register", NAME, "--version", "1.0.0"), "is not vMAJOR.MINOR.PATCH"),
    (("register", NAME, "--version", "v1.0.0", "--bump", "minor"), "either --version or --bump"),
    (("register", "sales", "--version", "v1.0.0"), "unknown pipeline 'sales'"),
    (("register", NAME, "--commit", "nope"), "'nope' is not a commit"),
    (("register", NAME, "--version", "v0.9.0"), "loans@v0.9.0 already exists"),
    (("register", NAME, "--version", "v2.0.0", "--commit", "HEAD~2"), "already holds loans@v0.9.0"),
    (("promote", "loans", "--to", "dev"), "is not NAME@vX.Y.Z"),
    (("promote", "loans@v9.9.9", "--to", "dev"), "loans@v9.9.9 is not registered"),
    (("promote", "sales@v1.0.0", "--to", "dev"), "unknown name 'sales'"),
    (("promote", "loans@v0.9.0", "--to", "qa"), "stage 'qa' is not in the policy for loans"),
    (("promote", "loans@v0.9.0", "--to", "Prod"), "is not a valid stage name"),
    (("registry", "show", "sales"), "unknown name 'sales'"),
    (("registry", "history", "sales"), "unknown name 'sales'"),
    (("audit", "loans#production"), "no verified version of loans holds stage 'production'"),
    (("promote", "loans@v0.9.0", "--to", "dev", "--remote", "nowhere"), "--remote 'nowhere' is not a remote of"),
    (("register", NAME, "--remote", "nowhere"), "--remote 'nowhere' is not a remote of"),
])
def test_bad_input_exits_2_with_a_clear_message(reg: Registry, args: tuple[str, ...], message: str) -> None:
    writer.register(reg.repo, NAME, reg.signing, version="v0.9.0", rev=reg.commits[0])
    code, out, err = reg.cli(*args, "--signing-key", reg.key) if args[0] in ("register", "promote") else reg.cli(*args)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", [("promote", "loans@v0.9.0", "--to", "dev"), ("register", NAME)])
@pytest.mark.parametrize("injected", ["--upload-pack=touch {marker}", "--receive-pack=touch {marker}",
                                      "ext::sh -c touch% {marker}"])
def test_a_remote_that_is_an_option_or_url_runs_nothing(reg: Registry, tmp_path: Path, command: tuple[str, ...],
                                                         injected: str) -> None:
    """`--remote '--upload-pack=touch /tmp/x'` once ran the command: git read the name as an option."""
    writer.register(reg.repo, NAME, reg.signing, version="v0.9.0", rev=reg.commits[0])
    marker = tmp_path / "pwned"
    code, out, err = reg.cli(*command, "--remote", injected.format(marker=marker), "--signing-key", reg.key)
    assert code == 2, (out, err)
    assert "is not a remote of" in err and "(remotes: origin)" in err and "Traceback" not in err
    assert not marker.exists()
    assert set(reg.remote_tags()) == {"loans@v0.9.0"}


def test_remotes_reach_git_after_end_of_options(reg: Registry, tmp_path: Path) -> None:
    """A remote named like an option (git allows it) is a name, never an option, in every call."""
    marker = tmp_path / "pwned"
    name = f"--upload-pack=touch${{IFS}}{marker}"  # a remote name holds no space
    git("remote", "add", "--", name, str(reg.remote), cwd=reg.repo)
    remote = writer.Remote(name)
    written = writer.register(reg.repo, NAME, reg.signing, version="v0.9.0", rev=reg.commits[0], remote=remote)
    assert written.pushed and not marker.exists()
    assert writer.promote(reg.repo, NAME, "v0.9.0", "dev", reg.signing, remote=remote).pushed
    assert not marker.exists()
    assert set(reg.remote_tags()) == {"loans@v0.9.0", "loans#dev#1"}


def test_a_leftover_identical_tag_that_does_not_verify_is_never_pushed(reg: Registry, tmp_path: Path) -> None:
    """A re-run finds `loans#dev#1` already made here with the very evidence, but signed by a key the
    policy does not allow: it was once pushed as is (exit 0). Now it is dropped and a tag that
    verifies is made in its place."""
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    claimed = evidence.collect(reg.repo, NAME, reg.commits[0], version="v1.0.0", stage="dev")
    stranger = SigningKey("ssh", str(make_ssh_key(tmp_path / "stranger")))
    create_tag(reg.repo, "loans#dev#1", reg.commits[0], evidence.message("Promote loans v1.0.0 to dev", claimed),
             stranger)
    leftover = git("rev-parse", "refs/tags/loans#dev#1", cwd=reg.repo).strip()

    code, out, err = reg.cli("promote", "loans@v1.0.0", "--to", "dev", "--signing-key", reg.key)
    assert code == 0, err
    assert "promoted loans@v1.0.0 to dev: loans#dev#1 (on origin)" in out  # made anew, not "already promoted"
    pushed = reg.remote_tags()["loans#dev#1"]
    assert pushed != leftover
    assert verify(reg.repo, "loans#dev#1", approvals=SKIP).signer == "ci-bot"


def _require_approvals(reg: Registry) -> None:
    """main's policy (the trusted one) now asks for one approval to enter staging."""
    write(reg.repo, f"policies/{NAME}.yaml", policy(NAME, STAGES) + "  promotion:\n    staging: {approvals: 1}\n")
    git("commit", "-qam", "staging needs an approval", cwd=reg.repo)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=reg.repo)


def test_a_stage_needing_approvals_without_a_pr_is_refused_before_signing(reg: Registry) -> None:
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing)
    _require_approvals(reg)
    for push in ("--push", "--no-push"):
        code, _, err = reg.cli("promote", "loans@v1.0.0", "--to", "staging", push, "--signing-key", reg.key)
        assert code == 2, err
        assert "staging requires 1 approval(s) on the promotion pull request, and no --pr was given" in err
        assert "nothing was signed" in err
    assert tags.stage_tag(NAME, "staging", 2) not in git("tag", "--list", cwd=reg.repo).split()
    assert set(reg.remote_tags()) == {"loans@v1.0.0", "loans#dev#1"}


def test_a_tag_whose_approvals_cannot_be_checked_is_removed_not_pushed(reg: Registry,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a PR but no GitHub to ask, the signed tag cannot pass the approvals rule: it stays nowhere."""
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing)
    _require_approvals(reg)
    for variable in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(variable, raising=False)
    code, _, err = reg.cli("promote", "loans@v1.0.0", "--to", "staging", "--pr", "7", "--signing-key", reg.key)
    assert code == 2, err
    assert "cannot tell the GitHub repository" in err and "Traceback" not in err
    assert git("tag", "--list", "loans#staging#*", cwd=reg.repo) == ""
    assert set(reg.remote_tags()) == {"loans@v1.0.0", "loans#dev#1"}


def test_register_refuses_failed_gates_and_uncommitted_results(reg: Registry) -> None:
    failed = reg.add_model(verdict="fail")
    code, _, err = reg.cli("register", NAME, "--commit", failed, "--signing-key", reg.key)
    assert code == 1 and "reports/loans/gates.json at" in err and "says 'fail'" in err
    reg.add_model()
    write(reg.repo, "compiled/loans/dvc.lock", lock(NAME, 99))
    code, _, err = reg.cli("register", NAME, "--signing-key", reg.key)
    assert code == 2 and "uncommitted changes (compiled/loans/dvc.lock)" in err
    assert reg.remote_tags() == {}


def test_promote_refuses_to_skip_a_stage(reg: Registry) -> None:
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    code, _, err = reg.cli("promote", "loans@v1.0.0", "--to", "production", "--signing-key", reg.key)
    assert code == 1 and "promote it to 'staging' first" in err
    assert set(reg.remote_tags()) == {"loans@v1.0.0"}


# -- reading: show, history, audit ----------------------------------------------------------------


def test_show_and_history_as_json_and_text(reg: Registry) -> None:
    for index, version in enumerate(("v1.0.0", "v1.1.0", "v2.0.0-rc.1")):
        writer.register(reg.repo, NAME, reg.signing, version=version, rev=reg.commits[index])
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing)
    writer.promote(reg.repo, NAME, "v1.0.0", "staging", reg.signing)
    writer.promote(reg.repo, NAME, "v1.1.0", "dev", reg.signing)

    code, out, _ = reg.cli("registry", "show", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["stages"] == ["dev", "staging"]
    (artifact,) = shown["artifacts"]
    assert artifact["latest"] == "v2.0.0-rc.1"
    assert {s: v["version"] for s, v in artifact["stages"].items()} == {"dev": "v1.1.0", "staging": "v1.0.0"}
    assert artifact["stages"]["dev"]["tag"] == "loans#dev#3"

    code, out, _ = reg.cli("registry", "show")
    assert out.splitlines() == ["name   latest       #dev    #staging", "loans  v2.0.0-rc.1  v1.1.0  v1.0.0"]

    code, out, _ = reg.cli("registry", "show", NAME, "--json")
    versions = {v["version"]: v["stages"] for v in json.loads(out)["versions"]}
    assert versions == {"v2.0.0-rc.1": [], "v1.1.0": ["dev"], "v1.0.0": ["staging"]}

    code, out, _ = reg.cli("registry", "history", NAME, "--json")
    events = json.loads(out)
    assert [(e["event"], e["version"], e["stage"]) for e in events[-3:]] == [
        ("assignment", "v1.0.0", "dev"), ("assignment", "v1.0.0", "staging"), ("assignment", "v1.1.0", "dev")]
    assert all(e["tagger"] == "Test Committer <committer@example.com>" for e in events)
    code, out, _ = reg.cli("registry", "history", NAME)
    assert code == 0 and "registration  v2.0.0-rc.1" in out


def test_audit_traces_a_stage_to_its_data_and_signer(reg: Registry) -> None:
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[1])
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing, pr=12, approvers=("alice",))
    code, out, err = reg.cli("audit", "loans#dev", "--json")
    assert code == 0, err
    (lineage,) = json.loads(out)
    assert lineage["tag"] == "loans#dev#1" and lineage["version_tag"] == "loans@v1.0.0"
    assert lineage["commit"] == reg.commits[1]
    assert lineage["data"] == {"data/loans/train.parquet": md5("data 1")}
    assert lineage["verdict"] == "pass" and len(lineage["gates_digest"]) == 64
    assert (lineage["pr"], lineage["evidence"]) == (12, "matches")
    # `--approver` is the promoter's word: audit shows it as a claim, never as a checked approval
    assert "approvers" not in lineage
    assert (lineage["claimed_approvers"], lineage["approvals_checked"]) == (["alice"], False)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{reg.key}.pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    assert lineage["signer"]["fingerprint"] == fingerprint
    assert lineage["signer"]["principals"] == ["ci-bot"]
    assert lineage["verification"]["ok"] is True, lineage["verification"]

    code, out, _ = reg.cli("audit", NAME)
    assert code == 0
    assert f"  signer     ci-bot (key {fingerprint})" in out
    assert "  evidence   matches the commit" in out
    assert "  approvers  alice (claimed by the tag, unverified: audit does not ask GitHub; " in out


def test_audit_of_a_stage_held_by_an_unsigned_tag_names_the_refusal(reg: Registry) -> None:
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    forged = evidence.collect(reg.repo, NAME, reg.commits[0], version="v1.0.0", stage="dev")
    forged = evidence.Evidence(**{**forged.__dict__, "gates_digest": "0" * 64})
    subprocess.run(["git", "tag", "-a", "-F", "-", "loans#dev#1", reg.commits[0]], cwd=reg.repo, check=True,
                   input=evidence.message("hand-made", forged), text=True)
    code, _, err = reg.cli("audit", "loans#dev")
    assert code == 2  # an unsigned tag holds no stage: audit follows verified tags only, and says why
    assert "no verified version of loans holds stage 'dev'" in err and "loans#dev#1 [signed]" in err


# -- the registry's state, as GTO replays it ------------------------------------------------------


def _tag(repo: Path, name: str, commit: str) -> None:
    git("tag", "-a", name, "-m", name, commit, cwd=repo)


def test_unassigning_the_holder_hands_the_stage_back_and_withdrawn_versions_lapse(reg: Registry) -> None:
    c = reg.commits
    for index in range(3):
        _tag(reg.repo, f"loans@v1.{index}.0", c[index])
    _tag(reg.repo, "loans#dev#1", c[0])
    _tag(reg.repo, "loans#dev#2", c[1])
    assert _replayed(reg.repo, NAME, "dev") == tags.Champion("v1.1.0", c[1], "loans#dev#2")
    _tag(reg.repo, "loans#dev!#3", c[1])
    assert _replayed(reg.repo, NAME, "dev") == tags.Champion("v1.0.0", c[0], "loans#dev#1")
    _tag(reg.repo, "loans@v1.0.0!#4", c[0])
    assert _replayed(reg.repo, NAME, "dev") is None
    artifact = tags.state(tags.read(reg.repo))[NAME]
    assert artifact.latest == "v1.2.0" and not artifact.version("v1.0.0").active  # type: ignore[union-attr]


# -- GTO interop ---------------------------------------------------------------------------------


def _gto() -> str | None:
    found = BIN / "gto"
    return str(found) if found.exists() else shutil.which("gto")


@pytest.mark.skipif(_gto() is None, reason="gto is not installed (pip install gto: the `test` extra has it)")
def test_gto_show_agrees_with_registry_show(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """GTO orders events by the second they were tagged in: give each tag its own second."""
    clock = iter(range(1_700_000_000, 1_700_001_000, 10))

    def tick() -> None:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{next(clock)} +0000")

    reg.add_model(name="sales", stages=("dev", "production"))
    c = reg.commits
    for index, version in enumerate(("v1.0.0", "v1.1.0", "v1.2.0")):
        tick()
        writer.register(reg.repo, NAME, reg.signing, version=version, rev=c[index])
    tick()
    writer.register(reg.repo, "sales", reg.signing, version="v0.1.0", rev=c[3])
    for version, stage in (("v1.0.0", "dev"), ("v1.0.0", "staging"), ("v1.1.0", "dev"), ("v1.2.0", "dev")):
        tick()
        writer.promote(reg.repo, NAME, version, stage, reg.signing)
    tick()
    writer.promote(reg.repo, "sales", "v0.1.0", "dev", reg.signing)
    tick()
    # unassign the holder: dev falls back to v1.1.0 (signed: an unsigned tag changes nothing of ours)
    create_tag(reg.repo, "loans#dev!#6", c[2], "Unassign dev", reg.signing)

    done = subprocess.run([str(_gto()), "show", "--json"], cwd=reg.repo, capture_output=True, text=True,
                          check=True, env={**os.environ, "GTO_LOG_LEVEL": "ERROR"})
    theirs = json.loads(done.stdout)
    code, out, _ = reg.cli("registry", "show", "--json")
    assert code == 0
    ours = {a["name"]: a for a in json.loads(out)["artifacts"]}
    assert set(theirs) == set(ours) == {"loans", "sales"}
    for name, state in theirs.items():
        assert state["version"] == ours[name]["latest"]
        held = {s: v for s, v in state["stage"].items() if v is not None}
        assert held == {s: v["version"] for s, v in ours[name]["stages"].items()}
    assert theirs["loans"]["stage"]["dev"] == "v1.1.0"


# -- MLflow aliases ------------------------------------------------------------------------------


def test_sync_mlflow_sets_aliases_to_the_git_stages(reg: Registry, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model(NAME)
    for index in range(3):  # versions 1..3, tagged as the training step tags them
        client.create_model_version(NAME, source=str(tmp_path / f"m{index}"),
                                    tags={"sha256": json.loads(card(index))["sha256"]})
    client.set_registered_model_alias(NAME, "champion", "1")  # not a stage: left alone
    client.set_registered_model_alias(NAME, "production", "3")  # no version holds production in git
    for index, version in enumerate(("v1.0.0", "v1.1.0")):
        writer.register(reg.repo, NAME, reg.signing, version=version, rev=reg.commits[index])
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing)
    writer.promote(reg.repo, NAME, "v1.0.0", "staging", reg.signing)
    writer.promote(reg.repo, NAME, "v1.1.0", "dev", reg.signing)

    code, out, err = reg.cli("registry", "sync-mlflow", "--dry-run")
    assert code == 0, err
    assert "would set" in out and client.get_registered_model(NAME).aliases == {"champion": 1, "production": 3}
    code, out, err = reg.cli("registry", "sync-mlflow", "--json")
    assert code == 0, err
    actions = {c["alias"]: (c["action"], c["version"]) for c in json.loads(out)}
    assert actions == {"dev": ("set", "2"), "staging": ("set", "1"), "production": ("removed", None)}
    assert client.get_registered_model(NAME).aliases == {"champion": 1, "dev": 2, "staging": 1}
    code, out, _ = reg.cli("registry", "sync-mlflow", "--json")
    assert {c["action"] for c in json.loads(out)} == {"unchanged"}  # idempotent

    # tags anyone can make in a clone move no alias: an unsigned production tag on model 2's commit
    message = evidence.message("promote", evidence.collect(reg.repo, NAME, reg.commits[2], version="v1.2.0",
                                                           stage="production"))
    subprocess.run(["git", "tag", "-a", "-F", "-", "loans@v1.2.0", reg.commits[2]], cwd=reg.repo, check=True,
                   input=message, text=True)
    subprocess.run(["git", "tag", "-a", "-F", "-", "loans#production#9", reg.commits[2]], cwd=reg.repo,
                   check=True, input=message, text=True)
    code, out, _ = reg.cli("registry", "sync-mlflow", "--json")
    assert code == 0 and {c["action"] for c in json.loads(out)} == {"unchanged"}
    assert "production" not in client.get_registered_model(NAME).aliases
    for forged in ("loans#production#9", "loans@v1.2.0"):
        git("tag", "-d", forged, cwd=reg.repo)

    writer.register(reg.repo, NAME, reg.signing, version="v1.2.0", rev=reg.add_model())  # not in MLflow
    writer.promote(reg.repo, NAME, "v1.2.0", "dev", reg.signing)
    code, _, err = reg.cli("registry", "sync-mlflow")
    assert code == 1 and "loans@dev: not synced: no version of MLflow model 'loans' has tag sha256=" in err
    assert client.get_registered_model(NAME).aliases["dev"] == 2  # left as it was


# -- the pre-push hook ---------------------------------------------------------------------------


def test_pre_push_hook_verifies_each_pushed_registry_tag(reg: Registry, tmp_path: Path) -> None:
    assert os.access(HOOK, os.X_OK)
    log = tmp_path / "verify.log"
    fake = write(tmp_path, "bin/fake-modelops-ci",
                 f'#!/bin/sh\necho "$@" >> {log}\ncase "$*" in *bad*) exit 1;; esac\nexit 0\n')
    fake.chmod(0o755)
    git("config", "core.hooksPath", str(HOOK.parent), cwd=reg.repo)
    env = {**os.environ, "MODELOPS_CI": str(fake)}

    def push(*refs: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "push", "origin", *refs], cwd=reg.repo, env=env, capture_output=True,
                              text=True, check=False)

    local = writer.Remote(None)
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0], remote=local)
    writer.promote(reg.repo, NAME, "v1.0.0", "dev", reg.signing, remote=local)
    assert push("refs/tags/loans@v1.0.0", "refs/tags/loans#dev#1", "HEAD:refs/heads/other").returncode == 0
    assert log.read_text().split()[1] == "--skip-approvals"  # offline by default
    assert set(log.read_text().split()[2:]) == {"loans@v1.0.0", "loans#dev#1"}

    _tag(reg.repo, "loans#bad#2", reg.commits[0])
    refused = push("refs/tags/loans#bad#2")
    assert refused.returncode != 0 and "does not verify" in refused.stderr
    assert "loans#bad#2" not in reg.remote_tags()

    sneaky = push(f"{reg.commits[1]}:refs/tags/loans#dev#3")  # not a local tag: nothing to verify
    assert sneaky.returncode != 0 and "push the tag itself" in sneaky.stderr
    assert push("HEAD:refs/heads/plain").returncode == 0  # no registry tag: verify is not called
    assert len(log.read_text().splitlines()) == 2


# -- end to end: a trained repo (DVC outputs, MLflow versions from training) ----------------------


def test_end_to_end_register_stage_production_verify_audit_and_mlflow_aliases(tmp_path: Path) -> None:
    """register -> staging -> production on a pipeline really run, then every tag verifies, audit
    names each signer, and sync-mlflow puts the aliases on the version training registered."""
    from mlflow import MlflowClient

    from modelops_ci.ml.tracking import tracking_uri
    from modelops_ci.registry import verify
    from tests.helpers.registry import build_registry_repo

    trained = build_registry_repo(tmp_path / "trained", tmp_path / "keys")
    root, local = trained.root, writer.Remote(None)
    writer.register(root, NAME, trained.key("ci-bot"), version="v1.0.0", remote=local)
    writer.promote(root, NAME, "v1.0.0", "staging", trained.key("ci-bot"), pr=4, approvers=("rita",), remote=local)
    written = writer.promote(root, NAME, "v1.0.0", "production", trained.key("release-managers"), pr=5,
                             approvers=("rita",), remote=local)
    assert written.tag == "loans#production#2"
    results = verify.verify_all(root, approvals=verify.SKIP, name=NAME)
    assert all(r.ok for r in results), [str(r) for r in results]

    audited = run_cli("audit", NAME, "--json", "-C", root)
    assert audited.exit_code == 0, audited.stderr
    signers = {lineage["stage"]: lineage["signer"] for lineage in json.loads(audited.stdout)}
    assert {s: (v["status"], v["principals"]) for s, v in signers.items()} == {
        "staging": ("verified", ["ci-bot"]), "production": ("verified", ["release-managers"])}

    synced = run_cli("registry", "sync-mlflow", "-C", root)
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    client = MlflowClient(tracking_uri=tracking_uri(root), registry_uri=tracking_uri(root))
    aliases = client.get_registered_model(NAME).aliases
    assert set(aliases) >= {"staging", "production"} and aliases["staging"] == aliases["production"]
    sha = json.loads((root / "models" / NAME / "model.json").read_text())["sha256"]
    assert client.get_model_version(NAME, str(aliases["production"])).tags["sha256"] == sha
