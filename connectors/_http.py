"""What the HTTP connectors share: one retry policy with a time budget, and a few words.

Standard library only, so each connector keeps its own SDK to itself. The SDKs' own retries are
switched off (they retry read timeouts, which multiplies the time a hanging server costs us);
:func:`call_with_retries` is the only place a request is repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon to repeat a request that failed in a way worth repeating.

    ``attempts`` counts the first try. Retries stop early once ``budget_s`` seconds have gone
    since the first try, so a call never costs much more than one timeout.
    """

    attempts: int = 3
    backoff_s: float = 0.2
    budget_s: float = 10.0

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): 0.2, 0.4, 0.8…"""
        return float(self.backoff_s * 2 ** (attempt - 1))


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; repeat it while it raises an exception ``retryable`` accepts, the policy
    allows another attempt and the budget has room for the wait. The last exception propagates.
    """
    started = clock()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as exc:
            delay = policy.delay_s(attempt)
            last = attempt == policy.attempts
            over_budget = clock() - started + delay >= policy.budget_s
            if last or over_budget or not retryable(exc):
                raise
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def plural(count: int, noun: str) -> str:
    """``plural(1, "series")`` → "1 series"; ``plural(2, "point")`` → "2 points"."""
    if count == 1 or noun.endswith("s"):
        return f"{count:,} {noun}"
    return f"{count:,} {noun}s"
