"""Which push failures are the DVC remote's (exit 2, naming it) and which are ours (exit 3)."""

from __future__ import annotations

import socket

import pytest

from modelops_ci.commands.run import _is_remote_error


def _raised_from(cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("push failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("cause", [ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out"),
                                   socket.gaierror(-2, "Name or service not known")],
                         ids=["refused", "timeout", "no-such-host"])
def test_an_endpoint_that_cannot_be_reached_is_the_remotes_error(cause: BaseException) -> None:
    assert _is_remote_error(_raised_from(cause))


def test_an_s3_client_error_is_the_remotes_error() -> None:
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    assert _is_remote_error(NoCredentialsError())
    assert _is_remote_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))


def test_a_bug_of_ours_is_not_blamed_on_the_remote() -> None:
    assert not _is_remote_error(_raised_from(KeyError("md5")))
