"""The GitHub REST client's pure parts: Link-header pagination, configuration problems as user
errors, and the repository slug read from remote URLs."""

from __future__ import annotations

import pytest

from modelops_ci.errors import EXIT_USER_ERROR
from modelops_ci.github.client import GitHub, GitHubConfigError, next_link, parse_remote, repository
from tests.helpers.github_server import TOKEN


def test_next_link_parsing() -> None:
    header = ('<https://api.github.com/repositories/1/pulls/2/reviews?per_page=2&page=1>; rel="prev", '
              '<https://api.github.com/repositories/1/pulls/2/reviews?per_page=2&page=3>; rel="next", '
              '<https://api.github.com/repositories/1/pulls/2/reviews?per_page=2&page=5>; rel="last"')
    assert next_link(header) == "https://api.github.com/repositories/1/pulls/2/reviews?per_page=2&page=3"
    assert next_link('<https://x/y?page=1>; rel="first"') is None
    assert next_link(None) is None


def test_configuration_problems_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GitHubConfigError, match="travel unencrypted"):
        GitHub("http://github.example.com/api/v3", TOKEN)
    with pytest.raises(GitHubConfigError, match="not an http"):
        GitHub("api.github.com", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "not a slug")
    with pytest.raises(GitHubConfigError, match="is not owner/name") as raised:
        repository()
    assert raised.value.exit_code == EXIT_USER_ERROR
    gh = GitHub.from_env({"GITHUB_TOKEN": TOKEN})
    assert gh.api_url == "https://api.github.com" and TOKEN not in repr(gh)


@pytest.mark.parametrize("url", [
    "git@github.com:acme/models.git", "https://github.com/acme/models", "https://github.com/acme/models.git/",
    "ssh://git@github.com/acme/models.git", "https://ghe.example.com/acme/models.git",
])
def test_repository_slug_from_remote_urls(url: str) -> None:
    assert parse_remote(url) == "acme/models"
