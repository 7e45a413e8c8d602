"""The unit tier's guard itself: a process or a connection started from a unit test fails it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("start", [
    lambda: subprocess.run(["git", "--version"], check=False),
    lambda: subprocess.Popen([sys.executable, "-c", "pass"]),
    lambda: os.system("true"),
    lambda: os.posix_spawn("/bin/true", ["true"], {}),
    lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
], ids=["subprocess.run", "Popen", "os.system", "posix_spawn", "connect"])
def test_starting_a_process_or_a_connection_fails_the_test_and_says_where_it_belongs(
        start: Callable[[], Any]) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"move a test that runs git.*to tests/integration"):
        start()
