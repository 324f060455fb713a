"""The one set of secret patterns for everything that leaves the process.

Text bound for a language model (:func:`diagnose.domain.reasoning.fence`), probe results
(``sandbox.redacting``, which adds masks for customer data on top) and the model's own words
before they reach a report, the API, a PagerDuty note or a postmortem all pass through
:func:`redact`. It masks: private keys (PEM), ``Authorization`` headers and bearer or basic
credentials, passwords in URLs, ``password=``/``secret=``/``token=``/``pin=``-style pairs
(quoted or not, JSON keys included; the names are the ones :func:`is_secret_name` knows, which
also decides whose whole value a probe result masks), AWS access key ids and the secret keys
written next to them, GitHub, GitLab, Slack, Google, Stripe and OpenAI-style keys, and JWTs.
Pure functions, standard library.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_SECRET_WORDS = (
    r"passw(?:or)?d|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?"
    r"|session[_-]?(?:id|key)|auth[_-]?key|cookie|card[_-]?(?:number|no)|cc[_-]?num"
    r"|authorization|(?:signing|encryption|master|hmac|ssh|stripe|license|webhook|jwt|client"
    r"|app|service|crypto|cipher|aes|rsa|gpg|pgp|deploy)[_-]?key"
)
"""Words that make a name secret wherever they appear in it (``DB_PASSWORD``, ``clientSecret``,
``STRIPE_KEY``); ``key`` alone is not one (``primary_key``, ``sort_key``, ``cache_key``)."""
_SECRET_SEGMENTS = r"(?<![A-Za-z0-9])(?:pass|pwd|pin|otp|ssn|salt)(?![A-Za-z0-9])"
"""Short words that make a name secret only as a whole part of it (``db_pass``, ``user.pin``,
not ``passenger`` or ``shipping``)."""
_SECRET_NAME = rf"[\w.-]*(?:{_SECRET_WORDS}|{_SECRET_SEGMENTS})[\w.-]*"
_SECRET_NAME_SEARCH = re.compile(rf"(?i){_SECRET_WORDS}|{_SECRET_SEGMENTS}")
_AUTH_VALUE = r"(?:(?:bearer|basic|token|digest|negotiate)\s+)?[^\s\"',;]+"
_PEM = r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
_AWS_KEY_ID = r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b"

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_PEM, re.S), REDACTED),
    (re.compile(rf"(?i)\b((?:proxy-)?authorization\s*[:=]\s*){_AUTH_VALUE}"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), rf"\1{REDACTED}@"),
    (
        re.compile(rf"(?i)([\"']?)\b({_SECRET_NAME})\1(\s*[:=]\s*)([\"']?)[^\s\"',;&}}]+"),
        rf"\1\2\1\3\4{REDACTED}",
    ),
    # An access key id followed (within a few characters) by a 40-character secret key: both.
    (
        re.compile(rf"{_AWS_KEY_ID}([\s:=,;/|\"']{{1,8}})[A-Za-z0-9/+]{{40}}(?![A-Za-z0-9/+])"),
        rf"{REDACTED}\1{REDACTED}",
    ),
    (re.compile(_AWS_KEY_ID), REDACTED),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,})"), REDACTED),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\b(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{16,}"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
)
"""(pattern, replacement) pairs, applied in order: the specific before the general."""


def is_secret_name(name: str) -> bool:
    """Whether a column, key or variable called ``name`` holds a secret (or a card number, a
    PIN, a one-time password): its whole value is masked, whatever it looks like."""
    return bool(_SECRET_NAME_SEARCH.search(name))


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by :data:`REDACTED`."""
    return redact_counted(text)[0]


def redact_counted(text: str) -> tuple[str, int]:
    """``text`` redacted, and how many secrets were masked."""
    count = 0
    for pattern, replacement in PATTERNS:
        text, found = pattern.subn(replacement, text)
        count += found
    return text, count
