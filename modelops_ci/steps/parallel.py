"""Where a batched family's series run: in this process, on this machine's cores (joblib's loky
workers), or on a Dask cluster (joblib's Dask backend) when MODELOPS_DASK_SCHEDULER names one.

Every worker fits with one BLAS/OpenMP thread, so a series' model is the same bytes whichever
worker, and however many, fitted it.

On Dask, each worker writes its series' files itself, under the repository's absolute path: every
worker must see the repository at that same path (one machine, or a shared filesystem such as NFS).
Only the series' records travel back; this process then writes the family's verdict and logs to
MLflow. The workers need the same modelops-ci and libraries, and NumPy's portable kernels
(numerics.py), which a worker started by `dask worker` does not choose by itself: a worker without
them is refused, since its models would differ in their last bits from a rerun anywhere else.
The scheduler is named by the environment only, never by a spec: where to compute is the runner's
choice, not the model's (the bytes are the same either way), and a scheduler's results are
unpickled in this process, so a branch must not be able to point the CI job at a host of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_ci.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from modelops_ci.steps.series import SeriesRecord

JOBS_ENV = "MODELOPS_JOBS"  # how many workers (default: one per core)
DASK_ENV = "MODELOPS_DASK_SCHEDULER"  # tcp://host:port of a Dask scheduler: run the series there
# Seconds to reach the scheduler, and for it to have a worker (distributed's default is 30 s).
CONNECT_TIMEOUT = 5
# Below this many series, starting workers (each imports pandas and scikit-learn, ~1.5 s) costs
# more than it saves on 2 cores (bench_many.py: joblib pays from ~100 series).
PARALLEL_FROM = 64

Call = tuple[str, dict[str, Any], "pd.DataFrame", str]  # series, params, rows, key


def map_series(root: Path, family: str, calls: Sequence[Call]) -> Iterator[SeriesRecord]:
    """Run each series; the records come back in the order of `calls`, each as soon as it (and
    those before it) are done, so the caller can log them while the workers go on."""
    from modelops_ci.steps.series import run_series

    if not calls:
        return  # nothing to run: no workers to start, no scheduler to reach
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
        import dask.distributed  # noqa: F401
    except ImportError:
        raise UserError(f"{DASK_ENV} is set, but Dask is not installed: pip install 'modelops-ci[dask]'") from None
    from joblib import Parallel, parallel_config

    with _connected(scheduler) as client, parallel_config(backend="dask", client=client):
        _check_workers(scheduler, client)
        records: list[SeriesRecord] = Parallel()(tasks)
    return records


def _connected(scheduler: str) -> Any:
    """A client of `scheduler` that has at least one worker, or a UserError within CONNECT_TIMEOUT."""
    from dask.distributed import Client

    where = f"{DASK_ENV}={scheduler!r}"
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")  # type: ignore[no-untyped-call]
    except ValueError as exc:  # no port, unknown scheme
        raise UserError(f"{where}: not a scheduler address ({exc}): set it to tcp://HOST:PORT, or unset it") from None
    except OSError:
        raise UserError(f"{where}: no Dask scheduler answered within {CONNECT_TIMEOUT} s: start one there "
                        f"(`dask scheduler`), or unset {DASK_ENV} to run on this machine") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        client.close()  # type: ignore[no-untyped-call]
        raise UserError(f"{where}: the scheduler has no worker after {CONNECT_TIMEOUT} s: start workers "
                        f"(`dask worker {scheduler}`), or unset {DASK_ENV}") from None
    return client


def _check_workers(scheduler: str, client: Any) -> None:
    """Refuse workers that would fit with other kernels than this process (see the module's docstring)."""
    unpinned = {worker: missing for worker, missing in client.run(_worker_unpinned).items() if missing}
    if unpinned:
        worker, missing = sorted(unpinned.items())[0]
        settings = " ".join(f"{name}='{value}'" for name, value in sorted(missing.items()))
        raise UserError(f"{DASK_ENV}={scheduler!r}: {len(unpinned)} worker(s), e.g. {worker}, run without "
                        f"NumPy's portable kernels, so their models would not be the bytes a rerun gives: "
                        f"start the workers with `env {settings} dask worker ...`")


def _worker_unpinned() -> dict[str, str]:
    """On a worker: the portable-kernel settings its CPU needs and its environment lacks."""
    import platform

    from modelops_ci import numerics

    return unpinned(os.environ, platform.machine(), numerics.cpu_flags())


def unpinned(environ: Mapping[str, str], machine: str, cpu_flags: frozenset[str]) -> dict[str, str]:
    """What numerics.pin_portable_kernels would set for this CPU and `environ` has not (a value set
    by hand counts as chosen)."""
    from modelops_ci import numerics

    wanted = numerics.portable_kernels(machine, cpu_flags)
    return {name: value for name, value in wanted.items() if name not in environ}
