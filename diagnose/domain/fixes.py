"""The fix catalogue: every kind of fix the agent may propose, in one table.

Each :class:`FixKind` is one row: its name (the ``kind`` of a :class:`~diagnose.domain.models.Fix`,
the ``action`` a model may propose, and the word a playbook's ``fixes`` lists), the parameters
a playbook may size it with and their bounds, its risk, the cause kinds it can address, and the
Kubernetes resolver that carries it out in execution mode (None: a human runs the command).

Everything else reads this table: the model's answer schema and its validation
(``diagnose.domain.reasoning``), the playbook schema (``diagnose.playbook``), the check that a
model's fix fits its claim (``graphs.reasoning``), the sizing bounds of
``diagnose.analysis.fixing`` and the resolvers of ``connectors.kubernetes``. The functions that
check against it take the catalogue as an argument (default :data:`CATALOGUE`), so a larger
one can be passed in. Adding a kind is one entry here, its builder, and (for a Kubernetes
action) its resolver (docs/architecture.md, "Adding a fix kind").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from diagnose.domain.models import CauseKind, Risk


@dataclass(frozen=True)
class Parameter:
    """A number a playbook's fix template may set, and the bounds the catalogue holds it in."""

    name: str
    default: float
    least: float
    most: float
    description: str = ""

    def __post_init__(self) -> None:
        if not self.least <= self.default <= self.most:
            raise ValueError(f"parameter {self.name}: default outside its bounds: {self}")

    def bounded(self, value: float | None) -> float:
        """``value`` held within the bounds (the default when unset)."""
        return self.default if value is None else min(self.most, max(self.least, float(value)))


@dataclass(frozen=True)
class FixKind:
    """One kind of fix the agent may propose."""

    name: str
    risk: Risk
    """The risk at its riskiest; one proposal may say less (cancelling a running query is
    medium, ending an idle-in-transaction session high)."""
    fits: frozenset[CauseKind]
    """The cause kinds it can address (a model's fix for another kind is refused)."""
    parameters: tuple[Parameter, ...] = ()
    resolver: str | None = None
    """The ``op`` of its ``ports.ActionSpec``, which a ``ClusterWriter`` resolves against the
    live object; None when the fix is a command for a human (SQL, a config file)."""

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; KeyError when the kind has none of that name."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"{self.name} has no parameter {name!r}")


@dataclass(frozen=True)
class Catalogue:
    """The fix kinds, in the order the model's schema and messages list them."""

    kinds: tuple[FixKind, ...]

    def __post_init__(self) -> None:
        names = [k.name for k in self.kinds]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"fix kinds listed more than once: {', '.join(twice)}")

    def __iter__(self) -> Iterator[FixKind]:
        return iter(self.kinds)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.kinds)

    def kind(self, name: str) -> FixKind:
        """The entry called ``name``; KeyError when the catalogue has none."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(f"{name!r} is not in the fix catalogue ({', '.join(self.names)})")

    def fitting(self, cause: CauseKind) -> frozenset[str]:
        """The kinds that can address a cause of this kind."""
        return frozenset(k.name for k in self.kinds if cause in k.fits)

    def owner(self, parameter: str) -> FixKind | None:
        """The first kind that has a parameter of this name."""
        return next((k for k in self.kinds if any(p.name == parameter for p in k.parameters)), None)

    def resolvers(self) -> frozenset[str]:
        """The resolver names a ``ClusterWriter`` must know."""
        return frozenset(k.resolver for k in self.kinds if k.resolver is not None)


SCALE_FACTOR = Parameter(
    "factor",
    default=1.5,
    least=1.1,
    most=3.0,
    description="replicas become factor × the current count + 1",
)
LIMIT_MULTIPLIER = Parameter(
    "multiplier",
    default=2.0,
    least=1.1,
    most=4.0,
    description="limits become multiplier × the current ones, when no earlier revision's "
    "limits are recorded to go back to",
)

CATALOGUE = Catalogue(
    (
        FixKind("rollback", Risk.MEDIUM, frozenset({CauseKind.DEPLOY}), resolver="rollback"),
        FixKind("config_revert", Risk.MEDIUM, frozenset({CauseKind.CONFIG})),
        FixKind(
            "raise_limits",
            Risk.MEDIUM,
            frozenset({CauseKind.RESOURCE, CauseKind.DATABASE}),
            parameters=(LIMIT_MULTIPLIER,),
            resolver="set_limits",
        ),
        FixKind(
            "scale",
            Risk.LOW,
            frozenset({CauseKind.RESOURCE, CauseKind.TRAFFIC}),
            parameters=(SCALE_FACTOR,),
            resolver="scale",
        ),
        FixKind("create_index", Risk.LOW, frozenset({CauseKind.DATABASE})),
        FixKind("cancel_query", Risk.HIGH, frozenset({CauseKind.DATABASE})),
        FixKind(
            "restore_service",
            Risk.MEDIUM,
            frozenset({CauseKind.CONFIG}),
            resolver="restore_service",
        ),
        FixKind("hand_over", Risk.LOW, frozenset({CauseKind.RESOURCE, CauseKind.CONFIG})),
        FixKind("cordon", Risk.HIGH, frozenset({CauseKind.RESOURCE})),
        FixKind("helm_rollback", Risk.MEDIUM, frozenset({CauseKind.DEPLOY, CauseKind.CONFIG})),
        FixKind("argocd_rollback", Risk.MEDIUM, frozenset({CauseKind.DEPLOY, CauseKind.CONFIG})),
        FixKind("flux_revert", Risk.MEDIUM, frozenset({CauseKind.DEPLOY, CauseKind.CONFIG})),
    )
)
"""The catalogue the agent ships with. A dependency's fix lies outside it (no kind fits).

``restore_service`` sets a Service's selector or targetPort back to what its workload's pods
carry; ``hand_over`` points a human at an object the agent never changes (a quota, a
LimitRange, RBAC, a policy, a missing Secret); ``cordon`` is a node's cordon and drain,
proposed with its blast radius and never carried out by the agent. ``helm_rollback`` and
``argocd_rollback`` undo a change through the tool that made it (``helm rollback``, ``argocd
app rollback`` or a revert in Git when Argo CD syncs automatically); ``flux_revert`` reverts
in Git what a Flux Kustomization or HelmRelease applied and reconciles it (Flux re-applies
anything undone behind its back): commands for a human, with the tool's own preview as
their dry run (``diagnose.analysis.delivery_fixes``)."""
