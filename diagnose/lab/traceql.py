"""The lab trace server's search: the TraceQL subset the agent needs, and Tempo's tag search.

One spanset ``{ … }`` of comparisons (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``=~``, ``!~``)
on ``resource.*``, ``span.*``, unscoped ``.*`` attributes and the intrinsics ``duration``,
``name``, ``status``, ``kind``, joined by ``&&`` and ``||`` with parentheses; anything else
raises :class:`TraceQLError`.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from diagnose.lab import tracestore

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<dur>\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)\b)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|\{|\}|\(|\))
      | (?P<ident>[A-Za-z_.:][A-Za-z0-9_.:/-]*)
    )""",
    re.VERBOSE,
)
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_DURATION_NS["h"] = 3600 * 10**9

Predicate = Callable[[tracestore.Span], bool]


class TraceQLError(ValueError):
    """A query outside the supported subset, or malformed."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise TraceQLError(f"parse error at position {position}: {text[position:][:20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_duration_ns(text: str) -> int:
    """``"1.5s"`` → 1_500_000_000 (Go duration units, as TraceQL and Jaeger use)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.strip())
    if not match:
        raise TraceQLError(f"not a duration: {text!r}")
    return int(float(match.group(1)) * _DURATION_NS[match.group(2)])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise TraceQLError("unexpected end of query")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise TraceQLError(f"expected {expected!r}, found {token[1]!r}")
        self.index += 1
        return token

    def query(self) -> Predicate:
        self.take("{")
        predicate = (lambda span: True) if self.peek() == "}" else self.disjunction()
        self.take("}")
        if self.index != len(self.tokens):
            raise TraceQLError("only one spanset filter { … } is supported here")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda span: any(p(span) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.comparison()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else lambda span: all(p(span) for p in parts)

    def comparison(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        kind, name = self.take()
        if kind != "ident":
            raise TraceQLError(f"expected an attribute, found {name!r}")
        if self.peek() in ("}", "&&", "||", ")") and name == "true":
            return lambda span: True
        _, op = self.take()
        if op not in ("=", "!=", ">", ">=", "<", "<=", "=~", "!~"):
            raise TraceQLError(f"expected a comparison after {name}, found {op!r}")
        value = self._literal(*self.take())
        return _comparison(name, op, value)

    @staticmethod
    def _literal(kind: str, text: str) -> tracestore.Scalar:
        if kind == "str":
            return str(json.loads(text))
        if kind == "dur":
            return parse_duration_ns(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            return {"true": True, "false": False}.get(text, text)
        raise TraceQLError(f"expected a value, found {text!r}")


_INTRINSICS: dict[str, Callable[[tracestore.Span], tracestore.Scalar]] = {
    "duration": lambda span: span.duration_ns,
    "name": lambda span: span.name,
    "status": lambda span: span.status,
    "kind": lambda span: span.kind,
    "statusMessage": lambda span: span.status_message,
}


def field_value(span: tracestore.Span, name: str) -> tracestore.Scalar | None:
    intrinsic = _INTRINSICS.get(name.removeprefix("span:"))
    if intrinsic is not None:
        return intrinsic(span)
    if name.startswith("resource."):
        return span.resource.get(name.removeprefix("resource."))
    if name.startswith("span."):
        return span.attrs.get(name.removeprefix("span."))
    if name.startswith("."):
        key = name[1:]
        return span.attrs.get(key, span.resource.get(key))
    raise TraceQLError(f"unknown attribute {name!r}: scope it as resource., span. or .")


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparison(name: str, op: str, value: tracestore.Scalar) -> Predicate:
    field_value(
        tracestore.Span("", "", None, "", "", 0, 0, "", "", {}, {}, {}, {}, {}), name
    )  # validate

    def matches(span: tracestore.Span) -> bool:
        found = field_value(span, name)
        if found is None:
            return False
        if op in ("=~", "!~"):
            hit = re.fullmatch(str(value), str(found)) is not None
            return hit if op == "=~" else not hit
        if _numeric(value):
            return _numeric(found) and _compare(found, op, value)
        return _compare(str(found), op, str(value))

    return matches


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _compare(left: tracestore.Scalar, op: str, right: tracestore.Scalar) -> bool:
    try:
        return _OPERATORS[op](left, right)
    except TypeError:
        return False


def parse_traceql(text: str) -> Predicate:
    """A span predicate from a one-spanset TraceQL query; raises :class:`TraceQLError`."""
    return _Parser(text).query()


# --- Tempo's tag search ---------------------------------------------------------------------------


def logfmt(text: str) -> dict[str, str]:
    pairs = re.findall(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)', text)
    return {k: (json.loads(v) if v.startswith('"') else v) for k, v in pairs}


def tags_predicate(tags: Mapping[str, str]) -> Callable[[tracestore.Span], bool]:
    """Tempo's tag search: a case-insensitive substring match on span or resource attributes."""

    def matches(span: tracestore.Span) -> bool:
        for key, wanted in tags.items():
            found = span.attrs.get(key, span.resource.get(key))
            if found is None or wanted.lower() not in str(found).lower():
                return False
        return True

    return matches
