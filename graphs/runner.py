"""Start, resume and inspect diagnosis runs over one checkpointer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from diagnose.domain import errors, models, ports
from graphs import approval, diagnosis
from graphs.state import Context, DiagnosisState


@dataclass
class Paused:
    """Where a run stands: paused at the approval step (``waiting``) or finished."""

    run_id: str
    state: DiagnosisState
    waiting: bool
    question: approval.Question | None

    @property
    def finished(self) -> bool:
        """The run is over: its report is written (what a crash cannot leave half done)."""
        return "report" in self.state


class Agent:
    """Runs, resumes and inspects diagnoses. Resuming works from any process that opens the
    same checkpoint store: the run's state lives there, not in memory."""

    def __init__(self, *, context: Context, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self.context = context
        self.checkpointer = checkpointer
        self.graph = diagnosis.build(checkpointer)

    def unfinished(self) -> list[str]:
        """Every run in the checkpoint store without its report (stopped by a crash, or at the
        approval step), oldest first."""
        runs = list(reversed(self.runs()))
        return [run for run in runs if not self.status(run).finished]

    def runs(self) -> list[str]:
        """Every run in the checkpoint store, the one started last first."""
        threads = [c.config["configurable"]["thread_id"] for c in self.checkpointer.list(None)]
        return list(reversed(dict.fromkeys(reversed(threads))))

    def start(self, trigger: models.Trigger, *, run_id: str | None = None) -> Paused:
        """Diagnose from the trigger up to the approval step (where it pauses)."""
        run_id = run_id or new_run_id()
        state: DiagnosisState = {"run_id": run_id, "trigger": trigger.to_dict()}
        self.graph.invoke(state, _config(run_id), context=self.context, durability="sync")
        return self.status(run_id)

    def start_or_resume(self, trigger: models.Trigger, *, run_id: str | None = None) -> Paused:
        """The one driver of runs (the CLI's and the service's workers'): start the run, or,
        when ``run_id`` is already in the checkpoint store, carry it on from there, whatever
        shape an earlier process's death left it in (see :meth:`recover`)."""
        if run_id is None:
            return self.start(trigger)
        try:
            self.status(run_id)
        except errors.RunNotFound:
            return self.start(trigger, run_id=run_id)
        return self.recover(run_id)

    def resume(self, run_id: str, answer: Mapping[str, object]) -> Paused:
        """Answer the approval step; the run goes on to its report (or asks again). The answer
        (an :class:`approval.Answer`, or whatever a caller sent) is checked field by field."""
        paused = self.status(run_id)
        if not paused.waiting:
            if not paused.finished:
                raise errors.ConfigurationError(
                    f"run {run_id} is not waiting for approval: it stopped before finishing; "
                    f"finish it with `diagnose finish {run_id}`"
                )
            raise errors.ConfigurationError(f"run {run_id} is finished: its report is written")
        self._invoke(Command(resume=answer), run_id)
        return self.status(run_id)

    def recover(self, run_id: str) -> Paused:
        """Carry a run that stopped anywhere (its process died) on to its report, or back to
        the approval step when no human has answered yet. Whatever the checkpoint holds is
        picked up: steps whose output was saved are not run again, an answer saved with the
        run is used, and an approval the audit log recorded but the state lost is given again
        (it was validated when it was recorded). The act step looks the action's idempotency
        key up first, so nothing approved is lost or done twice. Finished means the report is
        written, whatever ``next`` says: a step can have saved its output without the
        checkpoint after it, and then LangGraph lists no next step."""
        paused = self.status(run_id)
        rerun_approval = True
        given: set[str] = set()
        for _ in range(_RECOVERY_ROUNDS):
            if paused.finished:
                break
            if not paused.waiting:
                self._invoke(None, run_id)
            elif rerun_approval:  # an answer saved with the run is picked up; else it asks again
                rerun_approval = False
                self._invoke(None, run_id)
            elif (recorded := _recorded_approval(paused.state, self.context.audit, given)) is None:
                break
            else:
                self._invoke(Command(resume=recorded), run_id)
            paused = self.status(run_id)
        return paused

    def _invoke(self, command: Command[Any] | None, run_id: str) -> None:
        self.graph.invoke(command, _config(run_id), context=self.context, durability="sync")

    def status(self, run_id: str) -> Paused:
        snapshot = self.graph.get_state(_config(run_id))
        if not snapshot.values:
            raise errors.RunNotFound(f"no run {run_id!r} in the checkpoint store")
        question = None
        for task in snapshot.tasks:
            for pending in task.interrupts:
                question = pending.value
        values = cast(DiagnosisState, snapshot.values)
        return Paused(run_id=run_id, state=values, waiting=question is not None, question=question)


_RECOVERY_ROUNDS = 8
"""Passes ``recover`` makes at most: each runs the graph to its end or to the approval step."""


def _recorded_approval(
    state: DiagnosisState, audit: ports.AuditLog | None, given: set[str]
) -> Mapping[str, object] | None:
    """An approval of this run the audit log holds but the state does not (the process died
    between recording it and saving the step), as the answer that gave it; each at most once
    per recovery (``given``), so an answer refused now is not tried again and again."""
    if audit is None:
        return None
    kept = {_approval_id(a) for a in state.get("approvals", [])}
    for entry in audit.entries(state["run_id"]):
        body = entry["entry"]
        if entry["kind"] != "approval" or _approval_id(body) in kept | given:
            continue
        given.add(_approval_id(body))
        return {key: value for key, value in body.items() if key != "at"}
    return None


def _approval_id(given: Mapping[str, object]) -> str:
    return f"{given.get('fix')}:{given.get('fix_digest')}:{given.get('approver')}"


def new_run_id() -> str:
    return "run-" + uuid.uuid4().hex[:12]


def _config(run_id: str) -> Any:
    return {"configurable": {"thread_id": run_id}}
