"""Benchmark `modelops-ci verify` of one stage tag, without network (target: <= 0.3 s).

Run with the project's venv: `.venv/bin/python benchmarks/bench_verify.py [--repeat N] [--keep]`.

Builds, in a temp dir, the trained repo of the test suite (tests/helpers/registry.py: a small
loans pipeline run through DVC, a policy, `policies/allowed_signers` with real ssh-keygen keys),
registers `loans@v1.0.0` and assigns `loans#staging#1`, both SSH-signed with evidence. Then times,
interleaved, with the median and min of `--repeat` runs:
- `modelops-ci verify loans#staging#1 --skip-approvals` as a subprocess (start-up and imports count;
  approvals are the one rule that needs GitHub, so they are left out, as the pre-push hook does);
- `verify()` in this process (every rule but approvals: signature by ssh-keygen at the current time,
  signer allowed for the stage by the trusted branch, tag name and object, evidence digests against
  dvc.lock at the commit, gates passed under the trusted thresholds, registration, stage order).
It exits non-zero only when a verification fails, never for a missed target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from modelops_ci import numerics  # noqa: E402 - the project root must be importable first

numerics.pin_portable_kernels()

from modelops_ci.offline import QUIET_ENV  # noqa: E402
from modelops_ci.registry.verify import SKIP, verify  # noqa: E402
from tests.helpers.registry import assign, build_registry_repo, register  # noqa: E402

BIN = Path(sys.executable).parent
TARGET = 0.3


def isolate(home: Path) -> None:
    """Own HOME and git identity, nothing from the caller's git or DVC config (as the tests do)."""
    for name in [n for n in os.environ if n.startswith(("GIT_", "DVC_", "MLFLOW_"))]:
        del os.environ[name]
    os.environ.update({
        "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **QUIET_ENV,
    })


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each (median and min reported)")
    parser.add_argument("--keep", action="store_true", help="leave the temp repo in place")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="modelops-bench-verify-"))
    (work / "home").mkdir()
    isolate(work / "home")
    print("building the trained, signed repo (a DVC run of the loans pipeline)...", flush=True)
    repo = build_registry_repo(work / "repo", work / "keys")
    register(repo)
    tag = assign(repo, "staging", 1)
    command = [str(BIN / "modelops-ci"), "verify", tag, "--skip-approvals"]

    def cli() -> None:
        done = subprocess.run(command, cwd=repo.root, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"verify failed: {done.stdout}{done.stderr}")

    def in_process() -> None:
        result = verify(repo.root, tag, approvals=SKIP)
        if not result.ok:
            raise SystemExit(f"verify failed: {result}")

    cli(), in_process()  # warm-up: page cache, git's object lookups
    runs: dict[str, list[float]] = {"modelops-ci verify (subprocess)": [], "verify() in process": []}
    for _ in range(args.repeat):
        runs["modelops-ci verify (subprocess)"].append(timed(cli))
        runs["verify() in process"].append(timed(in_process))

    print(f"\nverify of {tag} (signature, evidence, gates, registration, stage order; no approvals), "
          f"{args.repeat} runs:")
    print(f"{'':34} {'median':>8} {'min':>8}")
    for name, seconds in runs.items():
        print(f"{name:34} {statistics.median(seconds):7.3f}s {min(seconds):7.3f}s")
    worst = statistics.median(runs["modelops-ci verify (subprocess)"])
    print(f"target <= {TARGET} s: {'met' if worst <= TARGET else 'MISSED'} (subprocess median)")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
