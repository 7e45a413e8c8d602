"""The CPU budget that holds a shadow to a share of the CPU the rest of its server uses
(serve/budget.py), on clocks the test gives: the clock's seconds and the rest's CPU seconds."""

from __future__ import annotations

import pytest

from modelops_ci.serve.budget import CpuBudget


def test_calls_within_the_burst_go_at_once_and_the_debt_over_it_is_earned_from_the_rest_s_cpu() -> None:
    budget = CpuBudget(share=0.1, floor=0.01, burst=0.05)
    assert budget.wait(now=0.0, others=0.0) == 0.0
    budget.spent(0.04, now=0.0, others=0.0)
    assert budget.wait(now=0.0, others=0.0) == 0.0  # 40 ms spent: within the 50 ms burst
    budget.spent(0.03, now=0.0, others=0.0)  # 20 ms over
    # the rest used 0.1 CPU seconds in 0.1 s: 10% of that is 10 ms earned, 10 ms still over
    wait = budget.wait(now=0.1, others=0.1)
    assert wait == pytest.approx(0.1)  # at the rest's pace (0.01 CPU s per s of clock) in 0.1 s more
    assert budget.wait(now=0.2, others=0.2) == 0.0


def test_a_server_given_half_a_cpu_gives_its_shadow_the_share_of_that_half() -> None:
    """What a share of the clock would not do: at half a CPU, 5% of the clock is 10% of the server."""
    budget = CpuBudget(share=0.05, floor=0.01)
    now, others, used = 0.0, 0.0, 0.0
    for _ in range(2000):
        wait = budget.wait(now, others)
        now, others = now + wait, others + 0.5 * wait  # the rest runs at half a CPU meanwhile
        budget.spent(0.012, now, others)  # a 12 ms call, as a credit-model shadow batch takes
        used += 0.012
        now, others = now + 0.024, others + 0.0  # the call had the half CPU to itself
    assert used / others == pytest.approx(0.05, rel=0.03)


def test_an_idle_server_still_lets_its_shadow_use_the_floor_of_the_clock() -> None:
    budget = CpuBudget(share=0.05, floor=0.01, burst=0.0)
    budget.spent(0.01, now=0.0, others=0.0)
    # the rest used nothing: 5% of nothing, but 1% of the clock earns 10 ms in a second
    assert budget.wait(now=0.5, others=0.0) == pytest.approx(0.5)
    assert budget.wait(now=1.0, others=0.0) == 0.0


def test_idle_time_is_earned_back_but_not_saved_up_beyond_the_debt() -> None:
    budget = CpuBudget(share=0.1, floor=0.01, burst=0.0)
    budget.spent(0.01, now=0.0, others=0.0)
    assert budget.wait(now=1000.0, others=500.0) == 0.0
    budget.spent(0.01, now=1000.0, others=500.0)  # an idle hour bought no credit: the next call waits again
    assert budget.wait(now=1000.0, others=500.0) > 0


@pytest.mark.parametrize(("share", "floor", "name"), [(0.0, 0.01, "share"), (-0.1, 0.01, "share"),
                                                      (1.5, 0.01, "share"), (0.05, 0.0, "floor")])
def test_a_share_and_a_floor_must_be_fractions_of_a_cpu(share: float, floor: float, name: str) -> None:
    with pytest.raises(ValueError, match=f"a CPU {name} is over 0 and at most 1"):
        CpuBudget(share, floor)
