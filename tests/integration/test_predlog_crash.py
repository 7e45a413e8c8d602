"""A writer SIGKILLed under load loses no record it acknowledged, and its log opens cleanly.

The child appends from several threads as fast as it can and prints a request id only once its
record's commit returned, as the server answers only then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from modelops_ci.serve.predlog import PredictionLog, read
from tests.helpers.paths import PROJECT

THREADS = 8
ACKS = 3000  # acknowledgements to see before the kill
KILL_AFTER = 60.0  # seconds; only a broken writer takes this long (it acknowledges ~1,000/s on a slow disk)
WRITER = """
import json, sys, threading
from pathlib import Path
from modelops_ci.serve.predlog import PredictionLog
from modelops_ci.serve.records import Record

log = PredictionLog.open(Path(sys.argv[1]))
printing = threading.Lock()
features = json.dumps([{f"x{column}": column * 0.5 for column in range(12)}])

def append(thread):
    number = 0
    while True:
        request_id = f"{thread}-{number}"
        record = Record(request_id, "credit", "1", "champion", True, 1.0 + number, 1.0, 200, None, features,
                        "[0]", "[0.5]")
        log.append([record]).result()
        with printing:  # one write per line: a pipe write this small is never split
            sys.stdout.write(request_id + "\\n")
            sys.stdout.flush()
        number += 1

for thread in range(int(sys.argv[2])):
    threading.Thread(target=append, args=(thread,), daemon=True).start()
threading.Event().wait()
"""


def _acknowledged(child: subprocess.Popen[str], count: int) -> list[str]:
    assert child.stdout is not None
    seen: list[str] = []
    while len(seen) < count:
        line = child.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip("\n"))
    return seen


def test_a_killed_writer_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "predictions.db"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(THREADS)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT)
    guard = threading.Timer(KILL_AFTER, child.kill)  # a hung child must not hang the test
    guard.start()
    try:
        acknowledged = _acknowledged(child, ACKS)
    finally:
        guard.cancel()
        child.send_signal(signal.SIGKILL)
    rest, errors = child.communicate()
    assert len(acknowledged) == ACKS, errors
    assert child.returncode == -signal.SIGKILL
    printed, _, _ = rest.rpartition("\n")  # what it printed before the kill was acknowledged too
    acknowledged += printed.split("\n") if printed else []
    with PredictionLog.open(path):  # the crashed log passes the checks the server runs at start
        pass
    logged = set(read(path)["request_id"])
    lost = sorted(set(acknowledged) - logged)
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged records lost"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
