"""Log templates, and the port through which the core reads pod logs (the Kubernetes API, Loki).

Whatever the back end, a connector hands back one :class:`LogPayload` per pod it read: the pod's
lines grouped by template (Drain3 mines them; variables become ``<*>``), each template with the
time of every line read, the trace id each line names, and a few redacted examples. Raw lines
never travel further than the connector: what reaches the bundle, the analysis and a model is
templates, times, trace ids and redacted examples. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypedDict

from diagnose.domain.models import Evidence, Window

SOURCE = "logs"
"""The ``source`` of every piece of log evidence."""


class TemplatePayload(TypedDict):
    """The lines of one pod that share a template."""

    template: str  # Drain3's template, variables masked (``<*>``, ``<NUM>``, ``<HEX>``…)
    error: bool  # its lines are errors (by level: error, fatal, critical…), or an exception
    warning: bool  # its lines are warnings (by level), not errors
    exception: bool  # an exception or a stack trace (the block counts as one line)
    times: list[float]  # seconds since the epoch, one per line read
    traces: list[str]  # the trace id each line names ("" when it names none), as ``times``
    examples: list[str]  # up to three lines as read, redacted


class LogPayload(TypedDict):
    """One pod's log as read (``Evidence.raw`` of a log read)."""

    service: str  # the workload the pod belongs to
    pod: str
    container: str  # "" when the pod's only container
    previous: bool  # the last terminated instance of the container (it restarted)
    incident_from: str  # RFC 3339: lines before it are the baseline, from it the incident
    lines: int  # lines read
    bytes: int  # bytes read
    dropped: int  # lines left out by the bounds (lines, bytes, total)
    first: float | None  # the first and last line's time: what the read covers
    last: float | None
    templates: list[TemplatePayload]


class LogSource(Protocol):
    """Pod logs of one namespace (``connectors.logs``): the Kubernetes API or Loki."""

    def read_logs(
        self,
        *,
        namespace: str,
        window: Window,
        incident_from: datetime,
        services: Sequence[str] = (),
    ) -> list[Evidence]:
        """Each pod's log over ``window`` as templates (one record per pod, raw
        :class:`LogPayload`), the baseline before ``incident_from`` and the incident from it.
        ``services`` come first (the alerted one); the other workloads of the namespace follow
        while the bounds allow. A source that refuses or fails is a record with that status."""
        ...
