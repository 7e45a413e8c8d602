"""`verify` on real git repos and real ssh-keygen keys: the happy path, then the attack matrix,
each refused with the rule it breaks named."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelops_ci.registry import trust
from modelops_ci.registry.evidence import Evidence
from modelops_ci.registry.tags import RegistryError
from modelops_ci.registry.verify import RULES, SKIP, VerifyResult, verify, verify_all
from tests.helpers.cli import run_exe
from tests.helpers.registry import (
    ALLOWED_SIGNERS,
    PERFORMANCE_GATE,
    POLICY_FILE,
    GpgKey,
    RegistryRepo,
    allowed_signers,
    assign,
    commit_files,
    evidence_message,
    gpg_home,
    gpg_program_at,
    lightweight_tag,
    make_gpg_key,
    policy_yaml,
    register,
    repoint,
    rewrite_tag,
    signer_line,
    trained_repo,
    unsigned_tag,
)
from tests.helpers.repos import git


@pytest.fixture
def repo(registry_template: Path, tmp_path: Path) -> RegistryRepo:
    """A full copy (DVC outputs and cache too): a change re-run on it runs only the stages it touches."""
    return trained_repo(registry_template, tmp_path / "repo")


def refused(result: VerifyResult, rule: str) -> None:
    assert rule in RULES
    assert not result.ok, result
    assert result.rule == rule, result
    assert result.reason


# --- happy path ----------------------------------------------------------------------------------


def test_a_registered_version_promoted_by_allowed_keys_verifies(repo: RegistryRepo) -> None:
    version = register(repo)
    staging = assign(repo, "staging", 1)

    registered = verify(repo.root, version)
    assert registered.ok, registered
    assert (registered.signer, registered.commit, registered.version) == ("ci-bot", repo.commit, "v1.0.0")
    promoted = verify(repo.root, staging)
    assert promoted.ok, promoted
    assert promoted.signer == "ci-bot" and promoted.rule == ""
    assert "staging" in str(promoted)  # its speed is benchmarks/bench_verify.py's


def test_production_after_staging_verifies_with_approvals(repo: RegistryRepo) -> None:
    register(repo)
    assign(repo, "staging", 1)
    production = assign(repo, "production", 2, "release-managers", pr=7, approvers=["alice"])
    seen: list[tuple[str, str, int | None]] = []

    def approvals(pipeline: str, stage: str, evidence: Evidence, warned: frozenset[str]) -> tuple[bool, str, str]:
        seen.append((pipeline, stage, evidence.pr))
        return True, "approvals", "1 of 1 approvals"

    assert verify(repo.root, production, approvals=approvals).ok
    assert ("loans", "production", 7) in seen
    assert verify(repo.root, production, approvals=SKIP).ok
    results = verify_all(repo.root, approvals=SKIP)
    assert [r.tag for r in results if r.ok] == ["loans#production#2", "loans#staging#1", "loans@v1.0.0"]


def test_approvals_are_required_unless_skipped_and_the_checker_names_its_rule(repo: RegistryRepo) -> None:
    register(repo)
    assign(repo, "staging", 1)
    production = assign(repo, "production", 2, "release-managers")

    refused(verify(repo.root, production), "approvals")

    def self_approved(pipeline: str, stage: str, evidence: Evidence,
                      warned: frozenset[str]) -> tuple[bool, str, str]:
        if stage == "staging":
            return True, "approvals", "the policy requires none"
        return False, "approvals-self", "the author approved their own PR"

    result = verify(repo.root, production, approvals=self_approved)
    assert (result.ok, result.rule) == (False, "approvals-self")
    staging_refused = verify(repo.root, production, approvals=lambda *_: (False, "approvals-few", "0 of 1"))
    assert staging_refused.rule == "stage-order"  # the checker judges the staging tag too


# --- the attack matrix ---------------------------------------------------------------------------

Attack = Callable[[RegistryRepo], str]


def unsigned(repo: RegistryRepo) -> str:
    register(repo)
    message = evidence_message(repo.root, repo.commit, version="v1.0.0", stage="staging")
    return unsigned_tag(repo.root, "loans#staging#1", repo.commit, message)


def lightweight(repo: RegistryRepo) -> str:
    register(repo)
    return lightweight_tag(repo.root, "loans#staging#1", repo.commit)


def unknown_key(repo: RegistryRepo) -> str:
    register(repo)
    return assign(repo, "staging", 1, "attacker")


def key_of_another_stage(repo: RegistryRepo) -> str:
    register(repo)
    return assign(repo, "staging", 1, "release-managers")


def signers_added_in_the_promoted_change(repo: RegistryRepo) -> str:
    """The promoted commit lets the attacker's key sign as ci-bot: trust comes from main, not it."""
    text = (repo.root / ALLOWED_SIGNERS).read_text() + signer_line(repo.keys["attacker"], "ci-bot") + "\n"
    commit = commit_files(repo.root, {ALLOWED_SIGNERS: text}, "add a signer", branch="promo")
    register(repo, at=commit)
    tag = assign(repo, "staging", 1, "attacker", at=commit)
    assert verify(repo.root, tag, trust_ref="promo").ok  # the attack works if the commit is trusted
    return tag


def policy_changed_in_the_promoted_change(repo: RegistryRepo) -> str:
    """The promoted commit's policy lets release-managers sign staging: the policy on main rules."""
    policy = policy_yaml(signers={"staging": ["ci-bot", "release-managers"], "production": ["release-managers"]})
    commit = commit_files(repo.root, {POLICY_FILE: policy}, "loosen the policy", branch="promo")
    register(repo, at=commit)
    tag = assign(repo, "staging", 1, "release-managers", at=commit)
    assert verify(repo.root, tag, trust_ref="promo").ok
    return tag


def expired_key_backdated(repo: RegistryRepo) -> str:
    """ci-bot's old key (valid before 2020) signs now and claims 2019: git itself accepts it."""
    register(repo)
    tag = assign(repo, "staging", 1, "ci-bot-expired", date="2019-06-01T12:00:00Z")
    git("config", "gpg.ssh.allowedSignersFile", str(repo.root / ALLOWED_SIGNERS), cwd=repo.root)
    by_git = subprocess.run(["git", "verify-tag", tag], cwd=repo.root, capture_output=True, text=True)
    assert by_git.returncode == 0, by_git.stderr  # git judges the key at the tagger date
    return tag


def message_edited_after_signing(repo: RegistryRepo) -> str:
    register(repo)
    tag = assign(repo, "staging", 1)
    rewrite_tag(repo.root, tag, lambda raw: raw.replace('"pr":null', '"pr":42'))
    return tag


def ref_repointed_to_another_signed_tag(repo: RegistryRepo) -> str:
    register(repo)
    assign(repo, "staging", 1)
    repoint(repo.root, "loans#production#2", "loans#staging#1")
    return "loans#production#2"


def stage_skipped(repo: RegistryRepo) -> str:
    register(repo)
    return assign(repo, "production", 1, "release-managers")


def unregistered_version(repo: RegistryRepo) -> str:
    return assign(repo, "staging", 1)


def evidence_digest_mismatch(repo: RegistryRepo) -> str:
    register(repo)
    forged = {"models/loans/model.skops": "0" * 32, "models/loans/model.json": "1" * 32}
    return assign(repo, "staging", 1, model=forged)


def _gates_json(repo: RegistryRepo, edit: Callable[[str], str]) -> str:
    report = (repo.root / "reports/loans/gates.json").read_text()
    changed = edit(report)
    assert changed != report
    return commit_files(repo.root, {"reports/loans/gates.json": changed}, "gates")


def failed_gate(repo: RegistryRepo) -> str:
    commit = _gates_json(repo, lambda text: text.replace('"status": "pass"', '"status": "fail"')
                         .replace('"verdict": "pass"', '"verdict": "fail"'))
    register(repo, at=commit)
    return assign(repo, "staging", 1, at=commit)


def gate_required_by_the_trusted_policy_missing(repo: RegistryRepo) -> str:
    """The commit's own report passes without the performance gate main's policy requires."""
    commit = _gates_json(repo, lambda text: text.replace('"gate": "performance"', '"gate": "other"'))
    register(repo, at=commit)
    return assign(repo, "staging", 1, at=commit)


def gates_json_edited_without_rerunning(repo: RegistryRepo) -> str:
    """gates.json says what the author wants; dvc.lock still records the report the gates wrote."""
    commit = _gates_json(repo, lambda text: text.replace('"reason": "', '"reason": "reviewed: ', 1))
    register(repo, at=commit)
    return assign(repo, "staging", 1, at=commit)


def threshold_loosened_in_the_promoted_change(repo: RegistryRepo) -> str:
    """The promoted commit keeps every gate but lowers the policy's floor, and the gates pass under it."""
    commit = _rerun_under(repo, PERFORMANCE_GATE.replace("min: 0.6", "min: 0.3"))
    register(repo, at=commit)
    return assign(repo, "staging", 1, at=commit)


def _rerun_under(repo: RegistryRepo, performance_gate: str) -> str:
    """On branch `promo`: the policy with this performance gate, compiled, run and committed."""
    git("checkout", "-qb", "promo", cwd=repo.root)
    (repo.root / POLICY_FILE).write_text(policy_yaml(gates=(performance_gate,)))
    for command in (("compile",), ("run", repo.pipeline)):
        result = run_exe(*command, cwd=repo.root)
        assert result.exit_code == 0, result.stdout + result.stderr
    git("add", "-A", cwd=repo.root)
    git("commit", "-qm", "re-run the gates", cwd=repo.root)
    return git("rev-parse", "HEAD", cwd=repo.root).strip()


ATTACKS: dict[str, tuple[Attack, str]] = {
    "unsigned annotated tag": (unsigned, "signed"),
    "lightweight tag": (lightweight, "annotated"),
    "key not in allowed_signers": (unknown_key, "signer-unknown"),
    "key allowed only for another stage": (key_of_another_stage, "signer-stage"),
    "allowed_signers changed in the promoted change": (signers_added_in_the_promoted_change, "signer-unknown"),
    "policy changed in the promoted change": (policy_changed_in_the_promoted_change, "signer-stage"),
    "expired key with a backdated tag": (expired_key_backdated, "signer-expired"),
    "message edited after signing": (message_edited_after_signing, "signature"),
    "ref re-pointed to another signed tag": (ref_repointed_to_another_signed_tag, "tag-name"),
    "stage skipped": (stage_skipped, "stage-order"),
    "unregistered version": (unregistered_version, "registered"),
    "evidence digest mismatch": (evidence_digest_mismatch, "digest"),
    "failed gate": (failed_gate, "gates"),
    "gate of the trusted policy missing": (gate_required_by_the_trusted_policy_missing, "gates"),
    "gates.json edited without re-running": (gates_json_edited_without_rerunning, "gates"),
    "threshold loosened in the promoted change": (threshold_loosened_in_the_promoted_change, "gates"),
}


# What the refusal must say, where the rule alone does not tell the user what to fix.
REASONS: dict[str, tuple[str, ...]] = {
    "gates.json edited without re-running": ("reports/loans/gates.json", "compiled/loans/dvc.lock", "re-run"),
    "threshold loosened in the promoted change": ("performance.metrics.roc_auc.min = 0.3", "policy 'test'",
                                                  "at least 0.6"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_with_its_rule_named(repo: RegistryRepo, attack: str) -> None:
    make, rule = ATTACKS[attack]
    tag = make(repo)
    result = verify(repo.root, tag, approvals=SKIP)
    refused(result, rule)
    for fragment in REASONS.get(attack, ()):
        assert fragment in result.reason
    assert any(r.tag == tag and r.rule == rule for r in verify_all(repo.root, approvals=SKIP))


# --- more refusals and edges ---------------------------------------------------------------------


def test_a_promoted_change_that_makes_a_threshold_stricter_verifies(repo: RegistryRepo) -> None:
    commit = _rerun_under(repo, PERFORMANCE_GATE.replace("confidence: 0.9", "confidence: 0.95"))
    register(repo, at=commit)
    result = verify(repo.root, assign(repo, "staging", 1, at=commit), approvals=SKIP)
    assert result.ok, result


def test_production_refused_when_its_staging_tag_does_not_verify(repo: RegistryRepo) -> None:
    register(repo)
    assign(repo, "staging", 1, "attacker")
    production = assign(repo, "production", 2, "release-managers")
    result = verify(repo.root, production, approvals=SKIP)
    refused(result, "stage-order")
    assert "loans#staging#1 does not verify ([signer-unknown]" in result.reason


def test_staging_moved_on_does_not_undo_an_earlier_production(repo: RegistryRepo) -> None:
    register(repo)
    assign(repo, "staging", 1)
    production = assign(repo, "production", 2, "release-managers")
    later = commit_files(repo.root, {"README.md": "v2\n"}, "v2")
    register(repo, version="v2.0.0", at=later)
    assign(repo, "staging", 3, version="v2.0.0", at=later)
    assert verify(repo.root, production, approvals=SKIP).ok
    refused(verify(repo.root, assign(repo, "production", 4, "release-managers"), approvals=SKIP), "stage-order")


def test_stage_tag_on_another_commit_than_its_version(repo: RegistryRepo) -> None:
    register(repo)
    later = commit_files(repo.root, {"README.md": "later\n"}, "later")
    refused(verify(repo.root, assign(repo, "staging", 1, at=later), approvals=SKIP), "registered")


def test_evidence_naming_another_stage_or_commit(repo: RegistryRepo) -> None:
    register(repo)
    tag = assign(repo, "staging", 1, stage="production")
    refused(verify(repo.root, tag), "evidence")
    later = commit_files(repo.root, {"README.md": "later\n"}, "later")
    refused(verify(repo.root, assign(repo, "staging", 2, commit=later)), "target")


def test_missing_tag_and_non_registry_name_are_user_errors(repo: RegistryRepo) -> None:
    with pytest.raises(RegistryError, match="no tag"):
        verify(repo.root, "loans#staging#9")
    with pytest.raises(RegistryError, match="not a registry tag"):
        verify(repo.root, "v1.0.0")


def test_no_allowed_signers_on_the_trusted_ref(repo: RegistryRepo) -> None:
    git("rm", "-q", ALLOWED_SIGNERS, cwd=repo.root)
    git("commit", "-qm", "drop signers", cwd=repo.root)
    refused(verify(repo.root, register(repo)), "trust")


def test_trust_ref_defaults_to_origin_head_then_main(repo: RegistryRepo, tmp_path: Path) -> None:
    assert trust.resolve_ref(repo.root) == ("refs/heads/main", repo.commit)
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo.root), str(clone), cwd=tmp_path)
    git("checkout", "-qb", "main-local", cwd=clone)
    assert trust.resolve_ref(clone)[0] == "refs/remotes/origin/main"
    with pytest.raises(trust.TrustError, match="--trust-ref"):
        trust.resolve_ref(repo.root, "no-such-branch")


def test_allowed_signers_lines_are_parsed_and_narrowed(repo: RegistryRepo) -> None:
    text = allowed_signers(repo.keys) + "# a comment\n\n"
    lines = trust.parse_allowed_signers(text)
    assert [line.principals for line in lines] == [("ci-bot",), ("release-managers",), ("ci-bot",)]
    loaded = trust.Trust("main", repo.commit, lines, ())
    assert loaded.allowed_signers(frozenset({"release-managers"})).startswith("release-managers ")
    assert 'valid-before="20200101"' in loaded.allowed_signers(None)
    assert "valid-before" not in loaded.allowed_signers(None, validity=False)
    with pytest.raises(trust.TrustError, match="allowed_signers:1"):
        trust.parse_allowed_signers("ci-bot not-a-key\n")


# --- GPG -------------------------------------------------------------------------------------------


@pytest.fixture
def gpg(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with gpg_home() as home:
        monkeypatch.setenv("GNUPGHOME", str(home))
        yield home


def test_gpg_signatures_are_checked_against_the_trusted_keys(repo: RegistryRepo, gpg: Path) -> None:
    keys: dict[str, GpgKey] = {
        "bot": make_gpg_key(gpg, "CI Bot <ci@example.com>"),
        "old": make_gpg_key(gpg, "Old Bot <old@example.com>", expire="1d", faked_time="20190101T000000"),
        "manager": make_gpg_key(gpg, "Manager <rm@example.com>"),
        "stranger": make_gpg_key(gpg, "Stranger <x@example.com>"),
    }
    commit = commit_files(repo.root, {"policies/gpg/ci-bot.asc": keys["bot"].public() + keys["old"].public(),
                                      "policies/gpg/release-managers.asc": keys["manager"].public()}, "gpg keys")

    version = register(repo, keys["bot"].signing_key, at=commit)
    result = verify(repo.root, version)
    assert (result.ok, result.signer) == (True, "ci-bot"), result
    assert verify(repo.root, assign(repo, "staging", 1, keys["bot"].signing_key, at=commit)).ok
    refused(verify(repo.root, assign(repo, "staging", 2, keys["stranger"].signing_key, at=commit)),
            "signer-unknown")
    refused(verify(repo.root, assign(repo, "staging", 3, keys["manager"].signing_key, at=commit)),
            "signer-stage")
    edited = assign(repo, "staging", 4, keys["bot"].signing_key, at=commit)
    rewrite_tag(repo.root, edited, lambda raw: raw.replace('"pr":null', '"pr":42'))
    refused(verify(repo.root, edited), "signature")
    gpg_program_at(repo.root, "20190101T100000")
    refused(verify(repo.root, assign(repo, "staging", 5, keys["old"].signing_key, at=commit)), "signer-expired")


def test_promotion_rule_reads_the_trusted_policy(repo: RegistryRepo) -> None:
    commit_files(repo.root, {POLICY_FILE: policy_yaml(approvals={"production": 5})}, "more", branch="promo")
    rule = trust.promotion_rule(repo.root, "main")
    assert rule("loans", "production") == {"approvals": 1, "reviewers": [], "signers": ["release-managers"],
                                           "require_signoff": []}
    assert rule("loans", "qa") is None
    assert rule("sales", "production") is None


def test_verify_command_exit_codes_and_json(repo: RegistryRepo) -> None:
    from tests.helpers.cli import run_cli

    version = register(repo)
    staging = assign(repo, "staging", 1)
    ok = run_cli("verify", version, staging, "--skip-approvals", "-C", repo.root)
    assert ok.exit_code == 0, ok.stderr
    assert f"{staging}: verified" in ok.stdout
    bad = unsigned_tag(repo.root, "loans#production#2", repo.commit, "not signed\n")
    refused_all = run_cli("verify", "--all", "--skip-approvals", "--json", "-C", repo.root)
    assert refused_all.exit_code == 1
    import json

    results = {r["tag"]: r for r in json.loads(refused_all.stdout)}
    assert results[bad]["ok"] is False and results[bad]["rule"] == "signed"
    assert results[version]["ok"] is True
    assert "[signed]" in refused_all.stderr
    assert run_cli("verify", "-C", repo.root).exit_code == 2  # nothing named
