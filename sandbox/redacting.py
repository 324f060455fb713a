"""Results become evidence only capped and redacted.

A probe's rows are turned into JSON values, cut to a number of rows, of bytes and of characters
per value, and masked: whole values of columns named like secrets (``password``, ``api_key``,
``token``…, the names :func:`diagnose.domain.redaction.is_secret_name` knows), and inside any
text, every secret the project's one pattern set knows
(``diagnose.domain.redaction``: keys, tokens, ``password=…``-style pairs, credentials in URLs),
and on top of it customer data: e-mail addresses, long hex or base64 strings, and card-like
numbers (Luhn-checked).
String literals inside SQL text (``pg_stat_activity.query``) are replaced by ``'?'``: the shape
of a query is evidence, the customer's data in it is not. Pure functions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from diagnose.domain import database, redaction
from diagnose.domain.models import JSON

MASK = "<redacted>"

_SQL_COLUMN = re.compile(r"query|statement|sql", re.IGNORECASE)
_SQL_LITERAL = re.compile(r"(?<![A-Za-z0-9_$])[Ee]?'(?:[^']|'')*(?:'|\Z)")

_DATA_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"\b[A-Fa-f0-9]{32,}\b"), "<token>"),
)
"""Customer data, on top of the secrets every output is cleared of (``diagnose.domain.redaction``):
e-mail addresses and long hex strings are masked in probe results, not in evidence at large
(where a trace id is a 32-digit hex string worth keeping)."""
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{40,}={0,2}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def redact_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    limits: database.Limits,
    more: bool = False,
) -> database.Table:
    """Cap and redact rows; ``more`` says the source held rows beyond those given."""
    kept: list[list[JSON]] = []
    size = len(json.dumps(list(columns)))
    truncated, masked = more, 0
    for row in rows:
        if len(kept) >= limits.max_rows:
            truncated = True
            break
        values, row_masked, row_cut = _redact_row(columns, row, limits=limits)
        size += len(json.dumps(values, ensure_ascii=False).encode())
        if size > limits.max_bytes:
            truncated = True
            break
        kept.append(values)
        masked += row_masked
        truncated = truncated or row_cut
    return database.Table(columns=list(columns), rows=kept, truncated=truncated, redacted=masked)


def redact_text(text: str, *, sql: bool = False) -> tuple[str, int]:
    """Mask secrets in free text (and string literals when it is SQL); the count of masks."""
    count = 0
    if sql:
        text, count = _SQL_LITERAL.subn("'?'", text)
    text, found = redaction.redact_counted(text)
    count += found
    for pattern, replacement in _DATA_PATTERNS:
        text, found = pattern.subn(replacement, text)
        count += found
    tokens = [m for m in _LONG_TOKEN.finditer(text) if _looks_random(m.group())]
    for match in reversed(tokens):
        text = text[: match.start()] + "<token>" + text[match.end() :]
    count += len(tokens)
    cards = [m for m in _CARD.finditer(text) if _luhn([int(c) for c in m.group() if c.isdigit()])]
    for match in reversed(cards):
        text = text[: match.start()] + "<card>" + text[match.end() :]
    return text, count + len(cards)


def jsonable(value: object) -> JSON:
    """A database value as JSON: timestamps in ISO 8601, intervals in seconds, numbers, text,
    lists and objects as themselves, anything else as its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    for kind, convert in _CONVERSIONS:
        if isinstance(value, kind):
            return convert(value)
    return str(value)


def _float(value: float) -> JSON:
    return value if math.isfinite(value) else str(value)


def _decimal(value: decimal.Decimal) -> JSON:
    if not value.is_finite():
        return str(value)
    return int(value) if value == value.to_integral_value() else float(value)


_CONVERSIONS: tuple[tuple[type[Any] | tuple[type[Any], ...], Callable[[Any], JSON]], ...] = (
    (float, _float),
    (decimal.Decimal, _decimal),
    (dt.timedelta, lambda value: value.total_seconds()),
    ((dt.datetime, dt.date, dt.time), lambda value: value.isoformat()),
    ((bytes, bytearray, memoryview), lambda value: f"<{len(bytes(value))} bytes>"),
)


def is_secret_column(name: str) -> bool:
    """A column whose whole value is masked: named like a secret (the project's one list of
    secret names, :func:`diagnose.domain.redaction.is_secret_name`)."""
    return redaction.is_secret_name(name)


def _redact_row(
    columns: Sequence[str], row: Sequence[object], *, limits: database.Limits
) -> tuple[list[JSON], int, bool]:
    values: list[JSON] = []
    masked, cut = 0, False
    for column, raw in zip(columns, row, strict=True):
        value, value_masked, value_cut = _redact_value(column, jsonable(raw), limits=limits)
        values.append(value)
        masked += value_masked
        cut = cut or value_cut
    return values, masked, cut


def _redact_value(column: str, value: JSON, *, limits: database.Limits) -> tuple[JSON, int, bool]:
    if value is None:
        return None, 0, False
    if is_secret_column(column):
        return MASK, 1, False
    if isinstance(value, str):
        # Redact a window wider than what is kept, so no secret is cut in half before it is
        # recognised; then cut what is kept.
        window = value[: limits.max_cell_chars * 2 + 256]
        text, masked = redact_text(window, sql=bool(_SQL_COLUMN.search(column)))
        cut = len(text) > limits.max_cell_chars or len(window) < len(value)
        return (text[: limits.max_cell_chars] + "…" if cut else text), masked, cut
    if isinstance(value, list | dict):
        return (*_redact_json(value), False)
    return value, 0, False


def _redact_json(value: JSON) -> tuple[JSON, int]:
    text, masked = redact_text(json.dumps(value, ensure_ascii=False)[:1_000_000])
    if not masked:
        return value, 0
    try:
        return json.loads(text), masked
    except json.JSONDecodeError:
        return MASK, masked


def _looks_random(token: str) -> bool:
    """A long run with digits and both cases is a key or a token, not a word or an identifier."""
    return (
        any(c.isdigit() for c in token)
        and any(c.islower() for c in token)
        and any(c.isupper() for c in token)
    )


def _luhn(digits: list[int]) -> bool:
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0
