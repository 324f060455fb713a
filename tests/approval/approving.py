"""Answer a paused run in a process of its own, optionally dying as a step begins.

``python -m tests.approval.approving SETTINGS.json RUN_ID ANSWER.json [--die-before STEP]``:
settings as JSON (``Settings.model_validate``), the answer as JSON. With ``--die-before act``
the process ends with ``os._exit`` the moment ``act`` starts: no cleanup, no exception
handling, as if killed, after the checkpoints before that step were written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from diagnose import wiring
from diagnose.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("settings", type=Path)
    parser.add_argument("run_id")
    parser.add_argument("answer", type=Path)
    parser.add_argument("--die-before", default=None)
    args = parser.parse_args()
    settings = Settings.model_validate(json.loads(args.settings.read_text(encoding="utf-8")))

    def progress(message: str) -> None:
        if args.die_before and message == f"{args.die_before}…":
            os._exit(137)

    with wiring.open_agent(settings, progress=progress) as agent:
        agent.resume(args.run_id, json.loads(args.answer.read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
