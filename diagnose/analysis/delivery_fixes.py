"""Fixes through the delivery tool that made the change (docs/changes.md).

When Helm or Argo CD applied the culprit change, undoing it behind the tool's back does not
last: the next ``helm upgrade`` or sync puts it back, and a values-only change has no
ReplicaSet revision to roll back to at all. So a deploy hypothesis whose change is a Helm
release revision (``helm/orders-api@2``), an Argo CD sync (``application/shop-orders@12``),
or a rollout one of them applied, is fixed with the tool's own rollback to the sync before:

- ``helm_rollback``: ``helm rollback RELEASE N``. Every object of the release goes back to
  revision N's manifest and values, and Helm records a new revision.
- ``argocd_rollback``: ``argocd app rollback APP ID``, to the history entry before. Argo CD
  refuses it while the Application syncs automatically, and automated sync would undo it
  anyway: then the fix is to revert the synced commits in Git and let Argo CD sync that.

The agent runs neither (it holds no Helm or Argo CD credentials, and neither tool has a
server-side dry run it could ask the API server for): each is a command for a human, with the
tool's own preview as its dry run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagnose.analysis import commits
from diagnose.domain import delivery, fixes, models

Item = Mapping[str, Any]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SYNC_REF = re.compile(r"^(?P<kind>helm|application)/(?P<name>[a-z0-9.-]+)@(?P<id>\d+)$")
_TOOL_OF = {"helm": delivery.HELM, "application": delivery.ARGOCD}
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True)
class Synced:
    """The delivery behind a change, the sync that made it and the sync before it."""

    item: Item
    sync: Item
    previous: Item

    @property
    def name(self) -> str:
        return str(self.item.get("name") or "")


def synced_change(
    change: str | None,
    *,
    deliveries: Sequence[Item],
    replicasets: Sequence[Item] = (),
) -> Synced | None:
    """The Helm or Argo CD sync a change names (``helm/NAME@N``, ``application/NAME@ID``) or
    that applied it (a rollout ``deployment/NAME@R``, ``commits.delivered_by``), with the sync
    before it; None when no such sync, or no sync before it, is on record."""
    found = _SYNC_REF.match(change or "")
    if found:
        tool, name, sync_id = _TOOL_OF[found["kind"]], found["name"], found["id"]
    else:
        applied = commits.delivered_by(replicasets, deliveries=deliveries).get(change or "")
        if applied is None:
            return None
        tool, name, sync_id = applied.tool, applied.name, applied.id
    item = next((d for d in deliveries if (d.get("tool"), d.get("name")) == (tool, name)), None)
    if item is None or tool not in _TOOL_OF.values():
        return None
    syncs = list(item.get("syncs") or [])
    at = next((i for i, s in enumerate(syncs) if str(s.get("id")) == sync_id), None)
    if not at:  # not found, or the first on record: nothing to go back to
        return None
    return Synced(item=item, sync=syncs[at], previous=syncs[at - 1])


def fix_for(
    hypothesis: models.Hypothesis,
    synced: Synced,
    *,
    index: int,
    verify: str,
) -> models.Fix | None:
    """The delivery tool's rollback for a hypothesis whose change it made (None: a name that
    cannot go into a command)."""
    if not _NAME.match(synced.name) or not _NAME.match(str(synced.item.get("namespace") or "")):
        return None
    if synced.item.get("tool") == delivery.HELM:
        return _helm_rollback(hypothesis, synced, index=index, verify=verify)
    return _argocd_rollback(hypothesis, synced, index=index, verify=verify)


def _helm_rollback(
    hypothesis: models.Hypothesis, synced: Synced, *, index: int, verify: str
) -> models.Fix:
    release, namespace = synced.name, str(synced.item["namespace"])
    before, now = str(synced.previous.get("id")), str(synced.sync.get("id"))
    command = f"helm rollback {release} {before} -n {namespace} --wait"
    keys = [str(k) for k in synced.item.get("changed_keys") or []]
    changed = f" (it changed values {', '.join(keys[:8])})" if keys else ""
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="helm_rollback",
        target=f"helm/{release}",
        command=command,
        dry_run=f"helm rollback {release} {before} -n {namespace} --dry-run",
        rollback=f"helm rollback {release} {now} -n {namespace} --wait",
        verify=verify,
        risk=fixes.CATALOGUE.kind("helm_rollback").risk,
        blast_radius=(
            f"every object of Helm release {release} in {namespace} goes back to revision "
            f"{before}'s manifest and values, not only {hypothesis.component}{changed}; its "
            f"pods restart where their template changes; Helm records a new revision. It "
            f"worked when `helm history {release} -n {namespace}` shows 'Rollback to {before}' "
            "deployed and the verify query recovers. A human runs it: the agent runs no Helm "
            "command, and --dry-run is Helm's own preview"
        ),
        hypothesis=index,
        action=None,
    )


def _argocd_rollback(
    hypothesis: models.Hypothesis, synced: Synced, *, index: int, verify: str
) -> models.Fix:
    app, namespace = synced.name, str(synced.item["namespace"])
    flag = "" if namespace == "argocd" else f" --app-namespace {namespace}"
    before, now = synced.previous, synced.sync
    old, new = (str(s.get("commit") or "") for s in (before, now))
    old, new = (c if _COMMIT.match(c) else "" for c in (old, new))
    proof = (
        f"It worked when `argocd app get {app}{flag}` shows revision {old[:7] or before['id']} "
        "synced and healthy and the verify query recovers. A human runs it: the agent runs no "
        "Argo CD command"
    )
    scope = f"every resource of Application {app} goes back, not only {hypothesis.component}"
    if synced.item.get("auto_sync") and old and new:
        repository = str(synced.item.get("repository") or "its repository")
        command = (
            f"git revert --no-edit {old}..{new} && git push  # in a clone of {repository}; "
            f"then: argocd app sync {app}{flag}"
        )
        return models.Fix(
            id=f"fix-{index + 1}",
            kind="argocd_rollback",
            target=f"application/{app}",
            command=command,
            dry_run=f"git diff {new} {old} -- {synced.item.get('path') or '.'}",
            rollback=f"git revert the revert commit && git push; then: argocd app sync {app}{flag}",
            verify=verify,
            risk=fixes.CATALOGUE.kind("argocd_rollback").risk,
            blast_radius=(
                f"{scope}: the commits {old[:7]}..{new[:7]} are reverted in {repository}. "
                f"Application {app} syncs automatically, so Argo CD refuses `argocd app "
                "rollback` and would re-apply the bad commit after one: revert it in Git. " + proof
            ),
            hypothesis=index,
            action=None,
        )
    command = f"argocd app rollback {app} {before['id']}{flag}"
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="argocd_rollback",
        target=f"application/{app}",
        command=command,
        dry_run=f"argocd app diff {app}{flag} --revision {old or before.get('revision')}",
        rollback=f"argocd app rollback {app} {now['id']}{flag}",
        verify=verify,
        risk=fixes.CATALOGUE.kind("argocd_rollback").risk,
        blast_radius=(
            f"{scope}: back to history {before['id']} ({old[:7] or before.get('revision')}); "
            f"the Application shows OutOfSync until the commit is reverted in Git (automated "
            f"sync is off; Argo CD refuses a rollback while it is on). " + proof
        ),
        hypothesis=index,
        action=None,
    )
