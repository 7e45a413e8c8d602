"""The GitHub REST client against a local server speaking GitHub's shapes: headers, pagination,
retries where safe, timeouts, and errors that name the endpoint but never the token."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_ci.errors import EXIT_GATE_FAILED, EXIT_USER_ERROR
from modelops_ci.github.client import (
    GitHub,
    GitHubAuthError,
    GitHubConfigError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubRequestError,
    GitHubUnavailable,
    repository,
)
from tests.helpers.github_server import REPO, TOKEN, FakeGitHub, Reply, error, rate_limited, serving
from tests.helpers.repos import git

ITEMS = "/repos/acme/models/things"


@pytest.fixture
def github_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    yield from serving(monkeypatch)


def client(server: FakeGitHub, token: str | None = TOKEN, **options: Any) -> GitHub:
    sleeps: list[float] = []
    made = GitHub(server.url, token, sleep=sleeps.append, **{"timeout": 2.0, **options})
    made.sleeps = sleeps  # type: ignore[attr-defined]
    return made


def serve_items(server: FakeGitHub, count: int) -> None:
    server.route("GET", ITEMS, lambda call, match: Reply(200, [{"id": i} for i in range(count)]))


def assert_secret_kept(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    for text in (str(exc), repr(exc), exc.args, getattr(exc, "render", lambda: "")(), caplog.text):
        assert TOKEN not in str(text)
    assert exc.__cause__ is None


def test_sends_github_headers_and_bearer_token(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    pull = GitHub.from_env().get(f"/repos/{REPO}/pulls/7")
    assert pull["number"] == 7 and pull["head"]["sha"]
    (call,) = github_server.calls
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.headers["x-github-api-version"] == "2022-11-28"
    assert call.headers["user-agent"].startswith("modelops-ci/")


def test_paginates_three_pages_through_link_headers(github_server: FakeGitHub) -> None:
    serve_items(github_server, 250)
    items = client(github_server).get_paginated(ITEMS, {"sort": "created"})
    assert [i["id"] for i in items] == list(range(250))
    calls = github_server.calls_to("GET", ITEMS)
    assert [c.query.get("page", ["1"]) for c in calls] == [["1"], ["2"], ["3"]]
    assert all(c.query["per_page"] == ["100"] and c.query["sort"] == ["created"] for c in calls)
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in calls)


def test_a_single_page_list_needs_one_request(github_server: FakeGitHub) -> None:
    serve_items(github_server, 3)
    assert len(client(github_server).get_paginated(ITEMS)) == 3
    assert len(github_server.calls) == 1


def test_retries_a_get_after_502_then_succeeds(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    path = f"/repos/{REPO}/pulls/7"
    github_server.script("GET", path, Reply(502, "<html>Unicorn!</html>"), Reply(502))
    gh = client(github_server, backoff=0.25)
    assert gh.get(path)["number"] == 7
    assert len(github_server.calls_to("GET", path)) == 3
    assert gh.sleeps == [0.25, 0.5]  # type: ignore[attr-defined]


def test_a_5xx_that_persists_is_a_clear_error(github_server: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/repos/{REPO}/pulls/7/reviews"
    github_server.script("GET", path, *[error(503)] * 3)
    with pytest.raises(GitHubUnavailable) as raised:
        client(github_server).get_paginated(path)
    message = str(raised.value)
    assert f"GET {path}" in message and "503 Service Unavailable after 3 attempts" in message
    assert "nothing was changed by this command" in message  # a GET changes nothing
    assert raised.value.exit_code == EXIT_GATE_FAILED
    assert_secret_kept(raised.value, caplog)


def test_a_post_that_may_have_been_applied_is_not_retried(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    path = f"/repos/{REPO}/issues/7/comments"
    github_server.script("POST", path, error(502))
    with pytest.raises(GitHubUnavailable, match="after 1 attempt; GitHub may have applied it") as raised:
        client(github_server).post(path, {"body": "verdict"})
    assert "nothing was changed" not in str(raised.value)  # a 502 does not say the POST was not applied
    assert len(github_server.calls_to("POST", path)) == 1
    assert github_server.comments == {}


def test_an_idempotent_post_and_a_patch_are_retried(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    gh = client(github_server)
    path = f"/repos/{REPO}/issues/7/comments"
    github_server.script("POST", path, error(502))
    comment = gh.post(path, {"body": "first"}, idempotent=True)
    update = f"/repos/{REPO}/issues/comments/{comment['id']}"
    github_server.script("PATCH", update, error(500))
    assert gh.patch(update, {"body": "second"})["body"] == "second"
    assert len(github_server.calls_to("PATCH", update)) == 2


def test_comments_round_trip_for_the_pr_comment_workflow(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    gh = client(github_server)
    comments = f"/repos/{REPO}/issues/7/comments"
    for n in range(3):
        gh.post(comments, {"body": f"note {n}"})
    listed = gh.get_paginated(comments, per_page=2)
    assert [c["body"] for c in listed] == ["note 0", "note 1", "note 2"]
    assert listed[0]["user"]["login"] == "github-actions[bot]" and listed[0]["user"]["type"] == "Bot"
    with pytest.raises(GitHubRequestError, match="body is too long") as raised:
        gh.post(comments, {"body": "x" * 65_537})
    assert raised.value.status == 422 and raised.value.exit_code == EXIT_USER_ERROR


def test_timeout_is_retried_then_reported(github_server: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    github_server.add_pull(REPO, 7)
    path = f"/repos/{REPO}/pulls/7"
    github_server.script("GET", path, Reply(delay=3.0), Reply(delay=3.0))
    started = time.monotonic()
    with pytest.raises(GitHubUnavailable, match=r"no answer within 0.5 s after 2 attempts") as raised:
        client(github_server, timeout=0.5, retries=2).get(path)
    assert time.monotonic() - started < 2.5  # two timeouts, not the 6 s of answers
    assert_secret_kept(raised.value, caplog)


def test_a_slow_answer_then_a_prompt_one_succeeds(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    path = f"/repos/{REPO}/pulls/7"
    github_server.script("GET", path, Reply(delay=2.0))
    assert client(github_server, timeout=0.5).get(path)["number"] == 7


@pytest.mark.parametrize(("reply", "kind", "expected"), [
    (error(401), GitHubAuthError, "401 Unauthorized (Bad credentials): GITHUB_TOKEN was rejected"),
    (error(403), GitHubAuthError, "403 Forbidden (Resource not accessible by integration): the token lacks"),
    (Reply(403, {"message": "Must have push access"}, {"X-Accepted-GitHub-Permissions": "pull_requests=read"}),
     GitHubAuthError, "the token needs the permission pull_requests=read"),
    (rate_limited(), GitHubRateLimited, "rate limit exhausted (5000 of 5000 core requests); it resets at"),
    (Reply(429, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "60"}),
     GitHubRateLimited, "secondary rate limit (too many requests at once): retry after 60 s"),
    (error(404), GitHubNotFound, "404 Not Found (Not Found): check the repository and number"),
])
def test_refusals_are_user_errors_naming_the_endpoint(github_server: FakeGitHub, caplog: pytest.LogCaptureFixture,
                                                     reply: Reply, kind: type[GitHubError], expected: str) -> None:
    caplog.set_level(logging.DEBUG)
    path = f"/repos/{REPO}/pulls/7/reviews"
    github_server.script("GET", path, reply)
    with pytest.raises(kind) as raised:
        client(github_server).get_paginated(path)
    assert f"GitHub GET {path}: " in str(raised.value) and expected in str(raised.value)
    assert raised.value.exit_code == EXIT_USER_ERROR
    assert len(github_server.calls_to("GET", path)) == 1  # refusals are not retried
    assert_secret_kept(raised.value, caplog)


def test_a_wrong_token_is_rejected_without_echoing_it(github_server: FakeGitHub,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    github_server.add_pull(REPO, 7)
    wrong = "ghp_wrongTOKENvalue000000000000000000000"
    with pytest.raises(GitHubAuthError, match="GITHUB_TOKEN was rejected") as raised:
        client(github_server, token=wrong).get(f"/repos/{REPO}/pulls/7")
    assert wrong not in str(raised.value) and wrong not in caplog.text


def test_no_token_says_to_set_one(github_server: FakeGitHub) -> None:
    with pytest.raises(GitHubAuthError, match="set GITHUB_TOKEN"):
        client(github_server, token=None).get(f"/repos/{REPO}/pulls/7")
    assert "authorization" not in github_server.calls[0].headers


def test_the_token_never_leaves_the_api_origin(github_server: FakeGitHub) -> None:
    with FakeGitHub(token=None) as elsewhere:
        elsewhere.route("GET", "/steal", lambda call, match: Reply(200, []))
        link = {"Link": f'<{elsewhere.url}/steal>; rel="next"'}
        github_server.route("GET", ITEMS, lambda call, match: Reply(200, [1], link))
        with pytest.raises(GitHubError, match="refusing to call"):
            client(github_server).get_paginated(ITEMS)
        moved = {"Location": f"{elsewhere.url}/steal"}
        github_server.route("GET", "/moved", lambda call, match: Reply(301, None, moved))
        with pytest.raises(GitHubError, match="301 Moved Permanently"):
            client(github_server).get("/moved")
        assert elsewhere.calls == []


def test_a_same_origin_redirect_is_followed_with_the_token(github_server: FakeGitHub) -> None:
    github_server.add_pull(REPO, 7)
    github_server.route("GET", "/repos/acme/old-name/pulls/7",
                        lambda call, match: Reply(301, {"message": "Moved Permanently"},
                                                  {"Location": f"{github_server.url}/repos/{REPO}/pulls/7"}))
    assert client(github_server).get("/repos/acme/old-name/pulls/7")["number"] == 7
    assert github_server.calls[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_unreachable_server_is_a_clear_error() -> None:
    with FakeGitHub() as gone:
        url = gone.url
    with pytest.raises(GitHubUnavailable, match=r"at http://127\.0\.0\.1:\d+: cannot connect .* after 2 attempts"):
        GitHub(url, TOKEN, retries=2, backoff=0).post("/repos/acme/models/issues", {"title": "drift"})


def test_repository_from_the_origin_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    git("init", "-q", cwd=tmp_path)
    with pytest.raises(GitHubConfigError, match="set GITHUB_REPOSITORY"):
        repository(tmp_path)
    git("remote", "add", "origin", "git@github.com:acme/credit-models.git", cwd=tmp_path)
    assert repository(tmp_path) == "acme/credit-models"
    assert repository(tmp_path, {"GITHUB_REPOSITORY": "other/repo"}) == "other/repo"
