"""A small GitHub REST client on the standard library (no new dependency for a handful of calls).

The base URL comes from GITHUB_API_URL (GitHub Enterprise, or a local server in tests), the token
from GITHUB_TOKEN and the repository from GITHUB_REPOSITORY or the `origin` remote. The token is
sent only to the API's own origin, never logged and never put in an error message.

Retries are for requests that are safe to repeat: GET (and PATCH, which sets fields) after a 5xx,
a timeout or a dropped connection. A POST is retried only when it cannot have reached GitHub
(connection refused), unless the caller says it is idempotent: a repeated "create comment" would
post twice.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from pathlib import Path
from typing import Any

from modelops_ci import __version__, git
from modelops_ci.errors import EXIT_GATE_FAILED, ModelopsError, UserError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_REDIRECTS = 5
_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*)/[A-Za-z0-9._-]+$")
_LINK = re.compile(r'<(?P<url>[^>]+)>\s*;\s*rel="?(?P<rel>[^";]+)"?')
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

log = logging.getLogger(__name__)


class GitHubError(ModelopsError):
    """A GitHub API call failed; the message names the method and endpoint, never the token."""

    def __init__(self, message: str, *, method: str = "", endpoint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.endpoint = endpoint
        self.status = status


class GitHubConfigError(GitHubError, UserError):
    """The client cannot be set up: bad GITHUB_API_URL, no repository slug."""

    exit_code = UserError.exit_code


class GitHubAuthError(GitHubError, UserError):
    """401 or 403: the token is missing, rejected or lacks a permission."""

    exit_code = UserError.exit_code


class GitHubRateLimited(GitHubAuthError):
    """403/429 with the rate limit exhausted (primary) or a Retry-After (secondary)."""


class GitHubNotFound(GitHubError, UserError):
    """404: a wrong repository or number, or a private resource the token cannot see."""

    exit_code = UserError.exit_code


class GitHubRequestError(GitHubError, UserError):
    """Another 4xx (e.g. 422 validation failed): GitHub refused what was asked."""

    exit_code = UserError.exit_code


class GitHubUnavailable(GitHubError):
    """5xx, timeout or no connection after the retries. What needed GitHub could not be
    evaluated, which counts as failed (exit 1), not as a usage error or a bug."""

    exit_code = EXIT_GATE_FAILED


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    data: Any


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by GitHub.request itself, so the token never follows one off-origin."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class GitHub:
    """GitHub's REST API at `api_url`, authenticated with `token` when one is given.

    `get`, `get_paginated`, `post` and `patch` take a path (`/repos/o/r/pulls/1`) or a full URL on
    the same origin, and return the decoded JSON (None for 204).
    """

    def __init__(self, api_url: str = DEFAULT_API_URL, token: str | None = None, *, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_url = _checked_api_url(api_url, token)
        self._token = token or None
        self.timeout = timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> GitHub:
        """The client CI gives: GITHUB_API_URL (default api.github.com) and GITHUB_TOKEN."""
        env = os.environ if environ is None else environ
        return cls(env.get("GITHUB_API_URL") or DEFAULT_API_URL, env.get("GITHUB_TOKEN") or None, **options)

    def __repr__(self) -> str:
        return f"GitHub({self.api_url!r}, token={'set' if self._token else 'unset'})"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params).data

    def get_paginated(self, path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None,
                      per_page: int = 100) -> list[Any]:
        """Every item of a list endpoint, following the Link header's rel="next" page by page.

        `key` names the list inside an object page (e.g. "workflow_runs"); most endpoints return a list.
        """
        items: list[Any] = []
        url: str | None = self._url(path, {**(params or {}), "per_page": per_page})
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            response = self.request("GET", url)
            page = response.data[key] if key and isinstance(response.data, dict) else response.data
            if not isinstance(page, list):
                raise GitHubError(f"GitHub GET {self._endpoint(url)}: expected a list, got "
                                  f"{type(page).__name__}", method="GET", endpoint=self._endpoint(url))
            items.extend(page)
            url = next_link(response.headers.get("Link"))
        return items

    def post(self, path: str, body: Any, *, idempotent: bool = False) -> Any:
        """POST `body` as JSON. Not retried once sent, unless the caller knows a repeat is harmless."""
        return self.request("POST", path, body=body, retry=idempotent).data

    def patch(self, path: str, body: Any) -> Any:
        """PATCH `body` as JSON; retried like a GET, since GitHub's PATCH sets fields to given values."""
        return self.request("PATCH", path, body=body, retry=True).data

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                retry: bool | None = None) -> Response:
        """One call with retries where safe (`retry` defaults to True for GET, HEAD and PUT; a repeated
        DELETE that had been applied would answer 404)."""
        url = self._url(path, params)
        retry = method in {"GET", "HEAD", "PUT"} if retry is None else retry
        for attempt in range(1, self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._send_following(method, url, body)
            except _Transient as exc:
                if last or not (retry or exc.unsent):
                    raise self._unavailable(method, url, exc, attempt) from None
                log.debug("GitHub %s %s: %s; retrying", method, self._endpoint(url), exc.reason)
                self._sleep(self._delay(attempt, exc.retry_after))
                continue
            log.debug("GitHub %s %s -> %d", method, self._endpoint(url), response.status)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_following(self, method: str, url: str, body: Any) -> Response:
        for _ in range(MAX_REDIRECTS):
            status, headers, raw = self._send(method, url, body)
            location = headers.get("Location")
            if status in (301, 302, 307, 308) and location and method == "GET":
                target = urllib.parse.urljoin(url, location)
                if self._same_origin(target):  # e.g. a renamed repository
                    url = target
                    continue
            if 200 <= status < 300:
                return Response(status, headers, self._decode(method, url, raw))
            if status in RETRY_STATUSES:
                raise _Transient(f"{status} {_reason(status)}", status=status,
                                 retry_after=_retry_after(headers))
            raise self._refused(method, url, status, headers, raw)
        raise GitHubError(f"GitHub {method} {self._endpoint(url)}: more than {MAX_REDIRECTS} redirects",
                          method=method, endpoint=self._endpoint(url))

    def _send(self, method: str, url: str, body: Any) -> tuple[int, Message, bytes]:
        data = None if body is None else json.dumps(body).encode()
        # urllib rather than http.client for its HTTPS_PROXY support; S310 (any scheme): _url() only
        # builds http(s) URLs on the API's own origin
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers(url, data))  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                return reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, _read_quietly(exc)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise _Transient(f"no answer within {self.timeout:g} s") from None
            unsent = isinstance(exc.reason, ConnectionRefusedError | socket.gaierror)
            raise _Transient(f"cannot connect ({_text(exc.reason)})", unsent=unsent) from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:  # reset or closed mid-answer
            raise _Transient(f"connection lost ({type(exc).__name__})") from None

    def _headers(self, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": f"modelops-ci/{__version__}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token and self._same_origin(url):
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        if path.startswith(("http://", "https://")):
            if not self._same_origin(path):
                raise GitHubError(f"refusing to call {_origin(path)}: not the GitHub API at {self.api_url}")
            url = path
        else:
            url = self.api_url + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        return url

    def _same_origin(self, url: str) -> bool:
        return _origin(url) == _origin(self.api_url) and urllib.parse.urlsplit(url).path.startswith(
            urllib.parse.urlsplit(self.api_url).path)

    def _endpoint(self, url: str) -> str:
        """The path relative to the API root (what error messages and logs name)."""
        path = urllib.parse.urlsplit(url).path
        root = urllib.parse.urlsplit(self.api_url).path
        return "/" + path[len(root):].lstrip("/") if path.startswith(root) else path

    def _decode(self, method: str, url: str, raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise GitHubError(f"GitHub {method} {self._endpoint(url)}: the answer is not JSON "
                              f"(is GITHUB_API_URL={self.api_url} the REST API?)",
                              method=method, endpoint=self._endpoint(url)) from None

    def _refused(self, method: str, url: str, status: int, headers: Message, raw: bytes) -> GitHubError:
        endpoint = self._endpoint(url)
        said = self._redact(_github_message(raw))
        head = f"GitHub {method} {endpoint}: {status} {_reason(status)}" + (f" ({said})" if said else "")
        kind, fix = self._diagnose(status, headers)
        return kind(f"{head}: {fix}", method=method, endpoint=endpoint, status=status)

    def _diagnose(self, status: int, headers: Message) -> tuple[type[GitHubError], str]:
        """The error class for a refusal and what to do about it."""
        unset = "" if self._token else " (GITHUB_TOKEN is not set)"
        limited = _rate_limit(status, headers)
        if limited:
            return GitHubRateLimited, limited
        if status == 401:
            return GitHubAuthError, ("set GITHUB_TOKEN to a valid token" if not self._token
                                     else "GITHUB_TOKEN was rejected: renew it or use the workflow's token")
        if status == 403:
            needs = headers.get("X-Accepted-GitHub-Permissions")
            return GitHubAuthError, (f"the token needs the permission {needs}" if needs
                                     else "the token lacks a permission this needs") + unset
        if status == 404:
            return GitHubNotFound, ("check the repository and number, and that the token can read them "
                                    "(GitHub answers 404 for private resources it hides)" + unset)
        if 400 <= status < 500:
            return GitHubRequestError, "GitHub refused the request"
        return GitHubError, "unexpected answer"

    def _unavailable(self, method: str, url: str, exc: _Transient, attempts: int) -> GitHubUnavailable:
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        # A write that reached GitHub may have been applied even though no answer came back.
        outcome = ("nothing was changed by this command, try again later" if method in {"GET", "HEAD"} or exc.unsent
                   else "GitHub may have applied it before the answer was lost: check before trying again")
        return GitHubUnavailable(
            f"GitHub {method} {self._endpoint(url)} at {self.api_url}: {self._redact(exc.reason)} after {tries}; "
            f"{outcome}", method=method, endpoint=self._endpoint(url), status=exc.status)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.backoff * 2.0 ** (attempt - 1)
        return max(backoff, min(retry_after, 30.0)) if retry_after is not None else backoff

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


class _Transient(Exception):
    """A failure worth retrying; `unsent` when the request cannot have reached the server."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None,
                 unsent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.unsent = unsent


def repository(root: Path | None = None, environ: Mapping[str, str] | None = None) -> str:
    """`owner/name`: GITHUB_REPOSITORY, else parsed from the `origin` remote of the repo at `root`."""
    env = os.environ if environ is None else environ
    slug = env.get("GITHUB_REPOSITORY") or (_remote_slug(root) if root is not None else None)
    if not slug:
        raise GitHubConfigError("cannot tell the GitHub repository: set GITHUB_REPOSITORY=owner/name "
                                "or add an `origin` remote on GitHub")
    return checked_slug(slug)


def file_text(client: GitHub, slug: str, path: str, ref: str) -> str:
    """The text of file `path` at `ref` (a commit or branch) of `slug`: GET /repos/{slug}/contents/{path},
    whose `content` is base64. GitHubNotFound when there is no such file."""
    endpoint = f"/repos/{checked_slug(slug)}/contents/{urllib.parse.quote(path)}"
    content = client.get(endpoint, {"ref": ref})
    if not isinstance(content, dict) or content.get("type") != "file":
        raise GitHubError(f"GitHub GET {endpoint}: {path} at {ref} is not a file", method="GET", endpoint=endpoint)
    if content.get("encoding") != "base64":  # "none": over 1 MB, GitHub sends no content
        raise GitHubError(f"GitHub GET {endpoint}: {path} at {ref} comes without its content (over 1 MB?)",
                          method="GET", endpoint=endpoint)
    try:
        return base64.b64decode(str(content.get("content") or "")).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise GitHubError(f"GitHub GET {endpoint}: {path} at {ref} is not base64 UTF-8 text", method="GET",
                          endpoint=endpoint) from None


def checked_slug(slug: str) -> str:
    """`slug` if it is `owner/name`, else GitHubConfigError (it becomes part of every API path)."""
    if not _SLUG.match(slug):
        raise GitHubConfigError(f"GITHUB_REPOSITORY '{slug}' is not owner/name")
    return slug


def parse_remote(url: str) -> str | None:
    """`owner/name` from a remote URL (https, ssh or scp-like `git@host:owner/name.git`)."""
    url = url.strip()
    scp = re.match(r"^[\w.-]+@[\w.-]+:(?P<path>[^/].*)$", url)
    path = scp["path"] if scp else urllib.parse.urlsplit(url).path
    parts = [p for p in path.removesuffix("/").removesuffix(".git").split("/") if p]
    slug = "/".join(parts[-2:]) if len(parts) >= 2 else ""
    return slug if _SLUG.match(slug) else None


def next_link(header: str | None) -> str | None:
    """The rel="next" URL of a Link header, or None on the last page."""
    for match in _LINK.finditer(header or ""):
        if "next" in match["rel"].split():
            return match["url"]
    return None


def _remote_slug(root: Path) -> str | None:
    done = git.run("remote", "get-url", "origin", cwd=root, check=False)
    return parse_remote(done.stdout) if done.returncode == 0 else None


def _checked_api_url(api_url: str, token: str | None) -> str:
    parts = urllib.parse.urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GitHubConfigError(f"GITHUB_API_URL '{api_url}' is not an http(s) URL (e.g. {DEFAULT_API_URL})")
    if parts.scheme == "http" and token and parts.hostname not in _LOOPBACK:
        raise GitHubConfigError(f"GITHUB_API_URL '{api_url}' is plain http: the token would travel unencrypted; "
                                "use https")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _rate_limit(status: int, headers: Message) -> str:
    """Why a 403/429 is a rate limit, with when to try again; "" when it is not one."""
    if status not in (403, 429):
        return ""
    if headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset", "")
        at = (datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M:%S UTC") if reset.isdigit()
              else "later")
        return (f"rate limit exhausted ({headers.get('x-ratelimit-used', '?')} of "
                f"{headers.get('x-ratelimit-limit', '?')} {headers.get('x-ratelimit-resource', '')} requests); "
                f"it resets at {at}")
    retry_after = _retry_after(headers)
    if retry_after is not None or status == 429:
        wait = f"retry after {retry_after:g} s" if retry_after is not None else "wait a minute and retry"
        return f"secondary rate limit (too many requests at once): {wait}"
    return ""


def _retry_after(headers: Message) -> float | None:
    value = str(headers.get("Retry-After", ""))
    return float(value) if value.isdigit() else None


def _github_message(raw: bytes) -> str:
    """GitHub's own explanation from an error body: `message` plus any validation errors."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    details = [e.get("message") or f"{e.get('field', '')} {e.get('code', '')}".strip()
               for e in payload.get("errors") or [] if isinstance(e, dict)]
    return "; ".join(str(m) for m in [payload.get("message"), *details] if m)[:500]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, TimeoutError):
        return b""


def _text(reason: object) -> str:
    return reason.strerror or str(reason) if isinstance(reason, OSError) else str(reason)
