"""Benchmark `modelops-ci run --all` on a copy of the project's example repo: the cold run, the
no-op run, and what a process per DVC stage costs.

Run with the project's venv: `.venv/bin/python benchmarks/bench_run.py [--repeat N] [--keep]`.

Each round builds two fresh copies of the example repo (pipelines/, policies/, contracts/; git
init, dvc init with scaffold's DVC config, compile, commit). On the first, `modelops-ci run --all`
runs cold, its lock files are committed and the no-op run is timed NOOP_RUNS times. On the second,
the same stages run in one Python process through `modelops_ci.steps.run_step`, in DVC's order,
MLflow logging on. Then the `modelops-ci step` processes are timed alone, with `-X importtime`,
and their `sys.modules` read.
Targets (reported, never enforced): no-op <= 5% of the full run and <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("pipelines", "policies", "contracts")  # those that exist
# Nothing leaves the machine: the opt-outs of modelops_ci.offline.QUIET_ENV, spelled out so every
# process this benchmark starts has them whatever the package does.
OFFLINE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
NOOP_RUNS = 3  # per round: the no-op run is cheap, so it gets more samples
NOOP_SHARE_TARGET = 0.05
NOOP_SECONDS_TARGET = 3.0
CORE_STEPS = ("ingest", "split", "train", "evaluate")
DATA_STEPS = ("ingest", "split")
EXIT_GATE_FAILED = 1
HEAVY = ("mlflow", "dvc")
LARGEST_IMPORTS = 3
LABEL_WIDTH = 48
WARNING_WIDTH = 240
STAGE_ROW = re.compile(r"^(?P<stage>\S+:\S+)\s+(?P<status>ran|cached)\s+(?P<seconds>[\d.]+)\b")

# Runs a step through the real CLI entry point, then lists the top-level packages it imported.
PROBE = """\
import json, sys
from modelops_ci.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


class BenchError(Exception):
    """A command failed: the benchmark's figures would mean nothing."""


# -- processes ------------------------------------------------------------------------------------


def bench_env(home: Path) -> dict[str, str]:
    """The caller's environment without git/DVC/MLflow redirections, a pinned HOME and identity."""
    leaky = ("GIT_", "DVC_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(leaky)}
    env.update(OFFLINE_ENV)
    env.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


@dataclass
class Runner:
    env: dict[str, str]

    def run(self, command: Sequence[str | Path], cwd: Path,
            ok: Collection[int] = (0,)) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in command]
        try:
            done = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True,
                                  check=False)
        except OSError as exc:
            raise BenchError(f"cannot run {args[0]}: {exc}") from None
        if done.returncode not in ok:
            shown = " ".join(args[:5]) + (" ..." if len(args) > 5 else "")
            raise BenchError(f"`{shown}` in {cwd} exited {done.returncode}:\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def timed(self, command: Sequence[str | Path], cwd: Path,
              ok: Collection[int] = (0,)) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        done = self.run(command, cwd, ok)
        return time.perf_counter() - started, done

    def run_all(self, repo: Path, rounds: Rounds) -> tuple[float, dict[str, tuple[bool, float]]]:
        """Time `modelops-ci run --all`; a failed gate (exit 1) still ran every stage."""
        seconds, done = self.timed([BIN / "modelops-ci", "run", "--all"], repo, ok=(0, EXIT_GATE_FAILED))
        table = stage_table(done.stdout)
        if not table:
            raise BenchError(f"no stage table in the output of `modelops-ci run --all`:\n{done.stdout[-2000:]}")
        if done.returncode == EXIT_GATE_FAILED:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            rounds.warnings.append(f"run --all exited 1 (a gate failed), e.g. in {repo.name}: "
                                   f"{textwrap.shorten(last, WARNING_WIDTH)}")
        return seconds, table


def make_repo(runner: Runner, repo: Path) -> Path:
    """A committed copy of the example repo, set up as `modelops-ci init` would."""
    repo.mkdir(parents=True)
    for part in EXAMPLE_PARTS:
        if (PROJECT / part).is_dir():
            shutil.copytree(PROJECT / part, repo / part)
    (repo / ".gitignore").write_text(".modelops/\n", encoding="utf-8")
    return init_and_compile(runner, repo, "example pipelines")


def init_and_compile(runner: Runner, repo: Path, message: str) -> Path:
    """git init, dvc init with init's DVC config, compile, and commit the files already in `repo`."""
    from modelops_ci.commands.init import DVC_CONFIG

    runner.run(["git", "init", "-q"], repo)
    runner.run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    (repo / ".dvc" / "config").write_text(DVC_CONFIG, encoding="utf-8")
    runner.run([BIN / "modelops-ci", "compile"], repo)
    commit(runner, repo, message)
    return repo


def commit(runner: Runner, repo: Path, message: str) -> None:
    runner.run(["git", "add", "-A"], repo)  # a throw-away repo: everything in it is ours
    runner.run(["git", "commit", "-q", "--allow-empty", "-m", message], repo)


# -- 1 and 2: run --all, no-op, one process -------------------------------------------------------


@dataclass
class Rounds:
    full: list[float] = field(default_factory=list)
    noop: list[float] = field(default_factory=list)
    one_process: list[float] = field(default_factory=list)
    full_stages: list[dict[str, float]] = field(default_factory=list)  # table seconds per stage
    one_process_stages: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def stage_table(stdout: str) -> dict[str, tuple[bool, float]]:
    """`pipeline:stage` -> (ran, seconds) from run's summary table, in the order DVC ran them."""
    rows = (STAGE_ROW.match(line) for line in stdout.splitlines())
    return {m["stage"]: (m["status"] == "ran", float(m["seconds"])) for m in rows if m}


def one_round(runner: Runner, tmp: Path, index: int, rounds: Rounds) -> None:
    repo = make_repo(runner, tmp / f"run-{index}")
    seconds, table = runner.run_all(repo, rounds)
    if not all(ran for ran, _ in table.values()):
        rounds.warnings.append(f"round {index}: the cold run found cached stages")
    rounds.full.append(seconds)
    rounds.full_stages.append({stage: secs for stage, (_, secs) in table.items()})
    commit(runner, repo, "run")  # lock files, metrics, profiles: what a user commits
    for _ in range(NOOP_RUNS):
        seconds, again_table = runner.run_all(repo, rounds)
        again = [stage for stage, (ran, _) in again_table.items() if ran]
        if again:
            rounds.warnings.append(f"round {index}: the no-op run re-ran {', '.join(again)}")
        rounds.noop.append(seconds)
    other = make_repo(runner, tmp / f"one-process-{index}")
    seconds, done = runner.timed([sys.executable, Path(__file__).resolve(), "--worker", other, *table],
                                 other)
    rounds.one_process.append(seconds)
    rounds.one_process_stages.append(json.loads(done.stdout.strip().splitlines()[-1]))


def worker(root: Path, stages: Sequence[str]) -> None:
    """Run `pipeline:step` stages in this one process, as DVC would (from the repo root)."""
    os.chdir(root)
    from modelops_ci.steps import run_step

    seconds = {}
    for stage in stages:
        pipeline, _, step = stage.partition(":")
        started = time.perf_counter()
        run_step(root, step, pipeline)
        seconds[stage] = time.perf_counter() - started
    print(json.dumps(seconds))


# -- 3: start-up and imports of one stage process --------------------------------------------------


@dataclass
class StageProcess:
    stage: str
    wall: list[float]
    imports: dict[str, float]  # seconds per package, beyond what `python -c pass` imports
    modules: set[str]  # top-level packages in sys.modules at the end

    @property
    def import_total(self) -> float:
        return sum(self.imports.values())


def import_times(stderr: str) -> dict[str, float]:
    """Seconds per top-level package, from the top-level entries of a `-X importtime` report.

    An import made inside a function (mlflow, skops...) is top-level here too: it is charged to
    the package named, with everything it pulls in.
    """
    times: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not name[1:].startswith(" "):  # one space, then two per nesting level
            package = name.strip().split(".")[0]
            times[package] = times.get(package, 0.0) + int(cumulative) / 1e6
    return times


def baseline(runner: Runner, cwd: Path, repeat: int) -> tuple[float, dict[str, float]]:
    """Interpreter start-up wall time (median) and what it imports on its own (site, encodings)."""
    walls = [runner.timed([sys.executable, "-c", "pass"], cwd)[0] for _ in range(max(repeat, 5))]
    done = runner.run([sys.executable, "-X", "importtime", "-c", "pass"], cwd)
    return statistics.median(walls), import_times(done.stderr)


def probe_stage(runner: Runner, repo: Path, stage: str, repeat: int,
                startup_imports: dict[str, float]) -> StageProcess:
    pipeline, _, step = stage.partition(":")
    walls = [runner.timed([BIN / "modelops-ci", "step", step, pipeline], repo)[0] for _ in range(repeat)]
    done = runner.run([sys.executable, "-X", "importtime", "-c", PROBE, "step", step, pipeline], repo)
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    imports = {package: max(0.0, seconds - startup_imports.get(package, 0.0))
               for package, seconds in import_times(done.stderr).items()}
    return StageProcess(stage, walls, imports, modules)


def probed_stages(stages: Sequence[str]) -> list[str]:
    """The core steps of the first forecaster and of credit-risk (the biggest data set)."""
    pipelines = list(dict.fromkeys(stage.partition(":")[0] for stage in stages))
    forecasters = [p for p in pipelines if p.startswith("arrivals")]
    chosen = forecasters[:1] + [p for p in pipelines if p == "credit-risk"] or pipelines[:1]
    return [stage for stage in stages
            if stage.partition(":")[0] in chosen and stage.partition(":")[2] in CORE_STEPS]


# -- report ---------------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _head(title: str) -> str:
    return f"{title:<{LABEL_WIDTH}}{'median s':>10}{'min s':>10}"


def _row(label: str, times: Sequence[float]) -> str:
    return f"  {label:<{LABEL_WIDTH - 2}}{statistics.median(times):>10.2f}{min(times):>10.2f}"


def report_runs(rounds: Rounds, stage_count: int) -> list[str]:
    full, noop, one = (statistics.median(t) for t in (rounds.full, rounds.noop, rounds.one_process))
    share, best_share = noop / full, min(rounds.noop) / min(rounds.full)
    lines = [_head(f"1. `modelops-ci run --all`, {stage_count} stages"),
             _row(f"full run, cold (fresh copy; n={len(rounds.full)})", rounds.full),
             _row(f"no-op run, nothing changed (n={len(rounds.noop)})", rounds.noop),
             f"no-op / full: {share:.1%} median, {best_share:.1%} min "
             f"(target <= {NOOP_SHARE_TARGET:.0%}: {_verdict(share <= NOOP_SHARE_TARGET)}); "
             f"no-op {noop:.2f} s (target <= {NOOP_SECONDS_TARGET:.0f} s: "
             f"{_verdict(noop <= NOOP_SECONDS_TARGET)})", "",
             _head("2. a process per stage vs one process"),
             _row("modelops-ci run --all (DVC, process/stage)", rounds.full),
             _row("run_step in one process (no DVC)", rounds.one_process),
             f"ratio run --all / one process: {full / one:.1f}x median, "
             f"{min(rounds.full) / min(rounds.one_process):.1f}x min", ""]
    return lines + report_by_step(rounds)


def report_by_step(rounds: Rounds) -> list[str]:
    """Seconds per step kind, summed over pipelines, median over rounds."""
    steps = list(dict.fromkeys(stage.partition(":")[2] for stage in rounds.full_stages[0]))

    def per_step(runs: list[dict[str, float]], step: str) -> float:
        return statistics.median(sum(s for k, s in run.items() if k.endswith(f":{step}")) for run in runs)

    lines = [f"  {'step, summed over pipelines':<28}{'run --all s':>12}{'one process s':>15}{'difference s':>14}"]
    for step in steps:
        dvc, one = per_step(rounds.full_stages, step), per_step(rounds.one_process_stages, step)
        lines.append(f"  {step:<28}{dvc:>12.1f}{one:>15.2f}{dvc - one:>14.1f}")
    outside = statistics.median(total - sum(run.values())
                                for total, run in zip(rounds.full, rounds.full_stages, strict=True))
    lines.append(f"  run --all outside the stages (start-up, DVC's graph, push): {outside:.1f} s")
    return lines


def report_processes(probes: list[StageProcess], startup: float) -> list[str]:
    lines = [f"3. one `modelops-ci step` process alone (start-up, `python -c pass`: {startup:.3f} s)",
             f"  {'stage':<24}{'wall s':>7}{'imports s':>10}{'other s':>8}{'share':>6}  "
             f"{'mlflow/dvc':<11} largest imports (s)"]
    for probe in probes:
        wall = statistics.median(probe.wall)
        other = wall - startup - probe.import_total
        share = (startup + probe.import_total) / wall
        heavy = ",".join(sorted(probe.modules & set(HEAVY))) or "-"
        largest = sorted(probe.imports.items(), key=lambda item: -item[1])[:LARGEST_IMPORTS]
        named = ", ".join(f"{package} {seconds:.2f}" for package, seconds in largest)
        lines.append(f"  {probe.stage:<24}{wall:>7.2f}{probe.import_total:>10.2f}{other:>8.2f}"
                     f"{share:>6.0%}  {heavy:<11} {named}")
    data = [p for p in probes if p.stage.partition(":")[2] in DATA_STEPS]
    leaked = sorted({name for p in data for name in p.modules & set(HEAVY)})
    lines += [f"ingest and split processes import neither mlflow nor dvc (sys.modules): "
              f"{'yes' if not leaked else 'NO, they import ' + ', '.join(leaked)}",
              "share = (start-up + imports) / wall; other = the rest (the step's work, MLflow's store "
              "set-up...);", "imports from one -X importtime run, which adds a little"]
    return lines


# -- main -----------------------------------------------------------------------------------------


def measure(tmp: Path, repeat: int) -> str:
    home = tmp / "home"
    home.mkdir()
    runner = Runner(bench_env(home))
    rounds = Rounds()
    for index in range(1, repeat + 1):
        print(f"round {index}/{repeat}...", file=sys.stderr, flush=True)
        one_round(runner, tmp, index, rounds)
    stages = list(rounds.full_stages[0])
    print("timing single stage processes...", file=sys.stderr, flush=True)
    repo = tmp / f"run-{repeat}"
    startup, startup_imports = baseline(runner, repo, repeat)
    probes = [probe_stage(runner, repo, stage, repeat, startup_imports) for stage in probed_stages(stages)]
    pipelines = len({stage.partition(":")[0] for stage in stages if stage.endswith(":ingest")})
    head = [f"example repo: {pipelines} pipelines; {repeat} round(s); Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPU(s)", ""]
    tail = ["", *(f"WARNING: {w}" for w in dict.fromkeys(rounds.warnings))]
    return "\n".join(head + report_runs(rounds, len(stages)) + [""]
                     + report_processes(probes, startup) + tail).rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help=f"rounds: fresh copies for the full and one-process runs, {NOOP_RUNS} no-op "
                             "runs each; also runs of each single stage process (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp repos and print where")
    parser.add_argument("--worker", nargs="+", metavar=("REPO", "STAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Path(args.worker[0]).resolve(), args.worker[1:])
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return in_scratch("modelops-bench-run-", args.keep, lambda tmp: measure(tmp, args.repeat))


def in_scratch(prefix: str, keep: bool, bench: Callable[[Path], str]) -> int:
    """Run `bench` offline in a fresh temp folder and print its report; exit 1 on a BenchError.
    The folder is removed afterwards unless `keep`."""
    os.environ.update(OFFLINE_ENV)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        print(bench(tmp))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
