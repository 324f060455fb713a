"""Run the benchmarks (``make bench``): traces, metric analysis, end to end, webhooks, the
model's digest and validation (reasoning), in that order, then a summary. ``python -m
benchmarks analysis`` runs one; arguments after its name go to it (``python -m benchmarks
analysis --series 2000``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from benchmarks import analysis, endtoend, reasoning, traces, webhooks

BENCHMARKS: dict[str, Callable[[list[str] | None], int]] = {
    "traces": traces.main,
    "analysis": analysis.main,
    "endtoend": endtoend.main,
    "webhooks": webhooks.main,
    "reasoning": reasoning.main,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print(f"benchmarks: {', '.join(BENCHMARKS)}")
        return 0
    if args and args[0] not in BENCHMARKS:
        print(f"unknown benchmark {args[0]!r}: choose from {', '.join(BENCHMARKS)}")
        return 2
    if args:
        return BENCHMARKS[args[0]](args[1:])
    return _run_all()


def _run_all() -> int:
    outcomes = []
    for name, run in BENCHMARKS.items():
        began = time.perf_counter()
        code = run([])
        outcomes.append((name, code, time.perf_counter() - began))
        print()
    print("summary")
    for name, code, seconds in outcomes:
        print(f"  {name:<10} {'ok' if code == 0 else f'FAILED (exit {code})':<16} {seconds:6.1f} s")
    return max(code for _, code, _ in outcomes)


if __name__ == "__main__":
    raise SystemExit(main())
