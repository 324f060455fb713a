"""Start, resume and inspect diagnosis runs over one checkpointer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from diagnose.domain import errors, models
from graphs import diagnosis
from graphs.state import Context, DiagnosisState


@dataclass
class Paused:
    """Where a run stands: paused at the approval step (``waiting``) or finished."""

    run_id: str
    state: DiagnosisState
    waiting: bool
    question: dict[str, Any] | None


class Agent:
    """Runs, resumes and inspects diagnoses. Resuming works from any process that opens the
    same checkpoint store: the run's state lives there, not in memory."""

    def __init__(self, *, context: Context, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self.context = context
        self.graph = diagnosis.build(checkpointer)

    def start(self, trigger: models.Trigger, *, run_id: str | None = None) -> Paused:
        """Diagnose from the trigger up to the approval step (where it pauses)."""
        run_id = run_id or new_run_id()
        state: DiagnosisState = {"run_id": run_id, "trigger": trigger.to_dict()}
        self.graph.invoke(state, _config(run_id), context=self.context, durability="sync")
        return self.status(run_id)

    def resume(self, run_id: str, answer: dict[str, Any]) -> Paused:
        """Answer the approval step; the run goes on to its report (or asks again)."""
        if not self.status(run_id).waiting:
            if self.graph.get_state(_config(run_id)).next:
                raise errors.ConfigurationError(
                    f"run {run_id} already has its decision and stopped before finishing; "
                    f"finish it with `diagnose finish {run_id}`"
                )
            raise errors.ConfigurationError(f"run {run_id} is not waiting for approval")
        self.graph.invoke(
            Command(resume=answer), _config(run_id), context=self.context, durability="sync"
        )
        return self.status(run_id)

    def recover(self, run_id: str) -> Paused:
        """Finish a run that stopped between two steps (its process died after the approval
        was recorded, say): it continues from its last checkpoint. The act step looks up the
        action's idempotency key first, so nothing is lost and nothing is done twice."""
        snapshot = self.graph.get_state(_config(run_id))
        if not snapshot.values:
            raise errors.RunNotFound(f"no run {run_id!r} in the checkpoint store")
        waiting = any(task.interrupts for task in snapshot.tasks)
        if snapshot.next and not waiting:
            self.graph.invoke(None, _config(run_id), context=self.context, durability="sync")
        return self.status(run_id)

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


def new_run_id() -> str:
    return "run-" + uuid.uuid4().hex[:12]


def _config(run_id: str) -> Any:
    return {"configurable": {"thread_id": run_id}}
