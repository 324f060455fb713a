"""Postmortem drafting on recorded runs: every line cites stored data, impact comes from the
series, and what is not known is written as unknown."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from diagnose import postmortem
from diagnose.analysis import correlating
from diagnose.domain import models
from diagnose.postmortem import drafting, markdown, timeline
from tests.postmortem.conftest import SECTIONS, audit_entry, record_of
from tests.support import approvals


def _approval(record: postmortem.RunRecord, *, minutes: float = 6) -> models.Decision:
    fix = record.state["fixes"][0]
    checked = approvals.checked(record.state["correlation"]["hypotheses"][fix["hypothesis"]])
    at = models.parse_time(record.state["now"]) + timedelta(minutes=minutes)
    return models.Decision(
        verdict=models.Verdict.APPROVE,
        approver="alice",
        reason="errors began with the rollout",
        at=at,
        fix=fix["id"],
        checked_evidence=tuple(checked),
    )


def _resolves(ref: str, record: postmortem.RunRecord) -> bool:
    evidence = {e.id for e in record.evidence}
    audit = {f"audit:{e['key']}" for e in record.audit}
    return ref in evidence or ref in audit or ref in (timeline.TRIGGER_REF, timeline.STARTED_REF)


def test_every_timeline_line_cites_a_record_the_run_stored(
    bad_deploy: postmortem.RunRecord,
) -> None:
    decided = record_of("bad-deploy-5xx", decision=_approval(bad_deploy))
    draft = drafting.draft(decided)
    assert len(draft.timeline) >= 6
    assert all(_resolves(line.ref, decided) for line in draft.timeline)
    kinds = {line.kind for line in draft.timeline}
    assert {"culprit", "onset", "alert", "started", "proposal", "approval", "action"} <= kinds
    assert [line.at for line in draft.timeline] == sorted(line.at for line in draft.timeline)


def test_the_culprit_rollout_precedes_the_onset_and_cites_its_revision(
    bad_deploy: postmortem.RunRecord,
) -> None:
    draft = drafting.draft(bad_deploy)
    (culprit,) = [line for line in draft.timeline if line.kind == "culprit"]
    evidence = {e.id: e for e in bad_deploy.evidence}
    assert evidence[culprit.ref].raw["ref"] == "deployment/checkout@14"
    # the root's onset first; the alerting service's own onset may follow it
    onset = next(line for line in draft.timeline if line.kind == "onset")
    assert evidence[onset.ref].raw["component"] == "checkout"
    assert timedelta(0) <= onset.at - culprit.at <= timedelta(minutes=2)
    decoy = [line for line in draft.timeline if "deployment/inventory" in line.what]
    assert decoy and decoy[0].kind == "change"


def _raw_failed(record: postmortem.RunRecord, *, service: str, start: float, end: float) -> float:
    """5xx requests of ``service`` between two times, straight from its raw counters."""
    total = 0.0
    for evidence in record.evidence:
        if evidence.source != "prometheus" or not isinstance(evidence.raw, list):
            continue
        for series in evidence.raw:
            labels = series["labels"]
            if labels.get("__name__") != "http_server_request_duration_seconds_count":
                continue
            if labels.get("service_name") != service:
                continue
            if not str(labels.get("http_response_status_code", "")).startswith("5"):
                continue
            t, v = np.array(series["t"]), np.array(series["v"], dtype=float)
            inside = (t >= start) & (t <= end)
            if inside.sum() >= 2:
                total += float(v[inside][-1] - v[inside][0])
    return total


def test_affected_requests_agree_with_the_raw_counters(bad_deploy: postmortem.RunRecord) -> None:
    draft = drafting.draft(bad_deploy)
    impact = draft.impact
    assert impact.onset is not None and impact.data_end is not None
    counted = {r.service: r for r in impact.requests}
    assert set(counted) == {"frontend", "checkout"}
    checkout = counted["checkout"]
    expected = _raw_failed(
        bad_deploy,
        service="checkout",
        start=impact.onset.timestamp(),
        end=impact.data_end.timestamp(),
    )
    assert expected > 50
    assert checkout.failed == pytest.approx(expected, rel=0.3)
    assert 0 < checkout.failed < checkout.total
    assert any(f"{checkout.failed:,.0f}" in line for line in impact.requests_text)


def test_without_recovery_or_resolution_the_end_is_unknown(
    bad_deploy: postmortem.RunRecord,
) -> None:
    draft = drafting.draft(bad_deploy)
    assert draft.impact.end is None
    assert draft.impact.end_kind == "ongoing"
    assert draft.impact.duration.startswith("at least ")
    assert "end unknown" in draft.impact.duration
    (last,) = [line for line in draft.timeline if line.kind == "data_end"]
    assert "recovery unknown" in last.what
    text = markdown.markdown(draft)
    assert "- End: unknown (ongoing)" in text


def test_the_error_budget_is_unknown_without_an_slo(bad_deploy: postmortem.RunRecord) -> None:
    draft = drafting.draft(bad_deploy)
    assert draft.impact.budget.startswith("unknown: no SLO target")
    assert any("Define an SLO for frontend" in item for item in draft.actions)


def test_the_error_budget_is_computed_from_a_configured_slo(
    bad_deploy: postmortem.RunRecord,
) -> None:
    draft = drafting.draft(bad_deploy, slo=postmortem.Slo(target=0.999, window_days=30))
    frontend = next(r for r in draft.impact.requests if r.service == "frontend")
    budget = 0.001 * frontend.baseline_rate * 30 * 86400
    share = frontend.failed / budget
    assert f"≈ {share:.1%} of the 30-day error budget of frontend's 99.9% objective" in (
        draft.impact.budget
    )
    assert not any("Define an SLO" in item for item in draft.actions)


def test_a_resolution_ends_the_impact_and_closes_the_timeline(
    bad_deploy: postmortem.RunRecord,
) -> None:
    at = models.parse_time(bad_deploy.state["now"]) + timedelta(minutes=30)
    resolved = postmortem.Resolution(at=at, ref="queue-job:7", detail="incident resolved")
    draft = drafting.draft(bad_deploy, resolution=resolved)
    assert draft.timeline[-1] == timeline.Line(at, "incident resolved", "queue-job:7", "resolved")
    assert draft.impact.end == at
    assert draft.impact.end_kind == "resolved"
    assert "queue-job:7" in draft.cited


def test_an_approval_of_the_top_fix_is_on_the_timeline_and_went_well(
    bad_deploy: postmortem.RunRecord,
) -> None:
    decision = _approval(bad_deploy)
    draft = drafting.draft(record_of("bad-deploy-5xx", decision=decision))
    approved = [line for line in draft.timeline if line.kind == "approval"]
    assert approved == [
        timeline.Line(
            decision.at,
            "alice approved fix-1: errors began with the rollout",
            "audit:approval:1",
            "approval",
        )
    ]
    assert any("top-ranked hypothesis (fix-1) was approved by alice" in w for w in draft.went_well)
    assert any(w.startswith("No source failed or refused") for w in draft.went_well)
    handed = [line for line in draft.timeline if line.kind == "action"]
    assert "whether and when it was applied is unknown" in handed[0].what
    assert any(item.startswith("Confirm fix-1 was applied") for item in draft.actions)
    assert {m.kind for m in draft.plots[0].markers} >= {"onset", "change", "decision", "action"}


def test_a_rejection_is_on_the_timeline_and_went_badly(bad_deploy: postmortem.RunRecord) -> None:
    at = models.parse_time(bad_deploy.state["now"]) + timedelta(minutes=4)
    rejected = models.Decision(
        verdict=models.Verdict.REJECT, approver="bob", reason="not convinced", at=at
    )
    draft = drafting.draft(record_of("bad-deploy-5xx", decision=rejected))
    lines = [line for line in draft.timeline if line.kind == "rejection"]
    assert [line.ref for line in lines] == ["audit:decision"]
    assert any("rejected by bob: not convinced" in line for line in draft.went_badly)


def test_a_failed_source_went_badly_and_becomes_an_action_item() -> None:
    failed = models.Evidence.make(
        source="traces",
        query="GET /api/search",
        window=None,
        status=models.Status.ERROR,
        summary="Tempo at http://tempo:3200 timed out after 10s",
    )
    notes = [
        "traces: Tempo at http://tempo:3200 timed out after 10s",
        "changes: no Kubernetes API configured: rollouts not considered",
    ]
    record = record_of("bad-deploy-5xx", extra_evidence=[failed], notes=notes)
    draft = drafting.draft(record)
    assert any("Tempo at http://tempo:3200 timed out" in line for line in draft.went_badly)
    assert [line for line in draft.went_badly if line.startswith("Not consulted")] == [
        "Not consulted: changes: no Kubernetes API configured: rollouts not considered"
    ]
    assert any(item.startswith("Restore access to traces") for item in draft.actions)
    assert not any(line.startswith("No source failed") for line in draft.went_well)


def test_an_abstained_run_stays_not_sure() -> None:
    record = record_of("no-clear-cause")
    assert record.state["correlation"]["abstained"]
    draft = drafting.draft(record)
    assert draft.root_cause[0].startswith("Not sure")
    assert any("Root cause: not sure" in line for line in draft.summary)
    assert not [line for line in draft.timeline if line.kind == "culprit"]
    assert draft.contributing == ("None identified by the diagnosis.",)
    assert any(item.startswith("Establish the root cause by hand") for item in draft.actions)
    assert any("abstained" in line for line in draft.went_badly)


def test_the_markdown_has_every_section_in_order_and_anchors_every_citation(
    bad_deploy: postmortem.RunRecord,
) -> None:
    draft = drafting.draft(bad_deploy)
    text = markdown.markdown(draft, images={p.name: f"{p.name}.png" for p in draft.plots})
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert text.startswith("# Postmortem draft: FrontendHighErrorRate")
    linked = set(re.findall(r"\]\(#([a-z0-9-]+)\)", text))
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))
    assert linked and linked <= anchors
    for plot in draft.plots:
        assert f"]({plot.name}.png)" in text


def test_plots_show_the_root_and_the_alerting_service(bad_deploy: postmortem.RunRecord) -> None:
    draft = drafting.draft(bad_deploy)
    titles = [p.title for p in draft.plots]
    assert titles[0].startswith("checkout: errors")
    assert any(t.startswith("frontend: ") for t in titles)
    for plot in draft.plots:
        values = [v for v in plot.values if v is not None]
        assert len(values) > 100
        assert plot.evidence in {e.id for e in bad_deploy.evidence}
        assert len(plot.times) == len(plot.values)
    kinds = {m.kind for m in draft.plots[0].markers}
    assert {"onset", "change", "alert"} <= kinds


def test_an_slo_target_outside_zero_and_one_is_refused() -> None:
    for target in (0.0, 1.0, 99.9):
        with pytest.raises(ValueError, match="between 0 and 1"):
            postmortem.Slo(target=target)


START = models.parse_time("2026-02-01T10:00:00Z")
STEP = 6.0


def _series(name: str, labels: dict[str, str], values: np.ndarray) -> dict[str, Any]:
    t = START.timestamp() + STEP * np.arange(values.size)
    return {"labels": {"__name__": name, **labels}, "t": t.tolist(), "v": values.tolist()}


def _recovered_outage(*, slo_series: bool = False) -> postmortem.RunRecord:
    """``api`` fails 10 of its 60 req/s from 10:35 to 10:55, then recovers; data to 11:00."""
    points = 600
    t = STEP * np.arange(points)
    failing = (t >= 35 * 60) & (t < 55 * 60)
    ok = np.cumsum(np.where(failing, 50.0, 60.0) * STEP)
    bad = np.cumsum(np.where(failing, 10.0, 0.0) * STEP)
    name = "http_server_request_duration_seconds_count"
    labels = {"service_name": "api", "namespace": "shop"}
    raw = [
        _series(name, labels | {"http_response_status_code": "200"}, ok),
        _series(name, labels | {"http_response_status_code": "500"}, bad),
    ]
    window = models.Window(START, START + timedelta(seconds=STEP * (points - 1)))
    counters = models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{name}",namespace="shop"}}',
        window=window,
        status=models.Status.OK,
        summary="2 series",
        raw=raw,
    )
    evidence = [counters]
    if slo_series:
        objective = _series("slo:objective:ratio", {"sloth_service": "api"}, np.full(3, 0.99))
        evidence.append(
            models.Evidence.make(
                source="prometheus",
                query='{__name__="slo:objective:ratio"}',
                window=window,
                status=models.Status.OK,
                summary="1 series",
                raw=[objective],
            )
        )
    trigger = models.Trigger(
        source="alertmanager",
        title="api 5xx ratio above 5%",
        service="api",
        namespace="shop",
        at=START + timedelta(minutes=43),
    )
    found = correlating.correlate(
        trigger=trigger, window=window, metrics=evidence, cluster=[], now=window.end, traces=[]
    )
    correlation = found.to_dict()
    correlation.pop("derived")
    state = {
        "run_id": "run-recovered",
        "trigger": trigger.to_dict(),
        "window": window.to_dict(),
        "now": models.format_time(window.end),
        "correlation": correlation,
    }
    return postmortem.RunRecord(state=state, evidence=[*evidence, *found.derived])


def test_recovery_in_the_series_ends_the_impact_and_counts_the_failures() -> None:
    record = _recovered_outage()
    draft = drafting.draft(record)
    impact = draft.impact
    assert impact.end_kind == "recovered"
    assert impact.onset is not None and impact.end is not None
    assert abs((impact.onset - (START + timedelta(minutes=35))).total_seconds()) <= 2 * STEP
    assert abs((impact.end - (START + timedelta(minutes=55))).total_seconds()) <= 3 * STEP
    (api,) = impact.requests
    assert api.failed == pytest.approx(10 * 20 * 60, rel=0.03)
    assert api.total == pytest.approx(60 * 20 * 60, rel=0.03)
    assert api.baseline_rate == pytest.approx(60, rel=0.01)
    (recovery,) = [line for line in draft.timeline if line.kind == "recovery"]
    assert recovery.at == impact.end
    assert _resolves(recovery.ref, record)
    assert {m.kind for m in draft.plots[0].markers} >= {"onset", "recovered", "alert"}


def test_a_sloth_objective_in_the_evidence_gives_the_error_budget() -> None:
    draft = drafting.draft(_recovered_outage(slo_series=True))
    (api,) = draft.impact.requests
    share = api.failed / (0.01 * api.baseline_rate * 30 * 86400)
    assert share == pytest.approx(12000 / 1_555_200, rel=0.05)
    assert draft.impact.budget.startswith(f"≈ {share:.1%} of the 30-day error budget of api's 99%")
    assert "slo:objective:ratio in the evidence" in draft.impact.budget


@pytest.mark.parametrize(
    "scenario",
    ["config-latency", "cpu-throttling", "slow-dependency", "noisy-node", "traffic-surge"],
)
def test_other_kinds_of_incident_draft_with_cited_lines_and_plots(scenario: str) -> None:
    record = record_of(scenario)
    draft = drafting.draft(record)
    assert draft.timeline and all(_resolves(line.ref, record) for line in draft.timeline)
    assert draft.impact.onset is not None
    assert draft.impact.end_kind == "ongoing" and draft.impact.end is None
    assert draft.plots
    text = markdown.markdown(draft, images={p.name: f"{p.name}.png" for p in draft.plots})
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)


def test_an_applied_fix_whose_verification_saw_recovery_ends_the_impact(
    bad_deploy: postmortem.RunRecord,
) -> None:
    decision = _approval(bad_deploy)
    decided = record_of("bad-deploy-5xx", decision=decision)
    fix = decided.state["fixes"][0]
    seen = decision.at + timedelta(minutes=3)
    audit = [
        e | {"entry": e["entry"] | {"executed": True}} if e["kind"] == "action" else e
        for e in decided.audit
    ]
    watch = {
        "query": fix["verify"],
        "outcome": "recovered",
        "why": "back under the halfway line on two polls",
        "samples": [{"at": models.format_time(seen), "value": 0.0, "recovered": True}],
    }
    audit.append(audit_entry("verification", "verification:fix-1", at=seen, entry=watch))
    draft = drafting.draft(postmortem.RunRecord(decided.state, decided.evidence, audit))
    assert draft.impact.end == seen and draft.impact.end_kind == "recovered"
    assert "onset to the verification that saw recovery" in draft.impact.duration
    (checked,) = [line for line in draft.timeline if line.kind == "verification"]
    assert checked.ref == "audit:verification:fix-1"
    assert checked.what.startswith("verification of fix-1: recovered")
    assert [line.kind for line in draft.timeline if line.ref.startswith("audit:action")] == [
        "applied"
    ]
    assert not any("Confirm fix-1 was applied" in item for item in draft.actions)
    assert {"recovered", "action"} <= {m.kind for m in draft.plots[0].markers}


def test_a_sloth_objective_wins_over_the_default_objective_but_not_over_a_given_one() -> None:
    record = _recovered_outage(slo_series=True)
    default = postmortem.Slo(target=0.9, source="DIAGNOSE_SLO_TARGET")
    assert "99% objective" in drafting.draft(record, default_slo=default).impact.budget
    given = postmortem.Slo(target=0.995, source="DIAGNOSE_SLO_TARGETS api")
    budget = drafting.draft(record, slo=given, default_slo=default).impact.budget
    assert "99.5% objective (DIAGNOSE_SLO_TARGETS api)" in budget


def test_the_default_objective_gives_the_budget_when_nothing_else_does() -> None:
    default = postmortem.Slo(target=0.99, source="DIAGNOSE_SLO_TARGET")
    draft = drafting.draft(_recovered_outage(), default_slo=default)
    (api,) = draft.impact.requests
    share = api.failed / (0.01 * api.baseline_rate * 30 * 86400)
    assert draft.impact.budget.startswith(f"≈ {share:.1%} of the 30-day error budget of api's 99%")
    assert "(DIAGNOSE_SLO_TARGET)" in draft.impact.budget
    assert not any("define" in a.lower() and "slo" in a.lower() for a in draft.actions)
