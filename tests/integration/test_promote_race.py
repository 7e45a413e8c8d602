"""Promotions racing and crashing: 8 promoters in 8 clones against one bare remote, and a
promoter killed (SIGKILL) at each step of a promotion.

Each promoter is its own process, as in CI: two jobs never share a clone or a Python.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops_ci.registry import evidence
from modelops_ci.registry import promote as writer
from tests.helpers.model_registry import NAME, Registry, make_registry
from tests.helpers.repos import git

PROMOTERS = 8
PROMOTE = """
import sys, time
from pathlib import Path
from modelops_ci.registry import promote, signing
root, version, stage, key, start = sys.argv[1:6]
Path(start + "." + version).touch()  # ready
while not Path(start).exists():
    time.sleep(0.002)
written = promote.promote(Path(root), "loans", version, stage, signing.SigningKey("ssh", key), pr=1)
print(written.tag, written.created, written.attempts)
"""


def _promoter(root: Path, version: str, key: Path, start: Path, *, stage: str = "dev",
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", PROMOTE, str(root), version, stage, str(key), str(start)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stage_tags(reg: Registry) -> dict[str, str]:
    return {t: oid for t, oid in reg.remote_tags().items() if t.startswith(f"{NAME}#")}


def test_eight_promoters_racing_get_distinct_counters_and_lose_nothing(tmp_path: Path) -> None:
    reg = make_registry(tmp_path, models=PROMOTERS)
    versions = [f"v1.{i}.0" for i in range(PROMOTERS)]
    for version, commit in zip(versions, reg.commits, strict=True):
        writer.register(reg.repo, NAME, reg.signing, version=version, rev=commit)
    clones = []
    for index in range(PROMOTERS):
        clone = tmp_path / f"clone{index}"
        git("clone", "-q", str(reg.remote), str(clone), cwd=tmp_path)
        clones.append(clone)
    start = tmp_path / "start"
    racers = [_promoter(clone, version, reg.key, start) for clone, version in zip(clones, versions, strict=True)]
    deadline = time.monotonic() + 30
    while not all(Path(f"{start}.{v}").exists() for v in versions) and time.monotonic() < deadline:
        time.sleep(0.01)  # every interpreter at the starting line
    start.touch()
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err for _, err in outputs]

    tags = _stage_tags(reg)
    assert sorted(tags) == sorted(f"{NAME}#dev#{n}" for n in range(1, PROMOTERS + 1))  # distinct N, none lost
    git("fetch", "-q", "origin", "+refs/tags/*:refs/tags/*", cwd=reg.repo)
    promoted = {evidence.parse(git("cat-file", "tag", tag, cwd=reg.repo)).version for tag in tags}
    assert promoted == set(versions)
    reported = sorted(out.split()[0] for out, _ in outputs)
    assert reported == sorted(tags)
    assert any(int(out.split()[2]) > 1 for out, _ in outputs)  # some had to retry


# -- crashes --------------------------------------------------------------------------------------

# A git shim for the promoter: on the named git command it SIGKILLs the promoter (its parent),
# before running that command or right after it completed.
SHIM = """#!/bin/sh
case " $* " in
  *" $KILL_ON "*)
    if [ "$KILL_WHEN" = before ]; then kill -9 $PPID; exit 1; fi
    "$REAL_GIT" "$@"; status=$?
    kill -9 $PPID
    exit $status ;;
esac
exec "$REAL_GIT" "$@"
"""


def _shimmed_env(tmp_path: Path, kill_on: str, when: str) -> dict[str, str]:
    folder = tmp_path / "shim"
    folder.mkdir(exist_ok=True)
    shim = folder / "git"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "REAL_GIT": real,
            "KILL_ON": kill_on, "KILL_WHEN": when}


def _assert_whole_or_none(reg: Registry) -> None:
    """Every stage tag, local or remote, is a whole signed tag with evidence; none is half made."""
    local = git("for-each-ref", "--format=%(refname:strip=2) %(objecttype)", f"refs/tags/{NAME}#*",
                cwd=reg.repo).split("\n")
    for line in filter(None, local):
        tag, kind = line.split()
        assert kind == "tag"
        raw = git("cat-file", "tag", tag, cwd=reg.repo)
        assert "-----END SSH SIGNATURE-----" in raw and evidence.parse(raw).stage == "dev"
    for tag, oid in _stage_tags(reg).items():
        assert git("rev-parse", f"refs/tags/{tag}", cwd=reg.repo).strip() == oid  # the same whole object


@pytest.mark.parametrize(("kill_on", "when", "rerun_creates"), [
    ("fetch", "after", True),  # before anything was written
    ("tag", "before", True),  # about to sign
    ("tag", "after", False),  # tag made, not pushed: the re-run pushes that tag
    ("push", "after", False),  # pushed, the promoter never heard back: the re-run finds it
])
def test_a_killed_promotion_leaves_a_whole_tag_or_none_and_rerunning_is_idempotent(
        tmp_path: Path, kill_on: str, when: str, rerun_creates: bool) -> None:
    reg = make_registry(tmp_path, models=1)
    writer.register(reg.repo, NAME, reg.signing, version="v1.0.0", rev=reg.commits[0])
    start = tmp_path / "start"
    start.touch()
    killed = _promoter(reg.repo, "v1.0.0", reg.key, start, env=_shimmed_env(tmp_path, kill_on, when))
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    _assert_whole_or_none(reg)
    pushed_before_rerun = _stage_tags(reg)
    assert len(pushed_before_rerun) == (1 if kill_on == "push" else 0)

    first = _promoter(reg.repo, "v1.0.0", reg.key, start)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    tag, created, _ = out.split()
    assert tag == f"{NAME}#dev#1"
    assert created == str(rerun_creates)
    second = _promoter(reg.repo, "v1.0.0", reg.key, start)
    assert second.communicate(timeout=60)[0].split()[:2] == [tag, "False"]
    assert list(_stage_tags(reg)) == [tag]  # one promotion, whatever the crash
    _assert_whole_or_none(reg)
