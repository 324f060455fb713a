"""Flux's events on its own objects, read where those objects live (docs/changes.md).

The kustomize-controller and helm-controller record their events (``ReconciliationFailed``,
``UpgradeFailed``, …) on the Kustomization or HelmRelease, in that object's namespace
(``flux-system`` as a rule), not in the namespace it deploys to. Each Flux object in scope is
read with one field-selected list call, at most ``delivery.MAX_FLUX_OBJECTS`` of them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from connectors import _http, delivery
from connectors.kubernetes import _common, _translating
from diagnose.domain import delivery as delivery_domain
from diagnose.domain.models import Evidence, Status, Window
from diagnose.domain.ports import EventPayload

if TYPE_CHECKING:
    from connectors.kubernetes import _reading


def list_delivery_events(
    connector: _reading.KubernetesConnector,
    *,
    namespace: str,
    deliveries: Sequence[delivery_domain.DeliveryPayload],
    window: Window,
) -> Evidence:
    """Events on the Flux objects of ``deliveries`` that live outside ``namespace``, in the
    window, oldest first. A namespace the role may not read is said in the summary (``denied``
    when none could be read). raw: ``list[EventPayload]``."""
    objects = delivery.flux_objects(deliveries, namespace=namespace)
    kept, left = objects[: delivery.MAX_FLUX_OBJECTS], objects[delivery.MAX_FLUX_OBJECTS :]
    query = "; ".join(
        f"kubectl get events -n {o.namespace} --field-selector {o.field_selector} -o yaml"
        for o in kept
    )
    if not kept:
        summary = f"no Flux objects outside namespace {namespace}"
        return _common._evidence("kubectl get events (Flux objects)", Status.EMPTY, summary, [])
    events: list[EventPayload] = []
    failures: list[_common._CallError] = []
    for obj in kept:
        call = functools.partial(
            connector._core.list_namespaced_event, field_selector=obj.field_selector
        )
        try:
            items = connector._list(call, plural="events", namespace=obj.namespace)
        except _common._CallError as failure:
            failures.append(failure)
            continue
        events += [_translating._event(item) for item in items]
    found = sorted(
        (e for e in events if _common._overlaps(e, window)),
        key=lambda e: (e["last"] or e["first"] or "", e["object"]),
    )
    return _common._evidence(
        query,
        *_outcome(found, failures=failures, read=len(kept), left=len(left)),
        found,
        window=window,
    )


def _outcome(
    found: Sequence[EventPayload],
    *,
    failures: Sequence[_common._CallError],
    read: int,
    left: int,
) -> tuple[Status, str]:
    """OK with events; a failure's status when every call failed; else empty."""
    notes = [f.summary for f in failures]
    if left:
        notes.append(f"{_http.plural(left, 'more Flux object')} not read")
    said = f" ({'; '.join(notes)})" if notes else ""
    if found:
        return Status.OK, f"{_http.plural(len(found), 'Flux event')}{said}"
    if failures and len(failures) == read:
        return failures[0].status, "; ".join(notes)
    return Status.EMPTY, f"no Flux events in the window{said}"
