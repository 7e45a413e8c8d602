"""The unit tier's guard: a test here that starts a process or opens a connection fails at once.

Unit tests call pure functions and the CLI in-process. Whatever runs git, DVC, a hook, a shell step
or talks to the fake GitHub belongs in tests/integration; the guard says so the moment it happens.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

WHERE = ("tests/unit holds pure functions and in-process calls only: move a test that runs git, DVC, "
         "a hook or any other process, or talks over a socket, to tests/integration")


def _refused(what: str) -> Callable[..., NoReturn]:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        pytest.fail(f"{what} in a unit test; {WHERE}")  # an Exception handler in the code under test cannot swallow it

    return refuse


@pytest.fixture(scope="session", autouse=True)
def _library_probes() -> None:
    """Two libraries probe the machine by running a command, once per process, and keep the answer:
    matplotlib lists the fonts (fc-list) when it first loads, joblib counts the physical cores (lscpu)
    when scikit-learn first asks. Let them do it here, before any test's guard is up."""
    import matplotlib.font_manager  # noqa: F401
    from joblib import cpu_count

    cpu_count(only_physical_cores=True)


@pytest.fixture(autouse=True)
def _no_processes_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refused("a subprocess"))
    monkeypatch.setattr(_posixsubprocess, "fork_exec", _refused("a subprocess"))  # multiprocessing's spawn
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        monkeypatch.setattr(os, name, _refused(f"os.{name}"))
    monkeypatch.setattr(socket.socket, "connect", _refused("a network connection"))
