"""A local stand-in for GitHub's REST API: real payload shapes, pagination, auth, scripted failures.

    with FakeGitHub() as gh:                        # or the `github_server` fixture (sets GITHUB_*)
        gh.add_pull("acme/models", 7, author="alice", head_sha="b" * 40)
        gh.add_review("acme/models", 7, "bob", "APPROVED")      # on the PR's current head
        gh.add_team("acme", "model-risk", ["bob"])
        gh.add_pull("acme/models", 8, head_ref="promote/loans-v1.0.0-to-staging", merged=True,
                    files={"deployments/staging.yaml": text})   # the PR's diff and its head's file
        gh.serve_git("acme/models", origin)         # or: files and contents from a real git repo
        gh.script("GET", "/repos/acme/models/pulls/7", Reply(502), Reply(502))   # then the real answer
        gh.script("GET", "/repos/acme/models/pulls/7", Reply(delay=2))           # slow, then real
        gh.route("GET", r"/repos/(?P<o>[^/]+)/(?P<r>[^/]+)/hooks", lambda call, m: Reply(200, []))
        ... gh.calls  # every request: method, path, query, headers (lower-case), body

What it serves (shapes from docs.github.com REST reference): get a repository, get a pull request,
list pull request files, get repository content (a file, base64), list reviews for a pull request,
get team membership for a user, list/create issue comments, update an issue comment, create an
issue, create a pull request. List endpoints page like GitHub (per_page default 30, at
most 100; Link header with first/prev/next/last, written as /repositories/{id}/... URLs the way
GitHub writes them). Every answer carries x-ratelimit-* headers; errors carry GitHub's error body.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import itertools
import json
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import pytest

from modelops_ci.github.client import GitHub

TOKEN = "ghs_FAKE0token0for0tests0abcdef0123456789"
REPO = "acme/models"
ACTOR = "github-actions[bot]"
COMMENT_LIMIT = 65536
DOCS = "https://docs.github.com/rest"
_EPOCH = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class Reply:
    """A canned answer. `status=None` means: wait `delay` seconds, then answer as GitHub would."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Call:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: Any


Handler = Callable[[Call, "re.Match[str]"], Reply]


def error(status: int, message: str | None = None, **extra: Any) -> Reply:
    """GitHub's error body: {"message", "documentation_url", "status"}."""
    default = {401: "Bad credentials", 403: "Resource not accessible by integration", 404: "Not Found",
               422: "Validation Failed"}.get(status, "Server Error")
    return Reply(status, {"message": message or default, "documentation_url": DOCS, "status": str(status), **extra})


def rate_limited(reset_in: int = 600) -> Reply:
    """The primary rate limit exhausted: 403 with x-ratelimit-remaining 0."""
    reply = error(403, "API rate limit exceeded for installation ID 1.")
    reply.headers = {"x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                     "x-ratelimit-reset": str(int(time.time()) + reset_in)}
    return reply


class FakeGitHub:
    """GitHub's REST API on 127.0.0.1 (an ephemeral port), state kept in plain dicts."""

    def __init__(self, token: str | None = TOKEN, actor: str = ACTOR) -> None:
        self.token = token
        self.actor = actor
        self.calls: list[Call] = []
        self.repos: dict[str, dict[str, Any]] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        self.reviews: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.teams: dict[tuple[str, str], dict[str, str]] = {}  # (org, slug) -> login -> state
        self.trees: dict[tuple[str, str], dict[str, str]] = {}  # (repo, commit sha) -> path -> text
        self.git_dirs: dict[str, Path] = {}  # repo -> a git repository holding its commits
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._ids = itertools.count(1000)
        self._clock = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._builtin_routes()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # wakes slow replies
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "use FakeGitHub as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- state -------------------------------------------------------------------------------------

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        """A simple-user object, as GitHub embeds it in reviews, pulls and comments."""
        uid = sum(ord(c) for c in login) * 7919 % 10_000_000
        base = f"{self.url}/users/{login}"
        return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}", "avatar_url":
                f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "", "url": base,
                "html_url": f"https://github.com/{login}", "followers_url": f"{base}/followers",
                "following_url": f"{base}/following{{/other_user}}", "gists_url": f"{base}/gists{{/gist_id}}",
                "starred_url": f"{base}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{base}/subscriptions",
                "organizations_url": f"{base}/orgs", "repos_url": f"{base}/repos", "events_url":
                f"{base}/events{{/privacy}}", "received_events_url": f"{base}/received_events", "type": kind,
                "user_view_type": "public", "site_admin": False}

    def add_repo(self, full_name: str = REPO) -> dict[str, Any]:
        if full_name not in self.repos:
            owner, name = full_name.split("/")
            self.repos[full_name] = {
                "id": 100_000 + len(self.repos), "node_id": "R_kgDOfake", "name": name, "full_name": full_name,
                "private": False, "owner": self.user(owner, "Organization"),
                "html_url": f"https://github.com/{full_name}", "url": f"{self.url}/repos/{full_name}",
                "default_branch": "main", "_next_number": 1}
        return self.repos[full_name]

    def add_pull(self, repo: str = REPO, number: int | None = None, *, author: str = "alice",
                 head_sha: str | None = None, head_ref: str = "promote/model", base_ref: str = "main",
                 title: str = "Promote model", body: str = "", merged: bool = False,
                 files: Mapping[str, str | None] | None = None, base_files: Mapping[str, str] | None = None,
                 base_sha: str | None = None) -> dict[str, Any]:
        """A pull request (the "Get a pull request" shape); `head_sha` and `base_sha` default to fresh shas.

        `files` (path -> text, None: deleted) is what its commit changes on a base holding
        `base_files`: the PR's diff (list pull request files) and the head's content follow from it.
        """
        record = self.add_repo(repo)
        number = number or self._next_number(repo)
        record["_next_number"] = max(record["_next_number"], number + 1)
        api = f"{self.url}/repos/{repo}"
        sha = head_sha or self._sha()
        base_sha = base_sha or self._sha()
        now = self._now()
        pull = {
            "url": f"{api}/pulls/{number}", "id": next(self._ids), "node_id": "PR_kwDOfake",
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "diff_url": f"https://github.com/{repo}/pull/{number}.diff",
            "patch_url": f"https://github.com/{repo}/pull/{number}.patch",
            "issue_url": f"{api}/issues/{number}", "commits_url": f"{api}/pulls/{number}/commits",
            "review_comments_url": f"{api}/pulls/{number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{number}/comments", "statuses_url": f"{api}/statuses/{sha}",
            "number": number, "state": "closed" if merged else "open", "locked": False, "title": title,
            "user": self.user(author), "body": body, "labels": [], "milestone": None, "active_lock_reason": None,
            "created_at": now, "updated_at": now, "closed_at": now if merged else None,
            "merged_at": now if merged else None, "merge_commit_sha": self._sha(), "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": self._branch(repo, head_ref, sha), "base": self._branch(repo, base_ref, base_sha),
            "_links": {"self": {"href": f"{api}/pulls/{number}"},
                       "html": {"href": f"https://github.com/{repo}/pull/{number}"},
                       "issue": {"href": f"{api}/issues/{number}"},
                       "comments": {"href": f"{api}/issues/{number}/comments"},
                       "review_comments": {"href": f"{api}/pulls/{number}/comments"},
                       "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                       "commits": {"href": f"{api}/pulls/{number}/commits"},
                       "statuses": {"href": f"{api}/statuses/{sha}"}},
            "author_association": "MEMBER", "auto_merge": None, "draft": False, "merged": merged,
            "mergeable": None if merged else True, "rebaseable": None if merged else True,
            "mergeable_state": "unknown" if merged else "clean",
            "merged_by": self.user("release-manager") if merged else None, "comments": 0, "review_comments": 0,
            "maintainer_can_modify": False, "commits": 1, "additions": 1, "deletions": 1, "changed_files": 1,
        }
        self.pulls[(repo, number)] = pull
        self.reviews.setdefault((repo, number), [])
        if files is not None or base_files is not None:
            self.trees[(repo, base_sha)] = dict(base_files or {})
            self.trees[(repo, sha)] = _applied(self.trees[(repo, base_sha)], files or {})
            self._count_changes(pull)
        return pull

    def push(self, repo: str, number: int, sha: str | None = None, *,
             files: Mapping[str, str | None] | None = None) -> str:
        """A new commit on the PR's branch: its head sha moves (earlier approvals become stale);
        `files` (path -> text, None: deleted) is what the commit changes."""
        pull = self.pulls[(repo, number)]
        before = self.trees.get((repo, pull["head"]["sha"]))
        pull["head"]["sha"] = sha or self._sha()
        pull["commits"] += 1
        if before is not None or files is not None:
            self.trees[(repo, pull["head"]["sha"])] = _applied(before or {}, files or {})
            self._count_changes(pull)
        return str(pull["head"]["sha"])

    def merge(self, repo: str, number: int, *, merged_by: str = "release-manager") -> dict[str, Any]:
        """What the merge button does to the PR object: closed, merged, merged_at set."""
        pull = self.pulls[(repo, number)]
        now = self._now()
        pull.update(state="closed", merged=True, merged_at=now, closed_at=now, merge_commit_sha=self._sha(),
                    merged_by=self.user(merged_by), mergeable=None, rebaseable=None, mergeable_state="unknown")
        return pull

    def serve_git(self, repo: str, git_dir: Path) -> None:
        """Answer pull request files and contents for commits not given as `files` from the git
        repository at `git_dir` (e.g. the bare origin a test pushes promotion branches to); a PR
        created through the API then starts at its branches' commits there."""
        self.git_dirs[repo] = git_dir

    def add_review(self, repo: str, number: int, login: str, state: str, *, commit_id: str | None = None,
                   body: str = "", association: str = "COLLABORATOR") -> dict[str, Any]:
        """A review ("List reviews for a pull request" shape), on the PR's current head by default."""
        assert state in {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"}, state
        pull = self.pulls[(repo, number)]
        rid = next(self._ids)
        html = f"https://github.com/{repo}/pull/{number}#pullrequestreview-{rid}"
        review = {"id": rid, "node_id": f"PRR_kwDOfake{rid}", "user": self.user(login), "body": body,
                  "state": state, "html_url": html, "pull_request_url": pull["url"],
                  "_links": {"html": {"href": html}, "pull_request": {"href": pull["url"]}},
                  "author_association": association, "commit_id": commit_id or pull["head"]["sha"]}
        if state != "PENDING":  # a pending review has not been submitted
            review["submitted_at"] = self._now()
        self.reviews[(repo, number)].append(review)
        return review

    def dismiss(self, repo: str, number: int, review_id: int) -> None:
        """What "Dismiss a review" does: the review itself turns DISMISSED."""
        for review in self.reviews[(repo, number)]:
            if review["id"] == review_id:
                review["state"] = "DISMISSED"

    def add_team(self, org: str, slug: str, members: Iterable[str] | Mapping[str, str]) -> None:
        """A team; `members` are logins (active) or login -> "active" | "pending"."""
        states = dict(members) if isinstance(members, Mapping) else dict.fromkeys(members, "active")
        self.teams[(org, slug)] = {login.lower(): state for login, state in states.items()}

    # -- scripting -----------------------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` (exact, no query) with `replies`, in order, then as usual."""
        self._scripts.setdefault((method.upper(), path), deque()).extend(replies)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve `method` on paths fully matching `pattern` (a regex) with `handler(call, match)`;
        added routes win over the built-in ones."""
        self._routes.insert(0, (method.upper(), re.compile(pattern), handler))

    def calls_to(self, method: str, path: str) -> list[Call]:
        """The requests received for `method` on `path`, wherever the client found the URL."""
        return [c for c in self.calls if c.method == method.upper() and c.path == path]

    # -- serving ---------------------------------------------------------------------------------

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        """Status, JSON payload and headers for one request (runs on the server's threads)."""
        with self._lock:
            self.calls.append(call)
            scripted = self._scripts.get((call.method, call.path))
            reply = scripted.popleft() if scripted else Reply()
        if reply.delay:
            self._stopping.wait(reply.delay)
        if reply.status is not None:
            return reply.status, reply.body, reply.headers
        if self.token and call.headers.get("authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            return _from(error(401))
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match and method == call.method:
                with self._lock:
                    return self._paged(call, handler(call, match))
        return _from(error(404))

    def _paged(self, call: Call, reply: Reply) -> tuple[int, Any, dict[str, str]]:
        """A list answer cut to the requested page, with GitHub's Link header."""
        if not isinstance(reply.body, list):
            return reply.status or 200, reply.body, reply.headers
        per_page = min(int(call.query.get("per_page", ["30"])[0]), 100)
        page = int(call.query.get("page", ["1"])[0])
        last = max(1, -(-len(reply.body) // per_page))
        rels = [("prev", page - 1)] if page > 1 else []
        rels += [("next", page + 1), ("last", last)] if page < last else []
        rels += [("first", 1)] if page > 1 else []
        headers = dict(reply.headers)
        if rels:
            headers["Link"] = ", ".join(f'<{self._page_url(call, n)}>; rel="{rel}"' for rel, n in rels)
        return reply.status or 200, reply.body[(page - 1) * per_page: page * per_page], headers

    def _page_url(self, call: Call, page: int) -> str:
        """GitHub writes page links against the repository's id: /repositories/{id}/..."""
        path = call.path
        repo = re.match(r"^/repos/([^/]+/[^/]+)(/.*)$", path)
        if repo and repo[1] in self.repos:
            path = f"/repositories/{self.repos[repo[1]]['id']}{repo[2]}"
        query = {k: v[-1] for k, v in call.query.items()} | {"page": str(page)}
        return f"{self.url}{path}?{urlencode(query)}"

    def canonical(self, path: str) -> str:
        """/repositories/{id}/rest -> /repos/{owner}/{name}/rest."""
        found = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if found:
            for full_name, record in self.repos.items():
                if str(record["id"]) == found[1]:
                    return f"/repos/{full_name}{found[2] or ''}"
        return path

    # -- built-in endpoints ----------------------------------------------------------------------

    def _builtin_routes(self) -> None:
        repo = r"/repos/(?P<repo>[^/]+/[^/]+)"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", repo, self._get_repo),
            ("GET", rf"{repo}/pulls/(?P<n>\d+)", self._get_pull),
            ("GET", rf"{repo}/pulls/(?P<n>\d+)/files", self._list_files),
            ("GET", rf"{repo}/contents/(?P<path>.+)", self._get_contents),
            ("GET", rf"{repo}/pulls/(?P<n>\d+)/reviews", self._list_reviews),
            ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<login>[^/]+)", self._membership),
            ("GET", rf"{repo}/issues/(?P<n>\d+)/comments", self._list_comments),
            ("POST", rf"{repo}/issues/(?P<n>\d+)/comments", self._create_comment),
            ("PATCH", rf"{repo}/issues/comments/(?P<id>\d+)", self._update_comment),
            ("POST", rf"{repo}/issues", self._create_issue),
            ("POST", rf"{repo}/pulls", self._create_pull),
        ]
        for method, pattern, handler in routes:
            self._routes.append((method, re.compile(pattern), handler))

    def _get_repo(self, call: Call, m: re.Match[str]) -> Reply:
        record = self.repos.get(m["repo"])
        if record is None:
            return error(404)
        public = {k: v for k, v in record.items() if not k.startswith("_")}
        return Reply(200, {**public, "description": None, "fork": False, "visibility": "public",
                           "archived": False, "disabled": False, "has_issues": True})

    def _get_pull(self, call: Call, m: re.Match[str]) -> Reply:
        pull = self.pulls.get((m["repo"], int(m["n"])))
        return Reply(200, _public(pull)) if pull else error(404)

    def _list_files(self, call: Call, m: re.Match[str]) -> Reply:
        pull = self.pulls.get((m["repo"], int(m["n"])))
        if pull is None:
            return error(404)
        return Reply(200, self._pull_files(pull))

    def _get_contents(self, call: Call, m: re.Match[str]) -> Reply:
        """A file's content at `ref` (a commit sha or a PR's head branch), base64 like GitHub."""
        repo, path = m["repo"], unquote(m["path"])
        ref = call.query.get("ref", [self.repos.get(repo, {}).get("default_branch", "main")])[0]
        sha = self._resolve(repo, ref)
        text = self._text_at(repo, sha, path) if sha else None
        if text is None:
            return error(404)
        return Reply(200, self._content(repo, ref, path, text))

    def _list_reviews(self, call: Call, m: re.Match[str]) -> Reply:
        key = (m["repo"], int(m["n"]))
        if key not in self.pulls:
            return error(404)
        # A pending review is visible only to its author; the token's actor authors none here.
        return Reply(200, [r for r in self.reviews[key] if r["state"] != "PENDING"])

    def _membership(self, call: Call, m: re.Match[str]) -> Reply:
        state = self.teams.get((m["org"], m["team"]), {}).get(m["login"].lower())
        if state is None:
            return error(404)
        url = f"{self.url}/organizations/1/team/1/memberships/{m['login']}"
        return Reply(200, {"url": url, "role": "member", "state": state})

    def _list_comments(self, call: Call, m: re.Match[str]) -> Reply:
        if not self._issue_exists(m["repo"], int(m["n"])):
            return error(404)
        url = f"{self.url}/repos/{m['repo']}/issues/{int(m['n'])}"
        return Reply(200, [c for c in self.comments.values() if c["issue_url"] == url])

    def _create_comment(self, call: Call, m: re.Match[str]) -> Reply:
        number = int(m["n"])
        if not self._issue_exists(m["repo"], number):
            return error(404)
        problem = _body_problem(call.body, "IssueComment")
        if problem:
            return problem
        cid = next(self._ids)
        api = f"{self.url}/repos/{m['repo']}"
        now = self._now()
        comment = {"id": cid, "node_id": f"IC_kwDOfake{cid}", "url": f"{api}/issues/comments/{cid}",
                   "html_url": f"https://github.com/{m['repo']}/pull/{number}#issuecomment-{cid}",
                   "body": call.body["body"], "user": self.user(self.actor, "Bot"), "created_at": now,
                   "updated_at": now, "issue_url": f"{api}/issues/{number}", "author_association": "NONE",
                   "performed_via_github_app": None, "reactions": _reactions(f"{api}/issues/comments/{cid}")}
        self.comments[cid] = comment
        return Reply(201, comment, {"Location": comment["url"]})

    def _update_comment(self, call: Call, m: re.Match[str]) -> Reply:
        comment = self.comments.get(int(m["id"]))
        if comment is None or not comment["url"].startswith(f"{self.url}/repos/{m['repo']}/"):
            return error(404)
        problem = _body_problem(call.body, "IssueComment")
        if problem:
            return problem
        comment.update(body=call.body["body"], updated_at=self._now())
        return Reply(200, comment)

    def _create_issue(self, call: Call, m: re.Match[str]) -> Reply:
        if m["repo"] not in self.repos:
            return error(404)
        body = call.body if isinstance(call.body, dict) else {}
        if not body.get("title"):
            return error(422, errors=[{"resource": "Issue", "code": "missing_field", "field": "title"}])
        number = self._next_number(m["repo"])
        api = f"{self.url}/repos/{m['repo']}"
        now = self._now()
        issue = {"id": next(self._ids), "node_id": "I_kwDOfake", "url": f"{api}/issues/{number}",
                 "repository_url": api, "labels_url": f"{api}/issues/{number}/labels{{/name}}",
                 "comments_url": f"{api}/issues/{number}/comments", "events_url": f"{api}/issues/{number}/events",
                 "html_url": f"https://github.com/{m['repo']}/issues/{number}", "number": number, "state": "open",
                 "state_reason": None, "title": body["title"], "body": body.get("body"),
                 "user": self.user(self.actor, "Bot"),
                 "labels": [{"name": name, "color": "ededed", "default": False} for name in body.get("labels", [])],
                 "assignee": None, "assignees": [], "milestone": None, "locked": False, "active_lock_reason": None,
                 "comments": 0, "closed_at": None, "created_at": now, "updated_at": now, "closed_by": None,
                 "author_association": "NONE"}
        self.issues[(m["repo"], number)] = issue
        return Reply(201, issue, {"Location": issue["url"]})

    def _create_pull(self, call: Call, m: re.Match[str]) -> Reply:
        if m["repo"] not in self.repos:
            return error(404)
        body = call.body if isinstance(call.body, dict) else {}
        missing = [f for f in ("head", "base") if not body.get(f)]
        if missing or not (body.get("title") or body.get("issue")):
            return error(422, errors=[{"resource": "PullRequest", "code": "missing_field", "field": f}
                                      for f in missing or ["title"]])
        shas = {side: self._git_commit(m["repo"], body[side]) for side in ("head", "base")}
        pull = self.add_pull(m["repo"], author=self.actor, head_ref=body["head"], base_ref=body["base"],
                             title=body["title"], body=body.get("body") or "", head_sha=shas["head"],
                             base_sha=shas["base"])
        pull["user"] = self.user(self.actor, "Bot")
        return Reply(201, _public(pull), {"Location": pull["url"]})

    # -- files at commits -------------------------------------------------------------------------

    def _count_changes(self, pull: dict[str, Any]) -> None:
        files = self._pull_files(pull)
        pull.update(additions=sum(f["additions"] for f in files), deletions=sum(f["deletions"] for f in files),
                    changed_files=len(files))

    def _pull_files(self, pull: dict[str, Any]) -> list[dict[str, Any]]:
        """The "List pull requests files" items: the diff from the base to the head commit."""
        repo = pull["base"]["repo"]["full_name"]
        base, head = pull["base"]["sha"], pull["head"]["sha"]
        return [self._file_entry(repo, head, path, self._text_at(repo, base, path), self._text_at(repo, head, path))
                for path in self._changed(repo, base, head)]

    def _changed(self, repo: str, base: str, head: str) -> list[str]:
        if (repo, head) in self.trees:
            before, after = self.trees.get((repo, base), {}), self.trees[(repo, head)]
            return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        if repo not in self.git_dirs:
            return []
        fork = self._git(repo, "merge-base", base, head).strip()
        return self._git(repo, "diff", "--name-only", "--no-renames", "-z", fork, head).split("\0")[:-1]

    def _text_at(self, repo: str, sha: str, path: str) -> str | None:
        if (repo, sha) in self.trees:
            return self.trees[(repo, sha)].get(path)
        if repo not in self.git_dirs:
            return None
        done = subprocess.run(["git", "cat-file", "blob", f"{sha}:{path}"], cwd=self.git_dirs[repo],
                              capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else None

    def _resolve(self, repo: str, ref: str) -> str | None:
        """The commit `ref` names: a known sha, a PR's head branch, or (git) any ref or sha."""
        if (repo, ref) in self.trees:
            return ref
        heads = [p["head"]["sha"] for (r, _), p in sorted(self.pulls.items()) if r == repo and p["head"]["ref"] == ref]
        if heads:
            return str(heads[-1])
        if repo not in self.git_dirs:
            return None
        done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
                              cwd=self.git_dirs[repo], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def _git_commit(self, repo: str, branch: str) -> str | None:
        """The commit of `branch` in the repository `serve_git` gave, or None without one."""
        return self._resolve(repo, f"refs/heads/{branch}") if repo in self.git_dirs else None

    def _git(self, repo: str, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.git_dirs[repo], capture_output=True, text=True,
                              check=True).stdout

    def _file_entry(self, repo: str, head: str, path: str, before: str | None, after: str | None) -> dict[str, Any]:
        """One "List pull requests files" item; `patch` is the unified diff's hunks, as GitHub sends it."""
        status = "added" if before is None else "removed" if after is None else "modified"
        lines = list(difflib.unified_diff((before or "").splitlines(), (after or "").splitlines(), lineterm=""))[2:]
        additions = sum(1 for line in lines if line.startswith("+"))
        deletions = sum(1 for line in lines if line.startswith("-"))
        quoted = quote(path)
        return {"sha": _blob_sha(after if after is not None else before or ""), "filename": path, "status": status,
                "additions": additions, "deletions": deletions, "changes": additions + deletions,
                "blob_url": f"https://github.com/{repo}/blob/{head}/{quoted}",
                "raw_url": f"https://github.com/{repo}/raw/{head}/{quoted}",
                "contents_url": f"{self.url}/repos/{repo}/contents/{quoted}?ref={head}", "patch": "\n".join(lines)}

    def _content(self, repo: str, ref: str, path: str, text: str) -> dict[str, Any]:
        """The "Get repository content" object of a file: base64 in lines of 60, like GitHub."""
        raw = text.encode()
        encoded = base64.b64encode(raw).decode()
        sha = _blob_sha(text)
        api = f"{self.url}/repos/{repo}"
        links = {"self": f"{api}/contents/{quote(path)}?ref={ref}", "git": f"{api}/git/blobs/{sha}",
                 "html": f"https://github.com/{repo}/blob/{ref}/{quote(path)}"}
        return {"type": "file", "encoding": "base64", "size": len(raw), "name": path.rsplit("/", 1)[-1],
                "path": path, "content": "".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60)),
                "sha": sha, "url": links["self"], "git_url": links["git"], "html_url": links["html"],
                "download_url": f"https://raw.githubusercontent.com/{repo}/{ref}/{quote(path)}", "_links": links}

    # -- helpers ---------------------------------------------------------------------------------

    def _issue_exists(self, repo: str, number: int) -> bool:
        return (repo, number) in self.pulls or (repo, number) in self.issues

    def _next_number(self, repo: str) -> int:
        record = self.add_repo(repo)
        number = int(record["_next_number"])
        record["_next_number"] = number + 1
        return number

    def _branch(self, repo: str, ref: str, sha: str) -> dict[str, Any]:
        owner = repo.split("/")[0]
        public = {k: v for k, v in self.repos[repo].items() if not k.startswith("_")}
        return {"label": f"{owner}:{ref}", "ref": ref, "sha": sha, "user": self.user(owner, "Organization"),
                "repo": public}

    def _sha(self) -> str:
        return f"{next(self._ids):040x}"

    def _now(self) -> str:
        return (_EPOCH + timedelta(minutes=next(self._clock))).strftime("%Y-%m-%dT%H:%M:%SZ")


def _public(record: dict[str, Any] | None) -> dict[str, Any] | None:
    return json.loads(json.dumps(record)) if record is not None else None  # a snapshot, not live state


def _applied(tree: Mapping[str, str], files: Mapping[str, str | None]) -> dict[str, str]:
    """`tree` with `files` written (None: deleted)."""
    written = {path: text for path, text in files.items() if text is not None}
    return {path: text for path, text in tree.items() if path not in files} | written


def _blob_sha(text: str) -> str:
    """The git blob id of `text`, as GitHub names file versions."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _body_problem(body: Any, resource: str) -> Reply | None:
    """GitHub's 422 for a missing or too long comment body (65,536 characters at most)."""
    text = body.get("body") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return error(422, errors=[{"resource": resource, "code": "missing_field", "field": "body"}])
    if len(text) > COMMENT_LIMIT:
        return error(422, errors=[{"resource": resource, "code": "custom", "field": "body",
                                   "message": f"body is too long (maximum is {COMMENT_LIMIT} characters)"}])
    return None


def _reactions(url: str) -> dict[str, Any]:
    return {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}


def _from(reply: Reply) -> tuple[int, Any, dict[str, str]]:
    return reply.status or 200, reply.body, reply.headers


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            call = Call(self.command, fake.canonical(parts.path), parse_qs(parts.query),
                        {k.lower(): v for k, v in self.headers.items()}, body)
            status, payload, headers = fake.answer(call)
            data = b"" if payload is None and status == 204 else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                self.send_header("X-GitHub-Request-Id", "FAKE:0001")
                for name, value in {**_rate_headers(len(fake.calls)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


def _rate_headers(used: int) -> dict[str, str]:
    return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(max(0, 5000 - used)),
            "x-ratelimit-reset": str(int(time.time()) + 3600), "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core"}


def serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A running FakeGitHub with GITHUB_API_URL, GITHUB_TOKEN and GITHUB_REPOSITORY (acme/models) set."""
    with FakeGitHub() as server:
        server.add_repo(REPO)
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        yield server


def listing(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """`serving` with the list routes (`add_list_routes`) and no job summary or server URL in the
    environment: what the roll-out and monitoring commands talk to."""
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    for server in serving(monkeypatch):
        add_list_routes(server)
        yield server


@pytest.fixture
def github_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """`serving` as a fixture, for `pytest_plugins = ["tests.helpers.github_server"]` in the root conftest."""
    yield from serving(monkeypatch)


def add_list_routes(server: FakeGitHub) -> None:
    """GitHub's "List pull requests" (state, head "owner:ref", base) and "List repository issues"
    (state; pull requests are listed too, with a `pull_request` key), from the fake's state."""
    repo = r"/repos/(?P<repo>[^/]+/[^/]+)"

    def wanted(call: Call, record: dict[str, Any]) -> bool:
        state = call.query.get("state", ["open"])[0]
        return state == "all" or record["state"] == state

    def pulls(call: Call, m: re.Match[str]) -> Reply:
        if m["repo"] not in server.repos:
            return error(404)
        head, base = call.query.get("head", [None])[0], call.query.get("base", [None])[0]
        found = [p for (r, _), p in sorted(server.pulls.items()) if r == m["repo"] and wanted(call, p)
                 and head in (None, p["head"]["label"]) and base in (None, p["base"]["ref"])]
        return Reply(200, json.loads(json.dumps(found)))

    def labelled(call: Call, record: dict[str, Any]) -> bool:
        """GitHub's `labels` filter: comma-separated names, every one on the issue."""
        names = [n for n in call.query.get("labels", [""])[0].split(",") if n]
        return all(n in {label["name"] for label in record.get("labels", [])} for n in names)

    def issues(call: Call, m: re.Match[str]) -> Reply:
        if m["repo"] not in server.repos:
            return error(404)
        found = [i for (r, _), i in sorted(server.issues.items()) if r == m["repo"] and wanted(call, i)
                 and labelled(call, i)]
        found += [{"number": p["number"], "title": p["title"], "body": p["body"], "state": p["state"],
                   "html_url": p["html_url"], "pull_request": {"url": p["url"], "html_url": p["html_url"]}}
                  for (r, _), p in sorted(server.pulls.items()) if r == m["repo"] and wanted(call, p)]
        return Reply(200, json.loads(json.dumps(sorted(found, key=lambda i: -int(i["number"])))))

    def update_issue(call: Call, m: re.Match[str]) -> Reply:
        """GitHub's "Update an issue": title, body, state (open/closed) and state_reason."""
        issue = server.issues.get((m["repo"], int(m["n"])))
        if issue is None:
            return error(404)
        body = call.body if isinstance(call.body, dict) else {}
        if body.get("state") not in (None, "open", "closed"):
            return error(422, errors=[{"resource": "Issue", "code": "invalid", "field": "state"}])
        for key in ("title", "body", "state", "state_reason"):
            if key in body:
                issue[key] = body[key]
        if body.get("state") == "closed":
            issue["closed_at"] = server._now()
        issue["updated_at"] = server._now()
        return Reply(200, issue)

    server.route("GET", rf"{repo}/pulls", pulls)
    server.route("GET", rf"{repo}/issues", issues)
    server.route("PATCH", rf"{repo}/issues/(?P<n>\d+)", update_issue)


def fast_client(server: FakeGitHub, timeout: float = 2.0) -> GitHub:
    return GitHub(server.url, TOKEN, timeout=timeout, sleep=lambda seconds: None)
