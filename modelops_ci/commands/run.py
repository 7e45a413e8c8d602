"""`modelops-ci run`: reproduce the compiled pipelines with DVC, stage by stage, and say what ran.

DVC decides what is stale and runs it (its cache makes a second run of an unchanged commit a
no-op); this module only picks the targets, times each stage, and pushes to the remote.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelops_ci.errors import (
    ERROR_FILE_ENV,
    EXIT_GATE_FAILED,
    EXIT_INTERNAL,
    EXIT_USER_ERROR,
    CheckFailed,
    DiskFullError,
    ModelopsError,
    StagesFailed,
    UserError,
    cause_in,
    disk_full_in,
    is_disk_full,
)
from modelops_ci.executor.outcome import RunReport, StageFailure, StageRun
from modelops_ci.fsutil import remove_leftover_temps
from modelops_ci.layout import COMPILED_DIR, Layout
from modelops_ci.offline import apply as stay_offline

if TYPE_CHECKING:
    from modelops_ci.gates.verdict import Verdict
    from modelops_ci.ml.background import LoggingService

TRANSFER_LOGGERS = ("dvc", "dvc_data", "dvc_objects")  # where DVC's libraries log a failed upload
# A pipeline runs up to its gates, or evaluate if it has none; a batched family has one stage.
LAST_STAGES = ("gates", "evaluate", "batch")
PUSH_AGAIN = "the stages ran, so `modelops-ci run` again only pushes"
MAX_SKIPPED_SHOWN = 20  # a failed ingest of one series skips its 7 later stages: name a few, count the rest


def targets(root: Path, pipelines: Iterable[str], run_all: bool, upto: str | None = None) -> list[str]:
    """DVC targets for the named pipelines (or all compiled ones)."""
    compiled = sorted(p.parent.name for p in (root / COMPILED_DIR).glob("*/dvc.yaml"))
    names = list(pipelines) or (compiled if run_all else [])
    if not names:
        raise UserError("name the pipeline(s) to run, or pass --all")
    unknown = [n for n in names if n not in compiled]
    if unknown:
        raise UserError(f"no compiled pipeline {', '.join(unknown)}: run `modelops-ci compile` "
                        f"(compiled: {', '.join(compiled) or 'none'})")
    if upto:
        return [f"{Layout(n).stages}:{upto}" for n in names]
    for name in names:
        _require_contract(root, name)
    chosen = [f"{Layout(n).stages}:{_last_stage(root, n)}" for n in names]
    if run_all and _has_summary(root):
        chosen.append("dvc.yaml:summary")
    return chosen


def _compiled_params(root: Path, name: str) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = yaml.safe_load((root / Layout(name).params).read_text(encoding="utf-8")) or {}
    return params


def gated_metrics(root: Path, name: str) -> tuple[str, ...]:
    """The metrics the gates of a compiled pipeline judge (performance and compare), sorted."""
    from modelops_ci.transform.policies import gate_metrics

    gates = _compiled_params(root, name).get("gates") or {}
    return tuple(sorted(gate_metrics(gates, "performance") | gate_metrics(gates, "compare")))


def _require_contract(root: Path, name: str) -> None:
    """A required data contract must exist before DVC runs (DVC would refuse a missing input)."""
    gate = (_compiled_params(root, name).get("gates") or {}).get("data_contract")
    if gate is None:
        return
    contract = str(gate.get("contract") or Layout(name).contract)
    if not (root / contract).is_file():
        raise UserError(f"{contract}: not found: the policy requires a data contract for {name}; "
                        f"create it with `modelops-ci contract infer {name}`, review it, and commit it")


def is_family(root: Path, name: str) -> bool:
    """A batched family: one `batch` stage for all its series."""
    return _last_stage(root, name) == "batch"


def _last_stage(root: Path, name: str) -> str:
    text = (root / Layout(name).stages).read_text(encoding="utf-8")
    return next(stage for stage in LAST_STAGES if f"\n  {stage}:\n" in text)


def _has_summary(root: Path) -> bool:
    top = root / "dvc.yaml"
    return top.is_file() and "\n  summary:\n" in top.read_text(encoding="utf-8")


def run(root: Path, pipelines: Iterable[str] = (), *, run_all: bool = False, force: bool = False,
        verbose: bool = False, upto: str | None = None, keep_going: bool = False,
        on_stage: Callable[[StageRun, int, int], None] | None = None) -> RunReport:
    """Reproduce the targets (up to stage `upto` if given). `on_stage` hears about each stage as it
    finishes, with how many have finished and how many the run plans. With `keep_going`, a failed
    stage skips only the stages that need its outputs: every other stage runs, and the report lists
    each failure (the caller decides the exit code, `enforce`); without it the first failure raises."""
    root = root.resolve()
    chosen = targets(root, pipelines, run_all, upto)
    stay_offline()
    _put_tool_on_path()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.repo import reproduce as dvc_reproduce
    from dvc.repo.reproduce import _reproduce_stage  # the default repro_fn; we wrap it to time stages

    from modelops_ci.executor.family import BATCH_STAGE

    if not verbose:  # our own per-stage lines and table replace DVC's chatter
        logging.getLogger("dvc").setLevel(logging.WARNING)
    if keep_going and not verbose:  # each failure and what it skipped is reported once, at the end
        dvc_reproduce.logger.setLevel(logging.ERROR)

    report = RunReport()
    planned: list[Any] = []

    forgotten: set[str] = set()
    removed: set[Path] = set()  # the reports this run removed: their absence is not a reason to run

    def timed(stage: Any, **kwargs: Any) -> Any:
        _sweep_leftovers(stage)
        stale = _forget_stale_verdict(root, stage, force, forgotten, removed)
        if stale and stage.name == BATCH_STAGE:
            family_logging.start()
        pipeline = _pipeline_of(stage)
        said.write_text("", encoding="utf-8")
        started = time.perf_counter()
        try:
            ran = _reproduce_stage(stage, **kwargs)
        except Exception as exc:
            report.failures.append(_failure(pipeline, stage.name, exc, said))
            raise
        done = StageRun(pipeline, stage.name, ran is not None, time.perf_counter() - started)
        if stage.name == "evaluate":
            done.metrics = _metrics(root, pipeline)
            done.gated = gated_metrics(root, pipeline)
        report.stages.append(done)
        if on_stage:
            on_stage(done, len(report.stages) + len(report.failures), len(planned))
        return ran

    try:
        # DVC resolves stage paths against the working directory: run from the repo root.
        with tempfile.TemporaryDirectory(prefix="modelops-run-") as scratch, _step_errors_to(scratch) as said, \
                _FamilyLogging(Path(scratch)) as family_logging, contextlib.chdir(root), Repo(str(root)) as repo:
            planned += _plan(repo, chosen)
            try:
                repo.reproduce(chosen, force=force, repro_fn=timed, on_error="keep-going" if keep_going else "fail")
            except DvcException:
                if not (keep_going and report.failures):
                    raise
                report.skipped = _skipped(planned, report)
            report.pushed = _push(repo)
            family_logging.finish()
    except DvcException as exc:
        raise _explain(exc) from None
    except OSError as exc:  # out of DVC's own work (its cache, a checkout)
        if not is_disk_full(exc):
            raise
        raise DiskFullError(exc.filename) from None
    return report


@contextlib.contextmanager
def _step_errors_to(folder: str) -> Iterator[Path]:
    """Have each step's error handler also write its message to a file (errors.ERROR_FILE_ENV), so a
    run that keeps going can say at the end what each failed stage said; only while DVC runs them."""
    said = Path(folder) / "step-error.txt"
    with _environment({ERROR_FILE_ENV: str(said)}):
        yield said


def _plan(repo: Any, chosen: list[str]) -> list[Any]:
    """The stages DVC will visit for these targets, in its order (what `n of N` counts)."""
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    return list(plan_repro(get_active_graph(repo.index.graph), collect_stages(repo, chosen)))


def _skipped(planned: list[Any], report: RunReport) -> list[str]:
    """The planned stages that never ran: DVC skipped them because a stage they need failed."""
    visited = {f"{s.pipeline}:{s.stage}" for s in report.stages} | {f.name for f in report.failures}
    names = [f"{_pipeline_of(stage)}:{stage.name}" for stage in planned]
    return [name for name in names if name not in visited]


def _failure(pipeline: str, stage: str, exc: Exception, said: Path) -> StageFailure:
    """A failed stage: what its step said (its error handler wrote it to `said`), or else DVC's own
    error, and the exit code its failure maps to."""
    text = said.read_text(encoding="utf-8").strip() if said.is_file() else ""
    return StageFailure(pipeline, stage, _explain(exc).exit_code, text or _chain(exc))


def enforce(report: RunReport, verdicts: list[Verdict]) -> None:
    """The exit of a run: its stage failures first (the most serious exit code among them), then
    the gates of the pipelines that ran (gates.verdict.enforce)."""
    from modelops_ci.gates import verdict as verdict_rules

    if not report.failures:
        verdict_rules.enforce(verdicts)
        return
    others = [v for v in verdicts if v.pipeline not in report.broken]
    try:
        verdict_rules.enforce(others)
    except CheckFailed as failed:
        gates = [str(failed)]
    else:
        gates = []
    raise StagesFailed("\n".join([*_failure_lines(report), *gates]), _most_serious(report.failures))


def _most_serious(failures: list[StageFailure]) -> int:
    """A bug (3) before the user's input (2) before a check that said no (1)."""
    codes = {failure.exit_code for failure in failures}
    for code in (EXIT_INTERNAL, EXIT_USER_ERROR):
        if code in codes:
            return code
    return EXIT_GATE_FAILED


def _failure_lines(report: RunReport) -> list[str]:
    count = len(report.failures)
    lines = [f"{count} stage{'s' if count != 1 else ''} failed; every stage that does not need "
             f"{'their' if count != 1 else 'its'} outputs ran:"]
    for failure in report.failures:
        first, *rest = failure.message.splitlines() or [""]
        lines.append(f"  {failure.name} (exit {failure.exit_code}): {first}")
        lines += [f"    {line}" for line in rest]
    if report.skipped:
        shown = ", ".join(report.skipped[:MAX_SKIPPED_SHOWN])
        more = len(report.skipped) - MAX_SKIPPED_SHOWN
        tail = f" and {more} more" if more > 0 else ""
        lines.append(f"{len(report.skipped)} stage(s) skipped: {shown}{tail} (each needs what a failed stage makes)")
    return lines


def current_verdicts(root: Path, pipelines: Iterable[str] = ()) -> list[Verdict]:
    """The verdict of each gated pipeline (or of the named ones) as this commit's inputs leave it:
    a gates.json made for other inputs is a verdict that says why it is stale, and never passes."""
    from modelops_ci.gates import verdict as verdicts

    return [verdicts.read_current(root, name) for name in verdicts.gated_pipelines(root, pipelines)]


class _FamilyLogging:
    """MLflow's logger for the batched stages this run runs (ml/background.py), started as the first
    of them is about to run, and named to it (and the next ones) by the environment DVC starts them
    with; `finish` waits for every record handed over."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._stack = contextlib.ExitStack()
        self._service: LoggingService | None = None

    def start(self) -> None:
        if self._service is None:
            from modelops_ci.ml.background import LoggingService

            self._service = self._stack.enter_context(LoggingService(self._scratch))
            self._stack.enter_context(_environment(self._service.environment))

    def finish(self) -> None:
        if self._service is not None:
            self._service.finish()

    def __enter__(self) -> _FamilyLogging:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` set for the stages DVC starts meanwhile, the environment as it was afterwards."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _pipeline_of(stage: Any) -> str:
    """The pipeline a stage belongs to (compiled/<p>/dvc.yaml), or `repo` for the top-level summary."""
    folder = Path(stage.path).parent
    if stage.path.endswith(f"{COMPILED_DIR}/{folder.name}/dvc.yaml"):
        return folder.name
    return "repo"


def _forget_stale_verdict(root: Path, stage: Any, force: bool, forgotten: set[str], removed: set[Path]) -> bool:
    """Before DVC runs a stage of a gated pipeline, remove the verdict that running it may change:
    gates.json and the pages rendered from it, and the gate reports of this stage and of the
    stages after it. DVC visits stages in order, so a report removed here belongs to a stage it
    has not visited yet and runs again (an uncached output that is missing); a report of a gate it
    has already passed over is never touched, else the gates stage would find it gone (as when the
    compare gate, which runs on every repro, took every report with it). A report this run
    removed is not in itself a reason to run. Returns whether the stage may run (True when its
    reasons were not looked at)."""
    pipeline = _pipeline_of(stage)
    if pipeline in forgotten or not _is_gated(root, pipeline):
        return True
    reasons = ["forced"] if force else _why_stale(stage, removed)
    if not reasons:
        return False
    if stage.name == "gates":
        removed.update(forget_verdict(root, pipeline, only=[]))
    elif stage.name.startswith("gate-"):
        removed.update(forget_verdict(root, pipeline, only=[Path(out.fs_path) for out in stage.outs]))
    else:  # a stage before every gate: each of them runs after it
        forgotten.add(pipeline)
        removed.update(forget_verdict(root, pipeline))
    return True


def _why_stale(stage: Any, removed: set[Path]) -> list[Any]:
    """DVC's reasons to run `stage`, less cached outputs that are only missing: DVC checks those out
    of its cache (the bytes dvc.lock records), so nothing downstream changes (a fresh clone); and
    less outputs that are missing because this run removed them."""
    cached = {str(out) for out in stage.outs if out.use_cache or Path(out.fs_path) in removed}
    reasons = []
    for reason in stage.status().get(stage.addressing, []):
        if isinstance(reason, dict) and "changed outs" in reason:  # DVC: one key per such entry
            changed = reason["changed outs"].items()
            left = {path: why for path, why in changed if why != "deleted" or path not in cached}
            if not left:
                continue
            reason = {"changed outs": left}
        reasons.append(reason)
    return reasons


def _is_gated(root: Path, pipeline: str) -> bool:
    """A pipeline with a `gates` stage, or a batched family (its one stage writes its verdict)."""
    stages = root / Layout(pipeline).stages
    text = stages.read_text(encoding="utf-8") if stages.is_file() else ""
    return "\n  gates:\n" in text or "\n  batch:\n" in text


def forget_verdict(root: Path, pipeline: str, only: Iterable[Path] | None = None) -> list[Path]:
    """Remove `pipeline`'s gate reports (or only the reports in `only`), its gates.json and the
    reports rendered from them, so that a run that stops on the way leaves no verdict rather than
    the previous one (issue 9). Returns what was removed.

    DVC restores an unchanged gate stage's report from its run cache (which keeps uncached
    outputs too), so removing a report that is still right costs no computation."""
    layout = Layout(pipeline)
    reports = root / layout.reports
    gate_reports = sorted((reports / "gates").glob("*.json")) if only is None else list(only)
    derived = [reports / "report.md", reports / "report.html",
               root / "reports" / "summary.md", root / "reports" / "summary.json"]
    removed = [path for path in [root / layout.gates, *gate_reports, *derived] if path.is_file()]
    for path in removed:
        path.unlink()
    return removed


def _sweep_leftovers(stage: Any) -> None:
    # repro_fn runs under DVC's repo lock, so no other write of these outputs can be under way:
    # whatever temp files lie beside them are debris of a run that was killed.
    for out in stage.outs:
        remove_leftover_temps(Path(out.fs_path))


def _put_tool_on_path() -> None:
    # Stages call `modelops-ci`: make it the one running now, even from an unactivated venv.
    here = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != here:
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")


def _push(repo: Any) -> bool:
    name = repo.config.get("core", {}).get("remote")
    if not name:
        return False
    from dvc.config import RemoteNotFoundError
    from dvc.exceptions import UploadError

    with _failed_transfers() as failures:
        try:
            repo.push()
        except RemoteNotFoundError:
            raise _undefined_remote(repo, name) from None
        except OSError as exc:
            raise _unusable_remote(repo, name, exc) from None
        except UploadError as exc:
            raise _unusable_remote(repo, name, failures[0] if failures else exc) from None
        except Exception as exc:
            if not _is_remote_error(exc):
                raise
            raise _unusable_remote(repo, name, exc) from None
    return True


def _is_remote_error(exc: Exception) -> bool:
    """Whether an error out of a push is the remote's, not ours: its address cannot be reached,
    or its client library refused (S3: no credentials, no region, an error answer). botocore
    raises these as its own errors, not as OSErrors."""
    if cause_in(exc, _is_unreachable) is not None:
        return True
    try:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
    except ImportError:  # dvc-s3 is not installed: no S3 remote
        return False
    return isinstance(exc, BotoCoreError | ClientError)


def _is_unreachable(exc: BaseException) -> bool:
    """A connection refused, reset or timed out, or a host name that does not resolve."""
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)


@contextlib.contextmanager
def dvc_repo(root: Path, *, scm: bool = True) -> Iterator[Any]:
    """DVC's Repo at `root`, run from there (DVC resolves paths against the working directory).
    Without `scm`, DVC ignores git: it then tracks folders that git ignores (the shard bundles
    under .modelops/) and touches no .gitignore."""
    stay_offline()
    from dvc.repo import Repo

    config = None if scm else {"core": {"no_scm": True}}
    with contextlib.chdir(root), Repo(str(root), config=config) as repo:
        yield repo


def has_remote(root: Path) -> bool:
    with dvc_repo(root) as repo:
        return bool(repo.config.get("core", {}).get("remote"))


def pull(root: Path, targets: list[str], *, scm: bool = True) -> str:
    """Bring the targets' outputs from the DVC remote (what is missing there is left out: its stage
    runs again); '' when everything came, else what did not."""
    from dvc.exceptions import DvcException

    if not targets:
        return ""
    with dvc_repo(root, scm=scm) as repo, _failed_transfers() as failures:
        if not repo.config.get("core", {}).get("remote"):
            return "no DVC remote is set (core.remote): nothing was pulled"
        try:
            repo.pull(targets=targets, allow_missing=True)
        except DvcException as exc:
            return f"the pull failed ({_chain(exc)})"
        except OSError as exc:
            name = repo.config["core"]["remote"]
            return str(_unusable_remote(repo, name, exc))
    return f"{len(failures)} file(s) could not be pulled ({failures[0]})" if failures else ""


def stale(root: Path, pipelines: Iterable[str]) -> list[str]:
    """The pipelines whose last stage DVC would run again (their stages' status, upstream included)."""
    with dvc_repo(root) as repo:
        return [name for name in pipelines
                if repo.status(targets=[f"{Layout(name).stages}:{_last_stage(root, name)}"], with_deps=True)]


def push_tracked(root: Path, folder: str) -> str:
    """Track `folder` with DVC outside git (a `.dvc` pointer beside it) and push it to the remote;
    returns the pointer's path."""
    with dvc_repo(root, scm=False) as repo:
        name = repo.config.get("core", {}).get("remote")
        if not name:
            raise UserError(".dvc/config: no DVC remote is set (core.remote), and a shard's results reach the "
                            "merge job only through one: add a remote both can reach with "
                            "`dvc remote add -d NAME URL` and commit .dvc/config")
        from dvc.exceptions import UploadError

        stage = repo.add(folder)[0]
        with _failed_transfers() as failures:
            try:
                repo.push(targets=[stage.path])
            except OSError as exc:
                raise _unusable_remote(repo, name, exc) from None
            except UploadError as exc:
                raise _unusable_remote(repo, name, failures[0] if failures else exc) from None
        return str(Path(stage.path).relative_to(root.resolve()))


@contextlib.contextmanager
def _failed_transfers() -> Iterator[list[OSError]]:
    """The OSErrors behind DVC's failed uploads: DVC logs each one and raises only a count."""
    failures: list[OSError] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            error = record.exc_info[1] if record.exc_info else None
            if isinstance(error, OSError):
                failures.append(error)

    handler = Collect(logging.ERROR)
    loggers = [logging.getLogger(name) for name in TRANSFER_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield failures
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _undefined_remote(repo: Any, name: str) -> UserError:
    defined = ", ".join(sorted(repo.config.get("remote", {}))) or "none"
    return UserError(f".dvc/config: core.remote names DVC remote '{name}', which is not defined (defined: "
                     f"{defined}): add it with `dvc remote add {name} URL`, or pick another with "
                     f"`dvc remote default NAME`; {PUSH_AGAIN}")


def _unusable_remote(repo: Any, name: str, exc: BaseException) -> UserError:
    settings = repo.config.get("remote", {}).get(name, {})
    url = str(settings.get("url", "?"))
    if not _is_local(url):
        return _unusable_server(name, url, settings.get("endpointurl"), exc)
    where = f"DVC remote '{name}' ({url})"
    fix = f"point it at a writable folder with `dvc remote modify {name} url PATH`; {PUSH_AGAIN}"
    if is_disk_full(exc):
        return UserError(f"{where}: no space left on the device (or the disk quota is used up): free space "
                         f"there, or {fix}")
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return UserError(f"{where}: is a file, not a folder: {fix}")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"{where}: is not writable ({exc.strerror}): fix its permissions, or {fix}")
    return UserError(f"{where}: the push failed ({exc}): check the remote, or {fix}")


def _unusable_server(name: str, url: str, endpoint: str | None, exc: BaseException) -> UserError:
    """A remote on a server (S3 or another): it cannot be reached, or it refused."""
    address = url
    if endpoint:  # an S3-compatible server: which one matters as much as the bucket
        address = f"{url} at {endpoint}"
    where = f"DVC remote '{name}' ({address})"
    if cause_in(exc, _is_unreachable) is not None:
        return UserError(f"{where}: cannot be reached ({exc}): check its address (for an S3-compatible server "
                         f"`dvc remote modify {name} endpointurl URL`) and the network; {PUSH_AGAIN}")
    return UserError(f"{where}: the push failed ({exc}): check that the bucket exists and that the credentials in "
                     "the environment may write to it (for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                     f"AWS_DEFAULT_REGION), or point it elsewhere with `dvc remote modify {name} url URL`; "
                     f"{PUSH_AGAIN}")


def _is_local(url: str) -> bool:
    """Whether a DVC remote URL names a folder (a path, or file://) rather than a server."""
    scheme = urlsplit(url).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter parses as a scheme


def _metrics(root: Path, pipeline: str) -> dict[str, float]:
    path = root / Layout(pipeline).metrics
    try:
        loaded: dict[str, float] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded


def _chain(exc: BaseException) -> str:
    """An exception and what caused it, as one line: DVC wraps a stage's failure in its own errors."""
    chain: list[BaseException] = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    return " (".join(str(e) for e in chain) + ")" * (len(chain) - 1)


def _explain(exc: Exception) -> ModelopsError:
    """Map a failed stage to our exit codes; the step already printed its own message."""
    text = _chain(exc)
    found = re.search(r"exited with (\d+)", text)
    code = int(found.group(1)) if found else None
    message = f"dvc repro failed: {text}"
    full = disk_full_in(exc)
    if full is not None:
        return DiskFullError(full.filename)
    if code == 2:
        return UserError(message + "\nFix the input named above, then run again.")
    if code == 1:
        return CheckFailed(message)
    return ModelopsError(message)
