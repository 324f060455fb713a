"""Kubernetes: the only package that imports ``kubernetes`` (and the ``urllib3`` it runs on).

:class:`KubernetesConnector` implements :class:`diagnose.domain.ports.ClusterSource`, read-only:
it lists Deployments, ReplicaSets, ConfigMaps and Secrets' metadata, Pods and Events of one
namespace and translates them into the payloads of ``diagnose.domain.ports``, reads the state
kinds of ``diagnose.domain.cluster``, delivery tools' objects and pod logs. The API saying no
(401/403, refused, timed out) is evidence with a status, never an exception.

One choke point, :meth:`KubernetesConnector._list`, owns timeouts, retries, paging and error
translation. It asks the client for the raw JSON (``_preload_content=False``) instead of its
models: the models deserialise every field of every object into Python objects (slow on big
namespaces, and lists served without ``kind``/``apiVersion`` by test servers do not map), and we
read a dozen fields. It also lets Secrets be listed as ``PartialObjectMetadataList``, so their
data never leaves the API server.

:class:`KubernetesWriter` resolves catalogue actions against the live object into exact patches
and sends them with credentials of its own (``_RESOLVERS``: one per ``FixKind.resolver`` of
``diagnose.domain.fixes``).

Where things are: ``_reading`` holds the reader and its choke point, ``_translating`` the
history kinds' payloads, ``_state`` the state kinds' payloads, ``_podlogs`` pod logs,
``_writing`` the writer and its resolvers, ``_common`` what they share, ``_reads`` the table
of every resource read (``READS``, what the chart's read role grants). Import the public names
from this package.
"""

from connectors.kubernetes._common import DROPPED_ANNOTATIONS, REVISION, SOURCE, Obj
from connectors.kubernetes._reading import KubernetesConnector
from connectors.kubernetes._reads import READS, Read
from connectors.kubernetes._state import _STATE_READERS as _STATE_READERS
from connectors.kubernetes._translating import drifted_keys
from connectors.kubernetes._writing import _RESOLVERS as _RESOLVERS
from connectors.kubernetes._writing import (
    ACTION_MARKER,
    ROLLBACK_KEPT_ANNOTATIONS,
    KubernetesWriter,
    with_marker,
)

__all__ = [
    "ACTION_MARKER",
    "DROPPED_ANNOTATIONS",
    "READS",
    "REVISION",
    "ROLLBACK_KEPT_ANNOTATIONS",
    "SOURCE",
    "KubernetesConnector",
    "KubernetesWriter",
    "Obj",
    "Read",
    "drifted_keys",
    "with_marker",
]
"""The public names; ``_RESOLVERS`` and ``_STATE_READERS`` are re-exported for the tests that
check them against the fix catalogue and translate scenario objects as the reader does."""
