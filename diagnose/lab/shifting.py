"""Moving a recorded incident in time: one whole-second offset applied to every timestamp.

The lab shifts a scenario so that ``trigger.at`` lands a few minutes before the lab starts; the
agent then asks for "the last hour" exactly as in production. Everything here is pure: streams
in, streams out, time passed in. Formats:

- OpenMetrics text: the sample timestamp (seconds, possibly fractional) and exemplar
  timestamps; comments, ``# EOF`` and samples without a timestamp pass through unchanged.
- Kubernetes objects (parsed YAML or JSON): every string that is a whole RFC 3339 timestamp,
  wherever it sits (``creationTimestamp``, ``managedFields[].time``, Event times, container
  states, conditions, annotations). The fraction and the zone are kept as written.
- OTLP/JSON traces: every ``*UnixNano`` field, as a string or an integer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_LEAD = timedelta(minutes=3)

_RFC3339 = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})"
    r"(?P<frac>\.\d+)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)
_NANOS_SUFFIX = "UnixNano"


def compute_offset(at: datetime, *, now: datetime, lead: timedelta = DEFAULT_LEAD) -> timedelta:
    """The whole-second offset that moves ``at`` to ``lead`` before ``now`` (or slightly more)."""
    return timedelta(seconds=math.floor((now - lead - at).total_seconds()))


# --- OpenMetrics ------------------------------------------------------------------------------


def shift_openmetrics(lines: Iterable[str], *, offset: timedelta) -> Iterator[str]:
    """Shift the timestamps of an OpenMetrics text stream, line by line."""
    seconds = Decimal(int(offset.total_seconds()))
    for line in lines:
        if line.startswith("#") or not line.strip():
            yield line
        else:
            yield _shift_plain_sample(line, int(seconds)) or _shift_sample(line, seconds)


def _shift_plain_sample(line: str, seconds: int) -> str | None:
    """The fast path for ``name{labels} value timestamp`` with an integer timestamp, or None.

    Without an exemplar, the label set ends at the last ``}`` of the line.
    """
    if " # " in line:
        return None
    start = line.rfind("}") + 1
    fields = line[start:].split()
    if len(fields) != (2 if start else 3) or not fields[-1].isdigit():
        return None
    cut = line.rstrip().rfind(fields[-1])
    return line[:cut] + str(int(fields[-1]) + seconds) + line[cut + len(fields[-1]) :]


def _shift_sample(line: str, seconds: Decimal) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    cut = _end_of_labels(body)
    head, rest = body[:cut], body[cut:]
    sample, hash_mark, exemplar = rest.partition(" # ")
    shifted = _shift_last_field(sample, seconds, fields_before=1)
    if hash_mark:
        ex_cut = _end_of_labels(exemplar)
        ex_rest = _shift_last_field(exemplar[ex_cut:], seconds, fields_before=1)
        shifted += hash_mark + exemplar[:ex_cut] + ex_rest
    return head + shifted + newline


def _end_of_labels(text: str) -> int:
    """Index just past the metric name and its ``{...}`` label set (quotes respected)."""
    brace = text.find("{")
    space = text.find(" ")
    if brace < 0 or (0 <= space < brace):
        return space if space >= 0 else len(text)
    quoted = escaped = False
    for index in range(brace, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "}" and not quoted:
            return index + 1
    return len(text)


def _shift_last_field(text: str, seconds: Decimal, *, fields_before: int) -> str:
    """Shift the timestamp in ``" value [timestamp]"`` when there is one."""
    fields = text.split()
    if len(fields) <= fields_before:
        return text
    try:
        moved = Decimal(fields[-1]) + seconds
    except InvalidOperation:
        return text
    where = text.rstrip().rfind(fields[-1])
    return text[:where] + format(moved, "f") + text[where + len(fields[-1]) :]


# --- RFC 3339 strings in documents ------------------------------------------------------------


def shift_timestamp(text: str, *, offset: timedelta) -> str | None:
    """Shift a whole RFC 3339 timestamp, keeping its fraction and zone; None if it is not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    zone = match["zone"]
    try:
        moment = datetime.fromisoformat(match["base"] + ("+00:00" if zone in "Zz" else zone))
    except ValueError:
        return None
    separator = match["base"][10]
    moved = (moment + offset).strftime(f"%Y-%m-%d{separator}%H:%M:%S")
    return moved + (match["frac"] or "") + zone


def shift_document(node: Any, *, offset: timedelta) -> Any:
    """A copy of a parsed YAML/JSON document with every RFC 3339 timestamp shifted.

    YAML parses unquoted timestamps into ``datetime``; they come back shifted as RFC 3339
    strings, as the Kubernetes API would send them.
    """
    if isinstance(node, dict):
        return {key: shift_document(value, offset=offset) for key, value in node.items()}
    if isinstance(node, list):
        return [shift_document(value, offset=offset) for value in node]
    if isinstance(node, str):
        moved = shift_timestamp(node, offset=offset)
        return node if moved is None else moved
    if isinstance(node, datetime):
        return _format_rfc3339(node + offset)
    return node


def _format_rfc3339(moment: datetime) -> str:
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if moment.tzinfo else text + "Z"


def documents_as_api_data(node: Any) -> Any:
    """A document with YAML's ``datetime``/``date`` values turned into strings, JSON-ready."""
    if isinstance(node, dict):
        return {str(key): documents_as_api_data(value) for key, value in node.items()}
    if isinstance(node, list):
        return [documents_as_api_data(value) for value in node]
    if isinstance(node, datetime):
        return _format_rfc3339(node)
    if isinstance(node, date):
        return node.isoformat()
    return node


# --- OTLP/JSON --------------------------------------------------------------------------------


def shift_otlp(node: Any, *, offset: timedelta) -> Any:
    """A copy of an OTLP/JSON document with every ``*UnixNano`` field shifted."""
    nanos = int(offset.total_seconds()) * 1_000_000_000
    return _shift_nanos(node, nanos)


def _shift_nanos(node: Any, nanos: int) -> Any:
    if isinstance(node, list):
        return [_shift_nanos(value, nanos) for value in node]
    if not isinstance(node, dict):
        return node
    shifted: dict[str, object] = {}
    for key, value in node.items():
        if key.endswith(_NANOS_SUFFIX) and _is_integer(value):
            moved = int(value) + nanos
            shifted[key] = str(moved) if isinstance(value, str) else moved
        else:
            shifted[key] = _shift_nanos(value, nanos)
    return shifted


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value != 0
    return isinstance(value, str) and value.isdigit() and int(value) != 0
