"""Issue #9, against a real trained repo, real ssh-keygen keys and signed tags: unverified tags steer
no reader (the verified state), the stage history is append-only (counters), the grammar takes
ASCII digits and bounded counters only, and remembered verdicts re-verify when the trust changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops_ci.registry import audit, state, tags, trust
from modelops_ci.registry import verify as verifier
from tests.helpers.cli import run_cli, run_exe
from tests.helpers.registry import (
    ALLOWED_SIGNERS,
    POLICY_FILE,
    RegistryRepo,
    allowed_signers,
    assign,
    commit_files,
    evidence_message,
    policy_yaml,
    register,
    registry_repo,
    sign_tag,
    unsigned_tag,
)
from tests.helpers.repos import git

LONG = "9" * 4300  # more digits than int() accepts


@pytest.fixture
def repo(registry_template: Path, tmp_path: Path) -> RegistryRepo:
    return registry_repo(registry_template, tmp_path / "repo")


def _in_production(repo: RegistryRepo) -> str:
    """loans@v1.0.0 through staging (#1) into production (#2), every tag signed by its allowed key."""
    register(repo)
    assign(repo, "staging", 1)
    return assign(repo, "production", 2, "release-managers")


def _date(second: int) -> str:
    return f"2026-01-01T00:00:{second:02d}Z"


def _refusal(registry: state.VerifiedRegistry, tag: str) -> str:
    return next(r.rule for r in registry.refused if r.tag == tag)


# --- 2: one reader of verified state -------------------------------------------------------------


def test_tags_that_do_not_verify_hold_no_stage_and_are_shown_as_such(repo: RegistryRepo) -> None:
    champion = _in_production(repo)
    other = commit_files(repo.root, {"notes.txt": "an unreviewed change\n"})
    forged = unsigned_tag(repo.root, "loans#production#3", other,
                          evidence_message(repo.root, repo.commit, version="v1.0.0", stage="production"))
    stranger = assign(repo, "production", 4, "attacker")
    # GTO's replay of every tag hands production to the newest tag, the attacker's
    assert tags.state(tags.read(repo.root))["loans"].stages["production"].tag == stranger

    registry = state.read(repo.root)
    assert registry.champion("loans", "production") == tags.Champion("v1.0.0", repo.commit, champion)
    assert (_refusal(registry, forged), _refusal(registry, stranger)) == ("signed", "signer-unknown")

    shown = run_cli("registry", "show", "--json", "-C", repo.root)
    assert shown.exit_code == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["artifacts"][0]["stages"]["production"]["tag"] == champion
    assert {u["tag"]: u["rule"] for u in payload["unverified"]} == {forged: "signed", stranger: "signer-unknown"}
    text = run_cli("registry", "show", "-C", repo.root).stdout
    assert "2 tag(s) do not verify and are not counted" in text and f"{forged}  [signed]" in text
    events = json.loads(run_cli("registry", "history", "loans", "--json", "-C", repo.root).stdout)
    assert {e["tag"]: e["verified"] for e in events}[forged] is False
    audited = json.loads(run_cli("audit", "loans#production", "--json", "-C", repo.root).stdout)
    assert audited[0]["tag"] == champion and audited[0]["verification"]["ok"] is True


def test_a_name_with_only_unverified_tags_has_no_champion(repo: RegistryRepo) -> None:
    unsigned_tag(repo.root, "loans@v1.0.0", repo.commit, "register")
    unsigned_tag(repo.root, "loans#production#1", repo.commit, "promote")
    found, registry = state.champion(repo.root, "loans", "production")
    assert found is None
    assert [r.rule for r in registry.refused_of("loans")] == ["signed", "signed"]
    done = run_cli("audit", "loans#production", "-C", repo.root)
    assert done.exit_code == 2 and "no verified registry tags" in done.stderr and "[signed]" in done.stderr


def test_without_a_trusted_ref_nothing_verifies_and_reading_still_works(repo: RegistryRepo) -> None:
    register(repo)
    git("branch", "-m", "main", "work", cwd=repo.root)  # no origin/HEAD, main or master
    registry = state.read(repo.root)
    assert registry.artifacts == {} and "no trusted ref" in registry.untrusted
    assert [r.rule for r in registry.refused] == ["trust"]
    shown = run_cli("registry", "show", "-C", repo.root)
    assert shown.exit_code == 0 and "nothing can be verified here" in shown.stdout


# --- 5: the stage history is append-only ---------------------------------------------------------


def test_a_smaller_counter_after_an_unassignment_is_refused(repo: RegistryRepo) -> None:
    register(repo, date=_date(1))
    assign(repo, "staging", 5, date=_date(2))
    assign(repo, "production", 6, "release-managers", date=_date(3))
    sign_tag(repo.root, "loans#production!#7", repo.commit, "Unassign production", repo.key("release-managers"),
             date=_date(4))
    late = assign(repo, "production", 3, "release-managers", date=_date(5))
    result = verifier.verify(repo.root, late, approvals=verifier.SKIP)
    assert (result.ok, result.rule) == (False, "counter")
    assert "made after loans#production!#7 yet numbered 3" in result.reason
    assert state.read(repo.root).champion("loans", "production") is None


def test_the_push_time_check_wants_the_newest_counter(repo: RegistryRepo) -> None:
    register(repo, date=_date(1))
    first = assign(repo, "staging", 4, date=_date(3))
    older = assign(repo, "staging", 2, date=_date(2))  # signed earlier, pushed after #4
    unsigned_tag(repo.root, "loans#staging#9", repo.commit, "an unsigned N cannot block anyone")
    assert verifier.verify(repo.root, older, approvals=verifier.SKIP).ok  # each date order is fine offline
    late = verifier.verify(repo.root, older, approvals=verifier.SKIP, newest=True)
    assert (late.ok, late.rule) == (False, "counter") and "pushed after loans#staging#4" in late.reason
    assert verifier.verify(repo.root, first, approvals=verifier.SKIP, newest=True).ok
    done = run_cli("verify", older, "--newest", "--skip-approvals", "-C", repo.root)
    assert done.exit_code == 1 and "[counter]" in done.stdout


def test_a_counter_used_twice_is_refused_for_both(repo: RegistryRepo) -> None:
    register(repo)
    staging = assign(repo, "staging", 1)
    production = assign(repo, "production", 1, "release-managers")
    results = {r.tag: r for r in verifier.verify_all(repo.root, approvals=verifier.SKIP)}
    assert (results[staging].rule, results[production].rule) == ("counter", "counter")
    assert f"also used by {production}" in results[staging].reason


def test_a_counter_below_a_deregistration_is_refused(repo: RegistryRepo) -> None:
    register(repo, date=_date(1))
    assign(repo, "staging", 1, date=_date(2))
    sign_tag(repo.root, "loans@v1.0.0!#5", repo.commit, "Deregister", repo.key("ci-bot"), date=_date(3))
    below = assign(repo, "staging", 3, date=_date(4))
    above = assign(repo, "staging", 6, date=_date(5))
    results = {r.tag: r for r in verifier.verify_all(repo.root, approvals=verifier.SKIP)}
    assert results[below].rule == "counter"
    assert results[above].rule == "registered" and "deregistered by loans@v1.0.0!#5" in results[above].reason


def test_a_retired_name_takes_no_new_stage(repo: RegistryRepo) -> None:
    register(repo)
    sign_tag(repo.root, "loans@deprecated#4", repo.commit, "Retire loans", repo.key("ci-bot"))
    late = assign(repo, "staging", 5)
    result = verifier.verify(repo.root, late, approvals=verifier.SKIP)
    assert (result.rule, "retired by loans@deprecated#4" in result.reason) == ("retired", True)


def test_another_names_deregistration_does_not_refuse_a_tag(repo: RegistryRepo) -> None:
    commit_files(repo.root, {POLICY_FILE: policy_yaml(pipeline='"*"')}, "every name")  # governs `other` too
    other = sign_tag(repo.root, "other@v1.0.0!#1", repo.commit, "Deregister other", repo.key("ci-bot"))
    register(repo)
    staging = assign(repo, "staging", 2)
    results = {r.tag: r for r in verifier.verify_all(repo.root, approvals=verifier.SKIP)}
    assert results[other].ok, results[other]
    assert results[staging].ok, results[staging]


# --- 9: ASCII digits, bounded counters, no option injection -------------------------------------


def test_a_huge_counter_is_an_invalid_tag_reported_and_fatal_to_nobody(repo: RegistryRepo) -> None:
    champion = _in_production(repo)
    _packed_tag(repo.root, f"loans#staging#{LONG}")
    registry = state.read(repo.root)
    assert registry.champion("loans", "production") is not None and registry.refs[champion]
    assert [r.rule for r in registry.refused] == ["grammar"]
    everything = verifier.verify_all(repo.root, approvals=verifier.SKIP)
    bad = [r for r in everything if not r.ok]
    assert len(bad) == 1 and "4300 digits" in bad[0].reason and len(bad[0].tag) < 100
    assert all(r.ok for r in everything if r is not bad[0])
    shown = run_cli("registry", "show", "-C", repo.root)
    assert shown.exit_code == 0 and "4300 digits" in shown.stdout
    assert run_cli("audit", "loans", "-C", repo.root).exit_code == 0
    listed = run_cli("verify", "--all", "--skip-approvals", "-C", repo.root)
    assert listed.exit_code == 1 and "4300 digits" in listed.stdout + listed.stderr


def test_a_huge_counter_on_the_command_line_is_a_user_error(repo: RegistryRepo) -> None:
    done = run_exe("verify", f"loans#staging#{'7' * 5000}", cwd=repo.root)
    assert done.exit_code == 2, done.stderr
    assert "5000 digits (at most 18)" in done.stderr and len(done.stderr) < 600


def test_a_trust_ref_that_looks_like_an_option_is_refused(repo: RegistryRepo, tmp_path: Path) -> None:
    register(repo)
    marker = tmp_path / "ran"
    done = run_exe("verify", "--all", f"--trust-ref=--output={marker}", cwd=repo.root)
    assert done.exit_code == 2 and "is not a ref name" in done.stderr
    with pytest.raises(trust.TrustError):
        trust.resolve_ref(repo.root, "--upload-pack=touch x")
    assert not marker.exists()


def _packed_tag(root: Path, name: str) -> None:
    """An annotated tag named `name` in packed-refs (too long a name for a loose ref file)."""
    git("tag", "-a", "-m", "x", "short-lived", cwd=root)
    git("pack-refs", "--all", cwd=root)
    packed = root / ".git" / "packed-refs"
    header, *lines = packed.read_text().splitlines()
    records: list[list[str]] = []
    for line in lines:
        if line.startswith("^"):
            records[-1].append(line)
        else:
            records.append([line.replace("refs/tags/short-lived", f"refs/tags/{name}")])
    records.sort(key=lambda record: record[0].split(" ", 1)[1])
    packed.write_text("\n".join([header, *(line for record in records for line in record)]) + "\n")


def test_audit_splits_a_tag_as_verify_does(repo: RegistryRepo) -> None:
    """A message may quote a signature header: git (and verify) take the last one as the signature."""
    quoted = "a note quoting\n-----BEGIN SSH SIGNATURE-----\nin its text\n"
    message = evidence_message(repo.root, repo.commit, version="v1.0.0", title=quoted)
    tag = sign_tag(repo.root, "loans@v1.0.0", repo.commit, message, repo.key("ci-bot"))
    assert verifier.verify(repo.root, tag, approvals=verifier.SKIP).ok
    found = audit.signer(repo.root, tag)
    assert (found.status, found.principals) == ("signed", ("ci-bot",))


# --- remembered verdicts -------------------------------------------------------------------------


def test_verdicts_are_remembered_and_a_change_of_trust_judges_again(repo: RegistryRepo) -> None:
    version = register(repo)
    staging = assign(repo, "staging", 1)
    assert state.read(repo.root).champion("loans", "staging") is not None
    cache_file = repo.root / ".git" / "modelops" / "verified-tags.json"
    remembered = json.loads(cache_file.read_text())["verdicts"]
    assert len(remembered) == 2 and all(v["ok"] for v in remembered.values())

    # what is remembered is what is read: a verdict changed in the file is the verdict given
    for entry in remembered.values():
        entry.update(ok=False, rule="signature", reason="remembered refusal")
    cache_file.write_text(json.dumps({"format": 1, "verdicts": remembered}))
    assert {r.reason for r in state.read(repo.root).refused} == {"remembered refusal"}

    # a new trust root (ci-bot's key removed from allowed_signers) is a new key: judged again
    spec = {"release-managers": ("release-managers", None)}
    commit_files(repo.root, {ALLOWED_SIGNERS: allowed_signers(repo.keys, spec)}, "drop ci-bot")
    again = state.read(repo.root)
    assert {r.tag: r.rule for r in again.refused} == {version: "signer-unknown", staging: "signer-unknown"}
