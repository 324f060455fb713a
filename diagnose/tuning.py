"""``diagnose tune``: change one harness knob at a time, keep it only when the evals say so.

The knobs are the playbooks' ranking thresholds and cause weights. Each scenario is stood up in
the lab **once** and its evidence bundle saved; every round then replays the analysis from the
saved bundles (the pipeline the run went through, as ``diagnose replay`` does), so a round
takes seconds and every round sees exactly the same evidence. The scenarios are split into a
training set, which the loop looks at, and a held-out set, which it never sees until the end.

A round proposes one change (resets of knobs set away from their defaults first, then steps up
and down), scores the training set, and keeps the change only if accuracy (AC@1, then Avg@5)
rises while wrong abstentions and model tokens do not; otherwise it is reverted. Every round is
appended to a lessons file, which later rounds and later runs read: a move already tried from
the same value is not tried again. The loop stops after its round budget or when no move is
left. The result is scored on the held-out set; when it is worse there than the starting
configuration, nothing is written. Otherwise the output is a unified diff of the playbook
files: a human reviews and applies it, nothing is committed.

With a language model configured (``DIAGNOSE_LLM_BASE_URL``), its settings are knobs too:
the prompt budget (the digest takes a fixed share of it, so it sets the digest's size), the
per-answer completion cap, the step budget and the sampling. Every replay then also asks the
model, as the ``reason`` node does, over the digest of the replayed analysis, and the run's
``llm`` accounting block gives the tokens of each scenario. A change is kept only when
accuracy is not lower, wrong abstentions and failed model runs are not more, and tokens are
strictly fewer, or accuracy is higher at no more tokens. Without a model these knobs cannot
change accuracy or tokens, and they are skipped (the outcome says so).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import yaml

from diagnose import evaluation, playbook, wiring
from diagnose import scenario as scenario_format
from diagnose.domain import errors, models
from diagnose.domain import reasoning as llm_reasoning
from diagnose.lab import lab
from diagnose.settings import Settings
from graphs import pipeline
from graphs.state import Run

INDEX = "recorded.json"
DEFAULTS: dict[str, float] = {
    "thresholds.anomalous_z": 5.0,
    "thresholds.abstain_below": 0.35,
    "thresholds.change_window_minutes": 15.0,
}
"""The analysis's defaults, which a reset move goes back to (weights default to 1)."""
CAUSES = tuple(kind.value for kind in models.CauseKind)
STEPS: dict[str, tuple[Callable[[float], float], ...]] = {
    "thresholds.anomalous_z": (lambda v: v * 0.8, lambda v: v * 1.25),
    "thresholds.abstain_below": (lambda v: v - 0.05, lambda v: v + 0.05),
    "thresholds.change_window_minutes": (lambda v: v / 1.5, lambda v: v * 1.5),
}
WEIGHT_STEPS = (lambda v: v * 0.8, lambda v: v * 1.25)
LIMITS = {
    "thresholds.anomalous_z": (0.5, 100.0),
    "thresholds.abstain_below": (0.0, 1.0),
    "thresholds.change_window_minutes": (1.0, 24 * 60.0),
}

ALL = "*"
"""The knob name of a move that sets every knob of a playbook back to its default."""

MODEL = "(model)"
"""The entry of the language model's settings among the knobs (playbook names are slugs, so
no playbook can take it)."""
MODEL_STEPS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "llm_max_prompt_tokens": (lambda v: v / 1.5, lambda v: v * 1.5),
    "llm_max_completion_tokens": (lambda v: v / 2, lambda v: v * 2),
    "llm_max_steps": (lambda v: v - 2, lambda v: v + 2),
    "llm_temperature": (lambda v: v - 0.3, lambda v: v + 0.3),
    "llm_top_p": (lambda v: v - 0.05, lambda v: v + 0.05),
    "llm_digest_interleave": (lambda v: 0.0, lambda v: 1.0),  # off, on
}
"""The model's knobs (settings fields) and their step down and up. Steps down come first:
they are the ones that can save tokens."""
MODEL_LIMITS = {
    "llm_max_prompt_tokens": (1000.0, 1_000_000.0),
    "llm_max_completion_tokens": (16.0, 65_536.0),
    "llm_max_steps": (1.0, 100.0),
    "llm_temperature": (0.0, 2.0),
    "llm_top_p": (0.05, 1.0),
    "llm_digest_interleave": (0.0, 1.0),
}
_WHOLE = frozenset({"llm_max_prompt_tokens", "llm_max_completion_tokens", "llm_max_steps"})
_FLAGS = frozenset({"llm_digest_interleave"})  # on (1) or off (0)
NO_MODEL = (
    "model knobs skipped: no language model is configured (DIAGNOSE_LLM_BASE_URL is unset), "
    "and without one the digest size, sampling and step budget change neither accuracy nor "
    "tokens"
)

Knobs = dict[str, dict[str, float]]
"""Playbook name → ``thresholds.<name>`` / ``weights.<cause>`` → value (absent: default)."""


# --- recording ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One scenario's saved run: its bundle, and its truth (for scoring only)."""

    name: str
    truth: evaluation.Truth
    bundle: Path
    database: str


def record(
    folders: Sequence[Path], *, base: Settings, bundles: Path, progress: Callable[[str], None]
) -> list[Recorded]:
    """Each scenario's bundle, from ``bundles`` when it was recorded there before, else by
    standing the scenario up in the lab once (its own state directory: the user's audit log
    and memory are not touched)."""
    bundles.mkdir(parents=True, exist_ok=True)
    index_path = bundles / INDEX
    index: dict[str, _IndexEntry] = (
        json.loads(index_path.read_text()) if index_path.exists() else {}
    )
    settings_base = base.model_copy(update={"state_dir": bundles / "state", "llm_base_url": None})
    out = []
    for folder in folders:
        loaded = scenario_format.Scenario.load(folder)
        if loaded.name not in index:
            progress(f"tune: recording {loaded.name} in the lab")
            with lab.running(folder, now=datetime.now(UTC), progress=lambda _m: None) as up:
                settings = wiring.with_endpoints(settings_base, up.endpoints)
                with wiring.open_agent(settings, progress=lambda _m: None, remember=False) as agent:
                    run_id = agent.start(up.trigger).run_id
            database = loaded.postgres.database if loaded.postgres else ""
            index[loaded.name] = {"run_id": run_id, "database": database}
            index_path.write_text(json.dumps(index, indent=2, sort_keys=True))
        entry = index[loaded.name]
        out.append(
            Recorded(
                name=loaded.name,
                truth=evaluation.truth_of(loaded),
                bundle=settings_base.bundles_dir / entry["run_id"],
                database=entry["database"],
            )
        )
    return out


class _IndexEntry(TypedDict):
    """A recorded scenario in the bundles folder's index: its run, and the database it probed."""

    run_id: str
    database: str


# --- scoring ------------------------------------------------------------------------------------


class Spent(TypedDict):
    """What the model cost on one scenario, and how its session ended."""

    status: str
    prompt_tokens: int
    completion_tokens: int


ScoreData = TypedDict(
    "ScoreData",
    {
        "AC@1": float,
        "Avg@5": float,
        "wrong_abstentions": int,
        "tokens": int,
        "model_failures": int,
        "scenarios": dict[str, Spent],
    },
)
"""A :class:`Score` as the lessons file and ``tune --json`` hold it."""


@dataclass(frozen=True)
class Score:
    """What a configuration achieves on a set of scenarios."""

    ac1: float
    avg5: float
    wrong_abstentions: int
    tokens: int
    model_failures: int = 0
    """Scenarios whose model run did not end in an accepted answer (its notes say why)."""
    scenarios: dict[str, Spent] = field(default_factory=dict)
    """Per scenario, the run's ``llm`` block: status, prompt and completion tokens."""

    def to_dict(self) -> ScoreData:
        return {
            "AC@1": round(self.ac1, 4),
            "Avg@5": round(self.avg5, 4),
            "wrong_abstentions": self.wrong_abstentions,
            "tokens": self.tokens,
            "model_failures": self.model_failures,
            "scenarios": self.scenarios,
        }

    def better_than(self, other: Score) -> bool:
        """Accuracy not lower, abstention and model failures no worse, and either strictly
        fewer tokens, or higher accuracy at no more tokens."""
        no_worse = (
            self.accuracy() >= other.accuracy()
            and self.wrong_abstentions <= other.wrong_abstentions
            and self.model_failures <= other.model_failures
        )
        cheaper = self.tokens < other.tokens
        better = self.accuracy() > other.accuracy() and self.tokens <= other.tokens
        return no_worse and (cheaper or better)

    def accuracy(self) -> tuple[float, float]:
        return (self.ac1, self.avg5)


@dataclass
class _Loaded:
    recorded: Recorded
    manifest: dict[str, object]
    evidence: list[models.Evidence]


def _load(recorded: Recorded) -> _Loaded:
    manifest, evidence = wiring.read_bundle(recorded.bundle)
    return _Loaded(recorded, manifest, evidence)


@dataclass(frozen=True)
class Model:
    """A configured language model, asked in every replay: its reasoner and session budget
    for one configuration of the model's knobs."""

    reasoner: llm_reasoning.Reasoner
    budget: llm_reasoning.Budget


def model_knobs_of(settings: Settings) -> dict[str, float]:
    """The model's knobs as the settings set them."""
    return {knob: float(getattr(settings, knob)) for knob in MODEL_STEPS}


def _model_for(settings: Settings | None, knobs: Knobs) -> Model | None:
    if settings is None or not settings.llm_base_url:
        return None
    values: dict[str, int | bool | float] = {
        k: int(v) if k in _WHOLE else bool(v) if k in _FLAGS else v
        for k, v in knobs.get(MODEL, {}).items()
    }
    tuned = settings.model_copy(update=values)
    reasoner, budget = wiring.open_model(tuned)
    assert reasoner is not None  # a base URL is set
    return Model(reasoner, budget)


def replay(loaded: _Loaded, knobs: Knobs, *, model: Model | None = None) -> evaluation.Scored:
    """The ranking a configuration gives on one saved run: the pipeline the run went through
    (``graphs.pipeline.replay``: analysis, database findings, the model's claims settled in
    code, asking ``model`` when one is configured), and the run's ``llm`` accounting block."""
    run = Run.from_manifest(loaded.manifest, run_id=loaded.recorded.bundle.name)
    if run.playbook:
        run = dataclasses.replace(
            run, playbook=_with_knobs(run.playbook, knobs.get(run.playbook["name"], {}))
        )
    run = dataclasses.replace(run, database_name=loaded.recorded.database)
    replayed = pipeline.replay(
        run,
        evidence=loaded.evidence,
        reasoner=model.reasoner if model is not None else None,
        budget=model.budget if model is not None else None,
    )
    block = replayed.reasoning
    return {
        "hypotheses": replayed.correlation.get("hypotheses", []),
        "abstained": bool(replayed.correlation.get("abstained", True)),
        "llm": {  # the fields of Reasoning.report()
            "used": block["used"],
            "status": block["status"],
            "prompt_tokens": block["prompt_tokens"],
            "completion_tokens": block["completion_tokens"],
            "calls": block["calls"],
            "failed_calls": block["failed_calls"],
            "seconds": block["seconds"],
        },
    }


def score(runs: Sequence[_Loaded], knobs: Knobs, *, settings: Settings | None = None) -> Score:
    """A configuration's accuracy on saved runs, and what the model cost (with ``settings``
    naming a model; the model's knobs are in ``knobs[MODEL]``)."""
    model = _model_for(settings, knobs)
    try:
        results = {r.recorded.name: replay(r, knobs, model=model) for r in runs}
    finally:
        close = getattr(model.reasoner, "close", None) if model is not None else None
        if callable(close):
            close()  # the model client's HTTP pool
    cases = [
        evaluation.Case(
            name=r.recorded.name, truth=r.recorded.truth, result=results[r.recorded.name]
        )
        for r in runs
    ]
    scored = [c for c in cases if not c.expects_abstention]
    ranks = [c.rank() for c in scored]
    n = max(1, len(ranks))
    ac = [sum(1 for r in ranks if r is not None and r <= k) / n for k in range(1, 6)]
    wrong = sum(1 for c in cases if bool(c.result["abstained"]) != c.expects_abstention)
    tokens = sum(
        int(c.result["llm"]["prompt_tokens"]) + int(c.result["llm"]["completion_tokens"])
        for c in cases
    )
    failed = sum(1 for c in cases if model is not None and c.result["llm"]["status"] != "accepted")
    spent = {
        c.name: Spent(
            status=c.result["llm"]["status"],
            prompt_tokens=c.result["llm"]["prompt_tokens"],
            completion_tokens=c.result["llm"]["completion_tokens"],
        )
        for c in cases
    }
    return Score(
        ac1=ac[0],
        avg5=sum(ac) / 5,
        wrong_abstentions=wrong,
        tokens=tokens,
        model_failures=failed,
        scenarios=spent if model is not None else {},
    )


def _playbook_name(manifest: Mapping[str, object]) -> str:
    """The name of the playbook a saved run matched ('' when none did)."""
    matched = manifest.get("playbook")
    return str(matched.get("name", "")) if isinstance(matched, Mapping) else ""


def _with_knobs(matched: Mapping[str, Any], knobs: dict[str, float]) -> dict[str, Any]:
    thresholds = {k.split(".", 1)[1]: v for k, v in knobs.items() if k.startswith("thresholds.")}
    weights = {k.split(".", 1)[1]: v for k, v in knobs.items() if k.startswith("weights.")}
    return {**matched, "thresholds": thresholds, "weights": weights}


# --- moves and lessons --------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One change of one knob of one playbook (``to`` None: back to the default)."""

    playbook: str
    knob: str
    before: float | None
    to: float | None

    def describe(self) -> str:
        if self.knob == ALL:
            return f"{self.playbook}: every knob → default"
        old = "default" if self.before is None else f"{self.before:g}"
        new = "default" if self.to is None else f"{self.to:g}"
        return f"{self.playbook}: {self.knob} {old} → {new}"

    def key(self) -> tuple[str, str, float | None, float | None]:
        return (self.playbook, self.knob, self.before, self.to)


def knobs_of(loaded: Sequence[playbook.Loaded]) -> Knobs:
    """The knobs each playbook sets."""
    knobs: Knobs = {}
    for item in loaded:
        book = item.playbook
        mine = {
            f"thresholds.{k}": float(v)
            for k, v in book.thresholds.model_dump(exclude_none=True).items()
        }
        mine |= {f"weights.{k}": float(v) for k, v in book.weights.items()}
        knobs[book.name] = mine
    return knobs


def model_moves(knobs: Knobs) -> Iterator[Move]:
    """Steps of the model's knobs (when they are among ``knobs``): every step down first (the
    ones that can save tokens), then every step up."""
    current = knobs.get(MODEL)
    if current is None:
        return
    for direction in (0, 1):
        for knob, steps in MODEL_STEPS.items():
            low, high = MODEL_LIMITS[knob]
            value = current[knob]
            to = min(high, max(low, steps[direction](value)))
            to = float(round(to)) if knob in _WHOLE else round(to, 4)
            if abs(to - value) > 1e-9:
                yield Move(MODEL, knob, value, to)


def moves(knobs: Knobs, *, used: Sequence[str]) -> Iterator[Move]:
    """Candidate moves: the model's knobs first when a model is configured (see
    :func:`model_moves`), then for the playbooks the training set uses: a playbook's knobs
    all back to their defaults (knobs can hurt together and help only together), each knob
    set away from its default back to it, then a step down and up of every knob."""
    yield from model_moves(knobs)
    for name in used:
        if len([k for k, v in knobs.get(name, {}).items() if v != DEFAULTS.get(k, 1.0)]) > 1:
            yield Move(name, ALL, None, None)
    for name in used:
        for knob, value in sorted(knobs.get(name, {}).items()):
            default = DEFAULTS.get(knob, 1.0)
            if abs(value - default) > 1e-9:
                yield Move(name, knob, value, None)
    for name in used:
        current = knobs.get(name, {})
        for knob in [*STEPS, *(f"weights.{c}" for c in CAUSES)]:
            setting = current.get(knob)
            base = DEFAULTS.get(knob, 1.0) if setting is None else setting
            for step in STEPS.get(knob, WEIGHT_STEPS):
                low, high = LIMITS.get(knob, (0.05, 10.0))
                to = round(min(high, max(low, step(base))), 4)
                if abs(to - base) > 1e-9:
                    yield Move(name, knob, setting, to)


def apply(knobs: Knobs, move: Move) -> Knobs:
    changed = copy.deepcopy(knobs)
    mine = changed.setdefault(move.playbook, {})
    if move.knob == ALL:
        mine.clear()
    elif move.to is None:
        mine.pop(move.knob, None)
    else:
        mine[move.knob] = move.to
    return changed


Lesson = TypedDict(
    "Lesson",
    {
        "round": int,
        "playbook": str,
        "knob": str,
        "from": float | None,
        "to": float | None,
        "config": str,  # the fingerprint of the configuration it was tried on
        "train_before": ScoreData,
        "train_after": ScoreData,
        "kept": bool,
    },
)
"""One round of tuning: the move tried, its scores, and whether it was kept (a line of the
lessons file)."""


def read_lessons(path: Path) -> list[Mapping[str, object]]:
    """The lessons file's lines, as written by earlier runs (read field by field)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _tried(lessons: Sequence[Mapping[str, object]]) -> set[tuple[object, ...]]:
    """Moves reverted before, each with the configuration it was tried on."""
    return {
        (item["playbook"], item["knob"], item["from"], item["to"], item.get("config"))
        for item in lessons
        if not item["kept"]
    }


def fingerprint(knobs: Knobs) -> str:
    """A short name for a configuration: a move reverted on it is not tried on it again."""
    text = json.dumps({k: v for k, v in knobs.items() if v}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- the loop -----------------------------------------------------------------------------------


class TrainScores(TypedDict):
    """The training scenarios' score where tuning started and where it ended."""

    before: ScoreData
    after: ScoreData


HeldOutScores = TypedDict(
    "HeldOutScores",
    {"before": ScoreData, "after": ScoreData, "gain_AC@1": float, "gain_Avg@5": float},
)


class OutcomeData(TypedDict):
    """What ``tune --json`` prints."""

    rounds: list[Lesson]
    train: TrainScores
    held_out: HeldOutScores
    written: bool
    why: str
    lessons_read: int
    model: str
    settings: dict[str, str]


@dataclass
class Outcome:
    """What ``tune`` found, printed and returned."""

    rounds: list[Lesson]
    train_before: Score
    train_after: Score
    held_out_before: Score
    held_out_after: Score
    start: Knobs
    final: Knobs
    written: bool
    why: str
    lessons_read: int
    model: str = ""
    """Whether the model's knobs were tuned, and why not when they were not."""

    def settings(self) -> dict[str, str]:
        """The model's settings the tuned configuration changes, as environment variables
        (empty unless it is written)."""
        if not self.written:
            return {}
        before, after = self.start.get(MODEL, {}), self.final.get(MODEL, {})
        return {
            f"DIAGNOSE_{knob.upper()}": (
                str(bool(value)).lower() if knob in _FLAGS else f"{_plain(value):g}"
            )
            for knob, value in after.items()
            if before.get(knob) != value
        }

    def to_dict(self) -> OutcomeData:
        return {
            "rounds": self.rounds,
            "train": {"before": self.train_before.to_dict(), "after": self.train_after.to_dict()},
            "held_out": {
                "before": self.held_out_before.to_dict(),
                "after": self.held_out_after.to_dict(),
                "gain_AC@1": round(self.held_out_after.ac1 - self.held_out_before.ac1, 4),
                "gain_Avg@5": round(self.held_out_after.avg5 - self.held_out_before.avg5, 4),
            },
            "written": self.written,
            "why": self.why,
            "lessons_read": self.lessons_read,
            "model": self.model,
            "settings": self.settings(),
        }


def tune(
    train: Sequence[Recorded],
    held_out: Sequence[Recorded],
    *,
    start: Knobs,
    rounds: int,
    lessons: Path,
    progress: Callable[[str], None],
    settings: Settings | None = None,
) -> Outcome:
    """The keep-or-revert loop over ``rounds`` rounds; the held-out set is scored only at
    the end. With ``settings`` naming a language model, its knobs are tuned too (and every
    replay asks it); without, the outcome says why they were skipped."""
    training = [_load(r) for r in train]
    used = sorted({_playbook_name(r.manifest) for r in training} - {""})
    past = read_lessons(lessons)
    tried = _tried(past)
    knobs = copy.deepcopy(start)
    if settings is not None and settings.llm_base_url:
        knobs.setdefault(MODEL, model_knobs_of(settings))
        start = copy.deepcopy(knobs)
        model = f"tuned: the model at {settings.llm_base_url} is asked in every replay"
    else:
        settings, model = None, NO_MODEL
        progress(f"tune: {NO_MODEL}")
    current = first = score(training, knobs, settings=settings)
    log: list[Lesson] = []
    number = max((n for item in past if isinstance(n := item.get("round", 0), int)), default=0)
    for _ in range(rounds):
        here = fingerprint(knobs)
        move = next((m for m in moves(knobs, used=used) if (*m.key(), here) not in tried), None)
        if move is None:
            progress("tune: no untried move left")
            break
        number += 1
        candidate = apply(knobs, move)
        result = score(training, candidate, settings=settings)
        kept = result.better_than(current)
        entry: Lesson = {
            "round": number,
            "playbook": move.playbook,
            "knob": move.knob,
            "from": move.before,
            "to": move.to,
            "config": here,
            "train_before": current.to_dict(),
            "train_after": result.to_dict(),
            "kept": kept,
        }
        progress(
            f"round {number}: {'kept' if kept else 'reverted'}: {move.describe()} "
            f"(train AC@1 {current.ac1:.2f}→{result.ac1:.2f}, Avg@5 {current.avg5:.2f}→"
            f"{result.avg5:.2f}, wrong abstentions {current.wrong_abstentions}→"
            f"{result.wrong_abstentions}"
            + (
                f", tokens {current.tokens}→{result.tokens}, failed model runs "
                f"{current.model_failures}→{result.model_failures})"
                if settings is not None
                else ")"
            )
        )
        with lessons.open("a") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        log.append(entry)
        tried.add((*move.key(), here))
        if kept:
            knobs, current = candidate, result
    holding = [_load(r) for r in held_out]
    before = score(holding, start, settings=settings)
    after = score(holding, knobs, settings=settings)
    written, why = decide(changed=knobs != start, before=before, after=after)
    return Outcome(log, first, current, before, after, start, knobs, written, why, len(past), model)


def decide(*, changed: bool, before: Score, after: Score) -> tuple[bool, str]:
    """Whether to write the tuned configuration, and why: never when it is less accurate on
    the held-out scenarios than where tuning started."""
    if not changed:
        return False, "no change was kept"
    if after.accuracy() < before.accuracy():
        return False, "refused: the tuned configuration is less accurate on the held-out scenarios"
    return True, "the tuned configuration is at least as accurate on the held-out scenarios"


def scenario_name(folder: Path) -> str:
    return scenario_format.Scenario.load(folder).name


def split(
    folders: Sequence[Path], *, held_out: Sequence[str] = (), every: int = 3
) -> tuple[list[Path], list[Path]]:
    """Training and held-out folders: the named ones held out, else every ``every``-th."""
    ordered = sorted(folders, key=lambda p: p.name)
    if held_out:
        unknown = set(held_out) - {p.name for p in ordered}
        if unknown:
            raise errors.ScenarioError(f"--holdout names unknown scenarios: {sorted(unknown)}")
        out = [p for p in ordered if p.name in held_out]
    else:
        out = ordered[every - 1 :: every]
    train = [p for p in ordered if p not in out]
    if not train or not out:
        raise errors.ScenarioError("tuning needs at least one training and one held-out scenario")
    return train, out


# --- the diff -----------------------------------------------------------------------------------


def diff(loaded: Sequence[playbook.Loaded], final: Knobs, *, root: Path) -> str:
    """A unified diff turning the playbook files into the tuned ones (only their
    ``thresholds`` and ``weights`` blocks change)."""
    chunks: list[str] = []
    for item in loaded:
        text = tuned = item.path.read_text()
        knobs = final.get(item.playbook.name, {})
        before = knobs_of([item]).get(item.playbook.name, {})
        for block in ("thresholds", "weights"):
            old, new = _group(before, f"{block}."), _group(knobs, f"{block}.")
            if old != new:
                ordered = {k: new[k] for k in old if k in new} | new
                tuned = _set_block(tuned, block, {k: _plain(v) for k, v in ordered.items()})
        if tuned != text:
            name = item.path.relative_to(root) if item.path.is_relative_to(root) else item.path
            chunks += difflib.unified_diff(
                text.splitlines(keepends=True),
                tuned.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
    return "".join(chunks)


def _group(knobs: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: v for k, v in knobs.items() if k.startswith(prefix)}


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_]+):", re.MULTILINE)


def _set_block(text: str, key: str, values: dict[str, float | int]) -> str:
    """``text`` with its top-level ``key:`` block replaced by ``values`` (removed when empty,
    appended when missing); the rest of the file, comments included, as it was."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    block = yaml.safe_dump({key: values}, sort_keys=False, default_flow_style=False)
    if start is None:
        if not values:
            return text
        return text + ("" if text.endswith("\n") else "\n") + block
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join([*lines[:start], *([block] if values else []), *lines[end:]])
