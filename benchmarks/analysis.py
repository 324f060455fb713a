"""Benchmark: metric analysis over 10,000 series, one injected fault, at four resolutions.

Generates a shop of 200 components as the Prometheus connector hands it to the graph (one
:class:`~diagnose.domain.models.Evidence` record per metric name, raw ``list[SeriesPayload]``:
counters with resets and missed scrapes, gauges, histogram buckets), times
:func:`diagnose.analysis.correlating.correlate` on it (best of ``--repeat`` runs after a
warm-up) and, in the same process, a naive per-series pandas loop doing the equivalent robust
scoring (median/IQR z against the baseline, a two-mean onset search, the median z after it).
Prints wall time, peak traced memory and peak RSS growth for both, with their ratios, for each
case over the same hour: data scraped every 5 s (720 points), every 60 s (60 points), every
5 minutes (12 points), and 60 s data queried at a 5 s step (720 points, each sample repeated
until the next, as Prometheus answers a step finer than the scrape interval)::

    python -m benchmarks.analysis [--series 10000] [--points 720] [--repeat 3] [--case 60s]

Exits 1 only when the analysis does not rank the faulty component first: timings are
reported against the targets, never asserted (these machines are small and noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no stubs in the dev extra

from diagnose.analysis import correlating, discovery
from diagnose.domain import models, ports

Array = npt.NDArray[np.float64]

NAMESPACE = "shop"
START = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
STEP_S = 5.0  # the query step (and scrape interval) of the first case
LOOKBACK_S = 300.0  # Prometheus's lookback delta: how long a sample answers later steps
COMPONENTS = 200
FAULTY = 137  # index of the faulty component among COMPONENTS (scaled when there are fewer)
FAULT_AT = 0.8  # share of the window before the fault
TARGET_S = 1.0
TARGET_MIB = 1024.0
BUCKETS = ("0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")

# One line per metric: name, family, series per pod. Two pods per component, 50 series each.
METRICS: tuple[tuple[str, str, int], ...] = (
    ("container_cpu_usage_seconds_total", "counter", 1),
    ("container_cpu_cfs_throttled_periods_total", "counter", 1),
    ("container_memory_working_set_bytes", "gauge", 1),
    ("kube_pod_container_status_restarts_total", "counter", 1),
    ("up", "gauge", 1),
    ("process_open_fds", "gauge", 1),
    ("go_goroutines", "gauge", 1),
    ("app_queue_pending", "gauge", 3),
    ("app_jobs_processed_total", "counter", 3),
    ("http_server_requests_total", "counter", 4),
    ("http_server_request_duration_seconds_bucket", "histogram", len(BUCKETS)),
)
PODS = 2


@dataclass(frozen=True)
class Case:
    """One resolution: the query step and how often the data were scraped."""

    name: str
    step_s: float
    sample_s: float

    @property
    def label(self) -> str:
        if self.step_s == self.sample_s:
            return f"scraped every {_duration(self.sample_s)}"
        return f"scraped every {_duration(self.sample_s)}, queried at {_duration(self.step_s)}"


CASES = (
    Case("5s", STEP_S, STEP_S),
    Case("60s", 60.0, 60.0),
    Case("5m", 300.0, 300.0),
    Case("60s-at-5s", STEP_S, 60.0),
)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 300 else f"{seconds:g} s"


@dataclass(frozen=True)
class Shop:
    """The benchmark's input: what ``correlate`` is given."""

    trigger: models.Trigger
    window: models.Window
    metrics: list[models.Evidence]
    faulty: str

    @property
    def series(self) -> int:
        return sum(len(e.raw) for e in self.metrics)


def make_shop(
    *, series: int, points: int, seed: int, step_s: float = STEP_S, sample_s: float | None = None
) -> Shop:
    """``series`` series (rounded to whole components) of ``points`` points ``step_s`` apart,
    from data scraped every ``sample_s`` (``step_s`` by default; when coarser, each step holds
    the latest sample, as Prometheus answers). The faulty component's errors, latency and CPU
    step up at FAULT_AT of the window; the first component, its caller, inherits a third of its
    errors two scrapes later, and the pager fires there four minutes (at least two scrapes)
    after that, never after the window's end."""
    sample_s = sample_s or step_s
    per_component = PODS * sum(n for _, _, n in METRICS)
    names = [f"svc{i:03d}" for i in range(max(2, min(COMPONENTS, series // per_component)))]
    rng = np.random.default_rng(seed)
    faulty, entry = names[FAULTY * len(names) // COMPONENTS], names[0]
    span = step_s * (points - 1)
    t = START.timestamp() + step_s * np.arange(points, dtype=np.float64)
    scraped = START.timestamp() + sample_s * np.arange(int(span // sample_s) + 1, dtype=np.float64)
    window = models.Window(START, START + timedelta(seconds=span))
    onset = scraped[0] + FAULT_AT * (scraped[-1] - scraped[0])
    effects = {
        faulty: (scraped >= onset).astype(np.float64),
        entry: 0.3 * (scraped >= onset + 2 * sample_s).astype(np.float64),
    }
    records = []
    for metric, family, _ in METRICS:
        rows = [
            _payload(
                {"__name__": metric, "namespace": NAMESPACE, "pod": pod} | labels, t=scraped, v=v
            )
            for name in names
            for pod in _pods(name, rng)
            for labels, v in _series(
                metric, rng, t=scraped, hit=effects.get(name), pod=pod, step_s=sample_s
            )
        ]
        _scrape_gaps(rows, rng)
        if sample_s != step_s:
            rows = [_at_steps(row, t=t) for row in rows]
        rows.sort(key=lambda s: json.dumps(s["labels"], sort_keys=True))
        records.append(_evidence(metric, family=family, window=window, rows=rows, step_s=step_s))
    after = min(max(240.0, 2 * sample_s), START.timestamp() + span - onset)
    at = START + timedelta(seconds=onset - t[0] + after)
    trigger = models.Trigger("alertmanager", f"{entry}: 5xx ratio above 2%", entry, NAMESPACE, at)
    return Shop(trigger=trigger, window=window, metrics=records, faulty=faulty)


def _at_steps(row: ports.SeriesPayload, *, t: Array) -> ports.SeriesPayload:
    """A series as ``query_range`` returns it at steps ``t``: at each step the latest sample
    no older than the lookback delta (a missed scrape answered by the one before), no point
    where there is none."""
    kept = [(ts, v) for ts, v in zip(row["t"], row["v"], strict=True) if v is not None]
    times = np.array([ts for ts, _ in kept])
    values = [v for _, v in kept]
    latest = np.searchsorted(times, t, side="right") - 1
    fresh = (latest >= 0) & (t - times[np.maximum(latest, 0)] <= LOOKBACK_S)
    steps = t[fresh]
    return {
        "labels": row["labels"],
        "t": steps.tolist(),
        "v": [values[i] for i in latest[fresh].tolist()],
    }


def _pods(component: str, rng: np.random.Generator) -> list[str]:
    alphabet = list("bcdfghjklmnpqrstvwxz2456789")
    return [f"{component}-7d9f8c6b5d-{''.join(rng.choice(alphabet, 5))}" for _ in range(PODS)]


def _series(
    metric: str,
    rng: np.random.Generator,
    *,
    t: Array,
    hit: Array | None,
    pod: str,
    step_s: float,
) -> Iterator[tuple[dict[str, str], Array]]:
    """Label sets (beyond name, namespace and pod) and values of one pod's series, sampled
    every ``step_s``."""
    hit = np.zeros_like(t) if hit is None else hit
    container = {"container": discovery.workload_of_pod(pod)}
    noise = rng.normal(0, 1, t.size)
    if metric == "container_cpu_usage_seconds_total":
        yield container, _counter(rng, rate=0.2 * (1 + 3 * hit) + 0.01 * noise, step_s=step_s)
    elif metric == "container_cpu_cfs_throttled_periods_total":
        yield container, _counter(rng, rate=np.abs(0.5 + 0.1 * noise), step_s=step_s)
    elif metric == "container_memory_working_set_bytes":
        yield container, 2e8 + 2e6 * noise + 1e3 * np.arange(t.size)  # a slow leak everywhere
    elif metric == "kube_pod_container_status_restarts_total":
        yield container, np.full(t.size, float(rng.integers(0, 3)))
    elif metric == "up":
        yield {"job": "kubernetes-pods"}, np.ones(t.size)
    elif metric in ("process_open_fds", "go_goroutines"):
        yield {"job": "kubernetes-pods"}, np.round(rng.uniform(40, 400) + 3 * noise)
    elif metric == "app_queue_pending":
        for queue in ("orders", "emails", "audit"):
            yield {"queue": queue}, rng.poisson(5, t.size).astype(np.float64)
    elif metric == "app_jobs_processed_total":
        for queue in ("orders", "emails", "audit"):
            yield {"queue": queue}, _counter(rng, rate=np.abs(2 + 0.3 * noise), step_s=step_s)
    elif metric == "http_server_requests_total":
        yield from _requests(rng, size=t.size, hit=hit, step_s=step_s)
    else:
        yield from _buckets(rng, hit=hit, service=container["container"], step_s=step_s)


def _requests(
    rng: np.random.Generator, *, size: int, hit: Array, step_s: float
) -> Iterator[tuple[dict[str, str], Array]]:
    for route in ("/api/items", "/api/cart"):
        rate = 20.0 * rng.lognormal(0, 0.1, size)
        errors = rate * (0.002 + 0.25 * hit)
        yield {"route": route, "code": "200"}, _counter(rng, rate=rate - errors, step_s=step_s)
        yield {"route": route, "code": "500"}, _counter(rng, rate=errors, step_s=step_s)


def _buckets(
    rng: np.random.Generator, *, hit: Array, service: str, step_s: float
) -> Iterator[tuple[dict[str, str], Array]]:
    """Cumulative counters per ``le``: log-normal latencies (sigma 0.4), the median 8x slower
    under a full hit."""
    rate = 20.0 * rng.lognormal(0, 0.1, hit.size)
    levels, which = np.unique(0.03 * (1 + 7 * hit), return_inverse=True)
    for le in BUCKETS:
        bound = float(le)
        share = np.array([_normal_cdf((math.log(bound) - math.log(m)) / 0.4) for m in levels])
        cumulative = np.cumsum(rate * share[which] * step_s)
        yield {"service_name": service, "le": le}, cumulative


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _counter(rng: np.random.Generator, *, rate: Array, step_s: float) -> Array:
    """A monotonic counter of ``rate`` per second, reset to zero (a restart) in 3% of series."""
    counter = np.cumsum(np.clip(rate, 0, None) * step_s) + rng.uniform(0, 1e4)
    if rng.random() < 0.03:
        at = int(rng.integers(1, counter.size))
        counter[at:] -= counter[at - 1]
    return counter


def _payload(labels: dict[str, str], *, t: Array, v: Array) -> ports.SeriesPayload:
    """A series as the connector builds it: its own lists of Python floats."""
    return {"labels": labels, "t": t.tolist(), "v": v.tolist()}


def _scrape_gaps(rows: list[ports.SeriesPayload], rng: np.random.Generator) -> None:
    """A missed scrape or three (``None``, as the connector writes NaN) in 1% of the series."""
    for row in rows:
        if rng.random() < 0.01:
            for at in rng.integers(0, len(row["v"]), 3):
                row["v"][int(at)] = None


def _evidence(
    metric: str,
    *,
    family: str,
    window: models.Window,
    rows: list[ports.SeriesPayload],
    step_s: float,
) -> models.Evidence:
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{metric}",namespace="{NAMESPACE}"}}',
        window=window,
        status=models.Status.OK,
        summary=f"{len(rows):,} series, {len(rows[0]['t'])} points each, step {step_s:g}s",
        raw=rows,
    )


# --- the naive implementation ------------------------------------------------------------------


def naive_rank(shop: Shop) -> list[tuple[str, float]]:
    """Series by series in pandas: counters to rates (resets fixed), a median/IQR z against the
    baseline, the best two-mean split as the onset, the median |z| after it; each component
    scores its highest series. Missed scrapes are dropped before the counter differences.
    No aggregation, no histogram quantiles, no error ratios."""
    trigger_at = shop.trigger.at.timestamp()
    first = shop.window.start.timestamp()
    baseline_end = trigger_at - min(900.0, 0.5 * (trigger_at - first))
    best: dict[str, float] = {}
    for record in shop.metrics:
        for series in record.raw:
            labels = series["labels"]
            component = discovery.component_of(labels) or "?"
            counter = discovery.family_of(labels["__name__"], set(labels)) != "gauge"
            score = _naive_score(series, counter=counter, baseline_end=baseline_end)
            best[component] = max(best.get(component, 0.0), score)
    return sorted(best.items(), key=lambda item: -item[1])


def _naive_score(series: ports.SeriesPayload, *, counter: bool, baseline_end: float) -> float:
    values = pd.Series(series["v"], index=series["t"], dtype="float64").dropna()
    if counter:
        increase = values.diff()
        elapsed = pd.Series(values.index, index=values.index).diff()
        values = increase.where(increase >= 0, values) / elapsed
    baseline = values[values.index < baseline_end].dropna()
    if len(baseline) < 6:
        return 0.0
    q25, median, q75 = baseline.quantile([0.25, 0.5, 0.75])
    scale = max((q75 - q25) / 1.349, 0.05 * abs(median), 1e-9)
    z = (values - median) / scale
    prefix = z.clip(-20, 20).fillna(0.0).cumsum().to_numpy()
    n = len(prefix)
    k = np.arange(1, n)
    before, after = prefix[:-1] / k, (prefix[-1] - prefix[:-1]) / (n - k)
    statistic = np.abs(np.sqrt(k * (n - k) / n) * (after - before))[1 : n - 2]
    onset = int(np.argmax(statistic)) + 2
    return float(abs(z.iloc[onset:].median()))


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """Of the best run: wall and CPU seconds. Of all runs: peak traced allocations and peak
    RSS growth (MiB)."""

    seconds: float
    cpu_s: float
    traced_mib: float
    rss_mib: float


def measure(run: Callable[[], object], *, repeat: int, warm_up: bool = True) -> Measured:
    """A warm-up, the best of ``repeat`` timed runs (the RSS high-water mark reset before
    them), then one more run under tracemalloc, which slows it down and is not timed."""
    if warm_up:
        run()
    best = (float("inf"), float("inf"))
    gc.collect()
    start_kib = _reset_peak_rss()
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    rss_mib = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kib) / 1024
    gc.collect()
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Measured(best[0], best[1], peak / 2**20, rss_mib)


def _reset_peak_rss() -> int:
    """Reset the RSS high-water mark to the current RSS (Linux), and return it in KiB. Where
    the kernel does not allow it, the high-water mark as it stands: the growth measured is
    then only what the run added above the process's earlier peak."""
    clear_refs = Path("/proc/self/clear_refs")
    try:
        clear_refs.write_text("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.analysis", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument(
        "--points", type=int, default=720, help="points of the 5 s case: the window's length"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of correlate")
    parser.add_argument("--naive-repeat", type=int, default=1, help="timed runs of the loop")
    parser.add_argument(
        "--case",
        action="append",
        choices=[c.name for c in CASES],
        help="run only this resolution (repeatable; default: all four)",
    )
    args = parser.parse_args(argv)
    span = STEP_S * (args.points - 1)
    wrong = []
    for case in [c for c in CASES if c.name in (args.case or [c.name for c in CASES])]:
        points = int(span // case.step_s) + 1
        if not _run_case(case, series=args.series, points=points, args=args):
            wrong.append(case.name)
    if wrong:
        print(f"the faulty component was not ranked first: {', '.join(wrong)}")
    return 1 if wrong else 0


def _run_case(case: Case, *, series: int, points: int, args: argparse.Namespace) -> bool:
    """Measure one resolution; True when the faulty component is the top hypothesis."""
    print(f"[{case.name}] {case.label}", flush=True)
    began = time.perf_counter()
    shop = make_shop(
        series=series, points=points, seed=7, step_s=case.step_s, sample_s=case.sample_s
    )
    made_s = time.perf_counter() - began

    def analyse() -> correlating.Correlation:
        return correlating.correlate(
            trigger=shop.trigger,
            window=shop.window,
            metrics=shop.metrics,
            cluster=[],
            now=shop.window.end,
        )

    ours = measure(analyse, repeat=args.repeat)
    naive = measure(lambda: naive_rank(shop), repeat=args.naive_repeat, warm_up=False)
    top = [h.component for h in analyse().hypotheses]
    naive_top = [c for c, _ in naive_rank(shop)[:3]]
    _report(shop, made_s=made_s, ours=ours, naive=naive, top=top, naive_top=naive_top)
    print()
    return top[:1] == [shop.faulty]


def _report(
    shop: Shop,
    *,
    made_s: float,
    ours: Measured,
    naive: Measured,
    top: list[str],
    naive_top: list[str],
) -> None:
    points = len(shop.metrics[0].raw[0]["t"])
    print(
        f"metric analysis, {shop.series:,} series x {points} points in "
        f"{len(shop.metrics)} metrics (generated in {made_s:.1f} s)"
    )
    for name, m, note in (
        ("correlate", ours, f"(< {TARGET_S:g} s, < {TARGET_MIB:g} MiB)"),
        ("pandas naive", naive, "(per series; fewer outputs)"),
    ):
        print(
            f"  {name:<16}{m.seconds:8.3f} s (cpu {m.cpu_s:6.3f})   "
            f"traced {m.traced_mib:6.1f} MiB   rss +{m.rss_mib:6.1f} MiB   {note}"
        )
    print(
        f"  ratio ours/naive{ours.seconds / naive.seconds:8.3f}x time "
        f"{ours.traced_mib / naive.traced_mib:6.2f}x traced   "
        f"{ours.rss_mib / max(naive.rss_mib, 1.0):6.2f}x rss"
    )
    met = ours.seconds < TARGET_S and max(ours.traced_mib, ours.rss_mib) < TARGET_MIB
    print(f"  target {'met' if met else 'missed'}: < {TARGET_S:g} s and < {TARGET_MIB:g} MiB")
    if ours.cpu_s < TARGET_S <= ours.seconds:
        print(f"  (CPU time {ours.cpu_s:.3f} s is under the target: the machine was busy)")
    print(f"  top hypotheses: {', '.join(top[:3]) or 'none'} (expected {shop.faulty} first)")
    print(f"  naive's top components: {', '.join(naive_top)}")


if __name__ == "__main__":
    raise SystemExit(main())
