"""A CPU budget: a shadow's work may use at most a share of the CPU the rest of its process uses.

A shadow challenger shares the champion's process: every CPU second it scores with is taken from
the answers callers wait for, and a challenger may cost many times what the champion does. Its
work is held to a share of the CPU time the rest of the process spends (a token bucket over CPU
seconds): at saturation that bounds what it takes from the champion's throughput, whatever CPU the
process is given (a whole core, half of one, a container's quota), which a share of the clock's time
would not. An idle server spends little CPU, so a floor of the clock's time lets the shadow keep up
when there is time to spare. Over its budget, the shadow falls behind rather than slow the champion,
and its batches grow while it waits, which makes each row cheaper. The clocks are passed in, so the
rule is tested without timing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

# A shadow may take 5% of the CPU the rest of the server takes: with the copies' own logging, the
# champion keeps over 90% of its throughput under a saturating load (benchmarks/bench_serve.py);
# `serve --shadow-cpu` sets it.
SHADOW_CPU_SHARE = 0.05
# At least 1% of a CPU, so that a lightly loaded server's shadow is not starved of idle time.
IDLE_FLOOR = 0.01


@dataclass
class CpuBudget:
    """At most `share` of the others' CPU seconds, or `floor` of the clock's seconds when that is
    more, with up to `burst` CPU seconds spent ahead."""

    share: float
    floor: float = IDLE_FLOOR
    burst: float = 0.05
    _debt: float = 0.0  # CPU seconds spent and not yet earned back
    _at: tuple[float, float] | None = None  # (clock, others' CPU) when `_debt` was last brought up to date
    _rate: float = 0.0  # CPU seconds earned per clock second, over the last interval

    def __post_init__(self) -> None:
        for name, value in (("share", self.share), ("floor", self.floor)):
            if not 0 < value <= 1:
                raise ValueError(f"a CPU {name} is over 0 and at most 1, not {value}")

    def wait(self, now: float, others: float) -> float:
        """Seconds to wait, from `now`, before the next call may start (0: it may start now).
        `others`: the CPU seconds the rest of the process has used, on any clock that only grows.
        The wait assumes the rest keeps its recent pace; the caller asks again after it."""
        self._earn(now, others)
        over = self._debt - self.burst
        return over / max(self._rate, self.floor) if over > 0 else 0.0

    def spent(self, cpu_seconds: float, now: float, others: float) -> None:
        """A call that just ended at `now` used `cpu_seconds`."""
        self._earn(now, others)
        self._debt += cpu_seconds

    def _earn(self, now: float, others: float) -> None:
        if self._at is not None:
            elapsed = now - self._at[0]
            earned = max(self.share * (others - self._at[1]), self.floor * elapsed)
            if elapsed > 0:
                self._rate = earned / elapsed
            self._debt = max(0.0, self._debt - earned)
        self._at = (now, others)
