"""Playbooks: the schema, lint's file-and-line errors, matching, rendering, and coverage of the
shipped playbooks by the bundled scenarios."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from diagnose import cli, playbook
from diagnose.analysis import signals
from diagnose.domain import fixes, models
from graphs import pipeline
from sandbox import catalogue

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROBES = [entry.probe.name for entry in catalogue.load().entries]

GOOD = """\
format: 1
name: my-alert
match:
  titles: ['orders.*slow']
signals:
  - name: p95
    kind: latency
    query: |
      histogram_quantile(0.9, sum by (le, app) (rate(o_bucket{ns="{{namespace}}"}[{{window}}])))
probes: [blocking_chains]
weights: {deploy: 1.5}
fixes: [rollback]
"""


def _trigger(title: str = "", **labels: str) -> models.Trigger:
    return models.Trigger(
        source="manual",
        title=title,
        service="checkout",
        namespace="shop",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        labels=labels,
    )


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_playbooks_lint_clean() -> None:
    assert playbook.lint([playbook.DEFAULT_DIR], probe_names=PROBES) == []
    names = {item.playbook.name for item in playbook.load([playbook.DEFAULT_DIR])}
    assert names == {
        "http-5xx-ratio",
        "latency-slo-burn",
        "saturation",
        "crash-loop",
        "oomkill",
        "database-latency",
    }


def test_the_probe_catalogue_is_not_read_as_a_playbook() -> None:
    assert not any(p.name == "probes.yaml" for p in playbook.files_in([playbook.DEFAULT_DIR]))


def test_an_unknown_field_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("fixes: [rollback]", "fixes: [rollback]\nfixs: [scale]"))
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:13: fixs: Extra inputs are not permitted"
    ]


def test_an_unknown_signal_field_points_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("    kind: latency", "    kind: latency\n    unit: s"))
    (problem,) = playbook.lint([path], probe_names=PROBES)
    assert problem.startswith(f"{path}:8: signals.0.unit: Extra inputs")


def test_bad_promql_is_reported_at_the_query_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("[{{window}}])))", "[{{window}}]))"))
    (problem,) = playbook.lint([path], probe_names=PROBES)
    assert problem.startswith(f"{path}:8: signal p95: bad PromQL: ")


def test_a_template_variable_nobody_provides_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('ns="{{namespace}}"', 'route="{{route}}"'))
    (problem,) = playbook.lint([path], probe_names=PROBES)
    assert problem.startswith(f"{path}:8: signal p95: template uses route")


def test_a_variable_from_required_labels_or_defaults_is_accepted(tmp_path: Path) -> None:
    text = GOOD.replace('ns="{{namespace}}"', 'route="{{route}}"')
    required = _write(tmp_path, text.replace("match:\n", "match:\n  labels: {route: '.+'}\n"))
    defaulted = _write(tmp_path, text + "variables: {route: /pay}\n", name="q.yaml")
    assert playbook.lint([required], probe_names=PROBES) == []
    assert playbook.lint([defaulted], probe_names=PROBES) == []


def test_an_unknown_probe_and_fix_kind_are_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD.replace("[blocking_chains]", "[blocking_chains, drop_table]").replace(
            "[rollback]", "[rollback, reboot]"
        ),
    )
    names = [f"'{n}'" for n in fixes.CATALOGUE.names]  # what pydantic lists, in order
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:12: fixes.1.kind: Input should be {', '.join(names[:-1])} or {names[-1]}"
    ]
    path = _write(tmp_path, GOOD.replace("[blocking_chains]", "[blocking_chains, drop_table]"))
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:10: unknown probe 'drop_table' (not in the catalogue)"
    ]


def test_broken_yaml_and_duplicate_names_are_reported(tmp_path: Path) -> None:
    broken = _write(tmp_path, "format: 1\nname: [unclosed\n", name="a.yaml")
    twin = _write(tmp_path, GOOD, name="b.yaml")
    _write(tmp_path, GOOD, name="c.yaml")
    problems = playbook.lint([tmp_path], probe_names=PROBES)
    assert problems[0].startswith(f"{broken}:3: not valid YAML")
    assert (
        problems[1] == f"{tmp_path / 'c.yaml'}:1: playbook name 'my-alert' is also used by {twin}"
    )
    with pytest.raises(playbook.PlaybookError):
        playbook.load([tmp_path])


def test_lint_on_the_command_line_prints_file_and_line_and_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("kind: latency", "kind: latncy"))
    result = CliRunner().invoke(cli.app, ["playbooks", "lint", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7: signals.0.kind: Input should be" in result.stdout
    clean = CliRunner().invoke(cli.app, ["playbooks", "lint", str(playbook.DEFAULT_DIR)])
    assert clean.exit_code == 0, clean.output


def test_labels_beat_titles_and_priority_beats_both() -> None:
    loaded = playbook.load([playbook.DEFAULT_DIR])
    by_title = playbook.choose(loaded, _trigger("checkout: 5xx ratio above 5%"))
    assert by_title is not None and by_title.playbook.name == "http-5xx-ratio"
    both = playbook.choose(
        loaded, _trigger("checkout 5xx (connection pool timeouts)", alertname="X")
    )
    assert both is not None and both.playbook.name == "saturation"
    by_label = playbook.choose(loaded, _trigger("anything", alertname="KubePodCrashLooping"))
    assert by_label is not None and by_label.playbook.name == "crash-loop"
    assert playbook.choose(loaded, _trigger("disk almost full")) is None


def test_alert_label_values_cannot_break_out_of_a_promql_string(tmp_path: Path) -> None:
    text = GOOD.replace('ns="{{namespace}}"', 'route="{{route}}"')
    text = text.replace("match:\n", "match:\n  labels: {route: '.+'}\n")
    (loaded,) = playbook.load([_write(tmp_path, text)])
    evil = '/"} or vector(1) or {x="'
    (query,) = playbook.render(loaded.playbook, _trigger(route=evil), window_s=90)
    assert 'route="/\\"} or vector(1) or {x=\\""' in query.rendered
    assert "[90s]" in query.rendered
    assert playbook.promql_problem(query.query) == ""


def test_series_names_are_read_as_their_kind_by_the_analysis() -> None:
    """The analysis classifies series by name; each kind's word, and the fallback name, must
    land on that kind (else a playbook's errors would be scored as something else)."""
    for kind in playbook.KIND_TOKENS:
        assert signals.classify(playbook.series_name("p", "s", kind=kind))[0] == kind
        assert signals.classify(f"{playbook.KIND_TOKENS[kind]}:playbook_signal_1")[0] == kind


def test_a_query_without_a_workload_label_counts_for_the_alerting_service(tmp_path: Path) -> None:
    text = GOOD.replace("sum by (le, app)", "sum by (le)")
    (loaded,) = playbook.load([_write(tmp_path, text)])
    (query,) = playbook.render(loaded.playbook, _trigger(), window_s=60)
    assert query.query.endswith('"service", "checkout", "service", "^$")')


def test_thresholds_and_weights_reach_the_ranking_policy() -> None:
    matched = {"thresholds": {"anomalous_z": 4.0, "abstain_below": 0.5}, "weights": {"deploy": 2}}
    policy = pipeline.analysis_policy(matched)
    assert policy.anomaly.anomalous == 4.0
    assert policy.confidence.abstain_below == 0.5
    assert policy.confidence.cause_weights == (("deploy", 2.0),)
    assert pipeline.analysis_policy(None) == pipeline.analysis_policy({})


def test_explain_shows_the_playbook_and_its_rendered_queries() -> None:
    result = CliRunner().invoke(
        cli.app,
        ["playbooks", "explain", "alertname=KubeContainerOOMKilled", "-n", "shop", "--json"],
    )
    assert result.exit_code == 0, result.output
    explained = yaml.safe_load(result.stdout)
    assert explained["playbook"]["name"] == "oomkill"
    assert 'namespace="shop"' in explained["playbook"]["queries"][0]["query"]
    assert explained["also_matched"] == []


# --- coverage -----------------------------------------------------------------------------------


def scenario_folders() -> list[Path]:
    """The bundled scenarios and this folder's fixtures."""
    roots = [ROOT / "tests" / "scenarios", FIXTURES]
    return sorted(p.parent for root in roots for p in root.glob("*/scenario.yaml"))


def playbook_of(folder: Path) -> str | None:
    """The shipped playbook a scenario's alert runs."""
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    trigger = models.Trigger.from_dict(data["trigger"])
    chosen = playbook.choose(playbook.load([playbook.DEFAULT_DIR]), trigger)
    return chosen.playbook.name if chosen else None


def test_every_shipped_playbook_is_run_by_a_scenario() -> None:
    covered = {playbook_of(folder) for folder in scenario_folders()}
    shipped = {item.playbook.name for item in playbook.load([playbook.DEFAULT_DIR])}
    assert shipped - covered == set()
