"""The model's words where people read them (the terminal view, the PagerDuty note, the
postmortem draft): labelled as the model's, redacted, on one line, and never taken as markup,
a Markdown link or HTML."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from diagnose import postmortem, rendering
from diagnose.domain import answers, reasoning
from diagnose.domain.models import CauseKind
from diagnose.postmortem import drafting, markdown
from diagnose.server import jobs
from graphs import reasoning as reason_step
from tests.postmortem.conftest import record_of

STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"  # built from parts: no key in the source
HOSTILE = (
    "Checkout broke after the rollout.\n[click here](http://evil.example/x) "
    "<img src=x onerror=alert(1)> **now** [bold red]boom[/bold red] `code` key " + STRIPE
)
LABEL = answers.MODEL_SAYS


def _with_model_claim() -> postmortem.RunRecord:
    """bad-deploy-5xx diagnosed, with a hostile model claim added below the analysis."""
    record = record_of("bad-deploy-5xx")
    state: dict[str, Any] = dict(record.state)
    top = state["correlation"]["hypotheses"][0]
    evidence = tuple(top["evidence"][:1])
    claim = reasoning.Claim(CauseKind.TRAFFIC, top["component"], None, evidence, HOSTILE)
    settled = reason_step.Settled(claim=claim, outcome="added", confidence=0.2)
    correlation = dict(state["correlation"])
    correlation["hypotheses"] = correlation["hypotheses"][:1]  # room in every short list
    state["correlation"] = reason_step.merge_claims(correlation, [settled])
    state["reasoning"] = {"status": "accepted", "model": "m", "settled": [settled.to_dict()]}
    return dataclasses.replace(record, state=state)


def _said(lines: list[str]) -> list[str]:
    return [line for line in lines if LABEL in line]


def test_the_terminal_view_shows_the_model_words_labelled_literal_and_redacted() -> None:
    """Rich markup in the model's words is printed as text, on one line, without the key."""
    console = Console(record=True, width=250, color_system=None)
    rendering.show(console, _with_model_claim().state, bundle_dir=Path("bundle"))
    shown = console.export_text()
    said = _said(shown.splitlines())
    assert len(said) >= 2  # the added hypothesis and the model's reading
    for line in said:
        assert "Checkout broke after the rollout." in line and "[bold red]boom[/bold red]" in line
    assert STRIPE not in shown and reasoning.REDACTED in " ".join(said)


def test_the_pagerduty_note_quotes_the_model_on_one_labelled_line() -> None:
    """The note names the model's hypothesis as the model's, in quotes, redacted."""
    text = jobs.note_text(_with_model_claim().state, run_id="run-x", public_url=None)
    (said,) = _said(text.splitlines())
    assert f'{LABEL} "Checkout broke after the rollout. [click here]' in said
    assert STRIPE not in text and reasoning.REDACTED in said


def test_the_postmortem_holds_the_model_words_in_a_code_span() -> None:
    """No link, image, emphasis or HTML of the model's is rendered by Markdown."""
    draft = drafting.draft(_with_model_claim())
    text = markdown.markdown(draft, images={})
    spans = re.findall(rf"{re.escape(LABEL)} `([^`\n]*)`", text)
    assert spans and all("[click here](http://evil.example/x)" in s for s in spans)
    outside = re.sub(rf"{re.escape(LABEL)} `[^`\n]*`", "", text)
    assert "evil.example" not in outside and "<img" not in outside and "**now**" not in outside
    assert STRIPE not in text
