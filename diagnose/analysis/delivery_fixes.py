"""Fixes through the delivery tool that made the change (docs/changes.md).

When Helm, Argo CD or Flux applied the culprit change, undoing it behind the tool's back does not
last: the next ``helm upgrade`` or sync puts it back, and a values-only change has no
ReplicaSet revision to roll back to at all. So a deploy hypothesis whose change is a Helm
release revision (``helm/orders-api@2``), an Argo CD sync (``application/shop-orders@12``),
or a rollout one of them applied, is fixed with the tool's own rollback to the sync before:

- ``helm_rollback``: ``helm rollback RELEASE N``. Every object of the release goes back to
  revision N's manifest and values, and Helm records a new revision.
- ``argocd_rollback``: ``argocd app rollback APP ID``, to the history entry before. Argo CD
  refuses it while the Application syncs automatically, and automated sync would undo it
  anyway: then the fix is to revert the synced commits in Git and let Argo CD sync that.
- ``flux_revert``: Flux has no rollback of its own and re-applies its source at every
  reconciliation, so what a Flux Kustomization or HelmRelease applied is reverted in Git
  (the commits OLD..NEW of its GitRepository) and reconciled with ``flux reconcile …
  --with-source``; ``flux suspend`` and a ``kubectl rollout undo`` is the quick stop, until
  the revert is in. A Helm release helm-controller manages is reverted the same way: a bare
  ``helm rollback`` is upgraded away at its next reconciliation.

A ConfigMap or Secret a delivery manages (it lists it, or the object's labels name it) is
likewise reverted at its source by ``config_revert``: the synced commits reverted in the
delivery's repository and synced again, or ``helm rollback``; never a ``kubectl`` edit first.

The agent runs none of these (it holds no Helm, Argo CD or Flux credentials, and none of the
tools has a server-side dry run it could ask the API server for): each is a command for a
human, with the tool's own preview as its dry run.
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
_SYNC_REF = re.compile(
    r"^(?P<kind>helm|application|kustomization|helmrelease)/(?P<name>[a-z0-9.-]+)@(?P<id>[0-9a-f]+)$"
)
_TOOL_OF = {
    "helm": delivery.HELM,
    "application": delivery.ARGOCD,
    "kustomization": delivery.FLUX_KUSTOMIZATION,
    "helmrelease": delivery.FLUX_HELMRELEASE,
}
_FLUX = {delivery.FLUX_KUSTOMIZATION: "kustomization", delivery.FLUX_HELMRELEASE: "helmrelease"}
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
    """The sync a change names (``helm/NAME@N``, ``application/NAME@ID``,
    ``kustomization/NAME@COMMIT``, ``helmrelease/NAME@N``) or that applied it (a rollout
    ``deployment/NAME@R``, ``commits.delivered_by``), with the sync before it; a Helm release
    a Flux HelmRelease manages is that HelmRelease's. None when no such sync, or no sync
    before it, is on record."""
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
    at = next((i for i, s in enumerate(syncs) if _is_sync(s, sync_id)), None)
    if not at:  # not found, or the first on record: nothing to go back to
        return None
    if tool == delivery.HELM:  # Helm's own records (Flux keeps fewer), Flux's HelmRelease
        item = _flux_release(item, deliveries=deliveries) or item
    return Synced(item=item, sync=syncs[at], previous=syncs[at - 1])


def _is_sync(sync: Item, sync_id: str) -> bool:
    """``sync_id`` names this sync: its id, or (a Kustomization's ref) its commit's prefix."""
    commit = str(sync.get("commit") or "")
    return str(sync.get("id")) == sync_id or (len(sync_id) >= 7 and commit.startswith(sync_id))


def _flux_release(release: Item, *, deliveries: Sequence[Item]) -> Item | None:
    """The Flux HelmRelease that manages a Helm release: one deploying to its namespace whose
    release name (``[targetNamespace-]name``, Flux's default) is the release's."""
    name, namespace = release.get("name"), release.get("namespace")
    for item in deliveries:
        if item.get("tool") != delivery.FLUX_HELMRELEASE:
            continue
        target, own = item.get("target_namespace"), item.get("namespace")
        names = {item.get("name"), f"{target}-{item.get('name')}" if target != own else None}
        if target == namespace and name in names:
            return item
    return None


def fix_for(
    hypothesis: models.Hypothesis,
    synced: Synced,
    *,
    index: int,
    verify: str,
    deliveries: Sequence[Item] = (),
) -> models.Fix | None:
    """The delivery tool's rollback for a hypothesis whose change it made (None: a name that
    cannot go into a command). ``deliveries``: all those read, where a HelmRelease's values
    commit is looked up (the Kustomization that applied it)."""
    if not _NAME.match(synced.name) or not _NAME.match(str(synced.item.get("namespace") or "")):
        return None
    if synced.item.get("tool") == delivery.HELM:
        return _helm_rollback(hypothesis, synced, index=index, verify=verify)
    if synced.item.get("tool") in _FLUX:
        return _flux_revert(hypothesis, synced, index=index, verify=verify, deliveries=deliveries)
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
            f"deployed {_recovers(verify, hypothesis=hypothesis, namespace=namespace)}. A human "
            "runs it: the agent runs no Helm command, and --dry-run is Helm's own preview"
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
    target = str(synced.item.get("target_namespace") or namespace)
    proof = (
        f"It worked when `argocd app get {app}{flag}` shows revision {old[:7] or before['id']} "
        f"synced and healthy {_recovers(verify, hypothesis=hypothesis, namespace=target)}. A "
        "human runs it: the agent runs no Argo CD command"
    )
    scope = f"every resource of Application {app} goes back, not only {hypothesis.component}"
    if synced.item.get("auto_sync") and old and new:
        repository = str(synced.item.get("repository") or "its repository")
        clone = f"git -C <a clone of {repository}>"
        command = (
            f"{clone} revert --no-edit {old}..{new} && {clone} push && argocd app sync {app}{flag}"
        )
        return models.Fix(
            id=f"fix-{index + 1}",
            kind="argocd_rollback",
            target=f"application/{app}",
            command=command,
            dry_run=f"{clone} diff {new} {old} -- {synced.item.get('path') or '.'}",
            rollback=f"{clone} revert --no-edit <the revert commit> && {clone} push && "
            f"argocd app sync {app}{flag}",
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


def _recovers(verify: str, *, hypothesis: models.Hypothesis, namespace: str) -> str:
    """The last check that a fix worked: the verify query, or with none (no metrics were
    read) the workload's rollout status."""
    if verify:
        return "and the verify query recovers"
    where = f" -n {namespace}" if _NAME.match(namespace) else ""
    return (
        f"and `kubectl rollout status deployment/{hypothesis.component}{where}` completes "
        "(there is no verify query: no metrics were read, so check the alert clears too)"
    )


# --- Flux: revert in Git, reconcile ---------------------------------------------------------

VALUES_APPLIED_S = 15 * 60
"""A Kustomization sync at most this many seconds before a HelmRelease's upgrade applied the
HelmRelease's new values (as ``diagnose.analysis.changes.SYNC_LEAD``)."""


@dataclass(frozen=True)
class _Source:
    """Where the reverted commits live and what applies them again."""

    repository: str
    path: str
    old: str
    new: str
    reconcile: str


def _flux_revert(
    hypothesis: models.Hypothesis,
    synced: Synced,
    *,
    index: int,
    verify: str,
    deliveries: Sequence[Item],
) -> models.Fix:
    item, name = synced.item, synced.name
    kind, home = _FLUX[str(item["tool"])], str(item["namespace"])
    target = str(item.get("target_namespace") or home)
    source = _flux_source(synced, deliveries=deliveries)
    clone = f"git -C <a clone of {source.repository}>"
    span = f"{source.old}..{source.new}" if source.old else "<the commit that changed it>"
    command = f"{clone} revert --no-edit {span} && {clone} push && {source.reconcile}"
    quick = _quick_stop(hypothesis, synced, kind=kind, target=target)
    what = (
        f"the commits {source.old[:7]}..{source.new[:7]} are reverted in {source.repository}"
        if source.old
        else f"the commit that changed {kind} {name} is reverted (it is not on record: "
        "find it in the repository's log)"
    )
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="flux_revert",
        target=f"{kind}/{name}",
        command=command,
        dry_run=(
            f"{clone} diff {source.new} {source.old} -- {source.path}"
            if source.old
            else f"{clone} log -p -- {source.path}"
        ),
        rollback=f"{clone} revert --no-edit <the revert commit> && {clone} push && "
        f"{source.reconcile}",
        verify=verify,
        risk=fixes.CATALOGUE.kind("flux_revert").risk,
        blast_radius=(
            f"everything {kind} {name} applies from those commits goes back, not only "
            f"{hypothesis.component}: {what}. Flux re-applies its source at every "
            f"reconciliation, so {_undone_by_flux(kind)}: revert it in Git. {quick} It worked "
            f"when `flux get {kind} {name} -n {home}` shows the revert commit applied "
            f"{_recovers(verify, hypothesis=hypothesis, namespace=target)}. A human runs it: "
            "the agent changes no repository and runs no Flux command"
        ),
        hypothesis=index,
        action=None,
    )


def _undone_by_flux(kind: str) -> str:
    if kind == "kustomization":
        return "a `kubectl rollout undo` behind its back is re-applied at the next one"
    return (
        "a `helm rollback` alone is undone by helm-controller: the release no longer matches "
        "the HelmRelease's values, and drift detection or its next upgrade puts them back"
    )


def _quick_stop(hypothesis: models.Hypothesis, synced: Synced, *, kind: str, target: str) -> str:
    """Suspend, then undo behind Flux's back: faster than a push, and lasting only while
    suspended."""
    name, home = synced.name, str(synced.item["namespace"])
    where = f" -n {target}"
    if kind == "kustomization":
        undo = f"kubectl rollout undo deployment/{hypothesis.component}{where}"
    else:
        release = name if target == home else f"{target}-{name}"
        undo = f"helm rollback {release} {synced.previous.get('id')}{where} --wait"
    return (
        f"The quickest stop, before the revert is in: `flux suspend {kind} {name} -n {home} "
        f"&& {undo}`; then `flux resume {kind} {name} -n {home}` once the revert is pushed, "
        "or Flux applies nothing more to it."
    )


def _flux_source(synced: Synced, *, deliveries: Sequence[Item]) -> _Source:
    """A Kustomization's own commits; a HelmRelease's values come from the Kustomization that
    applied it (its sync shortly before), reconciled first."""
    item, name = synced.item, synced.name
    home = str(item["namespace"])
    own = f"flux reconcile {_FLUX[str(item['tool'])]} {name} -n {home} --with-source"
    if item.get("tool") == delivery.FLUX_KUSTOMIZATION:
        old, new = _commit(synced.previous), _commit(synced.sync)
        repository = str(item.get("repository") or "")
        if old and new and repository:
            return _Source(repository, str(item.get("path") or "."), old, new, own)
        return _Source(repository or f"the repository {name} applies", ".", "", "", own)
    applier = _values_applier(item, synced.sync, deliveries=deliveries)
    if applier is None:
        return _Source(f"the repository that holds HelmRelease {name}", ".", "", "", own)
    ks, (before, after) = applier
    where = f" -n {ks['namespace']}" if _NAME.match(str(ks.get("namespace") or "")) else ""
    reconcile = (
        f"flux reconcile kustomization {ks['name']}{where} --with-source && "
        f"flux reconcile helmrelease {name} -n {home}"
    )
    old, new = _commit(before), _commit(after)
    return _Source(str(ks["repository"]), str(ks.get("path") or "."), old, new, reconcile)


def _values_applier(
    release: Item, sync: Item, *, deliveries: Sequence[Item]
) -> tuple[Item, tuple[Item, Item]] | None:
    """The Kustomization (with a repository) whose sync, with the one before it, applied a
    HelmRelease's upgrade: it deploys where the HelmRelease lives and synced at most
    :data:`VALUES_APPLIED_S` before the upgrade."""
    upgraded = str(sync.get("at") or "")
    if not upgraded:
        return None
    at = models.parse_time(upgraded)
    for item in deliveries:
        if item.get("tool") != delivery.FLUX_KUSTOMIZATION or not item.get("repository"):
            continue
        if not _NAME.match(str(item.get("name") or "")):
            continue
        if release.get("namespace") not in (item.get("target_namespace"), item.get("namespace")):
            continue
        syncs = list(item.get("syncs") or [])
        for i in range(len(syncs) - 1, 0, -1):
            done = str(syncs[i].get("at") or "")
            lead = (at - models.parse_time(done)).total_seconds() if done else -1.0
            if 0 <= lead <= VALUES_APPLIED_S and _commit(syncs[i]) and _commit(syncs[i - 1]):
                return item, (syncs[i - 1], syncs[i])
    return None


# --- a ConfigMap or Secret a delivery manages ---------------------------------------------

SYNC_APPLIES_S = 120
"""A sync within this many seconds of a config's last write made that write (as
``diagnose.analysis.changes.SYNC_APPLIES``)."""

_LISTED = {
    delivery.ARGOCD: "the Application's status.resources lists it",
    delivery.FLUX_KUSTOMIZATION: "the Kustomization's inventory lists it",
    delivery.HELM: "the release's manifest holds it",
}
_MARKS = (
    (delivery.ARGOCD, "argocd.argoproj.io/instance"),
    (delivery.FLUX_KUSTOMIZATION, "kustomize.toolkit.fluxcd.io/name"),
    (delivery.FLUX_HELMRELEASE, "helm.toolkit.fluxcd.io/name"),
    (delivery.HELM, "meta.helm.sh/release-name"),
)
"""The label or annotation that names the delivery managing an object, by tool."""
_TOOL_WORDS = {
    delivery.ARGOCD: "Argo CD Application",
    delivery.FLUX_KUSTOMIZATION: "Flux Kustomization",
    delivery.FLUX_HELMRELEASE: "Flux HelmRelease",
    delivery.HELM: "Helm release",
}


@dataclass(frozen=True)
class Owner:
    """The delivery that manages a ConfigMap or Secret, how we know, and its payload when
    it was read."""

    tool: str
    name: str
    how: str
    item: Item | None

    def describe(self) -> str:
        return f"{_TOOL_WORDS[self.tool]} {self.name} ({self.how})"


def config_owner(config: Item, *, deliveries: Sequence[Item]) -> Owner | None:
    """The delivery managing a ConfigMap or Secret: one that lists it, else the one its
    labels or annotations name (``argocd.argoproj.io/instance``,
    ``kustomize.toolkit.fluxcd.io/name``, ``helm.toolkit.fluxcd.io/name``, Helm's
    ``meta.helm.sh/release-name`` or ``app.kubernetes.io/managed-by: Helm`` with its
    ``app.kubernetes.io/instance``); None when nothing says so."""
    ref, namespace = f"{config.get('kind')}/{config.get('name')}", config.get("namespace")
    for item in deliveries:
        where = {item.get("target_namespace"), item.get("namespace")}
        if ref in (item.get("configs") or []) and (not namespace or namespace in where):
            how = _LISTED.get(str(item.get("tool")), "it lists it")
            return Owner(str(item["tool"]), str(item.get("name")), how, item)
    marks = {**(config.get("labels") or {}), **(config.get("annotations") or {})}
    if marks.get("app.kubernetes.io/managed-by") == "Helm":
        marks.setdefault("meta.helm.sh/release-name", marks.get("app.kubernetes.io/instance"))
    for tool, key in _MARKS:
        name = str(marks.get(key) or "")
        if name:
            read = next(
                (d for d in deliveries if (d.get("tool"), d.get("name")) == (tool, name)), None
            )
            return Owner(tool, name, f"{key}: {name}", read)
    return None


def config_fix(
    hypothesis: models.Hypothesis,
    owner: Owner,
    config: Item,
    *,
    index: int,
    namespace: str,
    verify: str,
) -> models.Fix:
    """``config_revert`` through the delivery that manages the config: revert the commits its
    sync applied in its repository (or ``helm rollback``), never a ``kubectl`` edit first,
    which its next sync would undo."""
    target = f"{config.get('kind')}/{config.get('name')}"
    ns = f" -n {namespace}" if namespace else ""
    restart = f"kubectl rollout restart deployment/{hypothesis.component}{ns}"
    steps = _revert_steps(owner, config=config)
    why = (
        f"{target} is managed by {owner.describe()}: a kubectl edit or apply of it would be "
        f"undone by the next sync, so the change is undone at its source; {steps.scope}; "
        f"every workload that mounts {target} restarts. It worked when {steps.proof} and "
        f"`kubectl get {target}{ns} -o yaml` shows the values before the change. A human "
        "runs it: the agent changes no repository, ConfigMap or delivery"
    )
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="config_revert",
        target=target,
        command=f"{steps.command} && {restart}",
        dry_run=steps.preview,
        rollback=f"{steps.undo} && {restart}",
        verify=verify,
        risk=fixes.CATALOGUE.kind("config_revert").risk,
        blast_radius=why,
        hypothesis=index,
        action=None,
    )


@dataclass(frozen=True)
class _Steps:
    command: str
    preview: str
    undo: str
    scope: str
    proof: str


def _revert_steps(owner: Owner, *, config: Item) -> _Steps:
    pair = _syncs_around(owner.item, at=str(config.get("updated") or "")) if owner.item else None
    name = owner.name if _NAME.match(owner.name) else "<name>"
    home = str((owner.item or {}).get("namespace") or "")
    home = home if _NAME.match(home) else ""
    where, sync = f" -n {home}" if home else "", _resync(owner.tool, name, home=home)
    if owner.tool == delivery.HELM and pair is not None:
        before, now = str(pair[0].get("id")), str(pair[1].get("id"))
        return _Steps(
            command=f"helm rollback {name} {before}{where} --wait",
            preview=f"helm rollback {name} {before}{where} --dry-run",
            undo=f"helm rollback {name} {now}{where} --wait",
            scope=f"every object of release {name} goes back to revision {before}",
            proof=f"`helm history {name}{where}` shows 'Rollback to {before}' deployed",
        )
    old, new = (_commit(s) for s in pair) if pair else ("", "")
    repository = str((owner.item or {}).get("repository") or "")
    if not (old and new and repository):
        clone = f"git -C <a clone of the repository {name} applies>"
        return _Steps(
            command=f"{clone} revert --no-edit <the commit that changed it> && {clone} push "
            f"&& {sync}",
            preview=f"{clone} show <the commit that changed it>",
            undo=f"{clone} revert --no-edit <the revert commit> && {clone} push && {sync}",
            scope=f"what that commit changed goes back, not only {config.get('name')}",
            proof=f"{sync} reports the revert applied",
        )
    path = (owner.item or {}).get("path") or "."
    clone = f"git -C <a clone of {repository}>"
    return _Steps(
        command=f"{clone} revert --no-edit {old}..{new} && {clone} push && {sync}",
        preview=f"{clone} diff {new} {old} -- {path}",
        undo=f"{clone} revert --no-edit <the revert commit> && {clone} push && {sync}",
        scope=(
            f"revert the commits {old[:7]}..{new[:7]} in {repository} (what the sync applied): "
            f"everything they changed goes back, not only {config.get('name')}"
        ),
        proof=f"`{sync}` applies the revert commit",
    )


def _resync(tool: str, name: str, *, home: str) -> str:
    """The command that makes the delivery apply its source now (``home``: where it lives)."""
    where = f" -n {home}" if home else ""
    if tool == delivery.ARGOCD:
        flag = "" if home in ("", "argocd") else f" --app-namespace {home}"
        return f"argocd app sync {name}{flag}"
    if tool == delivery.FLUX_HELMRELEASE:
        return f"flux reconcile helmrelease {name}{where} --with-source"
    if tool == delivery.FLUX_KUSTOMIZATION:
        return f"flux reconcile kustomization {name}{where} --with-source"
    return f"helm upgrade {name} with the reverted values"


def _commit(sync: Item) -> str:
    commit = str(sync.get("commit") or "")
    return commit if _COMMIT.match(commit) else ""


def _syncs_around(item: Item, *, at: str) -> tuple[Item, Item] | None:
    """The sync that wrote the config (within :data:`SYNC_APPLIES_S` of its last write, else
    the latest) and the one before it."""
    syncs = list(item.get("syncs") or [])
    if len(syncs) < 2:
        return None
    when = models.parse_time(at) if at else None
    for i in range(len(syncs) - 1, 0, -1):
        done = str(syncs[i].get("at") or "")
        if when is None or not done:
            break
        if abs((models.parse_time(done) - when).total_seconds()) <= SYNC_APPLIES_S:
            return syncs[i - 1], syncs[i]
    return syncs[-2], syncs[-1]
