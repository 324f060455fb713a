"""The model's answer checked before anything trusts it: it must parse, match the answer
schema, cite only evidence it was shown, name candidates and catalogue fixes, and give reasons
in words; rejections are data (:class:`Checked`), never exceptions. Text the model wrote is
shown quoted and marked as unverified (:func:`model_text`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diagnose.domain import fixes, reasoning, redaction
from diagnose.domain.models import JSON, CauseKind


@dataclass(frozen=True)
class Checked:
    """The verdict on one answer: claims when accepted, otherwise every problem found."""

    claims: tuple[reasoning.Claim, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return bool(self.claims) and not self.problems


_INJECTION = re.compile(
    r"ignore (all |any )?(previous|prior|above|earlier) (instructions|messages|prompts)"
    r"|disregard (all |any )?(previous|prior|the above)"
    r"|system prompt|you are now|new instructions|<\|im_start\|>|<start_of_turn>"
    r"|<<<\s*(DATA|END DATA)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")
MIN_RATIONALE_WORDS = 3
_HYPOTHESIS_KEYS = frozenset({"kind", "component", "change", "evidence", "rationale", "fix"})


def validate_answer(
    text: str | None,
    *,
    digest: reasoning.Digest,
    nonce: str | None = None,
    catalogue: fixes.Catalogue = fixes.CATALOGUE,
) -> Checked:
    """Parse the model's answer and check it against the digest. Never raises on its input."""
    payload, problem = parse_answer(text)
    if problem:
        return Checked(problems=(problem,))
    return check_answer(payload, digest=digest, nonce=nonce, catalogue=catalogue)


def parse_answer(text: str | None) -> tuple[JSON, str | None]:
    """The JSON object in an answer, or a reason it has none.

    Accepts the bare arguments of a tool call, or content that holds only a JSON object once a
    leading ``<think>…</think>`` block and a Markdown code reasoning.fence are taken away.
    """
    if text is None or not text.strip():
        return None, "the answer is empty"
    body = _strip_fence(_strip_think(text)).strip()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        kind = "cut short" if body.startswith("{") else "not JSON"
        return None, f"the answer is {kind} ({_short(str(exc))}): {_short(body)!r}"
    if not isinstance(payload, dict):
        return None, f"the answer is JSON but not an object: {_short(body)!r}"
    return payload, None


def check_answer(
    payload: JSON,
    *,
    digest: reasoning.Digest,
    nonce: str | None = None,
    catalogue: fixes.Catalogue = fixes.CATALOGUE,
) -> Checked:
    """Check a parsed answer against the schema, the digest it was given and the fix
    catalogue."""
    if not isinstance(payload, dict):
        return Checked(problems=("the answer is not a JSON object",))
    problems = [
        f"unexpected key {_short(repr(k))} (only 'hypotheses')"
        for k in payload
        if k != "hypotheses"
    ]
    items = payload.get("hypotheses")
    if not isinstance(items, list) or not items:
        return Checked(problems=(*problems, "'hypotheses' must be a non-empty list"))
    if len(items) > reasoning.MAX_HYPOTHESES:
        problems.append(f"{len(items)} hypotheses; at most {reasoning.MAX_HYPOTHESES}")
    claims = []
    for index, item in enumerate(items[: reasoning.MAX_HYPOTHESES]):
        claim, found = _check_hypothesis(item, digest=digest, nonce=nonce, catalogue=catalogue)
        problems.extend(f"hypothesis {index + 1}: {p}" for p in found)
        if claim is not None:
            claims.append(claim)
    problems.extend(_duplicates(claims))
    if problems:
        return Checked(problems=tuple(problems))
    return Checked(claims=tuple(claims))


def _check_hypothesis(
    item: JSON, *, digest: reasoning.Digest, nonce: str | None, catalogue: fixes.Catalogue
) -> tuple[reasoning.Claim | None, list[str]]:
    if not isinstance(item, dict):
        return None, [f"must be an object, not {_type_name(item)}"]
    problems = [f"unexpected key {_short(repr(k))}" for k in item if k not in _HYPOTHESIS_KEYS]
    kind = _check_kind(item.get("kind"), problems)
    component = _check_member(item.get("component"), "component", digest.components, problems)
    change = _check_change(item.get("change"), digest=digest, problems=problems)
    evidence = _check_citations(item.get("evidence"), digest=digest, problems=problems)
    rationale = _check_rationale(
        item.get("rationale"), nonce=nonce, actions=catalogue.names, problems=problems
    )
    fix = _check_fix(item.get("fix"), digest=digest, catalogue=catalogue, problems=problems)
    if problems or kind is None or component is None or rationale is None:
        return None, problems
    return reasoning.Claim(kind, component, change, evidence, rationale, fix), problems


def _check_fix(
    value: JSON, *, digest: reasoning.Digest, catalogue: fixes.Catalogue, problems: list[str]
) -> reasoning.FixProposal | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"action", "target"}:
        problems.append("fix must be null or an object with exactly 'action' and 'target'")
        return None
    action = value["action"]
    if not isinstance(action, str) or action not in catalogue:
        actions = ", ".join(catalogue.names)
        problems.append(f"fix action {_short(repr(action))} is not in the catalogue ({actions})")
        return None
    target = _check_member(value["target"], "fix target", digest.components, problems)
    return reasoning.FixProposal(action, target) if target is not None else None


def _check_kind(value: JSON, problems: list[str]) -> CauseKind | None:
    if isinstance(value, str) and value in {k.value for k in CauseKind}:
        return CauseKind(value)
    kinds = ", ".join(k.value for k in CauseKind)
    problems.append(f"kind {_short(repr(value))} is not one of {kinds}")
    return None


def _check_member(value: JSON, what: str, known: Sequence[str], problems: list[str]) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{what} must be a string, not {_type_name(value)}")
        return None
    if value not in known:
        problems.append(f"{what} {_short(value)!r} is not in the digest ({', '.join(known)})")
        return None
    return value


def _check_change(value: JSON, *, digest: reasoning.Digest, problems: list[str]) -> str | None:
    if value is None:
        return None
    return _check_member(value, "change", digest.changes, problems)


def _check_citations(
    value: JSON, *, digest: reasoning.Digest, problems: list[str]
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append("evidence must be a non-empty list of evidence ids")
        return ()
    known = set(digest.evidence_ids)
    cited = []
    for item in value:
        if not isinstance(item, str):
            problems.append(f"evidence ids are strings, not {_type_name(item)}")
        elif item not in known:
            problems.append(f"cites {_short(item)!r}, which is not an evidence id in the digest")
        elif item not in cited:
            cited.append(item)
    return tuple(cited)


def _check_rationale(
    value: JSON, *, nonce: str | None, actions: Sequence[str], problems: list[str]
) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append("rationale must be a non-empty string")
        return None
    if len(value) > reasoning.MAX_RATIONALE_CHARS:
        problems.append(
            f"rationale is {len(value)} characters; at most {reasoning.MAX_RATIONALE_CHARS}"
        )
    if len(_WORD.findall(value)) < MIN_RATIONALE_WORDS:
        problems.append(f"rationale must say why in at least {MIN_RATIONALE_WORDS} words")
    if _INJECTION.search(value) or (nonce and nonce in value):
        problems.append("rationale echoes instructions or fenced data instead of reasoning")
    foreign = _FOREIGN_ACTION.search(value)
    if foreign:
        problems.append(
            f"rationale names {_short(' '.join(foreign.group().split()), 40)!r}, an action "
            f"outside the fix catalogue: propose only a catalogue fix ({', '.join(actions)}) "
            "through 'fix', and no command"
        )
    return model_text(value)


MODEL_SAYS = "model says (unverified):"
"""The label every output puts before the model's own words."""


def quoted(text: str) -> str:
    """The model's words as people are shown them: labelled, quoted, redacted, on one line."""
    return f'{MODEL_SAYS} "{model_text(text)}"'


def model_text(text: str) -> str:
    """The model's words as every output carries them: secrets redacted, control characters
    and reasoning.fence markers taken out, white space made single spaces."""
    clean = "".join(c if c.isprintable() else " " for c in redaction.redact(text))
    clean = clean.replace("<<<", "‹‹‹").replace(">>>", "›››")
    return " ".join(clean.split())


_FOREIGN_ACTION = re.compile(
    r"\bkubectl\s[^\n|;&]{0,60}?\b(?:delete|exec|edit|patch|drain|cordon|uncordon|taint|run|cp"
    r"|create|replace|label|annotate|attach|debug|port-forward|proxy|auth|certificate)\b"
    r"|\bhelm\s+(?:uninstall|delete|install|upgrade|rollback)\b"
    r"|\b(?:drop|truncate)\s+(?:table|database|schema|index|role|user|owned|extension)\b"
    r"|\btruncate\s+\w"
    r"|\bdelete\s+from\b|\binsert\s+into\b|\bupdate\s+\S+\s+set\b"
    r"|\balter\s+(?:table|system|user|extension|schema|function|default)\b"
    r"|\b(?:grant|revoke)\s+(?:all|select|insert|update|delete|usage|execute|create|pg_\w+)\b"
    r"|\bcopy\b.*?\b(?:to|from)\s+program\b|\bcreate\s+(?:extension|function|role|user|trigger)\b"
    r"|\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\bbase64\s+-d\b[^|\n]*\|"
    r"|\brm\s+-[a-z]*[rf]|\bsudo\s+\w|\bchmod\s+[0-7+]|\bssh\s+\S+@|\bnc\s+-[a-z]*e\b"
    r"|\bterraform\s+(?:destroy|apply)\b|\bdocker\s+(?:exec|run|rm)\b|\bsystemctl\s+\w",
    re.IGNORECASE,
)
"""Commands and statements a rationale must not name: anything that changes a system outside
the fix catalogue (whose commands code builds, never the model)."""


def _duplicates(claims: Sequence[reasoning.Claim]) -> list[str]:
    seen: set[tuple[str, str, str | None]] = set()
    problems = []
    for claim in claims:
        key = (claim.kind.value, claim.component, claim.change)
        if key in seen:
            problems.append(f"{claim.kind.value} on {claim.component} is ranked twice")
        seen.add(key)
    return problems


def _strip_think(text: str) -> str:
    """Drop a reasoning block kept inside content (vLLM's ``minimax_m2_append_think``)."""
    end = text.rfind("</think>")
    return text[end + len("</think>") :] if end >= 0 else text


def _strip_fence(text: str) -> str:
    match = re.fullmatch(r"\s*```(?:json)?\s*\n?(.*?)\n?```\s*", text, re.DOTALL)
    return match.group(1) if match else text


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _short(text: str, limit: int = 80) -> str:
    """Model text quoted in a problem (which reaches reports and the repair prompt): redacted,
    then cut."""
    text = redaction.redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
