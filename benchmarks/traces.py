"""Benchmark: trace analysis over 50,000 spans (baseline + incident) and the call graph.

Runs :func:`diagnose.analysis.traces.compare_windows` and, in the same process, a
straightforward pure-Python implementation of the same statistics (dicts of lists, sorted
quantiles, rank sums, the same critical-path walk), and prints wall time and peak traced
memory for both, with their ratios::

    python -m benchmarks.traces [--spans 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import random
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from diagnose.analysis import traces as analysis
from diagnose.domain import traces as tracing

SERVICES = [f"svc{i}" for i in range(12)]
TARGET_S = 2.0


def make_spans(count: int, *, incident: bool, seed: int) -> list[tracing.SpanPayload]:
    """Traces of about six spans over twelve services; in the incident svc7 is 5x slower."""
    rng = random.Random(seed)
    spans: list[tracing.SpanPayload] = []
    t = 0
    while len(spans) < count:
        trace = f"{rng.getrandbits(128):032x}"
        t += 1000
        _subtree(
            spans, rng, trace=trace, parent=None, service="svc0", start=t, depth=0, slow=incident
        )
    return spans[:count]


def _subtree(
    spans: list[tracing.SpanPayload],
    rng: random.Random,
    *,
    trace: str,
    parent: str | None,
    service: str,
    start: int,
    depth: int,
    slow: bool,
) -> int:
    span_id = f"{rng.getrandbits(64):016x}"
    row = len(spans)
    own = int(rng.lognormvariate(8, 0.3)) * (5 if slow and service == "svc7" else 1)
    spans.append(
        {
            "trace_id": trace,
            "span_id": span_id,
            "parent_id": parent,
            "service": service,
            "operation": f"{service} op{rng.randrange(3)}",
            "kind": "server",
            "start_us": start,
            "duration_us": 0,
            "status": "error" if rng.random() < 0.01 else "unset",
            "attrs": {"service.version": "1"},
        }
    )
    cursor = start + own // 2
    for _ in range(rng.randrange(1, 4) if depth < 2 else 0):
        child = SERVICES[rng.randrange(1, len(SERVICES))]
        cursor = _subtree(
            spans,
            rng,
            trace=trace,
            parent=span_id,
            service=child,
            start=cursor,
            depth=depth + 1,
            slow=slow,
        )
    end = cursor + own // 2
    spans[row]["duration_us"] = end - start
    return end


# --- the straightforward implementation ----------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mwu(x: list[float], y: list[float]) -> float:
    combined = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    ranks, i = [0.0] * len(combined), 0
    while i < len(combined):
        j = i
        while j + 1 < len(combined) and combined[j + 1][0] == combined[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    r_y = sum(r for r, (_, side) in zip(ranks, combined, strict=True) if side == 1)
    u = r_y - len(y) * (len(y) + 1) / 2
    n1, n2 = len(x), len(y)
    sigma = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12) or 1.0
    return math.erfc(abs((u - n1 * n2 / 2) / sigma) / math.sqrt(2))


def _critical(spans: Sequence[tracing.SpanPayload]) -> dict[int, int]:
    rows = {(s["trace_id"], s["span_id"]): i for i, s in enumerate(spans)}
    children: dict[int, list[int]] = defaultdict(list)
    roots = []
    for i, s in enumerate(spans):
        p = rows.get((s["trace_id"], s["parent_id"] or ""))
        (children[p].append(i) if p is not None else roots.append(i))
    critical: dict[int, int] = defaultdict(int)

    def visit(row: int, upper: int) -> None:
        begin = spans[row]["start_us"]
        cursor = min(begin + spans[row]["duration_us"], upper)
        kids = sorted(
            children[row], key=lambda c: -(spans[c]["start_us"] + spans[c]["duration_us"])
        )
        for c in kids:
            c_end = min(spans[c]["start_us"] + spans[c]["duration_us"], cursor)
            c_start = max(spans[c]["start_us"], begin)
            if c_start >= c_end:
                continue
            critical[row] += cursor - c_end
            visit(c, c_end)
            cursor = c_start
        critical[row] += max(cursor - begin, 0)

    for r in roots:
        visit(r, spans[r]["start_us"] + spans[r]["duration_us"])
    return critical


def naive_compare(
    base: Sequence[tracing.SpanPayload], inc: Sequence[tracing.SpanPayload]
) -> dict[object, Any]:
    out: dict[object, Any] = {}
    groups: dict[str, dict[tuple[str, str], list[float]]] = {
        "b": defaultdict(list),
        "i": defaultdict(list),
    }
    for key, spans in (("b", base), ("i", inc)):
        critical = _critical(spans)
        for i, s in enumerate(spans):
            groups[key][(s["service"], s["operation"])].append(float(s["duration_us"]))
            critical.setdefault(i, 0)
        by_id = {(s["trace_id"], s["span_id"]): s for s in spans}
        edges: dict[tuple[str, str], int] = defaultdict(int)
        for s in spans:
            parent = by_id.get((s["trace_id"], s["parent_id"] or ""))
            if parent and parent["service"] != s["service"]:
                edges[(parent["service"], s["service"])] += 1
        out[key + "_edges"] = edges
    for op in set(groups["b"]) | set(groups["i"]):
        x, y = groups["b"].get(op, []), groups["i"].get(op, [])
        if x and y:
            out[op] = ([_quantile(y, q) for q in (0.5, 0.95, 0.99)], _mwu(x, y))
    return out


# --- measuring ----------------------------------------------------------------------------------


def measure(run: Callable[[], object], *, repeat: int) -> tuple[float, float]:
    """Best wall time of ``repeat`` runs (seconds), then peak traced memory of one run (MiB)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(times), peak / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.traces", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spans", type=int, default=50_000, help="spans in both windows together")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    base = make_spans(args.spans // 2, incident=False, seed=1)
    inc = make_spans(args.spans - args.spans // 2, incident=True, seed=2)
    ours_s, ours_mib = measure(lambda: analysis.compare_windows(base, inc), repeat=args.repeat)
    naive_s, naive_mib = measure(lambda: naive_compare(base, inc), repeat=args.repeat)
    graph_s, graph_mib = measure(lambda: analysis.build_call_graph(inc), repeat=args.repeat)
    result = analysis.compare_windows(base, inc)
    print(
        f"trace analysis, {len(base) + len(inc):,} spans "
        f"({result.baseline_traces:,} + {result.incident_traces:,} traces)"
    )
    print(f"  compare_windows     {ours_s:7.3f} s   peak {ours_mib:7.1f} MiB   (< {TARGET_S:g} s)")
    print(f"  pure-Python naive   {naive_s:7.3f} s   peak {naive_mib:7.1f} MiB   (fewer outputs)")
    ratio = f"{ours_s / naive_s:7.2f}x time      {ours_mib / naive_mib:5.2f}x memory"
    print(f"  ratio ours/naive    {ratio}")
    print(
        f"  build_call_graph    {graph_s:7.3f} s   peak {graph_mib:7.1f} MiB   ({len(inc):,} spans)"
    )
    top = result.suspects[0].component if result.suspects else "none"
    print(f"  top suspect: {top} (expected svc7)")
    return 0 if ours_s < TARGET_S and top == "svc7" else 1


if __name__ == "__main__":
    raise SystemExit(main())
