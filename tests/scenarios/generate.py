"""Generate the bundled recorded-incident scenarios (scenario format 1, see docs/scenarios.md).

    python tests/scenarios/generate.py [--only NAME] [--check]

Each scenario is one incident in the namespace ``shop`` (frontend → checkout → cart, inventory,
payments → api.bank.example; frontend → catalog, inventory) as a real cluster records it:
OpenTelemetry HTTP histograms, cAdvisor and kube-state-metrics series scraped every 15 s for
3 h, and the Kubernetes objects (Deployments, every ReplicaSet revision, Pods, ConfigMaps,
Services, Events) as the API returned them when the incident was recorded. Everything is drawn
from one numpy generator seeded by the scenario's name, so a run rewrites identical files.

``--check`` verifies what was written: YAML parses, histogram buckets are cumulative and
consistent with ``_count``, counters only fall at a container restart, every sample lies within
``time``, and ``promtool tsdb create-blocks-from openmetrics`` accepts the metrics when promtool
is on PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
STEP_S = 15
WINDOW = timedelta(hours=3)
NAMESPACE = "shop"
EVENT_TTL = timedelta(hours=1)
"""The API server's default ``--event-ttl``: older Events are gone when the incident is recorded."""
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""A trimmed explicit-bucket view (the semconv default has 14 bounds; this keeps files small)."""
MIB = 1024 * 1024
NODES = ("worker-a-7kq2x", "worker-b-m4n8p", "worker-c-2xd9v")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes


# --- time -------------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the shop ---------------------------------------------------------------------------------


@dataclass
class Route:
    """One HTTP route of one service, with what it calls (callee key, calls per request)."""

    service: str
    route: str
    method: str
    latency: float  # own median in seconds, before callees
    sigma: float = 0.45
    error: float = 0.0004
    error_status: str = "500"
    entry_rate: float = 0.0  # requests/s from outside the shop at the start of the window
    calls: tuple[tuple[str, float], ...] = ()
    external: bool = False  # a dependency outside the cluster: no server series
    # per-step arrays, filled by World.compute (scenarios scale the *_mult ones)
    rate: Any = None
    latency_mult: Any = None
    error_add: Any = None
    sigma_add: Any = None
    served: Any = None  # share of offered requests that reach a running pod
    median: Any = None  # effective median latency, callees included
    server_err: Any = None  # error ratio of the requests the server handled
    err: Any = None  # error ratio as callers see it (unserved requests included)

    @property
    def key(self) -> str:
        return f"{self.service} {self.method} {self.route}"


@dataclass
class Revision:
    number: int
    created: datetime
    image: str
    cpu_limit: str
    mem_limit: str
    hash: str
    uid: str
    cpu_factor: float = 1.0  # CPU per request relative to the workload's usual cost


@dataclass
class Pod:
    name: str
    workload: str
    revision: Revision
    node: str
    ip: str
    uid: str
    created: datetime
    first: int  # first step the container runs
    ready: int  # first step it takes traffic
    last: int  # first step it no longer exists (n when it outlives the window)
    cpu_limit: float
    mem_limit: int
    restarts_before: int = 0
    down: list[tuple[int, int]] = field(default_factory=list)  # crash-loop gaps [from, to)
    unready: list[tuple[int, int]] = field(default_factory=list)  # running, not ready [from, to)
    restarts: list[int] = field(default_factory=list)  # steps where a new container starts
    mem_override: Any = None
    last_terminated: dict[str, Any] | None = None
    waiting: dict[str, Any] | None = None


@dataclass
class Workload:
    name: str
    replicas: int
    cpu_request: str
    mem_request: str
    mem_base: int
    cpu_per_request: float  # core-seconds per request
    port: int
    uid: str
    created: datetime
    revisions: list[Revision] = field(default_factory=list)
    applied: datetime | None = None  # the last write of the Deployment's spec
    manager: str = "argocd-controller"  # the field manager of that write

    @property
    def current(self) -> Revision:
        return self.revisions[-1]


@dataclass
class ConfigMap:
    name: str
    data: dict[str, str]
    created: datetime
    uid: str
    applied_data: dict[str, str]
    edited: datetime | None = None
    editor: str = "kubectl-edit"


def parse_cpu(text: str) -> float:
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def parse_mem(text: str) -> int:
    units = {"Mi": MIB, "Gi": 1024 * MIB}
    return int(float(text[:-2]) * units[text[-2:]])


# name: replicas, cpu limit, memory limit, memory base, core-seconds/request, image tag, revision
SERVICES: dict[str, tuple[int, str, str, int, float, str, int]] = {
    "frontend": (2, "1", "512Mi", 210 * MIB, 0.0022, "3.8.1", 27),
    "checkout": (2, "1", "512Mi", 260 * MIB, 0.011, "2.13.4", 13),
    "payments": (1, "500m", "384Mi", 170 * MIB, 0.012, "1.9.2", 9),
    "cart": (1, "500m", "256Mi", 120 * MIB, 0.009, "4.2.0", 21),
    "catalog": (2, "1", "512Mi", 300 * MIB, 0.0045, "1.31.0", 7),
    "inventory": (1, "1", "256Mi", 95 * MIB, 0.0048, "0.18.3", 5),
}

CONFIGS: dict[str, dict[str, str]] = {
    "frontend": {"CHECKOUT_URL": "http://checkout:8080", "FEATURE_RECOMMENDATIONS": "false"},
    "checkout": {"PAYMENTS_URL": "http://payments:8080", "ORDER_TIMEOUT_MS": "5000"},
    "payments": {
        "BANK_API_URL": "https://api.bank.example/v2",
        "BANK_POOL_MAX_CONNECTIONS": "64",
        "BANK_TIMEOUT_MS": "3000",
    },
    "cart": {"REDIS_ADDR": "cart-redis:6379", "CART_TTL_HOURS": "72"},
    "catalog": {"CACHE_SIZE_MB": "128", "PAGE_SIZE": "24"},
    "inventory": {"RESERVATION_TTL_S": "900"},
}


def shop_routes() -> list[Route]:
    """The shop's routes, callers first (World.compute relies on this order)."""
    return [
        Route(
            "frontend",
            "/product/{id}",
            "GET",
            0.006,
            sigma=0.5,
            error=0.0,
            error_status="502",
            entry_rate=38.0,
            calls=(
                ("catalog GET /api/v1/products/{id}", 1.0),
                ("inventory GET /api/v1/stock", 1.0),
            ),
        ),
        Route(
            "frontend",
            "/checkout",
            "POST",
            0.012,
            error_status="502",
            entry_rate=2.6,
            calls=(("checkout POST /api/v1/orders", 1.0),),
        ),
        Route(
            "checkout",
            "/api/v1/orders",
            "POST",
            0.018,
            error=0.002,
            calls=(
                ("cart GET /api/v1/carts/{user_id}", 1.0),
                ("inventory GET /api/v1/stock", 1.0),
                ("payments POST /v1/charges", 1.0),
            ),
        ),
        Route(
            "payments",
            "/v1/charges",
            "POST",
            0.015,
            error=0.0,
            calls=(("api.bank.example POST /v2/charges", 1.0),),
        ),
        Route("cart", "/api/v1/carts/{user_id}", "GET", 0.006, sigma=0.4, error=0.0),
        Route("catalog", "/api/v1/products/{id}", "GET", 0.008, sigma=0.5, error=0.0),
        Route("inventory", "/api/v1/stock", "GET", 0.005, sigma=0.4, error=0.0),
        Route(
            "api.bank.example",
            "/v2/charges",
            "POST",
            0.11,
            sigma=0.3,
            error=0.0,
            external=True,
        ),
    ]


CLIENT_EDGES = (
    ("checkout", "payments", "payments POST /v1/charges"),
    ("payments", "api.bank.example", "api.bank.example POST /v2/charges"),
)
"""(caller, server_address, callee route): the callers that export ``http_client_*``."""

Spec = tuple[int, str, str, int, float, str, int]


@dataclass(frozen=True)
class Shop:
    """What runs in the namespace: workloads (as in :data:`SERVICES`), their ConfigMaps, the
    routes (callers first), and the callers that export client histograms."""

    services: dict[str, Spec]
    configs: dict[str, dict[str, str]]
    routes: Callable[[], list[Route]]
    client_edges: tuple[tuple[str, str, str], ...]


SHOP = Shop(SERVICES, CONFIGS, shop_routes, CLIENT_EDGES)


# The shop grown into a platform: 30 workloads, 40 routes, an API gateway beside the frontend.
PLATFORM_SERVICES: dict[str, Spec] = {
    **SERVICES,
    "api-gateway": (3, "1", "512Mi", 180 * MIB, 0.0016, "5.2.0", 61),
    "recommendations": (2, "1", "1Gi", 520 * MIB, 0.009, "2.7.3", 33),
    "reviews": (2, "500m", "384Mi", 150 * MIB, 0.004, "1.12.0", 18),
    "ratings": (1, "250m", "256Mi", 90 * MIB, 0.002, "0.9.4", 7),
    "ads": (2, "500m", "384Mi", 140 * MIB, 0.003, "3.3.1", 40),
    "pricing": (2, "1", "512Mi", 230 * MIB, 0.005, "2.2.0", 26),
    "currency": (2, "500m", "256Mi", 80 * MIB, 0.0012, "3.3.2", 15),
    "tax": (1, "250m", "256Mi", 70 * MIB, 0.0015, "1.4.0", 9),
    "coupons": (1, "250m", "256Mi", 75 * MIB, 0.002, "0.6.1", 11),
    "search": (3, "1", "1Gi", 610 * MIB, 0.012, "4.0.2", 52),
    "search-index": (2, "2", "2Gi", 1300 * MIB, 0.02, "4.0.0", 24),
    "user-profile": (2, "500m", "384Mi", 160 * MIB, 0.003, "2.9.0", 31),
    "auth": (3, "500m", "256Mi", 110 * MIB, 0.0025, "6.1.4", 47),
    "sessions": (2, "500m", "512Mi", 260 * MIB, 0.001, "1.8.2", 14),
    "feature-flags": (1, "250m", "128Mi", 50 * MIB, 0.0006, "0.22.0", 21),
    "media": (2, "1", "512Mi", 240 * MIB, 0.004, "1.5.5", 12),
    "wishlist": (1, "250m", "256Mi", 85 * MIB, 0.002, "0.4.2", 6),
    "loyalty": (1, "250m", "256Mi", 95 * MIB, 0.003, "0.3.0", 4),
    "shipping": (1, "500m", "256Mi", 100 * MIB, 0.004, "2.0.1", 16),
    "fraud-check": (2, "1", "768Mi", 420 * MIB, 0.015, "1.1.0", 10),
    "notifications": (1, "250m", "256Mi", 90 * MIB, 0.002, "1.0.7", 8),
    "email": (1, "250m", "256Mi", 70 * MIB, 0.002, "0.8.0", 5),
    "geo": (1, "250m", "256Mi", 60 * MIB, 0.001, "0.2.3", 3),
    "audit-log": (1, "250m", "256Mi", 110 * MIB, 0.001, "1.2.0", 9),
}

PLATFORM_CONFIGS: dict[str, dict[str, str]] = {
    **CONFIGS,
    **{
        name: {"LOG_LEVEL": "info", "HTTP_TIMEOUT_MS": "2000"}
        for name in PLATFORM_SERVICES
        if name not in CONFIGS
    },
    "search": {"INDEX_URL": "http://search-index:8080", "MAX_RESULTS": "50", "LOG_LEVEL": "info"},
    "currency": {"RATES_REFRESH_S": "60", "LOG_LEVEL": "info"},
}


def platform_routes() -> list[Route]:
    """The platform's routes, callers first: two entries (frontend, api-gateway), a mid tier,
    then the leaves (the shop's own routes keep their place in that order)."""
    shop = {r.key: r for r in shop_routes()}
    products = shop["frontend GET /product/{id}"]
    products.calls = (
        *products.calls,
        ("pricing GET /v1/prices", 1.0),
        ("reviews GET /v1/reviews", 1.0),
        ("recommendations GET /v1/recommendations", 1.0),
        ("media GET /v1/images", 3.0),
    )
    checkout = shop["checkout POST /api/v1/orders"]
    checkout.calls = (
        *checkout.calls,
        ("pricing GET /v1/prices", 1.0),
        ("coupons GET /v1/coupons", 1.0),
        ("fraud-check POST /v1/score", 1.0),
        ("shipping POST /v1/quotes", 1.0),
    )
    r = Route
    return [
        products,
        shop["frontend POST /checkout"],
        r(
            "frontend",
            "/",
            "GET",
            0.004,
            entry_rate=11.0,
            error_status="502",
            calls=(
                ("recommendations GET /v1/recommendations", 1.0),
                ("ads GET /v1/ads", 2.0),
                ("feature-flags GET /v1/flags", 1.0),
                ("sessions GET /v1/sessions/{id}", 1.0),
            ),
        ),
        r(
            "frontend",
            "/search",
            "GET",
            0.005,
            entry_rate=6.0,
            error_status="502",
            calls=(
                ("search GET /v1/search", 1.0),
                ("ads GET /v1/ads", 1.0),
            ),
        ),
        r(
            "api-gateway",
            "/v1/products/{id}",
            "GET",
            0.003,
            entry_rate=16.0,
            calls=(
                ("auth POST /v1/tokens/verify", 1.0),
                ("catalog GET /api/v1/products/{id}", 1.0),
                ("pricing GET /v1/prices", 1.0),
                ("media GET /v1/images", 1.0),
            ),
        ),
        r(
            "api-gateway",
            "/v1/me",
            "GET",
            0.003,
            entry_rate=7.0,
            calls=(
                ("auth POST /v1/tokens/verify", 1.0),
                ("user-profile GET /v1/profiles/{id}", 1.0),
                ("wishlist GET /v1/wishlists/{id}", 1.0),
                ("loyalty GET /v1/points/{id}", 1.0),
            ),
        ),
        r(
            "api-gateway",
            "/v1/search",
            "GET",
            0.003,
            entry_rate=4.0,
            calls=(
                ("auth POST /v1/tokens/verify", 1.0),
                ("search GET /v1/search", 1.0),
            ),
        ),
        r(
            "api-gateway",
            "/v1/orders",
            "POST",
            0.004,
            entry_rate=0.9,
            calls=(
                ("auth POST /v1/tokens/verify", 1.0),
                ("checkout POST /api/v1/orders", 1.0),
            ),
        ),
        checkout,
        r(
            "notifications",
            "/v1/events",
            "POST",
            0.006,
            entry_rate=1.5,
            calls=(
                ("email POST /v1/send", 0.4),
                ("user-profile GET /v1/profiles/{id}", 1.0),
            ),
        ),
        r(
            "search",
            "/v1/search",
            "GET",
            0.025,
            sigma=0.6,
            calls=(
                ("search-index POST /v1/query", 1.2),
                ("pricing GET /v1/prices", 1.0),
            ),
        ),
        r(
            "recommendations",
            "/v1/recommendations",
            "GET",
            0.03,
            sigma=0.55,
            calls=(
                ("catalog GET /api/v1/products/{id}", 0.5),
                ("ratings GET /v1/ratings", 1.0),
            ),
        ),
        r(
            "reviews",
            "/v1/reviews",
            "GET",
            0.008,
            calls=(
                ("ratings GET /v1/ratings", 1.0),
                ("user-profile GET /v1/profiles/{id}", 0.3),
            ),
        ),
        r(
            "pricing",
            "/v1/prices",
            "GET",
            0.004,
            error=0.0,
            calls=(
                ("currency GET /v1/convert", 1.0),
                ("tax GET /v1/rates", 0.5),
            ),
        ),
        r(
            "fraud-check",
            "/v1/score",
            "POST",
            0.04,
            sigma=0.9,
            calls=(("geo GET /v1/lookup", 1.0),),
        ),
        r("shipping", "/v1/quotes", "POST", 0.02, calls=(("geo GET /v1/lookup", 1.0),)),
        r(
            "auth",
            "/v1/tokens/verify",
            "POST",
            0.002,
            sigma=0.35,
            calls=(("sessions GET /v1/sessions/{id}", 1.0),),
        ),
        shop["payments POST /v1/charges"],
        shop["cart GET /api/v1/carts/{user_id}"],
        shop["catalog GET /api/v1/products/{id}"],
        shop["inventory GET /api/v1/stock"],
        r("search-index", "/v1/query", "POST", 0.012, sigma=0.5),
        r("ratings", "/v1/ratings", "GET", 0.003, error=0.0),
        r("user-profile", "/v1/profiles/{id}", "GET", 0.004, error=0.0),
        r("wishlist", "/v1/wishlists/{id}", "GET", 0.005, error=0.0),
        r("loyalty", "/v1/points/{id}", "GET", 0.006, sigma=0.7, error=0.0),
        r("currency", "/v1/convert", "GET", 0.0015, sigma=0.35, error=0.0),
        r("tax", "/v1/rates", "GET", 0.002, error=0.0),
        r("coupons", "/v1/coupons", "GET", 0.003, error=0.0),
        r("ads", "/v1/ads", "GET", 0.006, sigma=0.5, error=0.0),
        r("media", "/v1/images", "GET", 0.009, sigma=0.6, error=0.0),
        r("feature-flags", "/v1/flags", "GET", 0.001, error=0.0),
        r("sessions", "/v1/sessions/{id}", "GET", 0.0015, error=0.0),
        r("geo", "/v1/lookup", "GET", 0.002, error=0.0),
        r("email", "/v1/send", "POST", 0.08, sigma=0.6, error=0.004),
        shop["api.bank.example POST /v2/charges"],
    ]


PLATFORM_CLIENT_EDGES = (
    *CLIENT_EDGES,
    ("api-gateway", "auth", "auth POST /v1/tokens/verify"),
    ("api-gateway", "pricing", "pricing GET /v1/prices"),
    ("frontend", "pricing", "pricing GET /v1/prices"),
    ("frontend", "recommendations", "recommendations GET /v1/recommendations"),
    ("frontend", "search", "search GET /v1/search"),
    ("checkout", "pricing", "pricing GET /v1/prices"),
    ("search", "pricing", "pricing GET /v1/prices"),
    ("search", "search-index", "search-index POST /v1/query"),
    ("pricing", "currency", "currency GET /v1/convert"),
    ("recommendations", "catalog", "catalog GET /api/v1/products/{id}"),
    ("reviews", "ratings", "ratings GET /v1/ratings"),
    ("fraud-check", "geo", "geo GET /v1/lookup"),
)
"""The platform's instrumented HTTP clients (the others use an SDK without client metrics)."""

PLATFORM = Shop(PLATFORM_SERVICES, PLATFORM_CONFIGS, platform_routes, PLATFORM_CLIENT_EDGES)


# --- the world --------------------------------------------------------------------------------


class World:
    """One scenario's cluster: workloads, pods, routes and what happened to them."""

    def __init__(
        self, *, name: str, end: datetime, shop: Shop = SHOP, window: timedelta = WINDOW
    ) -> None:
        self.name = name
        self.shop = shop
        self.end = end
        self.start = end - window
        self.n = int(window.total_seconds()) // STEP_S + 1
        self.t0 = int(self.start.timestamp())
        self.rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:12], 16))
        self.routes = {r.key: r for r in shop.routes()}
        self.workloads: dict[str, Workload] = {}
        self.pods: list[Pod] = []
        self.configmaps: dict[str, ConfigMap] = {}
        self.events: list[dict[str, Any]] = []
        self.node_events: list[dict[str, Any]] = []
        self._ips: set[str] = set()
        self.avoid: set[str] = set()  # nodes the scheduler does not pick for new pods
        self.container: str | None = None  # every pod's container name (charts' "server")
        self.node_steal: dict[str, np.ndarray] = {}  # node → CPU steal share (node-exporter)
        for r in self.routes.values():
            r.latency_mult = np.ones(self.n)
            r.error_add = np.zeros(self.n)
            r.sigma_add = np.zeros(self.n)
            r.served = np.ones(self.n)
            r.rate = np.zeros(self.n)
        self.entry_mult = np.ones(self.n)
        for name_, spec in shop.services.items():
            self._add_workload(name_, spec)
        targets = [f"otel/{s}" for s in shop.services]
        targets += [f"cadvisor/{n}" for n in NODES] + ["ksm"]
        self.gaps = {target: self._gaps() for target in targets}

    def _gaps(self) -> set[int]:
        """A few missed scrapes of one target (one or two in a row)."""
        missed: set[int] = set()
        for begin in self.rng.integers(5, self.n - 5, size=int(self.rng.integers(2, 5))):
            missed.update(range(int(begin), int(begin) + int(self.rng.integers(1, 3))))
        return missed

    # identities ------------------------------------------------------------------------------

    def uid(self) -> str:
        return str(uuid.UUID(bytes=self.rng.bytes(16), version=4))

    def suffix(self, length: int) -> str:
        return "".join(self.rng.choice(list(_ALPHABET), size=length))

    def ip(self) -> str:
        while True:
            ip = f"10.42.{self.rng.integers(0, 3)}.{self.rng.integers(2, 250)}"
            if ip not in self._ips:
                self._ips.add(ip)
                return ip

    def step(self, moment: datetime) -> int:
        return int((moment - self.start).total_seconds()) // STEP_S

    def at(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * STEP_S)

    # setup -----------------------------------------------------------------------------------

    def _add_workload(self, name: str, spec: Spec) -> None:
        replicas, cpu, mem, mem_base, per_req, tag, revision = spec
        created = self.start - timedelta(days=int(self.rng.integers(90, 400)), hours=3)
        w = Workload(
            name=name,
            replicas=replicas,
            cpu_request=f"{int(parse_cpu(cpu) * 250)}m",
            mem_request=f"{parse_mem(mem) // MIB // 2}Mi",
            mem_base=mem_base,
            cpu_per_request=per_req,
            port=8080,
            uid=self.uid(),
            created=created,
        )
        major, minor, patch = (int(p) for p in tag.split("."))
        history = min(revision, 4)
        ages = sorted(self.rng.uniform(1.2, 60, size=history), reverse=True)
        for k, days in enumerate(ages):
            number = revision - history + 1 + k
            version = (
                f"{major}.{max(minor - (history - 1 - k), 0)}.{patch if k == history - 1 else k}"
            )
            when = self.start - timedelta(days=float(days))
            w.revisions.append(
                self._revision(name, number=number, when=when, tag=version, cpu=cpu, mem=mem)
            )
        w.applied = w.current.created
        self.workloads[name] = w
        for _ in range(replicas):
            self._new_pod(w, w.current, created=w.current.created + timedelta(seconds=20))
        self.configmaps[name] = ConfigMap(
            name=f"{name}-config",
            data=dict(self.shop.configs[name]),
            applied_data=dict(self.shop.configs[name]),
            created=created + timedelta(seconds=2),
            uid=self.uid(),
        )

    def _revision(
        self, name: str, *, number: int, when: datetime, tag: str, cpu: str, mem: str
    ) -> Revision:
        return Revision(
            number=number,
            created=when.replace(microsecond=0),
            image=f"shop/{name}:{tag}",
            cpu_limit=cpu,
            mem_limit=mem,
            hash=self.suffix(10),
            uid=self.uid(),
        )

    def _new_pod(
        self, w: Workload, rev: Revision, *, created: datetime, first: int = 0, ready: int = 0
    ) -> Pod:
        pod = Pod(
            name=f"{w.name}-{rev.hash}-{self.suffix(5)}",
            workload=w.name,
            revision=rev,
            node=str(self.rng.choice([n for n in NODES if n not in self.avoid])),
            ip=self.ip(),
            uid=self.uid(),
            created=created.replace(microsecond=0),
            first=first,
            ready=ready,
            last=self.n,
            cpu_limit=parse_cpu(rev.cpu_limit),
            mem_limit=parse_mem(rev.mem_limit),
        )
        if first == 0 and self.rng.random() < 0.25:  # an old restart, days ago: noise
            pod.restarts_before = 1
            finished = created + (self.start - created) * float(self.rng.uniform(0.2, 0.8))
            pod.last_terminated = {
                "exitCode": 137,
                "reason": "Error",
                "startedAt": rfc3339(created + timedelta(seconds=9)),
                "finishedAt": rfc3339(finished),
            }
        self.pods.append(pod)
        return pod

    def route(self, key: str) -> Route:
        return self.routes[key]

    def live_pods(self, workload: str) -> list[Pod]:
        return [p for p in self.pods if p.workload == workload]

    # changes ---------------------------------------------------------------------------------

    def rollout(
        self,
        name: str,
        at: datetime,
        *,
        tag: str | None = None,
        cpu_limit: str | None = None,
        mem_limit: str | None = None,
        manager: str = "argocd-controller",
    ) -> Revision:
        """A rolling update (maxSurge 1, maxUnavailable 0): new pods one at a time."""
        w = self.workloads[name]
        old = w.current
        tag = tag or old.image.split(":")[1]
        rev = self._revision(
            name,
            number=old.number + 1,
            when=at,
            tag=tag,
            cpu=cpu_limit or old.cpu_limit,
            mem=mem_limit or old.mem_limit,
        )
        w.revisions.append(rev)
        w.applied = at
        olds = [p for p in self.live_pods(name) if p.last == self.n]
        dep = {"kind": "Deployment", "name": name, "uid": w.uid, "apiVersion": "apps/v1"}
        moment = at
        for i, old_pod in enumerate(olds):
            created = moment + timedelta(seconds=1)
            started = created + timedelta(seconds=int(self.rng.integers(5, 9)))
            ready = started + timedelta(seconds=int(self.rng.integers(8, 14)))
            pod = self._new_pod(
                w, rev, created=created, first=self.step(started) + 1, ready=self.step(ready) + 1
            )
            new_rs = f"{name}-{rev.hash}"
            old_rs = f"{name}-{old.hash}"
            self.event(
                dep,
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs} to {i + 1}",
                moment,
                source="deployment-controller",
            )
            self.pod_start_events(pod, rev, created, started)
            self.event(
                {"kind": "ReplicaSet", "name": new_rs, "uid": rev.uid, "apiVersion": "apps/v1"},
                "SuccessfulCreate",
                f"Created pod: {pod.name}",
                created,
                source="replicaset-controller",
            )
            left = len(olds) - i - 1
            self.event(
                dep,
                "ScalingReplicaSet",
                f"Scaled down replica set {old_rs} to {left} from {left + 1}",
                ready,
                source="deployment-controller",
            )
            self.event(
                {"kind": "ReplicaSet", "name": old_rs, "uid": old.uid, "apiVersion": "apps/v1"},
                "SuccessfulDelete",
                f"Deleted pod: {old_pod.name}",
                ready,
                source="replicaset-controller",
            )
            self.event(
                self.pod_ref(old_pod, container=True),
                "Killing",
                f"Stopping container {name}",
                ready,
                source="kubelet",
                host=old_pod.node,
            )
            old_pod.ready = min(old_pod.ready, self.n)
            old_pod.last = self.step(ready) + 2
            moment = ready
        w.manager = manager
        return rev

    def edit_configmap(
        self, name: str, at: datetime, changes: dict[str, str], *, editor: str = "kubectl-edit"
    ) -> None:
        cm = self.configmaps[name]
        cm.data.update(changes)
        cm.edited = at
        cm.editor = editor

    # events ----------------------------------------------------------------------------------

    def pod_ref(self, pod: Pod, *, container: bool = False) -> dict[str, Any]:
        ref = {"kind": "Pod", "name": pod.name, "uid": pod.uid, "apiVersion": "v1"}
        if container:
            ref["fieldPath"] = f"spec.containers{{{pod.workload}}}"
        return ref

    def pod_start_events(
        self, pod: Pod, rev: Revision, created: datetime, started: datetime
    ) -> None:
        self.event(
            self.pod_ref(pod),
            "Scheduled",
            f"Successfully assigned {NAMESPACE}/{pod.name} to {pod.node}",
            created,
            source="default-scheduler",
        )
        ref = self.pod_ref(pod, container=True)
        pulled = created + (started - created) * 0.7
        secs = (pulled - created).total_seconds()
        self.event(
            ref,
            "Pulling",
            f'Pulling image "{rev.image}"',
            created + timedelta(seconds=1),
            source="kubelet",
            host=pod.node,
        )
        size = int(self.rng.integers(38, 160)) * 1_000_000 + int(self.rng.integers(0, 999_999))
        self.event(
            ref,
            "Pulled",
            f'Successfully pulled image "{rev.image}" in {secs:.3f}s '
            f"({secs:.3f}s including waiting). Image size: {size} bytes.",
            pulled,
            source="kubelet",
            host=pod.node,
        )
        self.event(
            ref,
            "Created",
            f"Created container: {pod.workload}",
            started,
            source="kubelet",
            host=pod.node,
        )
        self.event(
            ref,
            "Started",
            f"Started container {pod.workload}",
            started,
            source="kubelet",
            host=pod.node,
        )

    def event(
        self,
        ref: dict[str, Any],
        reason: str,
        message: str,
        first: datetime,
        *,
        source: str,
        host: str | None = None,
        last: datetime | None = None,
        count: int = 1,
        warning: bool = False,
    ) -> None:
        self.events.append(
            {
                "ref": ref,
                "reason": reason,
                "message": message,
                "first": first.replace(microsecond=0),
                "last": (last or first).replace(microsecond=0),
                "count": count,
                "source": source,
                "host": host,
                "type": "Warning" if warning else "Normal",
            }
        )

    # computing the signals -------------------------------------------------------------------

    def diurnal(self) -> np.ndarray:
        hours = (self.t0 + np.arange(self.n) * STEP_S) % 86400 / 3600
        return 0.7 + 0.3 * np.sin(2 * np.pi * (hours - 8) / 24)

    def ar_noise(self, scale: float, *, keep: float = 0.97) -> np.ndarray:
        shocks = self.rng.normal(0, scale, self.n)
        out = np.empty(self.n)
        level = 0.0
        for i, shock in enumerate(shocks):
            level = keep * level + shock
            out[i] = level
        return np.exp(out)

    def compute(self) -> None:
        """Rates (callers first), CPU and throttling, then latency and errors (callees first)."""
        base = self.diurnal() * self.ar_noise(0.012) * self.entry_mult
        for r in self.routes.values():
            r.rate = r.entry_rate * base
        for r in self.routes.values():
            for callee, factor in r.calls:
                self.routes[callee].rate = self.routes[callee].rate + r.rate * r.served * factor
        self.cpu = self._cpu()
        for r in reversed(self.routes.values()):
            thr = self.throttle.get(r.service, np.zeros(self.n))
            median = r.latency * r.latency_mult * (1 + 5 * thr)
            ok = 1 - np.clip(r.error + r.error_add, 0, 1)
            for callee_key, factor in r.calls:
                callee = self.routes[callee_key]
                median = median + factor * callee.median
                ok = ok * (1 - 0.95 * callee.err) ** factor
            r.median = median
            r.server_err = np.clip(1 - ok, 0, 1)
            r.err = 1 - (1 - r.server_err) * r.served

    def _cpu(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per pod: (CPU usage in cores, throttled share of periods); per service the mean."""
        handled: dict[str, np.ndarray] = {}
        for r in self.routes.values():
            if not r.external:
                handled[r.service] = handled.get(r.service, 0) + r.rate * r.served
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.throttle: dict[str, np.ndarray] = {}
        for name, w in self.workloads.items():
            pods = self.live_pods(name)
            ready = np.array([self.ready_mask(p) for p in pods], dtype=float)
            share = ready / np.maximum(ready.sum(axis=0), 1)
            mean_thr = np.zeros(self.n)
            for pod, s in zip(pods, share, strict=True):
                noise = np.exp(self.rng.normal(0, 0.06, self.n))
                per_request = w.cpu_per_request * pod.revision.cpu_factor
                demand = (0.012 + per_request * handled.get(name, 0.2) * s) * noise
                usage = np.minimum(demand, pod.cpu_limit * 0.97)
                thr = np.clip((demand / pod.cpu_limit - 0.5) / 0.9, 0, 0.9)
                thr = thr + self.rng.uniform(0, 0.004, self.n)
                out[pod.name] = (usage, thr)
                mean_thr += thr * s
            self.throttle[name] = mean_thr
        return out

    def ready_mask(self, pod: Pod) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[pod.ready : pod.last] = True
        for a, b in [*pod.down, *pod.unready]:
            mask[a:b] = False
        return mask

    def running_mask(self, pod: Pod) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        mask[pod.first : pod.last] = True
        for a, b in pod.down:
            mask[a:b] = False
        return mask

    def revision_share(self, name: str, rev: Revision) -> np.ndarray:
        """The share of a workload's traffic that pods of one revision serve, per step."""
        pods = self.live_pods(name)
        ready = np.array([self.ready_mask(p) for p in pods], dtype=float)
        mine = np.array([p.revision is rev for p in pods], dtype=float)
        return (ready * mine[:, None]).sum(axis=0) / np.maximum(ready.sum(axis=0), 1)

    def any_ready(self, name: str) -> np.ndarray:
        masks = [self.ready_mask(p) for p in self.live_pods(name)]
        return np.any(masks, axis=0).astype(float)

    def ramp(self, at: datetime, *, seconds: float, size: float) -> np.ndarray:
        """0 before ``at``, then rising linearly to ``size`` over ``seconds``."""
        elapsed = (np.arange(self.n) - self.step(at)) * STEP_S
        return np.clip(elapsed / seconds, 0, 1) * size

    def blip(self, at: datetime, *, seconds: float, size: float) -> np.ndarray:
        """``size`` for ``seconds`` from ``at``, 0 elsewhere."""
        elapsed = (np.arange(self.n) - self.step(at)) * STEP_S
        return np.where((elapsed >= 0) & (elapsed < seconds), size, 0.0)

    # a node in trouble -----------------------------------------------------------------------

    def place(self, node: str, pods: dict[str, int]) -> None:
        """Put exactly ``pods[workload]`` of each workload's running pods on ``node`` and the
        others elsewhere (as the scheduler happened to spread them)."""
        others = [n for n in NODES if n != node]
        for name in self.workloads:
            running = [p for p in self.live_pods(name) if p.last == self.n]
            for k, pod in enumerate(running):
                if k < pods.get(name, 0):
                    pod.node = node
                elif pod.node == node:
                    pod.node = others[k % len(others)]

    def pods_on(self, node: str) -> list[Pod]:
        return [p for p in self.pods if p.node == node and p.last == self.n]

    def node_share(self, name: str, node: str) -> np.ndarray:
        """The share of a workload's traffic that its pods on ``node`` serve, per step."""
        pods = self.live_pods(name)
        ready = np.array([self.ready_mask(p) for p in pods], dtype=float)
        mine = np.array([p.node == node for p in pods], dtype=float)
        return (ready * mine[:, None]).sum(axis=0) / np.maximum(ready.sum(axis=0), 1)

    def noisy_neighbour(
        self, node: str, at: datetime, *, steal: float, slow: float, not_ready: tuple[int, int]
    ) -> None:
        """CPU steal on one node from ``at`` (another tenant of its hypervisor): every pod on it
        serves ``slow`` times slower and its readiness probes time out; the kubelet misses its
        heartbeats for ``not_ready`` = (seconds after ``at``, seconds long), the node goes
        NotReady, the node controller marks its pods not ready and nobody scrapes its cAdvisor."""
        ramp = self.ramp(at, seconds=90, size=1.0)
        self.node_steal[node] = steal * ramp
        down = self.step(at + timedelta(seconds=not_ready[0]))
        up = self.step(at + timedelta(seconds=not_ready[0] + not_ready[1]))
        pods = self.pods_on(node)
        for pod in pods:
            pod.unready.append((down, up))
        self.gaps[f"cadvisor/{node}"].update(range(down, up))
        for name in sorted({p.workload for p in pods}):
            share = self.node_share(name, node)
            for r in self.routes.values():
                if r.service == name and not r.external:
                    r.latency_mult = r.latency_mult * (1 + slow * share * ramp)
                    r.sigma_add = r.sigma_add + 0.25 * share * ramp
                    r.served = self.any_ready(name)
        self._node_records(node, pods, at=at, down=self.at(down), up=self.at(up))

    def _node_records(
        self, node: str, pods: list[Pod], *, at: datetime, down: datetime, up: datetime
    ) -> None:
        ref = {"kind": "Node", "name": node, "uid": node, "apiVersion": "v1"}
        for reason, when, source in (
            ("NodeNotReady", down, "node-controller"),
            ("NodeReady", up, "kubelet"),
        ):
            self.node_events.append(
                {
                    "ref": ref,
                    "reason": reason,
                    "source": source,
                    "message": f"Node {node} status is now: {reason}",
                    "first": when,
                    "last": when,
                    "count": 1,
                    "host": node if source == "kubelet" else None,
                    "type": "Normal",
                }
            )
        for pod in pods:
            self.event(
                self.pod_ref(pod),
                "NodeNotReady",
                "Node is not ready",
                down + timedelta(seconds=int(self.rng.integers(0, 3))),
                source="node-controller",
                warning=True,
            )
            first = at + timedelta(seconds=int(self.rng.integers(40, 80)))
            self.event(
                self.pod_ref(pod, container=True),
                "Unhealthy",
                f'Readiness probe failed: Get "http://{pod.ip}:8080/healthz": context deadline '
                "exceeded (Client.Timeout exceeded while awaiting headers)",
                first,
                last=self.end - timedelta(seconds=int(self.rng.integers(5, 40))),
                count=int((self.end - first).total_seconds() // 5 * self.rng.uniform(0.2, 0.4)),
                source="kubelet",
                host=pod.node,
                warning=True,
            )

    # a crash loop ----------------------------------------------------------------------------

    def crashloop(self, pod: Pod, *, grow_s: float) -> None:
        """OOM kills: memory climbs to the limit in ``grow_s``; kubelet backs off 10 s, 20 s…"""
        mem = np.full(self.n, np.nan)
        start, backoff, kills = pod.first, 10, []
        while start < self.n:
            length = max(int(grow_s * float(self.rng.uniform(0.8, 1.2))) // STEP_S, 2)
            end = min(start + length, self.n)
            rise = np.linspace(0.45, 1.0, length)[: end - start]
            mem[start:end] = pod.mem_limit * np.minimum(rise, 0.995)
            if start + length >= self.n:
                break
            kills.append(start + length)
            restart = start + length + max(backoff // STEP_S, 1)
            pod.down.append((start + length, min(restart, self.n)))
            if restart < self.n:
                pod.restarts.append(restart)
            start, backoff = restart, min(backoff * 2, 300)
        pod.mem_override = mem
        self._crash_records(pod, kills, backoff)

    def _crash_records(self, pod: Pod, kills: list[int], backoff: int) -> None:
        if not kills:
            return
        last_kill = self.at(kills[-1])
        started = self.at(pod.restarts[-2] if len(pod.restarts) > 1 else pod.first)
        pod.last_terminated = {
            "exitCode": 137,
            "reason": "OOMKilled",
            "startedAt": rfc3339(started),
            "finishedAt": rfc3339(last_kill),
        }
        if pod.down and pod.down[-1][1] >= self.n:
            pod.waiting = {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {_go_duration(max(backoff // 2, 10))} restarting failed "
                f"container={pod.workload} pod={pod.name}_{NAMESPACE}({pod.uid})",
            }
        ref = self.pod_ref(pod, container=True)
        if len(kills) > 1:
            self.event(
                ref,
                "BackOff",
                "Back-off restarting failed container "
                f"{pod.workload} in pod {pod.name}_{NAMESPACE}({pod.uid})",
                self.at(kills[1]),
                last=self.end,
                count=len(kills) * 3 - 2,
                source="kubelet",
                host=pod.node,
                warning=True,
            )
        if pod.restarts:
            first, last = self.at(pod.restarts[0]), self.at(pod.restarts[-1])
            count = len(pod.restarts)
            self.event(
                ref,
                "Pulled",
                f'Container image "{pod.revision.image}" already present on machine',
                first,
                last=last,
                count=count,
                source="kubelet",
                host=pod.node,
            )
            self.event(
                ref,
                "Created",
                f"Created container: {pod.workload}",
                first,
                last=last,
                count=count,
                source="kubelet",
                host=pod.node,
            )
            self.event(
                ref,
                "Started",
                f"Started container {pod.workload}",
                first,
                last=last,
                count=count,
                source="kubelet",
                host=pod.node,
            )
        node = {"kind": "Node", "name": pod.node, "uid": pod.node, "apiVersion": "v1"}
        for k in kills:
            pid = int(self.rng.integers(3000, 90000))
            rss = int(pod.mem_limit * 0.98) // 1024
            self.node_events.append(
                {
                    "ref": node,
                    "reason": "OOMKilling",
                    "source": "kernel-monitor",
                    "message": f"Memory cgroup out of memory: Killed process "
                    f"{pid} ({pod.workload}) total-vm:{rss * 3}kB, "
                    f"anon-rss:{rss}kB, file-rss:{rss // 60}kB, shmem-rss:0kB, "
                    "UID:10001 pgtables:1184kB oom_score_adj:984",
                    "first": self.at(k),
                    "last": self.at(k),
                    "count": 1,
                    "host": pod.node,
                    "type": "Warning",
                }
            )


def _go_duration(seconds: int) -> str:
    """A duration as kubelet prints it: 40s, 2m40s, 5m0s."""
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


# --- metrics ----------------------------------------------------------------------------------


def _labels(pairs: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


class MetricsWriter:
    """OpenMetrics text: each family under its # TYPE, each series contiguous and time-ordered."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng
        self.times = [str(world.t0 + i * STEP_S) for i in range(world.n)]
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def series(
        self, name: str, labels: dict[str, str], values: np.ndarray, *, fmt: str, target: str
    ) -> None:
        """One series; NaN means no sample (the target was down or the series did not exist)."""
        head = name + _labels(labels) + " "
        gaps = self.w.gaps[target]
        for i, v in enumerate(values):
            if i not in gaps and not math.isnan(v):
                self.lines.append(f"{head}{v:{fmt}} {self.times[i]}")

    def text(self) -> str:
        return "\n".join([*self.lines, "# EOF", ""])

    # histograms ------------------------------------------------------------------------------

    def histogram(
        self,
        name: str,
        labels: dict[str, str],
        *,
        rate: np.ndarray,
        median: np.ndarray,
        sigma: np.ndarray,
        target: str,
    ) -> None:
        """Cumulative buckets, _count and _sum of lognormal latencies; absent until first seen."""
        n = self.rng.poisson(np.maximum(rate, 0) * STEP_S)
        z = (np.log(np.array(BUCKETS))[None, :] - np.log(median)[:, None]) / sigma[:, None]
        cdf = 0.5 * (1 + _erf(z / math.sqrt(2)))
        probs = np.diff(np.concatenate([np.zeros((self.w.n, 1)), cdf, np.ones((self.w.n, 1))], 1))
        probs = np.clip(probs, 0, None)
        probs /= probs.sum(axis=1, keepdims=True)
        counts = self.rng.multinomial(n, probs)
        mean = median * np.exp(sigma**2 / 2)
        jitter = np.exp(self.rng.normal(0, 1, self.w.n) * sigma / np.sqrt(np.maximum(n, 1)))
        total = np.cumsum(n * mean * jitter)
        buckets = np.cumsum(np.cumsum(counts, axis=1), axis=0)
        cum = np.cumsum(n)
        if cum[-1] == 0:
            return
        gaps = self.w.gaps[target]
        les = [str(b) for b in BUCKETS] + ["+Inf"]
        heads = [f"{name}_bucket{_labels({**labels, 'le': le})} " for le in les]
        count_head = f"{name}_count{_labels(labels)} "
        sum_head = f"{name}_sum{_labels(labels)} "
        for i in range(int(np.argmax(cum > 0)), self.w.n):
            if i in gaps:
                continue
            ts = self.times[i]
            self.lines += [f"{h}{int(b)} {ts}" for h, b in zip(heads, buckets[i], strict=True)]
            self.lines += [f"{count_head}{int(cum[i])} {ts}", f"{sum_head}{total[i]:.4f} {ts}"]

    def http(self) -> None:
        w = self.w
        self.family(
            "http_server_request_duration_seconds", "histogram", "Duration of HTTP server requests."
        )
        for r in w.routes.values():
            if r.external:
                continue
            labels = {
                "service_name": r.service,
                "http_route": r.route,
                "http_request_method": r.method,
            }
            handled = r.rate * r.served
            sigma = r.sigma + r.sigma_add
            for status, share, slow in (
                ("200", 1 - r.server_err, 1.0),
                (r.error_status, r.server_err, 0.6),
            ):
                self.histogram(
                    "http_server_request_duration_seconds",
                    {**labels, "http_response_status_code": status},
                    rate=handled * share,
                    median=r.median * slow,
                    sigma=sigma,
                    target=f"otel/{r.service}",
                )
        self.family(
            "http_client_request_duration_seconds", "histogram", "Duration of HTTP client requests."
        )
        for caller, address, callee_key in w.shop.client_edges:
            callee = w.routes[callee_key]
            labels = {
                "service_name": caller,
                "server_address": address,
                "server_port": "443" if callee.external else "8080",
                "http_request_method": callee.method,
            }
            sigma = callee.sigma + callee.sigma_add
            for status, share, slow in (
                ("200", 1 - callee.server_err, 1.0),
                (callee.error_status, callee.server_err, 0.8),
            ):
                self.histogram(
                    "http_client_request_duration_seconds",
                    {**labels, "http_response_status_code": status},
                    rate=callee.rate * callee.served * share,
                    median=callee.median * slow + 0.002,
                    sigma=sigma,
                    target=f"otel/{caller}",
                )

    # containers ------------------------------------------------------------------------------

    def _segments(self, pod: Pod) -> np.ndarray:
        """Per step, the start step of the running container (restarts reset cAdvisor counters)."""
        seg = np.full(self.w.n, pod.first)
        for r in pod.restarts:
            seg[r:] = r
        return seg

    def _counter(self, pod: Pod, per_step: np.ndarray, *, offset: float) -> np.ndarray:
        running = self.w.running_mask(pod)
        seg = self._segments(pod)
        out = np.full(self.w.n, np.nan)
        acc, current = (offset if pod.first == 0 else 0.0), pod.first
        for i in np.flatnonzero(running):
            if seg[i] != current:
                acc, current = 0.0, seg[i]
            acc += per_step[i]
            out[i] = acc
        return out

    def cadvisor(self) -> None:
        w = self.w
        cpu, mem, periods, throttled = [], [], [], []
        for pod in w.pods:
            labels = {
                "namespace": NAMESPACE,
                "pod": pod.name,
                "container": w.container or pod.workload,
            }
            usage, thr = w.cpu[pod.name]
            age = (w.start - pod.created).total_seconds() if pod.first == 0 else 0.0
            active = np.minimum(1.0, 0.35 + 2.5 * usage) * (1000 / 100) * STEP_S
            cpu.append(
                (labels, self._counter(pod, usage * STEP_S, offset=age * usage.mean()), pod.node)
            )
            mem.append((labels, self._memory(pod), pod.node))
            periods.append((labels, self._counter(pod, np.round(active), offset=age * 7), pod.node))
            throttled.append(
                (labels, self._counter(pod, np.round(active * thr), offset=age * 0.02), pod.node)
            )
        for name, kind, help_text, rows, fmt in (
            (
                "container_cpu_usage_seconds",
                "counter",
                "Cumulative cpu time consumed in seconds.",
                cpu,
                ".4f",
            ),
            (
                "container_memory_working_set_bytes",
                "gauge",
                "Current working set in bytes.",
                mem,
                ".0f",
            ),
            (
                "container_cpu_cfs_periods",
                "counter",
                "Number of elapsed enforcement period intervals.",
                periods,
                ".0f",
            ),
            (
                "container_cpu_cfs_throttled_periods",
                "counter",
                "Number of throttled period intervals.",
                throttled,
                ".0f",
            ),
        ):
            self.family(name, kind, help_text)
            sample = name + "_total" if kind == "counter" else name
            for labels, values, node in rows:
                self.series(sample, labels, values, fmt=fmt, target=f"cadvisor/{node}")

    def _memory(self, pod: Pod) -> np.ndarray:
        w = self.w
        running = w.running_mask(pod)
        if pod.mem_override is not None:
            return np.where(running, pod.mem_override, np.nan)
        base = w.workloads[pod.workload].mem_base
        since = np.arange(w.n) - pod.first + (10_000 if pod.first == 0 else 0)
        warm = 1 - 0.35 * np.exp(-since / 40)
        saw = 0.03 * ((np.arange(w.n) + int(self.rng.integers(0, 60))) % 60) / 60
        values = base * warm * (1 + saw) * w.ar_noise(0.004)
        return np.where(running, values, np.nan)

    # kube-state-metrics ----------------------------------------------------------------------

    def kube_state(self) -> None:
        w = self.w
        self.family(
            "kube_pod_container_status_restarts",
            "counter",
            "The number of container restarts per container.",
        )
        exists = {}
        for pod in w.pods:
            mask = np.zeros(w.n, dtype=bool)
            mask[max(w.step(pod.created) + 1, 0) : pod.last] = True
            exists[pod.name] = mask
            restarts = np.full(w.n, float(pod.restarts_before))
            for r in pod.restarts:
                restarts[r:] += 1
            labels = {
                "namespace": NAMESPACE,
                "pod": pod.name,
                "container": w.container or pod.workload,
            }
            self.series(
                "kube_pod_container_status_restarts_total",
                labels,
                np.where(mask, restarts, np.nan),
                fmt=".0f",
                target="ksm",
            )
        self.family(
            "kube_pod_container_resource_limits",
            "gauge",
            "The number of requested limit resource by a container.",
        )
        for resource, unit in (("cpu", "core"), ("memory", "byte")):
            for pod in w.pods:
                value = pod.cpu_limit if resource == "cpu" else pod.mem_limit
                labels = {
                    "namespace": NAMESPACE,
                    "pod": pod.name,
                    "container": w.container or pod.workload,
                    "resource": resource,
                    "unit": unit,
                }
                self.series(
                    "kube_pod_container_resource_limits",
                    labels,
                    np.where(exists[pod.name], float(value), np.nan),
                    fmt="g",
                    target="ksm",
                )
        self.family(
            "kube_deployment_spec_replicas", "gauge", "Number of desired pods for a deployment."
        )
        for name, wl in w.workloads.items():
            self.series(
                "kube_deployment_spec_replicas",
                {"namespace": NAMESPACE, "deployment": name},
                np.full(w.n, float(wl.replicas)),
                fmt=".0f",
                target="ksm",
            )
        self.family(
            "kube_deployment_status_replicas_available",
            "gauge",
            "The number of available replicas per deployment.",
        )
        for name in w.workloads:
            ready = np.sum([w.ready_mask(p) for p in w.live_pods(name)], axis=0)
            self.series(
                "kube_deployment_status_replicas_available",
                {"namespace": NAMESPACE, "deployment": name},
                ready.astype(float),
                fmt=".0f",
                target="ksm",
            )

    def app(self) -> None:
        """checkout's own gauge: orders waiting for a payment slot (Little's law, plus noise)."""
        payments = self.w.routes["payments POST /v1/charges"]
        depth = payments.rate * payments.median * 1.3 * self.w.ar_noise(0.05, keep=0.8)
        depth = np.round(depth + self.rng.poisson(0.4, self.w.n))
        self.family("checkout_payment_queue_depth", "gauge", "Orders waiting for a payment worker.")
        self.series(
            "checkout_payment_queue_depth",
            {"app": "checkout", "namespace": NAMESPACE},
            depth,
            fmt=".0f",
            target="otel/checkout",
        )

    def node_exporter(self) -> None:
        """node-exporter's CPU seconds per node, CPU and mode, when a scenario has a node in
        trouble (relabelled as kube-prometheus does: ``instance`` is the node's name)."""
        w = self.w
        if not w.node_steal:
            return
        self.family("node_cpu_seconds", "counter", "Seconds the CPUs spent in each mode.")
        for node in NODES:
            target = f"node-exporter/{node}"
            w.gaps.setdefault(target, w._gaps())
            uptime = float(self.rng.uniform(5, 40)) * 86400
            for cpu in ("0", "1"):
                modes = {
                    "user": (0.16 + 0.1 * w.diurnal()) * w.ar_noise(0.03, keep=0.9),
                    "system": 0.045 * w.ar_noise(0.03, keep=0.9),
                    "iowait": 0.008 * w.ar_noise(0.05, keep=0.8),
                    "steal": 0.002 * w.ar_noise(0.05, keep=0.8)
                    + w.node_steal.get(node, np.zeros(w.n)) * w.ar_noise(0.04, keep=0.9),
                }
                modes["idle"] = np.clip(1 - sum(modes.values()), 0.01, 1)
                for mode in ("idle", "iowait", "steal", "system", "user"):
                    share = modes[mode]
                    labels = {"cpu": cpu, "instance": node, "job": "node-exporter", "mode": mode}
                    values = uptime * float(share[0]) + np.cumsum(share * STEP_S)
                    self.series("node_cpu_seconds_total", labels, values, fmt=".2f", target=target)


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not needed."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1 - poly * np.exp(-x * x))


def render_metrics(world: World) -> str:
    writer = MetricsWriter(world)
    writer.http()
    writer.cadvisor()
    writer.kube_state()
    writer.app()
    writer.node_exporter()
    return writer.text()


# --- kubernetes objects -----------------------------------------------------------------------


class KubeWriter:
    """The objects as the API returned them at ``world.end``, when the incident was recorded."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.version = 4_812_000 + int(world.rng.integers(0, 90_000))

    def resource_version(self) -> str:
        self.version += int(self.w.rng.integers(3, 400))
        return str(self.version)

    def meta(self, name: str, uid: str, created: datetime, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": NAMESPACE,
            "uid": uid,
            "resourceVersion": self.resource_version(),
            "creationTimestamp": rfc3339(created),
            **extra,
        }

    def container(self, w: Workload, rev: Revision) -> dict[str, Any]:
        return {
            "name": w.name,
            "image": rev.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": w.port, "protocol": "TCP"}],
            "env": [
                {"name": "OTEL_SERVICE_NAME", "value": w.name},
                {
                    "name": "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "value": "http://otel-collector.observability:4317",
                },
            ],
            "resources": {
                "limits": {"cpu": rev.cpu_limit, "memory": rev.mem_limit},
                "requests": {"cpu": w.cpu_request, "memory": w.mem_request},
            },
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                "periodSeconds": 5,
                "timeoutSeconds": 1,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
            "volumeMounts": [{"name": "config", "mountPath": f"/etc/{w.name}", "readOnly": True}],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }

    def pod_spec(self, w: Workload, rev: Revision) -> dict[str, Any]:
        return {
            "containers": [self.container(w, rev)],
            "volumes": [
                {"name": "config", "configMap": {"name": f"{w.name}-config", "defaultMode": 420}}
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": w.name,
            "schedulerName": "default-scheduler",
        }

    def template(self, w: Workload, rev: Revision, *, hashed: bool) -> dict[str, Any]:
        labels = {"app": w.name, "app.kubernetes.io/part-of": "shop"}
        if hashed:
            labels["pod-template-hash"] = rev.hash
        return {"metadata": {"labels": labels}, "spec": self.pod_spec(w, rev)}

    # objects -----------------------------------------------------------------------------

    def deployment(self, w: Workload) -> dict[str, Any]:
        world = self.w
        pods = [p for p in world.live_pods(w.name) if p.last >= world.n]
        ready = sum(1 for p in pods if world.ready_mask(p)[-1])
        updated = sum(1 for p in pods if p.revision is w.current)
        available = ready >= w.replicas
        applied = w.applied or w.current.created
        last_pod_change = max([p.created for p in pods] + [applied])
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(
                w.name,
                w.uid,
                w.created,
                generation=w.current.number + 3,
                labels={"app": w.name, "app.kubernetes.io/part-of": "shop"},
                annotations={"deployment.kubernetes.io/revision": str(w.current.number)},
                managedFields=[
                    _managed(
                        w.manager,
                        applied,
                        "apps/v1",
                        {
                            "f:spec": {
                                "f:template": {
                                    "f:spec": {
                                        "f:containers": {
                                            f'k:{{"name":"{w.name}"}}': {
                                                "f:image": {},
                                                "f:resources": {
                                                    "f:limits": {"f:cpu": {}, "f:memory": {}}
                                                },
                                            }
                                        }
                                    }
                                }
                            }
                        },
                    ),
                    _managed(
                        "kube-controller-manager",
                        last_pod_change,
                        "apps/v1",
                        {
                            "f:status": {
                                "f:availableReplicas": {},
                                "f:conditions": {},
                                "f:readyReplicas": {},
                            }
                        },
                        subresource="status",
                    ),
                ],
            ),
            "spec": {
                "replicas": w.replicas,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": w.name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
                "template": self.template(w, w.current, hashed=False),
            },
            "status": {
                "observedGeneration": w.current.number + 3,
                "replicas": len(pods),
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                **({"unavailableReplicas": len(pods) - ready} if ready < len(pods) else {}),
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if available else "False",
                        "reason": "MinimumReplicasAvailable"
                        if available
                        else "MinimumReplicasUnavailable",
                        "message": "Deployment has minimum availability."
                        if available
                        else "Deployment does not have minimum availability.",
                        "lastUpdateTime": rfc3339(last_pod_change),
                        "lastTransitionTime": rfc3339(w.created if available else last_pod_change),
                    },
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{w.name}-{w.current.hash}" has successfully '
                        "progressed.",
                        "lastUpdateTime": rfc3339(last_pod_change),
                        "lastTransitionTime": rfc3339(w.created),
                    },
                ],
            },
        }

    def replicaset(self, w: Workload, rev: Revision) -> dict[str, Any]:
        world = self.w
        pods = [p for p in world.live_pods(w.name) if p.revision is rev and p.last >= world.n]
        ready = sum(1 for p in pods if world.ready_mask(p)[-1])
        current = rev is w.current
        later = [r.created for r in w.revisions if r.number > rev.number]
        scaled = later[0] if later else rev.created
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": self.meta(
                f"{w.name}-{rev.hash}",
                rev.uid,
                rev.created,
                generation=2 if later else 1,
                labels={
                    "app": w.name,
                    "app.kubernetes.io/part-of": "shop",
                    "pod-template-hash": rev.hash,
                },
                annotations={
                    "deployment.kubernetes.io/desired-replicas": str(w.replicas),
                    "deployment.kubernetes.io/max-replicas": str(w.replicas + 1),
                    "deployment.kubernetes.io/revision": str(rev.number),
                },
                ownerReferences=[
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": w.name,
                        "uid": w.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                managedFields=[
                    _managed(
                        "kube-controller-manager", scaled, "apps/v1", {"f:spec": {"f:replicas": {}}}
                    )
                ],
            ),
            "spec": {
                "replicas": w.replicas if current else 0,
                "selector": {"matchLabels": {"app": w.name, "pod-template-hash": rev.hash}},
                "template": self.template(w, rev, hashed=True),
            },
            "status": {
                "replicas": len(pods),
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": 2 if later else 1,
            },
        }

    def pod(self, pod: Pod) -> dict[str, Any]:
        world = self.w
        w = world.workloads[pod.workload]
        started_step = pod.restarts[-1] if pod.restarts else pod.first
        started = world.at(started_step) if started_step > 0 else pod.created + timedelta(seconds=9)
        ready_now = bool(world.ready_mask(pod)[-1])
        status: dict[str, Any] = {
            "name": w.name,
            "image": pod.revision.image,
            "imageID": f"{pod.revision.image.split(':')[0]}@sha256:"
            + hashlib.sha256(pod.revision.image.encode()).hexdigest(),
            "containerID": "containerd://" + hashlib.sha256(pod.name.encode()).hexdigest(),
            "ready": ready_now,
            "started": pod.waiting is None,
            "restartCount": pod.restarts_before + len(pod.restarts),
            "state": {"waiting": pod.waiting}
            if pod.waiting
            else {"running": {"startedAt": rfc3339(started)}},
            "lastState": {"terminated": pod.last_terminated} if pod.last_terminated else {},
        }
        since = rfc3339(world.at(pod.ready) if pod.ready > 0 else started)
        cond_ready = "True" if ready_now else "False"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self.meta(
                pod.name,
                pod.uid,
                pod.created,
                generateName=f"{w.name}-{pod.revision.hash}-",
                labels={
                    "app": w.name,
                    "app.kubernetes.io/part-of": "shop",
                    "pod-template-hash": pod.revision.hash,
                },
                ownerReferences=[
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{w.name}-{pod.revision.hash}",
                        "uid": pod.revision.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            ),
            "spec": {**self.pod_spec(w, pod.revision), "nodeName": pod.node},
            "status": {
                "phase": "Running",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "True",
                        "lastTransitionTime": rfc3339(pod.created),
                    },
                    {
                        "type": "Initialized",
                        "status": "True",
                        "lastTransitionTime": rfc3339(pod.created),
                    },
                    {"type": "ContainersReady", "status": cond_ready, "lastTransitionTime": since},
                    {"type": "Ready", "status": cond_ready, "lastTransitionTime": since},
                ],
                "hostIP": f"10.0.{NODES.index(pod.node) + 1}.{10 + NODES.index(pod.node)}",
                "podIP": pod.ip,
                "podIPs": [{"ip": pod.ip}],
                "startTime": rfc3339(pod.created),
                "qosClass": "Burstable",
                "containerStatuses": [status],
            },
        }

    def service(self, w: Workload) -> dict[str, Any]:
        ip = f"10.96.{int(self.w.rng.integers(0, 255))}.{int(self.w.rng.integers(2, 255))}"
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(
                w.name,
                self.w.uid(),
                w.created,
                labels={"app": w.name, "app.kubernetes.io/part-of": "shop"},
            ),
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip,
                "clusterIPs": [ip],
                "selector": {"app": w.name},
                "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
                "sessionAffinity": "None",
            },
            "status": {"loadBalancer": {}},
        }

    def configmap(self, cm: ConfigMap) -> dict[str, Any]:
        applied = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "data": cm.applied_data,
            "metadata": {"name": cm.name, "namespace": NAMESPACE},
        }
        changed = sorted(k for k in cm.data if cm.data[k] != cm.applied_data.get(k))
        kept = {f"f:{k}": {} for k in cm.data if k not in changed}
        fields = [
            _managed(
                "kubectl-client-side-apply",
                cm.created,
                "v1",
                {
                    "f:data": {".": {}, **kept},
                    "f:metadata": {
                        "f:annotations": {
                            ".": {},
                            "f:kubectl.kubernetes.io/last-applied-configuration": {},
                        }
                    },
                },
            )
        ]
        if cm.edited is not None:
            fields.append(
                _managed(cm.editor, cm.edited, "v1", {"f:data": {f"f:{k}": {} for k in changed}})
            )
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(
                cm.name,
                cm.uid,
                cm.created,
                labels={
                    "app": cm.name.removesuffix("-config"),
                    "app.kubernetes.io/part-of": "shop",
                },
                annotations={
                    "kubectl.kubernetes.io/last-applied-configuration": _compact_json(applied)
                    + "\n"
                },
                managedFields=fields,
            ),
            "data": dict(cm.data),
        }

    def event(self, e: dict[str, Any]) -> dict[str, Any]:
        ref = {
            "kind": e["ref"]["kind"],
            "name": e["ref"]["name"],
            "uid": e["ref"]["uid"],
            "apiVersion": e["ref"]["apiVersion"],
        }
        if e["ref"]["kind"] != "Node":
            ref["namespace"] = NAMESPACE
        if "fieldPath" in e["ref"]:
            ref["fieldPath"] = e["ref"]["fieldPath"]
        ref["resourceVersion"] = str(self.version - int(self.w.rng.integers(100, 5000)))
        nanos = int(e["first"].timestamp() * 1e9) + int(self.w.rng.integers(0, 10**9))
        namespace = "default" if e["ref"]["kind"] == "Node" else NAMESPACE
        source = {"component": e["source"], **({"host": e["host"]} if e.get("host") else {})}
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{e['ref']['name']}.{nanos:x}",
                "namespace": namespace,
                "uid": self.w.uid(),
                "resourceVersion": self.resource_version(),
                "creationTimestamp": rfc3339(e["first"]),
            },
            "involvedObject": ref,
            "reason": e["reason"],
            "message": e["message"],
            "source": source,
            "firstTimestamp": rfc3339(e["first"]),
            "lastTimestamp": rfc3339(e["last"]),
            "count": e["count"],
            "type": e["type"],
            "eventTime": None,
            "reportingComponent": e["source"],
            "reportingInstance": e.get("host") or "",
        }

    def files(self) -> dict[str, list[dict[str, Any]]]:
        w = self.w
        live = [p for p in w.pods if p.last >= w.n]
        recent = [e for e in w.events + w.node_events if w.end - EVENT_TTL <= e["last"] <= w.end]
        recent.sort(key=lambda e: (e["first"], e["last"]))
        return {
            "deployments": [self.deployment(x) for x in w.workloads.values()],
            "replicasets": [
                self.replicaset(x, r) for x in w.workloads.values() for r in x.revisions
            ],
            "pods": [self.pod(p) for p in live],
            "services": [self.service(x) for x in w.workloads.values()],
            "configmaps": [self.configmap(c) for c in w.configmaps.values()],
            "events": [self.event(e) for e in recent],
        }


def _managed(
    manager: str, when: datetime, api_version: str, fields: dict[str, Any], **extra: str
) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": rfc3339(when),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# --- the scenarios ----------------------------------------------------------------------------


@dataclass
class Incident:
    world: World
    description: str  # what a responder would write down; never the cause
    trigger: dict[str, Any]
    truth: dict[str, Any]
    logs: dict[str, list[str]] = field(default_factory=dict)  # pod → logs/<pod>.log lines
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # more kubernetes/


def _alert(at: str, *, title: str, service: str, severity: str = "critical") -> dict[str, Any]:
    """An Alertmanager alert: the rule's name is the title's first word."""
    labels = {
        "alertname": title.split(":", maxsplit=1)[0],
        "severity": severity,
        "namespace": NAMESPACE,
        "service_name": service,
    }
    return {
        "source": "alertmanager",
        "title": title,
        "service": service,
        "namespace": NAMESPACE,
        "at": at,
        "labels": labels,
    }


def _page(at: str, *, title: str, service: str) -> dict[str, Any]:
    """A PagerDuty incident (from an SLO tool): fewer labels."""
    return {
        "source": "pagerduty",
        "title": title,
        "service": service,
        "namespace": NAMESPACE,
        "at": at,
        "labels": {"severity": "critical"},
    }


def _cause(kind: str, component: str, *, change: str | None, detail: str) -> dict[str, Any]:
    cause = {"kind": kind, "component": component}
    return {**cause, "change": change, "detail": detail} if change else {**cause, "detail": detail}


def bad_deploy_5xx() -> Incident:
    world = World(name="bad-deploy-5xx", end=utc("2026-01-13T10:00:00Z"))
    world.rollout("inventory", utc("2026-01-13T09:08:12Z"), tag="0.18.4")  # harmless, earlier
    rev = world.rollout("checkout", utc("2026-01-13T09:52:04Z"), tag="2.14.0")
    orders = world.route("checkout POST /api/v1/orders")
    orders.error_add = 0.15 * world.revision_share("checkout", rev)
    world.route("catalog GET /api/v1/products/{id}").latency_mult += world.blip(
        utc("2026-01-13T09:31:00Z"), seconds=120, size=0.6
    )
    world.compute()
    detail = (
        "checkout 2.14.0 returns 500 on POST /api/v1/orders for ~15% of orders from the "
        "moment its pods take traffic; frontend's POST /checkout turns them into 502s. "
        "An inventory rollout 45 minutes earlier and a catalog latency bump are unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's checkout route starts failing.",
        _alert(
            "2026-01-13T09:57:00Z",
            service="frontend",
            title="FrontendHighErrorRate: frontend 5xx ratio on POST /checkout above 5% for 2m",
        ),
        {
            "root_cause": _cause(
                "deploy", "checkout", change=f"deployment/checkout@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def config_latency(*, name: str = "config-latency", editor: str = "kubectl-edit") -> Incident:
    world = World(name=name, end=utc("2026-01-20T15:40:00Z"))
    world.rollout("catalog", utc("2026-01-20T14:58:30Z"), tag="1.31.1")  # harmless
    onset = utc("2026-01-20T15:31:41Z")
    world.edit_configmap("payments", onset, {"BANK_POOL_MAX_CONNECTIONS": "4"}, editor=editor)
    payments = world.route("payments POST /v1/charges")
    payments.latency_mult = 1 + world.ramp(onset + timedelta(seconds=8), seconds=45, size=24)
    payments.sigma_add = world.ramp(onset + timedelta(seconds=8), seconds=45, size=0.25)
    world.compute()
    detail = (
        "payments-config's bank connection pool was cut from 64 to 4 with kubectl edit; "
        "payments hot-reloads it (no rollout) and charges queue for a connection: "
        "payments' p95 rises ~6x while its own calls to the bank stay as fast as before; "
        "checkout and frontend slow down with it. A catalog rollout 33 minutes earlier "
        "is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: checkout's latency SLO starts burning.",
        _alert(
            "2026-01-20T15:37:00Z",
            service="checkout",
            title="CheckoutLatencySLOBurn: checkout p95 latency above 600ms for 5m",
        ),
        {
            "root_cause": _cause(
                "config", "payments", change="configmap/payments-config", detail=detail
            ),
            "fix": "config_revert",
        },
    )


DEPLOY_REPOSITORY = "https://git.shop.example/shop/deploy"
"""The repository Argo CD applies the shop's manifests from."""


def config_argocd_sync() -> Incident:
    """config-latency's pool cut, made by an Argo CD sync of the deploy repository (no code
    changed, no rollout): the ConfigMap's edit is tied to the sync that applied it."""
    incident = config_latency(name="config-argocd-sync", editor="argocd-controller")
    world = incident.world
    synced = utc("2026-01-20T15:31:45Z")  # the operation ends just after the edit
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop-payments", "namespace": "argocd"},
        "spec": {
            "project": "shop",
            "source": {"repoURL": DEPLOY_REPOSITORY, "path": "payments", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
        },
        "status": {
            "sync": {"status": "Synced", "revision": "5e1d0c2" * 5 + "a1b2c"},
            "health": {"status": "Healthy"},
            "history": [
                {
                    "id": 30,
                    "revision": "0b7f3a9" * 5 + "c4d5e",
                    "deployedAt": rfc3339(world.start - timedelta(days=3)),
                },
                {"id": 31, "revision": "5e1d0c2" * 5 + "a1b2c", "deployedAt": rfc3339(synced)},
            ],
            "resources": [
                {"group": "apps", "kind": "Deployment", "namespace": NAMESPACE, "name": "payments"},
                {"kind": "ConfigMap", "namespace": NAMESPACE, "name": "payments-config"},
            ],
        },
    }
    detail = (
        "Argo CD sync 31 of shop-payments applied a commit of the deploy repository that cut "
        "payments-config's bank connection pool from 64 to 4; payments hot-reloads it (no "
        "rollout, no code change) and charges queue for a connection. A catalog rollout 33 "
        "minutes earlier is unrelated."
    )
    truth = {
        "root_cause": _cause(
            "config", "payments", change="configmap/payments-config", detail=detail
        ),
        "fix": "config_revert",
    }
    return replace(incident, truth=truth, objects={"deliveries": [application]})


def deploy_decoy() -> Incident:
    world = World(name="deploy-decoy", end=utc("2026-02-03T19:25:00Z"))
    world.rollout("catalog", utc("2026-02-03T19:15:21Z"), tag="1.32.0")  # harmless, same minute
    rev = world.rollout("cart", utc("2026-02-03T19:16:09Z"), tag="4.3.0")
    share = world.revision_share("cart", rev)
    cart = world.route("cart GET /api/v1/carts/{user_id}")
    cart.latency_mult = 1 + 24 * share
    cart.error_add = 0.06 * share
    world.compute()
    detail = (
        "Two rollouts 48 s apart: catalog 1.32.0 (harmless: its metrics do not move) and "
        "cart 4.3.0, whose lookups become 25x slower and fail 6% of the time; checkout "
        "and frontend's checkout route inherit both."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's checkout success rate drops.",
        _page(
            "2026-02-03T19:22:00Z",
            service="frontend",
            title="frontend: checkout success-rate SLO burning 14x (5m window)",
        ),
        {
            "root_cause": _cause(
                "deploy", "cart", change=f"deployment/cart@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def cpu_throttling() -> Incident:
    return cpu_throttling_in(World(name="cpu-throttling", end=utc("2026-02-10T11:05:00Z")))


def cpu_throttling_in(world: World) -> Incident:
    rev = world.rollout(
        "inventory",
        utc("2026-02-10T10:56:37Z"),
        cpu_limit="200m",
        manager="kubectl-client-side-apply",
    )
    share = world.revision_share("inventory", rev)
    inventory = world.route("inventory GET /api/v1/stock")
    inventory.latency_mult = 1 + 3 * share
    inventory.sigma_add = 0.35 * share
    world.compute()
    detail = (
        "A rollout of inventory with the same image lowers its CPU limit from 1 to 200m; "
        "CFS throttles most periods, inventory's latency climbs and frontend's product "
        "pages and checkout slow down. No errors, no restarts."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's latency alert fires.",
        _alert(
            "2026-02-10T11:02:00Z",
            service="frontend",
            severity="warning",
            title="FrontendLatencyHigh: frontend p95 latency above 60ms for 3m",
        ),
        {
            "root_cause": _cause(
                # A limit lowered by a rollout: the cause is the resource limit (kind
                # resource, fixed by raise_limits); the rollout is the change that set it.
                "resource",
                "inventory",
                change=f"deployment/inventory@{rev.number}",
                detail=detail,
            ),
            "fix": "raise_limits",
        },
    )


def cpu_throttling_same_container() -> Incident:
    """cpu-throttling where every workload's container is called ``server`` (as in many
    charts): CPU and throttling must be read per workload (pod owner), not per container."""
    incident = cpu_throttling_in(
        World(name="cpu-throttling-server", end=utc("2026-02-10T11:05:00Z"))
    )
    incident.world.container = "server"
    return incident


def oomkill_memory_limit() -> Incident:
    world = World(name="oomkill-memory-limit", end=utc("2026-02-17T08:40:00Z"))
    rev = world.rollout(
        "catalog",
        utc("2026-02-17T08:21:13Z"),
        mem_limit="256Mi",
        manager="kubectl-client-side-apply",
    )
    kills = np.zeros(world.n)
    for pod in world.live_pods("catalog"):
        if pod.revision is rev:
            world.crashloop(pod, grow_s=150)
            for begin, _ in pod.down:
                kills[begin] = 1.0
    catalog = world.route("catalog GET /api/v1/products/{id}")
    catalog.served = world.any_ready("catalog")
    catalog.error_add = 0.03 * kills
    world.compute()
    detail = (
        "A rollout of catalog lowers its memory limit from 512Mi to 256Mi, below its "
        "working set: the new pods are OOM-killed every few minutes and crash-loop with "
        "growing back-off; when both are down frontend's product pages return 502."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's 5xx ratio alert fires.",
        _page(
            "2026-02-17T08:37:00Z", service="frontend", title="frontend: 5xx ratio above 2% for 5m"
        ),
        {
            "root_cause": _cause(
                # A limit lowered by a rollout: the cause is the resource limit (kind
                # resource, fixed by raise_limits); the rollout is the change that set it.
                "resource",
                "catalog",
                change=f"deployment/catalog@{rev.number}",
                detail=detail,
            ),
            "fix": "raise_limits",
        },
    )


def bad_deploy_latency() -> Incident:
    world = World(name="bad-deploy-latency", end=utc("2026-03-23T14:15:00Z"))
    world.edit_configmap(  # on the alerting service itself, 25 minutes before: harmless
        "frontend", utc("2026-03-23T13:41:17Z"), {"FEATURE_RECOMMENDATIONS": "true"}
    )
    rev = world.rollout("catalog", utc("2026-03-23T14:06:02Z"), tag="1.32.0")
    rev.cpu_factor = 1.8
    share = world.revision_share("catalog", rev)
    products = world.route("catalog GET /api/v1/products/{id}")
    products.latency_mult = 1 + 5 * share
    products.sigma_add = 0.2 * share
    world.compute()
    detail = (
        "catalog 1.32.0 loads each product's variants one query at a time: its lookups become "
        "about 6x slower and cost 1.8x the CPU from the moment its pods take traffic, with no "
        "errors; frontend's product pages slow down with it and the p95 alert fires. A "
        "frontend-config edit 25 minutes earlier is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's latency alert fires.",
        _alert(
            "2026-03-23T14:12:00Z",
            service="frontend",
            severity="warning",
            title="FrontendLatencyHigh: frontend p95 latency above 60ms for 3m",
        ),
        {
            "root_cause": _cause(
                "deploy", "catalog", change=f"deployment/catalog@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def noisy_node() -> Incident:
    world = World(name="noisy-node", end=utc("2026-03-30T02:25:00Z"))
    node = NODES[1]
    world.place(node, {"frontend": 1, "catalog": 1, "inventory": 1})
    world.avoid = {node}
    world.rollout("cart", utc("2026-03-30T02:02:48Z"), tag="4.2.1")  # harmless, elsewhere
    world.noisy_neighbour(
        node, utc("2026-03-30T02:15:40Z"), steal=0.45, slow=5.0, not_ready=(150, 75)
    )
    world.compute()
    detail = (
        f"Another tenant of {node}'s hypervisor takes ~45% of its CPU (steal): every pod on "
        "it (a frontend, a catalog and the only inventory pod) serves about 6x slower and "
        "fails its readiness probes; the kubelet misses its heartbeats and the node is "
        "NotReady for 75 s, during which inventory has no ready pod. Only pods on that node "
        "are affected; a cart rollout 13 minutes earlier, on another node, is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's latency alert fires.",
        _page(
            "2026-03-30T02:22:00Z",
            service="frontend",
            title="frontend: p95 latency SLO burning 10x (5m window)",
        ),
        {
            "root_cause": _cause("resource", f"node/{node}", change=f"node/{node}", detail=detail),
            "fix": "none",
        },
    )


def platform_deep_deploy() -> Incident:
    """Several hundred series in scope: 30 workloads, one real cause three calls deep."""
    world = World(
        name="platform-deep-deploy",
        end=utc("2026-04-06T18:50:00Z"),
        shop=PLATFORM,
        window=timedelta(minutes=75),  # five times the shop's series: a shorter recording
    )
    world.edit_configmap(  # harmless: fewer results per page
        "search", utc("2026-04-06T18:17:40Z"), {"MAX_RESULTS": "40"}
    )
    world.route("media GET /v1/images").latency_mult += world.blip(
        utc("2026-04-06T18:05:10Z"), seconds=50, size=1.5
    )
    world.rollout("ads", utc("2026-04-06T18:32:10Z"), tag="3.4.0")  # harmless
    rev = world.rollout("currency", utc("2026-04-06T18:38:27Z"), tag="3.4.0")
    share = world.revision_share("currency", rev)
    convert = world.route("currency GET /v1/convert")
    convert.error_add = 0.09 * share
    convert.latency_mult = 1 + 1.0 * share
    world.compute()
    detail = (
        "currency 3.4.0 fails 9% of conversions (a rates provider it no longer parses) and is "
        "twice as slow: pricing, which calls it for every price, fails with it, and so do "
        "api-gateway's product route, frontend's product pages, search and checkout. An ads "
        "rollout 6 minutes earlier, a search-config edit and a media latency blip are "
        "unrelated; fraud-check and loyalty are always noisy."
    )
    return Incident(
        world,
        "Recorded in namespace shop: api-gateway's 5xx alert fires.",
        _alert(
            "2026-04-06T18:44:00Z",
            service="api-gateway",
            title="GatewayHighErrorRate: api-gateway 5xx ratio above 2% for 5m",
        ),
        {
            "root_cause": _cause(
                "deploy", "currency", change=f"deployment/currency@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
    )


def traffic_surge() -> Incident:
    world = World(name="traffic-surge", end=utc("2026-03-02T13:20:00Z"))
    world.edit_configmap("cart", utc("2026-03-02T12:38:52Z"), {"CART_TTL_HOURS": "48"})
    onset = utc("2026-03-02T13:10:30Z")
    world.entry_mult = 1 + world.ramp(onset, seconds=180, size=3)
    for key, slower in (
        ("frontend GET /product/{id}", 1.0),
        ("frontend POST /checkout", 0.6),
        ("catalog GET /api/v1/products/{id}", 1.5),
        ("checkout POST /api/v1/orders", 0.8),
        ("payments POST /v1/charges", 0.5),
        ("inventory GET /api/v1/stock", 0.7),
    ):
        world.route(key).latency_mult = 1 + world.ramp(onset, seconds=240, size=slower)
    products = world.route("frontend GET /product/{id}")
    products.error_add = world.ramp(onset, seconds=240, size=0.004)
    world.compute()
    detail = (
        "A marketing push quadruples traffic at the frontend within three minutes; every "
        "service downstream sees 4x the requests and uses 4x the CPU, latencies rise "
        "1.5-2.5x. Nothing changed in the cluster except an unrelated cart-config edit "
        "half an hour earlier."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's latency alert fires.",
        _alert(
            "2026-03-02T13:17:00Z",
            service="frontend",
            severity="warning",
            title="FrontendLatencyHigh: frontend p95 latency above 60ms for 3m",
        ),
        {"root_cause": _cause("traffic", "frontend", change=None, detail=detail), "fix": "scale"},
    )


def slow_dependency() -> Incident:
    world = World(name="slow-dependency", end=utc("2026-03-09T21:10:00Z"))
    world.rollout("inventory", utc("2026-03-09T20:41:05Z"), tag="0.19.0")  # harmless
    onset = utc("2026-03-09T21:01:50Z")
    bank = world.route("api.bank.example POST /v2/charges")
    bank.error_status = "503"
    bank.latency_mult = 1 + world.ramp(onset, seconds=60, size=13)
    bank.sigma_add = world.ramp(onset, seconds=60, size=0.2)
    bank.error_add = world.ramp(onset, seconds=60, size=0.04)
    world.compute()
    detail = (
        "The bank's API (outside the cluster) slows from ~110ms to ~1.5s and fails 4% of "
        "charges: payments' client metrics to api.bank.example show it first, then "
        "payments, checkout and frontend. Nothing changed in the cluster; an inventory "
        "rollout 20 minutes earlier is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: checkout's latency SLO starts burning.",
        _alert(
            "2026-03-09T21:07:00Z",
            service="checkout",
            title="CheckoutLatencySLOBurn: checkout p95 latency above 600ms for 5m",
        ),
        {
            "root_cause": _cause(
                "dependency", "external/api.bank.example", change=None, detail=detail
            ),
            "fix": "none",
        },
    )


def no_clear_cause() -> Incident:
    """No incident: a p99 alert flaps on a one-minute blip that clears by itself (abstain)."""
    world = World(name="no-clear-cause", end=utc("2026-03-16T16:45:00Z"))
    world.rollout("inventory", utc("2026-03-16T15:20:44Z"), tag="0.18.5")  # long before
    world.edit_configmap(
        "frontend", utc("2026-03-16T15:58:03Z"), {"FEATURE_RECOMMENDATIONS": "true"}
    )
    blip = utc("2026-03-16T16:39:30Z")
    world.route("catalog GET /api/v1/products/{id}").latency_mult += world.blip(
        blip, seconds=45, size=0.8
    )
    world.route("frontend GET /product/{id}").latency_mult += world.blip(blip, seconds=60, size=0.3)
    world.compute()
    return Incident(
        world,
        "Recorded in namespace shop: frontend's p99 latency alert fires.",
        _alert(
            "2026-03-16T16:42:00Z",
            service="frontend",
            severity="warning",
            title="FrontendLatencyHigh: frontend p99 latency above 100ms for 1m",
        ),
        {"root_cause": None, "fix": "none"},
    )


# --- scenarios whose cause is in the pod logs (logs/<pod>.log; docs/logs.md) ---------------

LogLine = Callable[[datetime, int], str | None]
"""A pod's log line at a moment (the line's index in its stream), None for no line."""


def pod_logs(world: World, workload: str, *, every_s: float, line: LogLine) -> dict[str, list]:
    """(moment, text) records of each pod of ``workload`` that still runs at the end, one
    every ``every_s`` seconds (jittered) from when the pod started."""
    out: dict[str, list] = {}
    for pod in world.live_pods(workload):
        if pod.last != world.n:
            continue
        begin = max(world.start, world.at(pod.first))
        span = (world.end - begin).total_seconds()
        records = []
        for index, offset in enumerate(np.arange(0.0, span - every_s, every_s)):
            moment = begin + timedelta(seconds=float(offset + world.rng.uniform(0, every_s / 2)))
            text = line(moment, index)
            if text is not None:
                records.append((moment, text))
        out[pod.name] = records
    return out


def merge_logs(*streams: dict[str, list]) -> dict[str, list[str]]:
    """Each pod's records from several streams, in time order, as timestamped lines (a
    record's continuation lines follow it unstamped, as a container writes a stack trace)."""
    pods: dict[str, list] = {}
    for stream in streams:
        for pod, records in stream.items():
            pods.setdefault(pod, []).extend(records)
    return {
        pod: [
            f"{moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} {text}"
            for moment, text in sorted(records, key=lambda r: r[0])
        ]
        for pod, records in sorted(pods.items())
    }


def _access(service: str, route: str) -> LogLine:
    def line(moment: datetime, index: int) -> str:
        return (
            f"INFO  [http-nio-8080-exec-{index % 8 + 1}] {service}: {route} 200 {9 + index % 17}ms"
        )

    return line


def _shop_chatter(world: World, *, skip: tuple[str, ...] = ()) -> list[dict[str, list]]:
    """Every workload's ordinary access lines, one every few seconds."""
    routes = {
        "frontend": "GET /product/{id}",
        "checkout": "POST /api/v1/orders",
        "payments": "POST /v1/charges",
        "cart": "GET /api/v1/carts/{user_id}",
        "catalog": "GET /api/v1/products/{id}",
        "inventory": "GET /api/v1/stock",
    }
    return [
        pod_logs(world, name, every_s=15.0, line=_access(name, route))
        for name, route in routes.items()
        if name not in skip
    ]


def logs_exception_after_rollout() -> Incident:
    """checkout 2.15.0 throws on building receipts; the exception is caught and the order still
    answers 201: no metric moves, the stack traces are in its log only."""
    world = World(name="logs-exception-after-rollout", end=utc("2026-06-02T09:40:00Z"))
    world.rollout("catalog", utc("2026-06-02T08:55:12Z"), tag="1.33.0")  # harmless, earlier
    at = utc("2026-06-02T09:21:37Z")
    rev = world.rollout("checkout", at, tag="2.15.0")
    world.compute()
    stack = (
        "\n\tat shop.checkout.ReceiptBuilder.lines(ReceiptBuilder.java:88)"
        "\n\tat shop.checkout.OrderService.confirm(OrderService.java:141)"
        "\n\tat shop.checkout.OrderController.create(OrderController.java:57)"
    )

    def receipt(moment: datetime, index: int) -> str | None:
        if moment < at or index % 3:
            return None
        return (
            f"ERROR [http-nio-8080-exec-{index % 8 + 1}] s.c.OrderService: receipt for order "
            f"{40000 + index} not sent: java.lang.NullPointerException: Cannot invoke "
            f'"Money.currency()" because "line.price" is null{stack}'
        )

    logs = merge_logs(
        *_shop_chatter(world),
        pod_logs(world, "checkout", every_s=6.0, line=receipt),
    )
    detail = (
        "checkout 2.15.0 fails to build the receipt of every order (a NullPointerException, "
        "caught): orders still succeed, so no error or latency metric moves; customers get no "
        "confirmation email. The stack traces start in checkout's log with the new pods. A "
        "catalog rollout 26 minutes earlier is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: customers report missing order confirmations.",
        _page(
            "2026-06-02T09:35:00Z",
            service="checkout",
            title="checkout: customers report missing order confirmation emails",
        ),
        {
            "root_cause": _cause(
                "deploy", "checkout", change=f"deployment/checkout@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
        logs,
    )


UNINSTRUMENTED_CLIENT_SHOP = Shop(SERVICES, CONFIGS, shop_routes, CLIENT_EDGES[:1])
"""The shop with payments' HTTP client not instrumented: nothing but its log names the bank."""


def logs_dependency_refused() -> Incident:
    """The bank refuses payments' connections: payments fails charges, and only its log says
    why (no client metrics, no change)."""
    world = World(
        name="logs-dependency-refused",
        end=utc("2026-06-09T17:20:00Z"),
        shop=UNINSTRUMENTED_CLIENT_SHOP,
    )
    world.rollout("inventory", utc("2026-06-09T16:48:31Z"), tag="0.19.1")  # harmless, earlier
    onset = utc("2026-06-09T17:09:10Z")
    bank = world.route("api.bank.example POST /v2/charges")
    bank.error_add = world.ramp(onset, seconds=30, size=0.35)
    bank.error_status = "503"
    world.compute()

    def refused(moment: datetime, index: int) -> str | None:
        if moment < onset + timedelta(seconds=20):
            return None
        return (
            f"ERROR [bank-client-{index % 4}] p.b.BankClient: charge ch_{90000 + index} failed: "
            "java.net.ConnectException: Connection refused: api.bank.example/203.0.113.7:443"
        )

    logs = merge_logs(
        *_shop_chatter(world),
        pod_logs(world, "payments", every_s=3.0, line=refused),
    )
    detail = (
        "The bank's API (outside the cluster) refuses connections for about a third of "
        "charges: payments fails them, checkout and frontend's checkout fail with it. "
        "payments' HTTP client exports no metrics, so only its log names the bank "
        "(java.net.ConnectException: Connection refused). Nothing changed in the cluster; an "
        "inventory rollout 20 minutes earlier is unrelated."
    )
    return Incident(
        world,
        "Recorded in namespace shop: frontend's checkout starts failing.",
        _alert(
            "2026-06-09T17:15:00Z",
            service="frontend",
            title="FrontendHighErrorRate: frontend 5xx ratio on POST /checkout above 5% for 2m",
        ),
        {
            "root_cause": _cause(
                "dependency", "external/api.bank.example", change=None, detail=detail
            ),
            "fix": "none",
            "also_accept": [],
        },
        logs,
    )


def logs_chatty_noise() -> Incident:
    """A cart rollout slows carts (the metrics say so); catalog logs errors all the time and a
    new informational line during the incident: neither may mislead."""
    world = World(name="logs-chatty-noise", end=utc("2026-06-16T13:30:00Z"))
    rev = world.rollout("cart", utc("2026-06-16T13:18:44Z"), tag="4.4.0")
    share = world.revision_share("cart", rev)
    cart = world.route("cart GET /api/v1/carts/{user_id}")
    cart.latency_mult = 1 + 14 * share
    world.compute()
    onset = utc("2026-06-16T13:19:30Z")

    def cache(moment: datetime, index: int) -> str:
        return (
            f"ERROR [refresher-{index % 3}] c.c.PriceCache: refresh of shard {index % 12} "
            "failed, retrying in 500ms"
        )

    def warmed(moment: datetime, index: int) -> str | None:
        return None if moment < onset else f"INFO  c.c.Warmup: warmed {index % 50} pages"

    def retries(moment: datetime, index: int) -> str:
        return f"WARN  c.c.Http: retrying GET /internal/prices (attempt {index % 3 + 1})"

    logs = merge_logs(
        *_shop_chatter(world),
        pod_logs(world, "catalog", every_s=2.0, line=cache),
        pod_logs(world, "catalog", every_s=4.0, line=retries),
        pod_logs(world, "catalog", every_s=5.0, line=warmed),
    )
    detail = (
        "cart 4.4.0 makes cart lookups about 15x slower from the moment its pods take "
        "traffic: checkout and frontend's checkout slow down with it. catalog logs cache "
        "refresh errors and retries all day long (no change in their rate) and a new warm-up "
        "line during the incident: noise."
    )
    return Incident(
        world,
        "Recorded in namespace shop: checkout's latency SLO starts burning.",
        _alert(
            "2026-06-16T13:26:00Z",
            service="checkout",
            title="CheckoutLatencySLOBurn: checkout p95 latency above 600ms for 5m",
        ),
        {
            "root_cause": _cause(
                "deploy", "cart", change=f"deployment/cart@{rev.number}", detail=detail
            ),
            "fix": "rollback",
        },
        logs,
    )


SCENARIOS: dict[str, Callable[[], Incident]] = {
    "bad-deploy-5xx": bad_deploy_5xx,
    "config-latency": config_latency,
    "config-argocd-sync": config_argocd_sync,
    "deploy-decoy": deploy_decoy,
    "cpu-throttling": cpu_throttling,
    "cpu-throttling-server": cpu_throttling_same_container,
    "oomkill-memory-limit": oomkill_memory_limit,
    "traffic-surge": traffic_surge,
    "slow-dependency": slow_dependency,
    "no-clear-cause": no_clear_cause,
    "bad-deploy-latency": bad_deploy_latency,
    "noisy-node": noisy_node,
    "platform-deep-deploy": platform_deep_deploy,
    "logs-exception-after-rollout": logs_exception_after_rollout,
    "logs-dependency-refused": logs_dependency_refused,
    "logs-chatty-noise": logs_chatty_noise,
}


# --- a database behind a slow service (scenarios with a postgres/ folder) -------------------

DATABASE = "shop"
DATABASE_URL = f"postgres://checkout@orders-db.data.svc.cluster.local:5432/{DATABASE}"
"""What checkout's Deployment names as its database (no credentials: those come from a Secret)."""


def db_lock_behind_checkout(*, exporter: bool) -> Incident:
    """A migration holds ACCESS EXCLUSIVE on orders: checkout's order writes wait and time out.
    The metrics show only checkout (and its callers) slow and failing; with ``exporter``, a
    postgres_exporter in namespace ``monitoring`` also records the database's locks and waits."""
    name = "db-lock-exporter-elsewhere" if exporter else "db-lock-behind-checkout"
    world = World(name=name, end=utc("2026-05-20T11:10:00Z"))
    world.rollout("catalog", utc("2026-05-20T10:22:41Z"), tag="3.8.1")  # unrelated, earlier
    onset = utc("2026-05-20T11:01:30Z")
    orders = world.route("checkout POST /api/v1/orders")
    orders.latency_mult = 1 + world.ramp(onset, seconds=45, size=25)
    orders.error_add = world.ramp(onset, seconds=90, size=0.12)
    world.compute()
    seen = "a postgres_exporter in namespace monitoring records it; " if exporter else ""
    detail = (
        "A schema migration holds ACCESS EXCLUSIVE on orders inside an open transaction: "
        f"checkout's order writes wait on it and time out; {seen}checkout and frontend are "
        "slow and failing, with no resource trouble and no change of their own."
    )
    return Incident(
        world,
        "Recorded in namespace shop: checkout's order writes time out.",
        _alert(
            "2026-05-20T11:06:00Z",
            service="checkout",
            title="CheckoutErrors: checkout 5xx ratio above 5% for 3m",
        ),
        {
            "root_cause": _cause("database", f"postgres/{DATABASE}", change=None, detail=detail),
            "fix": "cancel_query",
        },
    )


def write_database_scenario(name: str, *, exporter: bool, root: Path = HERE) -> Path:
    """:func:`write`, then the database side: the sessions of db-lock-contention, checkout's
    DATABASE_URL, and (``exporter``) postgres_exporter series scraped in another namespace."""
    incident = db_lock_behind_checkout(exporter=exporter)
    folder = write(name, incident, root=root)
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))
    truth = scenario.pop("truth")
    _dump_yaml(
        folder / "scenario.yaml", [scenario | {"postgres": {"database": DATABASE}, "truth": truth}]
    )
    (folder / "postgres").mkdir(exist_ok=True)
    for source in sorted((HERE / "db-lock-contention" / "postgres").glob("*")):
        shutil.copyfile(source, folder / "postgres" / source.name)
    path = folder / "kubernetes" / "deployments.yaml"
    deployments = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for deployment in deployments:
        if deployment["metadata"]["name"] == "checkout":
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            container["env"].append({"name": "DATABASE_URL", "value": DATABASE_URL})
    _dump_yaml(path, deployments)
    if exporter:
        metrics = folder / "metrics.om"
        text = metrics.read_text(encoding="utf-8").removesuffix("# EOF\n")
        metrics.write_text(text + _postgres_exporter(incident.world) + "# EOF\n", encoding="utf-8")
    return folder


def _postgres_exporter(world: World) -> str:
    """pg_locks_count and pg_stat_activity_count of the shop database as a postgres_exporter
    in namespace ``monitoring`` exports them: 15 s apart, labelled by ``datname``."""
    onset = world.step(utc("2026-05-20T11:01:30Z"))
    steps = np.arange(world.n)
    held = (steps >= onset).astype(float)
    waiting = np.where(steps >= onset, np.minimum(2 + (steps - onset) * 0.6, 18), 0.0)
    active = 3 + world.rng.poisson(1.2, world.n) + np.round(waiting)
    target = {
        "namespace": "monitoring",
        "job": "postgres-exporter",
        "instance": "10.42.7.31:9187",
        "pod": "postgres-exporter-6d8f7b9c4d-q2v7k",
    }
    lines = ["# HELP pg_locks_count Number of locks", "# TYPE pg_locks_count gauge"]
    locks = {
        "accessexclusivelock": held,
        "rowexclusivelock": 1 + world.rng.poisson(0.8, world.n) + np.round(waiting),
    }
    for mode, values in locks.items():
        labels = _labels(target | {"datname": DATABASE, "mode": mode})
        lines += [
            f"pg_locks_count{labels} {v:.0f} {world.t0 + i * STEP_S}" for i, v in enumerate(values)
        ]
    lines += [
        "# HELP pg_stat_activity_count number of connections in this state",
        "# TYPE pg_stat_activity_count gauge",
    ]
    states = {
        "active": active,
        "idle": 12 - np.minimum(np.round(waiting), 10),
        "idle in transaction": held,
    }
    for state, values in states.items():
        labels = _labels(target | {"datname": DATABASE, "state": state})
        lines += [
            f"pg_stat_activity_count{labels} {v:.0f} {world.t0 + i * STEP_S}"
            for i, v in enumerate(values)
        ]
    return "\n".join(lines) + "\n"


DATABASE_SCENARIOS: dict[str, bool] = {
    "db-lock-behind-checkout": False,
    "db-lock-exporter-elsewhere": True,
}
"""Scenarios with a database behind a service, by name: whether the exporter's series exist."""


# --- writing ----------------------------------------------------------------------------------


def write(name: str, incident: Incident, *, root: Path = HERE) -> Path:
    world = incident.world
    folder = root / name
    if (folder / "kubernetes").is_dir():
        shutil.rmtree(folder / "kubernetes")
    (folder / "kubernetes").mkdir(parents=True)
    scenario = {
        "format": 1,
        "name": name,
        "description": incident.description,
        "time": {"start": rfc3339(world.start), "end": rfc3339(world.end)},
        "trigger": incident.trigger,
        "truth": incident.truth,
    }
    _dump_yaml(folder / "scenario.yaml", [scenario])
    (folder / "metrics.om").write_text(render_metrics(world), encoding="utf-8")
    for file, objects in (KubeWriter(world).files() | incident.objects).items():
        _dump_yaml(folder / "kubernetes" / f"{file}.yaml", objects)
    if incident.logs:
        shutil.rmtree(folder / "logs", ignore_errors=True)
        (folder / "logs").mkdir()
        for pod, lines in incident.logs.items():
            (folder / "logs" / f"{pod}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _dump_yaml(path: Path, documents: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        yaml.safe_dump_all(documents, out, sort_keys=False, width=100, allow_unicode=True)


# --- checking ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (\d+)$")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def check(folder: Path) -> list[str]:
    """Problems with a generated scenario (empty when it is sound)."""
    problems: list[str] = []
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    start, end = utc(scenario["time"]["start"]), utc(scenario["time"]["end"])
    if not start <= utc(scenario["trigger"]["at"]) <= end:
        problems.append("trigger.at is outside time")
    for path in sorted((folder / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            problems += [f"{path.name}: {t} outside time" for t in _times(doc) if utc(t) > end]
    problems += _check_metrics(folder / "metrics.om", start=start, end=end)
    problems += _check_promtool(folder / "metrics.om")
    return problems


def _times(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _times(value)
    elif isinstance(node, list):
        for value in node:
            yield from _times(value)
    elif isinstance(node, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", node):
        yield node


def _check_metrics(path: Path, *, start: datetime, end: datetime) -> list[str]:
    lines = path.read_text().splitlines()
    check = _MetricsCheck(lo=int(start.timestamp()), hi=int(end.timestamp()))
    if lines[-1] != "# EOF":
        check.problems.append("metrics.om does not end in # EOF")
    for line in lines[:-1]:
        check.line(line)
    return check.finish()


@dataclass
class _MetricsCheck:
    """Family grouping, time order and range, counter monotonicity, histogram consistency."""

    lo: int
    hi: int
    family: str = ""
    kind: str = ""
    problems: list[str] = field(default_factory=list)
    families: set[str] = field(default_factory=set)
    last: dict[str, tuple[int, float]] = field(default_factory=dict)
    points: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)

    def line(self, line: str) -> None:
        if line.startswith("# TYPE"):
            _, _, self.family, self.kind = line.split()
            if self.family in self.families:
                self.problems.append(f"family {self.family} appears twice")
            self.families.add(self.family)
            return
        if line.startswith("#"):
            return
        match = _SAMPLE.match(line)
        if match is None:
            self.problems.append(f"unparsable: {line[:80]}")
            return
        name, labels, value, ts = match[1], match[2] or "", float(match[3]), int(match[4])
        if name.removeprefix(self.family) not in _SUFFIXES[self.kind]:
            self.problems.append(f"{name} outside its family {self.family}")
        if not self.lo <= ts <= self.hi:
            self.problems.append(f"{name} at {ts} outside time")
        self.order(name + labels, ts, value, restartable=name.startswith("container_"))
        if self.kind == "histogram":
            le = re.search(r'le="([^"]*)"', labels)
            base = re.sub(r',?le="[^"]*"', "", labels)
            slot = le[1] if le else name.removeprefix(self.family)
            self.points.setdefault((self.family + base, ts), {})[slot] = value

    def order(self, key: str, ts: int, value: float, *, restartable: bool) -> None:
        """Time order per series; counters fall only when a container restarts (cAdvisor)."""
        before = self.last.get(key)
        self.last[key] = (ts, value)
        if before is None:
            return
        if before[0] >= ts:
            self.problems.append(f"{key} out of order at {ts}")
        reset = restartable and value < before[1] / 2
        if self.kind in ("counter", "histogram") and value < before[1] and not reset:
            self.problems.append(f"{key} decreases at {ts}")

    def finish(self) -> list[str]:
        for (series, ts), point in self.points.items():
            cumulative = [point[str(b)] for b in BUCKETS] + [point["+Inf"]]
            if any(a > b for a, b in itertools.pairwise(cumulative)):
                self.problems.append(f"{series} buckets not cumulative at {ts}")
            if point["+Inf"] != point["_count"]:
                self.problems.append(f"{series} +Inf != _count at {ts}")
        return self.problems


def _check_promtool(path: Path) -> list[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        return []
    with tempfile.TemporaryDirectory() as blocks:
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), blocks],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        return [f"promtool: {done.stderr.strip()[-800:]}"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    every = [*SCENARIOS, *DATABASE_SCENARIOS]
    parser.add_argument("--only", choices=sorted(every), help="generate one scenario")
    parser.add_argument("--check", action="store_true", help="verify instead of generating")
    parser.add_argument("--names", action="store_true", help="list the generated scenarios")
    args = parser.parse_args(argv)
    if args.names:
        print("\n".join(every))
        return 0
    names = [args.only] if args.only else every
    failed = False
    for name in names:
        if not args.check and name in DATABASE_SCENARIOS:
            write_database_scenario(name, exporter=DATABASE_SCENARIOS[name])
        elif not args.check:
            write(name, SCENARIOS[name]())
        problems = check(HERE / name)
        size = sum(p.stat().st_size for p in (HERE / name).rglob("*") if p.is_file())
        print(f"{name}: {size / 1e6:.2f} MB, {len(problems)} problems", file=sys.stderr)
        for problem in problems[:20]:
            print(f"  {problem}", file=sys.stderr)
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
