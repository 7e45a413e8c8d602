"""A verdict belongs to the commit it was produced for (issue 9): a run that stops on the way leaves
no gates.json, and `run`, `report`, `ci` and `github comment` refuse a gates.json that
compiled/<p>/dvc.lock does not bind to the workspace's inputs; a remote or disk the run cannot
write to is the user's to fix (exit 2), said with the remote or path.

One gated repo (loans under a performance gate) is trained once per module; each test copies it,
DVC cache and local remote included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import run_exe
from tests.helpers.paths import BIN
from tests.helpers.repos import git, write
from tests.helpers.specs import PERFORMANCE_GATE, loans_policy
from tests.helpers.templates import copy_repo, trained_ml_copy

pytestmark = pytest.mark.shared_setup  # its module-scoped fixtures train, run a workflow or start a server

POLICY = loans_policy(PERFORMANCE_GATE)
VERDICT_FILES = ("reports/loans/gates.json", "reports/loans/gates/performance.json", "reports/loans/report.md",
                 "reports/loans/report.html", "reports/summary.md", "reports/summary.json")
READY = "ready for production"


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stale") / "ml"


@pytest.fixture
def trained(_template: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """The ml repo with loans gated, run once (`run --all`, `report`) and committed; copied per test.
    It starts from the session's trained repo: only the gates run here."""
    if not _template.exists():
        trained_ml_copy(tmp_path_factory, _template)
        write(_template, "policies/test.yaml", POLICY)
        assert run_exe("compile", cwd=_template).exit_code == 0
        ran = run_exe("run", "--all", cwd=_template)
        assert ran.exit_code == 0, ran.stdout + ran.stderr
        assert run_exe("report", cwd=_template).exit_code == 0
        git("add", "-A", cwd=_template)
        git("commit", "-qm", "trained", cwd=_template)
    return copy_repo(_template, tmp_path / "ml")


def respec(repo: Path, old: str, new: str) -> None:
    spec = repo / "pipelines/loans.yaml"
    text = spec.read_text(encoding="utf-8")
    assert old in text
    spec.write_text(text.replace(old, new), encoding="utf-8")
    assert run_exe("compile", cwd=repo).exit_code == 0


def comment(repo: Path) -> str:
    done = run_exe("github", "comment", "--dry-run", "--base", "main", cwd=repo)
    assert done.exit_code == 0, done.stderr
    return done.stdout


def assert_no_readiness_claimed(repo: Path, why: str) -> None:
    """`report` exits 1 naming why, and neither its summary nor the PR comment says ready."""
    reported = run_exe("report", cwd=repo)
    assert reported.exit_code == 1, reported.stdout + reported.stderr
    assert f"loans: NO VERDICT for this commit: {why}" in reported.stderr
    summary = (repo / "reports/summary.md").read_text(encoding="utf-8")
    assert summary.startswith("# ❌ 1 of 1 pipeline not ready for production")
    assert "| loans | ⛔ no verdict for this commit |" in summary
    assert not (repo / "reports/loans/report.md").exists(), "no page shows the old verdict"
    body = comment(repo)
    assert "# ❌ 1 of 1 pipeline not ready for production" in body
    assert "no verdict for this commit" in body and "✅" not in body


# --- a crashed run leaves no verdict -----------------------------------------------------------


def test_a_crashed_train_leaves_no_verdict_and_no_reporter_claims_readiness(trained: Path) -> None:
    assert f"1 pipeline {READY}" in comment(trained)  # the committed verdict, for these inputs
    respec(trained, "C: 1.0", "C: -1.0")  # scikit-learn refuses it when train fits

    ran = run_exe("run", "loans", cwd=trained)

    assert ran.exit_code == 2, ran.stdout + ran.stderr
    assert "failed to reproduce 'compiled/loans/dvc.yaml:train'" in ran.stderr
    assert "PASS" not in ran.stdout
    for path in VERDICT_FILES:
        assert not (trained / path).exists(), path
    assert_no_readiness_claimed(trained, "reports/loans/gates.json is missing")
    ci = run_exe("ci", cwd=trained)
    assert ci.exit_code == 2 and "PASS" not in ci.stdout and READY not in ci.stdout

    # A checkout brings the committed passing report back (as CI's checkout does): still refused.
    git("checkout", "--", "reports", cwd=trained)
    why = "compiled/loans/params.yaml: 'model' changed since stage 'train' ran"
    assert_no_readiness_claimed(trained, why)


def test_invalid_data_after_a_passing_run_leaves_no_verdict(trained: Path) -> None:
    csv = trained / "data/raw/loans.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace(",no\n", ",\n", 3), encoding="utf-8")

    ran = run_exe("run", "--all", cwd=trained)

    assert ran.exit_code == 2, ran.stdout + ran.stderr
    assert "target 'default' is missing in 3 of 400 rows" in ran.stderr
    for path in VERDICT_FILES:
        assert not (trained / path).exists(), path
    git("checkout", "--", "reports", cwd=trained)
    assert_no_readiness_claimed(trained, "data/raw/loans.csv changed since stage 'ingest' ran")


def test_a_run_that_stopped_between_stages_is_seen_in_the_lock(trained: Path) -> None:
    """New data ran through ingest and split, then train refused: the lock's chain is broken even
    when the spec is put back, so the committed report is no verdict for the new data."""
    csv = trained / "data/raw/loans.csv"
    rows = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join(rows[:-20]) + "\n", encoding="utf-8")
    respec(trained, "C: 1.0", "C: -1.0")
    assert run_exe("run", "loans", cwd=trained).exit_code == 2
    git("checkout", "--", "pipelines", "compiled/loans/params.yaml", "reports", cwd=trained)

    assert_no_readiness_claimed(trained, "stage 'train' last ran on another data/loans/train.parquet than stage "
                                         "'split' last made (compiled/loans/dvc.lock): a run stopped between them")
    verdict = run_exe("run", "loans", cwd=trained)  # the run that finishes gives this data its verdict
    assert verdict.exit_code == 0, verdict.stdout + verdict.stderr
    assert "loans: PASS" in verdict.stdout
    assert run_exe("report", cwd=trained).exit_code == 0


# --- a report from another commit is refused ---------------------------------------------------


def test_a_gates_json_from_another_commit_is_refused(trained: Path) -> None:
    first = git("rev-parse", "HEAD", cwd=trained).strip()
    csv = trained / "data/raw/loans.csv"
    rows = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join(rows[:-40]) + "\n", encoding="utf-8")
    assert run_exe("run", "loans", cwd=trained).exit_code == 0
    git("commit", "-qam", "less data", cwd=trained)
    assert run_exe("report", cwd=trained).exit_code == 0
    old = git("show", f"{first}:reports/loans/gates.json", cwd=trained)
    assert old != (trained / "reports/loans/gates.json").read_text(encoding="utf-8")

    (trained / "reports/loans/gates.json").write_text(old, encoding="utf-8")
    assert_no_readiness_claimed(trained, "reports/loans/gates.json is not the report compiled/loans/dvc.lock "
                                         "records (it was made for other inputs)")
    # ...and with that commit's lock too: the lock does not match this commit's data.
    lock = git("show", f"{first}:compiled/loans/dvc.lock", cwd=trained)
    (trained / "compiled/loans/dvc.lock").write_text(lock, encoding="utf-8")
    assert_no_readiness_claimed(trained, "data/raw/loans.csv changed since stage 'ingest' ran")


def test_a_gates_json_without_a_compiled_pipeline_is_refused(trained: Path) -> None:
    shutil.copytree(trained / "reports/loans", trained / "reports/copied")
    (trained / "reports/loans/report.md").unlink()

    reported = run_exe("report", cwd=trained)

    assert reported.exit_code == 1
    assert "copied: NO VERDICT for this commit: 'copied' is not a compiled pipeline with gates" in reported.stderr
    assert (trained / "reports/loans/report.md").is_file(), "the current report is still rendered"


# --- restoring from the cache keeps the verdict -------------------------------------------------


def test_outputs_checked_out_of_the_cache_keep_the_verdict(trained: Path) -> None:
    """A fresh checkout with DVC's cache (CI): missing data and models are restored, not a reason to
    drop the gate reports, which stay the committed bytes; nothing is trained or gated again."""
    for folder in ("data/loans", "models/loans"):
        shutil.rmtree(trained / folder)
    (trained / "reports/loans/predictions.parquet").unlink()
    before = {p: (trained / p).read_bytes() for p in VERDICT_FILES[:2]}

    ran = run_exe("run", "--all", cwd=trained)

    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "loans:gate-performance  cached" in ran.stdout and "loans:gates             cached" in ran.stdout
    # ingest and evaluate run again (stages with uncached outputs have no run cache), to the same bytes
    for step in ("train", "gate-performance", "gates"):  # what a stage's command prints
        assert f"loans {step}: " not in ran.stdout, step
    assert "loans: PASS" in ran.stdout
    assert {p: (trained / p).read_bytes() for p in before} == before
    assert git("status", "--porcelain", cwd=trained) == ""


def test_a_report_in_a_job_without_the_data_is_judged_by_the_lock(trained: Path) -> None:
    """The PR-comment job checks out the commit without `dvc pull`: data and models are absent, and
    the committed report still binds to the commit through dvc.lock."""
    for folder in ("data/loans", "models/loans", ".dvc/cache"):
        shutil.rmtree(trained / folder)
    assert f"1 pipeline {READY}" in comment(trained)
    gates = json.loads((trained / "reports/loans/gates.json").read_text(encoding="utf-8"))
    gates["gates"][0]["reason"] = gates["gates"][0]["reason"].replace("0.6", "0.5")
    (trained / "reports/loans/gates.json").write_text(json.dumps(gates), encoding="utf-8")
    assert f"1 pipeline {READY}" not in comment(trained)


# --- a remote or disk the run cannot write to ---------------------------------------------------


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([str(BIN / "dvc"), *args], cwd=repo, check=True, capture_output=True)


def use_remote(repo: Path, url: Path | str, name: str = "elsewhere") -> None:
    dvc(repo, "remote", "add", "--local", "-f", name, str(url))
    dvc(repo, "config", "--local", "core.remote", name)


def test_a_remote_that_is_not_defined(trained: Path) -> None:
    dvc(trained, "config", "--local", "core.remote", "backup")

    ran = run_exe("run", "--all", cwd=trained)

    assert ran.exit_code == 2, ran.stderr
    assert ran.stderr.startswith(".dvc/config: core.remote names DVC remote 'backup', which is not defined "
                                 "(defined: local): add it with `dvc remote add backup URL`")


def test_a_remote_that_is_a_file(trained: Path, tmp_path: Path) -> None:
    afile = tmp_path / "remote.txt"
    afile.write_text("not a folder\n")
    use_remote(trained, afile)

    ran = run_exe("run", "--all", cwd=trained)

    assert ran.exit_code == 2, ran.stderr
    assert ran.stderr.startswith(f"DVC remote 'elsewhere' ({afile}): is a file, not a folder: point it at a "
                                 "writable folder with `dvc remote modify elsewhere url PATH`")


def namespace_mount(tmp_path: Path) -> list[str]:
    """`unshare` that gives a command its own mount namespace (as root, or as a user where the
    kernel allows user namespaces), so a tmpfs can be mounted for it alone; else the test skips."""
    command = ["unshare", "--mount", "--map-root-user"]
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run([*command, "mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(probe)],
                              capture_output=True, check=False)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace here: {done.stderr.decode().strip()}")
    return command


def on_small_filesystem(tmp_path: Path, mountpoint: Path, args: list[str], cwd: Path, *,
                        options: str = "size=64k", fill: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `modelops-ci ARGS` with a small tmpfs at `mountpoint` (filled up unless `fill` is false)."""
    command = namespace_mount(tmp_path)
    filled = 'mkdir "$2/remote" && { dd if=/dev/zero of="$2/fill" bs=4k 2>/dev/null; true; }'
    script = f'mount -t tmpfs -o "$1" tmpfs "$2" && {{ [ "$3" != fill ] || {filled}; }} && shift 3 && exec "$@"'

    mountpoint.mkdir(parents=True, exist_ok=True)
    return subprocess.run([*command, "sh", "-c", script, "sh", options, str(mountpoint), "fill" if fill else "-",
                           str(BIN / "modelops-ci"), *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_a_remote_on_a_full_disk(trained: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    use_remote(trained, disk / "remote")

    ran = on_small_filesystem(tmp_path, disk, ["run", "--all"], trained)

    assert ran.returncode == 2, ran.stderr
    assert (f"DVC remote 'elsewhere' ({disk / 'remote'}): no space left on the device (or the disk quota is "
            "used up): free space there, or point it at a writable folder") in ran.stderr
    assert "internal error" not in ran.stderr


def test_a_remote_that_is_not_writable(trained: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    use_remote(trained, disk / "store")

    ran = on_small_filesystem(tmp_path, disk, ["run", "--all"], trained, options="ro,size=64k", fill=False)

    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.startswith(f"DVC remote 'elsewhere' ({disk / 'store'}): is not writable (Read-only file "
                                 "system): fix its permissions, or point it at a writable folder")


def test_a_full_disk_under_an_output_names_the_file(trained: Path, tmp_path: Path) -> None:
    csv = trained / "data/raw/loans.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("north", "North", 1), encoding="utf-8")

    ran = on_small_filesystem(tmp_path, trained / "data/loans", ["run", "loans"], trained)

    assert ran.returncode == 2, ran.stderr
    assert f"{trained}/data/loans/dataset.parquet: no space left on the device" in ran.stderr
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    assert not (trained / "reports/loans/gates.json").exists()


def test_a_run_again_keeps_every_gate_report_while_compare_runs_again(trained: Path) -> None:
    """The compare gate runs on every repro: its report and gates.json go first, and that must not
    make the run forget the other gates' reports, which DVC would not run again (issue 9's cleanup
    broke the second `ci` of the example repo this way)."""
    write(trained, "policies/test.yaml", POLICY.replace(
        "  stages:", "    compare: {metric: roc_auc, margin: 0.05, allow_first: true}\n  stages:"))
    assert run_exe("compile", cwd=trained).exit_code == 0
    first = run_exe("run", "--all", cwd=trained)  # the gate stages only: the model is cached
    assert first.exit_code == 0, first.stdout + first.stderr
    reports = {p: p.read_bytes() for p in (trained / "reports/loans/gates").glob("*.json")}
    assert {p.name for p in reports} == {"compare.json", "performance.json"}
    again = run_exe("run", "--all", cwd=trained)
    assert again.exit_code == 0, again.stdout + again.stderr
    assert {p: p.read_bytes() for p in (trained / "reports/loans/gates").glob("*.json")} == reports
    assert json.loads((trained / "reports/loans/gates.json").read_text())["verdict"] == "pass"
