"""``diagnose mcp``: the agent's runs, evidence and memory as tools for other agents (MCP).

Over stdio (an editor or a desktop agent starts ``diagnose mcp`` itself) or streamable HTTP
(``diagnose mcp --http``, behind a bearer token from ``DIAGNOSE_API_TOKENS``). Read-only except
:func:`start_diagnosis`; **nothing is approved here**: an agent on the other end is not a named
human, so every answer about a paused run says how a person approves it. Everything is opened
through :mod:`diagnose.wiring`, and runs are driven by ``Agent.start_or_resume`` as ``diagnose
run`` drives them. Results are small and cited: evidence ids, and the query that re-runs each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NotRequired, TypedDict

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

from diagnose import console, playbook, wiring
from diagnose.domain import errors, models
from diagnose.server import auth
from diagnose.settings import Settings
from graphs import reporting, runner
from graphs import state as graph_state

SHOWN_HYPOTHESES = 5
"""Hypotheses a run's answer carries at most (the report resource has them all)."""
RAW_CHARS = 4000
"""Characters of one piece of evidence's raw answer returned at most."""
RUNS_LISTED = 50
"""Runs ``list_runs`` returns at most."""

INSTRUCTIONS = (
    "Diagnoses production incidents: ranks root-cause hypotheses, each citing evidence that can "
    "be re-run (PromQL, kubectl, SQL), and proposes fixes with a dry run. Start with "
    "list_runs or start_diagnosis, read a run with show_run, check a cited item with "
    "read_evidence. You cannot approve a fix: a named person does, with the command in "
    "how_to_approve."
)


@dataclass(frozen=True)
class Options:
    """What ``diagnose mcp`` was started with: the settings, and where lab scenarios live."""

    settings: Settings
    scenarios: Path | None = None


class RankedHypothesis(TypedDict):
    """A hypothesis as a tool answers it: its rank, what it blames and the evidence it cites."""

    rank: int
    kind: str
    component: str
    change: str | None
    confidence: float
    summary: str
    onset: str | None
    evidence: list[str]
    counter_evidence: list[str]


class DryRun(TypedDict):
    command: str | None
    outcome: str | None  # None: no dry run was made


class FixLine(TypedDict):
    """A proposed fix as a tool answers it (``models.FixData`` without its action)."""

    id: str
    kind: str
    target: str
    command: str
    risk: str
    blast_radius: str
    rollback: str
    verify: str
    for_hypothesis_rank: int
    dry_run: DryRun
    digest: str | None


class TriggerLine(TypedDict):
    """A run's trigger (every field None when the state holds none)."""

    source: str | None
    title: str | None
    service: str | None
    namespace: str | None
    at: str | None


class HowToApprove(TypedDict):
    who: str
    cli: str
    api: str


class RunAnswer(TypedDict):
    """``start_diagnosis`` and ``show_run``: a run, small, ranked, every claim cited."""

    run_id: str
    status: str
    trigger: TriggerLine
    abstained: bool
    hypotheses: list[RankedHypothesis]
    fixes: list[FixLine]
    notes: list[str]
    decision: models.DecisionData | None
    report: str  # the report resource's URI
    evidence: NotRequired[list[graph_state.EvidenceBrief]]  # show_run only
    how_to_approve: NotRequired[HowToApprove]  # while the run waits for a person


class RunLine(TypedDict):
    """One run as ``list_runs`` lists it."""

    run_id: str
    service: str | None
    namespace: str | None
    title: str | None
    started: str | None
    status: str
    top_hypothesis: RankedHypothesis | None


class RunList(TypedDict):
    runs: list[RunLine]


class EvidenceAnswer(TypedDict):
    """``read_evidence``: one piece of evidence, its raw answer as JSON text (cut)."""

    id: str
    source: str
    kind: str
    status: str
    query: str
    window: models.WindowData | None
    summary: str
    raw: str
    raw_truncated: bool


class PlaybookExplanation(TypedDict):
    """``explain_playbook``: the playbook a diagnosis would run (``playbook.summary`` with its
    description and path), and the others that matched."""

    playbook: dict[str, object] | None
    also_matched: list[str]


class RememberedHypothesis(TypedDict):
    """A past run's hypothesis, each field as memory returned it."""

    kind: object
    component: object
    change: object
    confidence: object
    summary: object


class RememberedIncident(TypedDict):
    """A past run as ``recent_incidents`` lists it, each field as memory returned it."""

    run_id: object
    at: object
    trigger: object
    components: object
    hypotheses: list[RememberedHypothesis]
    decision: object


class Incidents(TypedDict):
    incidents: list[RememberedIncident]


def build(options: Options) -> MCPServer:
    """The MCP server: its tools and resources, each opening what it needs through wiring."""
    server: MCPServer = MCPServer("diagnose", instructions=INSTRUCTIONS)
    tools = _Tools(options)
    for tool in (
        tools.start_diagnosis,
        tools.list_runs,
        tools.show_run,
        tools.read_evidence,
        tools.explain_playbook,
        tools.recent_incidents,
    ):
        server.add_tool(tool, description=(tool.__doc__ or "").strip())
    server.resource(
        "diagnose://runs/{run_id}/report",
        name="run-report",
        description="A run's full report as JSON: every hypothesis, fix, evidence summary, "
        "the decision and what was done.",
        mime_type="application/json",
    )(tools.report)
    server.resource(
        "diagnose://runs/{run_id}/postmortem",
        name="run-postmortem",
        description="A postmortem draft of a run as Markdown: timeline, impact, root cause, "
        "the evidence behind each claim, action items.",
        mime_type="text/markdown",
    )(tools.postmortem)
    return server


class _Tools:
    """The tools' bodies; each method's docstring is the description a model reads.

    The tools return plain ``dict[str, object]``: the server derives a tool's advertised output
    schema from its return annotation, and an open object is what clients have been told. The
    helpers' TypedDicts say each answer's shape.
    """

    def __init__(self, options: Options) -> None:
        self._options = options

    def start_diagnosis(
        self,
        service: str = "",
        namespace: str = "",
        title: str = "manual diagnosis",
        scenario: str = "",
    ) -> dict[str, object]:
        """Start a diagnosis of one service now and wait for its answer (seconds to a minute).

        Use it when an alert fires or someone asks why a service misbehaves, and no run exists
        yet (check list_runs first). Give the alerting `service` (its Kubernetes name), its
        `namespace` and the alert's `title` (the title picks the playbook); or give only
        `scenario`, the name of a recorded incident in the lab's scenario folder, to rehearse.
        Returns the run id, whether it waits for a person's approval, the top hypotheses (each
        with confidence and the ids of the evidence it cites), the proposed fixes (command,
        risk, dry-run outcome), and how a person approves. This tool never approves anything.
        """
        settings = self._options.settings
        if scenario:
            return dict(self._rehearse(scenario))
        if not service:
            raise ToolError("give `service` (and `namespace`), or `scenario` for the lab")
        trigger = models.Trigger(
            source="mcp", title=title, service=service, namespace=namespace, at=_now()
        )
        return dict(_started(settings, trigger))

    def _rehearse(self, scenario: str) -> RunAnswer:
        from diagnose.lab import lab  # noqa: PLC0415 (the lab's servers only when rehearsing)

        folder = _scenario_folder(self._options.scenarios, scenario)
        with _failures(), lab.running(folder, now=_now(), progress=console.progress) as running:
            settings = wiring.with_endpoints(self._options.settings, running.endpoints)
            return _started(settings, running.trigger)

    def list_runs(self, waiting_only: bool = False, limit: int = 20) -> dict[str, object]:
        """List diagnosis runs, the one started last first.

        Use it to find the run for an incident before starting a new one, or to see which runs
        wait for a person's approval (`waiting_only`). Returns for each run its id, the
        service, namespace and alert title, when it started, its status (`waiting_for_approval`,
        `finished` or `stopped`) and its top hypothesis with confidence. At most 50.
        """
        limit = max(1, min(limit, RUNS_LISTED))
        listed: list[RunLine] = []
        with _agent(self._options.settings) as agent:
            for run_id in agent.runs():
                paused = agent.status(run_id)
                if waiting_only and not paused.waiting:
                    continue
                listed.append(_line(paused))
                if len(listed) >= limit:
                    break
        return dict(RunList(runs=listed))

    def show_run(self, run_id: str) -> dict[str, object]:
        """Show one run's diagnosis: what is wrong, why we think so, and what would fix it.

        Use it after list_runs or start_diagnosis. Returns the status, the trigger, the top
        hypotheses (kind, component, the change behind it, confidence, a one-line summary, the
        ids of the evidence for and against), the proposed fixes (id, command, risk, blast
        radius, dry-run outcome, the query that shows whether it worked, digest), every
        evidence id with its source, status and re-runnable query, the notes (sources missing
        or failing), the decision if one was taken, and how a person approves. Read one piece
        of evidence in full with read_evidence.
        """
        with _agent(self._options.settings) as agent:
            return dict(_answer(_status(agent, run_id), evidence_index=True))

    def read_evidence(self, run_id: str, evidence_id: str) -> dict[str, object]:
        """Read one piece of evidence a run gathered, by its id (`ev-…`).

        Use it to check a claim before trusting it: every hypothesis cites evidence ids. Returns
        its source (prometheus, kubernetes, postgres, traces, logs…), kind, status (`ok`,
        `empty`, `error`, `denied`), the exact query or command that re-runs it, its time
        window, a one-line summary, and the raw answer as JSON text (cut to 4000 characters,
        `raw_truncated` says so).
        """
        with _agent(self._options.settings) as agent:
            _status(agent, run_id)
            found = [e for e in agent.context.store.load(run_id) if e.id == evidence_id]
        if not found:
            raise ToolError(
                f"run {run_id} has no evidence {evidence_id!r}: show_run lists its evidence ids"
            )
        return dict(_evidence(found[0]))

    def explain_playbook(
        self,
        title: str,
        service: str = "SERVICE",
        namespace: str = "",
        labels: dict[str, str] | None = None,
    ) -> dict[str, object]:
        """Say which playbook a diagnosis of this alert would run, and what it would query.

        Use it to understand or predict a diagnosis before starting one. Give the alert's
        `title` and, if known, its `labels` (alertname, service, namespace…). Returns the
        playbook's name, file and description, how it matched (labels or title), the PromQL
        queries it adds, its database probes and the fix kinds it allows, and which other
        playbooks also matched; `playbook` is null when none matches (the default analysis
        runs).
        """
        labels = dict(labels or {})
        trigger = models.Trigger(
            source="mcp",
            title=title or labels.get("alertname", ""),
            service=service or labels.get("service", "SERVICE"),
            namespace=namespace or labels.get("namespace", ""),
            at=_now(),
            labels=labels,
        )
        with _failures():
            loaded = wiring.load_playbooks(self._options.settings)
        return dict(_explained(loaded, trigger))

    def recent_incidents(self, services: list[str], limit: int = 10) -> dict[str, object]:
        """List past incidents remembered for these services, newest first.

        Use it to see whether a service has failed like this before, what turned out true, and
        what people decided (and rejected, with their reason). Give the services' (components')
        names. Returns for each past run its id, when, the alert, its top hypotheses and the
        decision with its reason. At most 50.
        """
        limit = max(1, min(limit, RUNS_LISTED))
        with _failures():
            memory = wiring.open_memory(self._options.settings)
            try:
                found = memory.recall(components=[s for s in services if s], limit=limit)
            finally:
                memory.close()
        return dict(Incidents(incidents=[_remembered(run) for run in found]))

    def report(self, run_id: str) -> str:
        """A run's full report (JSON)."""
        with _agent(self._options.settings) as agent:
            paused = _status(agent, run_id)
        body = paused.state.get("report") or reporting.build(paused.state)
        return json.dumps(body | {"status": _state_of(paused)}, indent=2, default=str)

    def postmortem(self, run_id: str) -> str:
        """A postmortem draft of a run (Markdown), written beside the CLI's drafts."""
        from diagnose import postmortem as drafts  # noqa: PLC0415 (matplotlib only when asked)

        settings = self._options.settings
        with _agent(settings) as agent:
            _status(agent, run_id)
            record = drafts.collect(agent, run_id)
        configured = drafts.objectives(settings, record)
        folder = settings.state_dir / "postmortems" / run_id
        with _failures():
            written = drafts.write(
                record, folder=folder, slo=configured.service, default_slo=configured.default
            )
        return written.text


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _failures() -> Iterator[None]:
    """Our deliberate errors as the tool's error answer (the model reads what to do next)."""
    try:
        yield
    except errors.DiagnoseError as exc:
        raise ToolError(str(exc)) from exc


@contextmanager
def _agent(settings: Settings) -> Iterator[runner.Agent]:
    with _failures(), wiring.open_agent(settings, progress=console.progress) as agent:
        yield agent


def _status(agent: runner.Agent, run_id: str) -> runner.Paused:
    try:
        return agent.status(run_id)
    except errors.RunNotFound as exc:
        raise ToolError(f"{exc}: list_runs shows the runs there are") from exc


def _started(settings: Settings, trigger: models.Trigger) -> RunAnswer:
    with _agent(settings) as agent:
        return _answer(agent.start_or_resume(trigger), evidence_index=False)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _scenario_folder(root: Path | None, name: str) -> Path:
    """A scenario by its folder name under ``--scenarios``; never a path the caller chose."""
    if root is None:
        raise ToolError("no lab here: start `diagnose mcp --scenarios DIR` to rehearse scenarios")
    folder = root / name
    if not _NAME.fullmatch(name) or not (folder / "scenario.yaml").is_file():
        known = sorted(p.parent.name for p in root.glob("*/scenario.yaml"))
        raise ToolError(f"no scenario {name!r}; there are: {', '.join(known) or 'none'}")
    return folder


def _state_of(paused: runner.Paused) -> str:
    if paused.waiting:
        return "waiting_for_approval"
    return "finished" if paused.finished else "stopped"


def _line(paused: runner.Paused) -> RunLine:
    state = paused.state
    trigger = _trigger(state.get("trigger"))
    correlation = state.get("correlation")
    hypotheses = (correlation.get("hypotheses") if correlation else None) or []
    return {
        "run_id": paused.run_id,
        "service": trigger["service"],
        "namespace": trigger["namespace"],
        "title": trigger["title"],
        "started": state.get("now"),
        "status": _state_of(paused),
        "top_hypothesis": _hypothesis(hypotheses[0], rank=1) if hypotheses else None,
    }


def _answer(paused: runner.Paused, *, evidence_index: bool) -> RunAnswer:
    """A run as a model should see it: small, ranked, every claim with its evidence ids."""
    result = reporting.result(paused.state)
    answer: RunAnswer = {
        "run_id": paused.run_id,
        "status": _state_of(paused),
        "trigger": _trigger(paused.state.get("trigger")),
        "abstained": result["abstained"],
        "hypotheses": [
            _hypothesis(h, rank=i + 1)
            for i, h in enumerate(result["hypotheses"][:SHOWN_HYPOTHESES])
        ],
        "fixes": [_fix(f) for f in result["fixes"]],
        "notes": result["notes"],
        "decision": result["decision"],
        "report": f"diagnose://runs/{paused.run_id}/report",
    }
    if evidence_index:
        answer["evidence"] = result["evidence"]
    if paused.waiting:
        answer["how_to_approve"] = how_to_approve(paused.run_id)
    return answer


def how_to_approve(run_id: str) -> HowToApprove:
    """What a person does to decide (never done through MCP)."""
    return {
        "who": "a named person, after checking the cited evidence themselves; not an agent",
        "cli": f"diagnose approve {run_id} --fix FIX_ID --checked EV_ID,... "
        "--approver NAME --reason '...' (or --reject)",
        "api": f"POST /api/v1/runs/{run_id}/approve with Authorization: Bearer THEIR_TOKEN and "
        '{"fix": "FIX_ID", "checked_evidence": ["EV_ID"], "reason": "..."}',
    }


def _trigger(trigger: models.TriggerData | None) -> TriggerLine:
    if trigger is None:
        return {"source": None, "title": None, "service": None, "namespace": None, "at": None}
    return {
        "source": trigger.get("source"),
        "title": trigger.get("title"),
        "service": trigger.get("service"),
        "namespace": trigger.get("namespace"),
        "at": trigger.get("at"),
    }


def _hypothesis(hypothesis: models.HypothesisData, *, rank: int) -> RankedHypothesis:
    return {
        "rank": rank,
        "kind": hypothesis["kind"],
        "component": hypothesis["component"],
        "change": hypothesis.get("change"),
        "confidence": hypothesis["confidence"],
        "summary": hypothesis["summary"],
        "onset": hypothesis.get("onset"),
        "evidence": list(hypothesis.get("evidence") or []),
        "counter_evidence": list(hypothesis.get("counter_evidence") or []),
    }


def _fix(fix: models.ProposedFix) -> FixLine:
    dry_run = fix.get("dry_run_result")
    return {
        "id": fix["id"],
        "kind": fix["kind"],
        "target": fix["target"],
        "command": fix["command"],
        "risk": fix["risk"],
        "blast_radius": fix["blast_radius"],
        "rollback": fix["rollback"],
        "verify": fix["verify"],
        "for_hypothesis_rank": int(fix.get("hypothesis", 0)) + 1,
        "dry_run": {
            "command": fix.get("dry_run"),
            "outcome": dry_run.get("outcome") if dry_run else None,
        },
        "digest": fix.get("digest"),
    }


def _evidence(evidence: models.Evidence) -> EvidenceAnswer:
    raw = json.dumps(evidence.raw, default=str)
    window = evidence.window
    return {
        "id": evidence.id,
        "source": evidence.source,
        "kind": str(evidence.kind.value),
        "status": evidence.status,
        "query": evidence.query,
        "window": None
        if window is None
        else {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "summary": evidence.summary,
        "raw": raw[:RAW_CHARS],
        "raw_truncated": len(raw) > RAW_CHARS,
    }


def _explained(loaded: Sequence[playbook.Loaded], trigger: models.Trigger) -> PlaybookExplanation:
    from diagnose.analysis import signals  # noqa: PLC0415 (numpy only when explaining)

    chosen = playbook.choose(loaded, trigger)
    candidates = [item for item in loaded if playbook.matches(item.playbook, trigger)]
    described: dict[str, object] | None = None
    if chosen is not None:
        described = playbook.summary(
            chosen, trigger, window_s=300, kind_of=lambda n: signals.classify(n)[0]
        ) | {"description": chosen.playbook.description, "path": str(chosen.path)}
    return {
        "playbook": described,
        "also_matched": [c.playbook.name for c in candidates if c is not chosen],
    }


def _remembered(run: Mapping[str, object]) -> RememberedIncident:
    recalled = run.get("hypotheses")
    hypotheses = list(recalled)[:3] if isinstance(recalled, list) else []
    return {
        "run_id": run.get("run_id"),
        "at": run.get("at"),
        "trigger": run.get("trigger"),
        "components": run.get("components"),
        "hypotheses": [
            {
                "kind": h.get("kind"),
                "component": h.get("component"),
                "change": h.get("change"),
                "confidence": h.get("confidence"),
                "summary": h.get("summary"),
            }
            for h in hypotheses
            if isinstance(h, Mapping)
        ],
        "decision": run.get("decision"),
    }


def serve(options: Options, *, http: bool, host: str, port: int) -> None:
    """Answer MCP over stdio, or over streamable HTTP at ``http://HOST:PORT/mcp``."""
    server = build(options)
    if not http:
        server.run("stdio")
        return
    import uvicorn  # noqa: PLC0415 (only the HTTP transport needs it)

    tokens = auth.load_tokens(options.settings)
    if not tokens:
        raise errors.ConfigurationError(
            "diagnose mcp --http needs bearer tokens: set DIAGNOSE_API_TOKENS (user:token,…) or "
            "DIAGNOSE_API_TOKENS_FILE, as for the approval API"
        )
    app = server.streamable_http_app(host=host)
    uvicorn.run(Bearer(app, tokens=tokens), host=host, port=port, log_level="warning")


class Bearer:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer TOKEN`` with a token
    of ``DIAGNOSE_API_TOKENS`` (compared in constant time); 401 otherwise."""

    def __init__(self, app: ASGIApp, *, tokens: Mapping[str, str]) -> None:
        self._app = app
        self._tokens = dict(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._user(scope) is None:
            await _unauthorised(send)
            return
        await self._app(scope, receive, send)

    def _user(self, scope: Scope) -> str | None:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return auth.user_for(token.strip(), tokens=self._tokens)


async def _unauthorised(send: Send) -> None:
    body = json.dumps(
        {"detail": "a valid API token is required (Authorization: Bearer TOKEN)"}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"www-authenticate", b"Bearer"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
