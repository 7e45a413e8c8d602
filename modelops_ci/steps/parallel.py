"""Where a batched family's series run: in this process, on this machine's cores (joblib's loky
workers), or on a Dask cluster (joblib's Dask backend) when MODELOPS_DASK_SCHEDULER names one.

Every worker fits with one BLAS/OpenMP thread, so a series' model is the same bytes whichever
worker, and however many, fitted it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.steps.series import SeriesRecord

JOBS_ENV = "MODELOPS_JOBS"  # how many workers (default: one per core)
DASK_ENV = "MODELOPS_DASK_SCHEDULER"  # tcp://host:port of a Dask scheduler: run the series there
# Below this many series, starting workers (each imports pandas and scikit-learn, ~1.5 s) costs
# more than it saves on 2 cores (bench_many.py: joblib pays from ~100 series).
PARALLEL_FROM = 64

Call = tuple[str, dict[str, Any], "pd.DataFrame", str]  # series, params, rows, key


def map_series(root: Path, family: str, calls: Sequence[Call]) -> Iterator[SeriesRecord]:
    """Run each series; the records come back in the order of `calls`, each as soon as it (and
    those before it) are done, so the caller can log them while the workers go on."""
    from modelops_ci.steps.series import run_series

    scheduler = os.environ.get(DASK_ENV, "").strip()
    jobs = jobs_wanted()
    if not scheduler and (jobs == 1 or len(calls) < PARALLEL_FROM):
        yield from (run_series(root, family, *call) for call in calls)
        return
    from joblib import Parallel, delayed, parallel_config

    tasks = (delayed(run_series)(root, family, *call) for call in calls)
    if scheduler:
        yield from _on_dask(scheduler, tasks)
        return
    with parallel_config(backend="loky", n_jobs=jobs, inner_max_num_threads=1):
        yield from Parallel(return_as="generator")(tasks)


def jobs_wanted() -> int:
    text = os.environ.get(JOBS_ENV, "").strip()
    if not text:
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{JOBS_ENV}={text!r}: not a number of workers: set it to 1 or more, or unset it")
    return int(text)


def _on_dask(scheduler: str, tasks: Any) -> list[SeriesRecord]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise UserError(f"{DASK_ENV} is set, but Dask is not installed: pip install 'modelops-ci[dask]'") from None
    from joblib import Parallel, parallel_config

    with Client(scheduler, timeout="30s") as client, parallel_config(backend="dask", client=client):  # type: ignore[no-untyped-call]
        records: list[SeriesRecord] = Parallel()(tasks)
    return records
