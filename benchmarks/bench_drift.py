"""Benchmark the drift gate on 1,000,000 rows x 50 columns, from raw data and from a stored profile,
side by side with Evidently's DataDriftPreset on the same data.

Run with the project's venv: `.venv/bin/python benchmarks/bench_drift.py [--rows N] [--repeat N] [--keep]`.

Evidently does not import with pandas 3, so it runs in its own venv (created on first use with
`python3 -m venv` and `pip install evidently 'pandas<3' pyarrow`, by default in
/tmp/evidently-venv). Both sides read the same parquet files, written once; each measurement runs in
a fresh subprocess and times only the drift computation, not reading the files.
Targets (reported, never enforced): peak memory during the gate <= 2x the two frames' size; with a
precomputed profile <= 2 s; >= 20x faster than Evidently.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NUMERIC, CATEGORICAL = 40, 10
SEED = 2024
MEMORY_TARGET = 2.0
PROFILE_TARGET = 2.0
EVIDENTLY_TARGET = 20.0
EVIDENTLY_VENV = Path("/tmp/evidently-venv")
SETTINGS = {"alpha": 0.05, "correction": "fdr_bh", "max_drifted_share": 0.3}


# -- data -----------------------------------------------------------------------------------------


def columns() -> tuple[list[str], list[str]]:
    return [f"num_{i:02d}" for i in range(NUMERIC)], [f"cat_{j}" for j in range(CATEGORICAL)]


def write_frames(folder: Path, rows: int) -> None:
    """reference.parquet and current.parquet: the current one drifts a little in 4 numeric columns
    (0.02-0.05 SD) and in one categorical column; a few NaN in two columns."""
    import numpy as np
    import pandas as pd

    for name, seed, drifts in (("reference", SEED, False), ("current", SEED + 1, True)):
        rng = np.random.default_rng(seed)
        data: dict[str, Any] = {}
        for i, column in enumerate(columns()[0]):
            shift = 0.02 * (1 + i % 3) if drifts and i < 4 else 0.0
            kind = i % 4
            if kind == 0:
                values = rng.normal(shift, 1.0, rows)
            elif kind == 1:
                values = rng.lognormal(shift, 1.0, rows)
            elif kind == 2:
                values = rng.poisson(5 + 5 * shift, rows).astype(float)  # many ties
            else:
                values = rng.uniform(shift, 1 + shift, rows)
            if i in (5, 6):
                values[rng.random(rows) < 0.01] = np.nan
            data[column] = values
        for j, column in enumerate(columns()[1]):
            k = 3 + 5 * j
            p = np.full(k, 1 / k)
            if drifts and j == 0:
                p[-1] *= 1.1
                p /= p.sum()
            labels = np.array([f"v{x:02d}" for x in range(k)])
            data[column] = labels[rng.choice(k, rows, p=p)]
        pd.DataFrame(data).to_parquet(folder / f"{name}.parquet", index=False)


# -- workers (run in fresh subprocesses) -----------------------------------------------------------


def _reset_peak() -> int:
    """Reset the process's peak RSS (Linux: clear_refs 5) and return the current RSS in bytes.

    Reading parquet leaves freed buffers cached in pyarrow's allocator (about 0.8x the frames
    here); they are returned to the system first, so the baseline is the libraries plus the frames.
    """
    import gc
    import importlib

    gc.collect()
    importlib.import_module("pyarrow").default_memory_pool().release_unused()  # untyped module
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(key)


def worker_raw(folder: Path) -> dict[str, Any]:
    import pandas as pd
    import scipy.stats  # noqa: F401  (imports are not what is measured)
    import sklearn.ensemble  # noqa: F401

    from modelops_ci.gates import drift, profile
    from modelops_ci.gates.drift.multivariate import CLASSIFIER_ROWS
    from modelops_ci.gates.drift.univariate import RAW_GRID

    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / "current.parquet")
    frames = int(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum())
    numeric, categorical = columns()
    baseline = _reset_peak()
    start = time.perf_counter()
    built = profile.build(reference, numeric, categorical, grid=RAW_GRID, sample_rows=CLASSIFIER_ROWS)
    result = drift.assess(built, current, SETTINGS)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak": _status("VmHWM"), "baseline": baseline, "frames": frames,
            **_summary(result.to_json())}


def worker_build(folder: Path) -> dict[str, Any]:
    import pandas as pd

    from modelops_ci.gates import profile

    reference = pd.read_parquet(folder / "reference.parquet")
    start = time.perf_counter()
    profile.save(profile.build(reference, *columns()), folder / "reference.npz")
    return {"seconds": time.perf_counter() - start, "bytes": (folder / "reference.npz").stat().st_size}


def worker_profile(folder: Path) -> dict[str, Any]:
    import pandas as pd
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    from modelops_ci.gates import drift, profile

    current = pd.read_parquet(folder / "current.parquet")
    start = time.perf_counter()
    result = drift.assess(profile.load(folder / "reference.npz"), current, SETTINGS)
    return {"seconds": time.perf_counter() - start, **_summary(result.to_json())}


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    checks = {c["name"]: c for c in result["checks"]}
    return {"status": result["status"], "reason": result["reason"], "drifted": result["details"]["drifted"],
            "auc": checks.get("multivariate", {}).get("statistic")}


EVIDENTLY_WORKER = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
folder, numeric, categorical = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
reference = pd.read_parquet(folder + "/reference.parquet")
current = pd.read_parquet(folder + "/current.parquet")
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
start = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                           Dataset.from_pandas(reference, data_definition=definition))
seconds = time.perf_counter() - start
count = snapshot.dict()["metrics"][0]["value"]
print(json.dumps({"seconds": seconds, "drifted": count["count"], "share": count["share"]}))
"""


def run_worker(kind: str, folder: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--dir", str(folder)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def evidently(folder: Path, venv: Path) -> dict[str, Any] | str:
    """Evidently's time on the same files, or why it could not run."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with evidently and pandas<3 (once) ...", flush=True)
        made = subprocess.run(["python3", "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
        installed = made.returncode == 0 and subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently", "pandas<3", "pyarrow"],
            capture_output=True, text=True, check=False).returncode == 0
        if not installed:
            return "could not create the venv or install evidently from PyPI"
    numeric, categorical = columns()
    out = subprocess.run([str(python), "-c", EVIDENTLY_WORKER, str(folder), json.dumps(numeric),
                          json.dumps(categorical)], capture_output=True, text=True, check=False)
    if out.returncode:
        return f"Evidently failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each of our measurements")
    parser.add_argument("--keep", action="store_true", help="keep the parquet files and the profile")
    parser.add_argument("--evidently-venv", type=Path, default=EVIDENTLY_VENV)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        workers = {"raw": worker_raw, "build": worker_build, "profile": worker_profile}
        print(json.dumps(workers[args.worker](args.dir)))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="modelops-bench-drift-"))
    try:
        report(folder, args)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def report(folder: Path, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    write_frames(folder, args.rows)
    print(f"{args.rows:,} rows x {NUMERIC + CATEGORICAL} columns ({NUMERIC} numeric, {CATEGORICAL} categorical), "
          f"two frames written in {time.perf_counter() - start:.1f} s")
    raw = [run_worker("raw", folder) for _ in range(args.repeat)]
    built = run_worker("build", folder)
    kept = [run_worker("profile", folder) for _ in range(args.repeat)]
    first = raw[0]
    frames, peak = first["frames"], max(r["peak"] for r in raw)
    print(f"\nverdict (raw): {first['status']}: {first['reason']}")
    print(f"drifted features: {', '.join(first['drifted']) or 'none'}; classifier AUC {first['auc']:.3f}")
    print(f"verdict (profile): {kept[0]['status']}: drifted {', '.join(kept[0]['drifted']) or 'none'}; "
          f"classifier AUC {kept[0]['auc']:.3f}\n")
    raw_median = statistics.median(r["seconds"] for r in raw)
    kept_median = statistics.median(r["seconds"] for r in kept)
    rows = [
        ("drift gate, raw reference", raw_median, min(r["seconds"] for r in raw)),
        ("profile build + save (once)", built["seconds"], built["seconds"]),
        ("drift gate, stored profile", kept_median, min(r["seconds"] for r in kept)),
    ]
    other = None if args.no_evidently else evidently(folder, args.evidently_venv)
    if isinstance(other, dict):
        rows.append(("Evidently DataDriftPreset", other["seconds"], other["seconds"]))
    print(f"{'':32s} {'median s':>9s} {'min s':>8s}")
    for label, median, low in rows:
        print(f"{label:32s} {median:9.2f} {low:8.2f}")
    memory = peak / frames
    print(f"\nframes in memory: {frames / 1e6:,.0f} MB; peak RSS during the raw gate {peak / 1e6:,.0f} MB "
          f"= {memory:.2f}x the frames (the process before the gate: {first['baseline'] / 1e6:,.0f} MB; "
          f"the gate added {(peak - first['baseline']) / 1e6:,.0f} MB)  target <= {MEMORY_TARGET:g}x: "
          f"{'met' if memory <= MEMORY_TARGET else 'MISSED'}")
    print(f"profile file: {built['bytes'] / 1e6:.2f} MB; gate with the profile {kept_median:.2f} s  "
          f"target <= {PROFILE_TARGET:g} s: {'met' if kept_median <= PROFILE_TARGET else 'MISSED'}")
    if isinstance(other, dict):
        ratio = other["seconds"] / raw_median
        print(f"Evidently: {other['seconds']:.1f} s, {other['drifted']:.0f} drifted columns (share "
              f"{other['share']:.2f}); raw gate {ratio:.0f}x faster, profile gate "
              f"{other['seconds'] / kept_median:.0f}x  target >= {EVIDENTLY_TARGET:g}x: "
              f"{'met' if ratio >= EVIDENTLY_TARGET else 'MISSED'}")
    elif other is not None:
        print(f"Evidently: not measured: {other}")


if __name__ == "__main__":
    sys.exit(main())
