"""Non-blocking fixes for ranked hypotheses, from a fixed catalogue.

Only the catalogue's kinds exist (``diagnose.domain.fixes``); targets come from the hypothesis
and the cluster evidence, never from free text. Every fix carries the exact command, how to
undo it, the query that shows whether it worked, its risk and blast radius. None of them runs
without approval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from diagnose.analysis import delivery_fixes, state_fixes
from diagnose.domain import fixes, models

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_REF = re.compile(r"^(?P<kind>[a-z]+)/(?P<name>[a-z0-9.-]+)(?:@(?P<revision>\d+))?$")

MIN_CONFIDENCE = 0.05
"""A hypothesis the evidence barely supports (a change on a component that shows no anomaly,
a bystander on a bad node) gets no fix by default: proposing one invites approving the wrong
thing under pressure."""


def propose_fixes(
    hypotheses: Sequence[models.Hypothesis],
    *,
    namespace: str,
    replicasets: Sequence[Mapping[str, Any]] = (),
    verify_queries: Mapping[str, str] | None = None,
    limit: int = 3,
    sizing: Sizing | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    configs: Sequence[Mapping[str, Any]] = (),
    findings: Mapping[str, Mapping[str, Any]] | None = None,
    deliveries: Sequence[Mapping[str, Any]] = (),
) -> list[models.Fix]:
    """One fix (at most) per hypothesis, for the best ``limit`` hypotheses that reach
    ``min_confidence``. A namespace that is not a Kubernetes name gets no fix at all: commands
    are built from it. ``sizing`` (a playbook's fix templates) sizes scaling and raised limits
    within the catalogue's bounds. ``findings``: component → the Kubernetes-state finding its
    hypothesis came from (``diagnose.analysis.cluster.Finding.to_dict``). ``deliveries``: the
    Argo CD, Flux and Helm payloads read; a change one of them made is undone through it
    (``diagnose.analysis.delivery_fixes``)."""
    if namespace and not _NAME.match(namespace):
        return []
    proposed: list[models.Fix] = []
    for index, hypothesis in enumerate(hypotheses[:limit]):
        if hypothesis.confidence < min_confidence:
            continue
        verify = (verify_queries or {}).get(hypothesis.component, "")
        finding = (findings or {}).get(hypothesis.component)
        fix = (
            _for_finding(
                hypothesis, finding, index=index, namespace=namespace, rs=replicasets, verify=verify
            )
            or _through_delivery(
                hypothesis,
                index=index,
                namespace=namespace,
                rs=replicasets,
                configs=configs,
                deliveries=deliveries,
                verify=verify,
            )
            or _fix_for(
                hypothesis,
                index=index,
                namespace=namespace,
                replicasets=replicasets,
                verify=verify,
                sizing=sizing or Sizing(),
                configs=configs,
            )
        )
        if fix is not None:
            proposed.append(fix)
    return proposed


@dataclass(frozen=True)
class Sizing:
    """How big a scale-out or a limit raise is: a playbook's fix template parameters (None:
    the catalogue's default), always held within the catalogue's bounds. ``replicas``:
    deployment name → its recorded replica count (a non-default factor needs it to name a
    count)."""

    scale_factor: float | None = None
    limit_multiplier: float | None = None
    replicas: Mapping[str, int] = field(default_factory=dict)


def _through_delivery(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    rs: Sequence[Mapping[str, Any]],
    configs: Sequence[Mapping[str, Any]],
    deliveries: Sequence[Mapping[str, Any]],
    verify: str,
) -> models.Fix | None:
    """Helm's or Argo CD's own rollback when one of them made a deploy change, a revert at
    the source when a delivery manages the changed ConfigMap or Secret (undone behind its
    back, the next sync would put it back); None otherwise."""
    if hypothesis.kind is models.CauseKind.CONFIG:
        return _config_through_delivery(
            hypothesis,
            index=index,
            namespace=namespace,
            configs=configs,
            deliveries=deliveries,
            verify=verify,
        )
    if hypothesis.kind is not models.CauseKind.DEPLOY or not deliveries:
        return None
    synced = delivery_fixes.synced_change(hypothesis.change, deliveries=deliveries, replicasets=rs)
    if synced is None:
        return None
    return delivery_fixes.fix_for(
        hypothesis, synced, index=index, verify=verify, deliveries=deliveries
    )


def _config_through_delivery(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    configs: Sequence[Mapping[str, Any]],
    deliveries: Sequence[Mapping[str, Any]],
    verify: str,
) -> models.Fix | None:
    match = _REF.match(hypothesis.change or "")
    if not match or match["kind"] not in ("configmap", "secret"):
        return None
    config = next(
        (c for c in configs if (c.get("kind"), c.get("name")) == (match["kind"], match["name"])),
        {"kind": match["kind"], "name": match["name"], "namespace": namespace},
    )
    owner = delivery_fixes.config_owner(config, deliveries=deliveries)
    if owner is None:
        return None
    return delivery_fixes.config_fix(
        hypothesis, owner, config, index=index, namespace=namespace, verify=verify
    )


def _fix_for(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    replicasets: Sequence[Mapping[str, Any]],
    verify: str,
    sizing: Sizing,
    configs: Sequence[Mapping[str, Any]] = (),
) -> models.Fix | None:
    kind = hypothesis.kind
    if kind is models.CauseKind.DEPLOY and hypothesis.change:
        return _rollback(
            hypothesis, index=index, namespace=namespace, rs=replicasets, verify=verify
        )
    if kind is models.CauseKind.CONFIG and hypothesis.change:
        return _config_revert(
            hypothesis, index=index, namespace=namespace, verify=verify, configs=configs
        )
    if kind is models.CauseKind.RESOURCE and _is_scale_change(hypothesis.change):
        # capacity was taken away (replicas lowered): give it back, limits are not the issue
        return _scale(hypothesis, index=index, namespace=namespace, verify=verify, sizing=sizing)
    if kind is models.CauseKind.RESOURCE and hypothesis.change:
        return _raise_limits(
            hypothesis,
            index=index,
            namespace=namespace,
            rs=replicasets,
            verify=verify,
            multiplier=fixes.LIMIT_MULTIPLIER.bounded(sizing.limit_multiplier),
        )
    if kind is models.CauseKind.TRAFFIC:
        return _scale(hypothesis, index=index, namespace=namespace, verify=verify, sizing=sizing)
    return None  # a resource hog with no change behind it: no catalogue action fits safely


def _for_finding(
    hypothesis: models.Hypothesis,
    finding: Mapping[str, Any] | None,
    *,
    index: int,
    namespace: str,
    rs: Sequence[Mapping[str, Any]],
    verify: str,
) -> models.Fix | None:
    """The fix for a Kubernetes-state finding's own hypothesis (None: the usual one)."""
    if finding is None or not _from_finding(hypothesis, finding):
        return None
    if finding.get("fault") == "unschedulable" and hypothesis.change:
        # the rollout raised requests no node can meet: undo it, never raise the limits
        return _rollback(hypothesis, index=index, namespace=namespace, rs=rs, verify=verify)
    return state_fixes.fix_for_finding(
        hypothesis, finding, index=index, namespace=namespace, verify=verify
    )


def _from_finding(hypothesis: models.Hypothesis, finding: Mapping[str, Any]) -> bool:
    """The hypothesis is the finding's own (a metric hypothesis it joined keeps its kind and
    change, and its own fix)."""
    return hypothesis.kind.value == finding.get("kind") and hypothesis.change == finding.get(
        "change"
    )


def _is_scale_change(change: str | None) -> bool:
    """A replica change: ``deployment/NAME`` with no revision (a rollout or a limits change
    carries its ReplicaSet revision, ``deployment/NAME@14``)."""
    match = _REF.match(change or "")
    return bool(match and match["kind"] == "deployment" and match["revision"] is None)


def _ns(namespace: str) -> str:
    return f" -n {namespace}" if namespace else ""


def _action(kind: str, *, name: str, namespace: str, **details: Any) -> dict[str, Any] | None:
    """The fix as data (``ports.ActionSpec``, its ``op`` the catalogue's resolver for ``kind``):
    what execution mode may carry out after approval. None without a namespace (a patch needs
    one, and guessing is not allowed) or for a kind no resolver carries out."""
    op = fixes.CATALOGUE.kind(kind).resolver
    if op is None or not namespace or not _NAME.match(name):
        return None
    return {"op": op, "kind": "deployment", "namespace": namespace, "name": name, **details}


def sweep(
    fix: Mapping[str, Any],
    *,
    hypothesis: models.Hypothesis,
    deployments: Sequence[Mapping[str, Any]],
    replicasets: Sequence[Mapping[str, Any]],
) -> list[dict[str, str]]:
    """The same fault elsewhere in scope, for a reviewer to look at (never fixed here): other
    deployments running the image the culprit revision introduced, or using the changed
    ConfigMap or Secret."""
    match = _REF.match(hypothesis.change or "")
    if not match:
        return []
    if fix.get("kind") == "rollback" and match["kind"] == "deployment" and match["revision"]:
        bad = _introduced_images(match["name"], int(match["revision"]), replicasets)
        return [
            {
                "target": f"deployment/{d['name']}",
                "why": f"runs the same image {image} that {hypothesis.change} introduced",
            }
            for d in deployments
            if d.get("name") != match["name"]
            for image in sorted(bad & set(d.get("images") or []))
        ]
    if fix.get("kind") == "config_revert" and match["kind"] in ("configmap", "secret"):
        ref = f"{match['kind']}/{match['name']}"
        return [
            {"target": f"deployment/{d['name']}", "why": f"uses {ref} too"}
            for d in deployments
            if d.get("name") != hypothesis.component and ref in (d.get("configs") or [])
        ]
    return []


def _introduced_images(
    deployment: str, revision: int, replicasets: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Images of a revision that the revision before it did not run."""
    images = {
        int(rs["revision"]): set(rs.get("images") or [])
        for rs in replicasets
        if rs.get("owner") == f"deployment/{deployment}" and rs.get("revision") is not None
    }
    before = previous_revision(deployment, revision, replicasets)
    return images.get(revision, set()) - images.get(before, set()) if before is not None else set()


def previous_revision(
    deployment: str, revision: int | None, replicasets: Sequence[Mapping[str, Any]]
) -> int | None:
    """The highest revision of ``deployment`` older than ``revision``, if one is recorded."""
    if revision is None:
        return None
    older = [
        int(rs["revision"])
        for rs in replicasets
        if rs.get("owner") == f"deployment/{deployment}"
        and rs.get("revision") is not None
        and int(rs["revision"]) < revision
    ]
    return max(older) if older else None


def _rollback(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    rs: Sequence[Mapping[str, Any]],
    verify: str,
) -> models.Fix | None:
    match = _REF.match(hypothesis.change or "")
    if not match or match["kind"] != "deployment":
        return None
    name = match["name"]
    target = f"deployment/{name}"
    to = ""
    if match["revision"]:
        before = previous_revision(name, int(match["revision"]), rs)
        to = f" --to-revision={before}" if before is not None else ""
    command = f"kubectl rollout undo {target}{_ns(namespace)}{to}"
    revision = int(to.split("=")[1]) if to else None
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="rollback",
        target=target,
        command=command,
        dry_run=f"{command} --dry-run=server -o yaml",
        rollback=f"kubectl rollout undo {target}{_ns(namespace)}"
        + (f" --to-revision={match['revision']}" if match["revision"] else ""),
        verify=verify,
        risk=fixes.CATALOGUE.kind("rollback").risk,
        blast_radius=f"every pod of {target}; rolls pods one surge at a time",
        hypothesis=index,
        action=_action("rollback", name=name, namespace=namespace, revision=revision),
    )


def _raise_limits(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    rs: Sequence[Mapping[str, Any]],
    verify: str,
    multiplier: float = fixes.LIMIT_MULTIPLIER.default,
) -> models.Fix | None:
    match = _REF.match(hypothesis.change or "")
    if not match or match["kind"] != "deployment":
        return None
    name = match["name"]
    target = f"deployment/{name}"
    revision = int(match["revision"]) if match["revision"] else None
    now = _resources_at(name, revision, rs)
    before = _resources_at(name, previous_revision(name, revision, rs), rs) if revision else {}
    wanted = {
        container: dict(before.get(container) or _multiplied(limits, by=multiplier))
        for container, limits in sorted(now.items())
        if limits
    }
    args = [f"-c {c} --limits={_limits_arg(lim)}" for c, lim in wanted.items()] or [
        "--limits=<the limits before the change>"
    ]
    concrete = bool(wanted) and not any("<" in v for lim in wanted.values() for v in lim.values())
    commands = [f"kubectl set resources {target}{_ns(namespace)} {a}" for a in args]
    undo = [
        f"kubectl set resources {target}{_ns(namespace)} -c {c} --limits={_limits_arg(lim)}"
        for c, lim in sorted(now.items())
        if lim
    ]
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="raise_limits",
        target=target,
        command=" && ".join(commands),
        dry_run=" && ".join(f"{c} --dry-run=server -o yaml" for c in commands),
        rollback=" && ".join(undo) or f"kubectl rollout undo {target}{_ns(namespace)}",
        verify=verify,
        risk=fixes.CATALOGUE.kind("raise_limits").risk,
        blast_radius=f"every pod of {target} restarts with the new limits; node capacity "
        "must fit the larger requests",
        hypothesis=index,
        action=_action("raise_limits", name=name, namespace=namespace, limits=wanted)
        if concrete
        else None,
    )


def _resources_at(
    deployment: str, revision: int | None, replicasets: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, str]]:
    """Container → limits of one revision of a deployment ({} when not recorded)."""
    if revision is None:
        return {}
    for rs in replicasets:
        if rs.get("owner") == f"deployment/{deployment}" and rs.get("revision") == revision:
            resources = rs.get("resources") or {}
            return {c: dict((r or {}).get("limits") or {}) for c, r in resources.items()}
    return {}


def _limits_arg(limits: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(limits.items()))


def _multiplied(limits: Mapping[str, str], *, by: float) -> dict[str, str]:
    """Each limit times ``by``, kept in the quantity's own unit (twice: ``500m`` → ``1000m``,
    ``1Gi`` → ``2Gi``); a quantity we cannot read is left for the human to fill in."""
    match_number = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[A-Za-z]*)$")
    raised = {}
    for key, value in limits.items():
        found = match_number.match(value)
        if found:
            number = round(float(found["n"]) * by, 3)
            text = str(int(number)) if number.is_integer() else f"{number:g}"
            raised[key] = text + found["unit"]
        else:
            raised[key] = f"<more than {value}>"
    return raised


def _config_revert(
    hypothesis: models.Hypothesis,
    *,
    index: int,
    namespace: str,
    verify: str,
    configs: Sequence[Mapping[str, Any]] = (),
) -> models.Fix | None:
    """Back to what ``kubectl apply`` last applied when the object was edited since (its
    last-applied annotation holds that content, so the command is exact); otherwise back to
    the version kept in version control, which the command names for the human to supply."""
    match = _REF.match(hypothesis.change or "")
    if not match or match["kind"] not in ("configmap", "secret"):
        return None
    target = f"{match['kind']}/{match['name']}"
    ns = _ns(namespace)
    restart = f"kubectl rollout restart deployment/{hypothesis.component}{ns}"
    save = f"kubectl get {target}{ns} -o yaml > {match['name']}.now.yaml"
    payload = next(
        (c for c in configs if c.get("kind") == match["kind"] and c.get("name") == match["name"]),
        {},
    )
    drifted = list(payload.get("drifted") or [])
    if match["kind"] == "configmap" and drifted:
        applied = f"kubectl apply view-last-applied {target}{ns} -o yaml"
        command = f"{save} && {applied} | kubectl apply{ns} -f - && {restart}"
        dry_run = f"{applied} | kubectl apply{ns} -f - --dry-run=server"
        rollback = f"kubectl replace -f {match['name']}.now.yaml && {restart}"
        keys = ", ".join(drifted[:8])
        blast = (
            f"every workload that mounts {target}; keys set back to their last applied values: "
            f"{keys} (a key added since that apply is kept: remove it by hand if it matters)"
        )
    else:
        command = f"kubectl apply{ns} -f <the previous {target} from version control> && {restart}"
        dry_run = f"kubectl apply{ns} -f <previous {target}> --dry-run=server"
        rollback = f"re-apply the current {target} (save it first: {save})"
        blast = f"every workload that mounts {target}"
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="config_revert",
        target=target,
        command=command,
        dry_run=dry_run,
        rollback=rollback,
        verify=verify,
        risk=fixes.CATALOGUE.kind("config_revert").risk,
        blast_radius=blast,
        hypothesis=index,
    )


def _scale(
    hypothesis: models.Hypothesis, *, index: int, namespace: str, verify: str, sizing: Sizing
) -> models.Fix | None:
    """Half as many replicas again plus one, read from the live object when the fix runs; with
    another factor, the count it gives from the recorded replicas (no executable action when
    they are not recorded: execution knows only the default)."""
    component = hypothesis.component
    if "/" in component:  # external/…, postgres/…: not a deployment we can scale
        return None
    target = f"deployment/{component}"
    factor = fixes.SCALE_FACTOR
    ratio = Fraction(factor.bounded(sizing.scale_factor)).limit_denominator(10)
    replicas = (
        "$(( $(kubectl get "
        + target
        + _ns(namespace)
        + f" -o jsonpath='{{.spec.replicas}}') * {ratio.numerator} / {ratio.denominator} + 1 ))"
    )
    undo = "<the current count>"
    count: int | None = None
    now = sizing.replicas.get(component)
    default = ratio == Fraction(factor.default).limit_denominator(10)
    if not default and now is not None:
        count = math.floor(now * ratio) + 1
        replicas, undo = str(count), str(now)
    action = _action("scale", name=component, namespace=namespace, replicas=count)
    if not default and count is None:
        action = None  # execution computes only the default factor from the live object
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="scale",
        target=target,
        command=f"kubectl scale {target}{_ns(namespace)} --replicas={replicas}",
        dry_run=f"kubectl scale {target}{_ns(namespace)} --replicas={count or 'N'} "
        "--dry-run=server",
        rollback=f"kubectl scale {target}{_ns(namespace)} --replicas={undo}",
        verify=verify,
        risk=fixes.CATALOGUE.kind("scale").risk,
        blast_radius=f"adds pods to {target}; no running pod is touched",
        hypothesis=index,
        action=action,
    )
