"""Issue #9, in this process: versions take ASCII digits only, and a remembered verdict lapses when
a signer's key does."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_ci.errors import UserError
from modelops_ci.registry import tags, trust
from modelops_ci.registry import verify as verifier
from modelops_ci.registry.verdict_cache import Verdict, VerdictCache

# --- 9: ASCII digits, bounded counters, no option injection -------------------------------------


def test_versions_take_ascii_digits_only() -> None:
    bold_zero = "\U0001d7ce"
    with pytest.raises(UserError, match=r"not vMAJOR\.MINOR\.PATCH"):
        tags.version_tag("loans", f"v1{bold_zero}.0.0")
    assert tags.parse(f"loans@v1{bold_zero}.0.0") is None
    assert tags.parse("loans#staging#\u0663") is None  # an Arabic-Indic three


# --- remembered verdicts -------------------------------------------------------------------------


def test_an_accepted_verdict_lapses_when_a_signer_key_does(tmp_path: Path) -> None:
    lines = trust.parse_allowed_signers('ci-bot valid-before="20300101Z" ssh-ed25519 AAAA\n'
                                        'old valid-before="20200101Z" ssh-ed25519 BBBB\n')
    signers = trust.Trust("main", "0" * 40, lines, ())
    until = verifier.signers_valid_until(signers, now=1_800_000_000.0)
    assert until == trust.signer_time('valid-before="20300101Z"') == 1_893_456_000.0
    cache = VerdictCache(None, {})
    cache.put("key", Verdict(True, "", "ok", "ci-bot", "c" * 40, "v1.0.0", ("staging",), until=until))
    assert cache.get("key", now=until - 1) is not None
    assert cache.get("key", now=until) is None
    cache.put("expired", Verdict(False, "signer-expired", "no", "", "", "", ()))
    assert cache.get("expired", now=0.0) is None  # rests on the clock: never remembered
