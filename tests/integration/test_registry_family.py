"""A batched family in the registry: registered and promoted as one version whose evidence carries
every series' model sha256 and verdict; verify re-checks each series' model from DVC's cache and
names the one that changed; audit traces one series. One trained family repo, copied per test."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelops_ci.commands.promotion_request import Request, deployment_yaml
from modelops_ci.layout import Layout
from modelops_ci.registry import evidence, series
from modelops_ci.registry.signatures import TagObject
from tests.helpers.cli import Result, run_cli
from tests.helpers.family_registry import FAMILY, SERIES, FamilyRepo, cached_file, family_repo
from tests.helpers.repos import git

TAG = f"{FAMILY}@v1.3.0"


@pytest.fixture
def family(family_template_dir: Path, tmp_path: Path) -> FamilyRepo:
    return family_repo(family_template_dir, tmp_path / "repo")


def cli(repo: FamilyRepo, *args: str) -> Result:
    return run_cli(*args, "-C", repo.root)


def register(repo: FamilyRepo) -> None:
    done = cli(repo, "register", FAMILY, "--version", "v1.3.0", "--no-push", "--signing-key", str(repo.key_path()))
    assert done.exit_code == 0, done.stderr


def promote_dev(repo: FamilyRepo) -> None:
    done = cli(repo, "promote", TAG, "--to", "dev", "--no-push", "--signing-key", str(repo.key_path()))
    assert done.exit_code == 0, done.stderr


def claimed(root: Path, tag: str) -> evidence.Evidence:
    raw = git("cat-file", "tag", tag, cwd=root).encode()
    return evidence.parse(TagObject.parse(raw).message)


def model_sha256(root: Path, name: str) -> str:
    return hashlib.sha256((root / Layout(name, family=FAMILY).model).read_bytes()).hexdigest()


def test_a_family_is_registered_as_one_version_carrying_every_series(family: FamilyRepo) -> None:
    register(family)
    found = claimed(family.root, TAG).family
    report = json.loads((family.root / Layout(FAMILY).gates).read_text())
    assert [row["series"] for row in found["list"]] == list(SERIES)
    assert {row["series"]: row["model_sha256"] for row in found["list"]} == {
        name: model_sha256(family.root, name) for name in SERIES}
    assert {row["verdict"] for row in found["list"]} == {"pass"} and found["failed"] == 0
    assert found["digest"] == series.digest(found["list"]) and report["verdict"] == "pass"
    assert set(found["outputs"]) == {Layout(FAMILY).series_models, Layout(FAMILY).series_reports}

    verified = cli(family, "verify", TAG, "--skip-approvals")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert f"{len(SERIES)} series models match the evidence" in verified.stdout

    promote_dev(family)
    staged = claimed(family.root, f"{FAMILY}#dev#1")
    assert staged.family == claimed(family.root, TAG).family
    deployed = yaml.safe_load(deployment_yaml(None, Request(FAMILY, "v1.3.0", "dev", "main"), staged))
    assert deployed["spec"]["models"][FAMILY] == {"champion": "v1.3.0", "commits": {"v1.3.0": family.commit}}


def test_a_series_model_changed_after_registering_is_refused_by_name(family: FamilyRepo) -> None:
    register(family)
    tampered = cached_file(family.root, Layout(SERIES[2], family=FAMILY).model)
    tampered.chmod(0o644)
    raw = bytearray(tampered.read_bytes())
    raw[100] ^= 0x01  # one bit of one byte
    tampered.write_bytes(bytes(raw))

    refused = cli(family, "verify", TAG, "--skip-approvals")
    assert refused.exit_code == 1
    assert f"REFUSED [series-model] series {SERIES[2]}:" in refused.stdout
    one = cli(family, "verify", TAG, "--skip-approvals", "--series", SERIES[0])
    assert one.exit_code == 0 and f"series {SERIES[0]}'s model matches" in one.stdout
    assert cli(family, "verify", TAG, "--skip-approvals", "--series", SERIES[2]).exit_code == 1
    unknown = cli(family, "verify", TAG, "--skip-approvals", "--series", "regions-mars")
    assert unknown.exit_code == 2 and "no series 'regions-mars'" in unknown.stderr


def test_a_clone_verifies_the_series_models_once_it_has_pulled_them(family: FamilyRepo, tmp_path: Path) -> None:
    register(family)
    clone = tmp_path / "clone"
    git("clone", "-q", str(family.root), str(clone), cwd=tmp_path)
    git("remote", "remove", "origin", cwd=clone)  # the trusted ref is the clone's own main
    remote = family.root / ".modelops" / "dvc-remote"  # where `run` pushed the outputs
    (clone / ".dvc" / "config.local").write_text(f"['remote \"local\"']\n    url = {remote}\n")
    before = run_cli("verify", TAG, "--skip-approvals", "--json", "-C", clone)
    assert before.exit_code == 0 and json.loads(before.stdout)[0]["models"] == "not-pulled"
    subprocess.run([sys.executable, "-m", "dvc", "pull", "-q"], cwd=clone, check=True, capture_output=True)
    after = run_cli("verify", TAG, "--skip-approvals", "--json", "-C", clone)
    assert after.exit_code == 0 and json.loads(after.stdout)[0]["models"] == "checked"


def test_audit_traces_one_series_and_summarises_the_family(family: FamilyRepo) -> None:
    register(family)
    promote_dev(family)
    name = SERIES[1]
    record = json.loads((family.root / Layout(FAMILY).series(name).series_record).read_text())
    traced = cli(family, "audit", FAMILY, "--series", name)
    assert traced.exit_code == 0, traced.stderr
    lines = traced.stdout
    assert f"{FAMILY}#dev#1" in lines and family.commit in lines
    assert f"key        {record['key']}" in lines
    assert f"model      sha256 {model_sha256(family.root, name)}" in lines
    assert 'its own: {"data": {"filter": {"region": "north"}}}' in lines
    assert "verdict    pass" in lines and "source     data/panel.csv  md5 " in lines
    summary = cli(family, "audit", FAMILY)
    assert f"family     {len(SERIES)} series, 0 failed" in summary.stdout and "--series" not in summary.stdout
    assert cli(family, "audit", FAMILY, "--series", "regions-mars").exit_code == 2


def test_a_large_family_tag_carries_the_digest_and_verify_recomputes_the_list(
        family: FamilyRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series, "INLINE_SERIES", len(SERIES) - 1)  # as a family of more series than that
    register(family)
    found = claimed(family.root, TAG).family
    assert "list" not in found and found["series"] == len(SERIES)
    listed = series.entries((family.root / Layout(FAMILY).gates).read_bytes())
    assert found["digest"] == series.digest(listed)
    verified = cli(family, "verify", TAG, "--skip-approvals")
    assert verified.exit_code == 0 and f"{len(SERIES)} series models match" in verified.stdout
    promote_dev(family)
    assert cli(family, "audit", FAMILY, "--series", SERIES[3]).exit_code == 0
