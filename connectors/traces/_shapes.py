"""Reading untrusted trace JSON: ids, lists, objects, integers and attribute values.

Anything of the wrong shape raises :class:`ShapeError`; the connectors turn it into error
evidence, the public decoders into ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import json

from diagnose.domain import traces as tracing

KIND_NUMBERS = ("unspecified", "internal", "server", "client", "producer", "consumer")


class ShapeError(Exception):
    """Valid JSON, but not the shape the API documents."""


def hex_id(value: object, *, width: int) -> str:
    """A trace or span id as lower-case hex of ``width`` digits, from hex (Tempo's search
    trims leading zeros; Jaeger may send 16 digits for a 128-bit id with a zero high half) or
    base64 (Tempo's OTLP JSON encodes bytes fields that way)."""
    if not isinstance(value, str) or not value:
        raise ShapeError(f"expected an id string, got {value!r:.40}")
    text = value.strip()
    if len(text) <= width and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower().zfill(width)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ShapeError(f"id {text!r:.40} is neither hex nor base64") from exc
    if len(raw) * 2 != width:
        raise ShapeError(f"id {text!r:.40} has {len(raw)} bytes, expected {width // 2}")
    return raw.hex()


def optional_hex_id(value: object, *, width: int) -> str | None:
    if value in (None, ""):
        return None
    parsed = hex_id(value, width=width)
    return None if set(parsed) == {"0"} else parsed


def as_list(value: object, what: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(f"expected a list at {what}, got {type(value).__name__}")
    return value


def as_dict(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ShapeError(f"expected an object at {what}, got {type(value).__name__}")
    return value


def as_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise ShapeError(f"expected an integer at {what}, got a boolean")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise ShapeError(f"expected an integer at {what}, got {value!r:.40}")


def scalar(value: object, *, max_chars: int) -> tracing.AttributeValue:
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
