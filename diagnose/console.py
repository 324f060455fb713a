"""What every command shares on the terminal: the CLI's and the service's (``serve``,
``worker``) progress lines and error exits.

Progress and errors go to stderr, one line each however long (logs are grepped); outside
text in a message (a server's answer, a model's words) is shown as written, never read as
markup. Our deliberate errors (:class:`errors.DiagnoseError`) end the command with a one-line
message and exit code 1; any other exception is our bug and crashes with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich import markup
from rich.console import Console

from diagnose.domain import errors

EXIT_UNUSABLE = 1
"""The input or the settings were unusable."""

err = Console(stderr=True)


def progress(message: str) -> None:
    """One dim line on stderr."""
    err.print(f"[dim]· {markup.escape(message)}[/dim]", highlight=False, soft_wrap=True)


@contextmanager
def failures() -> Iterator[None]:
    """Turn our deliberate errors into a clear message and exit code 1."""
    try:
        yield
    except errors.DiagnoseError as exc:
        message = f"[bold red]error:[/bold red] {markup.escape(str(exc))}"
        err.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_UNUSABLE) from exc
