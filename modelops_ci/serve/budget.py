"""A CPU budget: model calls may use at most a share of one CPU's time, on average.

A shadow challenger shares the champion's process: every CPU second it scores with is taken from
the answers callers wait for, and a challenger may cost many times what the champion does. Its
calls are held to a share of the time (a token bucket over CPU seconds): it falls behind rather
than slow the champion, and its batches grow while it waits, which makes each row cheaper. The
clock is passed in, so the rule is tested without timing anything.
"""

from __future__ import annotations

from dataclasses import dataclass

# A shadow's calls may take 5% of a CPU: with its copies' own logging, the champion keeps ~90% of
# its throughput under a saturating load (benchmarks/bench_serve.py); `serve --shadow-cpu` sets it.
SHADOW_CPU_SHARE = 0.05


@dataclass
class CpuBudget:
    """At most `share` CPU seconds per second of time, with up to `burst` CPU seconds spent ahead."""

    share: float
    burst: float = 0.05
    _debt: float = 0.0  # CPU seconds spent and not yet earned back
    _at: float | None = None  # when `_debt` was last brought up to date

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"a CPU share is over 0 and at most 1, not {self.share}")

    def wait(self, now: float) -> float:
        """Seconds to wait, from `now`, before the next call may start (0: it may start now)."""
        self._earn(now)
        over = self._debt - self.burst
        return over / self.share if over > 0 else 0.0

    def spent(self, cpu_seconds: float, now: float) -> None:
        """A call that just ended at `now` used `cpu_seconds`."""
        self._earn(now)
        self._debt += cpu_seconds

    def _earn(self, now: float) -> None:
        if self._at is not None:
            self._debt = max(0.0, self._debt - (now - self._at) * self.share)
        self._at = now
