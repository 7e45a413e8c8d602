"""The sticky split: a share of request ids near the weight, and the same id always to the same side."""

from __future__ import annotations

import math
import uuid

import pytest

from modelops_ci.serve.router import bucket, choose, request_id
from modelops_ci.serve.state import Route, ServedVersion

CHAMPION = ServedVersion("loans", "v1", None, {})
CHALLENGER = ServedVersion("loans", "v2", None, {})
IDS = [uuid.UUID(int=n).hex for n in range(2000)]


def _within_binomial_bound(hits: int, trials: int, share: float) -> bool:
    """Within 4.5 standard deviations of the expected count (a false alarm about once in 150,000 runs)."""
    return abs(hits - trials * share) <= 4.5 * math.sqrt(trials * share * (1 - share))


@pytest.mark.parametrize("weight", [10, 50])
def test_canary_sends_about_weight_percent_to_the_challenger_stickily(weight: int) -> None:
    route = Route("loans", CHAMPION, CHALLENGER, "canary", weight)
    first = [choose(route, key) for key in IDS]
    again = [choose(route, key) for key in IDS]
    to_challenger = sum(c is not None and c.answer is CHALLENGER for c in first)
    assert _within_binomial_bound(to_challenger, len(IDS), weight / 100)
    assert [c.answer if c else None for c in first] == [c.answer if c else None for c in again]
    assert all(c is not None and c.shadow is None for c in first)


def test_shadow_lets_the_champion_answer_and_copies_a_sticky_share() -> None:
    route = Route("loans", CHAMPION, CHALLENGER, "shadow", 30)
    chosen = [choose(route, key) for key in IDS]
    assert all(c is not None and c.answer is CHAMPION and c.role == "champion" for c in chosen)
    copied = [key for key, c in zip(IDS, chosen, strict=True) if c is not None and c.shadow is CHALLENGER]
    assert _within_binomial_bound(len(copied), len(IDS), 0.30)
    assert all(bucket(key) < 30 for key in copied)


def test_no_challenger_or_weight_zero_is_the_champion_and_weight_100_the_challenger() -> None:
    assert choose(Route("loans", CHAMPION, None), "a") is not None
    assert all(choose(Route("loans", CHAMPION, CHALLENGER, "canary", 0), k).answer is CHAMPION  # type: ignore[union-attr]
               for k in IDS[:200])
    assert all(choose(Route("loans", CHAMPION, CHALLENGER, "canary", 100), k).answer is CHALLENGER  # type: ignore[union-attr]
               for k in IDS[:200])
    assert choose(Route("loans", None, None), "a") is None


def test_a_sane_request_id_is_kept_and_any_other_replaced() -> None:
    assert request_id("order-17.retry_2") == "order-17.retry_2"
    for given in (None, "", "x" * 129, "a b", "id\nInjected: 1", "ünï"):
        fresh = request_id(given)
        assert fresh != given
        assert len(fresh) == 32
        assert int(fresh, 16) >= 0
    made = [request_id(None) for _ in range(1000)]
    assert len(set(made)) == len(made)  # never the same twice
