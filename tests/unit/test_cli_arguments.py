"""The kubectl plugin reads arguments in kubectl's order: a leading KIND/NAME is a target."""

from __future__ import annotations

from diagnose import cli


def test_a_leading_resource_means_run() -> None:
    assert cli.kubectl_arguments(["deploy/checkout", "-n", "shop"]) == [
        "run",
        "deploy/checkout",
        "-n",
        "shop",
    ]


def test_commands_and_options_are_left_alone() -> None:
    for argv in (["run", "deploy/checkout"], ["approve", "run-1"], ["--incident", "P1"], []):
        assert cli.kubectl_arguments(argv) == argv


def test_a_path_is_not_a_resource() -> None:
    assert cli.kubectl_arguments(["/etc/passwd"]) == ["/etc/passwd"]
