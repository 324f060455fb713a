"""Before approval: dry runs and the similar-pattern sweep. After it: carrying out the approved
fix (execution mode only, Kubernetes catalogue actions only) and watching whether it worked.

The database is never written: its fixes stay commands and migrations for a human. A
Kubernetes fix is sent exactly as approved (the patch resolved before approval, matched by id
and content digest), once: the idempotency key is looked up in the audit log and on the object
itself before anything is sent, so a run resumed after a crash neither loses nor repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from diagnose.analysis import fixing
from diagnose.domain import errors, models, ports
from graphs import approval, proposing
from graphs.state import Context, DiagnosisState
from sandbox import advising
from sandbox import findings as db_findings

Update = DiagnosisState


# --- before approval ----------------------------------------------------------------------


def prepare(
    fixes: Sequence[models.ProposedFix],
    *,
    state: DiagnosisState,
    context: Context,
    evidence: Sequence[models.Evidence],
) -> tuple[list[models.ProposedFix], list[models.Evidence]]:
    """Each fix with its sweep, its exact patch and dry run (Kubernetes actions) and its
    digest; and the evidence the dry runs produced."""
    hypotheses = [
        models.Hypothesis.from_dict(h)
        for h in (state.get("correlation") or {}).get("hypotheses", [])
    ]
    deployments = proposing.items_of(evidence, models.EvidenceKind.DEPLOYMENTS)
    replicasets = proposing.items_of(evidence, models.EvidenceKind.REPLICASETS)
    foreign_keys = advising.foreign_keys(
        db_findings.find_unindexed_foreign_keys(evidence), default_database=context.database_name
    )
    produced: list[models.Evidence] = []
    prepared = []
    for proposed in fixes:
        hypothesis = hypotheses[proposed["hypothesis"]]
        similar = fixing.sweep(
            proposed, hypothesis=hypothesis, deployments=deployments, replicasets=replicasets
        ) + advising.sweep(proposed, others=state.get("db_fixes", []), foreign_keys=foreign_keys)
        fix, made = _dry_run(
            proposed | {"sweep": similar}, run_id=state["run_id"], writer=context.dry_runner
        )
        produced += made
        prepared.append(fix)
    return prepared, produced


def _dry_run(
    fix: models.ProposedFix, *, run_id: str, writer: ports.ClusterWriter | None
) -> tuple[models.ProposedFix, list[models.Evidence]]:
    action = fix.get("action")
    if not action:
        if fix["target"].startswith("postgres/"):
            note = "not run by the agent: it never writes to the database; run the check shown"
        elif fix["kind"] == "cordon":
            note = "not run by the agent: a node's cordon and drain stays with a human"
        elif fix["kind"] in ("helm_rollback", "argocd_rollback", "flux_revert"):
            note = (
                "not run by the agent, which runs no Helm, Argo CD or Flux command and has no "
                "server-side dry run for one: a human runs the preview shown, then the command"
            )
        elif fix["kind"] == "hand_over":
            note = "not run by the agent, which points a human at the object: see the command"
        elif "<" in fix["command"]:
            note = "no server-side dry run: this fix needs a human's input (see the command)"
        else:  # exact, but carried out by a human only: the agent never writes ConfigMaps
            note = "not run by the agent, which never changes ConfigMaps: run the check shown"
        fix = fix | {"patch": None}
        return _digested(fix, run_id) | {
            "dry_run_result": {"outcome": "not run", "message": note}
        }, []
    if writer is None:
        fix = fix | {"patch": None}
        message = "no Kubernetes API configured: not dry-run, and cannot be carried out"
        return _digested(fix, run_id) | {
            "dry_run_result": {"outcome": "not run", "message": message}
        }, []
    resolved = writer.resolve(cast(ports.ActionSpec, action))
    if resolved.status is not models.Status.OK:
        outcome = "unreachable" if resolved.status is models.Status.ERROR else "refused"
        fix = fix | {"patch": None}
        return _digested(fix, run_id) | {
            "dry_run_result": {
                "outcome": outcome,
                "message": resolved.summary,
                "evidence": resolved.id,
                "query": resolved.query,
            }
        }, [resolved]
    fix = _digested(fix | {"patch": resolved.raw}, run_id)
    tried = writer.patch(resolved.raw, dry_run=True, marker=approval.action_key(fix, run_id=run_id))
    raw = tried.raw or {}
    return fix | {
        "dry_run_result": {
            "outcome": raw.get("outcome", "unreachable"),
            "message": tried.summary,
            "evidence": tried.id,
            "query": tried.query,
            "result": raw.get("result"),
        }
    }, [resolved, tried]


def _digested(fix: models.ProposedFix, run_id: str) -> models.ProposedFix:
    return fix | {"digest": approval.digest(fix, run_id=run_id)}


# --- after approval -----------------------------------------------------------------------


def act(state: DiagnosisState, *, context: Context) -> Update:
    """Carry out the approved fix, or hand it to a human; refuse a decision that does not
    match the fix on record."""
    decision = models.Decision.from_dict(state["decision"])
    log = context.audit
    entries = log.entries(state["run_id"]) if log is not None else None
    problems = approval.refusals(state, audit_entries=entries)
    if problems:
        return {"actions": [_refused(decision, problems)]}
    fix = next(f for f in state.get("fixes", []) if f["id"] == decision.fix)
    if not context.execution.enabled or not fix.get("patch"):
        return {"actions": [_handed_over(fix, execution=context.execution.enabled)]}
    if context.executor is None or log is None:
        why = "execution is enabled but no Kubernetes write credentials or audit log are set"
        return {"actions": [_handed_over(fix, execution=True) | {"why_not_executed": why}]}
    key = approval.action_key(fix, run_id=state["run_id"])
    done = [e for e in entries or [] if e["key"] == f"action:{fix['id']}"]
    if done:  # recorded before a crash: report it, send nothing again
        return {"actions": [_recorded(done[0]["entry"]) | {"resumed": True}]}
    log.append(state["run_id"], kind="action-intent", key=f"intent:{fix['id']}", entry={"key": key})
    action, sent = _apply(fix, key=key, executor=context.executor)
    if sent is not None:
        context.store.put(state["run_id"], [sent])
    log.append(state["run_id"], kind="action", key=f"action:{fix['id']}", entry=action)
    evidence = [sent.to_dict(with_raw=False)] if sent is not None else []
    return {"actions": [action], "evidence": evidence}


def _apply(
    fix: models.ProposedFix, *, key: str, executor: ports.ClusterWriter
) -> tuple[models.ActionData, models.Evidence | None]:
    """Send the approved patch unless the object already carries this action's key."""
    try:
        found = executor.marker(fix["patch"])
    except errors.SourceUnavailable as exc:
        return _sent(fix, key=key, executed=False, outcome="unreachable") | {
            "why_not_executed": f"could not read the target before applying: {exc}; nothing "
            "was sent: apply the command yourself or start a new run",
        }, None
    if found == key:
        return _sent(fix, key=key, executed=True, outcome="already applied") | {
            "message": "the object carries this action's key: an earlier attempt landed "
            "before a restart; nothing sent again",
        }, None
    sent = executor.patch(fix["patch"], dry_run=False, marker=key)
    outcome = (sent.raw or {}).get("outcome", "unreachable")
    return _sent(fix, key=key, executed=outcome == "accepted", outcome=outcome) | {
        "message": sent.summary,
        "evidence": sent.id,
    }, sent


def _sent(fix: models.ProposedFix, *, key: str, executed: bool, outcome: str) -> models.ActionData:
    return {
        "fix": fix["id"],
        "digest": fix["digest"],
        "key": key,
        "command": fix["command"],
        "patch": fix["patch"],
        "verify": fix["verify"],
        "executed": executed,
        "outcome": outcome,
    }


def _recorded(entry: Mapping[str, object]) -> models.ActionData:
    """An action recorded in the audit log before a restart (what :func:`_apply` returned),
    read back field by field."""
    fields = ("fix", "digest", "key", "command", "verify", "outcome")
    fix, digest, key, command, verify, outcome = (str(entry.get(k) or "") for k in fields)
    action: models.ActionData = {
        "fix": fix,
        "digest": digest,
        "key": key,
        "command": command,
        "patch": entry.get("patch"),
        "verify": verify,
        "executed": entry.get("executed") is True,
        "outcome": outcome,
    }
    if isinstance(why := entry.get("why_not_executed"), str):
        action["why_not_executed"] = why
    if isinstance(message := entry.get("message"), str):
        action["message"] = message
    if isinstance(evidence := entry.get("evidence"), str):
        action["evidence"] = evidence
    return action


def _refused(decision: models.Decision, problems: list[str]) -> models.ActionData:
    return {
        "fix": decision.fix,
        "executed": False,
        "outcome": "refused",
        "command": None,
        "why_not_executed": "; ".join(problems),
        "verify": "",
    }


def _handed_over(fix: models.ProposedFix, *, execution: bool) -> models.ActionData:
    why = (
        "the agent never writes to the database, and carries out only Kubernetes catalogue "
        "actions: apply the command yourself, then watch the verification query"
        if execution
        else "execution is disabled (DIAGNOSE_EXECUTE): apply the command yourself, then "
        "watch the verification query"
    )
    return {
        "fix": fix["id"],
        "digest": fix.get("digest"),
        "executed": False,
        "outcome": "handed over",
        "command": fix["command"],
        "why_not_executed": why,
        "verify": fix["verify"],
    }


def executed(state: DiagnosisState) -> bool:
    """Whether the last action changed something that can now be watched."""
    actions = state.get("actions") or []
    return bool(actions) and bool(actions[-1].get("executed"))


# --- verification -------------------------------------------------------------------------


def verify(state: DiagnosisState, *, context: Context) -> Update:
    """Watch the fix's verification query for the configured time: recovered when its value
    is back on the baseline side of the halfway line between baseline and incident level on
    two polls in a row; not recovered when the watch ends first."""
    action = state["actions"][-1]
    fix = next(f for f in state.get("fixes", []) if f["id"] == action["fix"])
    result = _watch(fix, context=context)
    if context.audit is not None:
        context.audit.append(
            state["run_id"], kind="verification", key=f"verification:{fix['id']}", entry=result
        )
    return {"verification": result}


def _watch(fix: models.ProposedFix, *, context: Context) -> models.VerificationData:
    query, levels = fix.get("verify") or "", fix.get("verify_levels") or {}
    policy = context.execution

    def ended(
        outcome: str, why: str, samples: list[models.VerificationSample]
    ) -> models.VerificationData:
        return {
            "query": query,
            "watched_s": policy.watch_s,
            "levels": levels,
            "outcome": outcome,
            "why": why,
            "samples": samples,
        }

    if context.metrics is None or not query or query.lstrip().upper().startswith("SELECT"):
        why = "no Prometheus configured" if context.metrics is None else "no PromQL to watch"
        return ended("unknown", why, [])
    if "baseline" not in levels or "incident" not in levels:
        return ended("unknown", "no baseline recorded for it", [])
    began = context.clock()
    samples: list[models.VerificationSample] = []
    good = 0
    while True:
        now = context.clock()
        value = _latest(context.metrics, query, now=now, step_s=policy.interval_s)
        ok = value is not None and _recovered(value, levels)
        samples.append({"at": models.format_time(now), "value": value, "recovered": ok})
        good = good + 1 if ok else 0
        if good >= 2:
            return ended("recovered", _why(samples, levels), samples)
        if (now - began).total_seconds() + policy.interval_s > policy.watch_s:
            return ended("not recovered", _why(samples, levels), samples)
        context.sleep(policy.interval_s)


def _latest(source: ports.MetricSource, query: str, *, now: Any, step_s: float) -> float | None:
    """The query's latest value (the worst series when it returns several)."""
    window = models.Window(start=now - timedelta(seconds=max(60.0, 2 * step_s)), end=now)
    found = source.query_range(query, window=window, step_s=max(1.0, step_s))
    if found.status is not models.Status.OK:
        return None
    latest = [
        next((v for v in reversed(series["v"]) if v is not None), None)
        for series in found.raw or []
    ]
    values = [v for v in latest if v is not None]
    return max(values) if values else None


def _recovered(value: float, levels: Mapping[str, float]) -> bool:
    baseline, incident = float(levels["baseline"]), float(levels["incident"])
    middle = (baseline + incident) / 2
    return value <= middle if incident >= baseline else value >= middle


def _why(samples: Sequence[models.VerificationSample], levels: Mapping[str, float]) -> str:
    seen = [s["value"] for s in samples if s["value"] is not None]
    if not seen:
        return "the query returned no data during the watch"
    return (
        f"last value {seen[-1]:.4g}; baseline {float(levels['baseline']):.4g}, incident level "
        f"{float(levels['incident']):.4g}; {len(samples)} poll(s)"
    )
