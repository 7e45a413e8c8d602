"""The CPU budget that holds a shadow's model calls to a share of the time (serve/budget.py), on a
clock the test gives."""

from __future__ import annotations

import pytest

from modelops_ci.serve.budget import CpuBudget


def test_calls_within_the_burst_go_at_once_and_the_debt_over_it_waits_at_the_share() -> None:
    budget = CpuBudget(share=0.1, burst=0.05)
    assert budget.wait(now=0.0) == 0.0
    budget.spent(0.04, now=0.0)
    assert budget.wait(now=0.0) == 0.0  # 40 ms spent: within the 50 ms burst
    budget.spent(0.03, now=0.0)
    assert budget.wait(now=0.0) == pytest.approx(0.2)  # 20 ms over, earned back at 10%: 0.2 s
    assert budget.wait(now=0.1) == pytest.approx(0.1)
    assert budget.wait(now=0.2) == 0.0


def test_over_a_long_run_the_calls_take_the_share_of_the_time() -> None:
    budget = CpuBudget(share=0.05)
    now, used = 0.0, 0.0
    for _ in range(1000):
        now += budget.wait(now)
        budget.spent(0.012, now)  # a 12 ms call, as the credit model's shadow batch takes
        used += 0.012
        now += 0.012
    assert used / now == pytest.approx(0.05, rel=0.02)


def test_idle_time_is_earned_back_but_not_saved_up_beyond_the_debt() -> None:
    budget = CpuBudget(share=0.1, burst=0.0)
    budget.spent(0.01, now=0.0)
    assert budget.wait(now=1000.0) == 0.0
    budget.spent(0.01, now=1000.0)  # an idle hour bought no credit: the next call waits again
    assert budget.wait(now=1000.0) == pytest.approx(0.1)


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_a_share_must_be_a_fraction_of_a_cpu(share: float) -> None:
    with pytest.raises(ValueError, match="a CPU share is over 0 and at most 1"):
        CpuBudget(share)
