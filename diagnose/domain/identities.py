"""Who approved: typed names compared as people mean them, and the accounts behind them.

An approval records the name its approver typed (or the API token's user), and, when it came
through the command line, the operating-system account that ran it (``user@host``) and, through
``kubectl diagnose``, the Kubernetes user of the kubeconfig's current context. Two approvals are
the same person when their names are equal once normalised, or when they share an OS account or
a Kubernetes user: the two-person rule counts people, not spellings. Pure functions.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ACCOUNTS = (("os_user", "OS account"), ("kube_user", "Kubernetes user"))
"""The accounts an approval may record beside the typed name, and what to call each."""


def normalise(name: str) -> str:
    """A name as compared: Unicode NFKC (full-width letters become ASCII), invisible format
    characters dropped, case-folded, trimmed, inner runs of white space made one space."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


@dataclass(frozen=True)
class Approver:
    """One approval's identity: the name as compared, and the accounts it was given from."""

    name: str
    os_user: str = ""
    kube_user: str = ""

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Approver:
        """From a decision's dict (``approver``, and ``os_user``/``kube_user`` when recorded)."""
        return cls(
            name=normalise(str(record.get("approver") or "")),
            os_user=str(record.get("os_user") or ""),
            kube_user=str(record.get("kube_user") or ""),
        )

    def shared_with(self, other: Approver) -> str:
        """What makes ``other`` the same person ("" when nothing does)."""
        if self.name == other.name:
            return f"the name {self.name!r}"
        for key, label in ACCOUNTS:
            mine, theirs = getattr(self, key), getattr(other, key)
            if mine and mine == theirs:
                return f"the {label} {mine!r}"
        return ""


def people(records: Sequence[Mapping[str, Any]]) -> int:
    """How many different people gave these approvals (a record sharing a name or an account
    with an earlier one is not counted again)."""
    seen: list[Approver] = []
    for record in records:
        approver = Approver.of(record)
        if not any(approver.shared_with(other) for other in seen):
            seen.append(approver)
    return len(seen)
