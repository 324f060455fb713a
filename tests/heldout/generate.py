"""Generate the held-out scenarios (scenario format 1): incidents in other namespaces, other
topologies and other metric vocabularies than the bundled suite, to check that the analysis
generalises beyond the names it was tuned on.

    python tests/heldout/generate.py [--only NAME] [--check] [--names]

The cluster model (workloads, rollouts, ConfigMap edits, crash loops, daily traffic, noise,
missed scrapes, cAdvisor and kube-state-metrics) is the bundled generator's; what differs is
how the services report themselves (and, beyond rollouts, replica changes: an autoscaler's
scale-out, a manual scale-in):

- ``istio``: Envoy sidecars' ``istio_requests_total`` and ``istio_request_duration_milliseconds``
  (milliseconds), per pod, reported by the destination (and, for requests, by the source);
- ``otel``: OpenTelemetry semantic conventions as Prometheus stores OTLP, resource attributes
  in ``target_info`` and ``job="<service.namespace>/<service.name>"`` on every series (the
  instrumented callers' ``http_client_request_duration_seconds`` too);
- ``grpc``: go-grpc-prometheus' ``grpc_server_handled_total`` and
  ``grpc_server_handling_seconds`` scraped through a ServiceMonitor;
- ``micrometer``: Spring Boot's ``http_server_requests_seconds`` and ``jvm_memory_used_bytes``;
- ``promclient``: the Prometheus client libraries' ``http_requests_total`` and
  ``http_request_duration_seconds``, with ingress-nginx's controller metrics in front.

Everything is drawn from one numpy generator seeded by the scenario's name: a run writes
identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scenarios"))

import generate as base  # noqa: E402  (the bundled generator, imported from its folder)

MIB = base.MIB
STEP_S = base.STEP_S
utc = base.utc
WINDOW = timedelta(hours=2)

ISTIO_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 5000)
DEFAULT_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ISTIO_DEFAULT_MS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)  # Istio's default buckets (milliseconds)
BARE_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
OTEL_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass(frozen=True)
class Family:
    """One metric family of another exporter: (sample name, labels, values per step) rows,
    all scraped from one target."""

    name: str
    kind: str
    help: str
    target: str
    rows: tuple[tuple[str, dict[str, str], np.ndarray], ...]
    fmt: str = "g"


class World(base.World):
    """The bundled world in another namespace, whose services report in one ``style``."""

    def __init__(
        self,
        *,
        name: str,
        end: datetime,
        shop: base.Shop,
        namespace: str,
        style: str,
        window: timedelta = WINDOW,
        scrape: dict[str, float] | None = None,
    ) -> None:
        base.NAMESPACE = namespace  # the bundled generator reads it when it writes
        self.namespace = namespace
        self.style = style
        # seconds between scrapes by kind of target (the part of its name before "/", else
        # "default"); None: every target on the simulation grid, no jitter (the first rounds)
        self.scrape = scrape
        self.ingress: dict[str, str] = {}  # entry service → ingress name (ingress-nginx)
        self.scaled: dict[str, tuple[int, int]] = {}  # workload → (first step, replicas before)
        self.buckets_ms = ISTIO_MS  # the mesh's latency buckets
        # very slow requests per step, by service (Istio) or by route key (``bare``)
        self.tails: dict[str, np.ndarray] = {}
        self.env: dict[str, list[dict[str, Any]]] = {}  # workload → extra container env
        self.env_from: dict[str, list[dict[str, Any]]] = {}  # workload → container envFrom
        self.mounts: dict[str, str] = {}  # workload → the ConfigMap its volume mounts
        self.families: list[Family] = []  # other exporters' series (postgres_exporter…)
        self.template_env: dict[str, list[dict[str, Any]]] = {}  # revision uid → extra env
        self.template_notes: dict[str, dict[str, str]] = {}  # revision uid → annotations
        self.postgres: tuple[str, dict[str, str]] | None = None  # (database, files)
        self.part_of: dict[str, str] = {}  # shared ConfigMap → what it configures
        super().__init__(name=name, end=end, shop=shop, window=window)

    def interval(self, target: str) -> float:
        """Seconds between two scrapes of ``target``."""
        assert self.scrape is not None
        kind = target.split("/", 1)[0]
        return self.scrape.get(kind, self.scrape["default"])

    def _revision(
        self, name: str, *, number: int, when: datetime, tag: str, cpu: str, mem: str
    ) -> base.Revision:
        rev = super()._revision(name, number=number, when=when, tag=tag, cpu=cpu, mem=mem)
        rev.image = f"registry.internal/{self.namespace}/{name}:{tag}"
        return rev

    def scale_out(self, name: str, at: datetime, *, to: int, hpa: str) -> None:
        """A HorizontalPodAutoscaler raises the replicas of a workload (same revision): new
        pods start, no new ReplicaSet, the Deployment's ``spec.replicas`` changes."""
        w = self.workloads[name]
        rev = w.current
        before = w.replicas
        ref = {
            "kind": "HorizontalPodAutoscaler",
            "name": hpa,
            "uid": self.uid(),
            "apiVersion": "autoscaling/v2",
        }
        self.event(
            ref,
            "SuccessfulRescale",
            f"New size: {to}; reason: cpu resource utilization (percentage of request) "
            "above target",
            at,
            source="horizontal-pod-autoscaler",
        )
        dep = {"kind": "Deployment", "name": name, "uid": w.uid, "apiVersion": "apps/v1"}
        self.event(
            dep,
            "ScalingReplicaSet",
            f"Scaled up replica set {name}-{rev.hash} to {to} from {before}",
            at,
            source="deployment-controller",
        )
        for _ in range(to - before):
            created = at + timedelta(seconds=1)
            started = created + timedelta(seconds=int(self.rng.integers(5, 9)))
            ready = started + timedelta(seconds=int(self.rng.integers(8, 14)))
            pod = self._new_pod(
                w, rev, created=created, first=self.step(started) + 1, ready=self.step(ready) + 1
            )
            self.pod_start_events(pod, rev, created, started)
            self.event(
                {
                    "kind": "ReplicaSet",
                    "name": f"{name}-{rev.hash}",
                    "uid": rev.uid,
                    "apiVersion": "apps/v1",
                },
                "SuccessfulCreate",
                f"Created pod: {pod.name}",
                created,
                source="replicaset-controller",
            )
        w.replicas = to
        self.scaled[name] = (self.step(at) + 1, before)

    def add_configmap(self, name: str, data: dict[str, str], *, part_of: str) -> None:
        """A ConfigMap that belongs to no one workload (its name prefixes none of theirs)."""
        self.configmaps[name] = base.ConfigMap(
            name=name,
            data=dict(data),
            applied_data=dict(data),
            created=self.start - timedelta(days=int(self.rng.integers(20, 200))),
            uid=self.uid(),
        )
        self.part_of[name] = part_of

    def leak(self, pod: base.Pod, *, full_at: datetime, grow_s: float) -> None:
        """A memory leak: the working set climbs from half the limit to the limit by
        ``full_at``, then the container is OOM-killed, restarts and climbs again in
        ``grow_s`` (kubelet backs off 10 s, 20 s… between restarts)."""
        mem = np.full(self.n, np.nan)
        kill = min(self.step(full_at), self.n)
        mem[pod.first : kill] = pod.mem_limit * np.linspace(0.5, 0.995, kill - pod.first)
        start, backoff, kills = kill, 10, []
        while start < self.n:
            kills.append(start)
            restart = start + max(backoff // STEP_S, 1)
            pod.down.append((start, min(restart, self.n)))
            if restart >= self.n:
                break
            pod.restarts.append(restart)
            length = max(int(grow_s * float(self.rng.uniform(0.8, 1.2))) // STEP_S, 2)
            end = min(restart + length, self.n)
            mem[restart:end] = pod.mem_limit * np.linspace(0.45, 0.995, length)[: end - restart]
            start, backoff = restart + length, min(backoff * 2, 300)
        pod.mem_override = mem
        self._crash_records(pod, kills, backoff)

    def scale_in(self, name: str, at: datetime, *, to: int) -> None:
        """``kubectl scale`` lowers the replicas of a workload (same revision): the newest pods
        are deleted, the Deployment's ``spec.replicas`` changes."""
        w = self.workloads[name]
        rev = w.current
        before = w.replicas
        dep = {"kind": "Deployment", "name": name, "uid": w.uid, "apiVersion": "apps/v1"}
        self.event(
            dep,
            "ScalingReplicaSet",
            f"Scaled down replica set {name}-{rev.hash} to {to} from {before}",
            at,
            source="deployment-controller",
        )
        gone = at + timedelta(seconds=1)
        for pod in [p for p in self.live_pods(name) if p.last == self.n][to:]:
            self.event(
                {
                    "kind": "ReplicaSet",
                    "name": f"{name}-{rev.hash}",
                    "uid": rev.uid,
                    "apiVersion": "apps/v1",
                },
                "SuccessfulDelete",
                f"Deleted pod: {pod.name}",
                gone,
                source="replicaset-controller",
            )
            self.event(
                self.pod_ref(pod, container=True),
                "Killing",
                f"Stopping container {name}",
                gone,
                source="kubelet",
                host=pod.node,
            )
            pod.last = self.step(gone) + 2
            pod.ready = min(pod.ready, pod.last)
        w.replicas = to
        w.applied = at
        w.manager = "kubectl"
        self.scaled[name] = (self.step(at) + 1, before)


# --- writing metrics --------------------------------------------------------------------------


CUMULATIVE = ("_total", "_count", "_sum", "_bucket")


class Writer(base.MetricsWriter):
    """Series computed on the simulation grid (``STEP_S``), written as each target was scraped:
    at its own interval and phase, with jittered timestamps and a few missed scrapes. Counters
    are read between two grid steps by linear interpolation, gauges hold their last value."""

    w: World

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.plans: dict[str, tuple[np.ndarray, list[str]]] = {}

    def plan(self, target: str) -> tuple[np.ndarray, list[str]]:
        """When ``target`` was scraped: grid positions (fractional steps) and timestamps."""
        if target not in self.plans:
            drawn = self.w.scrape is not None
            self.plans[target] = self._drawn(target) if drawn else self._legacy(target)
        return self.plans[target]

    def _legacy(self, target: str) -> tuple[np.ndarray, list[str]]:
        gaps = self.w.gaps[target]
        kept = [i for i in range(self.w.n) if i not in gaps]
        return np.array(kept, dtype=float), [self.times[i] for i in kept]

    def _drawn(self, target: str) -> tuple[np.ndarray, list[str]]:
        """Prometheus spreads targets over the interval (a fixed phase per target); each scrape
        starts a few milliseconds off its slot, now and then a second or two late (a slow
        target); 2-4 times one or two scrapes in a row are missed."""
        every = self.w.interval(target)
        span = (self.w.n - 1) * STEP_S
        phase = float(self.rng.uniform(0, every))
        slots = np.arange(int((span - phase) // every) + 1)
        jitter = self.rng.normal(0, 0.004 * min(every, 60.0), slots.size)
        late = self.rng.random(slots.size) < 0.02
        jitter = jitter + late * self.rng.uniform(0.5, 2.5, slots.size)
        offsets = np.clip(phase + slots * every + jitter, 0, span)
        missed: set[int] = set()
        runs = int(self.rng.integers(2, 5))
        for begin in self.rng.integers(3, max(slots.size - 3, 4), size=runs):
            missed.update(range(int(begin), int(begin) + int(self.rng.integers(1, 3))))
        kept = np.array([k for k in range(slots.size) if k not in missed])
        stamps = [f"{self.w.t0 + offsets[k]:.3f}" for k in kept]
        return offsets[kept] / STEP_S, stamps

    def sample(self, values: np.ndarray, at: np.ndarray, *, cumulative: bool) -> np.ndarray:
        """``values`` (per grid step) read at fractional steps ``at``: NaN where the series did
        not exist at the step before."""
        lo = np.minimum(np.floor(at).astype(int), self.w.n - 1)
        held = values[lo]
        if not cumulative:
            return held
        hi = np.minimum(lo + 1, self.w.n - 1)
        nxt = values[hi]
        rising = ~np.isnan(nxt) & (nxt >= held)
        return np.where(rising, held + (at - lo) * (nxt - held), held)

    def series(
        self, name: str, labels: dict[str, str], values: np.ndarray, *, fmt: str, target: str
    ) -> None:
        """One series; NaN means no sample (the series did not exist, the container was down)."""
        at, stamps = self.plan(target)
        head = name + base._labels(labels) + " "
        values = np.asarray(values, dtype=float)
        read = self.sample(values, at, cumulative=name.endswith(CUMULATIVE))
        self.lines += [
            f"{head}{v:{fmt}} {ts}" for v, ts in zip(read, stamps, strict=True) if not math.isnan(v)
        ]

    def pod_shares(self, service: str) -> list[tuple[base.Pod, np.ndarray, np.ndarray]]:
        """Each pod of a service with its share of the traffic and where its series exist."""
        pods = self.w.live_pods(service)
        ready = np.array([self.w.ready_mask(p) for p in pods], dtype=float)
        share = ready / np.maximum(ready.sum(axis=0), 1)
        steps = np.arange(self.w.n)
        return [(p, share[k], (steps >= p.first) & (steps < p.last)) for k, p in enumerate(pods)]

    def counter(
        self,
        name: str,
        labels: dict[str, str],
        rate: np.ndarray,
        *,
        target: str,
        exists: np.ndarray | None = None,
        offset: float = 0.0,
    ) -> None:
        """A request counter: absent until the first request, NaN where the target is gone."""
        counts = self.rng.poisson(np.maximum(rate, 0) * STEP_S).astype(float)
        total = np.cumsum(counts)
        if total[-1] == 0:
            return
        values = np.where(total > 0, total + offset, np.nan) if offset == 0 else total + offset
        if exists is not None:
            values = np.where(exists, values, np.nan)
        self.series(name, labels, values, fmt=".0f", target=target)

    def hist(
        self,
        name: str,
        labels: dict[str, str],
        *,
        rate: np.ndarray,
        median: np.ndarray,
        sigma: np.ndarray,
        target: str,
        bounds: tuple[float, ...],
        scale: float = 1.0,
        exists: np.ndarray | None = None,
        tail: np.ndarray | None = None,
    ) -> None:
        """Cumulative buckets (``bounds`` in the metric's unit, ``scale`` units per second);
        ``tail``: very slow requests per step (10-30 s: a client that holds its connection)."""
        n = self.rng.poisson(np.maximum(rate, 0) * STEP_S)
        if exists is not None:
            n = np.where(exists, n, 0)
        slow = np.zeros(self.w.n) if tail is None else tail
        z = (np.log(np.array(bounds) / scale)[None, :] - np.log(median)[:, None]) / sigma[:, None]
        cdf = 0.5 * (1 + base._erf(z / math.sqrt(2)))
        ones = np.ones((self.w.n, 1))
        probs = np.clip(np.diff(np.concatenate([0 * ones, cdf, ones], 1)), 0, None)
        probs /= probs.sum(axis=1, keepdims=True)
        counts = self.rng.multinomial(n, probs)
        total = np.cumsum(n * median * np.exp(sigma**2 / 2) * scale)
        if tail is not None:
            seconds = self.rng.uniform(10.5, 29.0, self.w.n)
            column = np.searchsorted(np.array(bounds) / scale, seconds)
            counts[np.arange(self.w.n), column] += slow.astype(int)
            total = total + np.cumsum(slow * seconds * scale)
            n = n + slow.astype(int)
        buckets = np.cumsum(np.cumsum(counts, axis=1), axis=0)
        cum = np.cumsum(n)
        if cum[-1] == 0:
            return
        les = [f"{b:g}" for b in bounds] + ["+Inf"]
        heads = [f"{name}_bucket{base._labels({**labels, 'le': le})} " for le in les]
        count_head = f"{name}_count{base._labels(labels)} "
        sum_head = f"{name}_sum{base._labels(labels)} "
        at, stamps = self.plan(target)
        step = np.minimum(np.floor(at).astype(int), self.w.n - 1)
        keep = cum[step] > 0
        if exists is not None:
            keep &= exists[step]
        read = np.stack(
            [self.sample(b.astype(float), at, cumulative=True) for b in buckets.T], axis=1
        )
        counts_at = self.sample(cum.astype(float), at, cumulative=True)
        totals_at = self.sample(total, at, cumulative=True)
        for k in np.flatnonzero(keep):
            ts = stamps[k]
            self.lines += [f"{h}{int(b)} {ts}" for h, b in zip(heads, read[k], strict=True)]
            self.lines += [
                f"{count_head}{int(counts_at[k])} {ts}",
                f"{sum_head}{totals_at[k]:.4f} {ts}",
            ]

    def served(self) -> list[tuple[base.Route, list[tuple[str, np.ndarray]]]]:
        """Every in-cluster route with the rate each caller sends it (``""``: from outside)."""
        w = self.w
        out = []
        for r in w.routes.values():
            if r.external:
                continue
            parts: list[tuple[str, np.ndarray]] = []
            rest = r.rate.copy()
            for c in w.routes.values():
                for key, factor in c.calls:
                    if key == r.key:
                        part = c.rate * c.served * factor
                        parts.append((c.service, part))
                        rest = rest - part
            if r.entry_rate:
                parts.append(("", np.maximum(rest, 0)))
            out.append((r, parts))
        return out

    def kube(self, pod: base.Pod) -> dict[str, str]:
        """The labels a ServiceMonitor scrape adds."""
        return {
            "container": pod.workload,
            "endpoint": "metrics",
            "instance": f"{pod.ip}:8080",
            "job": pod.workload,
            "namespace": self.w.namespace,
            "pod": pod.name,
            "service": pod.workload,
        }

    # vocabularies ----------------------------------------------------------------------------

    def istio(self) -> None:
        ns = self.w.namespace
        # the destination's sidecar sees no route: one series per (source, pod, code)
        edges: dict[tuple[str, str], list[tuple[base.Route, np.ndarray]]] = {}
        for r, parts in self.served():
            for source, rate in parts:
                edges.setdefault((r.service, source), []).append((r, rate))
        requests, durations = [], []
        for (service, source), rows in edges.items():
            rate = np.sum([x for _, x in rows], axis=0)
            weight = [x / np.maximum(rate, 1e-9) for _, x in rows]
            served = np.sum([w * r.served for (r, _), w in zip(rows, weight, strict=True)], axis=0)
            err = np.sum([w * r.server_err for (r, _), w in zip(rows, weight, strict=True)], axis=0)
            log_median = [w * np.log(r.median) for (r, _), w in zip(rows, weight, strict=True)]
            median = np.exp(np.sum(log_median, axis=0))
            sigma = np.max([r.sigma + r.sigma_add for r, _ in rows], axis=0)
            code = rows[0][0].error_status
            first = self.w.live_pods(service)[0] if source == self._busiest(service) else None
            for pod, share, exists in self.pod_shares(service):
                labels = {
                    "app": service,
                    "connection_security_policy": "mutual_tls",
                    "destination_service": f"{service}.{ns}.svc.cluster.local",
                    "destination_service_name": service,
                    "destination_workload": service,
                    "destination_workload_namespace": ns,
                    "namespace": ns,
                    "pod": pod.name,
                    "reporter": "destination",
                    "request_protocol": "http",
                    "source_workload": source or "istio-ingressgateway",
                    "source_workload_namespace": ns if source else "istio-system",
                }
                handled = rate * served * share
                for status, ratio, slow in (("200", 1 - err, 1.0), (code, err, 0.6)):
                    code_labels = {**labels, "response_code": status}
                    requests.append((code_labels, handled * ratio, service, exists))
                    tail = self.w.tails.get(service) if status == "200" and pod is first else None
                    durations.append(
                        (code_labels, handled * ratio, median * slow, sigma, service, exists, tail)
                    )
            if not source:
                continue
            # the caller's sidecar reports the same requests (reporter="source", its own pod)
            seen_err = 1 - (1 - err) * served
            for pod, share, exists in self.pod_shares(source):
                labels = {
                    "app": source,
                    "destination_service_name": service,
                    "destination_workload": service,
                    "destination_workload_namespace": ns,
                    "namespace": ns,
                    "pod": pod.name,
                    "reporter": "source",
                    "request_protocol": "http",
                    "source_workload": source,
                    "source_workload_namespace": ns,
                }
                for status, ratio in (("200", 1 - seen_err), (code, seen_err)):
                    requests.append(
                        ({**labels, "response_code": status}, rate * share * ratio, source, exists)
                    )
        self.family("istio_requests", "counter", "Total requests.")
        for labels, rate, service, exists in requests:
            self.counter(
                "istio_requests_total", labels, rate, target=f"otel/{service}", exists=exists
            )
        self.family("istio_request_duration_milliseconds", "histogram", "Request duration.")
        for labels, rate, median, sigma, service, exists, tail in durations:
            self.hist(
                "istio_request_duration_milliseconds",
                labels,
                rate=rate,
                median=median,
                sigma=sigma,
                target=f"otel/{service}",
                bounds=self.w.buckets_ms,
                scale=1000.0,
                exists=exists,
                tail=tail,
            )

    def _busiest(self, service: str) -> str:
        """The source that sends ``service`` the most requests ("" for outside the mesh)."""
        parts = [
            (float(np.sum(x)), s) for r, p in self.served() if r.service == service for s, x in p
        ]
        return max(parts)[1] if parts else ""

    def linkerd(self) -> None:
        """Linkerd proxies: inbound on the callee's pod, outbound (``dst_deployment``) on the
        caller's, latency in milliseconds, per pod, no route."""
        ns = self.w.namespace
        common = {"control_plane_ns": "linkerd", "job": "linkerd-proxy", "namespace": ns}
        rows = []  # (labels, rate, median, sigma, service, exists)
        for r, parts in self.served():
            sigma = r.sigma + r.sigma_add
            for pod, share, exists in self.pod_shares(r.service):
                base_labels = {**common, "deployment": r.service, "pod": pod.name}
                rate = sum(x for _, x in parts) * r.served * share
                for code, ratio, cls in (
                    ("200", 1 - r.server_err, "success"),
                    ("500", r.server_err, "failure"),
                ):
                    labels = {
                        **base_labels,
                        "authority": f"{r.service}.{ns}.svc.cluster.local:8080",
                        "classification": cls,
                        "direction": "inbound",
                        "status_code": code,
                    }
                    rows.append((labels, rate * ratio, r.median, sigma, r.service, exists))
            for source, rate in parts:
                if not source:
                    continue
                for pod, share, exists in self.pod_shares(source):
                    for code, ratio, cls in (
                        ("200", 1 - r.err, "success"),
                        ("500", r.err, "failure"),
                    ):
                        labels = {
                            **common,
                            "authority": f"{r.service}.{ns}.svc.cluster.local:8080",
                            "classification": cls,
                            "deployment": source,
                            "direction": "outbound",
                            "dst_deployment": r.service,
                            "dst_namespace": ns,
                            "pod": pod.name,
                            "status_code": code,
                        }
                        median = r.median + 0.0008
                        rows.append((labels, rate * share * ratio, median, sigma, source, exists))
        self.family("response", "counter", "Total count of HTTP responses.")
        for labels, rate, _, _, service, exists in rows:
            self.counter("response_total", labels, rate, target=f"otel/{service}", exists=exists)
        self.family(
            "response_latency_ms",
            "histogram",
            "Elapsed times between a request's "
            "headers being received and its response stream completing",
        )
        for labels, rate, median, sigma, service, exists in rows:
            self.hist(
                "response_latency_ms",
                labels,
                rate=rate,
                median=median,
                sigma=sigma,
                target=f"otel/{service}",
                bounds=ISTIO_MS,
                scale=1000.0,
                exists=exists,
            )

    def otel(self) -> None:
        """OTLP stored by Prometheus: no service_name on the series, only job and instance."""
        ns = self.w.namespace
        self.family("target", "info", "Target metadata")
        for name in self.w.workloads:
            for pod in self.w.live_pods(name):
                mask = (np.arange(self.w.n) >= pod.first) & (np.arange(self.w.n) < pod.last)
                labels = {
                    "instance": pod.uid,
                    "job": f"{ns}/{name}",
                    "k8s_deployment_name": name,
                    "k8s_namespace_name": ns,
                    "k8s_pod_name": pod.name,
                    "service_name": name,
                    "service_namespace": ns,
                    "service_instance_id": pod.uid,
                }
                self.series(
                    "target_info",
                    labels,
                    np.where(mask, 1.0, np.nan),
                    fmt=".0f",
                    target=f"otel/{name}",
                )
        self.family(
            "http_server_request_duration_seconds", "histogram", "Duration of HTTP server requests."
        )
        for r, _ in self.served():
            sigma = r.sigma + r.sigma_add
            for pod, share, exists in self.pod_shares(r.service):
                labels = {
                    "http_request_method": r.method,
                    "http_route": r.route,
                    "instance": pod.uid,
                    "job": f"{ns}/{r.service}",
                }
                for code, ratio, slow in (
                    ("200", 1 - r.server_err, 1.0),
                    (r.error_status, r.server_err, 0.6),
                ):
                    self.hist(
                        "http_server_request_duration_seconds",
                        {**labels, "http_response_status_code": code},
                        rate=r.rate * r.served * share * ratio,
                        median=r.median * slow,
                        sigma=sigma,
                        target=f"otel/{r.service}",
                        bounds=OTEL_S,
                        exists=exists,
                    )

    def otel_clients(self) -> None:
        """OTel HTTP client histograms (``server_address``) of the shop's instrumented callers,
        on the OTLP job path like the server side."""
        ns = self.w.namespace
        edges = self.w.shop.client_edges
        if not edges:
            return
        self.family(
            "http_client_request_duration_seconds", "histogram", "Duration of HTTP client requests."
        )
        for caller, address, callee_key in edges:
            callee = self.w.routes[callee_key]
            sigma = callee.sigma + callee.sigma_add
            for pod, share, exists in self.pod_shares(caller):
                labels = {
                    "http_request_method": callee.method,
                    "instance": pod.uid,
                    "job": f"{ns}/{caller}",
                    "server_address": address,
                    "server_port": "443" if callee.external else "8080",
                }
                for code, ratio, slow in (
                    ("200", 1 - callee.server_err, 1.0),
                    (callee.error_status, callee.server_err, 0.8),
                ):
                    self.hist(
                        "http_client_request_duration_seconds",
                        {**labels, "http_response_status_code": code},
                        rate=callee.rate * callee.served * share * ratio,
                        median=callee.median * slow + 0.002,
                        sigma=sigma,
                        target=f"otel/{caller}",
                        bounds=OTEL_S,
                        exists=exists,
                    )

    def kube_state(self) -> None:
        """kube-state-metrics, with ``spec.replicas`` stepping where an autoscaler scaled."""
        super().kube_state()
        for name, (step, before) in self.w.scaled.items():
            labels = {"namespace": self.w.namespace, "deployment": name}
            head = f"kube_deployment_spec_replicas{base._labels(labels)} "
            for k, line in enumerate(self.lines):
                if line.startswith(head):
                    ts = line.rsplit(" ", 1)[1]
                    if (float(ts) - self.w.t0) // STEP_S < step:
                        self.lines[k] = f"{head}{before} {ts}"

    def grpc(self) -> None:
        requests, durations = [], []
        for r, _ in self.served():
            grpc_service, method = r.route.strip("/").split("/")
            sigma = r.sigma + r.sigma_add
            for pod, share, exists in self.pod_shares(r.service):
                labels = {
                    **self.kube(pod),
                    "grpc_method": method,
                    "grpc_service": grpc_service,
                    "grpc_type": "unary",
                }
                rate = r.rate * r.served * share
                for code, ratio in (("OK", 1 - r.server_err), (r.error_status, r.server_err)):
                    requests.append(({**labels, "grpc_code": code}, rate * ratio, r, exists))
                durations.append((labels, rate, r, sigma, exists))
        self.family("grpc_server_handled", "counter", "Total number of RPCs completed.")
        for labels, rate, r, exists in requests:
            self.counter(
                "grpc_server_handled_total", labels, rate, target=f"otel/{r.service}", exists=exists
            )
        self.family("grpc_server_handling_seconds", "histogram", "Histogram of response latency.")
        for labels, rate, r, sigma, exists in durations:
            self.hist(
                "grpc_server_handling_seconds",
                labels,
                rate=rate,
                median=r.median,
                sigma=sigma,
                target=f"otel/{r.service}",
                bounds=DEFAULT_S,
                exists=exists,
            )

    def micrometer(self) -> None:
        counts, sums = [], []
        for r, _ in self.served():
            for pod, share, exists in self.pod_shares(r.service):
                for status, ratio, outcome in (
                    ("200", 1 - r.server_err, "SUCCESS"),
                    (r.error_status, r.server_err, "SERVER_ERROR"),
                ):
                    labels = {
                        **self.kube(pod),
                        "application": r.service,
                        "exception": "None",
                        "method": r.method,
                        "outcome": outcome,
                        "status": status,
                        "uri": r.route,
                    }
                    rate = r.rate * r.served * share * ratio
                    n = self.rng.poisson(np.maximum(rate, 0) * STEP_S).astype(float)
                    total = np.cumsum(n)
                    if total[-1] == 0:
                        continue
                    seconds = np.cumsum(n * r.median * 1.15)
                    seen = (total > 0) & exists
                    counts.append((labels, np.where(seen, total, np.nan), r.service))
                    sums.append((labels, np.where(seen, seconds, np.nan), r.service))
        self.family("http_server_requests_seconds", "summary", "Duration of HTTP server requests")
        for (labels, total, service), (_, seconds, _) in zip(counts, sums, strict=True):
            # one series at a time, _count and _sum of each timestamp together
            at, stamps = self.plan(f"otel/{service}")
            head = base._labels(labels)
            total_at = self.sample(total, at, cumulative=True)
            seconds_at = self.sample(seconds, at, cumulative=True)
            for k, ts in enumerate(stamps):
                if math.isnan(total_at[k]):
                    continue
                self.lines.append(
                    f"http_server_requests_seconds_count{head} {total_at[k]:.0f} {ts}"
                )
                self.lines.append(
                    f"http_server_requests_seconds_sum{head} {seconds_at[k]:.4f} {ts}"
                )
        self.family("jvm_memory_used_bytes", "gauge", "The amount of used memory")
        for name in self.w.workloads:
            for pod in self.w.live_pods(name):
                running = self.w.running_mask(pod)
                if pod.mem_override is not None:
                    heap = pod.mem_override * 0.8
                else:
                    heap = self.w.workloads[name].mem_base * 0.6 * self.w.ar_noise(0.01)
                for area, ident, values in (
                    ("heap", "G1 Old Gen", heap * 0.7),
                    ("heap", "G1 Eden Space", heap * 0.3 * self.w.ar_noise(0.08, keep=0.5)),
                    ("nonheap", "Metaspace", np.full(self.w.n, 92.0 * MIB)),
                ):
                    labels = {
                        **self.kube(pod),
                        "application": name,
                        "area": area,
                        "id": ident,
                    }
                    self.series(
                        "jvm_memory_used_bytes",
                        labels,
                        np.where(running, values, np.nan),
                        fmt=".0f",
                        target=f"otel/{name}",
                    )

    def promclient(self) -> None:
        rows = []
        for r, _ in self.served():
            for pod, share, exists in self.pod_shares(r.service):
                rows.append((r, pod, share, exists))
        self.family("http_requests", "counter", "Total HTTP requests by status code.")
        for r, pod, share, exists in rows:
            labels = {**self.kube(pod), "handler": r.route, "method": r.method.lower()}
            for code, ratio in (("200", 1 - r.server_err), (r.error_status, r.server_err)):
                self.counter(
                    "http_requests_total",
                    {**labels, "code": code},
                    r.rate * r.served * share * ratio,
                    target=f"otel/{r.service}",
                    exists=exists,
                )
        self.family("http_request_duration_seconds", "histogram", "HTTP request latencies.")
        for r, pod, share, exists in rows:
            labels = {**self.kube(pod), "handler": r.route, "method": r.method.lower()}
            self.hist(
                "http_request_duration_seconds",
                labels,
                rate=r.rate * r.served * share,
                median=r.median,
                sigma=r.sigma + r.sigma_add,
                target=f"otel/{r.service}",
                bounds=DEFAULT_S,
                exists=exists,
            )

    def exporters(self) -> None:
        """Other exporters' families (postgres_exporter…), each from its own target."""
        for f in self.w.families:
            self.family(f.name, f.kind, f.help)
            for sample, labels, values in f.rows:
                self.series(sample, labels, values, fmt=f.fmt, target=f.target)

    def summary(self) -> None:
        """client_golang: a Summary per handler (quantiles over the last 10 minutes, as its
        default MaxAge keeps them; no buckets) and a request counter by code."""
        keep = 600 // STEP_S
        self.family("api_http_requests", "counter", "HTTP requests by handler and code.")
        rows = [(r, *x) for r, _ in self.served() for x in self.pod_shares(r.service)]
        for r, pod, share, exists in rows:
            labels = {**self.kube(pod), "handler": r.route, "method": r.method}
            for code, ratio in (("200", 1 - r.server_err), (r.error_status, r.server_err)):
                self.counter(
                    "api_http_requests_total",
                    {**labels, "code": code},
                    r.rate * r.served * share * ratio,
                    target=f"otel/{r.service}",
                    exists=exists,
                )
        self.family(
            "api_http_request_duration_seconds", "summary", "HTTP request latency by handler."
        )
        for r, pod, share, exists in rows:
            labels = {**self.kube(pod), "handler": r.route, "method": r.method}
            rate = r.rate * r.served * share
            n = self.rng.poisson(np.maximum(rate, 0) * STEP_S).astype(float)
            n = np.where(exists, n, 0)
            sigma = r.sigma + r.sigma_add
            seen = _trailing(n, keep)
            weight = np.maximum(seen, 1e-9)
            mu = _trailing(n * np.log(r.median), keep) / weight
            spread = _trailing(n * np.log(r.median) ** 2, keep) / weight - mu**2
            sd = np.sqrt(_trailing(n * sigma**2, keep) / weight + np.maximum(spread, 0))
            total = np.cumsum(n)
            alive = exists & (total > 0)
            for q, z in (("0.5", 0.0), ("0.9", 1.2816), ("0.99", 2.3263)):
                noise = self.rng.normal(0, 1, self.w.n) * sd * 1.5 / np.sqrt(np.maximum(seen, 1))
                value = np.exp(mu + z * sd + noise)
                value = np.where(alive & (seen > 0), value, np.nan)
                self.series(
                    "api_http_request_duration_seconds",
                    {**labels, "quantile": q},
                    value,
                    fmt=".6f",
                    target=f"otel/{r.service}",
                )
            seconds = np.cumsum(n * r.median * np.exp(sigma**2 / 2))
            for suffix, values, fmt in (("_sum", seconds, ".4f"), ("_count", total, ".0f")):
                self.series(
                    f"api_http_request_duration_seconds{suffix}",
                    labels,
                    np.where(alive, values, np.nan),
                    fmt=fmt,
                    target=f"otel/{r.service}",
                )

    def bare(self) -> None:
        """A latency histogram per endpoint and nothing else: no status code, no error
        counter (a hand-rolled middleware that observes every request the same way)."""
        self.family("request_latency_seconds", "histogram", "Request latency.")
        for r, _ in self.served():
            first = self.w.live_pods(r.service)[0]
            for pod, share, exists in self.pod_shares(r.service):
                self.hist(
                    "request_latency_seconds",
                    {**self.kube(pod), "endpoint": r.route, "method": r.method},
                    rate=r.rate * r.served * share,
                    median=r.median,
                    sigma=r.sigma + r.sigma_add,
                    target=f"otel/{r.service}",
                    bounds=BARE_S,
                    exists=exists,
                    tail=self.w.tails.get(r.key) if pod is first else None,
                )

    def nginx(self) -> None:
        """ingress-nginx's controller metrics for the entry routes (name without ``_total``)."""
        w = self.w
        if not w.ingress:
            return
        w.gaps.setdefault("ingress", w._gaps())
        rows = []
        for r in w.routes.values():
            if r.service in w.ingress and r.entry_rate:
                rows.append(r)
        common = {
            "controller_class": "k8s.io/ingress-nginx",
            "controller_namespace": "ingress-nginx",
            "controller_pod": "ingress-nginx-controller-5d8f7b9c4d-q8wzt",
            "host": f"{w.namespace}.example.org",
            "namespace": w.namespace,
        }
        self.family("nginx_ingress_controller_requests", "counter", "The total number of requests")
        for r in rows:
            labels = {
                **common,
                "ingress": w.ingress[r.service],
                "method": r.method,
                "path": r.route.split("{")[0].rstrip("/") or "/",
                "service": r.service,
            }
            offset = float(self.rng.integers(10**6, 10**7))
            for status, ratio in (("200", 1 - r.err), ("503", r.err)):
                self.counter(
                    "nginx_ingress_controller_requests",
                    {**labels, "status": status},
                    r.rate * ratio,
                    target="ingress",
                    offset=offset if status == "200" else 0.0,
                )
        self.family(
            "nginx_ingress_controller_request_duration_seconds",
            "histogram",
            "The request processing time in seconds",
        )
        for r in rows:
            labels = {
                **common,
                "ingress": w.ingress[r.service],
                "method": r.method,
                "path": r.route.split("{")[0].rstrip("/") or "/",
                "service": r.service,
                "status": "200",
            }
            self.hist(
                "nginx_ingress_controller_request_duration_seconds",
                labels,
                rate=r.rate * (1 - r.err),
                median=r.median + 0.0015,
                sigma=r.sigma + r.sigma_add,
                target="ingress",
                bounds=DEFAULT_S,
            )


def render(world: World) -> str:
    writer = Writer(world)
    writer.nginx()
    getattr(writer, world.style)()
    if world.style == "otel":
        writer.otel_clients()
    writer.cadvisor()
    writer.kube_state()
    writer.exporters()
    return writer.text()


class KubeWriter(base.KubeWriter):
    """The bundled objects, with the environment a scenario gives its workloads (a database
    URL, ``envFrom`` a shared ConfigMap) and the pod-template changes of a restart."""

    w: World

    def container(self, w: base.Workload, rev: base.Revision) -> dict[str, Any]:
        out = super().container(w, rev)
        out["env"] = [
            *out["env"],
            *self.w.env.get(w.name, []),
            *self.w.template_env.get(rev.uid, []),
        ]
        if w.name in self.w.env_from:
            out["envFrom"] = self.w.env_from[w.name]
        return out

    def template(self, w: base.Workload, rev: base.Revision, *, hashed: bool) -> dict[str, Any]:
        out = super().template(w, rev, hashed=hashed)
        if rev.uid in self.w.template_notes:
            out["metadata"]["annotations"] = dict(self.w.template_notes[rev.uid])
        return out

    def configmap(self, cm: base.ConfigMap) -> dict[str, Any]:
        out = super().configmap(cm)
        if cm.name in self.w.part_of:
            out["metadata"]["labels"] = {
                "app.kubernetes.io/name": cm.name,
                "app.kubernetes.io/part-of": self.w.part_of[cm.name],
            }
        return out


def _trailing(values: np.ndarray, steps: int) -> np.ndarray:
    """The sum of ``values`` over the last ``steps`` steps, this one included."""
    total = np.cumsum(values)
    return total - np.concatenate([np.zeros(steps), total[:-steps]])


# --- topologies -------------------------------------------------------------------------------

R = base.Route


def _shop(
    services: dict[str, base.Spec],
    routes: Callable[[], list[base.Route]],
    configs: dict[str, dict[str, str]] | None = None,
    clients: tuple[tuple[str, str, str], ...] = (),
) -> base.Shop:
    configs = configs or {}
    return base.Shop(
        services,
        {name: configs.get(name, {"LOG_LEVEL": "info"}) for name in services},
        routes,
        clients,
    )


BANKING = _shop(
    {
        "edge-gateway": (2, "1", "512Mi", 150 * MIB, 0.0015, "1.22.3", 40),
        "accounts-api": (2, "1", "512Mi", 240 * MIB, 0.004, "3.4.0", 18),
        "transfers": (2, "1", "512Mi", 260 * MIB, 0.009, "2.8.1", 23),
        "ledger": (2, "1", "768Mi", 410 * MIB, 0.007, "5.1.0", 31),
        "fx-rates": (1, "500m", "256Mi", 90 * MIB, 0.002, "0.12.4", 9),
        "notifier": (1, "250m", "256Mi", 70 * MIB, 0.002, "1.0.7", 6),
    },
    lambda: [
        R(
            "edge-gateway",
            "/v1/accounts/{id}",
            "GET",
            0.004,
            entry_rate=30.0,
            error=0.0,
            error_status="503",
            calls=(("accounts-api GET /accounts/{id}", 1.0),),
        ),
        R(
            "edge-gateway",
            "/v1/transfers",
            "POST",
            0.005,
            entry_rate=6.0,
            error=0.0,
            error_status="503",
            calls=(("transfers POST /transfers", 1.0),),
        ),
        R(
            "accounts-api",
            "/accounts/{id}",
            "GET",
            0.01,
            error=0.0005,
            calls=(("ledger GET /balances/{id}", 1.0),),
        ),
        R(
            "transfers",
            "/transfers",
            "POST",
            0.02,
            error=0.001,
            calls=(
                ("fx-rates GET /rates", 0.3),
                ("ledger POST /entries", 2.0),
                ("notifier POST /notify", 1.0),
            ),
        ),
        R("ledger", "/balances/{id}", "GET", 0.006, sigma=0.4, error=0.0),
        R("ledger", "/entries", "POST", 0.012, sigma=0.4, error=0.0),
        R("fx-rates", "/rates", "GET", 0.003, sigma=0.3, error=0.0),
        R("notifier", "/notify", "POST", 0.004, sigma=0.4, error=0.0),
    ],
)

BOOKINGS = _shop(
    {
        "web-bff": (3, "1", "512Mi", 200 * MIB, 0.002, "7.3.2", 88),
        "availability": (2, "1", "1Gi", 480 * MIB, 0.008, "4.10.0", 41),
        "rates": (2, "500m", "512Mi", 220 * MIB, 0.005, "2.19.1", 27),
        "reviews-feed": (1, "500m", "256Mi", 110 * MIB, 0.003, "1.2.0", 12),
        "booking-writer": (2, "1", "512Mi", 190 * MIB, 0.006, "3.0.4", 19),
    },
    lambda: [
        R(
            "web-bff",
            "/hotels/{id}",
            "GET",
            0.008,
            entry_rate=45.0,
            error=0.0,
            error_status="502",
            calls=(
                ("availability GET /availability", 1.0),
                ("rates GET /rates/{hotel}", 1.0),
                ("reviews-feed GET /reviews", 0.5),
            ),
        ),
        R(
            "web-bff",
            "/bookings",
            "POST",
            0.012,
            entry_rate=3.0,
            error_status="502",
            calls=(("booking-writer POST /bookings", 1.0), ("rates GET /rates/{hotel}", 1.0)),
        ),
        R("availability", "/availability", "GET", 0.02, sigma=0.5, error=0.0),
        R("rates", "/rates/{hotel}", "GET", 0.009, sigma=0.4, error=0.0),
        R("reviews-feed", "/reviews", "GET", 0.007, sigma=0.5, error=0.0),
        R("booking-writer", "/bookings", "POST", 0.03, sigma=0.4, error=0.001),
    ],
    {
        "rates": {"RATE_CACHE_TTL_S": "300", "RATE_PROVIDER_TIMEOUT_MS": "800"},
        "availability": {"SHARDS": "8"},
    },
)

QUOTES = _shop(
    {
        "quote-api": (2, "1", "512Mi", 160 * MIB, 0.002, "2.4.0", 35),
        "pricer": (2, "1", "512Mi", 230 * MIB, 0.006, "1.17.2", 22),
        "risk-model": (2, "2", "1Gi", 640 * MIB, 0.012, "0.41.0", 57),
        "market-data": (1, "500m", "512Mi", 300 * MIB, 0.002, "3.3.3", 14),
        "audit-log": (1, "250m", "256Mi", 80 * MIB, 0.001, "1.1.0", 5),
    },
    lambda: [
        R(
            "quote-api",
            "/quotes.v1.QuoteService/GetQuote",
            "POST",
            0.003,
            entry_rate=25.0,
            error=0.0,
            error_status="Unavailable",
            calls=(
                ("pricer POST /pricing.v1.Pricer/Price", 1.0),
                ("audit-log POST /audit.v1.Audit/Record", 1.0),
            ),
        ),
        R(
            "pricer",
            "/pricing.v1.Pricer/Price",
            "POST",
            0.006,
            error=0.0,
            error_status="Internal",
            calls=(
                ("risk-model POST /risk.v1.RiskModel/Score", 1.0),
                ("market-data POST /market.v1.MarketData/Snapshot", 1.0),
            ),
        ),
        R("risk-model", "/risk.v1.RiskModel/Score", "POST", 0.015, sigma=0.4, error=0.0),
        R("market-data", "/market.v1.MarketData/Snapshot", "POST", 0.004, sigma=0.3, error=0.0),
        R("audit-log", "/audit.v1.Audit/Record", "POST", 0.002, sigma=0.3, error=0.0),
    ],
    {"market-data": {"SNAPSHOT_DEPTH": "10", "FEED": "primary"}},
)

CLAIMS = _shop(
    {
        "claims-portal": (2, "1", "1Gi", 520 * MIB, 0.003, "4.2.1", 44),
        "policy-service": (2, "1", "1Gi", 610 * MIB, 0.008, "6.0.3", 29),
        "document-store": (1, "1", "1Gi", 450 * MIB, 0.004, "2.2.0", 13),
        "fraud-rules": (1, "500m", "768Mi", 380 * MIB, 0.004, "1.9.9", 17),
    },
    lambda: [
        R(
            "claims-portal",
            "/claims/{id}",
            "GET",
            0.01,
            entry_rate=20.0,
            error=0.0,
            error_status="503",
            calls=(
                ("policy-service GET /policies/{id}", 1.0),
                ("document-store GET /documents", 0.5),
            ),
        ),
        R(
            "claims-portal",
            "/claims",
            "POST",
            0.02,
            entry_rate=2.0,
            error_status="503",
            calls=(
                ("policy-service GET /policies/{id}", 1.0),
                ("fraud-rules POST /evaluate", 1.0),
            ),
        ),
        R("policy-service", "/policies/{id}", "GET", 0.015, sigma=0.4, error=0.0),
        R("document-store", "/documents", "GET", 0.02, sigma=0.5, error=0.0),
        R("fraud-rules", "/evaluate", "POST", 0.03, sigma=0.4, error=0.0),
    ],
)

MEDIA = _shop(
    {
        "web": (3, "1", "512Mi", 180 * MIB, 0.002, "12.1.0", 130),
        "thumbnails": (2, "1", "512Mi", 260 * MIB, 0.004, "2.6.0", 33),
        "playlists": (2, "500m", "384Mi", 150 * MIB, 0.003, "1.14.2", 21),
        "search-api": (2, "1", "1Gi", 500 * MIB, 0.006, "3.2.0", 25),
    },
    lambda: [
        R(
            "web",
            "/watch/{id}",
            "GET",
            0.006,
            entry_rate=60.0,
            error=0.0,
            error_status="502",
            calls=(("thumbnails GET /thumb/{id}", 1.0), ("playlists GET /playlists", 0.6)),
        ),
        R(
            "web",
            "/search",
            "GET",
            0.008,
            entry_rate=12.0,
            error=0.0,
            error_status="502",
            calls=(("search-api GET /query", 1.0), ("thumbnails GET /thumb/{id}", 4.0)),
        ),
        R("thumbnails", "/thumb/{id}", "GET", 0.004, sigma=0.4, error=0.0),
        R("playlists", "/playlists", "GET", 0.007, sigma=0.4, error=0.0),
        R("search-api", "/query", "GET", 0.025, sigma=0.5, error=0.0),
    ],
    {"playlists": {"PAGE_SIZE": "50", "AUTOPLAY": "true"}},
)

LOGISTICS = _shop(
    {
        "dispatch-api": (2, "1", "512Mi", 170 * MIB, 0.002, "3.1.4", 52),
        "route-planner": (2, "1", "768Mi", 330 * MIB, 0.006, "1.8.0", 19),
        "geo-index": (2, "1", "1Gi", 540 * MIB, 0.009, "0.30.2", 27),
        "fleet-status": (1, "500m", "256Mi", 100 * MIB, 0.002, "2.0.3", 11),
    },
    lambda: [
        R(
            "dispatch-api",
            "/v1/dispatch",
            "POST",
            0.006,
            entry_rate=14.0,
            error=0.0,
            calls=(("route-planner POST /plan", 1.0), ("fleet-status GET /vehicles", 1.0)),
        ),
        R(
            "route-planner",
            "/plan",
            "POST",
            0.012,
            error=0.0,
            calls=(("geo-index GET /nearest", 3.0),),
        ),
        R("geo-index", "/nearest", "GET", 0.004, sigma=0.4, error=0.0),
        R("fleet-status", "/vehicles", "GET", 0.003, sigma=0.3, error=0.0),
    ],
)

ANALYTICS = _shop(
    {
        "report-api": (2, "1", "512Mi", 200 * MIB, 0.003, "1.40.2", 62),
        "query-engine": (2, "2", "2Gi", 1100 * MIB, 0.02, "0.88.0", 48),
        "warehouse-proxy": (1, "500m", "256Mi", 90 * MIB, 0.002, "2.0.0", 8),
        "export-worker": (1, "500m", "512Mi", 210 * MIB, 0.005, "1.3.1", 10),
    },
    lambda: [
        R(
            "report-api",
            "/reports/{id}",
            "GET",
            0.01,
            entry_rate=8.0,
            error=0.0,
            error_status="504",
            calls=(("query-engine POST /query", 1.0),),
        ),
        R(
            "report-api",
            "/exports",
            "POST",
            0.02,
            entry_rate=0.6,
            error_status="504",
            calls=(("export-worker POST /jobs", 1.0),),
        ),
        R(
            "query-engine",
            "/query",
            "POST",
            0.08,
            sigma=0.5,
            error=0.0,
            calls=(("warehouse-proxy POST /sql", 1.0),),
        ),
        R("warehouse-proxy", "/sql", "POST", 0.05, sigma=0.4, error=0.0),
        R("export-worker", "/jobs", "POST", 0.1, sigma=0.4, error=0.0),
    ],
)

TRAVEL = _shop(
    {
        "trip-web": (2, "1", "512Mi", 190 * MIB, 0.002, "5.0.3", 71),
        "itinerary": (2, "1", "768Mi", 320 * MIB, 0.006, "2.11.0", 24),
        "places": (2, "500m", "512Mi", 210 * MIB, 0.004, "1.6.2", 16),
        "weather-cache": (1, "250m", "256Mi", 60 * MIB, 0.001, "0.9.1", 7),
    },
    lambda: [
        R(
            "trip-web",
            "/trips/{id}",
            "GET",
            0.005,
            entry_rate=22.0,
            error=0.0,
            error_status="502",
            calls=(
                ("itinerary GET /itineraries/{id}", 1.0),
                ("places GET /places/nearby", 1.0),
                ("weather-cache GET /forecast", 0.4),
            ),
        ),
        R("itinerary", "/itineraries/{id}", "GET", 0.012, sigma=0.4, error=0.0),
        R(
            "places",
            "/places/nearby",
            "GET",
            0.004,
            sigma=0.4,
            error=0.0,
            calls=(("maps.geo-provider.example GET /v1/geocode", 1.0),),
        ),
        R("weather-cache", "/forecast", "GET", 0.002, sigma=0.3, error=0.0),
        R(
            "maps.geo-provider.example",
            "/v1/geocode",
            "GET",
            0.06,
            sigma=0.3,
            error=0.0,
            error_status="504",
            external=True,
        ),
    ],
    clients=(("places", "maps.geo-provider.example", "maps.geo-provider.example GET /v1/geocode"),),
)

TICKETING = _shop(
    {
        "box-office": (2, "1", "1Gi", 480 * MIB, 0.004, "3.7.1", 58),
        "seat-map": (2, "1", "1Gi", 560 * MIB, 0.006, "2.3.0", 31),
        "pricing": (2, "500m", "768Mi", 350 * MIB, 0.003, "1.12.4", 20),
        "order-service": (2, "1", "1Gi", 500 * MIB, 0.008, "4.0.2", 26),
    },
    lambda: [
        R(
            "box-office",
            "/events/{id}/seats",
            "GET",
            0.006,
            entry_rate=35.0,
            error=0.0,
            error_status="503",
            calls=(("seat-map GET /seats", 1.0), ("pricing GET /prices", 1.0)),
        ),
        R(
            "box-office",
            "/orders",
            "POST",
            0.01,
            entry_rate=2.5,
            error_status="503",
            calls=(("order-service POST /orders", 1.0), ("pricing GET /prices", 1.0)),
        ),
        R("seat-map", "/seats", "GET", 0.012, sigma=0.4, error=0.0),
        R("pricing", "/prices", "GET", 0.004, sigma=0.3, error=0.0),
        R("order-service", "/orders", "POST", 0.03, sigma=0.4, error=0.001),
    ],
)

PUBLISHING = _shop(
    {
        "cms-api": (2, "1", "512Mi", 210 * MIB, 0.002, "8.2.0", 93),
        "render": (3, "1", "1Gi", 420 * MIB, 0.035, "3.9.1", 40),
        "asset-store": (2, "500m", "512Mi", 160 * MIB, 0.002, "1.4.4", 15),
        "authors": (1, "250m", "256Mi", 90 * MIB, 0.002, "2.1.0", 9),
    },
    lambda: [
        R(
            "cms-api",
            "/articles/{slug}",
            "GET",
            0.004,
            entry_rate=28.0,
            error=0.0,
            error_status="503",
            calls=(
                ("render GET /render/{id}", 1.0),
                ("asset-store GET /assets", 2.0),
                ("authors GET /authors/{id}", 0.5),
            ),
        ),
        R("render", "/render/{id}", "GET", 0.018, sigma=0.4, error=0.0),
        R("asset-store", "/assets", "GET", 0.003, sigma=0.3, error=0.0),
        R("authors", "/authors/{id}", "GET", 0.002, sigma=0.3, error=0.0),
    ],
    {"asset-store": {"CDN_ORIGIN": "assets-eu", "MAX_AGE_S": "600"}},
)

FEEDS = _shop(
    {
        "feed-api": (2, "1", "512Mi", 180 * MIB, 0.002, "6.0.1", 77),
        "ranker": (2, "1", "1Gi", 520 * MIB, 0.008, "2.14.0", 38),
        "profile": (2, "500m", "512Mi", 240 * MIB, 0.003, "4.3.2", 29),
        "ads-slot": (1, "500m", "256Mi", 110 * MIB, 0.002, "1.0.9", 12),
    },
    lambda: [
        R(
            "feed-api",
            "/feed",
            "GET",
            0.004,
            entry_rate=40.0,
            error=0.0,
            error_status="502",
            calls=(
                ("ranker POST /rank", 1.0),
                ("profile GET /profiles/{id}", 1.0),
                ("ads-slot GET /slots", 0.3),
            ),
        ),
        R("ranker", "/rank", "POST", 0.02, sigma=0.4, error=0.0),
        R("profile", "/profiles/{id}", "GET", 0.018, sigma=0.4, error=0.0),
        R("ads-slot", "/slots", "GET", 0.003, sigma=0.3, error=0.0),
    ],
)


# --- incidents --------------------------------------------------------------------------------


def _alert(world: World, at: str, *, title: str, service: str, severity: str = "critical") -> Any:
    trigger = base._alert(at, title=title, service=service, severity=severity)
    trigger["labels"].pop("service_name")
    trigger["labels"]["service"] = service
    return trigger


def istio_deep_deploy() -> base.Incident:
    world = World(
        name="istio-deep-deploy",
        end=utc("2026-04-07T11:30:00Z"),
        shop=BANKING,
        namespace="banking",
        style="istio",
    )
    world.rollout("fx-rates", utc("2026-04-07T10:44:10Z"), tag="0.12.5")  # harmless
    rev = world.rollout("ledger", utc("2026-04-07T11:19:31Z"), tag="5.2.0")
    entries = world.route("ledger POST /entries")
    entries.error_status = "500"
    entries.error_add = 0.08 * world.revision_share("ledger", rev)
    world.compute()
    detail = (
        "ledger 5.2.0 fails 8% of POST /entries from the moment its pods take traffic; "
        "transfers calls it twice per transfer and turns the failures into its own 500s, "
        "edge-gateway into 503s. An fx-rates rollout 35 minutes earlier is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace banking (Istio mesh): the gateway's error budget burns.",
        _alert(
            world,
            "2026-04-07T11:26:00Z",
            service="edge-gateway",
            title="GatewayErrorBudgetBurn: edge-gateway 5xx ratio above 2% for 3m",
        ),
        {
            "root_cause": base._cause(
                "deploy", "ledger", change=f"deployment/ledger@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def otel_config_latency() -> base.Incident:
    world = World(
        name="otel-config-latency",
        end=utc("2026-04-14T18:50:00Z"),
        shop=BOOKINGS,
        namespace="bookings",
        style="otel",
    )
    world.rollout("reviews-feed", utc("2026-04-14T18:05:40Z"), tag="1.2.1")  # harmless
    onset = utc("2026-04-14T18:39:12Z")
    world.edit_configmap("rates", onset, {"RATE_CACHE_TTL_S": "0"})
    rates = world.route("rates GET /rates/{hotel}")
    rates.latency_mult = 1 + world.ramp(onset + timedelta(seconds=10), seconds=60, size=9)
    rates.sigma_add = world.ramp(onset + timedelta(seconds=10), seconds=60, size=0.2)
    world.compute()
    detail = (
        "rates-config's cache TTL was set to 0 with kubectl edit; rates hot-reloads it and "
        "asks the rate provider on every request: its latency rises ~10x, and web-bff's "
        "hotel pages slow down with it. A reviews-feed rollout 34 minutes earlier is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace bookings (OpenTelemetry via OTLP): web-bff latency SLO alert.",
        _alert(
            world,
            "2026-04-14T18:46:00Z",
            service="web-bff",
            title="BffLatencySLO: web-bff p95 latency above 250ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "config", "rates", change="configmap/rates-config", detail=detail
            ),
            "fix": "config_revert",
        },
    )


def grpc_slow_downstream() -> base.Incident:
    world = World(
        name="grpc-slow-downstream",
        end=utc("2026-04-21T07:20:00Z"),
        shop=QUOTES,
        namespace="quotes",
        style="grpc",
    )
    world.edit_configmap("market-data", utc("2026-04-21T06:41:02Z"), {"SNAPSHOT_DEPTH": "20"})
    rev = world.rollout("risk-model", utc("2026-04-21T07:08:47Z"), tag="0.42.0")
    score = world.route("risk-model POST /risk.v1.RiskModel/Score")
    share = world.revision_share("risk-model", rev)
    score.latency_mult = 1 + 7 * share
    score.sigma_add = 0.15 * share
    world.workloads["risk-model"].current.cpu_factor = 1.6
    world.compute()
    detail = (
        "risk-model 0.42.0 loads a larger model and scores ~8x slower; pricer waits on it and "
        "quote-api's GetQuote latency follows. A market-data config edit 28 minutes earlier "
        "is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace quotes (gRPC services): quote latency alert.",
        _alert(
            world,
            "2026-04-21T07:16:00Z",
            service="quote-api",
            title="QuoteLatencyHigh: quote-api GetQuote p99 above 300ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "deploy", "risk-model", change=f"deployment/risk-model@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def spring_oomkill() -> base.Incident:
    world = World(
        name="spring-oomkill",
        end=utc("2026-04-28T14:10:00Z"),
        shop=CLAIMS,
        namespace="claims",
        style="micrometer",
    )
    rev = world.rollout(
        "policy-service",
        utc("2026-04-28T13:51:30Z"),
        mem_limit="640Mi",
        manager="helm",
    )
    kills = np.zeros(world.n)
    for pod in world.live_pods("policy-service"):
        if pod.revision is rev:
            world.crashloop(pod, grow_s=140)
            for begin, _ in pod.down:
                kills[begin] = 1.0
    policies = world.route("policy-service GET /policies/{id}")
    policies.served = world.any_ready("policy-service")
    policies.error_add = 0.04 * kills
    world.compute()
    detail = (
        "A helm upgrade of policy-service lowers its memory limit from 1Gi to 640Mi, below the "
        "JVM's heap plus overhead: the new pods are OOM-killed every few minutes and "
        "crash-loop; claims-portal answers 503 while neither is ready."
    )
    return base.Incident(
        world,
        "Recorded in namespace claims (Spring Boot services): portal error alert.",
        _alert(
            world,
            "2026-04-28T14:07:00Z",
            service="claims-portal",
            title="ClaimsPortalErrors: claims-portal 5xx ratio above 2% for 5m",
        ),
        {
            "root_cause": base._cause(
                "resource",
                "policy-service",
                change=f"deployment/policy-service@{rev.number}",
                detail=detail,
            ),
            "fix": "raise_limits",
        },
    )


def ingress_traffic_surge() -> base.Incident:
    world = World(
        name="ingress-traffic-surge",
        end=utc("2026-05-05T20:40:00Z"),
        shop=MEDIA,
        namespace="media",
        style="promclient",
    )
    world.ingress = {"web": "media-web"}
    world.edit_configmap("playlists", utc("2026-05-05T19:58:20Z"), {"PAGE_SIZE": "40"})
    onset = utc("2026-05-05T20:30:10Z")
    world.entry_mult = 1 + world.ramp(onset, seconds=150, size=2.5)
    for key, slower in (
        ("web GET /watch/{id}", 0.8),
        ("web GET /search", 0.6),
        ("thumbnails GET /thumb/{id}", 1.2),
        ("search-api GET /query", 0.9),
        ("playlists GET /playlists", 0.4),
    ):
        world.route(key).latency_mult = 1 + world.ramp(onset, seconds=200, size=slower)
    world.compute()
    detail = (
        "A live event sends 3.5x the usual viewers through the ingress within three minutes; "
        "every service sees the extra requests and slows 1.4-2.2x. Nothing changed in the "
        "cluster except an unrelated playlists-config edit half an hour earlier."
    )
    return base.Incident(
        world,
        "Recorded in namespace media (ingress-nginx in front): web latency alert.",
        _alert(
            world,
            "2026-05-05T20:37:00Z",
            service="web",
            severity="warning",
            title="WebLatencyHigh: web p95 latency above 80ms for 3m",
        ),
        {"root_cause": base._cause("traffic", "web", change=None, detail=detail), "fix": "scale"},
    )


def linkerd_cpu_throttling() -> base.Incident:
    world = World(
        name="linkerd-cpu-throttling",
        end=utc("2026-05-19T09:35:00Z"),
        shop=LOGISTICS,
        namespace="logistics",
        style="linkerd",
    )
    world.rollout("fleet-status", utc("2026-05-19T08:52:00Z"), tag="2.0.4")  # harmless
    rev = world.rollout(
        "geo-index", utc("2026-05-19T09:24:10Z"), cpu_limit="150m", manager="kubectl-edit"
    )
    share = world.revision_share("geo-index", rev)
    nearest = world.route("geo-index GET /nearest")
    nearest.latency_mult = 1 + 4 * share
    nearest.sigma_add = 0.3 * share
    world.compute()
    detail = (
        "kubectl edit lowers geo-index's CPU limit from 1 to 150m (same image); CFS throttles "
        "most periods and its lookups slow ~5x; route-planner calls it three times per plan "
        "and dispatch-api's latency follows. A fleet-status rollout 30 minutes earlier is "
        "unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace logistics (Linkerd mesh): dispatch latency alert.",
        _alert(
            world,
            "2026-05-19T09:32:00Z",
            service="dispatch-api",
            severity="warning",
            title="DispatchLatencyHigh: dispatch-api p95 above 150ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "resource", "geo-index", change=f"deployment/geo-index@{rev.number}", detail=detail
            ),
            "fix": "raise_limits",
        },
    )


def drift_decoy_deploy() -> base.Incident:
    """No clear cause: a slow drift that began long before the only change (abstain)."""
    world = World(
        name="drift-decoy-deploy",
        end=utc("2026-05-12T16:20:00Z"),
        shop=ANALYTICS,
        namespace="analytics",
        style="promclient",
    )
    drift_from = utc("2026-05-12T14:35:00Z")
    query = world.route("query-engine POST /query")
    query.latency_mult = 1 + world.ramp(drift_from, seconds=6300, size=1.6)
    world.rollout("report-api", utc("2026-05-12T16:06:40Z"), tag="1.40.3")  # after the onset
    world.compute()
    # query-engine's latency has been creeping up for two hours (its working set grows with
    # the month's data); nothing recorded explains it. A report-api rollout ten minutes
    # before the alert changes nothing.
    return base.Incident(
        world,
        "Recorded in namespace analytics: report latency alert.",
        _alert(
            world,
            "2026-05-12T16:17:00Z",
            service="report-api",
            severity="warning",
            title="ReportLatencyHigh: report-api p95 latency above 500ms for 10m",
        ),
        {"root_cause": None, "fix": "none"},
    )


def otel_external_dependency() -> base.Incident:
    world = World(
        name="otel-external-dependency",
        end=utc("2026-06-02T12:15:00Z"),
        shop=TRAVEL,
        namespace="travel",
        style="otel",
    )
    world.rollout("itinerary", utc("2026-06-02T11:38:25Z"), tag="2.11.1")  # harmless
    onset = utc("2026-06-02T12:04:40Z")
    geocode = world.route("maps.geo-provider.example GET /v1/geocode")
    geocode.latency_mult = 1 + world.ramp(onset, seconds=90, size=11)
    geocode.sigma_add = world.ramp(onset, seconds=90, size=0.25)
    geocode.error_add = world.ramp(onset, seconds=90, size=0.03)
    world.compute()
    detail = (
        "The geocoding provider (outside the cluster) slows from ~60ms to ~700ms and times "
        "out 3% of calls; only places' OpenTelemetry client histogram to "
        "maps.geo-provider.example sees it directly. Nothing changed in the cluster; an "
        "itinerary rollout 26 minutes earlier is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace travel (OpenTelemetry via OTLP, client metrics): trip page alert.",
        _alert(
            world,
            "2026-06-02T12:11:00Z",
            service="trip-web",
            title="TripPageLatency: trip-web p95 latency above 400ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "dependency", "external/maps.geo-provider.example", change=None, detail=detail
            ),
            "fix": "none",
        },
    )


def hpa_scaleout_decoy() -> base.Incident:
    world = World(
        name="hpa-scaleout-decoy",
        end=utc("2026-06-09T19:45:00Z"),
        shop=TICKETING,
        namespace="ticketing",
        style="micrometer",
    )
    onset = utc("2026-06-09T19:31:20Z")
    world.entry_mult = 1 + world.ramp(onset, seconds=120, size=3.0)
    world.scale_out("box-office", utc("2026-06-09T19:33:05Z"), to=5, hpa="box-office")
    world.scale_out("seat-map", utc("2026-06-09T19:33:50Z"), to=4, hpa="seat-map")
    for key, slower in (
        ("box-office GET /events/{id}/seats", 0.9),
        ("box-office POST /orders", 0.5),
        ("seat-map GET /seats", 1.4),
        ("pricing GET /prices", 0.6),
        ("order-service POST /orders", 0.4),
    ):
        world.route(key).latency_mult = 1 + world.ramp(onset, seconds=180, size=slower)
    world.compute()
    detail = (
        "An on-sale opens: four times the usual buyers within two minutes. Every service sees "
        "the extra requests and slows; the HorizontalPodAutoscalers scale box-office and "
        "seat-map out a couple of minutes after the surge began (new pods, same revision), "
        "a consequence, not the cause."
    )
    return base.Incident(
        world,
        "Recorded in namespace ticketing (Spring Boot services, HPAs): box-office latency alert.",
        _alert(
            world,
            "2026-06-09T19:41:00Z",
            service="box-office",
            severity="warning",
            title="BoxOfficeSlow: box-office mean latency above 120ms for 5m",
        ),
        {
            "root_cause": base._cause("traffic", "box-office", change=None, detail=detail),
            "fix": "scale",
        },
    )


def scale_in_saturation() -> base.Incident:
    world = World(
        name="scale-in-saturation",
        end=utc("2026-06-16T10:05:00Z"),
        shop=PUBLISHING,
        namespace="publishing",
        style="istio",
    )
    world.edit_configmap("asset-store", utc("2026-06-16T09:27:30Z"), {"MAX_AGE_S": "900"})
    world.scale_in("render", utc("2026-06-16T09:53:40Z"), to=1)
    world.compute()
    detail = (
        "render is scaled from 3 replicas to 1 by hand (same revision); the remaining pod "
        "needs about three times its CPU, hits its 1-core limit and is throttled most "
        "periods; its renders slow several-fold and cms-api's article pages follow. An "
        "asset-store config edit 26 minutes earlier is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace publishing (Istio mesh): article page latency alert.",
        _alert(
            world,
            "2026-06-16T10:01:00Z",
            service="cms-api",
            severity="warning",
            title="ArticleLatencyHigh: cms-api p95 above 300ms for 5m",
        ),
        {
            "root_cause": base._cause("resource", "render", change=None, detail=detail),
            "fix": "scale",
        },
    )


def twin_rollouts() -> base.Incident:
    """Not sure: one release train rolls out two siblings 25 s apart and both slow down."""
    world = World(
        name="twin-rollouts",
        end=utc("2026-06-23T15:30:00Z"),
        shop=FEEDS,
        namespace="feeds",
        style="otel",
    )
    for name, at, tag, slower in (
        ("ranker", "2026-06-23T15:17:05Z", "2.15.0", 2.5),
        ("profile", "2026-06-23T15:17:30Z", "4.4.0", 2.5),
    ):
        rev = world.rollout(name, utc(at), tag=tag)
        share = world.revision_share(name, rev)
        route = next(r for r in world.routes.values() if r.service == name)
        route.latency_mult = 1 + slower * share
        route.sigma_add = 0.1 * share
    world.compute()
    # ranker and profile, both called once per feed request, ship in the same release and
    # each slows ~3.5x as its new pods take traffic; the data cannot tell which one matters
    # more for feed-api, and naming one alone would be a guess.
    return base.Incident(
        world,
        "Recorded in namespace feeds (OpenTelemetry via OTLP): feed latency alert.",
        _alert(
            world,
            "2026-06-23T15:26:00Z",
            service="feed-api",
            severity="warning",
            title="FeedLatencyHigh: feed-api p95 above 200ms for 5m",
        ),
        {"root_cause": None, "fix": "none"},
    )


# --- round 3: real scrape intervals, real bucket layouts, the database elsewhere ---------------

SECOND = timedelta(seconds=1)

STOREFRONT = _shop(
    {
        "shop-web": (2, "1", "512Mi", 200 * MIB, 0.002, "9.4.1", 112),
        "cart": (1, "500m", "384Mi", 140 * MIB, 0.003, "3.2.0", 44),
        "payment-gateway": (2, "1", "512Mi", 230 * MIB, 0.004, "5.0.2", 37),
        "risk-score": (2, "1", "768Mi", 390 * MIB, 0.006, "2.7.3", 25),
        "loyalty": (1, "250m", "256Mi", 90 * MIB, 0.002, "1.3.0", 8),
    },
    lambda: [
        R(
            "shop-web",
            "/cart",
            "GET",
            0.004,
            entry_rate=30.0,
            error=0.0,
            error_status="503",
            calls=(("cart GET /cart", 1.0), ("loyalty GET /points", 0.015)),
        ),
        R(
            "shop-web",
            "/checkout",
            "POST",
            0.006,
            entry_rate=4.0,
            error=0.0,
            error_status="503",
            calls=(("payment-gateway POST /authorize", 1.0), ("cart GET /cart", 1.0)),
        ),
        R("cart", "/cart", "GET", 0.006, sigma=0.35, error=0.0),
        R(
            "payment-gateway",
            "/authorize",
            "POST",
            0.02,
            sigma=0.35,
            error=0.0005,
            calls=(("risk-score POST /score", 1.0),),
        ),
        R("risk-score", "/score", "POST", 0.012, sigma=0.35, error=0.0),
        R("loyalty", "/points", "GET", 0.004, sigma=0.3, error=0.0),
    ],
)

WAREHOUSE = _shop(
    {
        "picking-api": (2, "1", "512Mi", 180 * MIB, 0.002, "4.8.0", 61),
        "inventory-svc": (2, "1", "768Mi", 310 * MIB, 0.005, "4.0.3", 33),
        "slotting": (2, "500m", "512Mi", 200 * MIB, 0.004, "1.19.0", 21),
        "label-printer": (1, "250m", "256Mi", 70 * MIB, 0.002, "0.9.2", 6),
    },
    lambda: [
        R(
            "picking-api",
            "/picks",
            "POST",
            0.005,
            entry_rate=12.0,
            error=0.0,
            calls=(("inventory-svc GET /stock/{sku}", 2.0), ("slotting POST /slots", 1.0)),
        ),
        R(
            "picking-api",
            "/labels",
            "GET",
            0.003,
            entry_rate=3.0,
            error=0.0,
            calls=(("label-printer POST /print", 1.0),),
        ),
        R("inventory-svc", "/stock/{sku}", "GET", 0.008, sigma=0.4, error=0.0005),
        R("slotting", "/slots", "POST", 0.015, sigma=0.4, error=0.0),
        R("label-printer", "/print", "POST", 0.03, sigma=0.3, error=0.0),
    ],
    {"slotting": {"SLOT_STRATEGY": "nearest", "ZONE_COUNT": "12"}},
)

TELEMATICS = _shop(
    {
        "ingest-gw": (2, "1", "512Mi", 170 * MIB, 0.0015, "2.2.0", 48),
        "decoder": (2, "1", "512Mi", 260 * MIB, 0.003, "6.1.0", 30),
        "geo-fence": (2, "500m", "512Mi", 210 * MIB, 0.003, "1.5.1", 17),
        "trip-store": (1, "500m", "512Mi", 240 * MIB, 0.002, "3.0.0", 12),
    },
    lambda: [
        R(
            "ingest-gw",
            "/telemetry",
            "POST",
            0.003,
            entry_rate=40.0,
            error=0.0,
            calls=(("decoder POST /decode", 1.0), ("geo-fence POST /check", 0.5)),
        ),
        R(
            "decoder",
            "/decode",
            "POST",
            0.006,
            sigma=0.35,
            calls=(("trip-store POST /points", 1.0),),
        ),
        R("geo-fence", "/check", "POST", 0.004, sigma=0.35, error=0.0),
        R("trip-store", "/points", "POST", 0.003, sigma=0.3, error=0.0),
        R("trip-store", "/export", "GET", 0.02, sigma=0.4, entry_rate=0.15, error=0.0),
    ],
)

LENDING = _shop(
    {
        "loan-portal": (2, "1", "512Mi", 190 * MIB, 0.002, "3.3.0", 52),
        "credit-check": (2, "250m", "512Mi", 230 * MIB, 0.04, "1.12.0", 19),
        "documents": (2, "500m", "512Mi", 260 * MIB, 0.003, "2.0.5", 23),
        "notifications": (1, "250m", "256Mi", 80 * MIB, 0.002, "0.8.1", 7),
    },
    lambda: [
        R(
            "loan-portal",
            "/applications/{id}",
            "GET",
            0.005,
            entry_rate=15.0,
            error=0.0,
            calls=(("documents GET /docs", 1.0),),
        ),
        R(
            "loan-portal",
            "/applications",
            "POST",
            0.008,
            entry_rate=3.0,
            error=0.0,
            calls=(("credit-check POST /score", 1.0), ("notifications POST /send", 1.0)),
        ),
        R("credit-check", "/score", "POST", 0.03, sigma=0.35, error=0.0),
        R("documents", "/docs", "GET", 0.01, sigma=0.4, error=0.0),
        R("notifications", "/send", "POST", 0.004, sigma=0.3, error=0.0),
    ],
    {"documents": {"STORAGE_BUCKET": "loan-docs-eu", "THUMBNAILS": "true"}},
)

ORDERS = _shop(
    {
        "storefront": (2, "1", "512Mi", 210 * MIB, 0.002, "11.2.0", 140),
        "orders-api": (2, "1", "512Mi", 250 * MIB, 0.004, "7.4.1", 66),
        "fulfilment-worker": (2, "500m", "512Mi", 200 * MIB, 0.004, "2.9.0", 28),
        "catalog-api": (2, "1", "768Mi", 330 * MIB, 0.003, "5.5.0", 41),
    },
    lambda: [
        R(
            "storefront",
            "/orders/{id}",
            "GET",
            0.004,
            entry_rate=18.0,
            error=0.0,
            error_status="502",
            calls=(("orders-api GET /orders/{id}", 1.0),),
        ),
        R(
            "storefront",
            "/orders",
            "POST",
            0.006,
            entry_rate=4.0,
            error=0.0,
            error_status="502",
            calls=(("orders-api POST /orders", 1.0),),
        ),
        R(
            "storefront",
            "/products",
            "GET",
            0.004,
            entry_rate=25.0,
            error=0.0,
            error_status="502",
            calls=(("catalog-api GET /products", 1.0),),
        ),
        R("orders-api", "/orders/{id}", "GET", 0.006, sigma=0.35, error=0.0002),
        R("orders-api", "/orders", "POST", 0.012, sigma=0.35, error=0.0005),
        R("fulfilment-worker", "/batches", "POST", 0.04, sigma=0.3, entry_rate=0.5, error=0.0),
        R("catalog-api", "/products", "GET", 0.008, sigma=0.4, error=0.0),
    ],
)

PAYMENTS = _shop(
    {
        "pay-api": (3, "1", "512Mi", 190 * MIB, 0.002, "12.0.4", 95),
        "ledger-writer": (2, "1", "768Mi", 300 * MIB, 0.005, "7.2.9", 58),
        "fraud-screen": (2, "1", "1Gi", 520 * MIB, 0.006, "3.4.0", 31),
        "fx-quote": (1, "500m", "256Mi", 90 * MIB, 0.002, "1.1.2", 9),
    },
    lambda: [
        R(
            "pay-api",
            "/payments.v1.PaymentAPI/Charge",
            "POST",
            0.004,
            entry_rate=30.0,
            error=0.0,
            error_status="Unavailable",
            calls=(
                ("ledger-writer POST /ledger.v1.Ledger/Append", 1.0),
                ("fraud-screen POST /fraud.v1.Screen/Check", 1.0),
                ("fx-quote POST /fx.v1.Quotes/Get", 0.2),
            ),
        ),
        R(
            "ledger-writer",
            "/ledger.v1.Ledger/Append",
            "POST",
            0.01,
            sigma=0.35,
            error=0.0003,
            error_status="Internal",
        ),
        R("fraud-screen", "/fraud.v1.Screen/Check", "POST", 0.015, sigma=0.4, error=0.0),
        R("fx-quote", "/fx.v1.Quotes/Get", "POST", 0.003, sigma=0.3, error=0.0),
    ],
    {"fraud-screen": {"RULESET": "2026-07", "SCORE_THRESHOLD": "0.82"}},
)

CHECKOUT = _shop(
    {
        "checkout-web": (2, "1", "512Mi", 180 * MIB, 0.002, "6.6.0", 83),
        "checkout-worker": (2, "1", "512Mi", 240 * MIB, 0.004, "4.1.2", 36),
        "basket": (2, "500m", "384Mi", 150 * MIB, 0.003, "2.3.1", 27),
        "psp-adapter": (2, "500m", "384Mi", 130 * MIB, 0.003, "1.8.0", 15),
    },
    lambda: [
        R(
            "checkout-web",
            "/checkout",
            "POST",
            0.006,
            entry_rate=6.0,
            error=0.0,
            error_status="503",
            calls=(("checkout-worker POST /orders/submit", 1.0),),
        ),
        R(
            "checkout-web",
            "/basket",
            "GET",
            0.003,
            entry_rate=20.0,
            error=0.0,
            error_status="503",
            calls=(("basket GET /basket", 1.0),),
        ),
        R(
            "checkout-worker",
            "/orders/submit",
            "POST",
            0.015,
            sigma=0.35,
            error=0.0003,
            calls=(("psp-adapter POST /psp/authorize", 1.0),),
        ),
        R("basket", "/basket", "GET", 0.005, sigma=0.35, error=0.0),
        R("psp-adapter", "/psp/authorize", "POST", 0.05, sigma=0.3, error=0.0005),
    ],
)


def istio_default_buckets() -> base.Incident:
    """Istio's default buckets at 30 s: the culprit's p99 rises a few-fold inside the fine
    buckets; a quiet healthy service's p99 leaps across the 10-30 s bucket now and then."""
    world = World(
        name="istio-default-buckets",
        end=utc("2026-07-07T16:40:00Z"),
        shop=STOREFRONT,
        namespace="storefront",
        style="istio",
        window=timedelta(minutes=70),
        scrape={"default": 30.0},
    )
    world.buckets_ms = ISTIO_DEFAULT_MS
    world.rollout("cart", utc("2026-07-07T15:49:30Z"), tag="3.2.1")  # harmless
    rev = world.rollout("risk-score", utc("2026-07-07T16:21:40Z"), tag="2.8.0")
    share = world.revision_share("risk-score", rev)
    score = world.route("risk-score POST /score")
    score.latency_mult = 1 + 2.0 * share
    score.sigma_add = 0.15 * share
    # the mobile app long-polls loyalty for point updates, more often as the evening goes on:
    # one such request every ~8 minutes at the start of the window, every ~90 s at its end
    polls = np.linspace(0.03, 0.17, world.n)
    world.tails["loyalty"] = world.rng.poisson(polls).astype(float)
    world.compute()
    detail = (
        "risk-score 2.8.0 scores ~3x slower (its p99 from ~30 ms to ~110 ms, inside Istio's "
        "25-250 ms buckets); payment-gateway waits on it and shop-web's checkout p99 follows. "
        "loyalty is healthy: the mobile app long-polls it, each such request lands in the "
        "10-30 s bucket, and at 0.3 requests/s one is enough to lift its p99 to ~20 s; the "
        "polls grow more frequent through the evening (every ~8 minutes, then every ~90 s), "
        "so its p99 leaps more and more often. A cart rollout half an hour earlier is "
        "unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace storefront (Istio mesh, default buckets, 30 s scrapes): "
        "checkout latency alert.",
        _alert(
            world,
            "2026-07-07T16:36:00Z",
            service="shop-web",
            severity="warning",
            title="CheckoutLatencyHigh: shop-web POST /checkout p99 above 150ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "deploy", "risk-score", change=f"deployment/risk-score@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def summary_quantiles() -> base.Incident:
    """client_golang summaries (quantiles, _sum and _count, no buckets) scraped every 15 s."""
    world = World(
        name="summary-quantiles-15s",
        end=utc("2026-07-14T09:25:00Z"),
        shop=WAREHOUSE,
        namespace="warehouse",
        style="summary",
        scrape={"default": 15.0},
    )
    world.edit_configmap("slotting", utc("2026-07-14T08:52:15Z"), {"ZONE_COUNT": "14"})
    rev = world.rollout("inventory-svc", utc("2026-07-14T09:09:20Z"), tag="4.1.0")
    share = world.revision_share("inventory-svc", rev)
    stock = world.route("inventory-svc GET /stock/{sku}")
    stock.latency_mult = 1 + 2.5 * share
    stock.sigma_add = 0.1 * share
    stock.error_add = 0.03 * share
    # the label printers' spooler stalls for 45 s two minutes later: label-printer's quantiles
    # (over the last 10 minutes) stay up for ten minutes, across the alert
    stall = world.blip(utc("2026-07-14T09:11:40Z"), seconds=45, size=30)
    world.route("label-printer POST /print").latency_mult = 1 + stall
    world.compute()
    detail = (
        "inventory-svc 4.1.0 drops its stock cache: lookups ~3.5x slower and 3% fail with 500; "
        "picking-api calls it twice per pick. Its summaries' p99 moves over ten minutes (the "
        "client's MaxAge), its counters at once. A slotting config edit 17 minutes earlier "
        "is unrelated; label-printer's 45-second stall two minutes after the rollout lifts "
        "its p99 ~15x for the ten minutes its summary remembers it, and clears by itself."
    )
    return base.Incident(
        world,
        "Recorded in namespace warehouse (Go services with summaries, 15 s scrapes): picking "
        "errors alert.",
        _alert(
            world,
            "2026-07-14T09:21:00Z",
            service="picking-api",
            title="PickingErrors: picking-api 5xx ratio above 1% for 5m",
        ),
        {
            "root_cause": base._cause(
                "deploy",
                "inventory-svc",
                change=f"deployment/inventory-svc@{rev.number}",
                detail=detail,
            ),
            "fix": "rollback",
        },
    )


def no_error_metric() -> base.Incident:
    """Services that report only a latency histogram (no status, no error counter), 60 s."""
    world = World(
        name="no-error-metric-60s",
        end=utc("2026-07-21T03:50:00Z"),
        shop=TELEMATICS,
        namespace="telematics",
        style="bare",
        scrape={"default": 60.0},
    )
    world.rollout("geo-fence", utc("2026-07-21T03:12:30Z"), tag="1.5.2")  # harmless
    pods = world.live_pods("decoder")
    for pod, full in zip(pods, ("2026-07-21T03:29:40Z", "2026-07-21T03:33:10Z"), strict=True):
        world.leak(pod, full_at=utc(full), grow_s=240)
    ready = np.array([world.ready_mask(p) for p in pods], dtype=float)
    share = ready / np.maximum(ready.sum(axis=0), 1)
    pressure = np.zeros(world.n)
    for pod, s in zip(pods, share, strict=True):
        used = np.nan_to_num(pod.mem_override / pod.mem_limit)
        pressure += s * np.clip((used - 0.9) / 0.1, 0, 1)
    decode = world.route("decoder POST /decode")
    decode.latency_mult = 1 + 12 * pressure  # garbage collection near the limit
    decode.sigma_add = 0.3 * pressure
    decode.served = world.any_ready("decoder")
    # the fleet dashboard exports a day of trips now and then: 10-30 s each, past the top
    # bucket (5 s), so trip-store's export p99 reads 5 s whenever one lands in the window
    exports = world.rng.poisson(0.05, world.n).astype(float)
    for at in ("2026-07-21T03:31:20Z", "2026-07-21T03:36:50Z", "2026-07-21T03:41:30Z"):
        exports[world.step(utc(at))] += 1
    world.tails["trip-store GET /export"] = exports
    world.compute()
    detail = (
        "decoder leaks memory (a cache without eviction, shipped days ago): both pods climb to "
        "their 512Mi limit, collect garbage ever harder, then are OOM-killed and crash-loop; "
        "ingest-gw's latency follows. The services export no error metric at all, only a "
        "latency histogram per endpoint; the restarts are in kube-state-metrics. A geo-fence "
        "rollout 17 minutes before the first kill is unrelated, and so are trip-store's rare "
        "day exports (10-30 s, past the 5 s top bucket), three of them after the first kill."
    )
    return base.Incident(
        world,
        "Recorded in namespace telematics (latency histograms only, 60 s scrapes): ingest "
        "latency alert.",
        _alert(
            world,
            "2026-07-21T03:44:00Z",
            service="ingest-gw",
            severity="warning",
            title="IngestLatencyHigh: ingest-gw p95 above 120ms for 5m",
        ),
        {
            "root_cause": base._cause("resource", "decoder", change=None, detail=detail),
            "fix": "raise_limits",
        },
    )


def mixed_intervals() -> base.Incident:
    """cAdvisor every 15 s, kube-state-metrics every 30 s, the applications every 60 s."""
    world = World(
        name="mixed-intervals",
        end=utc("2026-07-28T13:15:00Z"),
        shop=LENDING,
        namespace="lending",
        style="promclient",
        scrape={"cadvisor": 15.0, "ksm": 30.0, "otel": 60.0, "default": 60.0},
    )
    world.edit_configmap("documents", utc("2026-07-28T12:41:05Z"), {"THUMBNAILS": "false"})
    rev = world.rollout("credit-check", utc("2026-07-28T12:58:45Z"), tag="1.13.0")
    rev.cpu_factor = 3.5
    share = world.revision_share("credit-check", rev)
    world.route("credit-check POST /score").latency_mult = 1 + 0.3 * share
    # a storage hiccup slows documents ~5x for 90 s, four minutes after the rollout
    hiccup = world.blip(utc("2026-07-28T13:03:10Z"), seconds=90, size=4)
    world.route("documents GET /docs").latency_mult = 1 + hiccup
    world.compute()
    detail = (
        "credit-check 1.13.0 scores with a heavier model: ~3.5x the CPU per request against a "
        "250m limit, so CFS throttles it and its latency triples; loan-portal's application "
        "submissions follow. cAdvisor (15 s) shows the throttling minutes of samples before "
        "the applications' 60 s histograms do. A documents config edit 18 minutes earlier is "
        "unrelated, and so is a 90-second storage hiccup that slows documents ~5x four "
        "minutes after the rollout (one or two of its samples)."
    )
    return base.Incident(
        world,
        "Recorded in namespace lending (cAdvisor 15 s, kube-state-metrics 30 s, applications "
        "60 s): application submission latency alert.",
        _alert(
            world,
            "2026-07-28T13:10:00Z",
            service="loan-portal",
            severity="warning",
            title="SubmitLatencyHigh: loan-portal POST /applications p95 above 300ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "deploy",
                "credit-check",
                change=f"deployment/credit-check@{rev.number}",
                detail=detail,
            ),
            "also_accept": [{"kind": "resource", "component": "credit-check"}],
            "fix": "rollback",
        },
    )


PG_STATES = (
    "active",
    "disabled",
    "fastpath function call",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
)
PG_LOCKS = (
    "accessexclusivelock",
    "accesssharelock",
    "exclusivelock",
    "rowexclusivelock",
    "rowsharelock",
    "sharelock",
    "sharerowexclusivelock",
    "shareupdateexclusivelock",
    "sireadlock",
)
ORDERS_SETUP = """\
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE shipments (
    order_id bigint PRIMARY KEY REFERENCES orders (id),
    carrier text NOT NULL,
    shipped_at timestamptz
);
INSERT INTO orders (customer_id, status, total_cents)
SELECT g % 800, 'paid', 1000 + g % 9000 FROM generate_series(1, 8000) AS g;
INSERT INTO shipments (order_id, carrier) SELECT id, 'dhl' FROM orders WHERE id % 3 = 0;
ANALYZE orders;
ANALYZE shipments;
"""
ORDERS_WORKLOAD = """\
SELECT id, status FROM orders WHERE customer_id = 42;
INSERT INTO orders (customer_id, status, total_cents) VALUES (42, 'paid', 4200);
SELECT count(*) FROM shipments WHERE shipped_at IS NULL;
"""
ORDERS_SESSIONS = """\
sessions:
  - name: migration
    sql:
      - "BEGIN"
      - "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"
      - "ALTER TABLE orders ADD COLUMN loyalty_points integer"
  - name: orders-writer
    sql: ["INSERT INTO orders (customer_id, status, total_cents) VALUES (7, 'paid', 990)"]
    after: migration
  - name: orders-reader
    sql: ["SELECT id, status FROM orders WHERE customer_id = 7"]
    after: migration
  - name: fulfilment-batch
    sql: ["SELECT o.id FROM orders o JOIN shipments s ON s.order_id = o.id LIMIT 50"]
    after: migration
"""


def _pg_exporter(world: World, *, server: str, pod: str, ip: str, dbs: dict[str, Any]) -> None:
    """postgres_exporter for one server, deployed in monitoring (kube-prometheus labels).
    ``dbs``: datname → (pool size, busy share per step, lock holder's transaction start step
    or None)."""
    common = {
        "container": "postgres-exporter",
        "endpoint": "http-metrics",
        "instance": f"{ip}:9187",
        "job": "postgres-exporter",
        "namespace": "monitoring",
        "pod": pod,
        "server": server,
        "service": pod.rsplit("-", 2)[0],
    }
    rng, n = world.rng, world.n
    steps = np.arange(n)
    activity, locks, longest = [], [], []
    for datname, (pool, busy, held_from) in dbs.items():
        held = np.zeros(n) if held_from is None else (steps >= held_from).astype(float)
        active = np.round(pool * busy * world.ar_noise(0.08, keep=0.8) + rng.poisson(1.0, n))
        active = np.minimum(active + held * np.round(0.8 * pool), pool + 4)
        counts = {
            "active": active,
            "idle": np.maximum(pool - active, 0),
            "idle in transaction": held + (rng.random(n) < 0.03),
        }
        for state in PG_STATES:
            row = counts.get(state, np.zeros(n))
            activity.append(
                ("pg_stat_activity_count", {**common, "datname": datname, "state": state}, row)
            )
        by_mode = {
            "accessexclusivelock": held * (1 + rng.integers(0, 2, n)),
            "accesssharelock": np.round(active * 1.6 + rng.poisson(2, n)),
            "rowexclusivelock": np.round(active * 0.4 * (1 - held) + held * 0.5 * pool),
            "exclusivelock": rng.poisson(0.2, n).astype(float),
        }
        for mode in PG_LOCKS:
            row = by_mode.get(mode, np.zeros(n))
            locks.append(("pg_locks_count", {**common, "datname": datname, "mode": mode}, row))
        waited = (steps - (held_from or 0)) * STEP_S
        statement = 0.05 + rng.exponential(0.15, n) + held * np.minimum(waited % 5.5, 5.0)
        longest.append(
            (
                "pg_stat_activity_max_tx_duration",
                {**common, "datname": datname, "state": "active"},
                statement,
            )
        )
        idle_tx = np.where(
            held > 0, waited + 4.0, rng.exponential(0.3, n) * (counts["idle in transaction"] > 0)
        )
        longest.append(
            (
                "pg_stat_activity_max_tx_duration",
                {**common, "datname": datname, "state": "idle in transaction"},
                idle_tx,
            )
        )
    target = f"postgres-exporter/{server}"
    world.families += [
        Family(
            "pg_up",
            "gauge",
            "Whether the last scrape of metrics from PostgreSQL was able to connect to the "
            "server (1 for yes, 0 for no).",
            target,
            (("pg_up", common, np.ones(n)),),
            ".0f",
        ),
        Family(
            "pg_stat_activity_count",
            "gauge",
            "number of connections in this state",
            target,
            tuple(activity),
            ".0f",
        ),
        Family("pg_locks_count", "gauge", "Number of locks", target, tuple(locks), ".0f"),
        Family(
            "pg_stat_activity_max_tx_duration",
            "gauge",
            "max duration in seconds any active transaction has been running",
            target,
            tuple(longest),
            ".3f",
        ),
    ]


def postgres_exporter_elsewhere() -> base.Incident:
    """A migration locks the orders table; postgres_exporter runs in namespace monitoring."""
    world = World(
        name="postgres-exporter-elsewhere",
        end=utc("2026-08-04T10:20:00Z"),
        shop=ORDERS,
        namespace="orders",
        style="promclient",
        window=timedelta(minutes=90),
        scrape={"default": 30.0},
    )
    for name, host, db in (
        ("orders-api", "orders-db.data.svc", "orders"),
        ("fulfilment-worker", "orders-db.data.svc", "orders"),
        ("catalog-api", "catalog-db.data.svc", "catalog"),
    ):
        user = name.replace("-", "_")
        world.env[name] = [
            {
                "name": "DATABASE_URL",
                "value": f"postgres://{user}@{host}:5432/{db}?sslmode=require",
            },
            {
                "name": "DATABASE_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "password"}},
            },
        ]
    world.rollout("catalog-api", utc("2026-08-04T09:49:50Z"), tag="5.5.1")  # harmless
    onset = utc("2026-08-04T10:06:30Z")
    for key in (
        "orders-api GET /orders/{id}",
        "orders-api POST /orders",
        "fulfilment-worker POST /batches",
    ):
        route = world.route(key)
        route.latency_mult = 1 + world.ramp(onset, seconds=45, size=300 if "GET" in key else 150)
        route.sigma_add = world.ramp(onset, seconds=45, size=0.3)
        route.error_add = world.ramp(onset + 5 * SECOND, seconds=60, size=0.22)
    world.compute()
    held = world.step(onset)
    _pg_exporter(
        world,
        server="orders-db.data.svc:5432",
        pod="postgres-exporter-orders-6c9d8f7b4-x2kqp",
        ip="10.42.3.17",
        dbs={"orders": (24, 0.09, held), "postgres": (2, 0.0, None)},
    )
    _pg_exporter(
        world,
        server="catalog-db.data.svc:5432",
        pod="postgres-exporter-catalog-5f7c9d6b8-m2wzr",
        ip="10.42.1.203",
        dbs={"catalog": (16, 0.1, None), "postgres": (2, 0.0, None)},
    )
    world.postgres = (
        "orders",
        {
            "setup.sql": ORDERS_SETUP,
            "workload.sql": ORDERS_WORKLOAD,
            "sessions.yaml": ORDERS_SESSIONS,
        },
    )
    detail = (
        "A hand-run migration opened a transaction, took ACCESS EXCLUSIVE on orders and sits "
        "idle in transaction; every query on orders from orders-api and fulfilment-worker waits "
        "until its 5 s statement timeout, and storefront's order pages fail. The database "
        "lives outside the namespace (orders-db.data.svc, named in the workloads' "
        "DATABASE_URL); postgres_exporter runs in monitoring. A catalog-api rollout 17 minutes "
        "earlier is unrelated (another database)."
    )
    return base.Incident(
        world,
        "Recorded in namespace orders (database in namespace data, exporter in monitoring, "
        "30 s scrapes): order page errors alert.",
        _alert(
            world,
            "2026-08-04T10:12:00Z",
            service="storefront",
            title="OrderPageErrors: storefront 5xx ratio above 3% for 3m",
        ),
        {
            "root_cause": base._cause("database", "postgres/orders", change=None, detail=detail),
            "fix": "cancel_query",
        },
    )


def coarse_rollout() -> base.Incident:
    """Five-minute samples: a rollout 20 s before the onset, a restart after the alert."""
    world = World(
        name="coarse-rollout-5m",
        end=utc("2026-08-11T18:30:00Z"),
        shop=PAYMENTS,
        namespace="payments",
        style="grpc",
        window=timedelta(hours=6),
        scrape={"default": 300.0},
    )
    world.edit_configmap("fraud-screen", utc("2026-08-11T17:23:40Z"), {"SCORE_THRESHOLD": "0.8"})
    world.rollout("fx-quote", utc("2026-08-11T17:56:15Z"), tag="1.1.3")  # same train, harmless
    rev = world.rollout("ledger-writer", utc("2026-08-11T17:58:05Z"), tag="7.3.0")
    share = world.revision_share("ledger-writer", rev)
    append = world.route("ledger-writer POST /ledger.v1.Ledger/Append")
    append.error_add = 0.07 * share
    append.latency_mult = 1 + 0.5 * share
    restart = world.rollout("pay-api", utc("2026-08-11T18:13:20Z"), manager="kubectl-rollout")
    world.template_notes[restart.uid] = {
        "kubectl.kubernetes.io/restartedAt": base.rfc3339(utc("2026-08-11T18:13:20Z"))
    }
    world.compute()
    detail = (
        "ledger-writer 7.3.0 rejects 7% of appends (Internal) from the moment its first pod "
        "is ready, about 20 s after the rollout began; pay-api turns them into Unavailable. "
        "The data are 5-minute samples, so the onset falls in the interval that holds the "
        "rollout. The on-call restarted pay-api three minutes after the alert (same image): "
        "a response, not a cause. fx-quote, rolled out by the same release train two minutes "
        "before ledger-writer (inside the same 5-minute interval), changes nothing; a "
        "fraud-screen config edit 35 minutes earlier is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace payments (gRPC services, 5-minute samples): charge errors alert.",
        _alert(
            world,
            "2026-08-11T18:10:00Z",
            service="pay-api",
            title="ChargeErrors: pay-api non-OK ratio above 2% for 10m",
        ),
        {
            "root_cause": base._cause(
                "deploy",
                "ledger-writer",
                change=f"deployment/ledger-writer@{rev.number}",
                detail=detail,
            ),
            "fix": "rollback",
        },
    )


def configmap_envfrom() -> base.Incident:
    """A shared ConfigMap read through envFrom; Reloader restarts its reader 3 s after."""
    world = World(
        name="configmap-envfrom-60s",
        end=utc("2026-08-18T21:05:00Z"),
        shop=CHECKOUT,
        namespace="checkout",
        style="otel",
        scrape={"default": 60.0},
    )
    world.add_configmap(
        "payment-limits",
        {"PSP_POOL_SIZE": "32", "PSP_TIMEOUT_MS": "2500", "MAX_BASKET_ITEMS": "200"},
        part_of="checkout",
    )
    world.add_configmap(
        "feature-flags",
        {"BASKET_RECOMMENDATIONS": "off", "NEW_PROMO_ENGINE": "off"},
        part_of="checkout",
    )
    world.env_from["checkout-worker"] = [{"configMapRef": {"name": "payment-limits"}}]
    world.env["basket"] = [
        {
            "name": "BASKET_RECOMMENDATIONS",
            "valueFrom": {
                "configMapKeyRef": {"name": "feature-flags", "key": "BASKET_RECOMMENDATIONS"}
            },
        }
    ]
    world.edit_configmap("feature-flags", utc("2026-08-18T20:33:10Z"), {"NEW_PROMO_ENGINE": "on"})
    edited = utc("2026-08-18T20:48:20Z")
    world.edit_configmap("payment-limits", edited, {"PSP_POOL_SIZE": "4"})
    rev = world.rollout("checkout-worker", edited + 3 * SECOND, manager="reloader")
    digest = hashlib.sha1(b"PSP_POOL_SIZE=4").hexdigest()
    world.template_env[rev.uid] = [{"name": "STAKATER_PAYMENT_LIMITS_CONFIGMAP", "value": digest}]
    share = world.revision_share("checkout-worker", rev)
    submit = world.route("checkout-worker POST /orders/submit")
    submit.latency_mult = 1 + 7 * share
    submit.sigma_add = 0.3 * share
    submit.error_add = 0.01 * share
    world.compute()
    detail = (
        "payment-limits (read by checkout-worker through envFrom) had PSP_POOL_SIZE cut from "
        "32 to 4 with kubectl edit; Reloader restarted checkout-worker three seconds later "
        "(same image) and its new pods queue for the payment connection pool: submissions "
        "~8x slower. A feature-flags edit 15 minutes earlier (read by basket through "
        "valueFrom, not reloaded) is unrelated."
    )
    return base.Incident(
        world,
        "Recorded in namespace checkout (OpenTelemetry via OTLP, 60 s scrapes): checkout "
        "latency alert.",
        _alert(
            world,
            "2026-08-18T21:00:00Z",
            service="checkout-web",
            severity="warning",
            title="CheckoutSlow: checkout-web POST /checkout p95 above 500ms for 5m",
        ),
        {
            "root_cause": base._cause(
                "config", "checkout-worker", change="configmap/payment-limits", detail=detail
            ),
            "fix": "config_revert",
        },
    )


SCENARIOS: dict[str, Callable[[], base.Incident]] = {
    "istio-deep-deploy": istio_deep_deploy,
    "otel-config-latency": otel_config_latency,
    "grpc-slow-downstream": grpc_slow_downstream,
    "spring-oomkill": spring_oomkill,
    "ingress-traffic-surge": ingress_traffic_surge,
    "linkerd-cpu-throttling": linkerd_cpu_throttling,
    "drift-decoy-deploy": drift_decoy_deploy,
    "otel-external-dependency": otel_external_dependency,
    "hpa-scaleout-decoy": hpa_scaleout_decoy,
    "scale-in-saturation": scale_in_saturation,
    "twin-rollouts": twin_rollouts,
    "istio-default-buckets": istio_default_buckets,
    "summary-quantiles-15s": summary_quantiles,
    "no-error-metric-60s": no_error_metric,
    "mixed-intervals": mixed_intervals,
    "postgres-exporter-elsewhere": postgres_exporter_elsewhere,
    "coarse-rollout-5m": coarse_rollout,
    "configmap-envfrom-60s": configmap_envfrom,
}


# --- writing and checking ---------------------------------------------------------------------


def write(name: str, incident: base.Incident) -> Path:
    world = incident.world
    assert isinstance(world, World)
    folder = HERE / name
    if (folder / "kubernetes").is_dir():
        shutil.rmtree(folder / "kubernetes")
    (folder / "kubernetes").mkdir(parents=True)
    scenario = {
        "format": 1,
        "name": name,
        "description": incident.description,
        "time": {"start": base.rfc3339(world.start), "end": base.rfc3339(world.end)},
        "trigger": incident.trigger,
        "truth": incident.truth,
    }
    if world.postgres is not None:
        database, files = world.postgres
        scenario.pop("truth")
        scenario |= {"postgres": {"database": database}, "truth": incident.truth}
        (folder / "postgres").mkdir(exist_ok=True)
        for file, text in files.items():
            (folder / "postgres" / file).write_text(text, encoding="utf-8")
    base._dump_yaml(folder / "scenario.yaml", [scenario])
    (folder / "metrics.om").write_text(render(world), encoding="utf-8")
    for file, objects in KubeWriter(world).files().items():
        base._dump_yaml(folder / "kubernetes" / f"{file}.yaml", objects)
    return folder


def check(folder: Path) -> list[str]:
    """Timestamps within ``time``, YAML that parses, and promtool's verdict on the metrics."""
    problems: list[str] = []
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    start, end = utc(scenario["time"]["start"]), utc(scenario["time"]["end"])
    if not start <= utc(scenario["trigger"]["at"]) <= end:
        problems.append("trigger.at is outside time")
    for path in sorted((folder / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            problems += [f"{path.name}: {t} outside time" for t in base._times(doc) if utc(t) > end]
    lo, hi = int(start.timestamp()), int(end.timestamp())
    lines = (folder / "metrics.om").read_text().splitlines()
    if lines[-1] != "# EOF":
        problems.append("metrics.om does not end in # EOF")
    for line in lines[:-1]:
        if not line.startswith("#") and not lo <= float(line.rsplit(" ", 1)[1]) <= hi:
            problems.append(f"sample outside time: {line[:80]}")
            break
    promtool = shutil.which("promtool")
    if promtool is not None:
        with tempfile.TemporaryDirectory() as blocks:
            done = subprocess.run(
                [
                    promtool,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    str(folder / "metrics.om"),
                    blocks,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if done.returncode != 0:
            problems.append(f"promtool: {done.stderr.strip()[-800:]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), help="generate one scenario")
    parser.add_argument("--check", action="store_true", help="verify instead of generating")
    parser.add_argument("--names", action="store_true", help="list the generated scenarios")
    args = parser.parse_args(argv)
    if args.names:
        print("\n".join(SCENARIOS))
        return 0
    failed = False
    for name in [args.only] if args.only else list(SCENARIOS):
        if not args.check:
            write(name, SCENARIOS[name]())
        problems = check(HERE / name)
        size = sum(p.stat().st_size for p in (HERE / name).rglob("*") if p.is_file())
        print(f"{name}: {size / 1e6:.2f} MB, {len(problems)} problems", file=sys.stderr)
        for problem in problems[:20]:
            print(f"  {problem}", file=sys.stderr)
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
