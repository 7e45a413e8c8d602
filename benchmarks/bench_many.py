"""Benchmark execution layouts for many series (issue 12, part 1): a pipeline per series (today),
DVC `foreach` stages in one dvc.yaml, and a batched prototype in one process.

Run with the project's venv: `.venv/bin/python benchmarks/bench_many.py [--sizes ...] [--keep]`.

A seeded synthetic panel of monthly series (trend + seasonality + noise; one CSV with a `series`
column) feeds one forecaster per series, as pipelines/arrivals.yaml does: Ridge on lags, `task:
forecast`, a temporal split, the performance gate. For each layout and size, a fresh throw-away
repo (git init, dvc init with init's DVC config, compile, commit) is timed through a first full run,
a no-op run and a run after one series' data changed (that run's wall time is the cost of one
series):
  (a) `modelops-ci run --all` over compile's output: one compiled/<p>/dvc.yaml per series;
  (b) one dvc.yaml, written here, with DVC `foreach` stages that call `modelops-ci step STEP <p>`
      with each series' compiled params (compile's per-series dvc.yaml files removed), run by
      `dvc repro` then `dvc push` (what `run --all` does around DVC);
  (c) a batched prototype (this file's `--worker`): one process reads the panel once, keys each
      series by the sha256 of its rows, its compiled params and the package's code, and runs
      today's steps (`modelops_ci.steps.run_step`, MLflow logging on) in-process for each series
      whose key changed, serially or with joblib (loky, n_jobs=2, one BLAS/OpenMP thread each).
      Prototype only: no DVC around it, and ingest's source reader is memoized so the panel is
      parsed once per process instead of once per series.
The series' own work, a bare fit + predict + metrics of one series in-process, is timed in the
worker, so each layout's overhead per series can be stated.
It exits non-zero only when a command fails (a failed gate, exit 1 from `run --all`, is a result).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run import BIN, OFFLINE_ENV, BenchError, Runner, bench_env, commit

PANEL = "data/panel.csv"
SERIES_LIST = "pipelines/series/panel.csv"
FAMILY = "panel"
MONTHS = 120
SEED = 12
KEYS_FILE = ".modelops/batch-keys.json"  # the prototype's per-series cache keys
STEPS = ("ingest", "split", "train", "evaluate", "gate-performance", "gates")
EXIT_GATE_FAILED = 1
DVC_SIZES = (10, 30)
BATCH_SIZES = (10, 30, 100, 300)
NOOP_RUNS = 2
OWN_WORK_REPEAT = 20
JOBS = 2

PIPELINE = f"""\
# A seeded synthetic panel of monthly series, one forecaster per series (bench_many.py).
apiVersion: modelops/v1
kind: Pipeline
metadata:
  name: {FAMILY}
  labels:
    domain: synthetic
spec:
  task: forecast
  data:
    source:
      path: {PANEL}
    time: month
    target:
      column: value
    features:
      drop: [series]
  split:
    kind: temporal
    test_periods: 12
  model:
    estimator: sklearn.linear_model.Ridge
    params:
      alpha: 1.0
    lags: [1, 12, 13]
    season: 12
    log_target: true
    trend: true
    horizon: 1
  metrics: [mae, smape, mase]
  foreach:
    from: {SERIES_LIST}
    column: series
  do:
    data:
      filter:
        series: ${{item}}
"""

POLICY = f"""\
apiVersion: modelops/v1
kind: Policy
metadata:
  name: forecasting
spec:
  selector:
    names: ["{FAMILY}-*"]
  gates:
    performance:
      confidence: 0.9
      metrics:
        mase: {{max: 1.5}}
  stages: [dev, production]
"""


# -- the panel and the repos ----------------------------------------------------------------------


def series_ids(count: int) -> list[str]:
    return [f"s{i:04d}" for i in range(count)]


def panel_csv(count: int, seed: int = SEED, months: int = MONTHS) -> str:
    """`series,month,value`: level * growth^t * (1 + seasonal swing) * lognormal noise, per series."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(months)
    stamps = [f"{2010 + m // 12}-{m % 12 + 1:02d}-01" for m in t]
    lines = ["series,month,value"]
    for name in series_ids(count):
        level, growth = rng.uniform(50, 500), rng.uniform(-0.002, 0.008)
        swing, phase = rng.uniform(0.05, 0.3), rng.uniform(0, 2 * np.pi)
        noise = rng.normal(0, rng.uniform(0.01, 0.05), months)
        values = level * (1 + growth) ** t * (1 + swing * np.sin(2 * np.pi * t / 12 + phase)) * np.exp(noise)
        lines += [f"{name},{stamp},{value:.3f}" for stamp, value in zip(stamps, values, strict=True)]
    return "\n".join(lines) + "\n"


def change_one_series(repo: Path) -> None:
    """Scale the last month of the panel's first series by 1.05: its data changed, no other's."""
    path = repo / PANEL
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")[0]
    last = max(i for i, line in enumerate(lines) if line.startswith(f"{first},"))
    name, month, value = lines[last].split(",")
    lines[last] = f"{name},{month},{float(value) * 1.05:.3f}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_repo(runner: Runner, repo: Path, count: int) -> Path:
    """A committed repo with the panel, its pipeline and policy, compiled: layout (a) and (c)."""
    from modelops_ci.commands.init import DVC_CONFIG

    files = {PANEL: panel_csv(count), SERIES_LIST: "series\n" + "\n".join(series_ids(count)) + "\n",
             f"pipelines/{FAMILY}.yaml": PIPELINE, "policies/forecasting.yaml": POLICY,
             ".gitignore": ".modelops/\n"}
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text, encoding="utf-8")
    runner.run(["git", "init", "-q"], repo)
    runner.run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    (repo / ".dvc" / "config").write_text(DVC_CONFIG, encoding="utf-8")
    runner.run([BIN / "modelops-ci", "compile"], repo)
    commit(runner, repo, "panel")
    return repo


def to_dvc_foreach(repo: Path, count: int) -> None:
    """Layout (b): compile's per-series stages as `foreach` stages of the root dvc.yaml (beside
    compile's summary stage, which now finds no compiled/<p>/dvc.yaml and lists no pipeline)."""
    import yaml

    from modelops_ci.layout import Layout

    names = series_ids(count)
    first = Layout(f"{FAMILY}-{names[0]}")
    compiled = yaml.safe_load((repo / first.stages).read_text(encoding="utf-8"))["stages"]
    template = yaml.safe_dump(compiled, sort_keys=False).replace(first.name, f"{FAMILY}-${{item}}")
    stages: dict[str, Any] = {}
    for step, stage in yaml.safe_load(template).items():
        del stage["wdir"]  # compile's stages run from the root (../..); these are at the root
        stages[step] = {"foreach": names, "do": stage}
    top = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    stages.update(top["stages"])

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text = yaml.dump({"stages": stages}, Dumper=NoAliases, sort_keys=False)
    (repo / "dvc.yaml").write_text(text, encoding="utf-8")
    for name in names:
        (repo / Layout(f"{FAMILY}-{name}").stages).unlink()


# -- timing the layouts ---------------------------------------------------------------------------


@dataclass
class Timing:
    layout: str
    series: int
    full: float
    noop: list[float]
    changed: float
    note: str = ""
    worker: dict[str, Any] = field(default_factory=dict)  # (c): what the full run's worker reported

    def row(self, own: float) -> str:
        per = self.full / self.series
        overhead = f"{per / own:>8.0f}x" if own else f"{'-':>9}"
        return (f"  {self.layout:<34}{self.series:>7}{self.full:>9.1f}{per:>10.3f}{overhead}"
                f"{statistics.median(self.noop):>9.2f}{self.changed:>10.2f}  {self.note}")


def timed_run(runner: Runner, repo: Path, layout: str, jobs: int) -> tuple[float, dict[str, Any]]:
    """One run of `layout` on `repo`: wall seconds, and the worker's report for (c)."""
    if layout == "a":
        seconds, _ = runner.timed([BIN / "modelops-ci", "run", "--all"], repo, ok=(0, EXIT_GATE_FAILED))
        return seconds, {}
    if layout == "b":
        repro, _ = runner.timed([sys.executable, "-m", "dvc", "repro", "-q"], repo)
        push, _ = runner.timed([sys.executable, "-m", "dvc", "push", "-q"], repo)
        return repro + push, {}
    seconds, done = runner.timed([sys.executable, Path(__file__).resolve(), "--worker", repo,
                                  "--jobs", str(jobs)], repo)
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def measure_layout(runner: Runner, tmp: Path, layout: str, count: int, jobs: int = 1) -> Timing:
    label = {"a": "(a) pipeline per series, run --all", "b": "(b) DVC foreach, one dvc.yaml",
             "c": f"(c) batched, one process, n_jobs={jobs}"}[layout]
    print(f"{label}: {count} series...", file=sys.stderr, flush=True)
    repo = make_repo(runner, tmp / f"{layout}{jobs}-{count}", count)
    if layout == "b":
        to_dvc_foreach(repo, count)
        commit(runner, repo, "dvc foreach stages")
    full, report = timed_run(runner, repo, layout, jobs)
    commit(runner, repo, "run")
    noop = [timed_run(runner, repo, layout, jobs)[0] for _ in range(NOOP_RUNS)]
    change_one_series(repo)
    commit(runner, repo, "one series changed")
    changed, after = timed_run(runner, repo, layout, jobs)
    note = ""
    if layout == "c" and after.get("computed") != 1:
        note = f"WARNING: the change recomputed {after.get('computed')} series"
    return Timing(label, count, full, noop, changed, note, report)


# -- (c) the batched prototype: `--worker REPO --jobs N` ------------------------------------------


def code_version() -> str:
    """What a series' cache key holds of the code: the package's version and its sources."""
    import modelops_ci

    digest = hashlib.sha256(modelops_ci.__version__.encode())
    for path in sorted(Path(modelops_ci.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def series_keys(root: Path) -> dict[str, str]:
    """pipeline -> sha256 of the series' rows, its compiled params and the code."""
    import pandas as pd

    from modelops_ci.layout import Layout

    code = code_version()
    panel = pd.read_csv(root / PANEL)
    keys = {}
    for name, rows in panel.groupby("series", sort=True):
        pipeline = f"{FAMILY}-{name}"
        digest = hashlib.sha256(code.encode())
        digest.update(rows.to_csv(index=False).encode())
        digest.update((root / Layout(pipeline).params).read_bytes())
        keys[pipeline] = digest.hexdigest()
    return keys


def read_panel_once() -> None:
    """Memoize ingest's source reader in this process: the panel is parsed once, not per series."""
    from modelops_ci.steps import ingest

    original = ingest._read_source
    parsed: dict[str, Any] = {}

    def read(ctx: Any, source: dict[str, Any], index: int | None) -> Any:
        path = str(source.get("path"))
        if path not in parsed:
            parsed[path] = original(ctx, source, index)
        return parsed[path].copy()

    ingest._read_source = read


def run_series(root: Path, pipeline: str) -> dict[str, float]:
    """Today's steps of one series, in this process, one BLAS/OpenMP thread: seconds per step."""
    from threadpoolctl import threadpool_limits

    from modelops_ci.steps import run_step

    if not getattr(run_series, "ready", False):  # once per (loky worker) process
        os.chdir(root)
        read_panel_once()
        run_series.ready = True  # type: ignore[attr-defined]
    seconds = {}
    with threadpool_limits(1):
        for step in STEPS:
            started = time.perf_counter()
            run_step(root, step, pipeline)
            seconds[step] = time.perf_counter() - started
    return seconds


def own_work(root: Path, pipeline: str) -> float:
    """Median seconds of one series' bare fit + rolling forecast + metrics, frames in memory."""
    from threadpoolctl import threadpool_limits

    from modelops_ci.steps import STEPS as STEP_READS
    from modelops_ci.steps import evaluate, forecast, train
    from modelops_ci.steps.context import load_context
    from modelops_ci.steps.frames import read_parquet

    ctx = load_context(root, pipeline)
    fitting, judging = ctx.reading(STEP_READS["train"].reads), ctx.reading(STEP_READS["evaluate"].reads)
    train_rows, test_rows = read_parquet(root / ctx.layout.train), read_parquet(root / ctx.layout.test)

    def once() -> None:
        model, facts = forecast.fit(fitting, train_rows, train.estimator(fitting))
        evaluate.compute_metrics(judging, evaluate.predict(judging, model, facts, test_rows), facts)

    with threadpool_limits(1):
        once()  # imports
        times = []
        for _ in range(OWN_WORK_REPEAT):
            started = time.perf_counter()
            once()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def worker(root: Path, jobs: int) -> dict[str, Any]:
    """The batched prototype: recompute the series whose key changed, then the summary."""
    os.chdir(root)
    keys_file = root / KEYS_FILE
    known = json.loads(keys_file.read_text(encoding="utf-8")) if keys_file.is_file() else {}
    keys = series_keys(root)
    todo = [pipeline for pipeline, key in keys.items() if known.get(pipeline) != key]
    report: dict[str, Any] = {"computed": len(todo)}
    if not todo:
        return report
    started = time.perf_counter()
    if jobs > 1 and len(todo) > 1:
        import bench_many  # by name, not __main__, so loky's workers import it
        from joblib import Parallel, delayed

        from modelops_ci.ml import tracking
        from modelops_ci.steps.context import load_context

        with tracking._tracking(load_context(root, todo[0]).tracked):
            pass  # MLflow's database and the family's experiment, before two workers race to make them
        per_series = Parallel(n_jobs=jobs, backend="loky")(
            delayed(bench_many.run_series)(root, pipeline) for pipeline in todo)
    else:
        per_series = [run_series(root, pipeline) for pipeline in todo]
    report["steps"] = {step: sum(s[step] for s in per_series) for step in STEPS}
    report["series_seconds"] = time.perf_counter() - started
    from modelops_ci.steps import run_step

    run_step(root, "summary", None)
    keys_file.parent.mkdir(exist_ok=True)
    keys_file.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    report["own_work"] = own_work(root, todo[0])
    return report


# -- report and main ------------------------------------------------------------------------------


def report(timings: list[Timing]) -> str:
    own = statistics.median(t.worker["own_work"] for t in timings if "own_work" in t.worker)
    lines = [f"{'':2}{'layout':<34}{'series':>7}{'full s':>9}{'s/series':>10}{'/own':>9}"
             f"{'no-op s':>9}{'1 chg s':>10}"]
    lines += [t.row(own) for t in timings]
    lines += ["", f"series' own work (bare fit + rolling forecast + metrics, in process, median): "
              f"{own * 1000:.1f} ms",
              "/own = (full s / series) / own work; 1 chg s = wall time after one series' data changed"]
    serial = [t for t in timings if t.layout.endswith("n_jobs=1") and "steps" in t.worker]
    if serial:
        biggest = max(serial, key=lambda t: t.series)
        steps = ", ".join(f"{step} {seconds / biggest.series * 1000:.0f}"
                          for step, seconds in biggest.worker["steps"].items())
        lines += [f"(c) serial, {biggest.series} series, ms per series per step (today's steps in process, "
                  f"MLflow on): {steps}"]
    return "\n".join(lines)


def measure(tmp: Path, dvc_sizes: Sequence[int], batch_sizes: Sequence[int],
            layouts: str) -> list[Timing]:
    home = tmp / "home"
    home.mkdir()
    runner = Runner(bench_env(home))
    plan: list[Callable[[], Timing]] = []
    for count in dvc_sizes:
        plan += [functools.partial(measure_layout, runner, tmp, layout, count)
                 for layout in "ab" if layout in layouts]
    if "c" in layouts:
        for count in batch_sizes:
            plan += [functools.partial(measure_layout, runner, tmp, "c", count, jobs) for jobs in (1, JOBS)]
    return [step() for step in plan]


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dvc-sizes", type=sizes, default=list(DVC_SIZES),
                        help="series counts for layouts (a) and (b), comma-separated (default 10,30)")
    parser.add_argument("--batch-sizes", type=sizes, default=list(BATCH_SIZES),
                        help="series counts for layout (c) (default 10,30,100,300)")
    parser.add_argument("--layouts", default="abc", help="which of a, b, c to run (default abc)")
    parser.add_argument("--keep", action="store_true", help="keep the temp repos and print where")
    parser.add_argument("--worker", type=Path, metavar="REPO", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker.resolve(), args.jobs)))
        return 0
    if "c" not in args.layouts or not args.batch_sizes:
        parser.error("layout c is needed: its worker times the series' own work")
    os.environ.update(OFFLINE_ENV)
    tmp = Path(tempfile.mkdtemp(prefix="modelops-bench-many-"))
    started = time.perf_counter()
    try:
        timings = measure(tmp, args.dvc_sizes, args.batch_sizes, args.layouts)
        print(f"{MONTHS} months per series; Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); "
              f"bench wall time {time.perf_counter() - started:.0f} s\n")
        print(report(timings))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
