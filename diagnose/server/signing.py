"""PagerDuty V3 webhook signatures (PagerDuty developer docs, "Verifying Signatures").

``X-PagerDuty-Signature`` holds one or more comma-separated signatures; each ``v1=`` one is the
hex HMAC-SHA256 of the raw request body under one signing secret (several appear while a
secret is rotated). A delivery is authentic when any ``v1`` signature matches any of our
secrets; every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

HEADER = "X-PagerDuty-Signature"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class MalformedSignatureError(ValueError):
    """The header is missing or holds no well-formed ``v1`` signature (answer 400)."""


def sign(body: bytes, *, secret: str) -> str:
    """The ``v1=…`` signature PagerDuty sends for this body under this secret."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def v1_signatures(header: str | None) -> list[str]:
    """The hex digests of the header's ``v1`` signatures; other versions are skipped."""
    if not header:
        raise MalformedSignatureError(f"the {HEADER} header is missing")
    found = []
    for item in header.split(","):
        version, _, digest = item.strip().partition("=")
        if version == "v1" and _HEX_SHA256.fullmatch(digest.lower()):
            found.append(digest.lower())
    if not found:
        raise MalformedSignatureError(f"the {HEADER} header holds no v1 signature")
    return found


def verify(body: bytes, *, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether any ``v1`` signature in the header matches the body under any of the secrets.

    Raises :class:`MalformedSignatureError` when the header carries nothing to check.
    """
    received = v1_signatures(header)
    expected = [hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets]
    matches = [hmac.compare_digest(e, r) for e in expected for r in received]
    return any(matches)
