"""How a draft words things: spans of time, counts, percentages, and its inline Markdown
(links to the cited records, code spans, the model's words made inert)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from diagnose.analysis import codefiles
from diagnose.domain import answers, models
from diagnose.postmortem import facts as facts_


def span(delta: timedelta) -> str:
    """``1h05m``, ``7m42s``, ``40s``."""
    seconds = round(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s" if minutes else f"{sign}{secs}s"


def percent(ratio: float) -> str:
    """An objective: ``99.9%``."""
    return f"{ratio * 100:.6g}%"


def pct(value: float) -> str:
    """A confidence: ``71%``."""
    return f"{float(value):.0%}"


def count(value: float) -> str:
    """A number of requests: ``15,278``."""
    if not math.isfinite(value):
        return facts_.UNKNOWN
    return f"{value:,.0f}"


def when(moment: datetime | None) -> str:
    """A moment to the second, in UTC, else *unknown*."""
    return models.format_time(moment.replace(microsecond=0)) if moment else facts_.UNKNOWN


def refs(ids: Sequence[str]) -> str:
    """Links to the cited records in the draft's evidence section."""
    return ", ".join(f"[{i}](#{anchor(i)})" for i in ids)


def anchor(ref: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", ref.lower()).strip("-")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "series"


def short(query: str, limit: int = 240) -> str:
    """A query on one line, for a code span."""
    flat = " ".join(query.split()).replace("`", "'")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def inert(summary: str) -> str:
    """A hypothesis' summary for Markdown. The model's words (labelled so by code) go in a code
    span, redacted and on one line, so no link, image, emphasis or HTML in them is rendered."""
    if not summary.startswith(answers.MODEL_SAYS):
        return summary
    words = answers.model_text(summary[len(answers.MODEL_SAYS) :]).replace("`", "'")
    return f"{answers.MODEL_SAYS} `{words}`"


def code_follow_up(code: object) -> str | None:
    """What to do about the leading suspect of a hypothesis' commit range (docs/changes.md):
    a migration is followed up forward (already applied, a rollback does not undo it), any
    other file's commit is reverted. None when the range names no suspect."""
    if not isinstance(code, Mapping):
        return None
    suspects = code.get("suspects")
    if not isinstance(suspects, Sequence) or not suspects or not isinstance(suspects[0], Mapping):
        return None
    best = suspects[0]
    sha, path, why = str(best.get("sha", ""))[:7], str(best.get("file", "")), best.get("why", "")
    since, until = str(code.get("from", ""))[:7], str(code.get("to", ""))[:7]
    where = f"{code.get('repository', '')} {since}..{until}"
    if codefiles.classify(path) is codefiles.FileKind.MIGRATION:
        return (
            f"Follow up the migration {path} (commit {sha}, {where}): {why}. It already ran: "
            "fix it forward with a new migration; rolling the workload back does not undo it."
        )
    return f"Revert commit {sha} ({path}: {why}), in {where}."
