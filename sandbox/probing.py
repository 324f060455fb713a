"""The sandbox as the probe connector sees it: one object implementing
:class:`diagnose.domain.database.ProbeSandbox`, handed to ``connectors.postgres`` by the
composition root (the two packages never import each other).

It bundles the first gate (:mod:`sandbox.gating`), the redaction of results
(:mod:`sandbox.redacting`) and the probe catalogue (:mod:`sandbox.catalogue`). The session gate
(read-only transaction, timeouts, rollback) lives in the connector, and the least-privilege role
in ``deploy/sql/diagnose-role.sql``: each layer holds when another one fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from diagnose.domain import database
from diagnose.domain.models import Evidence
from sandbox import catalogue, gating, redacting


class Sandbox:
    """The gate, redaction and the catalogue, behind the connector's port."""

    def __init__(self, probes: catalogue.Catalogue | None = None) -> None:
        self.catalogue = probes or catalogue.load()

    def check(self, sql: str) -> database.Approved:
        return gating.check(sql)

    def generic_plan(self, statement: str, *, server_version: int) -> database.Approved:
        return gating.generic_plan(statement, server_version=server_version)

    def resolve(self, approved: database.Approved, *, visible: Sequence[database.Visible]) -> None:
        gating.resolve(approved, visible=visible)

    def bounded(
        self,
        approved: database.Approved,
        *,
        columns: Sequence[database.Column],
        limits: database.Limits,
    ) -> str:
        return gating.bounded(approved, columns=columns, limits=limits)

    def redact(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        limits: database.Limits,
        more: bool,
    ) -> database.Table:
        return redacting.redact_table(columns, rows, limits=limits, more=more)

    def probes(self, *, server_version: int) -> list[database.Probe]:
        return self.catalogue.for_server(server_version)

    def suspects(self, evidence: Sequence[Evidence]) -> list[str]:
        chosen = [e for e in evidence if _probe_name(e) in self.catalogue.explain_from]
        return catalogue.suspect_statements(chosen, limit=self.catalogue.explain_max)


def _probe_name(item: Evidence) -> str | None:
    raw = item.raw
    return str(raw.get("probe")) if isinstance(raw, dict) else None
