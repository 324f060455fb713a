"""Which series are in scope, how to query them, and which workload each belongs to.

The graph asks Prometheus for its label names, builds selectors with :func:`scope_selectors`,
asks which series match, and plans one raw range query per metric name with
:func:`plan_queries`. Raw values, never ``rate()``: the analysis turns counters into rates
itself, so resets, gaps and any scrape interval are handled in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from diagnose.domain import models
from diagnose.domain.labels import WORKLOAD_LABELS

SERVICE_LABELS = WORKLOAD_LABELS
"""Labels that name a workload, in the order :func:`component_of` trusts them."""

_SELECTOR_LABELS = (*SERVICE_LABELS, "source_workload")
_POD_SUFFIX = re.compile(r"^(?P<base>.+?)(?:-[a-z0-9]{6,10})?-[a-z0-9]{5}$")
_ORDINAL = re.compile(r"^(?P<base>.+)-\d+$")
_NODE_PREFIXES = ("node_", "kube_node_")
"""Node-level series (node-exporter, kube-state-metrics' nodes): they belong to a node."""
_PORT = re.compile(r":\d+$")
_JOB_PATH = re.compile(r"^(?:[^/]+/)+(?P<name>[^/]+)$")
"""A ``job`` that is a path names the workload by its last part: OpenTelemetry's OTLP
translation writes ``<service.namespace>/<service.name>``, PodMonitors ``<namespace>/<name>``."""
_DROPPED_PREFIXES = ("scrape_", "prometheus_", "promhttp_", "go_gc_", "process_start_")
_DROPPED_SUFFIXES = ("_created", "_info")
_DESIRED_STATE = re.compile(
    r"^kube_\w*(_resource_limits|_resource_requests|_spec_\w+|_labels|_annotations|"
    r"_metadata_\w+|_owner|_status_observed_generation)$"
)
"""kube-state-metrics series that restate what objects are configured to be: a rollout makes
them jump (old and new pods both counted) without anything being wrong. Changes to them are
read from the Kubernetes API instead."""


@dataclass(frozen=True)
class PlannedQuery:
    """One range query over one metric name, restricted to the scope. ``reason`` says why it
    was kept or, for a query that will not run, why it was dropped (``query`` is then empty)."""

    query: str
    metric: str
    family: str  # counter | gauge | histogram | summary | unknown
    reason: str


def scope_selectors(trigger: models.Trigger, *, label_names: Sequence[str]) -> list[str]:
    """Series selectors that together match every series of the trigger's namespace and
    service, under whichever namespace-like and service-like labels the store has."""
    present = set(label_names)
    selectors: list[str] = []
    if trigger.namespace:
        names = sorted(n for n in present if "namespace" in n.lower())
        selectors += [f'{{{n}="{_escape(trigger.namespace)}"}}' for n in names]
    if trigger.namespace and "job" in present:
        selectors.append(f'{{job=~"{_escape(re.escape(trigger.namespace))}/.+"}}')
    service = _escape(trigger.service)
    for label in _SELECTOR_LABELS:
        if label not in present or not trigger.service:
            continue
        if label == "job":
            selectors.append(f'{{job=~"(?:.+/)?{_escape(re.escape(trigger.service))}"}}')
        elif label == "pod":
            selectors.append(f'{{pod=~"{re.escape(trigger.service)}-.*"}}'.replace("\\", "\\\\"))
        else:
            selectors.append(f'{{{label}="{service}"}}')
    return _unique(selectors)


MAX_NEIGHBOURS = 200
"""At most this many components are matched by name in one selector."""


def components_in_scope(
    series: Sequence[Mapping[str, str]], *, trigger: models.Trigger
) -> list[str]:
    """The trigger's service and every workload seen in its namespace: the neighbours whose
    series may carry no namespace label at all (OpenTelemetry metrics rarely do)."""
    found = {trigger.service} if trigger.service else set()
    for labels in series:
        in_namespace = any(
            "namespace" in k.lower() and v == trigger.namespace for k, v in labels.items()
        ) or labels.get("job", "").startswith(f"{trigger.namespace}/")
        component = component_of(labels) if in_namespace else None
        if component and "/" not in component:
            found.add(component)
    return sorted(found)[:MAX_NEIGHBOURS]


def neighbour_selectors(components: Sequence[str], *, label_names: Sequence[str]) -> list[str]:
    """Selectors for the series of these components under every service-like label present
    (a second discovery round, after the namespace showed which workloads exist)."""
    if not components:
        return []
    pattern = _alternation(components)
    present = set(label_names)
    return [
        f'{{{label}=~"{_label_pattern(label, pattern)}"}}'
        for label in _SELECTOR_LABELS
        if label in present and label != "pod"
    ]


def _label_pattern(label: str, pattern: str) -> str:
    """A ``job`` may carry a path before the workload's name (see :data:`_JOB_PATH`)."""
    return f"(?:.+/)?(?:{pattern})" if label == "job" else pattern


def _alternation(components: Sequence[str]) -> str:
    """A PromQL regex (fully anchored by Prometheus) matching exactly these names."""
    return _escape("|".join(re.escape(c) for c in sorted(set(components))))


def plan_queries(
    series: Sequence[Mapping[str, str]],
    *,
    trigger: models.Trigger,
    max_series: int = 20000,
    components: Sequence[str] = (),
) -> list[PlannedQuery]:
    """One raw range query per metric name, scoped to the trigger's namespace (when the series
    carry one) or service. Only runnable queries: :func:`dropped_metrics` says what was left
    out and why (metrics that cannot matter, and the biggest ones when the total exceeds
    ``max_series``). Series scoped by service rather than namespace match all of
    ``components`` (see :func:`components_in_scope`), else the trigger's service alone."""
    return _plan_all(series, trigger=trigger, max_series=max_series, components=components)[0]


def dropped_metrics(
    series: Sequence[Mapping[str, str]],
    *,
    trigger: models.Trigger,
    max_series: int = 20000,
    components: Sequence[str] = (),
) -> list[PlannedQuery]:
    """The metrics :func:`plan_queries` leaves out, each with an empty query and a reason."""
    return _plan_all(series, trigger=trigger, max_series=max_series, components=components)[1]


def _plan_all(
    series: Sequence[Mapping[str, str]],
    *,
    trigger: models.Trigger,
    max_series: int,
    components: Sequence[str] = (),
) -> tuple[list[PlannedQuery], list[PlannedQuery]]:
    counts: dict[str, int] = {}
    labels_of: dict[str, set[str]] = {}
    for item in series:
        name = item.get("__name__", "")
        counts[name] = counts.get(name, 0) + 1
        labels_of.setdefault(name, set()).update(item)
    dropped: list[PlannedQuery] = []
    kept: dict[str, int] = {}
    for name, count in sorted(counts.items()):
        why = _irrelevant(name)
        if why:
            dropped.append(PlannedQuery("", name, family_of(name, labels_of[name]), why))
        else:
            kept[name] = count
    kept, trimmed = _trim(kept, max_series=max_series)
    dropped += [
        PlannedQuery("", n, family_of(n, labels_of[n]), f"dropped: {c} series, over the budget")
        for n, c in trimmed
    ]
    planned = [
        _plan(n, kept[n], labels=labels_of[n], trigger=trigger, components=components)
        for n in sorted(kept)
    ]
    return planned, dropped


def family_of(name: str, labels: Sequence[str] | set[str] = ()) -> str:
    """counter | gauge | histogram | summary | unknown, from the name and label names."""
    if name.endswith("_bucket") or "le" in labels:
        return "histogram"
    if "quantile" in labels:
        return "summary"
    if name.endswith(("_total", "_count", "_sum")):
        return "counter"
    if name.endswith(("_seconds_total", "_bytes_total")):
        return "counter"
    if name.endswith(("_bytes", "_ratio", "_percent", "_count", "_size")) or name == "up":
        return "gauge"
    return "unknown"


def component_of(labels: Mapping[str, str]) -> str | None:
    """The workload a series belongs to, from its labels in :data:`SERVICE_LABELS` order.

    postgres_exporter series (``pg_*`` with ``datname``) belong to ``postgres/<datname>``;
    node-level series (``node_*``, ``kube_node_*``) with a ``node`` or ``instance`` label to
    ``node/<name>`` (the instance without its port); a pod name loses its ReplicaSet hash
    (``checkout-7d9f8c6b5d-x2x9q`` → ``checkout``) or StatefulSet ordinal (``web-0`` → ``web``).
    A container name never stands for a workload when the series names its pod: many charts
    call every container ``server`` or ``app``, and ten workloads would merge into one.
    """
    name = labels.get("__name__", "")
    if name.startswith("pg_") and labels.get("datname"):
        return f"postgres/{labels['datname']}"
    host = labels.get("node") or labels.get("instance")
    if name.startswith(_NODE_PREFIXES) and host:
        return f"node/{_PORT.sub('', host)}"
    for label in SERVICE_LABELS:
        value = labels.get(label, "")
        if not value or (label == "container" and value == "POD"):
            continue
        if label == "job":
            path = _JOB_PATH.match(value)
            return path["name"] if path else value
        if label == "container" and labels.get("pod"):
            return workload_of_pod(labels["pod"])  # charts name every container "server"
        return workload_of_pod(value) if label == "pod" else value
    return None


def workload_of_pod(pod: str) -> str:
    """A pod name without its controller's suffix."""
    match = _POD_SUFFIX.match(pod)
    if match:
        return match["base"]
    match = _ORDINAL.match(pod)
    return match["base"] if match else pod


# --- helpers ----------------------------------------------------------------------------------


def _plan(
    name: str,
    count: int,
    *,
    labels: set[str],
    trigger: models.Trigger,
    components: Sequence[str] = (),
) -> PlannedQuery:
    matchers = [f'__name__="{_escape(name)}"']
    namespace_labels = sorted(n for n in labels if "namespace" in n.lower())
    if trigger.namespace and namespace_labels:
        matchers.append(f'{namespace_labels[0]}="{_escape(trigger.namespace)}"')
    elif trigger.service:
        service_label = next((n for n in SERVICE_LABELS if n in labels and n != "pod"), None)
        if service_label and len(components) > 1:
            pattern = _label_pattern(service_label, _alternation(components))
            matchers.append(f'{service_label}=~"{pattern}"')
        elif service_label == "job":
            pattern = _label_pattern("job", _escape(re.escape(trigger.service)))
            matchers.append(f'job=~"{pattern}"')
        elif service_label:
            matchers.append(f'{service_label}="{_escape(trigger.service)}"')
    family = family_of(name, labels)
    query = "{" + ",".join(matchers) + "}"
    return PlannedQuery(query, name, family, f"kept: {count} series ({family})")


def _irrelevant(name: str) -> str:
    if not name:
        return "dropped: no metric name"
    if name.endswith(_DROPPED_SUFFIXES):
        return "dropped: creation timestamps and info series carry no signal"
    if name.startswith(_DROPPED_PREFIXES):
        return "dropped: the monitoring system's own series"
    if _DESIRED_STATE.match(name):
        return "dropped: desired state (limits, specs), read as changes from the Kubernetes API"
    return ""


def _trim(
    counts: dict[str, int], *, max_series: int
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Drop the biggest metrics until the total fits the budget."""
    kept = dict(counts)
    trimmed: list[tuple[str, int]] = []
    for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if sum(kept.values()) <= max_series:
            break
        del kept[name]
        trimmed.append((name, count))
    return kept, trimmed


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- databases --------------------------------------------------------------------------------

_DATABASE_URL = re.compile(
    r"^(?:jdbc:)?postgres(?:ql)?://(?:[^@/]*@)?(?P<hosts>[^/?#]*)(?:/(?P<db>[^?#]*))?", re.I
)
_LIBPQ_KEY = re.compile(r"\b(?P<key>host|dbname)\s*=\s*(?P<value>[^\s]+)", re.I)
_HOST_ENV = re.compile(r"(?:^|_)(?:DB|DATABASE|POSTGRES|PG|PGSQL)\w*(?:HOST|ADDR|ADDRESS|SERVER)$")
_NAME_ENV = re.compile(r"^(?:PGDATABASE|(?:\w+_)?(?:DB|DATABASE)(?:_NAME)?|\w*POSTGRES_DB)$")
_HOST_LABELS = ("server", "instance", "job", "target")
"""Labels a postgres_exporter's series name their server by: ``server`` (multi-target mode),
``instance`` and ``target`` (the probe address), ``job`` (often named after the database)."""


@dataclass(frozen=True)
class DatabaseScope:
    """The PostgreSQL databases the workloads in scope use, by name and by host."""

    names: tuple[str, ...]
    hosts: tuple[str, ...]


def databases_in_scope(
    deployments: Sequence[Mapping[str, object]], *, configured: str = ""
) -> DatabaseScope:
    """The databases named by the probes' configuration and by the workloads' environment:
    PostgreSQL URLs (``postgres://``, ``jdbc:postgresql://``), libpq strings (``host=… dbname=…``),
    ``*_DB_HOST``-like host variables and ``*_DB_NAME``-like name variables."""
    names = [configured] if configured else []
    hosts: list[str] = []
    for deployment in deployments:
        env = deployment.get("env")
        for key, value in env.items() if isinstance(env, Mapping) else ():
            host, name = database_endpoint(str(key), str(value))
            hosts += [host] if host else []
            names += [name] if name else []
    return DatabaseScope(tuple(_unique([n for n in names if n])), tuple(_unique(hosts)))


def database_endpoint(key: str, value: str) -> tuple[str | None, str | None]:
    """(host, database) named by one environment variable, either part None when absent."""
    url = _DATABASE_URL.match(value.strip())
    if url:
        first = url["hosts"].split(",")[0]
        host = _PORT.sub("", first.rsplit("@", 1)[-1]) or None
        return _short_host(host), (url["db"] or None)
    pairs = {m["key"].lower(): m["value"] for m in _LIBPQ_KEY.finditer(value)}
    if "host" in pairs or "dbname" in pairs:
        return _short_host(pairs.get("host")), pairs.get("dbname")
    upper = key.upper()
    if _HOST_ENV.search(upper) and re.fullmatch(r"[A-Za-z0-9.-]+(?::\d+)?", value.strip()):
        return _short_host(_PORT.sub("", value.strip())), None
    if _NAME_ENV.match(upper) and re.fullmatch(r"[A-Za-z0-9_$-]+", value.strip()):
        return None, value.strip()
    return None, None


def _short_host(host: str | None) -> str | None:
    """A host's first DNS label (``orders-db.data.svc`` → ``orders-db``): exporters label
    their target by any of its forms. IP addresses and local names name no database."""
    if not host or re.fullmatch(r"[\d.]+|\[.*\]|localhost", host):
        return None
    return host.split(".")[0]


def database_selectors(scope: DatabaseScope, *, label_names: Sequence[str]) -> list[str]:
    """Selectors for the ``pg_*`` series of these databases wherever their exporter runs (any
    namespace): by ``datname``, and by a host named in the exporter's own labels."""
    present = set(label_names)
    selectors = []
    if scope.names and "datname" in present:
        selectors.append(f'{{__name__=~"pg_.+",datname=~"{_alternation(scope.names)}"}}')
    if scope.hosts:
        hosts = _escape("|".join(re.escape(h) for h in sorted(set(scope.hosts))))
        selectors += [
            f'{{__name__=~"pg_.+",{label}=~"(?:.*[^A-Za-z0-9-])?(?:{hosts})(?:[^A-Za-z0-9-].*)?"}}'
            for label in _HOST_LABELS
            if label in present
        ]
    return selectors


def plan_database_queries(
    series: Sequence[Mapping[str, str]], *, scope: DatabaseScope
) -> list[PlannedQuery]:
    """One query per ``pg_*`` metric found by :func:`database_selectors`, restricted to the
    databases in scope (by ``datname`` when the series carry it, else by the exporter's
    ``job``), never to the trigger's namespace: the exporter often runs in another one."""
    by_name: dict[str, list[Mapping[str, str]]] = {}
    for item in series:
        name = item.get("__name__", "")
        if name.startswith("pg_") and not _irrelevant(name):
            by_name.setdefault(name, []).append(item)
    planned = []
    for name, items in sorted(by_name.items()):
        labels = {k for item in items for k in item}
        matchers = [f'__name__="{_escape(name)}"']
        if "datname" in labels and scope.names:
            matchers.append(f'datname=~"{_alternation(scope.names)}"')
        else:
            jobs = sorted({item["job"] for item in items if item.get("job")})
            matchers += [f'job=~"{_alternation(jobs)}"'] if jobs else []
        family = family_of(name, labels)
        reason = f"kept: {len(items)} series of the databases in scope ({family})"
        planned.append(PlannedQuery("{" + ",".join(matchers) + "}", name, family, reason))
    return planned


# --- sampling intervals -------------------------------------------------------------------------

PROBE_WINDOW_S = 600.0
"""Samples are counted over windows of this length to learn a metric's sampling interval: ten
minutes hold two samples of a five-minute recording and 600 of a one-second one."""


def interval_probe(query: str) -> str | None:
    """The query that counts the samples of a series selector per :data:`PROBE_WINDOW_S` (run
    as a range query with that step): the densest window gives the sampling interval. None for
    anything but a plain selector (an expression has no samples of its own to count)."""
    if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*(\{.*\})?|\{.*\}", query.strip(), re.DOTALL):
        return None
    return f"count_over_time({query.strip()}[{int(PROBE_WINDOW_S)}s])"


SCRAPE_INTERVALS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Intervals people configure; a count's estimate within 12 % of one of them is that one."""


def sampling_interval(record: models.Evidence) -> float | None:
    """Seconds between samples, from an :func:`interval_probe` answer: the window over the
    densest count (a window only partly covered by data counts fewer, so the densest one is the
    least likely to overstate the interval), snapped to a usual scrape interval when close to
    one (a window that holds a sample at each end counts one more: 11 a minute apart in ten
    minutes). None when the answer holds no count."""
    raw = record.raw if record.status is models.Status.OK else None
    counts = [
        float(v)
        for series in (raw if isinstance(raw, list) else [])
        if isinstance(series, Mapping)
        for v in series.get("v") or []
        if v is not None and math.isfinite(float(v))
    ]
    densest = max(counts, default=0.0)
    if densest < 1:
        return None
    for samples in (densest, densest - 1):  # the second for a window holding both ends
        if samples < 1:
            break
        estimate = PROBE_WINDOW_S / samples
        usual = min(SCRAPE_INTERVALS, key=lambda i: abs(math.log(i / estimate)))
        if abs(usual - estimate) <= 0.12 * usual:
            return usual
    return PROBE_WINDOW_S / densest


def query_step(interval_s: float | None, *, step_s: float) -> float:
    """The step to read a metric at: never finer than its sampling interval (a finer step only
    repeats each sample), and the scope's step when the interval is unknown or finer than it."""
    if interval_s is None or interval_s < 2 * step_s:
        return step_s
    return float(math.floor(interval_s))
