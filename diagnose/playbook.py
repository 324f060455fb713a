"""Playbooks: which signals to pull for which alert, how to weigh them, which fixes apply.

A playbook is a YAML file in ``playbooks/`` (or any folder named by ``DIAGNOSE_PLAYBOOKS``),
validated here (docs/playbooks.md). It is matched against the trigger's title and labels
(:func:`choose`); its signals are PromQL templates rendered for the trigger (:func:`render`)
and run beside the series the agent discovers on its own; its thresholds and weights tune the
ranking; its probes are the database probes to run; its fixes are the catalogue kinds that fit.

:func:`load` reads files and refuses bad ones with :class:`PlaybookError`, whose problems each
name the file and the line. :func:`lint` reports every problem of every file without raising.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import promql_parser
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from diagnose.domain import errors, fixes, models
from diagnose.domain.labels import WORKLOAD_LABELS

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "playbooks"
"""The playbooks shipped with the agent."""

_NOT_PLAYBOOKS = frozenset({"probes.yaml"})
"""Files in the playbook folder that are other data (the database probe catalogue)."""

BUILTIN_VARIABLES = ("service", "namespace", "window")
"""Template variables every trigger provides: its service, its namespace, and the rate window
(a PromQL duration a few query steps long, at least a minute)."""

SignalKind = Literal[
    "errors",
    "latency",
    "saturation",
    "traffic",
    "cpu",
    "memory",
    "throttling",
    "restarts",
    "availability",
    "database",
]

KIND_TOKENS: Mapping[str, str] = {
    "errors": "errors",
    "latency": "latency",
    "saturation": "saturation",
    "traffic": "requests",
    "cpu": "cpu",
    "memory": "memory",
    "throttling": "throttling",
    "restarts": "restarts",
    "availability": "available",
    "database": "pg_blocked",
}
"""The word in a signal's series name that makes the analysis read it as its kind (the analysis
classifies series by name; ``tests/playbooks`` checks every token against it). Database
signals start with ``pg_`` so a ``datname`` label makes them count for ``postgres/<datname>``."""

COMPONENT_LABELS = WORKLOAD_LABELS
"""Labels that name a workload (the analysis reads the same list). A signal
whose query keeps none of them counts for the alerting service."""

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BROKEN = re.compile(r"\{\{(?!\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})")
_SLUG = r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$"


class PlaybookError(errors.ConfigurationError):
    """A playbook file that cannot be used; ``problems`` are ``file:line: message`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# --- schema -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Strict):
    """When a playbook applies. It matches when every ``labels`` pattern matches the alert's
    label of that name, or when any ``titles`` pattern is found in the alert's title."""

    titles: list[str] = Field(default_factory=list)
    """Regular expressions searched in the alert title, case-insensitively."""

    labels: dict[str, str] = Field(default_factory=dict)
    """Label name → regular expression that must match the whole label value."""

    @field_validator("titles")
    @classmethod
    def _titles_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile(pattern)
        return value

    @field_validator("labels")
    @classmethod
    def _labels_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _compile(pattern)
        return value


class Signal(_Strict):
    """One PromQL query to run over the incident window, and what kind of signal it is."""

    name: str = Field(pattern=_SLUG)
    kind: SignalKind
    """How the analysis reads it: ``errors`` and ``latency`` up is bad, ``availability`` down."""
    query: str = Field(min_length=1)
    """A PromQL template: ``{{service}}``, ``{{namespace}}``, ``{{window}}``, the alert's labels
    and the playbook's ``variables``. Group by a label naming the workload (``by (service)``)
    so each workload gets its own signal."""
    description: str = ""


def _one_of(names: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``, as pydantic lists a Literal's values."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _cause_kind(value: Any) -> Any:
    names = [k.value for k in models.CauseKind]
    if value not in names:
        raise _literal(names)
    return value


CauseName = Annotated[str, BeforeValidator(_cause_kind)]
"""A cause kind's name (``models.CauseKind``)."""


class FixTemplate(_Strict):
    """One catalogue fix kind that fits the alert, with its parameters where the kind has any.
    Written as the bare kind (``rollback``) or as a mapping (``{kind: scale, factor: 2}``).
    Kinds, parameters and bounds are the fix catalogue's (``diagnose.domain.fixes``; another
    catalogue may be passed as the validation context's ``catalogue``). Parameters only size
    the catalogue's own action, within its bounds: no template adds an action or changes its
    target."""

    kind: str
    sizes: dict[str, float] = Field(default_factory=dict)
    """Parameter name → value (``scale``'s ``factor``, ``raise_limits``' ``multiplier``)."""

    @model_validator(mode="before")
    @classmethod
    def _from_catalogue(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            value = {"kind": value}
        if not isinstance(value, dict):
            return value
        catalogue: fixes.Catalogue = (info.context or {}).get("catalogue", fixes.CATALOGUE)
        name = value.get("kind")
        kind = catalogue.kind(name) if isinstance(name, str) and name in catalogue else None
        given = {k: v for k, v in value.items() if k != "kind" and v is not None}
        sizes, found = _sizes(given, kind=kind, catalogue=catalogue)
        if kind is None:
            missing = "kind" not in value
            error = "missing" if missing else _literal(catalogue.names)
            found.insert(
                0, InitErrorDetails(type=error, loc=("kind",), input=value if missing else name)
            )
        if kind is None or found:
            raise ValidationError.from_exception_data("FixTemplate", found)
        for parameter in sizes:
            owner = catalogue.owner(parameter)
            if parameter not in {p.name for p in kind.parameters} and owner is not None:
                raise ValueError(f"'{parameter}' applies to {owner.name} only, not to {kind.name}")
        return {"kind": kind.name, "sizes": sizes}

    def parameters(self) -> dict[str, float]:
        """The parameters set (none for a bare kind)."""
        return dict(self.sizes)


def _sizes(
    given: Mapping[str, Any], *, kind: fixes.FixKind | None, catalogue: fixes.Catalogue
) -> tuple[dict[str, float], list[InitErrorDetails]]:
    """The template's parameters as numbers within their bounds (the kind's own, or those of
    the kind that has the parameter), and an error located at each bad one."""
    sizes: dict[str, float] = {}
    found: list[InitErrorDetails] = []
    unknown: list[InitErrorDetails] = []
    for name, value in given.items():
        own = kind is not None and name in {p.name for p in kind.parameters}
        owner = kind if own else catalogue.owner(name)
        if owner is None:
            unknown.append(InitErrorDetails(type="extra_forbidden", loc=(name,), input=value))
            continue
        parameter = owner.parameter(name)
        bounded = TypeAdapter(Annotated[float, Field(ge=parameter.least, le=parameter.most)])
        try:
            sizes[name] = bounded.validate_python(value)
        except ValidationError as exc:
            found += [_at(name, e) for e in exc.errors()]
    return sizes, found + unknown


def _literal(names: Sequence[str]) -> PydanticCustomError:
    return PydanticCustomError(
        "literal_error", "Input should be {expected}", {"expected": _one_of(names)}
    )


def _at(name: str, error: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=error["type"],
        loc=(name, *error["loc"]),
        input=error["input"],
        ctx=error.get("ctx", {}),
    )


class Thresholds(_Strict):
    """Thresholds of the ranking (docs/analysis.md); unset ones keep the defaults."""

    anomalous_z: float | None = Field(None, gt=0, le=100)
    """A signal is anomalous when its median z after the onset reaches this (default 5)."""
    abstain_below: float | None = Field(None, ge=0, le=1)
    """Abstain when the best hypothesis's confidence is under this (default 0.35)."""
    change_window_minutes: float | None = Field(None, gt=0, le=24 * 60)
    """A change this many minutes before the onset still explains it fully (default 15)."""


class Playbook(_Strict):
    """One playbook file."""

    format: Literal[1] = 1
    name: str = Field(pattern=_SLUG)
    description: str = ""
    priority: int = Field(0, ge=-100, le=100)
    """When several playbooks match, the highest priority runs (then label matches, then
    the name)."""
    match: Match
    variables: dict[str, str] = Field(default_factory=dict)
    """Defaults for template variables that the alert's labels may not carry."""
    signals: list[Signal] = Field(default_factory=list)
    probes: list[str] = Field(default_factory=list)
    """Database probes (names from the probe catalogue) to run when a database is configured."""
    thresholds: Thresholds = Field(default_factory=lambda: Thresholds.model_validate({}))
    weights: dict[CauseName, float] = Field(default_factory=dict)
    """Cause kind → factor on its hypotheses' ordering score (1: neutral)."""
    fixes: list[FixTemplate] = Field(default_factory=list)
    """The catalogue fix kinds that fit this alert, with their parameters. Fixes of other
    kinds are still proposed, marked as outside the playbook and after these."""

    @property
    def fix_kinds(self) -> list[str]:
        return [f.kind for f in self.fixes]

    @field_validator("weights")
    @classmethod
    def _weights_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, weight in value.items():
            if not 0 < weight <= 10:
                raise ValueError(f"weight of {kind} must be in (0, 10], got {weight}")
        return value

    @field_validator("fixes")
    @classmethod
    def _unique_fixes(cls, value: list[FixTemplate]) -> list[FixTemplate]:
        kinds = [f.kind for f in value]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            raise ValueError(f"fix kinds listed more than once: {', '.join(twice)}")
        return value

    @field_validator("signals")
    @classmethod
    def _unique_signals(cls, value: list[Signal]) -> list[Signal]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError("signal names must be unique within a playbook")
        return value


@dataclass(frozen=True)
class Loaded:
    """A valid playbook and the file it came from."""

    playbook: Playbook
    path: Path


@dataclass(frozen=True)
class Query:
    """One signal rendered for a trigger. ``query`` is what runs; ``series`` the name the
    analysis reads its results under (chosen so the name says the signal's kind)."""

    signal: str
    kind: str
    template: str
    rendered: str
    query: str
    series: str


# --- loading ----------------------------------------------------------------------------------


def files_in(paths: Iterable[Path]) -> list[Path]:
    """The playbook files named by ``paths`` (files as given, folders' ``*.yaml`` and
    ``*.yml`` except the probe catalogue), sorted, without duplicates."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in [*path.glob("*.yaml"), *path.glob("*.yml")]
                if p.name not in _NOT_PLAYBOOKS
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def load(
    paths: Iterable[Path],
    *,
    probe_names: Iterable[str] | None = None,
    catalogue: fixes.Catalogue = fixes.CATALOGUE,
) -> list[Loaded]:
    """Every playbook in ``paths``; :class:`PlaybookError` listing every problem if any file
    is not usable (missing, bad YAML, unknown field, bad PromQL, unknown variable or probe,
    a fix kind or parameter not in ``catalogue``, two playbooks of one name)."""
    loaded, problems = _read_all(files_in(paths), probe_names=probe_names, catalogue=catalogue)
    if problems:
        raise PlaybookError(problems)
    return loaded


def lint(
    paths: Iterable[Path],
    *,
    probe_names: Iterable[str] | None = None,
    catalogue: fixes.Catalogue = fixes.CATALOGUE,
) -> list[str]:
    """Every problem of every playbook file, as ``file:line: message`` (empty when clean)."""
    files = files_in(paths)
    if not files:
        return [f"{', '.join(str(p) for p in paths)}: no playbook files found"]
    return _read_all(files, probe_names=probe_names, catalogue=catalogue)[1]


def _read_all(
    files: Sequence[Path], *, probe_names: Iterable[str] | None, catalogue: fixes.Catalogue
) -> tuple[list[Loaded], list[str]]:
    known = set(probe_names) if probe_names is not None else None
    loaded: list[Loaded] = []
    problems: list[str] = []
    for path in files:
        item, found = _read_one(path, probe_names=known, catalogue=catalogue)
        problems += found
        if item is not None:
            loaded.append(item)
    first: dict[str, Path] = {}
    for item in loaded:
        name = item.playbook.name
        if name in first:
            problems.append(f"{item.path}:1: playbook name {name!r} is also used by {first[name]}")
        first.setdefault(name, item.path)
    return loaded, problems


def _read_one(
    path: Path, *, probe_names: set[str] | None, catalogue: fixes.Catalogue
) -> tuple[Loaded | None, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{path}:0: cannot read: {exc.strerror or exc}"]
    try:
        data, lines = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return None, [f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]
    try:
        playbook = Playbook.model_validate(data, context={"catalogue": catalogue})
    except ValidationError as exc:
        return None, [
            f"{path}:{_line_of(lines, tuple(e['loc']))}: {_where(e['loc'])}{e['msg']}"
            for e in exc.errors()
        ]
    problems = [f"{path}:{line}: {message}" for line, message in _check(playbook, lines=lines)]
    problems += [
        f"{path}:{_line_of(lines, ('probes', i))}: unknown probe {name!r} (not in the catalogue)"
        for i, name in enumerate(playbook.probes)
        if probe_names is not None and name not in probe_names
    ]
    return (None if problems else Loaded(playbook, path)), problems


def _check(playbook: Playbook, *, lines: Mapping[tuple[Any, ...], int]) -> list[tuple[int, str]]:
    """What the schema cannot say: variables each template needs, and PromQL syntax."""
    available = set(BUILTIN_VARIABLES) | set(playbook.variables) | set(playbook.match.labels)
    problems = []
    for index, signal in enumerate(playbook.signals):
        line = _line_of(lines, ("signals", index, "query"))
        if _BROKEN.search(signal.query):
            problems.append((line, f"signal {signal.name}: a '{{{{' opens no valid variable"))
            continue
        missing = sorted(set(_VARIABLE.findall(signal.query)) - available)
        if missing:
            problems.append(
                (
                    line,
                    f"signal {signal.name}: template uses {', '.join(missing)}, which is neither "
                    f"built in ({', '.join(BUILTIN_VARIABLES)}), in 'variables', nor a label "
                    "that 'match.labels' requires",
                )
            )
            continue
        sample = _substitute(signal.query, {v: _SAMPLE.get(v, "x") for v in available})
        problem = promql_problem(sample)
        if problem:
            problems.append((line, f"signal {signal.name}: bad PromQL: {problem}"))
    return problems


_SAMPLE = {"window": "5m", "service": "svc", "namespace": "ns"}


def promql_problem(query: str) -> str:
    """Why ``query`` is not PromQL (Prometheus's grammar, via ``promql-parser``); '' if it is."""
    try:
        promql_parser.parse(query)
    except (ValueError, TypeError) as exc:
        return str(exc) or type(exc).__name__
    return ""


def _compose(text: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The YAML document as plain data, and the 1-based line of every key and item by path."""
    data = yaml.safe_load(text)
    lines: dict[tuple[Any, ...], int] = {}
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _note_lines(node, path=(), lines=lines)
    return data, lines


def _note_lines(
    node: yaml.Node, *, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            _note_lines(value_node, path=(*path, key), lines=lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _note_lines(item, path=(*path, index), lines=lines)


def _line_of(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the deepest known part of ``loc`` (pydantic locations may end in names of
    fields that are absent, or of validators)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    return ".".join(parts) + ": " if parts else ""


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc


# --- matching and rendering -------------------------------------------------------------------


def matches(playbook: Playbook, trigger: models.Trigger) -> str:
    """How the playbook matches the trigger: ``"labels"``, ``"title"``, or '' when it does
    not."""
    wanted = playbook.match.labels
    if wanted and all(
        key in trigger.labels and _compile(pattern).fullmatch(trigger.labels[key])
        for key, pattern in wanted.items()
    ):
        return "labels"
    if any(_compile(p).search(trigger.title) for p in playbook.match.titles):
        return "title"
    return ""


def choose(playbooks: Sequence[Loaded], trigger: models.Trigger) -> Loaded | None:
    """The playbook that runs for a trigger: the matching one of highest priority, a label
    match before a title match, then by name; None when none matches."""
    ranked = [
        (-item.playbook.priority, how != "labels", item.playbook.name, index)
        for index, item in enumerate(playbooks)
        if (how := matches(item.playbook, trigger))
    ]
    return playbooks[min(ranked)[3]] if ranked else None


def variables_for(
    playbook: Playbook, trigger: models.Trigger, *, window_s: float
) -> dict[str, str]:
    """Template values for a trigger: the playbook's defaults, the alert's labels over them,
    and the built-ins over both."""
    values = dict(playbook.variables) | dict(trigger.labels)
    return values | {
        "service": trigger.service,
        "namespace": trigger.namespace,
        "window": f"{max(60, round(window_s))}s",
    }


def render(
    playbook: Playbook,
    trigger: models.Trigger,
    *,
    window_s: float,
    kind_of: Callable[[str], str] | None = None,
) -> list[Query]:
    """Every signal's query for this trigger. Values are escaped as PromQL strings (an alert
    label cannot close a quote); the window is a duration and goes in as it is. Each query is
    wrapped so its series carry a name that says their kind (``kind_of``, the analysis's
    classifier, checks it; a name it would read otherwise falls back to a neutral one), and a
    workload label when the query keeps none."""
    values = variables_for(playbook, trigger, window_s=window_s)
    escaped = {k: (v if k == "window" else _escape(v)) for k, v in values.items()}
    out = []
    for index, signal in enumerate(playbook.signals, start=1):
        rendered = _substitute(signal.query, escaped).strip()
        series = series_name(playbook.name, signal.name, kind=signal.kind)
        if kind_of is not None and kind_of(series) != signal.kind:
            series = f"{KIND_TOKENS[signal.kind]}:playbook_signal_{index}"
        query = f'label_replace({rendered}, "__name__", "{series}", "", "")'
        if not _keeps_component(rendered, kind=signal.kind):
            service = _escape(trigger.service).replace("$", "$$")
            query = f'label_replace({query}, "service", "{service}", "service", "^$")'
        out.append(Query(signal.name, signal.kind, signal.query, rendered, query, series))
    return out


def series_name(playbook: str, signal: str, *, kind: str) -> str:
    """``<kind word>:<playbook>:<signal>`` with only ``[a-z0-9_:]`` (a valid metric name)."""
    clean = re.sub(r"[^a-z0-9_]", "_", f"{playbook}:{signal}".replace(":", "__"))
    return f"{KIND_TOKENS[kind]}:{clean}"


def _keeps_component(query: str, *, kind: str) -> bool:
    """Whether the query's outer aggregation keeps a workload label (``by (…service…)``), or
    it has no ``by``/``without`` at all and selects raw series (which carry their labels)."""
    names = (*COMPONENT_LABELS, "datname") if kind == "database" else COMPONENT_LABELS
    grouped = re.findall(r"\bby\s*\(([^)]*)\)", query)
    if grouped:
        return any(label.strip() in names for group in grouped for label in group.split(","))
    aggregations = re.search(
        r"\b(sum|avg|max|min|count|quantile|topk|bottomk|stddev|stdvar|group)\b\s*\(", query
    )
    return aggregations is None and "without" not in query


def _substitute(template: str, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values[m.group(1)], template)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# --- what the ranking gets ----------------------------------------------------------------------


def summary(
    item: Loaded,
    trigger: models.Trigger,
    *,
    window_s: float,
    kind_of: Callable[[str], str] | None = None,
) -> dict[str, models.JSON]:
    """The matched playbook as plain data for the run's state and report."""
    playbook = item.playbook
    return {
        "name": playbook.name,
        "file": item.path.name,
        "matched_by": matches(playbook, trigger),
        "queries": [
            {"signal": q.signal, "kind": q.kind, "query": q.query, "series": q.series}
            for q in render(playbook, trigger, window_s=window_s, kind_of=kind_of)
        ],
        "probes": list(playbook.probes),
        "thresholds": playbook.thresholds.model_dump(exclude_none=True),
        "weights": dict(playbook.weights),
        "fixes": playbook.fix_kinds,
        "fix_templates": {f.kind: f.parameters() for f in playbook.fixes if f.parameters()},
    }
