"""The log analysis: which templates tell of the incident, where a wave of errors starts, and
how the logs move the ranking. Pure: evidence records in, findings and drafts out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diagnose.analysis import logs, ranking
from diagnose.domain import models

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPLIT = T0 + timedelta(minutes=30)
START = T0.timestamp()


def _template(
    text: str,
    times: list[float],
    *,
    error: bool = False,
    warning: bool = False,
    traces: list[str] | None = None,
    examples: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "template": text,
        "error": error,
        "warning": warning,
        "exception": "Exception" in text,
        "times": times,
        "traces": traces if traces is not None else [""] * len(times),
        "examples": examples if examples is not None else [text],
    }


def _read(
    service: str, templates: list[dict[str, Any]], *, split: datetime = SPLIT
) -> models.Evidence:
    times = [t for tpl in templates for t in tpl["times"]]
    payload = {
        "service": service,
        "pod": f"{service}-7d9f8-abcde",
        "container": "",
        "previous": False,
        "incident_from": models.format_time(split),
        "lines": len(times),
        "bytes": 100 * len(times),
        "dropped": 0,
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "templates": templates,
    }
    return models.Evidence.make(
        source="logs",
        query=f"kubectl logs {service}-7d9f8-abcde -n shop --timestamps",
        window=models.Window(T0, T0 + timedelta(hours=1)),
        status=models.Status.OK,
        summary="",
        raw=payload,
        kind=models.EvidenceKind.LOGS,
    )


def _every(seconds: float, *, start: float = 0.0, end: float = 3600.0) -> list[float]:
    count = int((end - start) / seconds)
    return [START + start + i * seconds for i in range(count)]


def _chatty(service: str) -> dict[str, Any]:
    return _template(f"INFO {service} handled request in <NUM> ms", _every(2.0))


def test_a_template_absent_before_and_frequent_after_is_new() -> None:
    """No line before the incident, forty after: a new error, cited as a kubectl logs grep."""
    boom = _template(
        "ERROR order <NUM> failed: NullPointerException", _every(20, start=1900), error=True
    )
    found = logs.read_logs([_read("checkout", [_chatty("checkout"), boom])])
    assert [h.component for h in found.hints] == ["checkout"]
    record = next(e for e in found.derived if e.raw and e.raw["change"] == "new")
    assert record.query.startswith("kubectl logs checkout-7d9f8-abcde -n shop --timestamps | grep")
    assert "NullPointerException" in record.query


def test_a_steady_template_is_no_finding() -> None:
    """Errors at the same rate before and during the incident tell nothing (a chatty service)."""
    steady = _template("WARN cache miss for <*>", _every(1.0), warning=True)
    noisy = _template("ERROR retrying <*>", _every(5.0), error=True)
    found = logs.read_logs([_read("search", [steady, noisy, _chatty("search")])])
    assert found.hints == ()
    assert "no new or rising error template" in " ".join(found.notes)


def test_a_template_whose_rate_rose_is_a_finding() -> None:
    """One line a minute before, one every two seconds after: risen, with its expected count."""
    rising = _template(
        "ERROR timeout calling <*>", _every(60, end=1800) + _every(2, start=1800), error=True
    )
    found = logs.read_logs([_read("cart", [rising])])
    record = next(e for e in found.derived)
    assert record.raw["change"] == "rose"
    assert record.raw["baseline"] == 30 and round(record.raw["expected"]) == 30


def test_absence_from_too_short_a_baseline_is_not_new() -> None:
    """Three lines in thirty minutes could have missed a two-minute baseline: not new."""
    rare = _template("ERROR rare thing", [START + 1900, START + 2500, START + 3000], error=True)
    short = _read("cart", [_template("INFO up", _every(5, start=1680)), rare])
    assert logs.read_logs([short]).hints == ()


def test_without_a_baseline_a_late_frequent_template_is_new() -> None:
    """Logs that begin inside the incident window: a template absent for long enough before its
    first line is new; one there from the start is not."""
    early = T0 - timedelta(minutes=30)
    late = _template("ERROR payment declined <*>", _every(3, start=1200, end=1800), error=True)
    always = _template("ERROR flaky <*>", _every(10, start=0, end=1800), error=True)
    found = logs.read_logs([_read("payments", [always, late], split=early)])
    assert [e.raw["template"] for e in found.derived] == ["ERROR payment declined <*>"]
    assert any("no baseline" in n for n in found.notes)


def _requests(seconds: float, *, start: float = 0.0, end: float = 3600.0) -> list[str]:
    """One trace id per request: its start in seconds, zero-padded to 32 digits (an id a trace
    back end could know, which still reads as the request's time)."""
    return [f"{start + i * seconds:032.0f}" for i in range(int((end - start) / seconds))]


def test_a_steady_template_that_falls_silent_in_the_incident_is_stopped() -> None:
    """Each request logs "price found" until ten minutes into the incident, then none does
    while the service keeps logging every request: stopped, cited with the requests that should
    have logged it, and a hint on the service."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    found_price = _template(
        "INFO price found for <*>", _every(10, end=2400), traces=_requests(10, end=2400)
    )
    found = logs.read_logs([_read("prices", [handled, found_price])])
    record = next(e for e in found.derived if e.raw and e.raw["change"] == "stopped")
    assert record.raw["template"] == "INFO price found for <*>"
    assert round(record.raw["expected"]) == 120  # the 120 requests after its last line
    assert [h.component for h in found.hints] == ["prices"]
    assert "stopped logging" in found.hints[0].headline
    assert "prices" not in found.quiet


def test_a_template_that_stopped_before_the_incident_or_briefly_is_no_finding() -> None:
    """Silent since before the incident window (with a baseline): old news. Silent for a few
    requests only: chance. Neither is stopped."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    retired = _template(
        "INFO legacy path <*>", _every(10, end=1500), traces=_requests(10, end=1500)
    )
    rare = _template("INFO cache warm <*>", _every(600, end=3000), traces=_requests(600, end=3000))
    found = logs.read_logs([_read("prices", [handled, retired, rare])])
    assert not [e for e in found.derived if e.raw and e.raw["change"] == "stopped"]
    assert found.hints == ()


def test_a_statement_drain_split_by_length_stops_only_when_all_its_templates_do() -> None:
    """Two templates of one statement (same time, level and logger#line; a list of one item or
    two): one falling silent while the other goes on is no stopped statement; both falling
    silent is one, counted together."""
    handled = _template("<TIME> INFO c.Cart#12 handled <*>", _every(10), traces=_requests(10))
    one = _template(
        "<TIME> INFO c.Price#46 items: <*>", _every(20, end=2400), traces=_requests(20, end=2400)
    )
    two = _template(
        "<TIME> INFO c.Price#46 items: <*> <*>",
        _every(20, start=10),
        traces=_requests(20, start=10),
    )
    going_on = logs.read_logs([_read("prices", [handled, one, two])])
    assert not [e for e in going_on.derived if e.raw and e.raw["change"] == "stopped"]
    two_stops = _template(
        "<TIME> INFO c.Price#46 items: <*> <*>",
        _every(20, start=10, end=2400),
        traces=_requests(20, start=10, end=2400),
    )
    both = logs.read_logs([_read("prices", [handled, one, two_stops])])
    [record] = [e for e in both.derived if e.raw and e.raw["change"] == "stopped"]
    assert record.raw["baseline"] == len(one["times"]) + len(two_stops["times"])


def _short_pod(logged: int, silent: int, *, steady: int = 0) -> models.Evidence:
    """A pod whose log holds ``logged + silent`` requests ten seconds apart (no baseline before
    them): every request logs "handled" and ``steady`` other statements, the first ``logged``
    also "coupon applied"."""
    at = [START + 1790 + 10 * i for i in range(logged + silent)]
    ids = [f"trace-{i}" for i in range(logged + silent)]
    templates = [_template("INFO handled <*>", at, traces=ids)]
    templates += [_template(f"INFO step{k} done <*>", at, traces=ids) for k in range(steady)]
    templates.append(_template("INFO coupon applied <*>", at[:logged], traces=ids[:logged]))
    return _read("prices", templates)


def _stopped_templates(found: logs.LogFindings) -> list[str]:
    return [str(e.raw["template"]) for e in found.derived if e.raw and e.raw["change"] == "stopped"]


def test_a_statement_known_from_three_requests_is_not_stopped_by_five_silent_ones() -> None:
    """Three requests logged it and the five after did not: at its rate taken as known that is
    P = e^-5, but the rate is learnt from those three lines; by chance alone the three land
    first one time in 56. No finding; six logged and ten silent (one in 8,008) is one."""
    assert logs.silence(3, before=3, after=5) == pytest.approx(math.log(56))
    assert _stopped_templates(logs.read_logs([_short_pod(3, 5)])) == []
    assert _stopped_templates(logs.read_logs([_short_pod(6, 10)])) == ["INFO coupon applied <*>"]


def test_a_silence_must_stand_out_among_every_statement_the_pod_put_to_the_test() -> None:
    """Four requests logged it and eight did not (one in 495): a finding in a pod with two
    statements, none where three more were tested too, as each test is a chance for luck."""
    assert _stopped_templates(logs.read_logs([_short_pod(4, 8)])) == ["INFO coupon applied <*>"]
    assert _stopped_templates(logs.read_logs([_short_pod(4, 8, steady=3)])) == []
    assert _stopped_templates(logs.read_logs([_short_pod(8, 16, steady=3)])) == [
        "INFO coupon applied <*>"
    ]


def test_lines_of_one_request_count_once_for_a_stopped_template() -> None:
    """Ten lines of one request each: what is expected to be missing counts requests, so a
    burst of lines from few requests is not mistaken for many."""
    burst_times = [START + 2000 + i * 0.01 for i in range(10)]
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    burst = _template("INFO step <NUM> of batch", burst_times, traces=["trace-one"] * 10)
    found = logs.read_logs([_read("prices", [handled, burst])])
    stopped = [e for e in found.derived if e.raw and e.raw["change"] == "stopped"]
    assert stopped == []


def test_an_error_template_that_stops_is_recovery_not_a_finding() -> None:
    """Errors that end are a recovery: only informational templates can be stopped."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    failing = _template(
        "ERROR upstream failed <*>",
        _every(10, end=2400),
        error=True,
        traces=_requests(10, end=2400),
    )
    found = logs.read_logs([_read("prices", [handled, failing])])
    assert not [e for e in found.derived if e.raw and e.raw["change"] == "stopped"]


def test_one_service_whose_code_path_stopped_outweighs_a_few_stray_ones() -> None:
    """Shares of stopped hints follow the requests missing in each service."""
    big = _read(
        "prices",
        [
            _template("INFO handled <*>", _every(10), traces=_requests(10)),
            _template("INFO price found <*>", _every(10, end=2400), traces=_requests(10, end=2400)),
        ],
    )
    small = _read(
        "orders",
        [
            _template("INFO order <*>", _every(20), traces=[f"o{i}" for i in range(180)]),
            _template(
                "INFO coupon <*>", _every(120, end=2900), traces=[f"c{i}" for i in range(24)]
            ),
        ],
    )
    found = logs.read_logs([big, small])
    shares = {h.component: h.share for h in found.hints}
    assert shares["prices"] > 0.8 > shares.get("orders", 0.0)


def test_an_error_wave_belongs_to_the_service_where_it_starts() -> None:
    """Within one trace, the earliest erroring service is the origin; its caller is an echo."""
    ids = [f"{i:032x}" for i in range(20)]
    times = [START + 1900 + 10 * i for i in range(20)]
    callee = _template("ERROR no contacts for <*>", times, error=True, traces=ids)
    caller = _template(
        "ERROR request failed: <*>", [t + 0.5 for t in times], error=True, traces=ids
    )
    found = logs.read_logs(
        [_read("contacts", [callee]), _read("frontend", [caller, _chatty("frontend")])]
    )
    assert [(h.component, h.share) for h in found.hints] == [("contacts", 1.0)]
    assert found.echoes == {"frontend": "contacts"}


def test_errors_outrank_warnings() -> None:
    """New warnings count only where there is no new error at all."""
    warn = _template("WARN seat info empty <*>", _every(2, start=1900), warning=True)
    error = _template("ERROR route <*> not found", _every(30, start=1900), error=True)
    orders = _read("orders", [warn, _chatty("orders")])
    found = logs.read_logs([orders, _read("routes", [error])])
    assert [h.component for h in found.hints] == ["routes"]
    alone = logs.read_logs([orders])
    assert [h.component for h in alone.hints] == ["orders"]


def test_a_refused_connection_names_its_dependency() -> None:
    """Errors that say a connection to an outside host was refused point at that host."""
    line = "ERROR charge failed: Connection refused to api.bank.example:443"
    refused = _template(
        "ERROR charge failed: Connection refused to <*>",
        _every(10, start=1900),
        error=True,
        examples=[line],
    )
    found = logs.read_logs([_read("payments", [refused, _chatty("payments")])])
    assert found.hints[0].component == "external/api.bank.example"
    assert found.hints[0].kind is models.CauseKind.DEPENDENCY


def test_a_denied_log_read_is_a_note() -> None:
    """A log source that refused is named in the notes, never a crash."""
    denied = models.Evidence.make(
        source="logs",
        query="kubectl logs -n shop",
        window=None,
        status=models.Status.DENIED,
        summary="Kubernetes API denied pods/log",
    )
    found = logs.read_logs([denied])
    assert found.hints == ()
    assert any("denied" in n for n in found.notes)


def test_poisson_tail() -> None:
    """P(X ≥ k) for a Poisson mean: 1 at k = 0, e^-m at k = 1, tiny far out."""
    assert logs.poisson_tail(0, 3.0) == 1.0
    assert abs(logs.poisson_tail(1, 3.0) - (1 - 2.718281828**-3)) < 1e-9
    assert logs.poisson_tail(40, 3.0) < 1e-20


# --- the ranking -----------------------------------------------------------------------------


def _draft(component: str, score: float, **extra: Any) -> ranking.Draft:
    fields: dict[str, Any] = {
        "kind": models.CauseKind.RESOURCE,
        "component": component,
        "score": score,
        "strength": 8.0,
        "fit": 0.6,
        "summary": f"{component}: latency up",
        "evidence": (f"ev-{component}",),
        "counter": (),
        "change": None,
        "onset": SPLIT,
    }
    return ranking.Draft(**(fields | extra))


def _hint(component: str, share: float, **extra: Any) -> logs.LogHint:
    fields: dict[str, Any] = {
        "component": component,
        "share": share,
        "strength": 9.0,
        "kind": None,
        "evidence": (f"log-{component}",),
        "headline": "new error template",
        "first": SPLIT + timedelta(minutes=2),
    }
    return logs.LogHint(**(fields | extra))


def _merge(drafts: list[ranking.Draft], found: logs.LogFindings, **extra: Any) -> list[Any]:
    return logs.merge_logs(
        drafts,
        findings=found,
        changes=extra.get("changes", ()),
        change_evidence=extra.get("change_evidence", {}),
        confidence=ranking.ConfidencePolicy(),
    )


def test_a_hint_on_the_leader_supports_it() -> None:
    """The logs' service already leading gains score, fit and the log evidence."""
    found = logs.LogFindings((_hint("checkout", 1.0),), {}, {}, (), ())
    merged = _merge([_draft("checkout", 10.0), _draft("cart", 8.0)], found)
    assert merged[0].component == "checkout" and merged[0].score == 15.0
    assert "log-checkout" in merged[0].evidence and merged[0].fit == 0.8


def test_a_log_only_cause_leads_when_every_error_wave_starts_there() -> None:
    """A service with no metric anomaly where all traced error waves start goes first; with
    a third of them it stays behind the metrics' leader."""
    leader = _draft("frontend", 10.0)
    all_waves = _merge([leader], logs.LogFindings((_hint("contacts", 1.0),), {}, {}, (), ()))
    assert all_waves[0].component == "contacts"
    assert all_waves[0].fit == logs.LogPolicy().fit  # as a hypothesis the logs support
    some = _merge([leader], logs.LogFindings((_hint("contacts", 0.3),), {}, {}, (), ()))
    assert some[0].component == "frontend"


def test_a_rollout_before_the_first_error_makes_a_deploy_cause() -> None:
    """A rollout of the service shortly before its first new error: deploy, with that change."""
    rollout = models.Change(
        kind=models.ChangeKind.ROLLOUT,
        component="checkout",
        ref="deployment/checkout@7",
        at=SPLIT - timedelta(minutes=3),
        detail="image checkout:2.1 → checkout:2.2",
        namespace="shop",
        evidence="ev-rs",
    )
    key = rollout.ref + rollout.at.isoformat()
    found = logs.LogFindings((_hint("checkout", 1.0),), {}, {}, (), ())
    merged = _merge(
        [_draft("checkout", 2.0)], found, changes=[rollout], change_evidence={key: "ev-change"}
    )
    assert merged[0].kind is models.CauseKind.DEPLOY
    assert merged[0].change == "deployment/checkout@7"
    assert merged[0].evidence[0] == "ev-change"


def test_an_echo_yields_and_a_quiet_read_is_counter_evidence() -> None:
    """A caller whose errors follow the origin's is marked down; a service whose logs hold no
    new error cites its log read against its hypothesis."""
    found = logs.LogFindings(
        (_hint("contacts", 1.0),), {"frontend": "contacts"}, {"cart": "ev-cart-log"}, (), ()
    )
    merged = _merge([_draft("frontend", 10.0), _draft("cart", 9.0)], found)
    frontend = next(d for d in merged if d.component == "frontend")
    cart = next(d for d in merged if d.component == "cart")
    assert frontend.score == 6.0 and "follow contacts" in frontend.summary
    assert cart.counter == ("ev-cart-log",)


def test_the_host_a_failed_connection_names_is_read_in_its_usual_forms() -> None:
    """Java's host/ip:port, a cluster DNS name, and a class name that is no host."""
    java = "java.net.ConnectException: Connection refused: api.bank.example/203.0.113.7:443"
    assert logs.named_dependency([java], services=["payments"]) == "external/api.bank.example"
    dns = "dial tcp: connect to payments.shop.svc.cluster.local:8080: connection refused"
    assert logs.named_dependency([dns], services=["payments"]) == "payments"
    bare = "java.net.ConnectException: Connection refused (Connection refused)"
    assert logs.named_dependency([bare], services=["payments"]) is None


def test_a_hint_on_an_anomalous_component_supports_it_but_does_not_jump_the_queue() -> None:
    """Where the metrics already rank the service, the logs multiply its score (by 1.5 at most);
    a service the metrics show quiet takes its place from the error waves alone."""
    drafts = [_draft("frontend", 10.0), _draft("travel", 5.0)]
    found = logs.LogFindings((_hint("travel", 1.0),), {}, {}, (), ())
    anomalous = logs.merge_logs(
        drafts,
        findings=found,
        changes=(),
        change_evidence={},
        confidence=ranking.ConfidencePolicy(),
        anomalous=frozenset({"frontend", "travel"}),
    )
    assert [(d.component, d.score) for d in anomalous] == [("frontend", 10.0), ("travel", 7.5)]
    quiet = logs.merge_logs(
        drafts,
        findings=found,
        changes=(),
        change_evidence={},
        confidence=ranking.ConfidencePolicy(),
        anomalous=frozenset({"frontend"}),
    )
    assert quiet[0].component == "travel"


def _server_spans(service: str, operations: dict[str, str]) -> list[Any]:
    """One server span per request: trace id → its operation."""
    return [
        {
            "trace_id": trace,
            "span_id": f"{index:016x}",
            "parent_id": None,
            "service": service,
            "operation": operation,
            "kind": "server",
            "start_us": int((START + float(trace)) * 1e6),
            "duration_us": 1000,
            "status": "unset",
            "attrs": {},
        }
        for index, (trace, operation) in enumerate(operations.items())
    ]


def test_a_statement_whose_requests_stopped_arriving_is_not_stopped_code() -> None:
    """ "price found" falls silent at 40 minutes. When the traces show its requests' operation
    (GET /price) going on without it, the service's code path changed: a finding. When they
    show no GET /price after it either, and the service serves only GET /cart from then on,
    its callers stopped asking: no finding, and a note says why."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    found_price = _template(
        "INFO price found for <*>", _every(10, end=2400), traces=_requests(10, end=2400)
    )
    read = _read("prices", [handled, found_price])
    requests = _requests(10)
    still_asked = _server_spans("prices", dict.fromkeys(requests, "GET /price"))
    found = logs.read_logs([read], spans=still_asked)
    assert [h.component for h in found.hints] == ["prices"]
    assert not any("stopped arriving" in n for n in found.notes)

    asked_other = _server_spans(
        "prices",
        {t: "GET /price" if float(t) < 2400 else "GET /cart" for t in requests},
    )
    found = logs.read_logs([read], spans=asked_other)
    assert found.hints == ()
    assert any("stopped arriving too" in n and "prices" in n for n in found.notes)

    unrelated = _server_spans("checkout", dict.fromkeys(requests, "GET /checkout"))
    assert [h.component for h in logs.read_logs([read], spans=unrelated).hints] == ["prices"]


def test_the_operation_a_statement_ran_in_is_the_span_open_at_its_line() -> None:
    """Each request asks GET /price, which logs "price found", then PUT /status in the same
    trace half a second later; from 40 minutes on only GET /cart is asked. The statement ran in
    GET /price, not in the PUT that followed it: its requests stopped arriving, though the last
    PUT came after its last line."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    found_price = _template(
        "INFO price found for <*>", _every(10, end=2400), traces=_requests(10, end=2400)
    )
    read = _read("prices", [handled, found_price])
    early = _requests(10, end=2400)
    spans = _server_spans("prices", dict.fromkeys(early, "GET /price"))
    status = _server_spans("prices", dict.fromkeys(early, "PUT /status"))
    for span in status:
        span["start_us"] += 500_000
        span["span_id"] = "f" + span["span_id"][1:]
    spans += status + _server_spans("prices", dict.fromkeys(_requests(10, start=2400), "GET /cart"))
    found = logs.read_logs([read], spans=spans)
    assert found.hints == ()
    assert any("stopped arriving too" in n and "prices" in n for n in found.notes)


def _counted(
    service: str, operation: str, window: models.Window, count: int, *, capped: bool = False
) -> models.Evidence:
    """The trace back end's count of one operation's requests in one window."""
    return models.Evidence.make(
        source="traces",
        query=f"count {service} {operation} {window.start.isoformat()}",
        window=window,
        status=models.Status.OK,
        summary=f"{count} requests",
        raw={"service": service, "operation": operation, "count": count, "capped": capped},
        kind=models.EvidenceKind.REQUESTS,
    )


def _price_read() -> models.Evidence:
    """Every ten seconds a request; each logs "price found" until 40 minutes, none after."""
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    found_price = _template(
        "INFO price found for <*>", _every(10, end=2400), traces=_requests(10, end=2400)
    )
    return _read("prices", [handled, found_price])


def test_a_stopped_statement_is_checked_over_its_latest_traced_lines() -> None:
    """The check covers the statement from its first line to its last (while it logged) and
    from there to the pod's last line (since), and names the traces of its latest lines."""
    (check,) = logs.stop_checks([_price_read()])
    assert check.service == "prices" and check.template == "INFO price found for <*>"
    assert check.before.start == T0 and check.before.end == T0 + timedelta(seconds=2390)
    assert check.after.start == check.before.end
    assert check.after.end == T0 + timedelta(seconds=3590)
    assert [float(trace) for _, trace in check.lines] == [2390, 2380, 2370]
    untraced = _template("INFO price found for <*>", _every(10, end=2400))
    read = _read("prices", [_template("INFO handled <*>", _every(10)), untraced])
    assert logs.stop_checks([read]) == []  # no trace id: nothing to ask the traces
    unknown = [f"trace-{i}" for i in range(240)]
    named = _template("INFO price found for <*>", _every(10, end=2400), traces=unknown)
    every = [f"trace-{i}" for i in range(360)]
    read = _read("prices", [_template("INFO handled <*>", _every(10), traces=every), named])
    assert logs.stop_checks([read]) == []  # "trace-239" is no id a trace back end knows


def test_the_operation_of_a_checked_line_is_the_server_span_open_at_it() -> None:
    """The line's trace asked GET /price, then PUT /status a moment after the line: the
    statement ran in GET /price. Spans of another service are not its operations."""
    (check,) = logs.stop_checks([_price_read()])
    price = _server_spans("prices", dict.fromkeys(_requests(10, end=2400), "GET /price"))
    status = _server_spans("prices", dict.fromkeys(_requests(10, end=2400), "PUT /status"))
    for span in status:
        span["start_us"] += 500_000
        span["span_id"] = "f" + span["span_id"][1:]
    other = _server_spans("cart", dict.fromkeys(_requests(10, end=2400), "GET /cart"))
    assert logs.operations_at(check, spans=price + status + other) == [("prices", "GET /price")]
    assert logs.operations_at(check, spans=other) == []


def test_a_stopped_statement_counts_the_requests_its_operation_got_since() -> None:
    """Its operation asked 240 times while it logged (each logging it) and 120 since: 120
    requests should have logged it, the finding stands and cites the counts. Asked three
    times since: too few to tell a silent code path from a caller asking less; no hint, and a
    note says why. Counts that cannot be compared (one side missing, or the search capped
    while it logged) leave the statement as the logs alone judge it."""
    read = _price_read()
    (check,) = logs.stop_checks([read])

    def counts(since: int, *, capped: bool = False) -> list[models.Evidence]:
        return [
            _counted("prices", "GET /price", check.before, 240, capped=capped),
            _counted("prices", "GET /price", check.after, since),
        ]

    asked = logs.read_logs([read], requests=counts(120))
    assert [h.component for h in asked.hints] == ["prices"]
    record = next(e for e in asked.derived if e.raw and e.raw["change"] == "stopped")
    assert round(record.raw["expected"]) == 120
    assert (
        "asked 240 time(s) while it logged" in record.summary
        and "120 time(s) since" in record.summary
    )

    rarely = logs.read_logs([read], requests=counts(3))
    assert rarely.hints == ()
    (note,) = [n for n in rarely.notes if "not counted" in n]
    assert "prices" in note and "too few of its requests came since" in note and "3 time(s)" in note

    for unusable in (counts(3)[:1], counts(3, capped=True)):
        assert [h.component for h in logs.read_logs([read], requests=unusable).hints] == ["prices"]


def test_counted_requests_reweigh_stops_across_services() -> None:
    """Two services stop a statement each, equally on the logs alone. The traces count prices'
    operation going on (120 requests since) and orders' asked 12 times since, a tenth as
    often: prices carries the larger share."""
    read = _price_read()
    handled = _template("INFO handled <*>", _every(10), traces=_requests(10))
    created = _template(
        "INFO order created <*>", _every(10, end=2400), traces=_requests(10, end=2400)
    )
    orders = _read("orders", [handled, created])
    checks = {c.service: c for c in logs.stop_checks([read, orders])}
    alone = logs.read_logs([read, orders])
    assert {h.component: round(h.share, 2) for h in alone.hints} == {"prices": 0.5, "orders": 0.5}
    requests = [
        _counted("prices", "GET /price", checks["prices"].before, 240),
        _counted("prices", "GET /price", checks["prices"].after, 120),
        _counted("orders", "POST /order", checks["orders"].before, 240),
        _counted("orders", "POST /order", checks["orders"].after, 12),
    ]
    shares = {h.component: h.share for h in logs.read_logs([read, orders], requests=requests).hints}
    assert shares["prices"] > 0.9 and shares["orders"] < 0.1
