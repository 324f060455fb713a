"""How a diagnosis looks in a terminal, and the approval prompt.

The prompt is built against automation bias: rejecting is the default, the alternatives and
the counter-evidence are on screen before the question, and approving asks which cited
evidence the approver checked themselves.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt
from rich.table import Table

from diagnose import evaluation
from diagnose.domain import answers, models
from graphs import approval
from graphs.state import Challenge, DiagnosisState


def show(console: Console, state: DiagnosisState, *, bundle_dir: Path) -> None:
    """Print the ranked hypotheses, the evidence they cite, the fixes and what is missing."""
    trigger: Mapping[str, Any] = state.get("trigger") or {}
    correlation = state.get("correlation") or {}
    console.print(
        Panel.fit(
            f"[bold]{trigger.get('title', '')}[/bold]\n"
            f"service {trigger.get('service')} · namespace {trigger.get('namespace') or '-'} · "
            f"fired {trigger.get('at')}\nrun {state.get('run_id')} · evidence in {bundle_dir}"
            + _playbook_line(state.get("playbook")),
            title="incident",
        )
    )
    _hypotheses(console, correlation)
    _code(console, (correlation.get("hypotheses") or [])[:3])
    _evidence(console, state)
    _reasoning(console, state.get("reasoning") or {})
    _challenges(console, approval.challenges(state))
    _fixes(
        console,
        state.get("fixes") or [],
        abstained=bool((state.get("correlation") or {}).get("abstained")),
    )
    for past in state.get("past_rejections") or []:
        console.print(
            f"[magenta]rejected before:[/magenta] a fix for {past['component']} in run "
            f"{past['run_id']} was rejected by {past['approver']} ({past['at']}): {past['reason']}",
            highlight=False,
        )
    _memory(console, state.get("memory") or {})
    notes = [*(state.get("notes") or []), *(correlation.get("notes") or [])]
    for note in notes:
        console.print(f"[yellow]missing or partial:[/yellow] {note}", highlight=False)


def _code(console: Console, hypotheses: Sequence[Mapping[str, Any]]) -> None:
    """The commit range behind each leading hypothesis that carries one: its suspects first
    (commit, file, why), then every commit of the range (docs/changes.md)."""
    shown: dict[tuple[str, str], int] = {}
    for rank, h in enumerate(hypotheses, start=1):
        code = h.get("code")
        if not code:
            continue
        key = (str(code["from"]), str(code["to"]))
        head = (
            f"[bold]code behind #{rank}[/bold] {escape(str(code.get('change') or ''))}: "
            f"{escape(str(code['repository']))} {key[0][:7]}..{key[1][:7]}, "
            f"{len(code['commits'])} commit(s)"
        )
        if key in shown:
            console.print(f"{head} (as for #{shown[key]})", highlight=False, soft_wrap=True)
            continue
        shown[key] = rank
        lines = [head]
        lines += [
            f"  [bold red]suspect[/bold red] {s['sha'][:7]} {escape(s['file'])}: {escape(s['why'])}"
            for s in code.get("suspects") or []
        ]
        if not code.get("suspects") and code.get("summary"):
            lines.append(f"  no suspect: {escape(str(code['summary']))}")
        lines += [
            f"  {c['sha'][:7]} {escape(c['subject'])} ({escape(', '.join(c['files'][:4]))}"
            f"{', …' if len(c['files']) > 4 else ''})"
            for c in code["commits"][:12]
        ]
        for line in lines:  # one line each, never folded: a commit or a file per line
            console.print(line, highlight=False, soft_wrap=True)


def _memory(console: Console, memory: Mapping[str, Any]) -> None:
    """Past incidents on the same components, and hypotheses people rejected before."""
    for flag in memory.get("rejected_again") or []:
        console.print(
            f"[bold magenta]hypothesis #{flag['hypothesis'] + 1} {flag['note']}[/bold magenta]",
            highlight=False,
        )
    for past in memory.get("similar") or []:
        console.print(
            f"[magenta]similar past incident[/magenta] {past['run_id']} ({past['at']}, "
            f'{round(past["similarity"] * 100)}% alike, "{past["title"]}"): {past["outcome"]}',
            highlight=False,
        )


def _playbook_line(matched: dict[str, Any] | None) -> str:
    if not matched:
        return "\nplaybook: none matched (discovered series only)"
    return f"\nplaybook: {matched['name']} ({matched['file']}, matched by {matched['matched_by']})"


def playbook_explained(console: Console, explained: dict[str, Any]) -> None:
    """What ``diagnose playbooks explain`` found: the playbook and what it would query."""
    matched = explained.get("playbook")
    if not matched:
        console.print("no playbook matches: only the series discovered by label would be read")
        return
    console.print(
        f"[bold]{matched['name']}[/bold] ({matched['path']}), matched by {matched['matched_by']}"
        f"\n{matched['description']}",
        highlight=False,
    )
    for query in matched["queries"]:
        console.print(f"[cyan]{query['signal']}[/cyan] ({query['kind']}):", highlight=False)
        console.print(f"  {query['query']}", highlight=False, soft_wrap=True)
    templates = matched.get("fix_templates") or {}
    fixes = [
        kind + "".join(f" ({k}={v:g})" for k, v in templates.get(kind, {}).items())
        for kind in matched["fixes"]
    ]
    console.print(f"probes: {', '.join(matched['probes']) or '-'}", highlight=False)
    console.print(f"fixes: {', '.join(fixes) or '-'}", highlight=False)
    for key in ("thresholds", "weights"):
        pairs = ", ".join(f"{k}={v}" for k, v in matched[key].items())
        console.print(f"{key}: {pairs or 'defaults'}", highlight=False)
    if explained.get("also_matched"):
        console.print(f"also matched: {', '.join(explained['also_matched'])}", highlight=False)


def _hypotheses(console: Console, correlation: Mapping[str, Any]) -> None:
    hypotheses = correlation.get("hypotheses") or []
    if correlation.get("abstained") or not hypotheses:
        console.print(
            "[bold yellow]Not sure.[/bold yellow] No hypothesis is strong enough to stand on; "
            "the ranking below is a lead, not a conclusion."
        )
    if console.width < _WIDE:
        _hypotheses_narrow(console, hypotheses[:5])
        return
    table = Table(title="root-cause hypotheses (best first)", show_lines=True)
    for column in ("#", "kind", "component", "change", "confidence", "why", "evidence"):
        table.add_column(column)
    for rank, h in enumerate(hypotheses[:5], start=1):
        why = escape(h.get("summary", ""))  # outside and model text: never markup
        counter = h.get("counter_evidence") or []
        if counter:
            why += "\n[magenta]against:[/magenta] " + ", ".join(counter)
        table.add_row(
            str(rank),
            h["kind"],
            h["component"],
            h.get("change") or "-",
            f"{h['confidence']:.2f}",
            why,
            "\n".join(h.get("evidence") or []),
        )
    console.print(table)


_WIDE = 120
"""Below this many columns the hypotheses print as blocks: a seven-column table would squeeze
the reasoning into a sliver."""


def _hypotheses_narrow(console: Console, hypotheses: Sequence[models.HypothesisData]) -> None:
    console.print("[bold]root-cause hypotheses (best first)[/bold]")
    for rank, h in enumerate(hypotheses, start=1):
        change = f" after {h['change']}" if h.get("change") else ""
        lines = [
            f"[bold]#{rank} {h['kind']} {h['component']}{change}[/bold]  "
            f"confidence {h['confidence']:.2f}",
            f"  {escape(h.get('summary', ''))}",
            f"  evidence: {', '.join(h.get('evidence') or []) or '-'}",
        ]
        if h.get("counter_evidence"):
            lines.append(f"  [magenta]against:[/magenta] {', '.join(h['counter_evidence'])}")
        console.print("\n".join(lines), highlight=False)


def _evidence(console: Console, state: DiagnosisState) -> None:
    cited = {
        ev
        for h in ((state.get("correlation") or {}).get("hypotheses") or [])[:3]
        for ev in (*(h.get("evidence") or []), *(h.get("counter_evidence") or []))
    }
    rows = [e for e in state.get("evidence") or [] if e["id"] in cited]
    if not rows:
        return
    if console.width < _WIDE:  # blocks, so a query stays copyable in one piece
        console.print("[bold]cited evidence (re-run the query to check it yourself)[/bold]")
        for e in rows:
            console.print(
                f"{e['id']} {e['source']} {e['status']}: {e['summary']}\n  {e['query']}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        return
    table = Table(title="cited evidence (re-run the query to check it yourself)")
    for column in ("id", "source", "status", "summary", "query"):
        table.add_column(column, overflow="fold")
    for e in rows:
        table.add_row(*(escape(str(e[k])) for k in ("id", "source", "status", "summary", "query")))
    console.print(table)


def _reasoning(console: Console, block: Mapping[str, Any]) -> None:
    status = block.get("status")
    if not status or (status == "unavailable" and not block.get("used")):
        return
    cost = (
        f"{block.get('calls', 0)} call(s), {block.get('prompt_tokens', 0)} prompt + "
        f"{block.get('completion_tokens', 0)} completion tokens, {block.get('seconds', 0)} s"
    )
    if status != "accepted":
        reasons = "; ".join(block.get("reasons") or []) or "no reason given"
        console.print(
            f"[dim]model ({block.get('model')}; {cost}): {status}: {escape(reasons)}[/dim]",
            highlight=False,
        )
        return
    console.print(
        f"[bold]Model's reading[/bold] ({block.get('model')}; {cost}; advisory: every claim was "
        "checked by code, confidence is computed by code)",
        highlight=False,
    )
    for settled in block.get("settled") or []:
        claim = settled["claim"]
        verdict = {
            "confirms": f"confirms hypothesis #{(settled.get('confirms') or 0) + 1}",
            "added": f"added below the analysis at {settled.get('confidence')}",
        }.get(settled["outcome"], "refused: " + "; ".join(settled.get("reasons") or []))
        console.print(
            f"  {claim['kind']} {claim['component']} [{', '.join(claim.get('evidence') or [])}]: "
            f"{verdict}",
            highlight=False,
            markup=False,
        )
        console.print(f"    {answers.quoted(claim.get('rationale') or '')}", markup=False)
    for reason in block.get("reasons") or []:  # why an earlier answer was refused
        console.print(f"  refused first: {reason}", highlight=False, markup=False)


def _fixes(
    console: Console, fixes: Sequence[models.ProposedFix], *, abstained: bool = False
) -> None:
    if not fixes:
        console.print(
            "No fix is proposed: the diagnosis is not sure, and a lead is not a reason to "
            "change production. Check the leads' evidence above."
            if abstained
            else "No catalogue fix applies to these hypotheses."
        )
        return
    # Blocks, not a table: a command folded across table cells cannot be copied whole.
    console.print("[bold]proposed fixes (none runs without approval)[/bold]")
    for f in fixes:
        digest = str(f.get("digest") or "")[:19]
        console.print(
            f"[bold]{f['id']}[/bold] {f['kind']} for hypothesis #{f['hypothesis'] + 1}"
            f"  risk [bold]{f['risk']}[/bold]  {digest}",
            highlight=False,
        )
        if f.get("outside_playbook"):
            console.print(f"  [yellow]{f['outside_playbook']}[/yellow]", highlight=False)
        for label, value in (
            ("command", f["command"]),
            ("dry run", dry_run_text(f)),
            ("blast radius", f["blast_radius"]),
            ("undo", f["rollback"]),
            ("verify", f["verify"] or "-"),
        ):
            console.print(f"  {label}: ", end="", highlight=False)
            console.print(value, highlight=False, markup=label == "dry run", soft_wrap=True)
    for f in fixes:
        for found in f.get("sweep") or []:
            console.print(
                f"[cyan]same pattern elsewhere[/cyan] ({f['id']}, not fixed): "
                f"{found['target']}: {found['why']}",
                highlight=False,
            )
            if found.get("command"):  # its own migration, for a separate proposal
                console.print(
                    f"    {found.get('approval') or 'listed only'}:\n    {found['command']}\n"
                    f"    undo: {found.get('rollback') or '-'}",
                    highlight=False,
                    markup=False,
                )


def dry_run_text(fix: models.ProposedFix) -> str:
    """One fix's dry run as a reviewer reads it: the outcome first, then the API's words."""
    result = fix.get("dry_run_result")
    outcome = str(result.get("outcome") or "not run") if result else "not run"
    colour = {"accepted": "green", "refused": "red", "unreachable": "red"}.get(outcome, "yellow")
    message = str(result.get("message") or "") if result else ""
    if message.startswith(outcome):  # the connector's message may lead with the outcome
        message = message[len(outcome) :].lstrip(" :")
    text = f"[{colour}]{outcome}[/{colour}]: {escape(message)}"
    if by_hand := fix.get("dry_run"):
        text += f"\n    by hand: {escape(by_hand)}"
    return text


def _challenges(console: Console, challenges: Sequence[Challenge]) -> None:
    """What would prove each leading hypothesis wrong: counter-evidence, alternatives and the
    conditions to check, before any fix is shown."""
    for item in challenges:
        # outside and model text, escaped: never rich markup
        lines = [f"[bold]#{item['rank']} {escape(item['hypothesis'])} is wrong if:[/bold]"]
        lines += [
            f"  - {escape(condition)}"
            for condition in item["wrong_if"]
            if not condition.startswith("counter-evidence ")  # shown with its query below
        ]
        for counter in item["counter_evidence"]:
            lines.append(
                escape(f"  against: {counter['id']} {counter['summary']} ({counter['query']})")
            )
        if item["alternatives"] and item["rank"] == 1:  # the same list for the others
            lines.append("  alternatives:")
            lines += [f"    {escape(alternative)}" for alternative in item["alternatives"]]
        console.print("\n".join(lines), highlight=False)


def paused_hint(console: Console, run_id: str) -> None:
    console.print(
        f"\nPaused at the approval step. From any shell:\n"
        f"  diagnose approve {run_id} --fix FIX_ID --checked EV_ID,... "
        f"--approver NAME --reason '...'\n"
        f"  diagnose approve {run_id} --reject --approver NAME --reason '...'",
        highlight=False,
    )


def prompt_decision(console: Console, state: DiagnosisState) -> approval.Answer:
    """Ask the human in the terminal; reject is the default answer."""
    fixes = state.get("fixes") or []
    choices = [f["id"] for f in fixes] + ["reject"]
    choice = Prompt.ask("\nApprove which fix?", choices=choices, default="reject", console=console)
    approver = Prompt.ask("Your name", default=_whoami(), console=console)
    if choice == "reject":
        reason = Prompt.ask("Why reject?", default="not convinced by the evidence", console=console)
        return {"verdict": "reject", "approver": approver, "reason": reason}
    fix = next(f for f in fixes if f["id"] == choice)
    console.print(f"Dry run of {choice}: {dry_run_text(fix)}", highlight=False)
    hypothesis = state["correlation"]["hypotheses"][fix["hypothesis"]]
    cited, against = hypothesis["evidence"], hypothesis.get("counter_evidence") or []
    console.print("Which of these did you check yourself? " + ", ".join(cited), highlight=False)
    if against:
        console.print(
            "And at least one of the counter-evidence against it: " + ", ".join(against),
            highlight=False,
        )
    checked = Prompt.ask("Evidence ids, comma-separated", console=console)
    reason = Prompt.ask("Reason", console=console)
    return {
        "verdict": "approve",
        "approver": approver,
        "reason": reason,
        "fix": choice,
        "fix_digest": fix.get("digest"),
        "checked_evidence": [c.strip() for c in checked.split(",") if c.strip()],
    }


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def show_outcome(console: Console, state: DiagnosisState) -> None:
    """Print the recorded decision and what was (not) done."""
    decision = state.get("decision")
    if not decision:
        return
    console.print(
        f"\n[bold]{decision['verdict']}[/bold] by {decision['approver']} at {decision['at']}: "
        f"{decision['reason']}",
        highlight=False,
    )
    for action in state.get("actions") or []:
        if action.get("executed"):
            console.print(
                f"Executed {action['fix']} ({action['outcome']}, key {action['key']}): "
                f"{action.get('message', '')}\n  {action['command']}",
                highlight=False,
            )
            continue
        console.print(
            f"Not executed ({action['why_not_executed']}):\n  {action['command'] or '-'}\n"
            f"verify with: {action['verify'] or '-'}",
            highlight=False,
        )
    verification = state.get("verification")
    if verification:
        console.print(
            f"[bold]{verification['outcome']}[/bold] after watching {verification['query']} "
            f"for up to {verification['watched_s']:g}s: {verification['why']}",
            highlight=False,
        )


def lab_status(console: Console, statuses: list[Any]) -> None:
    """Print where each lab server listens."""
    if not statuses:
        console.print("no lab is running")
        return
    for status in statuses:
        console.print(str(status), highlight=False)


def eval_table(
    console: Console, cases: Sequence[evaluation.Case], summary: evaluation.Summary
) -> None:
    """Per-scenario ranks, then accuracy against the baselines."""
    table = Table(title="scenarios")
    for column in ("scenario", "truth", "top hypothesis", "rank", "abstained", "seconds"):
        table.add_column(column, overflow="fold")
    for case in cases:
        top = case.hypotheses()[:1]
        truth = f"{case.truth.kind}/{case.truth.component}" if case.truth.component else "none"
        got = f"{top[0]['kind']}/{top[0]['component']}" if top else "-"
        table.add_row(
            case.name,
            truth,
            case.error or got,
            str(case.rank() or "-"),
            str(bool(case.result.get("abstained"))),
            f"{case.seconds:.1f}",
        )
    console.print(table)
    scores = Table(title="accuracy (non-abstain scenarios)")
    for column in ("ranking", "AC@1", "AC@3", "Avg@5"):
        scores.add_column(column)
    for name, row in (
        ("agent", summary["agent"]),
        ("agent_component_only", summary["agent_component_only"]),
        ("baseline_max_z", summary["baseline_max_z"]),
        ("baseline_random", summary["baseline_random"]),
    ):
        scores.add_row(name, *(f"{row[k]:.2f}" for k in ("AC@1", "AC@3", "Avg@5")))
    console.print(scores)
    console.print(
        f"change accuracy {summary['change_accuracy']}, fix accuracy {summary['fix_accuracy']}, "
        f"abstentions {summary['abstentions']}, errors {summary['errors']}\n"
        f"mean seconds per stage: {summary['seconds_per_stage']}",
        highlight=False,
    )


def audit_table(console: Console, entries: list[dict[str, Any]]) -> None:
    """The audit log, oldest first."""
    if not entries:
        console.print("the audit log is empty")
        return
    table = Table(title="audit log (append-only)")
    for column in ("#", "at", "run", "kind", "what"):
        table.add_column(column, overflow="fold")
    for e in entries:
        entry = e["entry"]
        what = (
            entry.get("fix", {}).get("command")
            if e["kind"] == "proposal"
            else f"{entry.get('verdict', '')} {entry.get('fix') or ''} by "
            f"{entry.get('approver', '?')}: {entry.get('reason', '')}"
            if e["kind"] in ("approval", "decision")
            else entry.get("command", "")
        )
        table.add_row(str(e["seq"]), str(e["at"]), e["run_id"], e["kind"], str(what))
    console.print(table)
