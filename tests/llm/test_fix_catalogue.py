"""One fix catalogue: the model's schema, the validation of its answers, the fitting check, the
playbook schema and the Kubernetes resolvers all read it, so a kind added to a catalogue is
accepted everywhere without another list to edit."""

from __future__ import annotations

import json
from pathlib import Path

from connectors import kubernetes
from diagnose import playbook
from diagnose.domain import answers, fixes, reasoning
from diagnose.domain.models import CauseKind, Risk
from graphs import reasoning as reason_step
from tests.llm import test_settling
from tests.llm.conftest import good_answer
from tests.playbooks.test_playbooks import GOOD, PROBES

RESTART = fixes.FixKind(
    "restart",
    Risk.LOW,
    frozenset({CauseKind.RESOURCE}),
    parameters=(fixes.Parameter("pause_s", default=5.0, least=1.0, most=30.0),),
    resolver="restart",
)
WIDER = fixes.Catalogue((*fixes.CATALOGUE.kinds, RESTART))


def _answer_with_fix(digest: reasoning.Digest, action: str) -> str:
    answer = good_answer(digest)
    answer["hypotheses"][0]["fix"] = {"action": action, "target": "checkout"}  # type: ignore[index]
    return json.dumps(answer)


def test_the_models_schema_offers_every_kind_of_the_catalogue_it_is_given(
    digest: reasoning.Digest,
) -> None:
    """The answer schema's fix actions are the catalogue's names, in its order."""
    for catalogue in (fixes.CATALOGUE, WIDER):
        schema = reasoning.answer_schema(digest, catalogue=catalogue)
        item = schema["properties"]["hypotheses"]["items"]  # type: ignore[index,call-overload]
        fix = item["properties"]["fix"]["anyOf"][0]
        assert fix["properties"]["action"]["enum"] == list(catalogue.names)
    tool = reasoning.answer_tool(digest, catalogue=WIDER).to_openai()
    assert "restart" in json.dumps(tool)


def test_a_fix_of_an_added_kind_passes_validation_only_with_that_catalogue(
    digest: reasoning.Digest,
) -> None:
    """validate_answer refuses an action outside the catalogue and accepts it once added."""
    text = _answer_with_fix(digest, "restart")
    refused = answers.validate_answer(text, digest=digest)
    assert not refused.accepted
    assert any("'restart' is not in the catalogue" in p for p in refused.problems)
    accepted = answers.validate_answer(text, digest=digest, catalogue=WIDER)
    assert accepted.accepted, accepted.problems
    assert accepted.claims[0].fix == reasoning.FixProposal("restart", "checkout")


def test_an_added_kind_fits_the_causes_its_entry_names() -> None:
    """Settling accepts an added kind's fix for a cause it fits and refuses it for another."""
    fix = reasoning.FixProposal("restart", "checkout")
    fitting = test_settling.claim(CauseKind.RESOURCE, "checkout", "ev-errors", fix=fix)
    other = test_settling.claim(CauseKind.TRAFFIC, "checkout", "ev-errors", fix=fix)
    settled = reason_step.settle(
        [fitting, other],
        correlation=test_settling.correlation(),
        evidence=test_settling.EVIDENCE,
        trigger_at=test_settling.AT,
        fix_catalogue=WIDER,
    )
    assert [s.outcome for s in settled] == ["added", "refused"]
    assert settled[1].reasons == ("fix restart does not address a traffic cause",)
    (default,) = test_settling.settle(fitting)
    assert "fix restart is not a catalogue action" in default.reasons


def test_a_playbook_may_list_and_size_an_added_kind(tmp_path: Path) -> None:
    """Playbook validation reads the kinds, parameters and bounds of the catalogue."""
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("fixes: [rollback]\n", "fixes: [{kind: restart, pause_s: 10}]\n"))
    assert playbook.lint([path], probe_names=PROBES, catalogue=WIDER) == []
    (loaded,) = playbook.load([path], probe_names=PROBES, catalogue=WIDER)
    assert loaded.playbook.fixes[0].parameters() == {"pause_s": 10.0}
    unknown_kind, unknown_parameter = playbook.lint([path], probe_names=PROBES)
    assert unknown_kind.startswith(f"{path}:12: fixes.0.kind: Input should be 'rollback', ")
    assert unknown_parameter == f"{path}:12: fixes.0.pause_s: Extra inputs are not permitted"
    path.write_text(GOOD.replace("fixes: [rollback]\n", "fixes: [{kind: scale, pause_s: 10}]\n"))
    assert playbook.lint([path], probe_names=PROBES, catalogue=WIDER) == [
        f"{path}:12: fixes.0: Value error, 'pause_s' applies to restart only, not to scale"
    ]


def test_every_kubernetes_action_of_the_catalogue_has_a_resolver() -> None:
    """Each resolver the shipped catalogue names is one the Kubernetes writer carries out."""
    assert fixes.CATALOGUE.resolvers() <= set(kubernetes._RESOLVERS)
    assert not WIDER.resolvers() <= set(kubernetes._RESOLVERS)  # the check can fail
