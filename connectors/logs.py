"""Pod logs → templates: the only module that imports ``drain3``.

Two sources implement :class:`diagnose.domain.logs.LogSource`: :class:`PodLogs` reads each
pod's log through the Kubernetes API (``pods/log``, by way of
:meth:`connectors.kubernetes.KubernetesConnector.read_pod_log`), :class:`LokiLogs` asks Loki
(LogQL ``query_range`` over HTTP). Both read a baseline (from the window's start, the first
lines) and the incident (from ``incident_from``, the last lines), each bounded (:class:`LogBounds`),
and hand the lines to :func:`template_reads`: multi-line stack traces are folded into the line
that opened them, every line is redacted (``diagnose.domain.redaction``), Drain3 mines the
templates of all pods together (one template, one id, whichever pod wrote it), and each pod
becomes one :class:`~diagnose.domain.logs.LogPayload` of templates with the times and trace ids
of their lines. Raw lines never leave this module. A source that refuses or fails is a record
with that status, which the graph turns into a note.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

import httpx
from drain3 import TemplateMiner  # type: ignore[import-untyped]  # no type hints
from drain3.masking import MaskingInstruction  # type: ignore[import-untyped]
from drain3.template_miner_config import (  # type: ignore[import-untyped]
    TemplateMinerConfig,
)

from connectors import _http
from connectors import kubernetes as kubernetes_
from diagnose.domain import logs as domain_logs
from diagnose.domain import ports, redaction
from diagnose.domain.models import Evidence, Status, Window, format_time, parse_time

SOURCE = domain_logs.SOURCE


@dataclass(frozen=True)
class LogBounds:
    """How much log is read at most; each bound is a setting (docs/logs.md)."""

    lines_per_pod: int = 2000
    """Lines per pod and window (baseline, incident): ``tailLines`` for the incident."""
    bytes_per_pod: int = 1_000_000
    """Bytes per pod and window: ``limitBytes``."""
    pods_per_service: int = 2
    """Pods read per workload (the ones that restarted first): replicas log alike."""
    pods: int = 60
    """Pods read in all: the alerted service first, then the namespace's other workloads."""
    total_bytes: int = 16_000_000
    """Bytes read in all; pods past it are left out, with a note."""
    examples: int = 3
    """Redacted example lines kept per template and pod."""


@dataclass(frozen=True)
class LogRead:
    """One read of one pod's log, before templating: what was asked and what came back."""

    service: str
    pod: str
    container: str
    previous: bool
    query: str
    status: Status
    summary: str
    lines: list[tuple[float, str]] = field(default_factory=list)  # (time, text), oldest first
    bytes: int = 0
    dropped: int = 0


# --- lines ----------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))\s?(.*)$", re.S
)
_CONTINUATION = re.compile(
    r"^\s+at\s|^\s*at\s+[\w$.]+\(|^\s*Caused by:|^\s*\.\.\.\s\d+\s(?:more|common)|^\s+File\s\""
    r"|^Traceback \(most recent call last\)|^\s{2,}\S|^\t"
)
_LEVEL_ERROR = re.compile(
    r"(?i)(?:^|[\s\[|\"'=:])(?:error|err|fatal|crit(?:ical)?|severe|panic|alert|emerg)"
    r"(?:[\s\]|\"':,]|$)"
)
_LEVEL_WARNING = re.compile(r"(?i)(?:^|[\s\[|\"'=:])(?:warn(?:ing)?)(?:[\s\]|\"':,]|$)")
_EXCEPTION = re.compile(
    r"(?:[\w$](?:Exception|Error)\b(?::|\s+at\b|$)|Traceback \(most recent call last\)"
    r"|^panic:|\bgoroutine \d+ \[)",
    re.M,
)
_EXCEPTION_WORDS = ("Exception", "Error", "Traceback", "panic:", "goroutine ")
_TRACE_ID = re.compile(
    r"(?i)\b(?:trace[_.\s-]?id|traceid|trace)[\"']?\s*[:=]\s*[\"']?([0-9a-f]{16,32})\b"
)
_MASKS = (
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "IP"),
    (r"\b(?:0x)?[0-9a-fA-F]{12,}\b", "HEX"),
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?", "TIME"),
    (r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b", "TIME"),
    (r"(?<![A-Za-z0-9])(?<![A-Za-z]#)[-+]?\d+(?:\.\d+)?(?![A-Za-z])", "NUM"),
)


def parse_line(line: str) -> tuple[float | None, str]:
    """A log line's leading RFC 3339 timestamp (seconds since the epoch) and the rest."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None, line
    try:
        return parse_time(match.group(1)).timestamp(), match.group(2)
    except ValueError:
        return None, line


def fold_records(lines: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    """Lines with a stack trace's continuation lines (``at …``, ``Caused by:``, indented
    ones) joined to the line that opened it: one record per event."""
    records: list[tuple[float, str]] = []
    for at, text in lines:
        if records and _CONTINUATION.match(text):
            first_at, first = records[-1]
            if len(first) < 4000:
                records[-1] = (first_at, f"{first}\n{text}")
            continue
        records.append((at, text))
    return records


def is_exception(text: str) -> bool:
    """Whether a record is an exception or a stack trace."""
    if "\n" in text and _CONTINUATION.search(text):
        return True
    return any(w in text for w in _EXCEPTION_WORDS) and bool(_EXCEPTION.search(text))


def is_error(text: str) -> bool:
    """Whether a record is an error by its level (error, fatal, critical…), or an exception."""
    head = text.split("\n", 1)[0][:300]
    return bool(_LEVEL_ERROR.search(head)) or is_exception(text)


def is_warning(text: str) -> bool:
    """Whether a record is a warning by its level."""
    return bool(_LEVEL_WARNING.search(text.split("\n", 1)[0][:300]))


def trace_id(text: str) -> str:
    """The trace id a record names (``TraceID: …``, ``trace_id=…``), lower case; "" if none."""
    match = _TRACE_ID.search(text[:2000])
    return match.group(1).lower() if match else ""


# --- templates ------------------------------------------------------------------------------


class _Miner:
    """Drain3 over the first line of each record, variables masked before mining."""

    def __init__(self) -> None:
        config = TemplateMinerConfig()
        config.masking_instructions = [MaskingInstruction(p, name) for p, name in _MASKS]
        config.mask_prefix, config.mask_suffix = "<", ">"
        config.drain_sim_th = 0.5
        config.drain_depth = 6
        config.drain_max_children = 100
        config.parametrize_numeric_tokens = False
        config.profiling_enabled = False
        self._miner = TemplateMiner(config=config)

    def add(self, text: str) -> int:
        head = _TRACE_ID.sub("trace_id=<TRACE>", text.split("\n", 1)[0][:1000])
        return int(self._miner.add_log_message(head)["cluster_id"])

    def templates(self) -> dict[int, str]:
        """Every template by id, as mined so far (a template widens as lines come)."""
        return {int(c.cluster_id): str(c.get_template()) for c in self._miner.drain.clusters}


def template_reads(
    reads: Sequence[LogRead], *, incident_from: datetime, window: Window, bounds: LogBounds
) -> list[Evidence]:
    """One evidence record per read: its lines as templates (raw ``LogPayload``), mined by one
    Drain3 instance across every pod; reads that failed keep their status."""
    miner = _Miner()
    mined: list[list[tuple[int, float, str]]] = []
    for read in reads:
        mined.append([(miner.add(text), at, text) for at, text in fold_records(read.lines)])
    templates = miner.templates()
    out = []
    for read, records in zip(reads, mined, strict=True):
        if read.status is not Status.OK:
            out.append(_record(read, summary=read.summary, window=window, raw=None))
            continue
        payload = _payload(
            read,
            records,
            templates=templates,
            incident_from=incident_from,
            examples=bounds.examples,
        )
        out.append(_record(read, summary=_summary(payload), window=window, raw=payload))
    return out


def _payload(
    read: LogRead,
    records: Sequence[tuple[int, float, str]],
    *,
    templates: dict[int, str],
    incident_from: datetime,
    examples: int,
) -> domain_logs.LogPayload:
    by_template: dict[int, domain_logs.TemplatePayload] = {}
    for cluster_id, at, text in records:
        entry = by_template.get(cluster_id)
        if entry is None:
            entry = by_template[cluster_id] = {
                "template": redaction.redact(templates.get(cluster_id, ""))[:500],
                "error": False,
                "warning": False,
                "exception": False,
                "times": [],
                "traces": [],
                "examples": [],
            }
        if not entry["times"] or "\n" in text:  # a template's lines share their level
            entry["error"] = entry["error"] or is_error(text)
            entry["warning"] = not entry["error"] and (entry["warning"] or is_warning(text))
            entry["exception"] = entry["exception"] or is_exception(text)
        entry["times"].append(round(at, 3))
        entry["traces"].append(trace_id(text))
        if len(entry["examples"]) < examples:
            entry["examples"].append(redaction.redact(text[:1500]))
    times = [at for _, at, _ in records]
    return {
        "service": read.service,
        "pod": read.pod,
        "container": read.container,
        "previous": read.previous,
        "incident_from": format_time(incident_from),
        "lines": len(read.lines),
        "bytes": read.bytes,
        "dropped": read.dropped,
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "templates": sorted(by_template.values(), key=lambda t: (-len(t["times"]), t["template"])),
    }


def _summary(payload: domain_logs.LogPayload) -> str:
    errors = sum(len(t["times"]) for t in payload["templates"] if t["error"] or t["warning"])
    previous = " (previous instance)" if payload["previous"] else ""
    dropped = f"; {payload['dropped']} lines past the bounds left out" if payload["dropped"] else ""
    return (
        f"{payload['service']} pod {payload['pod']}{previous}: "
        f"{_http.plural(payload['lines'], 'line')}, "
        f"{_http.plural(len(payload['templates']), 'template')}, {errors} error or warning "
        f"line(s){dropped}"
    )


def _record(read: LogRead, *, summary: str, window: Window, raw: Any) -> Evidence:
    status = read.status
    if raw is not None and not raw["lines"]:
        status = Status.EMPTY
    return Evidence.make(
        source=SOURCE, query=read.query, window=window, status=status, summary=summary, raw=raw
    )


def _within(lines: Sequence[str], *, start: float, end: float) -> list[tuple[float, str]]:
    """Timestamped lines in [start, end), in order; untimed lines take the previous time."""
    out: list[tuple[float, str]] = []
    last: float | None = None
    for line in lines:
        at, text = parse_line(line)
        at = at if at is not None else last
        if at is None:
            continue
        last = at
        if start <= at < end:
            out.append((at, text))
    return out


# --- the Kubernetes API ----------------------------------------------------------------------


_POD_HASH = re.compile(r"-[a-z0-9]{5,10}$")


def service_of(pod: ports.PodPayload) -> str:
    """The workload a pod belongs to: its ``app.kubernetes.io/name`` or ``app`` label, else
    its owner without the ReplicaSet's template hash, else its name without its suffixes."""
    labels = pod.get("labels") or {}
    for key in ("app.kubernetes.io/name", "app", "k8s-app"):
        if labels.get(key):
            return str(labels[key])
    owner = str(pod.get("owner") or "")
    kind, _, name = owner.partition("/")
    if kind == "replicaset":
        return _POD_HASH.sub("", name)
    if name:
        return name
    return _POD_HASH.sub("", _POD_HASH.sub("", str(pod["name"])))


class PodLogs:
    """:class:`~diagnose.domain.logs.LogSource` over the Kubernetes API's ``pods/log``."""

    def __init__(
        self,
        cluster: kubernetes_.KubernetesConnector,
        *,
        bounds: LogBounds | None = None,
    ) -> None:
        self._cluster = cluster
        self.bounds = bounds or LogBounds()

    def read_logs(
        self,
        *,
        namespace: str,
        window: Window,
        incident_from: datetime,
        services: Sequence[str] = (),
    ) -> list[Evidence]:
        listed = self._cluster.list_pods(namespace=namespace)
        if listed.status is not Status.OK:
            return [
                Evidence.make(
                    source=SOURCE,
                    query=f"kubectl logs -n {namespace}",
                    window=window,
                    status=listed.status,
                    summary=f"no pods to read logs from: {listed.summary}",
                    raw=None,
                )
            ]
        chosen = choose_pods(list(listed.raw or []), services=services, bounds=self.bounds)
        reads: list[LogRead] = []
        budget = self.bounds.total_bytes
        for pod, container, previous in chosen:
            if budget <= 0:
                break
            read = self._read(
                namespace,
                pod=pod,
                container=container,
                previous=previous,
                window=window,
                incident_from=incident_from,
            )
            budget -= read.bytes
            reads.append(read)
        return template_reads(reads, incident_from=incident_from, window=window, bounds=self.bounds)

    def _read(
        self,
        namespace: str,
        *,
        pod: ports.PodPayload,
        container: str,
        previous: bool,
        window: Window,
        incident_from: datetime,
    ) -> LogRead:
        """The baseline's first lines and the incident's last lines of one container."""
        bounds = self.bounds
        start, end = window.start.timestamp(), window.end.timestamp()
        split = min(max(incident_from.timestamp(), start), end)
        calls: list[tuple[str, _Span]] = []
        if split > start:
            calls.append(("baseline", _Span(since=format_time(window.start))))
        calls.append(
            (
                "incident",
                _Span(
                    since=format_time(datetime.fromtimestamp(split, window.start.tzinfo)),
                    tail_lines=bounds.lines_per_pod,
                ),
            )
        )
        lines: list[tuple[float, str]] = []
        size, dropped, query = 0, 0, ""
        for part, extra in calls:
            answer = self._cluster.read_pod_log(
                namespace=namespace,
                pod=str(pod["name"]),
                container=container or None,
                limit_bytes=bounds.bytes_per_pod,
                previous=previous,
                **extra,
            )
            query = query or answer.query
            if answer.status not in (Status.OK, Status.EMPTY):
                return LogRead(
                    service_of(pod),
                    str(pod["name"]),
                    container,
                    previous,
                    answer.query,
                    answer.status,
                    answer.summary,
                )
            raw = [str(line) for line in answer.raw or []]
            size += sum(len(line) + 1 for line in raw)
            low, high = (start, split) if part == "baseline" else (split, end + 1.0)
            kept = _within(raw, start=low, end=high)
            if part == "baseline" and len(kept) > bounds.lines_per_pod:
                dropped += len(kept) - bounds.lines_per_pod
                kept = kept[: bounds.lines_per_pod]
            lines += kept
        return LogRead(
            service_of(pod),
            str(pod["name"]),
            container,
            previous,
            query,
            Status.OK,
            "",
            lines,
            size,
            dropped,
        )


class _Span(TypedDict, total=False):
    """Which lines of a container's log one ``pods/log`` read asks for."""

    since: str
    tail_lines: int


def choose_pods(
    pods: Sequence[ports.PodPayload], *, services: Sequence[str], bounds: LogBounds
) -> list[tuple[ports.PodPayload, str, bool]]:
    """(pod, container, previous) to read: the named services' pods first, then the other
    workloads' in name order; per workload the pods that restarted first, at most
    ``pods_per_service``; each restarted container's previous instance too; at most ``pods``
    reads in all."""
    by_service: dict[str, list[ports.PodPayload]] = {}
    for pod in sorted(pods, key=lambda p: str(p["name"])):
        by_service.setdefault(service_of(pod), []).append(pod)
    wanted = [s for s in by_service if any(_same(s, w) for w in services)]
    order = wanted + sorted(s for s in by_service if s not in wanted)
    chosen: list[tuple[ports.PodPayload, str, bool]] = []
    for service in order:
        mine = sorted(by_service[service], key=lambda p: -_restarts(p))
        for pod in mine[: bounds.pods_per_service]:
            containers = list(pod.get("containers") or [])
            name = str(containers[0]["name"]) if len(containers) > 1 else ""
            chosen.append((pod, name, False))
            if any(int(c.get("restarts") or 0) > 0 for c in containers[:1]):
                chosen.append((pod, name, True))
    return chosen[: bounds.pods]


def _restarts(pod: ports.PodPayload) -> int:
    return sum(int(c.get("restarts") or 0) for c in pod.get("containers") or [])


def _same(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


# --- Loki ------------------------------------------------------------------------------------


class LokiLogs:
    """:class:`~diagnose.domain.logs.LogSource` over Loki's HTTP API (LogQL ``query_range``).

    Streams are selected by ``namespace`` (the label name is ``namespace_label``); each stream's
    ``pod`` label names the pod and its ``app`` (or ``container``, ``service_name``) label the
    workload. ``tenant`` is sent as ``X-Scope-OrgID``, ``token`` as a bearer token."""

    def __init__(
        self,
        url: str,
        *,
        bounds: LogBounds | None = None,
        timeout_s: float = 10.0,
        tenant: str | None = None,
        token: str | None = None,
        namespace_label: str = "namespace",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self.bounds = bounds or LogBounds()
        self._label = namespace_label
        self._retry = _http.RetryPolicy(budget_s=timeout_s)
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    def close(self) -> None:
        self._client.close()

    def read_logs(
        self,
        *,
        namespace: str,
        window: Window,
        incident_from: datetime,
        services: Sequence[str] = (),
    ) -> list[Evidence]:
        selector = f'{{{self._label}="{namespace}"}}'
        split = min(max(incident_from, window.start), window.end)
        limit = self.bounds.lines_per_pod * self.bounds.pods
        parts = [("backward", split, window.end + timedelta(seconds=1))]
        if split > window.start:
            parts.append(("forward", window.start, split))
        streams: dict[tuple[str, str], list[tuple[float, str]]] = {}
        query = ""
        for direction, start, end in parts:
            answer = self._query(selector, start=start, end=end, limit=limit, direction=direction)
            query = query or answer.query
            if isinstance(answer, Evidence):
                return [answer]
            for labels, values in answer.streams:
                key = (_loki_service(labels), str(labels.get("pod") or _loki_service(labels)))
                streams.setdefault(key, []).extend(values)
        reads = self._reads(streams, services=services, query=query)
        return template_reads(reads, incident_from=incident_from, window=window, bounds=self.bounds)

    def _reads(
        self,
        streams: dict[tuple[str, str], list[tuple[float, str]]],
        *,
        services: Sequence[str],
        query: str,
    ) -> list[LogRead]:
        wanted = [k for k in streams if any(_same(k[0], s) for s in services)]
        order = wanted + sorted(k for k in streams if k not in wanted)
        per_service: dict[str, int] = {}
        reads = []
        for service, pod in order[: self.bounds.pods]:
            per_service[service] = per_service.get(service, 0) + 1
            if per_service[service] > self.bounds.pods_per_service:
                continue
            lines = sorted(streams[(service, pod)])
            dropped = max(0, len(lines) - 2 * self.bounds.lines_per_pod)
            lines = lines[-2 * self.bounds.lines_per_pod :] if dropped else lines
            size = sum(len(t) + 1 for _, t in lines)
            reads.append(
                LogRead(
                    service,
                    pod,
                    "",
                    False,
                    f'{query}  # {{pod="{pod}"}}',
                    Status.OK,
                    "",
                    lines,
                    size,
                    dropped,
                )
            )
        return reads

    def _query(
        self, selector: str, *, start: datetime, end: datetime, limit: int, direction: str
    ) -> Evidence | _Streams:
        params = {
            "query": selector,
            "start": str(int(start.timestamp() * 1e9)),
            "end": str(int(end.timestamp() * 1e9)),
            "limit": str(limit),
            "direction": direction,
        }
        url = f"{self.url}/loki/api/v1/query_range"
        query = (
            f"logcli query '{selector}' --from={format_time(start)} --to={format_time(end)} "
            f"--limit={limit}"
        )

        def fetch() -> httpx.Response:
            response = self._client.get(url, params=params)
            if response.status_code == 429 or response.status_code >= 500:
                response.raise_for_status()
            return response

        window = Window(start=start, end=end)
        try:
            response = _http.call_with_retries(fetch, policy=self._retry, retryable=_loki_retryable)
        except httpx.HTTPError as exc:
            return _failure(
                query,
                window,
                Status.ERROR,
                f"Loki at {self.url} failed ({exc}): check DIAGNOSE_LOKI_URL",
            )
        if response.status_code in (401, 403):
            return _failure(
                query,
                window,
                Status.DENIED,
                f"Loki at {self.url} refused the query (HTTP {response.status_code}): check "
                "DIAGNOSE_LOKI_TOKEN and DIAGNOSE_LOKI_TENANT",
            )
        if response.status_code != 200:
            return _failure(
                query,
                window,
                Status.ERROR,
                f"Loki at {self.url} answered HTTP {response.status_code}: {response.text[:200]}",
            )
        try:
            result = response.json()["data"]["result"]
        except (ValueError, KeyError, TypeError) as exc:
            return _failure(
                query,
                window,
                Status.ERROR,
                f"Loki at {self.url} did not answer with Loki's JSON ({exc}): check the URL",
            )
        streams = [
            (dict(s.get("stream") or {}), [_loki_value(v) for v in s.get("values") or []])
            for s in result
        ]
        return _Streams(query=query, streams=streams)


@dataclass(frozen=True)
class _Streams:
    query: str
    streams: list[tuple[dict[str, str], list[tuple[float, str]]]]


def _loki_value(value: Sequence[str]) -> tuple[float, str]:
    """A Loki value ``[ns, line]``: the line's own leading timestamp wins over Loki's."""
    at, text = parse_line(str(value[1]))
    return (at if at is not None else int(value[0]) / 1e9), text


def _loki_service(labels: dict[str, str]) -> str:
    for key in ("app", "app_kubernetes_io_name", "service_name", "container", "job"):
        if labels.get(key):
            return str(labels[key]).rpartition("/")[2]
    return str(labels.get("pod") or "unknown")


def _loki_retryable(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.TimeoutException)


def _failure(query: str, window: Window, status: Status, summary: str) -> Evidence:
    return Evidence.make(
        source=SOURCE, query=query, window=window, status=status, summary=summary, raw=None
    )
