"""Gate results are recomputed, not believed (issue 9, defect 6): `register`/`promote
--recompute-gates` re-run the gate stages at the commit in a temporary worktree, from the DVC
remote, and sign only if they give the committed gates.json.

The repository is the session's trained `loans` repo (tests.helpers.registry), cloned, with its DVC
remote copied: real git, real DVC, real gate steps, real ssh-keygen keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.registry import evidence, recompute
from modelops_ci.registry.verify import SKIP, verify
from tests.helpers.cli import run_exe
from tests.helpers.registry import POLICY_FILE, RegistryRepo, policy_yaml, registry_repo, shared_template
from tests.helpers.repos import git, write

GATES = "reports/loans/gates.json"
PERFORMANCE = "reports/loans/gates/performance.json"
LOCK = "compiled/loans/dvc.lock"


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> RegistryRepo:
    """A clone of the trained repo whose DVC remote is a copy of the one the training pushed to."""
    template = shared_template(tmp_path_factory)
    cloned = registry_repo(template, tmp_path / "repo")
    remote = tmp_path / "dvc-remote"
    shutil.copytree(template / "repo" / ".modelops" / "dvc-remote", remote)
    dvc(cloned.root, "remote", "modify", "--local", "local", "url", str(remote))
    return cloned


def dvc(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def cli(repo: RegistryRepo, *args: str) -> Any:
    return run_exe(*args, "--signing-key", str(repo.keys["ci-bot"].private), "--no-push", "--recompute-gates",
                   cwd=repo.root)


def stage_tags(root: Path) -> list[str]:
    return git("tag", "--list", "loans#*", cwd=root).split()


def claimed(root: Path, tag: str) -> evidence.Evidence:
    return evidence.parse(git("cat-file", "tag", tag, cwd=root))


def worktrees(root: Path) -> list[str]:
    listing = git("worktree", "list", "--porcelain", cwd=root)
    return [line for line in listing.splitlines() if line.startswith("worktree ")]


def test_an_honest_version_is_registered_and_promoted_with_recomputed_evidence(repo: RegistryRepo) -> None:
    started = time.perf_counter()
    registered = cli(repo, "register", "loans", "--version", "v1.0.0")
    first = time.perf_counter() - started
    assert registered.exit_code == 0, registered.stdout + registered.stderr
    started = time.perf_counter()
    promoted = cli(repo, "promote", "loans@v1.0.0", "--to", "staging")
    second = time.perf_counter() - started
    assert promoted.exit_code == 0, promoted.stdout + promoted.stderr
    print(f"\nregister --recompute-gates {first:.1f} s (cold cache), promote --recompute-gates {second:.1f} s")

    for tag in ("loans@v1.0.0", "loans#staging#1"):
        found = claimed(repo.root, tag)
        assert found.recomputed is True
        assert '"recomputed":true' in git("cat-file", "tag", tag, cwd=repo.root)
        assert verify(repo.root, tag, approvals=SKIP).ok, verify(repo.root, tag, approvals=SKIP)
    # The user's work tree is untouched and the temporary worktree is gone.
    assert git("status", "--porcelain", cwd=repo.root) == ""
    assert worktrees(repo.root) == [f"worktree {repo.root}"]


def test_recompute_reports_the_report_it_reproduced(repo: RegistryRepo) -> None:
    done = recompute.recompute(repo.root, "loans", repo.commit)
    committed = git("show", f"{repo.commit}:{GATES}", cwd=repo.root).encode()
    assert (done.stages, done.verdict) == (("gate-performance", "gates"), "pass")
    assert done.md5 == hashlib.md5(committed, usedforsecurity=False).hexdigest()


def _passing(report: Any) -> Any:
    """A gate report with every verdict and status flipped to pass."""
    if isinstance(report, dict):
        return {k: ("pass" if k in ("status", "verdict") and v == "fail" else _passing(v)) for k, v in report.items()}
    if isinstance(report, list):
        return [_passing(item) for item in report]
    return report


def _patch_lock(lock: str, path: str, raw: bytes) -> str:
    """dvc.lock with `path`'s md5 and size (as out and as dep) those of `raw`: `dvc status` is clean."""
    pattern = re.compile(rf"(- path: {re.escape(path)}\n\s+hash: md5\n\s+md5: )\w+(\n\s+size: )\d+")
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    patched, count = pattern.subn(rf"\g<1>{md5}\g<2>{len(raw)}", lock)
    assert count >= 1, path
    return patched


def _tamper(root: Path) -> None:
    """The attack of the issue: a failed gate flipped to pass in gates.json and the gate's own JSON,
    with their md5 and size patched in dvc.lock."""
    lock = (root / LOCK).read_text()
    for path in (PERFORMANCE, GATES):
        report = json.loads((root / path).read_text())
        assert "fail" in json.dumps(report)
        raw = (json.dumps(_passing(report), indent=2, sort_keys=True) + "\n").encode()
        (root / path).write_bytes(raw)
        lock = _patch_lock(lock, path, raw)
    (root / LOCK).write_text(lock)


def _failing_commit(repo: RegistryRepo) -> str:
    """main with a performance threshold the model misses, run honestly (the gate fails), then tampered."""
    root = repo.root
    dvc(root, "pull", "--quiet", "compiled/loans/dvc.yaml")
    strict = "performance: {confidence: 0.9, metrics: {roc_auc: {min: 0.99}}}"
    write(root, POLICY_FILE, policy_yaml(gates=(strict,)))
    assert run_exe("compile", cwd=root).exit_code == 0
    ran = run_exe("run", "loans", cwd=root)
    assert ran.exit_code == 1, ran.stdout + ran.stderr  # the gate failed, honestly
    _tamper(root)
    assert "modified" not in dvc(root, "status", "compiled/loans/dvc.yaml")  # the lock agrees with the files
    git("add", "-A", cwd=root)
    git("commit", "-qm", "loans passes (it does not)", cwd=root)
    return git("rev-parse", "HEAD", cwd=root).strip()


def test_tampered_gate_results_are_refused_and_nothing_is_signed(repo: RegistryRepo) -> None:
    _failing_commit(repo)

    refused = cli(repo, "register", "loans", "--version", "v1.0.0")
    assert refused.exit_code == 1, refused.stdout + refused.stderr
    assert "gate(s) whose result differs: performance" in refused.stderr, refused.stderr
    assert "recomputed verdict 'fail'" in refused.stderr and "nothing was signed" in refused.stderr
    assert git("tag", "--list", cwd=repo.root) == ""

    # Believed, the tampered report passes every other check: that is the hole.
    believed = run_exe("register", "loans", "--version", "v1.0.0", "--no-push", "--signing-key",
                       str(repo.keys["ci-bot"].private), cwd=repo.root)
    assert believed.exit_code == 0, believed.stdout + believed.stderr
    assert verify(repo.root, "loans@v1.0.0", approvals=SKIP).ok

    promoted = cli(repo, "promote", "loans@v1.0.0", "--to", "staging")
    assert promoted.exit_code == 1, promoted.stdout + promoted.stderr
    assert "gate(s) whose result differs: performance" in promoted.stderr, promoted.stderr
    assert stage_tags(repo.root) == []
    assert worktrees(repo.root) == [f"worktree {repo.root}"]


def test_a_gate_stage_that_is_not_the_compiled_command_is_never_run(repo: RegistryRepo, tmp_path: Path) -> None:
    """The commit under promotion supplies data, never a command line beside the signing key."""
    marker = tmp_path / "pwned"
    stages = repo.root / "compiled/loans/dvc.yaml"
    stages.write_text(stages.read_text().replace("cmd: modelops-ci step gates loans",
                                                 f"cmd: touch {marker} && modelops-ci step gates loans"))
    git("commit", "-qam", "a gates stage with more in it", cwd=repo.root)
    commit = git("rev-parse", "HEAD", cwd=repo.root).strip()
    with pytest.raises(recompute.GatesDiffer, match="not 'modelops-ci step gates loans' as `modelops-ci compile`"):
        recompute.recompute(repo.root, "loans", commit)
    assert not marker.exists()
