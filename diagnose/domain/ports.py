"""Ports: how the core sees the outside world. Adapters live in ``connectors/``.

Every method that asks an outside system something returns an :class:`Evidence` record whose
``status`` says how the call ended: a refused connection or a 403 is evidence (``error``,
``denied``), not an exception. Adapters raise only for our own mistakes.

The ``raw`` payload of each method has the JSON shape given by the TypedDicts below, so the
analysis can read evidence from a live run and from a replayed bundle alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NotRequired, Protocol, TypedDict

from diagnose.domain.models import JSON, Evidence, Window

# --- raw payload shapes -------------------------------------------------------------------


class SeriesPayload(TypedDict):
    """One time series of a range query. ``v[i]`` is ``None`` where the value was NaN."""

    labels: dict[str, str]
    t: list[float]  # unix seconds
    v: list[float | None]


class ReplicaSetPayload(TypedDict):
    name: str
    namespace: str
    owner: str | None  # "deployment/checkout"
    revision: int | None  # deployment.kubernetes.io/revision
    created: str  # ISO 8601
    images: list[str]
    replicas: int
    resources: dict[str, dict[str, dict[str, str]]]  # container -> limits/requests -> name -> qty
    annotations: dict[str, str]
    template_annotations: NotRequired[dict[str, str]]  # the pod template's (image revision, source)


class DeploymentPayload(TypedDict):
    name: str
    namespace: str
    created: str
    labels: dict[str, str]
    selector: dict[str, str]
    replicas: int
    available: int
    revision: int | None
    images: list[str]
    annotations: dict[str, str]
    configs: NotRequired[list[str]]  # "configmap/NAME", "secret/NAME" its pod template uses
    # plain env values naming an endpoint (DATABASE_URL, *_HOST), credentials cut out
    env: NotRequired[dict[str, str]]


class ConfigPayload(TypedDict):
    kind: str  # "configmap" | "secret"
    name: str
    namespace: str
    created: str
    updated: str  # the latest managedFields time, else created
    labels: dict[str, str]
    annotations: dict[str, str]
    keys: list[str]
    digest: str  # sha256 of the data, so two reads can be compared without the data
    # ConfigMaps: data keys whose live value differs from what `kubectl apply` last applied
    # (its last-applied annotation), or that apply never set: names only, never values.
    drifted: list[str]


class ContainerStatusPayload(TypedDict):
    name: str
    restarts: int
    ready: bool
    last_terminated_reason: str | None
    last_terminated_at: str | None
    last_exit_code: int | None


class PodPayload(TypedDict):
    name: str
    namespace: str
    owner: str | None  # "replicaset/checkout-7d9f8"
    node: str | None
    phase: str
    created: str
    labels: dict[str, str]
    containers: list[ContainerStatusPayload]


class EventPayload(TypedDict):
    type: str  # Normal | Warning
    reason: str
    object: str  # "deployment/checkout"
    namespace: str
    message: str
    first: str | None
    last: str | None
    count: int


# --- ports ----------------------------------------------------------------------------------


class MetricSource(Protocol):
    """A Prometheus-compatible metrics store."""

    def label_names(self, *, window: Window) -> Evidence:
        """Label names present in the window. raw: ``list[str]``."""
        ...

    def find_series(self, selectors: Sequence[str], *, window: Window) -> Evidence:
        """Label sets of the series matching any selector. raw: ``list[dict[str, str]]``
        (each with ``__name__``)."""
        ...

    def query_range(self, query: str, *, window: Window, step_s: float) -> Evidence:
        """Evaluate PromQL over the window. raw: ``list[SeriesPayload]``."""
        ...

    def query_samples(self, selector: str, *, window: Window) -> Evidence:
        """The raw samples of a series selector over the window, at their own timestamps (for
        metrics sampled more coarsely than a useful step). raw: ``list[SeriesPayload]``."""
        ...


class ClusterSource(Protocol):
    """A Kubernetes API, read-only. raw payloads: lists of the matching ``*Payload``."""

    def list_deployments(self, *, namespace: str) -> Evidence: ...

    def list_replicasets(self, *, namespace: str) -> Evidence: ...

    def list_configs(self, *, namespace: str) -> Evidence:
        """ConfigMaps, and Secrets' metadata only (never their data)."""
        ...

    def list_pods(self, *, namespace: str) -> Evidence: ...

    def list_events(self, *, namespace: str, window: Window) -> Evidence: ...


class ActionSpec(TypedDict):
    """A Kubernetes catalogue action as data, before it is resolved against the live object.

    ``op``: ``rollback`` (to ``revision``; None: the one before the current), ``scale`` (to
    ``replicas``; None: half as many again plus one, read from the live object) or
    ``set_limits`` (``limits``: container → resource → quantity), or, on a Service,
    ``restore_service`` (its ``selector``, or ``port``'s ``target_port``).
    """

    op: str
    kind: str  # "deployment" | "service"
    namespace: str
    name: str
    revision: NotRequired[int | None]
    replicas: NotRequired[int | None]
    limits: NotRequired[dict[str, dict[str, str]]]
    selector: NotRequired[dict[str, str]]
    port: NotRequired[int]
    target_port: NotRequired[int | None]


class PatchPayload(TypedDict):
    """One PATCH request, exactly as it will be sent (the idempotency marker aside)."""

    path: str  # "/apis/apps/v1/namespaces/shop/deployments/checkout"
    namespace: str
    name: str
    kind: str  # "deployment"
    patch_type: str  # "json" | "merge" | "strategic"
    body: JSON


class ClusterWriter(Protocol):
    """Kubernetes writes for catalogue actions only, with credentials of their own.

    Every method returns evidence: ``ok`` when the API accepted, ``denied`` or ``error`` (with
    the API's message) when it refused, ``error`` when it could not be reached. raw: for
    :meth:`resolve` a ``PatchPayload``; for :meth:`patch` the object the API returned.
    """

    def resolve(self, action: ActionSpec) -> Evidence:
        """The exact patch that carries the action out, read against the live object."""
        ...

    def patch(self, request: PatchPayload, *, dry_run: bool, marker: str) -> Evidence:
        """Send the patch (``dryRun=All`` when ``dry_run``), recording ``marker`` on the
        object so a later attempt can tell it already landed."""
        ...

    def marker(self, request: PatchPayload) -> str | None:
        """The marker the live object carries (None: none), to tell whether a patch landed.
        Raises :class:`~diagnose.domain.errors.SourceUnavailable` when the API cannot say."""
        ...


class EvidenceStore(Protocol):
    """Where a run keeps the raw side of its evidence (the bundle)."""

    def put(self, run_id: str, evidence: Sequence[Evidence]) -> None: ...

    def load(self, run_id: str) -> list[Evidence]: ...

    def write_manifest(self, run_id: str, manifest: Mapping[str, JSON]) -> None:
        """What was diagnosed (trigger, window, time of the run), for offline replay."""
        ...


class AuditLog(Protocol):
    """Append-only record of proposals, decisions and actions. Appending an entry whose
    ``key`` the run already has does nothing (a re-run step appends nothing twice)."""

    def append(self, run_id: str, *, kind: str, key: str, entry: Mapping[str, JSON]) -> None: ...

    def entries(self, run_id: str | None = None) -> list[dict[str, JSON]]: ...


class IncidentMemory(Protocol):
    """Finished runs, kept to recall on later incidents: what the evidence showed, what was
    proposed, and what people decided and why. Recording a run again replaces it."""

    def record(self, run: Mapping[str, JSON]) -> None:
        """Keep one finished run (``run_id``, ``at``, ``components`` and the rest, as
        ``graphs.remembering.run_record`` builds it)."""
        ...

    def recall(self, *, components: Sequence[str], limit: int) -> list[dict[str, JSON]]:
        """Runs that involved any of ``components``, newest first, at most ``limit``."""
        ...


class Pager(Protocol):
    """The incident tool (PagerDuty) as the service uses it: an incident's alerts and log
    entries read, the findings posted back as a note. Objects are PagerDuty's, unchecked:
    readers check each field they use."""

    def list_alerts(self, incident_id: str) -> list[Mapping[str, object]]: ...

    def list_log_entries(self, incident_id: str) -> list[Mapping[str, object]]: ...

    def create_note(self, incident_id: str, content: str) -> Mapping[str, object]: ...

    def close(self) -> None: ...


class Chat(Protocol):
    """The incident channel (Slack) as the service uses it: findings posted and updated in a
    thread per incident, approval modals opened, interaction requests authenticated. Raises
    ``errors.SourceUnavailable`` (try later) or ``errors.SourceRejected`` (fix the request or
    the credentials); a caller posting findings notes the failure, it never fails the run."""

    def post(
        self, *, channel: str, text: str, blocks: Sequence[Mapping[str, JSON]], thread: str | None
    ) -> str:
        """Post a message (a reply in ``thread`` when given, a thread's parent's ``ts``);
        returns the new message's ``ts``."""
        ...

    def update(
        self, *, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, JSON]]
    ) -> None: ...

    def open_view(self, *, trigger_id: str, view: Mapping[str, JSON]) -> None: ...

    def authentic(self, body: bytes, *, timestamp: str | None, signature: str | None) -> bool:
        """Whether an interaction request carries a valid signature made within 5 minutes."""
        ...

    def close(self) -> None: ...
