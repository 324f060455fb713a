"""Log templates → what the root-cause ranking can use.

:func:`read_logs` reads the templated pod logs (``diagnose.domain.logs.LogPayload``) and finds,
per service, the templates that tell of the incident:

- **new**: no line of it before the incident, while its rate in the incident would have shown
  at least ``min_expected`` lines in the baseline the data has (a Poisson test: absent from a
  baseline that short says nothing). When the logs hold no baseline before the incident window
  (a recording of the incident alone), a template's baseline is the service's lines before the
  template's first one, under the same test;
- **rose**: lines before and during the incident, at a rate at least ``min_ratio`` times higher
  and a one-sided Poisson tail under ``max_p``;
- **exception**: either of those, for an exception or a stack trace;
- **stopped**: an informational template the service logged steadily falls silent in the
  incident while the service goes on logging: from its share of the requests (distinct trace
  ids, else lines) before its last line, at least ``min_missing`` of the requests after it
  should have logged it, and the chance that all its requests fell before that line by luck
  (:func:`silence`) is under e^-min_missing divided by the statements of the pod put to the
  test. A code path the service no longer runs is what a fault in its own code leaves when it
  logs no error (a wrong return value). Unless its requests stopped arriving: the trace back
  end's counts of its operation's requests while it logged and since (:func:`stop_checks`,
  asked by the graph; :func:`by_requests`) replace the pod-wide estimate, and too few since
  set it aside (a caller asking less).

Only error templates (by level, or exceptions) and stopped templates become hints; other new
templates are derived evidence without weight. A wave of errors is attributed to the service where
it starts: lines that name a trace id are grouped by trace, and within a trace the earliest
erroring service is the origin; a caller whose errors always follow another service's in the same
traces is an echo of it (a generic "request failed"). Lines without trace ids count for their own
service. A refused or failed connection to a host names that host: a service in scope, or
``external/<host>``.

:func:`merge_logs` folds the hints into the ranking's drafts: a hint corroborates its
component's draft, adds a draft of its own (a log-only cause, ordered against the strongest
draft by the share of error waves that start there), turns a recent rollout of its component
into a deploy cause, and marks echoes; a draft on a service whose logs were read and hold no
new error cites that read as counter-evidence.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from diagnose.analysis import components as components_
from diagnose.analysis import ranking
from diagnose.domain import logs as domain_logs
from diagnose.domain import models
from diagnose.domain import traces as domain_traces

SOURCE = "analysis"


@dataclass(frozen=True)
class LogPolicy:
    """The thresholds of the log analysis (docs/logs.md)."""

    min_expected: float = 3.0
    """A template is new only when its incident rate would have shown this many lines in the
    baseline (P(none) = e^-3 ≈ 5 %)."""
    min_baseline_s: float = 60.0
    """Logs of a service reaching less than this far before the incident hold no baseline."""
    min_ratio: float = 3.0
    """A template rose when its rate grew at least this many times…"""
    max_p: float = 0.001
    """…and the Poisson tail of its incident count under the baseline rate is under this."""
    min_lines: int = 3
    """Fewer lines than this are never a finding."""
    weight: float = 0.5
    """A hint of share ``s`` multiplies its hypothesis's ordering score by 1 + this × s."""
    fit: float = 0.8
    """The least fit of a hypothesis the logs support."""
    echo_penalty: float = 0.6
    """A draft whose errors follow another service's in the same traces: × this."""
    max_hints: int = 5
    min_missing: float = 5.0
    """A template stopped when the requests after its last line should have logged it this many
    times, and its silence is this unlikely (P < e^-5 < 1 %, over the statements tested in the
    pod)."""


@dataclass(frozen=True)
class TemplateFinding:
    """One template that tells of the incident."""

    service: str
    template: str
    change: str  # "new" | "rose" | "stopped"
    error: bool
    warning: bool
    exception: bool
    baseline: int  # lines before the incident (or before its first line, without a baseline);
    # stopped: its lines up to the last one
    incident: int
    expected: float  # lines the baseline rate predicts in the incident; stopped: the requests
    # after its last line that should have logged it
    first: float  # its first line in the incident (stopped: its last line), epoch seconds
    examples: tuple[str, ...]
    read: str  # the evidence id of the log read it came from
    query: str  # that read's kubectl logs command
    traces: tuple[tuple[float, str], ...]  # (time, trace id) of its incident lines


@dataclass(frozen=True)
class LogHint:
    """One service the logs point at, as the ranking uses it."""

    component: str
    share: float  # share of the traced error waves that start here (1.0 when untraced)
    strength: float  # compressed z of its strongest finding
    kind: models.CauseKind | None  # a dependency the errors name, else None
    evidence: tuple[str, ...]
    headline: str
    first: datetime


@dataclass(frozen=True)
class LogFindings:
    """What the logs add to the ranking, and the evidence they derived."""

    hints: tuple[LogHint, ...]
    echoes: Mapping[str, str]  # service → the service whose errors it echoes
    quiet: Mapping[str, str]  # service whose logs hold no new error → its log read's id
    derived: tuple[models.Evidence, ...]
    notes: tuple[str, ...]


NOTHING = LogFindings((), {}, {}, (), ())

WARNING_WEIGHT = 0.5
"""Warnings count only where no service logs a new error, and then at half an error's share."""


# --- reading --------------------------------------------------------------------------------


def read_logs(
    evidence: Sequence[models.Evidence],
    *,
    policy: LogPolicy | None = None,
    spans: Sequence[domain_traces.SpanPayload] = (),
    requests: Sequence[models.Evidence] = (),
) -> LogFindings:
    """The findings of the log reads among ``evidence`` (source ``logs``). A stopped
    statement whose requests stopped arriving too is not a finding: ``requests`` are the trace
    back end's counts of its operations' requests (:func:`stop_checks`, :func:`by_requests`);
    without them, ``spans``, the sampled trace spans, tell what they can
    (:func:`requests_stopped`)."""
    policy = policy or LogPolicy()
    reads = [e for e in evidence if e.source == domain_logs.SOURCE]
    notes = [
        f"logs: {e.query} → {e.status.value}: {e.summary}"
        for e in reads
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    ]
    usable = [e for e in reads if e.status is models.Status.OK and isinstance(e.raw, dict)]
    if not usable:
        return LogFindings((), {}, {}, (), (*notes, "logs: no log lines read: logs not considered"))
    findings, baseline_less = _find(usable, policy=policy)
    if baseline_less:
        notes.append(
            f"logs: {len(baseline_less)} service(s) logged nothing before the incident window "
            "(no baseline): a template counts as new there when it was absent long enough "
            "before its first line"
        )
    derived = {id(f): _finding_evidence(f) for f in findings}
    errors = [f for f in findings if f.error] or [f for f in findings if f.warning]
    origins, echoes = attribute(errors)
    hints = _hints(errors, origins=origins, derived=derived, services=_services(usable))
    stopped = [f for f in findings if f.change == "stopped"]
    served = _server_spans(spans)
    counts = _request_counts(requests)
    ends = {e.id: e.raw["last"] for e in usable}
    arriving, fewer = [], []
    for finding in stopped:
        check = _check_of(finding, until=ends.get(finding.read))
        counted = by_requests(finding, check=check, counts=counts) if check else None
        if counted is None:
            if not requests_stopped(finding, served=served, policy=policy):
                arriving.append(finding)
            else:
                why = "its requests stopped arriving too (its operation's server spans stop"
                fewer.append((finding, why + " with it)"))
        elif counted.expected < policy.min_missing:
            fewer.append(
                (finding, f"too few of its requests came since to tell ({counted.reason})")
            )
        else:
            recounted = dataclasses.replace(finding, expected=counted.expected)
            del derived[id(finding)]
            derived[id(recounted)] = _finding_evidence(recounted, counted=counted)
            arriving.append(recounted)
    for finding, why in fewer:
        notes.append(
            f"logs: {finding.service}'s stopped statement «{finding.template[:80]}» not "
            f"counted: {why}; a caller asking less explains that, not the service"
        )
    stopped = arriving
    hints += _stopped_hints(stopped, derived=derived)
    hints.sort(key=lambda h: (-h.share, -h.strength, h.first))
    telling = {f.service for f in (*errors, *stopped)}
    quiet = {_service(e): e.id for e in usable if _service(e) not in telling}
    if not errors and not stopped:
        notes.append("logs: no new or rising error template, and none stopped, in any service read")
    return LogFindings(
        hints=tuple(hints[: policy.max_hints]),
        echoes=echoes,
        quiet=quiet,
        derived=tuple(derived.values()),
        notes=tuple(notes),
    )


def _service(record: models.Evidence) -> str:
    assert isinstance(record.raw, dict)
    return str(record.raw["service"])


def _services(records: Sequence[models.Evidence]) -> list[str]:
    return sorted({_service(e) for e in records})


def _find(
    records: Sequence[models.Evidence], *, policy: LogPolicy
) -> tuple[list[TemplateFinding], set[str]]:
    """Every new or risen template of every service, and the services without a baseline.

    What the logs cover is what the reads together hold, from the earliest line of any pod to
    the latest: a pod silent while others logged was silent, but nothing is known of the time
    before the first line anywhere."""
    spans = [
        (r.raw["first"], r.raw["last"])
        for r in records
        if r.raw["first"] is not None and r.raw["last"] is not None
    ]
    if not spans:
        return [], set()
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    found: list[TemplateFinding] = []
    baseline_less: set[str] = set()
    for record in records:
        payload: domain_logs.LogPayload = record.raw
        service = payload["service"]
        split = models.parse_time(payload["incident_from"]).timestamp()
        has_baseline = split - start >= policy.min_baseline_s
        if not has_baseline:
            baseline_less.add(service)
        for template in payload["templates"]:
            finding = _judge(
                template,
                service=service,
                record=record,
                split=split if has_baseline else None,
                start=start,
                end=end,
                policy=policy,
            )
            if finding is not None:
                found.append(finding)
        found.extend(_stopped(record, split=split if has_baseline else None, policy=policy))
    return found, baseline_less


def _stopped(
    record: models.Evidence, *, split: float | None, policy: LogPolicy
) -> list[TemplateFinding]:
    """The informational log statements of one pod's read that fell silent while the pod went
    on logging (the module's docstring). A request is a trace id, or a line when the line names
    none; a request with lines on both sides of a statement's last line is neither before nor
    after it. With a baseline, only a statement silent from within the incident counts."""
    payload: domain_logs.LogPayload = record.raw
    first_seen: dict[str, float] = {}
    for index, template in enumerate(payload["templates"]):
        for line, (at, trace) in enumerate(_lines(template)):
            unit = trace or f"{index}:{line}"
            first_seen[unit] = min(at, first_seen.get(unit, at))
    starts = sorted(first_seen.values())
    tested = []
    for members in _statements(payload["templates"]).values():
        times = [t for _, template in members for t in template["times"]]
        last = max(times, default=0.0)
        if len(times) >= policy.min_lines and (split is None or last >= split):
            tested.append((members, times, last))
    # Each statement put to the test is a chance for luck to pass it: the bar is the family's.
    bar = policy.min_missing + math.log(max(len(tested), 1))
    found = []
    for members, times, last in tested:
        before = bisect.bisect_right(starts, last)
        after = len(starts) - before
        mine = len(
            {
                trace or f"{index}:{line}"
                for index, template in members
                for line, (_, trace) in enumerate(_lines(template))
            }
        )
        expected = mine / max(before, 1) * after
        if expected < policy.min_missing or silence(mine, before=before, after=after) < bar:
            continue
        main = max(members, key=lambda m: len(m[1]["times"]))[1]
        lines = sorted(line for _, template in members for line in _lines(template) if line[1])
        found.append(
            TemplateFinding(
                service=payload["service"],
                template=main["template"],
                change="stopped",
                error=False,
                warning=False,
                exception=False,
                baseline=len(times),
                incident=0,
                expected=expected,
                first=last,
                examples=tuple(main["examples"]),
                read=record.id,
                query=record.query,
                traces=tuple((at, str(trace)) for at, trace in lines),
            )
        )
    return found


def silence(requests: int, *, before: int, after: int) -> float:
    """How surely a statement stopped: -ln of the chance that the ``requests`` that logged it
    all fall among the first ``before`` of ``before + after`` requests when each request is as
    likely as any to log it. Its rate is learnt from its own few lines, so three lines followed
    by five silent requests say little (P = 1/56), where the rate taken as known would say
    e^-5."""
    if requests > before:
        return 0.0
    return -sum(math.log((before - i) / (before + after - i)) for i in range(requests))


def requests_stopped(
    finding: TemplateFinding,
    *,
    served: Mapping[str, Sequence[tuple[str, str, float]]],
    policy: LogPolicy,
) -> bool:
    """Whether a stopped statement's requests stopped arriving with it: the operations its
    lines ran in (the service's server span of the line's trace open at the line: the latest to
    start by then, not one the trace asked for afterwards) have no span after its last line,
    where their share of the service's server spans up to it predicts at least
    ``min_missing``, the statement's own test. Then no code path changed inside the service; its
    callers stopped sending those requests. False when the traces say nothing of them."""
    mine = next((v for k, v in served.items() if components_.same_workload(k, finding.service)), ())
    by_trace: dict[str, list[tuple[float, str]]] = {}
    for trace, op, start in mine:
        by_trace.setdefault(trace, []).append((start, op))
    operations = set()
    for at, trace in finding.traces:
        opened = [(start, op) for start, op in by_trace.get(trace, ()) if start <= at]
        if opened:
            operations.add(max(opened)[1])
    if not operations:
        return False
    last = finding.first
    before = [op for _, op, at in mine if at <= last]
    after = [op for _, op, at in mine if at > last]
    theirs = sum(1 for op in before if op in operations)
    expected = theirs / max(len(before), 1) * len(after)
    return expected >= policy.min_missing and not any(op in operations for op in after)


@dataclass(frozen=True)
class StopCheck:
    """A stopped statement the trace back end can check: did its operations go on being asked
    after its last line? ``lines``: its latest lines that name a trace, latest first; each
    line's operation is the service's server span of that trace open at it."""

    service: str
    template: str
    lines: tuple[tuple[float, str], ...]  # (time, trace id) of its latest traced lines
    before: models.Window  # from its first line to its last: while it logged
    after: models.Window  # from its last line to the pod's last: since


@dataclass(frozen=True)
class Counted:
    """What the counts of a stopped statement's operations say."""

    expected: float  # requests of its operations since its last line that should have logged it
    reason: str


def stop_checks(
    evidence: Sequence[models.Evidence], *, policy: LogPolicy | None = None, services: int = 4
) -> list[StopCheck]:
    """The stopped statements among the log reads in ``evidence`` worth asking the trace back
    end about: those that name trace ids and have requests since their last line, of the
    ``services`` services missing the most requests (their strongest statement each), at most
    :data:`CHECK_STATEMENTS` per service. :func:`read_logs` reads the answers by the same
    windows."""
    policy = policy or LogPolicy()
    usable = [
        e
        for e in evidence
        if e.source == domain_logs.SOURCE
        and e.status is models.Status.OK
        and isinstance(e.raw, dict)
    ]
    found, _ = _find(usable, policy=policy)
    ends = {e.id: e.raw["last"] for e in usable}
    by_service: dict[str, list[StopCheck]] = {}
    strongest: dict[str, float] = {}
    stopped = sorted(
        (f for f in found if f.change == "stopped"), key=lambda f: (-f.expected, f.first)
    )
    for finding in stopped:
        check = _check_of(finding, until=ends.get(finding.read))
        mine = by_service.setdefault(finding.service, [])
        if check is not None and len(mine) < CHECK_STATEMENTS:
            mine.append(check)
            strongest.setdefault(finding.service, finding.expected)
    chosen = sorted(strongest, key=lambda s: -strongest[s])[:services]
    return [check for service in chosen for check in by_service[service]]


MIN_ASKED = 3
"""Fewer requests of a statement's operations while it logged than this make no rate."""

CHECK_STATEMENTS = 3
"""Stopped statements of one service whose requests are counted, the most missing first."""

CHECK_LINES = 3
"""The latest traced lines of a stopped statement whose traces are read for its operation."""


TRACE_ID = re.compile(r"[0-9a-f]{16,32}")
"""A trace id the back ends can be asked for (W3C and Jaeger ids, as the log reader takes them)."""


def _check_of(finding: TemplateFinding, *, until: float | None) -> StopCheck | None:
    traced = sorted(
        ((at, trace) for at, trace in finding.traces if TRACE_ID.fullmatch(trace)), reverse=True
    )
    if not traced or until is None or until <= finding.first:
        return None
    first = min(at for at, _ in traced)

    start, last, end = (datetime.fromtimestamp(at, UTC) for at in (first, finding.first, until))
    return StopCheck(
        service=finding.service,
        template=finding.template,
        lines=tuple(traced[:CHECK_LINES]),
        before=models.Window(start=start, end=last),
        after=models.Window(start=last, end=end),
    )


def operations_at(
    check: StopCheck, *, spans: Sequence[domain_traces.SpanPayload]
) -> list[tuple[str, str]]:
    """The operations the check's lines ran in, as (service as the traces name it, operation),
    from ``spans``: in each line's trace, the service's server span that started last by the
    line (not one the same request asked for afterwards)."""
    found: list[tuple[str, str]] = []
    for service, mine in _server_spans(spans).items():
        if not components_.same_workload(service, check.service):
            continue
        for at, trace in check.lines:
            opened = [(start, op) for t, op, start in mine if t == trace and start <= at]
            if opened and (service, max(opened)[1]) not in found:
                found.append((service, max(opened)[1]))
    return found


def by_requests(
    finding: TemplateFinding,
    *,
    check: StopCheck,
    counts: Mapping[models.Window, Sequence[domain_traces.RequestCountPayload]],
) -> Counted | None:
    """What the trace back end's counts of the statement's operations say, or None when they
    cannot tell (not asked, an error, too few requests while it logged, or more than the
    search returns): the requests since its last line that should have logged it, at the rate
    it logged its operations' requests before."""
    before = [
        c
        for c in counts.get(check.before, ())
        if components_.same_workload(c["service"], check.service)
    ]
    after = [
        c
        for c in counts.get(check.after, ())
        if components_.same_workload(c["service"], check.service)
    ]
    if not before or not after or any(c["capped"] for c in before):
        return None
    ops = sorted({c["operation"] for c in before})
    if ops != sorted({c["operation"] for c in after}):
        return None  # an operation counted on one side only (a failed search)
    asked = sum(c["count"] for c in before)
    since = sum(c["count"] for c in after)
    mine = len({trace for _, trace in finding.traces if trace}) or finding.baseline
    if asked < MIN_ASKED:
        return None  # too few requests while it logged for a rate
    # Both counts come from the same back end, sampled alike: their ratio is the change in its
    # operation's traffic, whatever share of the requests the back end keeps.
    expected = mine * since / asked
    named = ", ".join(repr(o) for o in ops)
    more = "at least " if any(c["capped"] for c in after) else ""
    reason = (
        f"its operation {named} was asked {asked} time(s) while it logged ({mine} request(s) "
        f"logged it) and {more}{since} time(s) since"
    )
    return Counted(expected=expected, reason=reason)


def _request_counts(
    requests: Sequence[models.Evidence],
) -> dict[models.Window, list[domain_traces.RequestCountPayload]]:
    """The trace back end's answered request counts, by window."""
    out: dict[models.Window, list[domain_traces.RequestCountPayload]] = {}
    for record in requests:
        raw = record.raw
        if (
            record.status is models.Status.OK
            and record.window is not None
            and isinstance(raw, dict)
            and "count" in raw
        ):
            out.setdefault(record.window, []).append(raw)  # type: ignore[arg-type]
    return out


def _server_spans(
    spans: Sequence[domain_traces.SpanPayload],
) -> dict[str, list[tuple[str, str, float]]]:
    """Per service, its server spans as (trace id, operation, start in epoch seconds), each
    once."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[tuple[str, str, float]]] = {}
    for span in spans:
        if (
            span["kind"] != domain_traces.SpanKind.SERVER
            or (key := (span["trace_id"], span["span_id"])) in seen
        ):
            continue
        seen.add(key)
        out.setdefault(span["service"], []).append(
            (span["trace_id"], span["operation"], span["start_us"] / 1e6)
        )
    return out


STATEMENT_TOKENS = 4
"""Templates that share this many leading tokens (time, level, logger and its code location in
the usual layouts) are one log statement: Drain3 splits a statement whose variable part changes
length (a list of one item or three) into several templates, and a statement stops only when
all of them do."""


def _statements(
    templates: Sequence[domain_logs.TemplatePayload],
) -> dict[tuple[str, ...], list[tuple[int, domain_logs.TemplatePayload]]]:
    """The informational templates, by log statement (their leading tokens)."""
    out: dict[tuple[str, ...], list[tuple[int, domain_logs.TemplatePayload]]] = {}
    for index, template in enumerate(templates):
        if template["error"] or template.get("warning") or template["exception"]:
            continue
        key = tuple(template["template"].split()[:STATEMENT_TOKENS])
        out.setdefault(key, []).append((index, template))
    return out


def _lines(template: domain_logs.TemplatePayload) -> list[tuple[float, str]]:
    traces = template["traces"]
    return [(at, traces[i] if i < len(traces) else "") for i, at in enumerate(template["times"])]


def _judge(
    template: domain_logs.TemplatePayload,
    *,
    service: str,
    record: models.Evidence,
    split: float | None,
    start: float,
    end: float,
    policy: LogPolicy,
) -> TemplateFinding | None:
    """A template's finding, or None when it tells nothing."""
    times = template["times"]
    if not times:
        return None
    cut = split if split is not None else min(times)
    before = sum(1 for t in times if t < cut)
    during = len(times) - before
    if during < policy.min_lines:
        return None
    base_s, incident_s = max(cut - start, 0.0), max(end - cut, 1.0)
    if before == 0:
        expected_before = during * base_s / incident_s
        if expected_before < policy.min_expected:
            return None
        change, expected = "new", 0.0
    else:
        if split is None:
            return None
        expected = before * incident_s / max(base_s, 1.0)
        if during < policy.min_ratio * expected or poisson_tail(during, expected) > policy.max_p:
            return None
        change = "rose"
    traced = tuple(
        (t, trace) for t, trace in zip(times, template["traces"], strict=False) if t >= cut
    )
    return TemplateFinding(
        service=service,
        template=template["template"],
        change=change,
        error=template["error"],
        warning=bool(template.get("warning")),
        exception=template["exception"],
        baseline=before,
        incident=during,
        expected=expected,
        first=min(t for t in times if t >= cut),
        examples=tuple(template["examples"]),
        read=record.id,
        query=record.query,
        traces=traced,
    )


def poisson_tail(count: int, mean: float) -> float:
    """P(X ≥ count) for X ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term = math.exp(-mean)
    below = 0.0
    for k in range(count):
        below += term
        term *= mean / (k + 1)
        if term == 0.0 and k > mean:
            break
    return max(0.0, 1.0 - below)


def strength(finding: TemplateFinding) -> float:
    """How strong a finding is, on the metrics' scale: the compressed z of its count against
    the baseline's prediction (at least one line). A stopped template is its mirror: the
    requests that should have logged it against none that did, as a new template counts the
    lines that appeared against none expected."""
    if finding.change == "stopped":
        return components_.compress(finding.expected)
    spread = math.sqrt(max(finding.expected, 1.0))
    return components_.compress((finding.incident - finding.expected) / spread)


# --- attribution ----------------------------------------------------------------------------


def attribute(
    errors: Sequence[TemplateFinding],
) -> tuple[dict[str, float], dict[str, str]]:
    """Per service, the share of the traced error waves that start there; and the services
    whose errors always follow another's in the same traces (service → that other).

    A wave is one trace id across the error lines of every service; its origin is the service
    with the earliest error line in it."""
    by_trace: dict[str, list[tuple[float, str]]] = {}
    for finding in errors:
        for at, trace in finding.traces:
            if trace:
                by_trace.setdefault(trace, []).append((at, finding.service))
    waves = [sorted(lines) for lines in by_trace.values()]
    if not waves:
        return {}, {}
    votes: dict[str, int] = {}
    follows: dict[str, dict[str, int]] = {}
    for wave in waves:
        origin = wave[0][1]
        votes[origin] = votes.get(origin, 0) + 1
        for _, service in wave[1:]:
            if service != origin:
                mine = follows.setdefault(service, {})
                mine[origin] = mine.get(origin, 0) + 1
    shares = {s: n / len(waves) for s, n in votes.items()}
    echoes = {
        s: max(others, key=lambda o: others[o])
        for s, others in follows.items()
        if s not in votes and others
    }
    return shares, echoes


# --- hints ----------------------------------------------------------------------------------

_REFUSED = re.compile(
    r"(?i)(?:connection refused|could not connect|couldn't connect|failed to connect|connect "
    r"timed out|connection reset|no route to host|unknown ?host|name or service not known|"
    r"connectexception|econnrefused|unavailable)"
)
_HOST = re.compile(
    r"(?i)(?:https?://|grpc://|tcp://|\bto\s+|\bhost[=:\s]+|@)"
    r"([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)(?::(\d+))?"
)
_DOTTED_HOST = re.compile(
    r"(?<![\w.-])([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\.[a-z]{2,})(?=[/:\s\]\)'\",]|$)"
)
"""A lower-case dotted name followed by a port, a slash or a space (``api.bank.example/…:443``);
class names (``java.net.ConnectException``) have capitals and never match."""
_CLUSTER_SUFFIX = re.compile(r"\.(?:[a-z0-9-]+\.)?svc(?:\.cluster\.local)?$")


def named_dependency(examples: Sequence[str], *, services: Sequence[str]) -> str | None:
    """The host a refused or failed connection names: a service in ``services``, else
    ``external/<host>``; None when the lines name none."""
    for line in examples:
        if not _REFUSED.search(line):
            continue
        hosts = [m.group(1).lower() for m in _HOST.finditer(line)]
        hosts += [m.group(1) for m in _DOTTED_HOST.finditer(line)]
        for host in hosts:
            if host in ("localhost", "the", "a") or host.replace(".", "").isdigit():
                continue
            short = _CLUSTER_SUFFIX.sub("", host).split(".", 1)[0]
            known = next((s for s in services if components_.same_workload(s, short)), None)
            if known is not None:
                return known
            if "." in host and not _CLUSTER_SUFFIX.search(host):
                return f"external/{host}"
    return None


def _hints(
    errors: Sequence[TemplateFinding],
    *,
    origins: Mapping[str, float],
    derived: Mapping[int, models.Evidence],
    services: Sequence[str],
) -> list[LogHint]:
    """One hint per service with error findings (or per dependency they name), best first."""
    by_service: dict[str, list[TemplateFinding]] = {}
    for finding in errors:
        by_service.setdefault(finding.service, []).append(finding)
    traced = bool(origins)
    hints = []
    for service, mine in by_service.items():
        share = origins.get(service, 0.0) if traced and _has_traces(mine) else 1.0
        if not any(f.error for f in mine):
            share *= WARNING_WEIGHT  # a new warning says less than a new error
        if share <= 0.0:
            continue
        mine.sort(key=lambda f: (-strength(f), f.first))
        best = mine[0]
        dependency = named_dependency(
            [e for f in mine for e in f.examples], services=[s for s in services if s != service]
        )
        component, kind = service, None
        if dependency is not None:
            component = dependency
            kind = models.CauseKind.DEPENDENCY if dependency.startswith("external/") else None
        what = "exception" if best.exception else "error" if best.error else "warning"
        headline = (
            f"{best.change} {what} template in {service}: {best.incident} line(s) "
            f"(baseline {best.baseline}) «{best.template[:160]}»"
        )
        if dependency is not None:
            headline += f"; it names {dependency}"
        if traced and _has_traces(mine):
            headline += f"; {share:.0%} of the traced error waves start in {service}"
        hints.append(
            LogHint(
                component=component,
                share=share,
                strength=strength(best),
                kind=kind,
                evidence=tuple(derived[id(f)].id for f in mine[:3]),
                headline=headline,
                first=datetime.fromtimestamp(min(f.first for f in mine), UTC),
            )
        )
    hints.sort(key=lambda h: (-h.share, -h.strength, h.first))
    return hints


def _stopped_hints(
    stopped: Sequence[TemplateFinding], *, derived: Mapping[int, models.Evidence]
) -> list[LogHint]:
    """One hint per service with stopped templates; its share is its part of the requests
    missing across all services (its strongest template each): one service alone whose code
    path went silent is the origin, many at once say less of each."""
    best: dict[str, TemplateFinding] = {}
    for finding in stopped:
        held = best.get(finding.service)
        if held is None or finding.expected > held.expected:
            best[finding.service] = finding
    total = sum(f.expected for f in best.values())
    hints = []
    for service, finding in best.items():
        mine = sorted((f for f in stopped if f.service == service), key=lambda f: -f.expected)
        stopped_at = models.format_time(datetime.fromtimestamp(finding.first, UTC))
        hints.append(
            LogHint(
                component=service,
                share=finding.expected / total,
                strength=strength(finding),
                kind=None,
                evidence=tuple(derived[id(f)].id for f in mine[:3]),
                headline=(
                    f"{service} stopped logging «{finding.template[:160]}» at {stopped_at} "
                    f"({finding.baseline} line(s) before; {finding.expected:.0f} expected "
                    "since, none seen)"
                ),
                first=datetime.fromtimestamp(finding.first, UTC),
            )
        )
    return hints


def _has_traces(findings: Sequence[TemplateFinding]) -> bool:
    return any(trace for f in findings for _, trace in f.traces)


def _finding_evidence(
    finding: TemplateFinding, *, counted: Counted | None = None
) -> models.Evidence:
    what = "exception" if finding.exception else "error" if finding.error else "template"
    what = "warning" if finding.warning else what
    first = models.format_time(datetime.fromtimestamp(finding.first, UTC))
    summary = (
        f"logs: {finding.service}: {finding.change} {what} «{finding.template[:200]}», "
        f"{finding.incident} line(s) from {first} (baseline {finding.baseline}"
        + (f", {finding.expected:.1f} expected" if finding.change == "rose" else "")
        + ")"
    )
    if finding.change == "stopped":
        summary = (
            f"logs: {finding.service}: stopped template «{finding.template[:200]}»: "
            f"{finding.baseline} line(s), the last at {first}; the requests since should have "
            f"logged it {finding.expected:.1f} times" + (f" ({counted.reason})" if counted else "")
        )
    raw: dict[str, models.JSON] = {
        "service": finding.service,
        "template": finding.template,
        "change": finding.change,
        "error": finding.error,
        "warning": finding.warning,
        "exception": finding.exception,
        "baseline": finding.baseline,
        "incident": finding.incident,
        "expected": round(finding.expected, 3),
        "first": first,
        "examples": list(finding.examples),
        "read": finding.read,
        "traces": sorted({t for _, t in finding.traces if t})[:5],
    }
    return models.Evidence.make(
        source=SOURCE,
        query=f"{finding.query} | grep -F {_shell_quote(_fixed_part(finding.template))}",
        window=None,
        status=models.Status.OK,
        summary=summary,
        raw=raw,
    )


def _fixed_part(template: str) -> str:
    """The longest run of a template without a variable: what to grep for."""
    parts = re.split(r"<[^<>]*>", template)
    return max((p.strip() for p in parts), key=len, default=template)[:80]


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# --- the ranking ----------------------------------------------------------------------------


def merge_logs(
    drafts: Sequence[ranking.Draft],
    *,
    findings: LogFindings,
    changes: Sequence[models.Change],
    change_evidence: Mapping[str, str],
    confidence: ranking.ConfidencePolicy,
    anomalous: frozenset[str] = frozenset(),
    policy: LogPolicy | None = None,
) -> list[ranking.Draft]:
    """The drafts with the log hints folded in, best first (see the module's docstring).
    ``anomalous``: the components whose metrics moved; a hint on one of them supports its
    draft, a hint on any other component weighs as a cause of its own."""
    policy = policy or LogPolicy()
    out = [_echoed(d, findings=findings, policy=policy) for d in drafts]
    out = [_contradicted(d, findings=findings) for d in out]
    leader = max((d.score for d in out), default=0.0)
    for hint in findings.hints:
        index = next(
            (
                i
                for i, d in enumerate(out)
                if components_.same_workload(d.component, hint.component)
            ),
            None,
        )
        rollout = _rollout_before(hint, changes=changes, confidence=confidence)
        alone = _log_only(hint, leader=leader, policy=policy)
        if index is None:
            draft = alone
        else:
            draft = _supported(out[index], hint=hint, policy=policy)
            if not any(components_.same_workload(hint.component, a) for a in anomalous):
                draft = dataclasses.replace(draft, score=max(draft.score, alone.score))
        if rollout is not None:
            draft = _shipped(draft, rollout=rollout, change_evidence=change_evidence)
        if index is None:
            out.append(draft)
        else:
            out[index] = draft
    out.sort(key=lambda d: -d.score)
    return out[: confidence.max_hypotheses]


def _supported(draft: ranking.Draft, *, hint: LogHint, policy: LogPolicy) -> ranking.Draft:
    return dataclasses.replace(
        draft,
        kind=hint.kind or draft.kind,
        score=draft.score * (1.0 + policy.weight * hint.share),
        strength=max(draft.strength, hint.strength),
        fit=max(draft.fit, policy.fit),
        summary=f"{draft.summary}; logs: {hint.headline}",
        evidence=(*draft.evidence, *hint.evidence),
    )


def _log_only(hint: LogHint, *, leader: float, policy: LogPolicy) -> ranking.Draft:
    """A cause only the logs show: ordered against the strongest draft by the share of the
    error waves that start there (all of them: ahead of it)."""
    base = leader * hint.share if leader > 0 else hint.strength
    return ranking.Draft(
        kind=hint.kind or models.CauseKind.RESOURCE,
        component=hint.component,
        score=base * (1.0 + policy.weight * hint.share),
        strength=hint.strength,
        fit=0.85 if hint.kind else policy.fit,
        summary=f"{hint.component}: {hint.headline} (in the logs; its metrics show no anomaly)",
        evidence=hint.evidence,
        counter=(),
        change=None,
        onset=hint.first,
    )


def _rollout_before(
    hint: LogHint, *, changes: Sequence[models.Change], confidence: ranking.ConfidencePolicy
) -> models.Change | None:
    """The latest rollout or config edit of the hint's workload that explains its first
    error line."""
    mine = [
        c
        for c in changes
        if components_.same_workload(c.component, hint.component)
        and c.kind in (models.ChangeKind.ROLLOUT, models.ChangeKind.CONFIG)
        and ranking.precedence(c.at, hint.first, policy=confidence) >= 0.3
    ]
    return max(mine, key=lambda c: c.at, default=None)


def _shipped(
    draft: ranking.Draft, *, rollout: models.Change, change_evidence: Mapping[str, str]
) -> ranking.Draft:
    kind = (
        models.CauseKind.DEPLOY
        if rollout.kind is models.ChangeKind.ROLLOUT
        else models.CauseKind.CONFIG
    )
    cite = change_evidence.get(rollout.ref + rollout.at.isoformat())
    return dataclasses.replace(
        draft,
        kind=kind,
        change=rollout.ref,
        fit=max(draft.fit, 0.9),
        summary=f"{rollout.kind.value} {rollout.ref} ({rollout.detail}) came before: "
        f"{draft.summary}",
        evidence=(*((cite,) if cite else ()), *draft.evidence),
        counter=tuple(c for c in draft.counter if c != cite),
    )


def _echoed(draft: ranking.Draft, *, findings: LogFindings, policy: LogPolicy) -> ranking.Draft:
    origin = next(
        (o for s, o in findings.echoes.items() if components_.same_workload(s, draft.component)),
        None,
    )
    if origin is None or any(
        components_.same_workload(h.component, draft.component) for h in findings.hints
    ):
        return draft
    return dataclasses.replace(
        draft,
        score=draft.score * policy.echo_penalty,
        summary=f"{draft.summary}; in the logs its errors follow {origin}'s in the same traces",
    )


def _contradicted(draft: ranking.Draft, *, findings: LogFindings) -> ranking.Draft:
    """A draft on a service whose logs hold no new error, while others' do, cites the read."""
    if not findings.hints:
        return draft
    read = next(
        (r for s, r in findings.quiet.items() if components_.same_workload(s, draft.component)),
        None,
    )
    if read is None:
        return draft
    return dataclasses.replace(draft, counter=(*draft.counter, read))
