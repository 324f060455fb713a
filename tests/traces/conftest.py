"""Fixtures for the trace tests: generated OTLP/JSON and the lab's trace server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnose.lab import traceapi
from tests.traces import otlp_gen


@pytest.fixture(scope="session")
def otlp_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One OTLP/JSON document per fault, each covering the baseline and incident windows."""
    folder = tmp_path_factory.mktemp("otlp")
    return {fault: otlp_gen.write_document(fault, folder) for fault in otlp_gen.FAULTS}


@pytest.fixture(scope="session")
def lab(
    otlp_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[traceapi.TraceApiServer]:
    """The lab's trace server over the canary document (errors, two versions, a database)."""
    workdir = tmp_path_factory.mktemp("traceapi")
    with traceapi.TraceApiServer.serve([otlp_files["canary"]], workdir=workdir) as server:
        yield server
