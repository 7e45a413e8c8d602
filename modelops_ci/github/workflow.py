"""What a GitHub Actions workflow's environment says: the run's page (its artifacts hold the full
reports), the pull request it runs for, and the base branch to compare with (checked: it reaches
git and DVC as an argument)."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from modelops_ci.errors import UserError
from modelops_ci.github.client import checked_slug

# A branch name as a base: git's rules, stricter (no leading '-': it would read as an option).
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]+(?<![./])$")


def checked_ref(ref: str, what: str = "--base") -> str:
    """`ref` if it is a plain branch name, else UserError: it reaches git and DVC as an argument."""
    if not _REF.match(ref) or ref.endswith(".lock"):
        raise UserError(f"{what} '{ref}' is not a branch name (letters, digits, '.', '_', '/', '-'; "
                        "no '..', no leading '-'): pass the base branch, e.g. --base main")
    return ref


def run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Actions run's page (its artifacts hold the full reports), or None outside Actions."""
    env = os.environ if environ is None else environ
    server, slug, run = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    parts = urllib.parse.urlsplit(server or "https://github.com")
    if not (slug and run.isdigit()) or parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        checked_slug(slug)
    except UserError:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{slug}/actions/runs/{run}"


def event_number(environ: Mapping[str, str] | None = None) -> int | None:
    """The pull request's number from the event payload (GITHUB_EVENT_PATH), if there is one."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
    return None


def default_base(environ: Mapping[str, str] | None = None) -> str:
    """The PR's base branch on Actions (GITHUB_BASE_REF), else main."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_BASE_REF") or "main"
