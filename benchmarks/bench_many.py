"""Benchmark many series (issue 12): the batched family stage (`spec.batch: true`) against a pipeline
per series, and against the series' own work.

Run with the project's venv: `.venv/bin/python benchmarks/bench_many.py [--sizes ...] [--keep]`.

A seeded synthetic panel of monthly series (trend + seasonality + noise; one CSV with a `series`
column) feeds one forecaster per series, as pipelines/employment.yaml does: Ridge on lags, `task:
forecast`, a temporal split, the performance gate. For each layout and size, a fresh throw-away
repo (git init, dvc init with init's DVC config, compile, commit) is timed through a first full run,
a no-op run and a run after one series' data changed:
  (batched) `modelops-ci run --all` over a compiled `spec.batch: true` family: one DVC stage,
      `modelops-ci step batch panel`, the series keyed, run on every core, pushed to the DVC remote;
      the stage process tree's peak memory (psutil, summed over the tree) during the first run;
  (a) `modelops-ci run --all` over `spec.batch: false`: one compiled/<p>/dvc.yaml per series (today's
      layout; ~17 min at 100 series: `--no-per-pipeline` skips it);
  (b) optional (`--layouts b`): one dvc.yaml, written here, with DVC `foreach` stages calling
      `modelops-ci step STEP <p>`, run by `dvc repro` then `dvc push`.
The series' own work, a bare fit + rolling forecast + metrics per series with the frames in memory
(one BLAS/OpenMP thread), is timed in a separate process for every series and summed, so each
layout's overhead over the work itself can be stated. `--profile N` instead profiles the family's
stage (`modelops-ci step batch` under cProfile) on a compiled repo of N series.
It exits non-zero only when a command fails (a failed gate, exit 1 from `run --all`, is a result).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run import BIN, BenchError, Runner, bench_env, commit, in_scratch, init_and_compile

PANEL = "data/panel.csv"
SERIES_LIST = "pipelines/series/panel.csv"
FAMILY = "panel"
MONTHS = 120
SEED = 12
EXIT_GATE_FAILED = 1
PER_PIPELINE_SIZES = (10, 100)
BATCH_SIZES = (10, 100, 300, 1000)
NOOP_RUNS = 2
MEMORY_POLL = 0.05  # seconds between two readings of the stage's process tree
PROFILE_LINES = 40
# --profile's summary: label -> (file ending, function) of the profiled stage process.
WHERE = {
    "all imports": ("<frozen importlib._bootstrap>", "_find_and_load"),
    "the stage (batch.run)": ("steps/batch.py", "run"),
    "  reading the panel, rows per series": ("steps/batch.py", "_rows_by_series"),
    "  code version (package files, libraries)": ("steps/batch.py", "code_version"),
    "  keys (per series)": ("steps/batch.py", "series_key"),
    "  stored records (series.json)": ("steps/batch.py", "stored_records"),
    "  the series (map_series)": ("steps/parallel.py", "map_series"),
    "    ingest.prepare (filter, dates, checks)": ("steps/ingest.py", "prepare"),
    "      dates parsed (timeaxis._dates)": ("steps/timeaxis.py", "_dates"),
    "    split": ("steps/split.py", "checked_split"),
    "    fit (forecast.fit)": ("steps/forecast.py", "fit"),
    "    model written (model_store.save)": ("ml/model_store.py", "save"),
    "    predict (rolling forecast)": ("steps/evaluate.py", "predict"),
    "    metrics": ("steps/evaluate.py", "compute_metrics"),
    "    gates (gate.evaluate)": ("steps/gate.py", "evaluate"),
    "    threadpool limits: libraries listed (threadpoolctl)": ("threadpoolctl.py", "_find_libraries_with_linux"),
    "    files written (fsutil.write_atomic)": ("modelops_ci/fsutil.py", "write_atomic"),
    "      of which fsync": ("~", "<built-in method posix.fsync>"),
    "  MLflow: parent + child runs (log_family)": ("ml/tracking.py", "log_family"),
    "    of which SQLite commits": ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    "  family report and metrics": ("steps/batch.py", "family_report"),
}
# The targets at 300 series (seconds) and 1,000 (bytes): reported, never enforced.
TARGET_AT = 300
FULL_BEYOND_OWN = 10.0
CHANGED_BEYOND_OWN = 3.0
NOOP_MAX = 2.0
MEMORY_AT = 1000
MEMORY_MAX = 2 * 1024**3

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
  batch: {{batch}}
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
        series: ${{{{item}}}}
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


def change_one_series(repo: Path) -> str:
    """Scale the last month of the panel's first series by 1.05: its data changed, no other's."""
    path = repo / PANEL
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")[0]
    last = max(i for i, line in enumerate(lines) if line.startswith(f"{first},"))
    name, month, value = lines[last].split(",")
    lines[last] = f"{name},{month},{float(value) * 1.05:.3f}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{FAMILY}-{first}"


def make_repo(runner: Runner, repo: Path, count: int, batch: bool) -> Path:
    """A committed repo with the panel, its pipeline and policy, compiled."""

    pipeline = PIPELINE.format(batch="true" if batch else "false")
    files = {PANEL: panel_csv(count), SERIES_LIST: "series\n" + "\n".join(series_ids(count)) + "\n",
             f"pipelines/{FAMILY}.yaml": pipeline, "policies/forecasting.yaml": POLICY,
             ".gitignore": ".modelops/\n"}
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text, encoding="utf-8")
    return init_and_compile(runner, repo, "panel")


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
    changed_series: str
    peak_bytes: int | None = None
    ran_after_change: int | None = None  # batched: how many series the change recomputed
    own: dict[str, float] = field(default_factory=dict)  # series -> its own work (s)
    alone: float | None = None  # the changed series run by a process of its own, start to end (s)

    @property
    def own_total(self) -> float:
        return sum(self.own.values())

    @property
    def own_changed(self) -> float:
        return self.own.get(self.changed_series, 0.0)

    def row(self) -> str:
        peak = f"{self.peak_bytes / 1024**2:>8.0f}" if self.peak_bytes else f"{'-':>8}"
        note = ""
        if self.ran_after_change not in (None, 1):
            note = f"  WARNING: the change recomputed {self.ran_after_change} series"
        alone = f"{self.alone:>8.2f}" if self.alone is not None else f"{'-':>8}"
        return (f"  {self.layout:<30}{self.series:>7}{self.full:>9.1f}{self.full / self.series:>9.3f}"
                f"{self.own_total:>8.2f}{self.full - self.own_total:>9.1f}{statistics.median(self.noop):>8.2f}"
                f"{self.changed:>8.2f}{self.own_changed * 1000:>8.1f}{alone}{peak}{note}")


def peak_tree_rss(process: subprocess.Popen[str], stop: threading.Event, peak: list[int]) -> None:
    """Poll the summed RSS of `process` and its descendants until `stop`; the highest in `peak[0]`."""
    import psutil

    try:
        root = psutil.Process(process.pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        total = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for member in tree:
            try:
                total += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue  # a step process that just ended
        peak[0] = max(peak[0], total)
        stop.wait(MEMORY_POLL)


def run_measured(runner: Runner, command: Sequence[str | Path], cwd: Path,
                 ok: Sequence[int] = (0,)) -> tuple[float, int]:
    """Wall seconds and the peak summed RSS of the command's process tree."""
    args = [str(a) for a in command]
    peak, stop = [0], threading.Event()
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    watcher = threading.Thread(target=peak_tree_rss, args=(process, stop, peak), daemon=True)
    watcher.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if process.returncode not in ok:
        raise BenchError(f"`{' '.join(args[:4])}` in {cwd} exited {process.returncode}:\n{out[-2000:]}{err[-2000:]}")
    return seconds, peak[0]


def timed_run(runner: Runner, repo: Path, layout: str) -> float:
    if layout == "b":
        repro, _ = runner.timed([sys.executable, "-m", "dvc", "repro", "-q"], repo)
        push, _ = runner.timed([sys.executable, "-m", "dvc", "push", "-q"], repo)
        return repro + push
    seconds, _ = runner.timed([BIN / "modelops-ci", "run", "--all"], repo, ok=(0, EXIT_GATE_FAILED))
    return seconds


def records_newer_than(repo: Path, moment: float) -> int:
    """How many series' records (series.json, written last by each series that ran) are newer."""
    folder = repo / "reports" / FAMILY / "series"
    return sum(p.stat().st_mtime > moment for p in folder.glob("*/series.json"))


def measure_layout(runner: Runner, tmp: Path, layout: str, count: int) -> Timing:
    label = {"a": "(a) pipeline per series", "b": "(b) DVC foreach, one dvc.yaml",
             "batched": "batched family, run --all"}[layout]
    print(f"{label}: {count} series...", file=sys.stderr, flush=True)
    repo = make_repo(runner, tmp / f"{layout}-{count}", count, batch=layout == "batched")
    if layout == "b":
        to_dvc_foreach(repo, count)
        commit(runner, repo, "dvc foreach stages")
    peak = None
    if layout == "batched":
        full, peak = run_measured(runner, [BIN / "modelops-ci", "run", "--all"], repo, ok=(0, EXIT_GATE_FAILED))
    else:
        full = timed_run(runner, repo, layout)
    commit(runner, repo, "run")
    noop = [timed_run(runner, repo, layout) for _ in range(NOOP_RUNS)]
    changed_series = change_one_series(repo)
    commit(runner, repo, "one series changed")
    before = time.time()
    changed = timed_run(runner, repo, layout)
    ran = records_newer_than(repo, before) if layout == "batched" else None
    timing = Timing(label, count, full, noop, changed, changed_series, peak, ran)
    if layout == "batched":
        done = runner.run([sys.executable, Path(__file__).resolve(), "--own-work", repo], repo)
        timing.own = json.loads(done.stdout.strip().splitlines()[-1])
        timing.alone = series_alone(runner, repo, tmp / f"alone-{count}", changed_series)
    return timing


# -- the series' own work: `--own-work REPO` ------------------------------------------------------


def own_work(root: Path) -> dict[str, float]:
    """Seconds of each series' bare fit + rolling forecast + metrics (its frames prepared and split
    beforehand, in memory, one BLAS/OpenMP thread), after one untimed series for the imports."""
    from threadpoolctl import threadpool_limits

    from modelops_ci.steps import batch, evaluate, forecast, ingest, split, train

    family = batch.load(root, FAMILY)
    rows, _ = batch._rows_by_series(family)
    seconds: dict[str, float] = {}
    with threadpool_limits(1):
        for name in [family.series[0], *family.series]:
            ctx = family.context(name)
            frame, _ = ingest.prepare(ctx, rows[name])
            train_rows, test_rows = split.checked_split(ctx, frame)
            started = time.perf_counter()
            model, facts = forecast.fit(ctx, train_rows, train.estimator(ctx))
            evaluate.compute_metrics(ctx, evaluate.predict(ctx, model, facts, test_rows), facts)
            seconds[name] = time.perf_counter() - started
    return seconds


def series_alone(runner: Runner, repo: Path, scratch: Path, series: str) -> float:
    """Wall seconds of a process of its own that does one series' whole work, as a script written
    for that series would: start Python, import the libraries, read the panel, then prepare,
    split, fit, save, predict, score and gate the series (the stage's own functions); no keys, no
    other series, no MLflow, no DVC. Run in a copy of the repo's inputs (median of three)."""
    for folder in ("compiled", "data", "pipelines", "policies"):
        shutil.copytree(repo / folder, scratch / folder, dirs_exist_ok=True)
    command: list[str | Path] = [sys.executable, Path(__file__).resolve(), "--alone", scratch, series]
    return statistics.median(runner.timed(command, scratch)[0] for _ in range(3))


def run_alone(root: Path, series: str) -> None:
    """`--alone REPO SERIES`: the series' whole work in this process (see series_alone)."""
    from modelops_ci import numerics

    numerics.pin_portable_kernels()  # as the stage's process does, before NumPy loads
    from modelops_ci.steps import batch, ingest
    from modelops_ci.steps.series import run_series

    family = batch.load(root, FAMILY)
    panel = ingest.read(family.context(series))
    rows = panel[panel["series"] == series.removeprefix(f"{FAMILY}-")]
    record = run_series(root, FAMILY, series, family.series_params(series), rows, key="alone")
    if record.model_sha256 is None:
        raise BenchError(f"{series} alone did not train: {record.reason}")


# -- `--profile N`: where the family's stage spends its time --------------------------------------


def profile(tmp: Path, count: int) -> str:
    """cProfile of `modelops-ci step batch` on a compiled, committed repo of `count` series, its
    series run in the profiled process (MODELOPS_JOBS=1: cProfile does not see loky's workers)."""
    import pstats

    (tmp / "home").mkdir()
    runner = Runner({**bench_env(tmp / "home"), "MODELOPS_JOBS": "1"})
    repo = make_repo(runner, tmp / f"profile-{count}", count, batch=True)
    stats = tmp / "batch.prof"
    seconds, _ = runner.timed([sys.executable, "-m", "cProfile", "-o", stats, "-m", "modelops_ci",
                               "step", "batch", FAMILY], repo, ok=(0, EXIT_GATE_FAILED))
    out = [f"`modelops-ci step batch` on {count} series, MODELOPS_JOBS=1, under cProfile: {seconds:.1f} s wall",
           "", "-- where (cumulative seconds; the rows overlap: a row includes the rows it calls) --"]
    table = pstats.Stats(str(stats)).stats  # type: ignore[attr-defined]
    for label, (file, function) in WHERE.items():
        calls, seconds_in = 0, 0.0
        for (path, _line, name), (_cc, count_of, _tt, cumulative, _callers) in table.items():
            if path.endswith(file) and name == function:
                calls, seconds_in = calls + count_of, seconds_in + cumulative
        out.append(f"  {label:<56}{seconds_in:>8.1f} s{calls:>8} calls")
    for order in ("cumulative", "tottime"):
        buffer = _Lines()
        pstats.Stats(str(stats), stream=buffer).sort_stats(order).print_stats(PROFILE_LINES)
        out += [f"\n-- by {order} --", buffer.text()]
    return "\n".join(out)


class _Lines:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


# -- report and main ------------------------------------------------------------------------------


def report(timings: list[Timing]) -> str:
    lines = [f"{'':2}{'layout':<30}{'series':>7}{'full s':>9}{'s/ser':>9}{'own s':>8}{'full-own':>9}"
             f"{'no-op':>8}{'1 chg s':>8}{'own ms':>8}{'alone s':>8}{'peak MB':>8}"]
    lines += [t.row() for t in timings]
    lines += ["", "own s = the series' own work (bare fit + rolling forecast + metrics), summed over the series "
              "(measured on the batched repo); own ms = the changed series' own work; alone s = the changed series' "
              "whole work by a process of its own (Python's start, the imports, reading the panel, the series' "
              "steps and files); peak MB = summed RSS of `modelops-ci run`'s process tree during the first run "
              "(batched only)"]
    return "\n".join(lines + targets(timings))


def targets(timings: list[Timing]) -> list[str]:
    """The issue's targets, met or not, for the batched runs at the sizes they name."""
    batched = {t.series: t for t in timings if t.layout.startswith("batched")}
    lines = []
    at = batched.get(TARGET_AT)
    if at:
        lines += [_target(f"first run at {TARGET_AT}: full - own <= {FULL_BEYOND_OWN:.0f} s", at.full - at.own_total,
                          FULL_BEYOND_OWN),
                  _target(f"one series changed at {TARGET_AT}: 1 chg - its own <= {CHANGED_BEYOND_OWN:.0f} s",
                          at.changed - at.own_changed, CHANGED_BEYOND_OWN)]
        if at.alone is not None:
            lines.append(_target(f"one series changed at {TARGET_AT}: 1 chg - that series alone <= "
                                 f"{CHANGED_BEYOND_OWN:.0f} s", at.changed - at.alone, CHANGED_BEYOND_OWN))
        lines.append(_target(f"no-op at {TARGET_AT} <= {NOOP_MAX:.0f} s", statistics.median(at.noop), NOOP_MAX))
    big = batched.get(MEMORY_AT)
    if big and big.peak_bytes:
        lines.append(_target(f"peak memory at {MEMORY_AT} <= {MEMORY_MAX / 1024**3:.0f} GB (GB)",
                             big.peak_bytes / 1024**3, MEMORY_MAX / 1024**3))
    if len(batched) > 1:
        per = ", ".join(f"{n}: {(t.full - t.own_total) / n * 1000:.0f}" for n, t in sorted(batched.items()))
        lines.append(f"linear? first run's overhead (full - own) per series, ms: {per}")
    return ["", "targets (issue 12; reported, never enforced):", *lines] if lines else []


def _target(what: str, value: float, limit: float) -> str:
    verdict = "met" if value <= limit else "NOT met"
    return f"  {what}: {value:.2f} -> {verdict}"


def measure(tmp: Path, per_pipeline: Sequence[int], batched: Sequence[int], layouts: str) -> list[Timing]:
    home = tmp / "home"
    home.mkdir()
    runner = Runner(bench_env(home))
    plan: list[Callable[[], Timing]] = []
    for count in per_pipeline:
        plan += [functools.partial(measure_layout, runner, tmp, layout, count)
                 for layout in "ab" if layout in layouts]
    plan += [functools.partial(measure_layout, runner, tmp, "batched", count) for count in batched]
    timings = [step() for step in plan]
    own = {t.series: t.own for t in timings if t.own}
    for timing in timings:  # (a) and (b) fit the same panel: the batched repo's own work is theirs
        timing.own = timing.own or own.get(timing.series, {})
    return timings


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=list(BATCH_SIZES),
                        help="series counts for the batched family (default 10,100,300,1000)")
    parser.add_argument("--per-pipeline-sizes", type=sizes, default=list(PER_PIPELINE_SIZES),
                        help="series counts for layouts (a) and (b) (default 10,100; ~17 min at 100)")
    parser.add_argument("--no-per-pipeline", action="store_true", help="skip layout (a): the batched family only")
    parser.add_argument("--layouts", default="a", help="per-pipeline layouts to run beside it: a, b or ab (default a)")
    parser.add_argument("--profile", type=int, metavar="N", help="only profile `step batch` on N series")
    parser.add_argument("--keep", action="store_true", help="keep the temp repos and print where")
    parser.add_argument("--own-work", type=Path, metavar="REPO", help=argparse.SUPPRESS)
    parser.add_argument("--alone", nargs=2, metavar=("REPO", "SERIES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.alone:
        run_alone(Path(args.alone[0]).resolve(), args.alone[1])
        return 0
    if args.own_work:
        from modelops_ci import numerics

        numerics.pin_portable_kernels()  # as the stage's process does, before NumPy loads
        print(json.dumps(own_work(args.own_work.resolve())))
        return 0
    if args.profile:
        return in_scratch("modelops-bench-many-", args.keep, lambda tmp: profile(tmp, args.profile))
    layouts = "" if args.no_per_pipeline else args.layouts
    return in_scratch("modelops-bench-many-", args.keep,
                      lambda tmp: timed_report(tmp, args.per_pipeline_sizes, args.sizes, layouts))


def timed_report(tmp: Path, per_pipeline: Sequence[int], batched: Sequence[int], layouts: str) -> str:
    started = time.perf_counter()
    timings = measure(tmp, per_pipeline, batched, layouts)
    return (f"{MONTHS} months per series; Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s); "
            f"bench wall time {time.perf_counter() - started:.0f} s\n\n{report(timings)}")


if __name__ == "__main__":
    sys.exit(main())
