"""The progress line and the error exit every command (the CLI, ``serve``, ``worker``) shares."""

from __future__ import annotations

import pytest
import typer

from diagnose import console
from diagnose.domain import errors


def test_progress_is_one_line_with_outside_text_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A long progress message stays one line on stderr, its brackets shown, not read as markup."""
    message = "the model said [bold]all fixed[/bold] " + "x" * 300
    console.progress(message)
    assert capsys.readouterr().err == f"· {message}\n"


def test_our_errors_end_the_command_with_their_message_and_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A DiagnoseError becomes ``error: MESSAGE`` on stderr (as written) and exit code 1."""
    with pytest.raises(typer.Exit) as ended, console.failures():
        raise errors.ConfigurationError("set DIAGNOSE_PROMETHEUS_URL [or start the lab]")
    assert ended.value.exit_code == console.EXIT_UNUSABLE == 1
    assert capsys.readouterr().err == "error: set DIAGNOSE_PROMETHEUS_URL [or start the lab]\n"


def test_our_own_bugs_are_not_turned_into_an_exit_code() -> None:
    """Any other exception leaves as it is, with its traceback."""
    with pytest.raises(KeyError), console.failures():
        raise KeyError("a bug")
