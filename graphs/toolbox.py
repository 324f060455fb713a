"""The read-only tools a language model may call during the ``reason`` step.

The same ports the graph gathers with, on a short leash:

- ``read_evidence``: one piece of evidence in full, by id;
- ``query_prometheus``: one PromQL expression over the last N minutes of the run's window,
  through :class:`~diagnose.domain.ports.MetricSource` (step chosen by code, series capped);
- ``search_traces``: a sample of traces through one component in scope, or one trace by id,
  through :class:`~diagnose.domain.traces.TraceSource`;
- ``get_kubernetes``: list (or get by name) one kind of the read-only catalogue in the
  namespace in scope, through :class:`~diagnose.domain.ports.ClusterSource`;
- ``run_db_probe``: one probe of the catalogue by name with its declared parameters, through
  :class:`~diagnose.domain.database.DatabaseSource` and so through the sandbox's gate.

Arguments are enums, numbers, names and one short PromQL string, never copied text: vLLM's
MiniMax tool parser cuts an argument at a raw ``</parameter>``. Each call's answer is stored as
:class:`~diagnose.domain.models.Evidence` in the run's bundle (source ``<port>/model``, which the
analysis never reads), its id returned to the model and citable in the answer. Bad arguments
are an ``error: …`` answer, never an exception and never a call to the outside world.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from diagnose.domain import database as database_ports
from diagnose.domain import models, ports
from diagnose.domain import reasoning as llm_reasoning
from diagnose.domain import traces as trace_ports
from diagnose.domain.models import JSON, Evidence, Window

QUERY_TOOL = "query_prometheus"
TRACES_TOOL = "search_traces"
KUBERNETES_TOOL = "get_kubernetes"
PROBE_TOOL = "run_db_probe"

MAX_QUERY_CHARS = 300
MAX_POINTS = 120
"""Points per series a model's query may ask for: the step is raised to fit."""
MAX_SERIES = 10
"""Series of one query shown to the model; the rest are counted, not sent."""
MAX_TRACES = 20
MAX_ITEMS = 20
MAX_PARAM_CHARS = 64
MAX_RESULT_CHARS = 3000

KINDS = ("deployments", "replicasets", "configs", "pods", "events")
"""The Kubernetes catalogue: what the cluster port lists, all of it read-only."""

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TRACE_ID = re.compile(r"^[0-9a-f]{16,32}$")
_PARAM = re.compile(r"^[\w.:/@ -]*$")


@dataclass(frozen=True)
class Ports:
    """What the tools may reach; a missing port means its tool is not offered."""

    metrics: ports.MetricSource | None = None
    traces: trace_ports.TraceSource | None = None
    cluster: ports.ClusterSource | None = None
    database: database_ports.DatabaseSource | None = None
    database_name: str = ""
    probes: Sequence[database_ports.Probe] = ()


@dataclass(frozen=True)
class Scope:
    """Where the tools may look: the run's window, its namespace and its components."""

    window: Window
    namespace: str
    components: tuple[str, ...]


@dataclass
class PortToolbox:
    """:class:`~diagnose.domain.reasoning.Toolbox` over the run's ports; keeps what it finds."""

    ports: Ports
    scope: Scope
    evidence: Mapping[str, Evidence]
    keep: Callable[[Evidence], None]
    """Stores one new piece of evidence in the run's bundle."""
    found: list[Evidence] = field(default_factory=list)

    def specs(self) -> Sequence[llm_reasoning.ToolSpec]:
        specs = [self._read_spec()]
        if self.ports.metrics is not None:
            specs.append(self._query_spec())
        if self.ports.traces is not None and self.scope.components:
            specs.append(self._traces_spec())
        if self.ports.cluster is not None and self.scope.namespace:
            specs.append(self._kubernetes_spec())
        if self.ports.database is not None and self.ports.probes:
            specs.append(self._probe_spec())
        return specs

    def gathered(self) -> Sequence[Evidence]:
        return tuple(self.found)

    def call(self, name: str, arguments: Mapping[str, JSON]) -> str:
        offered = {s.name for s in self.specs()}
        if name not in offered:
            return f"error: there is no tool named {name!r} (offered: {', '.join(sorted(offered))})"
        if name == llm_reasoning.READ_EVIDENCE_TOOL:
            return self._read(arguments)
        handlers: dict[str, Callable[[Mapping[str, JSON]], Evidence | str]] = {
            QUERY_TOOL: self._query,
            TRACES_TOOL: self._traces,
            KUBERNETES_TOOL: self._kubernetes,
            PROBE_TOOL: self._probe,
        }
        answer = handlers[name](arguments)
        if isinstance(answer, str):
            return answer
        answer = _as_tool_answer(answer, tool=name)
        self.keep(answer)
        self.found.append(answer)
        return _render(answer)

    # --- read_evidence ------------------------------------------------------------------

    def _read_spec(self) -> llm_reasoning.ToolSpec:
        spec = llm_reasoning.EvidenceToolbox(evidence=self.evidence).specs()[0]
        return spec

    def _read(self, arguments: Mapping[str, JSON]) -> str:
        everything = {**self.evidence, **{e.id: e for e in self.found}}
        reader = llm_reasoning.EvidenceToolbox(evidence=everything)
        return reader.call(llm_reasoning.READ_EVIDENCE_TOOL, arguments)

    # --- query_prometheus ---------------------------------------------------------------

    def _query_spec(self) -> llm_reasoning.ToolSpec:
        minutes = self._max_minutes()
        parameters = _object(
            query={"type": "string", "description": f"PromQL, at most {MAX_QUERY_CHARS} chars"},
            minutes={"type": "integer", "minimum": 1, "maximum": minutes},
        )
        description = (
            "Evaluate one PromQL expression over the last `minutes` of the incident window "
            f"(at most {minutes}); the step is chosen for you, at most {MAX_SERIES} series "
            "are shown. Pass a short query, never copied text."
        )
        return llm_reasoning.ToolSpec(QUERY_TOOL, description, parameters)

    def _query(self, arguments: Mapping[str, JSON]) -> Evidence | str:
        assert self.ports.metrics is not None
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return "error: query must be a non-empty PromQL string"
        if len(query) > MAX_QUERY_CHARS or "\n" in query or "</" in query:
            return f"error: a query is one line of at most {MAX_QUERY_CHARS} characters"
        window = self._recent(arguments.get("minutes"))
        if isinstance(window, str):
            return window
        step = max(1.0, float(math.ceil(window.seconds / MAX_POINTS)))
        answer = self.ports.metrics.query_range(query.strip(), window=window, step_s=step)
        return _capped_series(answer)

    # --- search_traces ------------------------------------------------------------------

    def _traces_spec(self) -> llm_reasoning.ToolSpec:
        parameters = _object(
            service={"type": "string", "enum": list(self.scope.components)},
            minutes={"type": "integer", "minimum": 1, "maximum": self._max_minutes()},
            trace_id={"anyOf": [{"type": "string"}, {"type": "null"}]},
        )
        description = (
            f"Sample up to {MAX_TRACES} traces through one component in scope over the last "
            "`minutes` of the window, or read one trace by its hex id (trace_id; else null)."
        )
        return llm_reasoning.ToolSpec(TRACES_TOOL, description, parameters)

    def _traces(self, arguments: Mapping[str, JSON]) -> Evidence | str:
        assert self.ports.traces is not None
        trace_id = arguments.get("trace_id")
        if trace_id is not None:
            if not isinstance(trace_id, str) or not _TRACE_ID.match(trace_id):
                return "error: trace_id is 16 to 32 lowercase hex digits, or null"
            return self.ports.traces.get_trace(trace_id, window=self.scope.window)
        service = arguments.get("service")
        if service not in self.scope.components:
            return f"error: service must be one of the components in scope: {self._listed()}"
        window = self._recent(arguments.get("minutes"))
        if isinstance(window, str):
            return window
        return self.ports.traces.sample_spans(
            service=str(service),
            namespace=self.scope.namespace or None,
            window=window,
            limit_traces=MAX_TRACES,
        )

    # --- get_kubernetes -----------------------------------------------------------------

    def _kubernetes_spec(self) -> llm_reasoning.ToolSpec:
        parameters = _object(
            kind={"type": "string", "enum": list(KINDS)},
            namespace={"type": "string", "enum": [self.scope.namespace]},
            name={"anyOf": [{"type": "string"}, {"type": "null"}]},
        )
        description = (
            "List one kind of Kubernetes object in the namespace in scope (read-only), or get "
            "one by name (else null). Secrets show metadata only, never data."
        )
        return llm_reasoning.ToolSpec(KUBERNETES_TOOL, description, parameters)

    def _kubernetes(self, arguments: Mapping[str, JSON]) -> Evidence | str:
        cluster = self.ports.cluster
        assert cluster is not None
        kind, namespace, name = (arguments.get(k) for k in ("kind", "namespace", "name"))
        if kind not in KINDS:
            return f"error: kind must be one of {', '.join(KINDS)}"
        if namespace != self.scope.namespace:
            return f"error: only namespace {self.scope.namespace!r} is in scope"
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            return "error: name must be a Kubernetes object name, or null"
        ns = self.scope.namespace
        lists: dict[str, Callable[[], Evidence]] = {
            "deployments": lambda: cluster.list_deployments(namespace=ns),
            "replicasets": lambda: cluster.list_replicasets(namespace=ns),
            "configs": lambda: cluster.list_configs(namespace=ns),
            "pods": lambda: cluster.list_pods(namespace=ns),
            "events": lambda: cluster.list_events(namespace=ns, window=self.scope.window),
        }
        answer = lists[str(kind)]()
        return _named(answer, name=name) if isinstance(name, str) else _capped_items(answer)

    # --- run_db_probe -------------------------------------------------------------------

    def _probe_spec(self) -> llm_reasoning.ToolSpec:
        names = [p.name for p in self.ports.probes]
        declared = sorted({k for p in self.ports.probes for k in p.params})
        value: dict[str, JSON] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
        parameters = _object(
            probe={"type": "string", "enum": names},
            parameters={
                "type": "object",
                "properties": {k: value for k in declared},
                "additionalProperties": False,
            },
        )
        description = (
            "Run one read-only probe of the database catalogue by name; `parameters` may set "
            "only that probe's declared parameters (numbers or short names), never SQL."
        )
        return llm_reasoning.ToolSpec(PROBE_TOOL, description, parameters, strict=False)

    def _probe(self, arguments: Mapping[str, JSON]) -> Evidence | str:
        assert self.ports.database is not None
        by_name = {p.name: p for p in self.ports.probes}
        probe = by_name.get(str(arguments.get("probe")))
        if probe is None:
            return f"error: probe must be one of {', '.join(by_name)}"
        given = arguments.get("parameters") or {}
        if not isinstance(given, dict):
            return "error: parameters must be an object"
        problems = [_bad_parameter(k, v, probe=probe) for k, v in given.items()]
        if any(problems):
            return "error: " + "; ".join(p for p in problems if p)
        params = {**probe.params, **given}
        return self.ports.database.run_probe(
            probe.name, probe.sql, params=params, database=self.ports.database_name or None
        )

    # --- shared -------------------------------------------------------------------------

    def _max_minutes(self) -> int:
        return max(1, int(self.scope.window.seconds // 60))

    def _recent(self, minutes: JSON) -> Window | str:
        top = self._max_minutes()
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= top:
            return f"error: minutes must be a whole number from 1 to {top}"
        end = self.scope.window.end
        start = max(self.scope.window.start, end - timedelta(minutes=minutes))
        return Window(start=start, end=end)

    def _listed(self) -> str:
        return ", ".join(self.scope.components)


def _object(**properties: JSON) -> dict[str, JSON]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def _bad_parameter(key: str, value: JSON, *, probe: database_ports.Probe) -> str | None:
    if key not in probe.params:
        declared = ", ".join(probe.params) or "none"
        return f"{probe.name} has no parameter {key!r} (declared: {declared})"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"{key} must be a number or a short name"
    if isinstance(value, str) and (len(value) > MAX_PARAM_CHARS or not _PARAM.match(value)):
        return f"{key} must be at most {MAX_PARAM_CHARS} letters, digits or . : / @ - _"
    return None


def _capped_series(answer: Evidence) -> Evidence:
    """At most :data:`MAX_SERIES` series of a range query, the summary saying how many more."""
    raw = answer.raw
    if not isinstance(raw, list) or len(raw) <= MAX_SERIES:
        return answer
    summary = f"{answer.summary} (showing {MAX_SERIES} of {len(raw)} series)"
    return _replaced(answer, summary=summary, raw=raw[:MAX_SERIES])


def _capped_items(answer: Evidence) -> Evidence:
    raw = answer.raw
    if not isinstance(raw, list) or len(raw) <= MAX_ITEMS:
        return answer
    summary = f"{answer.summary} (showing {MAX_ITEMS} of {len(raw)})"
    return _replaced(answer, summary=summary, raw=raw[:MAX_ITEMS])


def _named(answer: Evidence, *, name: str) -> Evidence:
    """The one object called ``name`` (events: those about it) from a listing."""
    if not isinstance(answer.raw, list):
        return answer
    items = [
        item
        for item in answer.raw
        if isinstance(item, dict)
        and (item.get("name") == name or str(item.get("object", "")).endswith(f"/{name}"))
    ]
    status = models.Status.OK if items else models.Status.EMPTY
    summary = f"{len(items)} item(s) named {name}" if items else f"nothing named {name}"
    return Evidence.make(
        source=answer.source,
        query=f"{answer.query} | {name}",
        window=answer.window,
        status=status if answer.status is models.Status.OK else answer.status,
        summary=summary if answer.status is models.Status.OK else answer.summary,
        raw=items[:MAX_ITEMS],
    )


def _replaced(answer: Evidence, *, summary: str, raw: Any) -> Evidence:
    return dataclasses.replace(answer, summary=summary, raw=raw)


def _as_tool_answer(answer: Evidence, *, tool: str) -> Evidence:
    """The answer under a source and an id of its own (``prometheus/model``, …): it never
    overwrites what the graph gathered with the same query, and the analysis (live or
    replayed from the bundle) never reads it as its own input."""
    source = f"{answer.source}/model"
    own = models.evidence_id(source, f"{tool}: {answer.query}", answer.window)
    return dataclasses.replace(answer, id=own, source=source, kind=models.EvidenceKind.TOOL)


def _render(answer: Evidence) -> str:
    """What the model reads back: the new evidence id first, then a capped view of the data."""
    data = json.dumps(answer.raw, sort_keys=True, default=str, separators=(",", ":"))
    if len(data) > MAX_RESULT_CHARS:
        data = data[:MAX_RESULT_CHARS] + f" …[{len(data) - MAX_RESULT_CHARS} more characters cut]"
    return (
        f"evidence id: {answer.id} (cite it)\nsource: {answer.source}\n"
        f"status: {answer.status.value}\nquery: {answer.query}\n"
        f"summary: {answer.summary}\ndata: {data}"
    )
