"""The same commit gives the same bits on any recent x86-64 CPU, not only on the machine that ran it.

NumPy and OpenBLAS choose their kernels for the CPU they start on. On an AVX-512 machine, `np.exp`,
`np.log`, `np.log1p` and `np.power` and OpenBLAS's matrix products round the last bits differently
than on an AVX2 machine. The example's Ridge forecasters, trained on an AVX2 runner and re-trained on
an AVX-512 one, gave other model bytes and metrics. So before NumPy loads, every modelops-ci process
chooses the AVX2 kernels that every x86-64 server and laptop of the last decade has. Both libraries read
these variables once, when they load. A value the user set wins, and a process that has already loaded
NumPy is left as it is (it is too late to change it).

On other CPUs (arm64) nothing is set. Their kernels give bits of their own, which the same machine
reproduces.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

# NumPy >= 2.4's names for its AVX-512 kernels. AVX-512 is never part of NumPy's baseline, so NumPy
# does not refuse these names. It only warns about a name it does not dispatch, so a CPU without
# AVX-512 is not given them.
NUMPY_AVX512_TARGETS = "X86_V4 AVX512_ICL AVX512_SPR"
OPENBLAS_AVX2_CORE = "Haswell"  # OpenBLAS's AVX2+FMA kernels (Zen uses the same ones)


def portable_kernels(machine: str, cpu_flags: frozenset[str]) -> dict[str, str]:
    """The environment that selects the AVX2 kernels on this CPU (empty where there is nothing to pin)."""
    if machine.lower() not in {"x86_64", "amd64"}:
        return {}
    settings: dict[str, str] = {}
    if "avx512f" in cpu_flags:
        settings["NPY_DISABLE_CPU_FEATURES"] = NUMPY_AVX512_TARGETS
    if {"avx2", "fma"} <= cpu_flags:  # forcing the Haswell core on a CPU without them would crash
        settings["OPENBLAS_CORETYPE"] = OPENBLAS_AVX2_CORE
    return settings


def pin_portable_kernels(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the portable kernel choice in `environ` (this process and its children); returns what was set."""
    if "numpy" in sys.modules:
        return {}
    wanted = portable_kernels(platform.machine(), cpu_flags())
    applied = {name: value for name, value in wanted.items() if name not in environ}
    environ.update(applied)
    return applied


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere (then nothing is pinned)."""
    try:
        with cpuinfo.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


_threads_lock = threading.Lock()
_threads: Any = None
_threads_seen_at = -1
_this_thread = threading.local()  # the controller whose limit this thread has set


def one_thread() -> None:
    """One BLAS/OpenMP thread for this thread's numeric work from now on (threadpoolctl): the same
    bytes whichever worker fits, and one core per serving worker. Its callers (a series worker's
    fits, a server's scoring threads) do nothing else, so the limit is set once and never restored
    (~50 µs a model call saved). Finding the libraries takes ~5-40 ms, so it is done again, and the
    limit set again, only when modules were imported since (a new estimator or model may bring a
    new thread pool)."""
    global _threads, _threads_seen_at
    from threadpoolctl import ThreadpoolController

    with _threads_lock:
        if len(sys.modules) != _threads_seen_at:
            _threads = ThreadpoolController()
            _threads_seen_at = len(sys.modules)
        controller = _threads
    if getattr(_this_thread, "controller", None) is not controller:
        controller.limit(limits=1)  # OpenMP's count is this thread's; OpenBLAS's, the process's
        _this_thread.controller = controller
