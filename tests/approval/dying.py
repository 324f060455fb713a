"""Answer a paused run in a process of its own that kills itself (SIGKILL) at an exact point
around the approval step, where a random kill lands only now and then.

``python -m tests.approval.dying SETTINGS.json RUN_ID ANSWER.json POINT``, POINT one of:

- ``approval-recorded``: as the audit log has recorded the approval, before the step's own
  output is saved (the audit log, wrapped, kills the process after the real append);
- ``step-saved``: after the approval step's output was saved, before the checkpoint that
  follows it (the checkpointer, wrapped, kills the process once it has saved that output).
  LangGraph then shows the run with no next step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from diagnose import wiring
from diagnose.domain import ports
from diagnose.settings import Settings
from graphs import checkpoints, runner


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@dataclasses.dataclass
class _AuditThenDie:
    real: ports.AuditLog

    def append(self, run_id: str, *, kind: str, key: str, entry: Mapping[str, Any]) -> None:
        self.real.append(run_id, kind=kind, key=key, entry=entry)
        if kind == "approval":
            _die()

    def entries(self, run_id: str | None = None) -> list[dict[str, Any]]:
        return self.real.entries(run_id)


class _SaverThatDies(SqliteSaver):
    """Saves the approval step's output, then dies: before the checkpoint after it."""

    def put_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        super().put_writes(config, writes, task_id, task_path)
        if any(channel == "decision" for channel, _ in writes):
            _die()


def main() -> int:
    path, run_id, answer_path, point = sys.argv[1:5]
    settings = Settings.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    answer = json.loads(Path(answer_path).read_text(encoding="utf-8"))
    saver_class = _SaverThatDies if point == "step-saved" else SqliteSaver
    saver = saver_class(
        sqlite3.connect(settings.checkpoint_path, check_same_thread=False),
        serde=checkpoints.strict_serde(),
    )
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        context = agent.context
        if point == "approval-recorded":
            assert context.audit is not None
            context = dataclasses.replace(context, audit=_AuditThenDie(context.audit))
        runner.Agent(context=context, checkpointer=saver).resume(run_id, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
