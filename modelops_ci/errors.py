"""One error hierarchy; each error knows its exit code (see the README's table)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # no space / quota used up
# Where the error handler also writes the message it prints: `run` sets it for each stage's step, so
# that a run which keeps going past a failed stage can repeat what the step said at the end.
ERROR_FILE_ENV = "MODELOPS_ERROR_FILE"
CHAIN_LIMIT = 10  # how far cause_in follows an exception's causes


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in one file, printed as `path:line:col: yaml.path: message (hint)`."""

    path: str
    line: int
    col: int
    yaml_path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}"
        what = f"{self.yaml_path}: {self.message}" if self.yaml_path else self.message
        return f"{where}: {what}" + (f" ({self.hint})" if self.hint else "")


class ModelopsError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = EXIT_INTERNAL
    crash_log = True  # an internal error also writes its traceback to a log (cli/main.py)

    def render(self) -> str:
        return str(self)


class UserError(ModelopsError):
    """The user's input or invocation is wrong; the message says how to fix it."""

    exit_code = EXIT_USER_ERROR


class SpecError(UserError):
    """One or more problems in spec or policy files."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(
        cls, path: str, message: str, hint: str = "", *, line: int = 1, col: int = 1,
        yaml_path: str = "",
    ) -> SpecError:
        return cls([Problem(path, line, col, yaml_path, message, hint)])


class MissingDependencyError(UserError):
    """An optional dependency (the `ml` extra) is needed but not installed."""


class CheckFailed(ModelopsError):
    """A check ran and said no (stale compiled output, failed gate, refused verification)."""

    exit_code = EXIT_GATE_FAILED


class StagesFailed(ModelopsError):
    """Stages failed in a run that kept going: the exit code is the most serious of theirs (3 a bug,
    2 the user's input, 1 a check), and each step already said what went wrong (and logged a bug)."""

    crash_log = False

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DiskFullError(UserError):
    """A write failed because its filesystem is full or the user's disk quota is used up."""

    def __init__(self, path: object) -> None:
        self.path = str(path or "a file being written")
        super().__init__(f"{self.path}: no space left on the device (or the disk quota is used up): "
                         "free space on that filesystem (`df -h` shows how full it is), then run again")


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` is an OSError saying the disk is full (ENOSPC) or the quota is used up (EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def disk_full_in(exc: BaseException) -> OSError | None:
    """The disk-full OSError that `exc` is or was caused by (DVC wraps what it hit), if any."""
    found = cause_in(exc, is_disk_full)
    return found if isinstance(found, OSError) else None


def cause_in(exc: BaseException, wanted: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception `wanted` accepts in `exc`'s chain: `exc`, then what caused it or was
    being handled when it was raised (libraries wrap what they hit: DVC a full disk, botocore a
    refused connection)."""
    seen: BaseException | None = exc
    for _ in range(CHAIN_LIMIT):
        if seen is None or wanted(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
