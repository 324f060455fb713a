"""``diagnose``: the command line, also installed as the kubectl plugin ``kubectl diagnose``.

Progress goes to stderr; ``--json`` output alone goes to stdout. Exit codes: 0 a diagnosis
was produced (an abstention included), 1 the input or settings were unusable, 3 nothing could
be concluded (every source failed or nothing was in scope).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from diagnose import console, rendering, wiring
from diagnose.domain import errors, models
from diagnose.server import commands as server_commands
from diagnose.server import slackjobs
from diagnose.settings import Settings
from graphs import pipeline, reporting, runner

app = typer.Typer(
    help="Find the root cause of a production incident, show the evidence, propose a fix.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
lab_app = typer.Typer(help="Stand a recorded incident up on real local servers.")
app.add_typer(lab_app, name="lab")
server_commands.register(app)

err = console.err
out = Console()

EXIT_UNUSABLE = console.EXIT_UNUSABLE
EXIT_NOTHING_CONCLUDED = 3

ScenarioOpt = Annotated[
    Path | None, typer.Option("--scenario", help="A scenario folder to stand up in the lab.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


@app.command()
def run(
    target: Annotated[
        str | None,
        typer.Argument(help="What to diagnose, live: deploy/NAME, statefulset/NAME or NAME."),
    ] = None,
    scenario: ScenarioOpt = None,
    service: Annotated[str | None, typer.Option(help="The alerting service (live mode).")] = None,
    since: Annotated[
        str | None, typer.Option(help="How far back to look, e.g. 30m or 2h (default 60m).")
    ] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace.")] = "",
    title: Annotated[str, typer.Option(help="The alert's title.")] = "manual diagnosis",
    at: Annotated[str | None, typer.Option(help="When the alert fired (ISO 8601); now.")] = None,
    no_shift: Annotated[bool, typer.Option("--no-shift", help="Keep recorded times.")] = False,
    as_json: JsonOpt = False,
    run_id: Annotated[
        str | None,
        typer.Option(help="Use this run id; a run already stored under it is carried on."),
    ] = None,
) -> None:
    """Diagnose a lab scenario (--scenario) or a live service (TARGET or --service)."""
    with console.failures():
        service = service or (_workload(target) if target else None)
        if scenario is not None:
            paused = _run_scenario(scenario, shift=not no_shift, as_json=as_json, run_id=run_id)
        elif service:
            trigger = models.Trigger(
                source="manual",
                title=title,
                service=service,
                namespace=namespace,
                at=models.parse_time(at) if at else datetime.now(UTC),
            )
            settings = _with_lookback(_settings(), since)
            paused = _diagnose(settings, trigger, as_json=as_json, run_id=run_id)
        else:
            raise errors.ConfigurationError(
                "give a target (deploy/NAME), --service NAME, or --scenario DIR"
            )
    if not reporting.concluded(reporting.result(paused.state)):
        raise typer.Exit(EXIT_NOTHING_CONCLUDED)


_KINDS = ("deploy", "deployment", "deployments", "sts", "statefulset", "ds", "daemonset")
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def _workload(target: str) -> str:
    """``deploy/checkout`` → ``checkout``, as kubectl names workloads."""
    kind, _, name = target.rpartition("/")
    if kind and kind not in _KINDS:
        raise errors.ConfigurationError(
            f"cannot diagnose {target!r}: give deploy/NAME, statefulset/NAME, daemonset/NAME "
            "or a service name"
        )
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        raise errors.ConfigurationError(f"{name!r} is not a Kubernetes workload name")
    return name


def _with_lookback(settings: Settings, since: str | None) -> Settings:
    if since is None:
        return settings
    found = _DURATION.match(since.strip())
    if not since.strip() or not found:
        raise errors.ConfigurationError(f"--since {since!r}: give a duration like 30m, 2h or 1h30m")
    minutes = int(found["h"] or 0) * 60 + int(found["m"] or 0) + int(found["s"] or 0) / 60
    if minutes <= 0:
        raise errors.ConfigurationError("--since must be longer than zero")
    gather = settings.gather.model_copy(update={"lookback_minutes": minutes})
    return settings.model_copy(update={"gather": gather})


def _run_scenario(folder: Path, *, shift: bool, as_json: bool, run_id: str | None) -> runner.Paused:
    from diagnose.lab import lab

    with lab.running(
        folder, now=datetime.now(UTC), shift=shift, progress=console.progress
    ) as running:
        settings = wiring.with_endpoints(_settings(), running.endpoints)
        return _diagnose(settings, running.trigger, as_json=as_json, run_id=run_id)


def _diagnose(
    settings: Settings, trigger: models.Trigger, *, as_json: bool, run_id: str | None
) -> runner.Paused:
    """The run, diagnosed up to the approval step (and answered, in a terminal), shown."""
    interactive = not as_json and sys.stdin.isatty() and sys.stdout.isatty()
    with wiring.open_agent(settings, progress=console.progress) as agent:
        paused = agent.start_or_resume(trigger, run_id=run_id)
        thread = _post_to_slack(settings, paused, parent=None)
        if as_json:
            print(json.dumps(reporting.result(paused.state), indent=2))
            return paused
        rendering.show(out, paused.state, bundle_dir=settings.bundles_dir / paused.run_id)
        if interactive and paused.waiting:
            paused = _ask(agent, paused)
            if thread is not None:
                _post_to_slack(settings, paused, parent=thread)
        elif paused.waiting:
            rendering.paused_hint(out, paused.run_id)
        return paused


def _post_to_slack(settings: Settings, paused: runner.Paused, *, parent: str | None) -> str | None:
    """Post the finished diagnosis to Slack when it is on (docs/slack.md), as a worker does: the
    run's own thread (a run started here has no incident to share one with), its parent updated
    and a reply added once the terminal's answer is given. The thread's parent ``ts``, or None
    when nothing was posted: a Slack failure is a note, never a failed run."""
    channel = settings.slack.channel
    chat = wiring.open_slack(settings) if settings.slack.active and channel else None
    if chat is None or channel is None:
        return None
    try:
        posted = slackjobs.post_run(
            chat,
            paused,
            channel=channel,
            parent=parent,
            public_url=settings.public_url,
            buttons=_service_resumes(settings),
        )
    finally:
        chat.close()
    if not posted["posted"]:
        err.print(f"note: not posted to Slack ({posted.get('why')}); the run is unaffected")
        return None
    return posted.get("parent")


def _service_resumes(settings: Settings) -> bool:
    """Whether the service can resume this run, so Slack's buttons work: its checkpoint is in
    PostgreSQL (``DIAGNOSE_DATABASE_URL``, the service's store), not in this machine's SQLite."""
    return bool(settings.database_url)


def _ask(agent: runner.Agent, paused: runner.Paused) -> runner.Paused:
    while paused.waiting:
        answer = rendering.prompt_decision(out, paused.state) | _accounts(via="terminal")
        paused = agent.resume(paused.run_id, answer)
        problems = paused.state.get("approval_errors") or []
        for problem in problems if paused.waiting else []:
            out.print(f"[red]not accepted:[/red] {problem}")
    rendering.show_outcome(out, paused.state)
    return paused


@app.command()
def approve(
    run_id: str,
    approver: Annotated[str, typer.Option(help="Your name: decisions are recorded.")],
    reason: Annotated[str, typer.Option(help="Why.")],
    fix: Annotated[str | None, typer.Option(help="The fix id to approve.")] = None,
    checked: Annotated[
        str,
        typer.Option(
            help="Comma-separated evidence ids you checked yourself: cited ones, and at least "
            "one counter-evidence id when the fix's hypothesis has any."
        ),
    ] = "",
    reject: Annotated[bool, typer.Option("--reject", help="Reject every proposed fix.")] = False,
    digest: Annotated[
        str | None, typer.Option(help="The digest of the fix you read; refused if it changed.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve one proposed fix of a paused run, or reject them, from any process."""
    if not reject and not fix:
        err.print("[bold red]error:[/bold red] give --fix FIX_ID to approve, or --reject")
        raise typer.Exit(EXIT_UNUSABLE)
    answer = {
        "verdict": "reject" if reject else "approve",
        "approver": approver,
        "reason": reason,
        "fix": None if reject else fix,
        "checked_evidence": [c.strip() for c in checked.split(",") if c.strip()],
    } | ({"fix_digest": digest} if digest else {})
    answer |= _accounts(via="cli")
    with console.failures(), wiring.open_agent(_settings(), progress=console.progress) as agent:
        before = len(agent.status(run_id).state.get("approvals") or [])
        paused = agent.resume(run_id, answer)
        if paused.waiting:
            if len(paused.state.get("approvals") or []) > before:
                err.print(f"recorded; the run still waits: {paused.state['approval_errors'][0]}")
                return
            for problem in paused.state.get("approval_errors") or []:
                err.print(f"[bold red]not accepted:[/bold red] {problem}")
            raise typer.Exit(EXIT_UNUSABLE)
        if as_json:
            print(json.dumps(paused.state.get("report"), indent=2))
        else:
            rendering.show_outcome(out, paused.state)


def _accounts(*, via: str) -> dict[str, str]:
    """Who is running this command, recorded beside the typed name: the OS account, and
    through ``kubectl diagnose`` the Kubernetes user of the kubeconfig's current context. A
    second approval of a high-risk fix from either of the same accounts is refused."""
    found = {"via": "kubectl" if _as_plugin() else via, "os_user": _os_user()}
    if _as_plugin():
        found["kube_user"] = kube_user(os.environ.get("KUBECONFIG"), home=Path.home())
    return {key: value for key, value in found.items() if value}


def _as_plugin() -> bool:
    return _invoked_as["prog"] == KUBECTL_PROG


def _os_user() -> str:
    """``user@host`` of the process's real uid (not $USER, which anyone can set)."""
    try:
        import pwd  # POSIX only
    except ImportError:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no passwd entry, as in many containers
        name = f"uid {os.getuid()}"
    return f"{name}@{socket.gethostname()}"


def kube_user(kubeconfig: str | None, *, home: Path) -> str:
    """The user of the current context, read as kubectl merges ``KUBECONFIG`` (the first file
    naming a current context, and the first definition of each context, win); "" when there
    is none. This is the kubeconfig's name for the credentials, as ``kubectl config view
    --minify`` shows it, not an identity the API server has vouched for."""
    paths = [Path(p) for p in (kubeconfig or str(home / ".kube" / "config")).split(os.pathsep)]
    current, users = "", dict[str, str]()
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(config, dict):
            continue
        current = current or str(config.get("current-context") or "")
        for item in config.get("contexts") or []:
            if isinstance(item, dict) and isinstance(item.get("context"), dict):
                users.setdefault(str(item.get("name")), str(item["context"].get("user") or ""))
    return users.get(current, "")


@app.command()
def finish(
    run_id: Annotated[str | None, typer.Argument(help="The run; with --all, every one.")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every run without its report, one line each.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Carry on a run whose process died, wherever it stopped: to its report, or to the
    approval step when nobody has answered yet. Nothing approved is lost, and nothing already
    done is done again."""
    if every or run_id is None:
        _finish_all(run_id, every=every)
        return
    with console.failures(), wiring.open_agent(_settings(), progress=console.progress) as agent:
        paused = agent.recover(run_id)
    if as_json:
        waiting = reporting.result(paused.state) | {"waiting": True}
        print(json.dumps(paused.state["report"] if paused.finished else waiting, indent=2))
    elif paused.waiting:
        rendering.paused_hint(out, run_id)
    else:
        rendering.show_outcome(out, paused.state)


def _finish_all(run_id: str | None, *, every: bool) -> None:
    if run_id is not None or not every:
        err.print("[bold red]error:[/bold red] give one RUN_ID, or --all for every run")
        raise typer.Exit(EXIT_UNUSABLE)
    with console.failures(), wiring.open_agent(_settings(), progress=console.progress) as agent:
        for each in agent.unfinished():
            paused = agent.recover(each)
            where = "finished" if paused.finished else "waits for approval"
            out.print(f"{each}: {where}", highlight=False)


@app.command()
def show(run_id: str, as_json: JsonOpt = False) -> None:
    """Show a run: its diagnosis, and whether it waits for approval."""
    settings = _settings()
    with console.failures(), wiring.open_agent(settings, progress=console.progress) as agent:
        paused = agent.status(run_id)
    if as_json:
        print(json.dumps(reporting.result(paused.state) | {"waiting": paused.waiting}, indent=2))
        return
    rendering.show(out, paused.state, bundle_dir=settings.bundles_dir / run_id)
    if paused.waiting:
        rendering.paused_hint(out, run_id)
    else:
        rendering.show_outcome(out, paused.state)


@app.command()
def audit(
    run_id: Annotated[str | None, typer.Argument(help="One run; all runs when omitted.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the audit log: every proposal, approval, decision and action, in order."""
    with console.failures():
        log = wiring.open_audit(_settings())
        try:
            entries = log.entries(run_id)
        finally:
            log.close()
    if as_json:
        print(json.dumps(entries, indent=2, default=str))
    else:
        rendering.audit_table(out, entries)


@app.command()
def postmortem(
    run_id: str,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the draft (default: STATE_DIR/postmortems/RUN_ID)."),
    ] = None,
    slo_target: Annotated[
        float | None,
        typer.Option(
            help="The alerting service's SLO target, e.g. 99.9 (or 0.999). "
            "Default: DIAGNOSE_SLO_TARGETS, else DIAGNOSE_SLO_TARGET."
        ),
    ] = None,
    slo_window_days: Annotated[
        float | None,
        typer.Option(help="The SLO's window in days (default: DIAGNOSE_SLO_WINDOW_DAYS, 30)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft a postmortem of a run: Markdown with its timeline, impact and PNG plots."""
    from diagnose import postmortem as drafts

    settings = _settings()
    with console.failures():
        slo = _slo(slo_target, window_days=slo_window_days or settings.slo_window_days)
        with wiring.open_agent(settings, progress=console.progress) as agent:
            record = drafts.collect(agent, run_id)
        folder = out_dir or settings.state_dir / "postmortems" / run_id
        configured = drafts.objectives(settings, record)
        written = drafts.write(
            record, folder=folder, slo=slo or configured.service, default_slo=configured.default
        )
    if as_json:
        images = [str(p) for p in written.images]
        print(json.dumps({"markdown": str(written.markdown), "images": images}, indent=2))
    else:
        out.print(f"postmortem draft: {written.markdown} ({len(written.images)} plots)")


def _slo(target: float | None, *, window_days: float) -> Any:
    from diagnose.postmortem import drafting

    if target is None:
        return None
    ratio = target / 100 if target > 1 else target
    try:
        return drafting.Slo(target=ratio, window_days=window_days, source="--slo-target")
    except ValueError as exc:
        raise errors.ConfigurationError(
            f"--slo-target {target}: give a percentage below 100 (99.9) or a ratio (0.999); {exc}"
        ) from exc


@app.command()
def replay(folder: Path, as_json: JsonOpt = False) -> None:
    """Re-run the diagnosis on a saved evidence bundle (the model's recorded reading included):
    no servers needed."""
    with console.failures():
        manifest, evidence = wiring.read_bundle(folder)
        state = pipeline.replay_state(manifest, evidence=evidence, run_id=folder.name)
    result = reporting.result(state)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        rendering.show(out, state, bundle_dir=folder)
    if not reporting.concluded(result):
        raise typer.Exit(EXIT_NOTHING_CONCLUDED)


@app.command("mcp")
def mcp(
    http: Annotated[
        bool, typer.Option("--http", help="Streamable HTTP at /mcp (bearer tokens), not stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: port to listen on.")] = 8765,
    scenarios: Annotated[
        Path | None,
        typer.Option(help="A folder of lab scenarios clients may start runs of, by name."),
    ] = None,
) -> None:
    """Serve runs, evidence and incident memory to other agents over MCP (read-only except
    starting a run; approving stays with people)."""
    from diagnose import mcp_server

    with console.failures():
        options = mcp_server.Options(settings=_settings(), scenarios=scenarios)
        mcp_server.serve(options, http=http, host=host, port=port)


@app.command("eval")
def evaluate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="Scenario folders, folders of scenarios, or archives of them "
            "(.tar.xz, .tar.gz, .tar; extracted once into the cache).",
        ),
    ],
    as_json: JsonOpt = False,
    no_shift: Annotated[bool, typer.Option("--no-shift", help="Keep recorded times.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Only scenarios whose folder name matches this glob (repeatable)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many scenarios from each path.")
    ] = None,
) -> None:
    """Run every scenario under PATHS through the lab and score the rankings against the
    max-|z| and latest-change baselines, per dataset and per fault type."""
    from diagnose import evaluation

    with console.failures():
        settings = _settings()
        datasets = evaluation.collect(
            paths, cache=settings.cache_dir, only=only or (), limit=limit, progress=console.progress
        )
        cases = evaluation.run_all(
            datasets, base=settings, shift=not no_shift, progress=console.progress
        )
    summary = evaluation.summarise(cases)
    if as_json:
        print(json.dumps({"summary": summary, "cases": [c.to_dict() for c in cases]}, indent=2))
    else:
        rendering.eval_table(out, cases, summary)
        out.print(evaluation.breakdown(summary), markup=False, highlight=False, soft_wrap=True)
    if crashed := evaluation.crashed(cases):
        err.print(f"error: the run crashed in our code on {', '.join(crashed)}", highlight=False)
        raise typer.Exit(EXIT_UNUSABLE)


@lab_app.command("up")
def lab_up(scenario: Path, no_shift: Annotated[bool, typer.Option("--no-shift")] = False) -> None:
    """Start the scenario's servers in the background and print where they listen."""
    from diagnose.lab import lab

    with console.failures():
        status = lab.up(
            scenario,
            state_dir=_settings().lab_dir,
            now=datetime.now(UTC),
            shift=not no_shift,
            progress=console.progress,
        )
    rendering.lab_status(out, [status])


@lab_app.command("status")
def lab_status() -> None:
    """List the scenarios standing up, and whether their servers still answer."""
    from diagnose.lab import lab

    with console.failures():
        rendering.lab_status(out, lab.status(state_dir=_settings().lab_dir))


@lab_app.command("down")
def lab_down(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Stop a scenario's servers (all of them when no name is given) and remove their data."""
    from diagnose.lab import lab

    with console.failures():
        stopped = lab.down(name, state_dir=_settings().lab_dir)
    out.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


playbooks_app = typer.Typer(help="Check playbooks, and see which one an alert would run.")
app.add_typer(playbooks_app, name="playbooks")


@playbooks_app.command("lint")
def playbooks_lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Playbook files or folders (default: the configured playbooks)."),
    ] = None,
) -> None:
    """Validate playbooks: fields, PromQL syntax, template variables, probe names. Every
    problem is printed as FILE:LINE: message; the exit code is 1 when there is any."""
    from diagnose import playbook
    from sandbox import catalogue

    with console.failures():
        targets = list(paths or _settings().playbooks or [playbook.DEFAULT_DIR])
        names = [entry.probe.name for entry in catalogue.load().entries]
        problems = playbook.lint(targets, probe_names=names)
    for problem in problems:
        print(problem)
    if problems:
        raise typer.Exit(EXIT_UNUSABLE)
    files = playbook.files_in(targets)
    err.print(f"{len(files)} playbook file(s) valid", highlight=False)


@playbooks_app.command("explain")
def playbooks_explain(
    alert: Annotated[
        list[str],
        typer.Argument(help="The alert: its title, and/or labels as key=value (alertname=…)."),
    ],
    service: Annotated[str | None, typer.Option(help="The alerting service.")] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace.")] = "",
    window: Annotated[int, typer.Option(help="Rate window in seconds.")] = 300,
    as_json: JsonOpt = False,
) -> None:
    """Show which playbook an alert would run, how it matched, and what it would query."""
    from diagnose import playbook
    from diagnose.analysis import signals

    labels = dict(item.split("=", 1) for item in alert if re.match(r"^[A-Za-z_]\w*=", item))
    title = " ".join(item for item in alert if not re.match(r"^[A-Za-z_]\w*=", item))
    chosen_service = service or labels.get("service") or labels.get("service_name") or "SERVICE"
    trigger = models.Trigger(
        source="manual",
        title=title or labels.get("alertname", ""),
        service=chosen_service,
        namespace=namespace or labels.get("namespace", ""),
        at=datetime.now(UTC),
        labels=labels,
    )
    with console.failures():
        loaded = wiring.load_playbooks(_settings())
    candidates = [item for item in loaded if playbook.matches(item.playbook, trigger)]
    chosen = playbook.choose(loaded, trigger)
    explained: dict[str, Any] = {
        "playbook": None,
        "also_matched": [c.playbook.name for c in candidates if c is not chosen],
    }
    if chosen is not None:
        explained["playbook"] = playbook.summary(
            chosen, trigger, window_s=window, kind_of=lambda n: signals.classify(n)[0]
        ) | {"description": chosen.playbook.description, "path": str(chosen.path)}
    if as_json:
        print(json.dumps(explained, indent=2))
    else:
        rendering.playbook_explained(out, explained)


@app.callback(invoke_without_command=True)
def attach(
    ctx: typer.Context,
    incident: Annotated[
        str | None,
        typer.Option(
            "--incident",
            help="Attach to the run a PagerDuty incident started (its id, e.g. P123) and "
            "follow it to the approval step.",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="With --incident: wait for the run.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="With --follow: seconds to wait.")] = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Find the root cause of a production incident, show the evidence, propose a fix."""
    if ctx.invoked_subcommand is not None:
        if incident is not None:
            err.print("[bold red]error:[/bold red] give --incident without a command")
            raise typer.Exit(EXIT_UNUSABLE)
        return
    if incident is None:
        out.print(ctx.get_help(), highlight=False)
        raise typer.Exit(0)
    with console.failures():
        _attach(incident, follow=follow, timeout_s=timeout, as_json=as_json)


def _attach(incident: str, *, follow: bool, timeout_s: float, as_json: bool) -> None:
    from diagnose.server import attaching

    settings = _settings()
    work_queue = attaching.open_queue(settings)
    try:
        with wiring.open_agent(settings, progress=console.progress) as agent:
            if follow:
                found = attaching.follow(
                    work_queue,
                    agent,
                    incident_id=incident,
                    timeout_s=timeout_s,
                    progress=console.progress,
                )
            else:
                found = attaching.look(work_queue, agent, incident_id=incident)
                console.progress(attaching.describe(found))
    finally:
        work_queue.close()
    paused = found.paused
    if as_json:
        result = reporting.result(paused.state) if paused else {}
        job = {k: getattr(found.job, k) for k in ("id", "state", "attempts", "error", "run_id")}
        waiting = bool(paused and paused.waiting)
        print(json.dumps({"incident_id": incident, "job": job, "waiting": waiting} | result))
    elif paused is not None and found.settled:
        rendering.show(out, paused.state, bundle_dir=settings.bundles_dir / paused.run_id)
        if paused.waiting:
            rendering.paused_hint(out, paused.run_id)
        else:
            rendering.show_outcome(out, paused.state)
    if found.job.state == "failed":
        raise typer.Exit(EXIT_UNUSABLE)
    if not found.settled:
        err.print(f"still {found.job.state}: run `kubectl diagnose --incident {incident}` again")
        raise typer.Exit(EXIT_NOTHING_CONCLUDED)


@app.command()
def tune(
    scenarios: Annotated[
        list[Path],
        typer.Argument(help="Scenario folders, or folders of them (train and held out)."),
    ],
    rounds: Annotated[int, typer.Option(help="Round budget: changes tried at most.")] = 10,
    playbooks: Annotated[
        Path | None,
        typer.Option(help="The playbook folder to start from (default: the configured one)."),
    ] = None,
    holdout: Annotated[
        str | None, typer.Option(help="Scenario names held out, comma-separated.")
    ] = None,
    holdout_every: Annotated[int, typer.Option(help="Else hold out every Nth scenario.")] = 3,
    bundles: Annotated[
        Path | None, typer.Option(help="Where the scenarios' evidence bundles are kept.")
    ] = None,
    lessons: Annotated[
        Path | None, typer.Option(help="The lessons file, read first and appended to.")
    ] = None,
    diff_out: Annotated[
        Path | None, typer.Option("--diff", help="Write the diff here (default: stdout).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tune playbook thresholds and weights (and, with DIAGNOSE_LLM_BASE_URL set, the model's
    prompt budget, completion cap, step budget and sampling) on saved runs of the scenarios:
    keep a change only when the training scores say so, check the result on held-out
    scenarios, print a diff."""
    from diagnose import evaluation, playbook, tuning

    with console.failures():
        settings = _settings()
        start_dir = playbooks or (settings.playbooks or [playbook.DEFAULT_DIR])[0]
        settings = settings.model_copy(update={"playbooks": [start_dir]})
        loaded = wiring.load_playbooks(settings)
        folders = [found for path in scenarios for found in evaluation.find_scenarios(path)]
        held = [n.strip() for n in (holdout or "").split(",") if n.strip()]
        train, held_out = tuning.split(folders, held_out=held, every=holdout_every)
        where = settings.state_dir / "tune"
        recorded = tuning.record(
            folders, base=settings, bundles=bundles or where / "bundles", progress=console.progress
        )
        by_name = {r.name: r for r in recorded}
        names = {f: tuning.scenario_name(f) for f in folders}
        outcome = tuning.tune(
            [by_name[names[f]] for f in train],
            [by_name[names[f]] for f in held_out],
            start=tuning.knobs_of(loaded),
            rounds=rounds,
            lessons=lessons or where / "lessons.jsonl",
            progress=console.progress,
            settings=settings,
        )
    patch = tuning.diff(loaded, outcome.final, root=start_dir.parent) if outcome.written else ""
    summary = outcome.to_dict()
    err.print(
        f"held-out AC@1 {outcome.held_out_before.ac1:.2f} → {outcome.held_out_after.ac1:.2f}, "
        f"Avg@5 {outcome.held_out_before.avg5:.2f} → {outcome.held_out_after.avg5:.2f}: "
        f"{outcome.why}",
        highlight=False,
    )
    for name, value in outcome.settings().items():
        err.print(f"setting to change (not in the diff): {name}={value}", highlight=False)
    if diff_out is not None:
        diff_out.write_text(patch)
    if as_json:
        print(json.dumps(summary | {"diff": patch}, indent=2))
    elif diff_out is None:
        print(patch, end="")


def main() -> None:
    app(prog_name="diagnose")


def kubectl_main() -> None:
    """Entry point of the kubectl plugin: ``kubectl diagnose ...``. As kubectl's own verbs
    take a resource first, ``kubectl diagnose deploy/checkout -n shop`` means ``run``."""
    os.environ.setdefault("DIAGNOSE_KUBERNETES_ENABLED", "true")
    sys.argv[1:] = kubectl_arguments(sys.argv[1:])
    _invoked_as["prog"] = KUBECTL_PROG
    app(prog_name=KUBECTL_PROG)


KUBECTL_PROG = "kubectl diagnose"
_invoked_as = {"prog": "diagnose"}  # set by the entry point: which program the user ran


def kubectl_arguments(argv: list[str]) -> list[str]:
    """``run`` inserted before a leading ``KIND/NAME`` target; anything else unchanged."""
    if argv and re.fullmatch(r"[A-Za-z.]+/[a-z0-9]([-a-z0-9.]*[a-z0-9])?", argv[0]):
        return ["run", *argv]
    return argv
