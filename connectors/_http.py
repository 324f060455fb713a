"""What the HTTP connectors share: one retry policy with a time budget, and a few words.

Standard library only, so each connector keeps its own SDK to itself. The SDKs' own retries are
switched off (they retry read timeouts, which multiplies the time a hanging server costs us);
:func:`call_with_retries` is the only place a request is repeated. Each connector says which
failures are worth another try (a predicate over the exception its call raised) and, where the
server may ask for a wait (``Retry-After``), how to read what it asked (:func:`asked_wait_s`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon to repeat a request that failed in a way worth repeating.

    ``attempts`` counts the first try. Retries stop early once ``budget_s`` seconds have gone
    since the first try, so a call never costs much more than one timeout. A wait the server
    asks for is honoured up to ``max_wait_s``.
    """

    attempts: int = 3
    backoff_s: float = 0.2
    budget_s: float = 10.0
    max_wait_s: float = math.inf

    def delay_s(self, attempt: int, *, asked_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): 0.2, 0.4, 0.8…, never
        less than the server asked for (``asked_s``) and never more than ``max_wait_s``."""
        backoff = self.backoff_s * 2 ** (attempt - 1)
        return float(min(self.max_wait_s, max(backoff, asked_s or 0.0)))


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    asked_s: Callable[[Exception], float | None] = lambda exc: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; repeat it while it raises an exception ``retryable`` accepts, the policy
    allows another attempt and the budget has room for the wait. ``asked_s`` reads from the
    exception how long the server asked us to wait (``None``: it did not say). The last
    exception propagates.
    """
    started = clock()
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == policy.attempts or not retryable(exc):
                raise
            delay = policy.delay_s(attempt, asked_s=asked_s(exc))
            if clock() - started + delay >= policy.budget_s:
                raise
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def asked_wait_s(headers: Mapping[str, str]) -> float | None:
    """The seconds a server asked us to wait before trying again (``Retry-After``, else
    ``ratelimit-reset``, in seconds); ``None`` when it asked nothing or gave an HTTP date."""
    for name in ("retry-after", "ratelimit-reset"):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue  # an HTTP date: fall back to our own backoff
    return None


def plural(count: int, noun: str) -> str:
    """``plural(1, "series")`` → "1 series"; ``plural(2, "point")`` → "2 points"."""
    if count == 1 or noun.endswith("s"):
        return f"{count:,} {noun}"
    return f"{count:,} {noun}s"
