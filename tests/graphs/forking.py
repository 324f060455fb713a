"""Start ``diagnose`` commands fast enough to kill dozens of them: a process that imports the
CLI once, then forks a child per command.

``python -m tests.graphs.forking``, then JSON lines on stdin, one answer line on stdout each:

- ``{"argv": [...], "env": {...}, "log": PATH}``: fork a child that runs ``diagnose ARGV``
  with exactly that environment, stdout and stderr to ``log``; answers ``{"pid": PID}``.
- ``{"wait": PID}``: wait for that child; answers ``{"status": N}`` (its exit code, or minus
  the signal that ended it).

Each child is the real command in a process of its own (its own checkpoint, audit and lab
connections, opened after the fork): the test kills it with SIGKILL like any process. The
import (seconds on a busy machine) is paid once instead of once per command.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from typing import Any

from diagnose import cli


def _child(request: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(request["env"])
    fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    code = 0
    try:
        cli.app(args=request["argv"], prog_name="diagnose", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a crash: shown, and never back into the server's loop
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    assert threading.active_count() == 1, "fork needs a single-threaded parent"
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            _, status = os.waitpid(int(request["wait"]), 0)
            answer = {"status": os.waitstatus_to_exitcode(status)}
        else:
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer = {"pid": pid}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
