"""``diagnose eval``: run scenarios through the lab and the graph, and score the rankings.

Scoring follows SCENARIOS.md: a hypothesis is right when its ``kind`` and ``component`` match
the scenario's ``truth``; AC@k is the share of scenarios whose true root cause is among the
first k hypotheses, Avg@5 the mean of AC@1..AC@5; ``change`` and ``fix`` are scored apart.
Scenarios whose truth has no root cause are right when the agent abstains.

Two baselines come from the same runs, so they see exactly the data the agent saw: *random*
(the expected AC@k of a uniformly random order of the components in scope) and *max-|z|*
(components ordered by their largest robust z-score, the classic "loudest dashboard" read).
Baselines name components only, so they are compared on the component; the agent's
component-only accuracy is printed next to them. A third, *latest change*, names the component
and kind of the most recent change made before the alert (a rollout is a deploy, a ConfigMap or
Secret edit a config cause, a limits or scale change a resource cause; restarts and node trouble
happen to a cluster, nobody makes them), from the changes the run itself listed; it is scored
like the agent, and on the culprit change where the truth names one.

Results are grouped per dataset (the archive or folder a scenario came from), per application
inside a dataset that records several (the alert's namespace), and per fault type
(the truth's kind, with the other kinds its ``also_accept`` allows on the same component: a
Nezha code fault reads ``deploy (or config/dependency/resource)``). Every run's hypotheses must
be in non-increasing confidence order; a run where they are not is flagged.

Archives (``.tar.xz``, ``.tar.gz``, ``.tar``) are extracted once into the cache, in a folder named
after the archive and a hash of its content, with a marker written last so that an interrupted
extraction is redone; members that would land outside that folder are refused.

Only this module reads ``truth``; it never reaches the agent.
"""

from __future__ import annotations

import fnmatch
import hashlib
import lzma
import os
import posixpath
import shutil
import statistics
import tarfile
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from diagnose import scenario as scenario_format
from diagnose import wiring
from diagnose.domain import errors, models
from diagnose.settings import Settings
from graphs import reporting
from graphs.state import ResultData

REJECT = {"verdict": "reject", "approver": "diagnose-eval", "reason": "evaluation run"}
K_MAX = 5
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar")
CRASH = "crash: "
"""How the error of a case that crashed in our own code begins."""
MARKER = ".diagnose-extracted"
"""Written last into an extracted archive's folder: without it the extraction is redone."""
CAUSE_OF_CHANGE = {
    models.ChangeKind.ROLLOUT.value: models.CauseKind.DEPLOY.value,
    models.ChangeKind.CONFIG.value: models.CauseKind.CONFIG.value,
    models.ChangeKind.LIMITS.value: models.CauseKind.RESOURCE.value,
    models.ChangeKind.SCALE.value: models.CauseKind.RESOURCE.value,
}
"""The changes someone makes, and the cause kind each one is, as the ranking reads them."""


@dataclass(frozen=True)
class Truth:
    kind: str | None
    component: str | None
    change: str | None
    fix: str | None
    also: tuple[tuple[str, str], ...] = ()
    """Other (kind, component) pairs that count as right (``truth.also_accept``)."""

    def accepts(self, kind: str, component: str) -> bool:
        return (kind, component) == (self.kind, self.component) or (kind, component) in self.also

    @property
    def fault_type(self) -> str:
        """The kind, and the other kinds that count as right on the same component."""
        if self.kind is None:
            return "none (abstain)"
        others = sorted({k for k, c in self.also if c == self.component and k != self.kind})
        return self.kind + (f" (or {'/'.join(others)})" if others else "")


class Scored(ResultData, total=False):
    """A run's result object as its case keeps it, with what the baselines read: the
    components in scope and the changes the run listed. Empty when the run failed."""

    components: list[dict[str, Any]]  # the correlation's: signals and their z-scores
    changes: list[dict[str, Any]]  # the correlation's: kind, ref, component, at


class CaseRecord(Scored, total=False):
    """One case as ``diagnose eval --json`` prints it: its score, then its result."""

    scenario: str
    dataset: str
    namespace: str
    fault_type: str
    truth: dict[str, object]
    rank: int | None
    verdict: str
    baseline_max_z_rank: int | None
    baseline_latest_change: list[dict[str, str]]
    baseline_latest_change_rank: int | None
    confidence_order_ok: bool
    confidence_breaks: list[int]
    trigger_at: str | None
    error: str | None
    seconds: float


class CulpritChange(TypedDict):
    """The top hypothesis names the truth's change: the share of cases naming one."""

    cases: int
    agent: float | None
    baseline_latest_change: float | None


class Abstentions(TypedDict):
    made: int
    right: int
    expected: int


class Scores(TypedDict):
    """The accuracy block of one group of cases (AC@1, AC@3, Avg@5 per ranking)."""

    scenarios: int
    errors: int
    agent: dict[str, float]
    agent_component_only: dict[str, float]
    baseline_max_z: dict[str, float]
    baseline_latest_change: dict[str, float]
    baseline_random: dict[str, float]
    change_accuracy: float | None
    culprit_change: CulpritChange
    abstentions: Abstentions
    confidence_out_of_order: list[str]
    seconds_mean: float


class DatasetScores(Scores):
    """One dataset's scores, per application (when it records several) and per fault type."""

    by_namespace: dict[str, Scores]
    by_fault_type: dict[str, Scores]


class Summary(Scores):
    """Every case's scores, then per dataset and per fault type."""

    fix_accuracy: float | None
    seconds_per_stage: dict[str, float]
    by_dataset: dict[str, DatasetScores]
    by_fault_type: dict[str, Scores]


@dataclass
class Case:
    """One scenario's run and its score."""

    name: str
    truth: Truth
    result: Scored = field(default_factory=Scored)
    error: str | None = None
    seconds: float = 0.0
    dataset: str = ""
    namespace: str = ""
    """The alert's namespace: the application, when a dataset records several."""
    trigger_at: datetime | None = None
    """When the alert fired, on the run's clock (shifted with the scenario's data)."""
    crash_trace: str = ""
    """The traceback of a crash in our own code, printed on the progress stream."""

    @property
    def expects_abstention(self) -> bool:
        return self.truth.component is None

    def hypotheses(self) -> list[models.HypothesisData]:
        return list(self.result.get("hypotheses") or [])

    def rank(self, *, component_only: bool = False) -> int | None:
        """1-based rank of the true cause among the hypotheses, None when absent."""
        for index, h in enumerate(self.result.get("hypotheses", [])[:K_MAX], start=1):
            if (component_only and h["component"] == self.truth.component) or (
                not component_only and self.truth.accepts(h["kind"], h["component"])
            ):
                return index
        return None

    def baseline_rank(self) -> int | None:
        """Rank of the true component when components are ordered by max |z|."""
        order = [c["component"] for c in _by_max_z(self.result)]
        if self.truth.component in order:
            return order.index(self.truth.component) + 1
        return None

    def candidates(self) -> int:
        return max(1, len(self.result.get("components", [])))

    def latest_changes(self) -> list[dict[str, str]]:
        """The latest-change baseline's ranking: one (kind, component) per changed component,
        the most recent change made before the alert first."""
        return latest_change_ranking(self.result.get("changes") or [], before=self.trigger_at)

    def latest_change_rank(self) -> int | None:
        """Rank of the true cause in the latest-change baseline's ranking. Changes made at the
        same instant (a whole application deployed at once) are tied: the baseline cannot
        tell them apart, so a tie counts at its worst rank."""
        ranking = self.latest_changes()
        for h in ranking:
            if self.truth.accepts(h["kind"], h["component"]):
                rank = max(i for i, r in enumerate(ranking, start=1) if r["at"] == h["at"])
                return rank if rank <= K_MAX else None
        return None

    def names_culprit(self) -> bool:
        """Whether the top hypothesis names the truth's change."""
        top = self.hypotheses()[:1]
        return bool(top) and top[0].get("change") == self.truth.change

    def latest_change_names_culprit(self) -> bool:
        """Whether the latest change before the alert, alone at its instant, is the truth's."""
        ranking = self.latest_changes()
        tied = [r for r in ranking if ranking and r["at"] == ranking[0]["at"]]
        return len(tied) == 1 and tied[0]["change"] == self.truth.change

    def confidence_breaks(self) -> list[int]:
        """1-based ranks whose confidence is above that of the hypothesis ranked before them
        (hypotheses are ranked by the confidence they show: this list must be empty)."""
        shown = [float(h.get("confidence") or 0.0) for h in self.hypotheses()]
        return [i + 1 for i in range(1, len(shown)) if shown[i] > shown[i - 1]]

    def verdict(self) -> str:
        """One word or two for the progress line."""
        if self.error:
            return "error"
        if self.expects_abstention:
            return "abstained (right)" if self.result.get("abstained") else "did not abstain"
        rank = self.rank()
        missed = "abstained, missed" if self.result.get("abstained") else "missed"
        return "right" if rank == 1 else f"rank {rank}" if rank else missed

    def to_dict(self) -> CaseRecord:
        return {
            "scenario": self.name,
            "dataset": self.dataset,
            "namespace": self.namespace,
            "fault_type": self.truth.fault_type,
            "truth": self.truth.__dict__,
            "rank": self.rank(),
            "verdict": self.verdict(),
            "baseline_max_z_rank": self.baseline_rank(),
            "baseline_latest_change": self.latest_changes()[:K_MAX],
            "baseline_latest_change_rank": self.latest_change_rank(),
            "confidence_order_ok": not self.confidence_breaks(),
            "confidence_breaks": self.confidence_breaks(),
            "trigger_at": models.format_time(self.trigger_at) if self.trigger_at else None,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            **self.result,
        }


def latest_change_ranking(
    changes: Iterable[dict[str, Any]], *, before: datetime | None
) -> list[dict[str, str]]:
    """Components ordered by their latest change made before ``before`` (latest first), each
    with the cause kind that change is and its ref; nothing when ``before`` is unknown."""
    if before is None:
        return []
    made = [
        c
        for c in changes
        if c.get("kind") in CAUSE_OF_CHANGE and models.parse_time(c["at"]) < before
    ]
    made.sort(key=lambda c: models.parse_time(c["at"]), reverse=True)
    ranking: list[dict[str, str]] = []
    for change in made:
        if all(r["component"] != change["component"] for r in ranking):
            ranking.append(
                {
                    "kind": CAUSE_OF_CHANGE[change["kind"]],
                    "component": str(change["component"]),
                    "change": str(change["ref"]),
                    "at": str(change["at"]),
                }
            )
    return ranking


def _by_max_z(result: Scored) -> list[dict[str, Any]]:
    return sorted(result.get("components", []), key=lambda c: -_max_z(c))


def _max_z(component: Mapping[str, Any]) -> float:
    return max((abs(float(s.get("z") or 0.0)) for s in component.get("signals", [])), default=0.0)


def find_scenarios(root: Path) -> list[Path]:
    """Every scenario folder at or below ``root`` (a folder holding scenario.yaml), following
    symbolic links, so a suite can be a folder of links to scenarios kept elsewhere."""
    if (root / "scenario.yaml").is_file():
        return [root]
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree, or a second link to the same folder
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()  # deterministic: of two links to one folder, the first name counts
        if "scenario.yaml" in files:
            found.append(Path(folder))
    found.sort()
    if not found:
        raise errors.ScenarioError(f"no scenario.yaml at or below {root}")
    return found


# --- datasets: folders and archives -----------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """The scenarios chosen from one path given to ``diagnose eval``."""

    name: str  # the archive's stem or the folder's name
    scenarios: tuple[Path, ...]


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: Path) -> str:
    """``nezha-public.tar.xz`` → ``nezha-public``."""
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def collect(
    paths: Sequence[Path],
    *,
    cache: Path,
    only: Sequence[str] = (),
    limit: int | None = None,
    progress: Callable[[str], None],
) -> list[Dataset]:
    """One dataset per path (an archive is extracted first), holding its scenarios whose folder
    name matches one of the ``only`` globs (all when none is given), at most ``limit`` of each."""
    datasets = []
    for path in paths:
        if not path.exists():
            raise errors.ScenarioError(
                f"{path} does not exist: give a scenario folder, a folder of "
                "scenarios or an archive of them (.tar.xz, .tar.gz, .tar)"
            )
        archive = is_archive(path)
        root = extract(path, cache=cache, progress=progress) if archive else path
        chosen = [f for f in find_scenarios(root) if selected(f.name, only)]
        name = archive_stem(path) if archive else path.resolve().name
        datasets.append(Dataset(name=name, scenarios=tuple(chosen[:limit])))
    if not any(d.scenarios for d in datasets):
        raise errors.ScenarioError(
            f"no scenario matches --only {' '.join(only)}: the patterns are globs on scenario "
            "folder names, e.g. --only 'nezha-tt-*'"
        )
    return datasets


def selected(name: str, only: Sequence[str]) -> bool:
    return not only or any(fnmatch.fnmatchcase(name, pattern) for pattern in only)


def extract(archive: Path, *, cache: Path, progress: Callable[[str], None]) -> Path:
    """The folder holding ``archive``'s content, extracted now or on an earlier call."""
    target = cache / "datasets" / f"{archive_stem(archive)}-{_content_hash(archive)}"
    if (target / MARKER).is_file():
        progress(f"eval: {archive.name} was extracted before, into {target}")
        return target
    progress(f"eval: extracting {archive.name} into {target}")
    if target.exists():  # an interrupted extraction: start again
        shutil.rmtree(target)
    target.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive=archive)
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError) as exc:
        raise errors.ScenarioError(
            f"{archive} cannot be read as a tar archive ({exc}); check that it was downloaded "
            "whole, or give the extracted folder instead"
        ) from exc
    (target / MARKER).write_text(f"{archive.name}\n")
    return target


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _check_member(member: tarfile.TarInfo, *, archive: Path) -> None:
    """Refuse a member that would be written, or point, outside the extraction folder."""
    if _escapes(member.name):
        raise errors.ScenarioError(
            f"{archive}: refusing to extract {member.name!r}, an absolute path or one "
            "climbing out with '..'; scenarios in an archive live in relative folders"
        )
    if member.issym() or member.islnk():
        # a symbolic link is read from its own folder, a hard link from the archive's root
        base = posixpath.dirname(member.name) if member.issym() else ""
        if _escapes(posixpath.join(base, member.linkname)):
            raise errors.ScenarioError(
                f"{archive}: refusing to extract {member.name!r}, a link to "
                f"{member.linkname!r} outside the archive"
            )
    elif not (member.isfile() or member.isdir()):
        raise errors.ScenarioError(
            f"{archive}: refusing to extract {member.name!r}: only files, folders and links "
            "inside the archive are extracted"
        )


def _escapes(name: str) -> bool:
    if name.startswith(("/", "\\")) or posixpath.isabs(name):
        return True
    normal = posixpath.normpath(name)
    return normal == ".." or normal.startswith("../")


# --- running ------------------------------------------------------------------------------------


def truth_of(loaded: scenario_format.Scenario) -> Truth:
    truth = loaded.truth
    cause = truth.root_cause if truth else None
    return Truth(
        kind=cause.kind if cause else None,
        component=cause.component if cause else None,
        change=cause.change if cause else None,
        fix=truth.fix if truth else None,
        also=tuple((a.kind, a.component) for a in truth.also_accept) if truth else (),
    )


def run_case(
    folder: Path,
    *,
    base: Settings,
    shift: bool,
    progress: Callable[[str], None],
    dataset: str = "",
) -> Case:
    """Stand one scenario up, diagnose it, answer the approval step with a rejection."""
    from diagnose.lab import lab

    loaded = scenario_format.Scenario.load(folder)
    case = Case(
        name=loaded.name,
        truth=truth_of(loaded),
        dataset=dataset,
        namespace=loaded.trigger.namespace,
    )
    began = time.perf_counter()
    try:
        with lab.running(folder, now=datetime.now(UTC), shift=shift, progress=progress) as up:
            case.trigger_at = up.trigger.at
            settings = wiring.with_endpoints(base, up.endpoints)
            with wiring.open_agent(settings, progress=progress, remember=False) as agent:
                paused = agent.start(up.trigger)
                correlation = paused.state.get("correlation") or {}
                case.result = {
                    **reporting.result(paused.state),
                    "components": correlation.get("components", []),
                    "changes": correlation.get("changes", []),
                }
                if paused.waiting:
                    agent.resume(paused.run_id, REJECT)
    except errors.DiagnoseError as exc:
        case.error = str(exc)
    except Exception as exc:  # our own bug: recorded with its traceback; the command fails
        case.error = f"{CRASH}{type(exc).__name__}: {exc}"
        case.crash_trace = traceback.format_exc()
    case.seconds = time.perf_counter() - began
    return case


def run_all(
    datasets: Iterable[Dataset], *, base: Settings, shift: bool, progress: Callable[[str], None]
) -> list[Case]:
    """Every scenario of every dataset, one progress line each with its verdict and time. A
    crash of our own code is recorded on its case, with its traceback on the progress stream,
    and the next scenario runs (:func:`crashed` tells the caller to fail)."""
    chosen = [(d.name, folder) for d in datasets for folder in d.scenarios]
    cases = []
    for index, (dataset, folder) in enumerate(chosen, start=1):
        case = run_case(folder, base=base, shift=shift, progress=lambda _m: None, dataset=dataset)
        if case.crash_trace:
            progress(case.crash_trace.rstrip())
        detail = f": {case.error}" if case.error else ""
        progress(
            f"eval [{index}/{len(chosen)}] {dataset}/{case.name}: {case.verdict()} "
            f"in {case.seconds:.1f} s{detail}"
        )
        if case.confidence_breaks():
            progress(f"warning: {case.name}: {order_warning(case)}")
        cases.append(case)
    return cases


def crashed(cases: Iterable[Case]) -> list[str]:
    """Names of the cases whose run crashed in our own code."""
    return [c.name for c in cases if c.error and c.error.startswith(CRASH)]


def order_warning(case: Case) -> str:
    shown = [h.get("confidence") for h in case.hypotheses()]
    return (
        f"hypotheses are not in non-increasing confidence order (ranks "
        f"{', '.join(map(str, case.confidence_breaks()))} above the rank before; "
        f"confidences {shown})"
    )


def summarise(cases: Sequence[Case]) -> Summary:
    """AC@k, Avg@5, change and fix accuracy, abstentions, stage times, and the baselines: over
    all cases, then per dataset (and per fault type inside it), then per fault type."""
    by_dataset: dict[str, DatasetScores] = {
        name: {
            **_scores(group),
            "by_namespace": _by_namespace(group),
            "by_fault_type": _by_fault_type(group),
        }
        for name, group in _grouped(cases, key=lambda c: c.dataset).items()
    }
    return {
        **_scores(cases),
        "fix_accuracy": _fix_accuracy(cases),
        "seconds_per_stage": _stage_times(cases),
        "by_dataset": by_dataset,
        "by_fault_type": _by_fault_type(cases),
    }


def _scores(cases: Sequence[Case]) -> Scores:
    """The accuracy block of one group of cases."""
    scored = [c for c in cases if not c.expects_abstention]
    abstain = [c for c in cases if c.expects_abstention]
    with_change = [c for c in scored if c.truth.change]
    return {
        "scenarios": len(cases),
        "errors": sum(1 for c in cases if c.error),
        "agent": _accuracy([c.rank() for c in scored]),
        "agent_component_only": _accuracy([c.rank(component_only=True) for c in scored]),
        "baseline_max_z": _accuracy([c.baseline_rank() for c in scored]),
        "baseline_latest_change": _accuracy([c.latest_change_rank() for c in scored]),
        "baseline_random": _random_accuracy([c.candidates() for c in scored]),
        "change_accuracy": _share(with_change, Case.names_culprit),
        "culprit_change": {
            "cases": len(with_change),
            "agent": _share(with_change, Case.names_culprit),
            "baseline_latest_change": _share(with_change, Case.latest_change_names_culprit),
        },
        "abstentions": {
            "made": sum(1 for c in cases if c.result.get("abstained")),
            "right": sum(1 for c in abstain if c.result.get("abstained")),
            "expected": len(abstain),
        },
        "confidence_out_of_order": [c.name for c in cases if c.confidence_breaks()],
        "seconds_mean": round(statistics.fmean(c.seconds for c in cases), 3) if cases else 0.0,
    }


def _grouped(cases: Iterable[Case], *, key: Callable[[Case], str]) -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(key(case), []).append(case)
    return groups


def _by_namespace(cases: Sequence[Case]) -> dict[str, Scores]:
    """Per application (the alert's namespace), when a dataset holds more than one."""
    groups = _grouped(cases, key=lambda c: c.namespace)
    return (
        {name: _scores(group) for name, group in sorted(groups.items())} if len(groups) > 1 else {}
    )


def _by_fault_type(cases: Sequence[Case]) -> dict[str, Scores]:
    groups = _grouped(cases, key=lambda c: c.truth.fault_type)
    return {name: _scores(group) for name, group in sorted(groups.items())}


def _share(cases: Sequence[Case], right: Callable[[Case], bool]) -> float | None:
    return sum(1 for c in cases if right(c)) / len(cases) if cases else None


def _accuracy(ranks: Sequence[int | None]) -> dict[str, float]:
    if not ranks:
        return {f"AC@{k}": 0.0 for k in (1, 3)} | {"Avg@5": 0.0}
    ac = {k: sum(1 for r in ranks if r is not None and r <= k) / len(ranks) for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": statistics.fmean(ac.values())}


def _random_accuracy(candidates: Sequence[int]) -> dict[str, float]:
    if not candidates:
        return _accuracy([])
    ac = {k: statistics.fmean(min(k, n) / n for n in candidates) for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": statistics.fmean(ac.values())}


def _fix_accuracy(cases: Sequence[Case]) -> float | None:
    with_fix = [c for c in cases if c.truth.fix]
    if not with_fix:
        return None
    right = 0
    for case in with_fix:
        fixes = case.result.get("fixes") or []
        proposed = fixes[0]["kind"] if fixes else "none"
        right += proposed == case.truth.fix
    return right / len(with_fix)


def _stage_times(cases: Sequence[Case]) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for case in cases:
        timings = case.result.get("timings_s")
        for name, seconds in (timings["stages"] if timings else {}).items():
            stages.setdefault(name, []).append(float(seconds))
    stages["lab+run"] = [c.seconds for c in cases]
    return {name: round(statistics.fmean(values), 4) for name, values in stages.items() if values}


# --- the terminal's compact table -----------------------------------------------------------------

_COLUMNS = ("n", "AC@1", "AC@3", "Avg@5", "abst", "z AC@1", "chg AC@1", "culprit", "err", "s")


def breakdown(summary: Summary) -> str:
    """Per dataset, then per namespace (when it holds several) and per fault type inside it,
    then all: the agent's AC@1, AC@3, Avg@5 and abstentions, max-|z|'s and latest change's
    AC@1, the culprit change named first (agent / latest change, over the cases naming one),
    errors and mean seconds per scenario."""
    rows: list[tuple[str, ...]] = [("dataset / namespace / fault type", *_COLUMNS)]
    for name, block in summary["by_dataset"].items():
        rows.append((name, *_cells(block)))
        rows += [(f"  ns {ns}", *_cells(b)) for ns, b in block["by_namespace"].items()]
        rows += [(f"  {kind}", *_cells(b)) for kind, b in block["by_fault_type"].items()]
    rows.append(("all", *_cells(summary)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    legend = (
        "z: max-|z| baseline (component only); chg: latest change before the alert; culprit: "
        "top hypothesis names the truth's change, agent/latest change (cases)"
    )
    return "\n".join([*lines, legend])


def _cells(block: Scores) -> tuple[str, ...]:
    agent, culprit = block["agent"], block["culprit_change"]
    shares = (culprit["agent"], culprit["baseline_latest_change"])
    named = f"{'/'.join(map(_ratio, shares))} ({culprit['cases']})" if culprit["cases"] else "-"
    return (
        str(block["scenarios"]),
        *(f"{agent[k]:.2f}" for k in ("AC@1", "AC@3", "Avg@5")),
        str(block["abstentions"]["made"]),
        f"{block['baseline_max_z']['AC@1']:.2f}",
        f"{block['baseline_latest_change']['AC@1']:.2f}",
        named,
        str(block["errors"]),
        f"{block['seconds_mean']:.1f}",
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
