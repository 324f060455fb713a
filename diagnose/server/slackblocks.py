"""What Slack shows: the findings message and the approval and rejection modals, in Block Kit.

Pure functions over a run's state: no I/O. The findings carry the leading hypothesis with its
confidence, the counter-evidence, the alternatives, the proposed fix with its dry run, where to
see the run, and the Approve and Reject buttons while the run waits. The approval modal asks
which evidence the approver checked (the ids the CLI's ``--checked`` takes, and the
counter-evidence) and why; it is not a one-click button (docs/slack.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypedDict

from diagnose.domain.models import JSON
from graphs import approval, reporting
from graphs.state import DiagnosisState, EvidenceBrief

APPROVE = "diagnose_approve"
"""The Approve button's ``action_id`` and the approval modal's ``callback_id``."""
REJECT = "diagnose_reject"
"""The Reject button's ``action_id`` and the rejection modal's ``callback_id``."""
CHECKED = "checked"
"""Block id of the cited evidence the approver ticks."""
COUNTER = "counter"
"""Block id of the counter-evidence the approver ticks (at least one when there is any)."""
REASON = "reason"
"""Block id of the reason."""
MAX_OPTIONS = 10
"""Slack's limit on the options of one checkbox group."""

Block = dict[str, JSON]


class Where(TypedDict):
    """What a modal carries through Slack (its ``private_metadata``): the run, the fix and its
    digest as the approver read them, and the thread to answer in."""

    run_id: str
    fix: str | None
    digest: str | None
    channel: str
    thread: str


def findings(
    state: DiagnosisState,
    *,
    run_id: str,
    public_url: str | None,
    waiting: bool,
    buttons: bool = True,
) -> tuple[str, list[Block]]:
    """The findings message: its fallback text and its blocks. While the run waits it offers
    the Approve and Reject buttons, or with ``buttons=False`` (a run the service cannot resume:
    its checkpoint is on the machine that ran ``diagnose run``) the commands to run there."""
    result = reporting.result(state)
    trigger = state.get("trigger")
    title = trigger["title"] if trigger else run_id
    text = f"diagnose: {title}"
    blocks: list[Block] = [_header(f"Diagnosis: {title}"[:150])]
    blocks += _leader(state)
    blocks += _fix(result["fixes"][:1])
    blocks.append(_context(_status(state, waiting=waiting) + "  ·  " + _link(run_id, public_url)))
    if waiting and buttons:
        blocks.append(_buttons(run_id, fixes=result["fixes"]))
    elif waiting:
        blocks.append(_commands(state, run_id=run_id))
    return text, blocks


def _commands(state: DiagnosisState, *, run_id: str) -> Block:
    """How to decide a run only its own machine's store holds: ``diagnose approve`` there."""
    fixes = state.get("fixes") or []
    lines = ["*To decide*, on the machine that ran it (its checkpoint is stored there):"]
    if fixes:
        fix = fixes[0]
        lines.append(
            f"```diagnose approve {run_id} --fix {fix['id']} --checked EVIDENCE_IDS "
            '--approver YOUR_NAME --reason "…"```'
        )
        lines.append(_to_check(state, hypothesis=fix["hypothesis"]))
    lines.append(f'```diagnose approve {run_id} --reject --approver YOUR_NAME --reason "…"```')
    return _section("\n".join(lines))


def _to_check(state: DiagnosisState, *, hypothesis: int) -> str:
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    found = hypotheses[hypothesis] if hypothesis < len(hypotheses) else None
    cited = ", ".join(f"`{e}`" for e in (found["evidence"] if found else []))
    against = ", ".join(f"`{e}`" for e in (found["counter_evidence"] if found else []))
    said = f"EVIDENCE_IDS: those you checked yourself among {cited or 'the cited evidence'}"
    return said + (f", and at least one of the counter-evidence {against}" if against else "")


def _leader(state: DiagnosisState) -> list[Block]:
    result = reporting.result(state)
    hypotheses = result["hypotheses"]
    if not hypotheses:
        return [_section("No root cause: the evidence is too weak to name one.")]
    top = hypotheses[0]
    label = "Best lead, not confident" if result["abstained"] else "Likely cause"
    lines = [f"*{label}* ({top['confidence']:.0%}): {top['summary']}"]
    if top["evidence"]:
        lines.append("Evidence: " + ", ".join(f"`{e}`" for e in top["evidence"][:5]))
    blocks = [_section("\n".join(lines))]
    challenge = approval.challenges(state)[:1]
    against = challenge[0]["counter_evidence"] if challenge else []
    if against:
        said = [f"• `{c['id']}` {c['summary'] or c['query']}" for c in against[:5]]
        blocks.append(_section("*Against it:*\n" + "\n".join(said)))
    others = [f"• {h['kind']} {h['component']} ({h['confidence']:.0%})" for h in hypotheses[1:4]]
    if others:
        blocks.append(_section("*Alternatives:*\n" + "\n".join(others)))
    return blocks


def _fix(fixes: Sequence[Mapping[str, object]]) -> list[Block]:
    if not fixes:
        return [_section("*No fix proposed.*")]
    fix = fixes[0]
    dry = fix.get("dry_run_result")
    outcome = dry if isinstance(dry, Mapping) else {}
    dry_line = (
        f"dry run {outcome.get('outcome')}: {outcome.get('message')}"
        if outcome
        else f"dry run: {fix.get('dry_run') or 'not run'}"
    )
    lines = [
        f"*Proposed fix* `{fix['id']}` ({fix['risk']} risk): {fix['kind']} {fix['target']}",
        f"```{fix['command']}```",
        dry_line[:500],
    ]
    if fix.get("risk") == "high":
        lines.append("High risk: two different approvers are needed.")
    return [_section("\n".join(lines))]


def _status(state: DiagnosisState, *, waiting: bool) -> str:
    decision = state.get("decision")
    given = state.get("approvals") or []
    if decision is not None:
        verb = "Approved" if decision["verdict"] == "approve" else "Rejected"
        return f"{verb} by {decision['approver']}: {decision['reason']}"[:300]
    if waiting and given:
        names = ", ".join(str(a["approver"]) for a in given)
        return f"Waiting for a second approver (approved by {names})"
    return "Waiting for a decision; nothing was changed" if waiting else "Finished"


def _link(run_id: str, public_url: str | None) -> str:
    if public_url:
        return f"<{public_url.rstrip('/')}/api/v1/runs/{run_id}|run {run_id}>"
    return f"`diagnose show {run_id}`"


def _buttons(run_id: str, *, fixes: Sequence[Mapping[str, object]]) -> Block:
    elements: list[JSON] = []
    if fixes:
        value = json.dumps({"run_id": run_id, "fix": fixes[0]["id"]})
        elements.append(_button("Approve…", action=APPROVE, value=value, style="primary"))
    reject = json.dumps({"run_id": run_id, "fix": None})
    elements.append(_button("Reject…", action=REJECT, value=reject, style="danger"))
    return {"type": "actions", "block_id": f"decide:{run_id}", "elements": elements}


def approve_view(state: DiagnosisState, *, where: Where, approver: str) -> Block:
    """The approval modal: the fix, the evidence to tick, the reason."""
    fix = next(f for f in state.get("fixes", []) if f["id"] == where["fix"])
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    hypothesis = hypotheses[fix["hypothesis"]] if hypotheses else None
    briefs = {e["id"]: e for e in reporting.result(state)["evidence"]}
    cited = hypothesis["evidence"] if hypothesis else []
    against = hypothesis["counter_evidence"] if hypothesis else []
    blocks: list[JSON] = [
        _section(
            f"*{fix['kind']} {fix['target']}* ({fix['risk']} risk), approving as *{approver}*\n"
            f"```{fix['command']}```\nDigest `{where['digest']}`"
        ),
        _checkboxes(CHECKED, "Evidence you checked yourself", cited, briefs=briefs),
    ]
    if against:
        label = "Counter-evidence you checked (at least one)"
        blocks.append(_checkboxes(COUNTER, label, against, briefs=briefs))
    blocks.append(_reason("Why you approve"))
    return _modal(APPROVE, title="Approve fix", submit="Approve", where=where, blocks=blocks)


def reject_view(*, where: Where, rejecter: str) -> Block:
    """The rejection modal: the reason, which goes to incident memory with the rejection."""
    blocks: list[JSON] = [
        _section(f"Rejecting every proposed fix of run `{where['run_id']}` as *{rejecter}*."),
        _reason("Why you reject (kept in incident memory)"),
    ]
    return _modal(REJECT, title="Reject fixes", submit="Reject", where=where, blocks=blocks)


def notice_view(*, title: str, text: str) -> Block:
    """A modal that only says something (who may approve, a run already decided)."""
    return {
        "type": "modal",
        "title": _plain(title[:24]),
        "close": _plain("Close"),
        "blocks": [_section(text)],
    }


def read_where(view: Mapping[str, object]) -> Where | None:
    """The run, fix and thread a submitted modal carries, or None when it carries none."""
    try:
        found = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("run_id"), str):
        return None
    return {
        "run_id": found["run_id"],
        "fix": _text_or_none(found.get("fix")),
        "digest": _text_or_none(found.get("digest")),
        "channel": str(found.get("channel") or ""),
        "thread": str(found.get("thread") or ""),
    }


def ticked(view: Mapping[str, object], block: str) -> list[str]:
    """The values of the options ticked in a submitted modal's checkbox block."""
    chosen = _value(view, block).get("selected_options")
    if not isinstance(chosen, list):
        return []
    return [str(o["value"]) for o in chosen if isinstance(o, Mapping) and "value" in o]


def typed(view: Mapping[str, object], block: str) -> str:
    """The text typed in a submitted modal's input block."""
    return str(_value(view, block).get("value") or "").strip()


def has_block(view: Mapping[str, object], block: str) -> bool:
    blocks = view.get("blocks")
    return isinstance(blocks, list) and any(
        isinstance(b, Mapping) and b.get("block_id") == block for b in blocks
    )


def _value(view: Mapping[str, object], block: str) -> Mapping[str, object]:
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    inputs = values.get(block) if isinstance(values, Mapping) else None
    if not isinstance(inputs, Mapping):
        return {}
    first = next(iter(inputs.values()), None)
    return first if isinstance(first, Mapping) else {}


def _text_or_none(value: object) -> str | None:
    return str(value) if value else None


def _modal(callback: str, *, title: str, submit: str, where: Where, blocks: list[JSON]) -> Block:
    return {
        "type": "modal",
        "callback_id": callback,
        "private_metadata": json.dumps(dict(where)),
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def _checkboxes(
    block: str, label: str, ids: Sequence[str], *, briefs: Mapping[str, EvidenceBrief]
) -> Block:
    options: list[JSON] = [
        {
            "text": _plain(f"{e}: {briefs[e]['summary'] if e in briefs else ''}"[:75]),
            "value": e,
        }
        for e in ids[:MAX_OPTIONS]
    ]
    return {
        "type": "input",
        "block_id": block,
        "label": _plain(label),
        "element": {"type": "checkboxes", "action_id": block, "options": options},
    }


def _reason(label: str) -> Block:
    return {
        "type": "input",
        "block_id": REASON,
        "label": _plain(label),
        "element": {"type": "plain_text_input", "action_id": REASON, "multiline": True},
    }


def _button(text: str, *, action: str, value: str, style: str) -> Block:
    return {
        "type": "button",
        "action_id": action,
        "text": _plain(text),
        "value": value,
        "style": style,
    }


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(text)}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _plain(text: str) -> Block:
    return {"type": "plain_text", "text": text}
