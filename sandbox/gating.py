"""The first gate: PostgreSQL's own parser decides what a statement is, and an allow-list decides
whether it may run.

A statement passes only if ``pglast`` (libpg_query, the server's grammar) parses it into exactly
one statement of an allowed form: ``SELECT`` (``WITH`` whose every query is a ``SELECT``),
``EXPLAIN`` of such a ``SELECT`` without ``ANALYZE``, or ``SHOW``. Every node of its syntax tree
must be of a kind the gate knows to be side-effect free; every function, operator and type it
names must be on the allow-lists below. Anything else is refused with the rule it broke, in
words (:class:`diagnose.domain.database.StatementRefused`).

The gate is pure: no I/O, no server. It is one of three independent layers; the connector still
runs what passes in a read-only transaction that is rolled back, as a role that can only read.
The connector executes only what :func:`check` or :func:`generic_plan` approved
(:class:`diagnose.domain.database.Approved`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pglast import ast, enums, parser

from diagnose.domain import database

PG16 = 160000
"""The first server version with ``EXPLAIN (GENERIC_PLAN)``."""

MAX_STATEMENT_CHARS = 100_000


def check(sql: str) -> database.Approved:
    """Approve one statement, or raise :class:`StatementRefused` saying why not."""
    statement = _parse_one(sql)
    if isinstance(statement, ast.SelectStmt):
        return database.Approved(
            text=sql,
            kind=database.StatementKind.SELECT,
            declare=_declare(sql, parsed=statement),
            names=_check_tree(statement),
        )
    if isinstance(statement, ast.ExplainStmt):
        names = _check_explain(statement)
        return database.Approved(text=sql, kind=database.StatementKind.EXPLAIN, names=names)
    if isinstance(statement, ast.VariableShowStmt):
        return database.Approved(text=sql, kind=database.StatementKind.SHOW)
    raise database.StatementRefused(
        f"{_describe(statement)} is not allowed: only SELECT, WITH … SELECT, EXPLAIN "
        "(without ANALYZE) and SHOW may run"
    )


def generic_plan(statement: str, *, server_version: int) -> database.Approved:
    """The generic plan of a normalised SELECT (``$n`` parameters, as pg_stat_statements keeps
    it), never executing it: ``EXPLAIN (GENERIC_PLAN)`` from PostgreSQL 16; before that,
    ``PREPARE`` under ``plan_cache_mode = force_generic_plan`` and ``EXPLAIN EXECUTE`` with NULL
    arguments, then ``DEALLOCATE``."""
    body = statement.strip().rstrip(";").rstrip()
    parsed = _parse_one(body)
    if not isinstance(parsed, ast.SelectStmt):
        raise database.StatementRefused(
            f"only a SELECT can be explained here, not {_describe(parsed)}"
        )
    names = _check_tree(parsed)
    if server_version >= PG16:
        return _approve_explain(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {body}")
    return _prepared_plan(body, parsed=parsed, names=names)


def resolve(approved: database.Approved, *, visible: Sequence[database.Visible]) -> None:
    """Refuse a statement whose names can resolve, in this database, to anything but an
    allowed built-in: a function or operator outside ``pg_catalog`` that shares a name the
    statement uses unqualified (PostgreSQL may prefer it: ``lower(1)`` calls ``public.lower(int)``,
    ``name + 'x'`` a user's ``+``), a field ``(x).f`` or ``rel.f`` that names a function not on
    the allow-list, or any function of an extension not on :data:`ALLOWED_EXTENSIONS`; and any
    statement at all in a database where a user defined a cast the probe role could run."""
    names = approved.names
    for item in visible:
        if item.kind == "cast":
            raise database.StatementRefused(
                f"this database holds a user-defined cast backed by {item.name}, which "
                "PostgreSQL may apply to any value of its type, named or not: probes here "
                "could run it. Drop the cast, or REVOKE EXECUTE on its function FROM PUBLIC "
                "and the probe role"
            )
        if item.kind == "operator" and item.schema != "pg_catalog":
            if item.name in names.operators:
                raise database.StatementRefused(
                    _shadowed(item, how=f"OPERATOR(pg_catalog.{item.name})")
                )
            continue
        used_as_call = item.name in names.calls
        used_as_field = item.name in names.fields
        if not (used_as_call or used_as_field):
            continue
        if item.extension is not None and item.extension not in ALLOWED_EXTENSIONS:
            raise database.StatementRefused(
                f"{item.name} is a function of the extension {item.extension}, which probes may "
                "not call in any form"
            )
        if item.schema != "pg_catalog":
            raise database.StatementRefused(_shadowed(item, how=f"pg_catalog.{item.name}(…)"))
        if used_as_field and item.name not in ALLOWED_FUNCTIONS | ALLOWED_TYPES:
            raise database.StatementRefused(
                f"the field {item.name} of (x).{item.name} or rel.{item.name} is read by "
                f"PostgreSQL as the call {item.name}(x) when x has no such column, and "
                f"{item.name}() is not on the allow-list; if it is a column, select it "
                "unqualified or rename it in a subquery"
            )


def bounded(
    approved: database.Approved, *, columns: Sequence[database.Column], limits: database.Limits
) -> str:
    """A cursor over the approved SELECT whose every value is cut on the server: text to a
    number of characters, anything else to NULL when its text is too long; the row's bytes
    are shared among its columns (:attr:`~database.Limits.max_row_bytes`). The last column
    is true when a value of the row was cut. ``OFFSET 0`` keeps the planner from inlining the
    statement, so each value is computed once, as the statement alone would."""
    if approved.declare is None or not columns:
        raise database.StatementRefused("only a SELECT with columns is read through a cursor")
    inner = _statement_text(approved.text)
    per_cell = max(16, limits.max_row_bytes // len(columns))
    chars = max(4, min(limits.max_cell_chars * 2 + 257, per_cell // 4))
    values, sizes, cuts = [], [], []
    for index, column in enumerate(columns, start=1):
        value = f"diagnose_row.c{index}"
        size = f"diagnose_size.s{index}"
        sizes.append(f"pg_catalog.octet_length({value}::pg_catalog.text)")
        if column.type_oid in _TEXT_TYPES:
            values.append(f"pg_catalog.left({value}::pg_catalog.text, {chars})")
            cuts.append(
                f"({size} OPERATOR(pg_catalog.>) {chars} AND "
                f"pg_catalog.char_length({value}::pg_catalog.text) OPERATOR(pg_catalog.>) {chars})"
            )
        else:
            values.append(f"CASE WHEN {size} OPERATOR(pg_catalog.<=) {per_cell} THEN {value} END")
            cuts.append(f"{size} OPERATOR(pg_catalog.>) {per_cell}")
    aliases = ", ".join(f"c{i}" for i in range(1, len(columns) + 1))
    size_aliases = ", ".join(f"s{i}" for i in range(1, len(columns) + 1))
    text = (
        f"DECLARE {database.CURSOR} NO SCROLL CURSOR FOR SELECT {', '.join(values)}, "
        f"coalesce({' OR '.join(cuts)}, false) AS diagnose_cut FROM (SELECT * FROM (\n{inner}\n) "
        f"AS diagnose_inner({aliases}) OFFSET 0) AS diagnose_row CROSS JOIN LATERAL "
        f"(SELECT {', '.join(sizes)}) AS diagnose_size({size_aliases})"
    )
    _require_same_query(text, inner=inner)
    return text


def count_parameters(sql: str) -> int:
    """The highest ``$n`` in a statement (0 without parameters)."""
    numbers = [int(n.number or 0) for n in _walk(_parse_one(sql)) if isinstance(n, ast.ParamRef)]
    return max(numbers, default=0)


def relations(sql: str) -> list[str]:
    """The relations a statement reads, as written (``schema.name`` or ``name``)."""
    return [
        ".".join(part for part in (node.schemaname, node.relname) if part)
        for node in _walk(_parse_one(sql))
        if isinstance(node, ast.RangeVar)
    ]


# --- parsing ----------------------------------------------------------------------------------


def _parse_one(sql: str) -> ast.Node:
    if "\x00" in sql:
        raise database.StatementRefused("the statement contains a NUL byte")
    if len(sql) > MAX_STATEMENT_CHARS:
        raise database.StatementRefused(f"the statement is longer than {MAX_STATEMENT_CHARS} chars")
    try:
        statements = parser.parse_sql(sql)
    except parser.ParseError as exc:
        raise database.StatementRefused(f"PostgreSQL's parser rejects it: {exc}") from exc
    if len(statements) != 1:
        raise database.StatementRefused(
            f"{len(statements)} statements found; exactly one statement may run per probe"
        )
    stmt = statements[0].stmt
    if stmt is None:
        raise database.StatementRefused("the statement is empty")
    return stmt


def _statement_text(sql: str) -> str:
    """The one statement of ``sql`` without a trailing semicolon (comments kept)."""
    raw = parser.parse_sql(sql)[0]
    start = raw.stmt_location or 0
    return sql[start : start + raw.stmt_len] if raw.stmt_len else sql[start:]


def _require_same_query(text: str, *, inner: str) -> None:
    """The bounded cursor must read exactly the approved statement, nothing else."""
    declared = _parse_one(text)
    wanted = _parse_one(inner)
    assert isinstance(declared, ast.DeclareCursorStmt)
    query = declared.query
    assert isinstance(query, ast.SelectStmt) and query.fromClause
    join = query.fromClause[0]
    assert isinstance(join, ast.JoinExpr) and isinstance(join.larg, ast.RangeSubselect)
    fence = join.larg.subquery
    assert isinstance(fence, ast.SelectStmt) and fence.fromClause
    row = fence.fromClause[0]
    assert isinstance(row, ast.RangeSubselect)
    if row.subquery != wanted:
        raise database.StatementRefused("the statement does not survive being bounded intact")


def _walk(node: object) -> Iterator[ast.Node]:
    """Every node under ``node`` (itself included), depth first."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


# --- the rules --------------------------------------------------------------------------------


def _check_explain(statement: ast.ExplainStmt) -> database.Names:
    for option in statement.options or ():
        name = str(option.defname).lower()
        if name == "analyze":
            raise database.StatementRefused("EXPLAIN ANALYZE executes the statement; use EXPLAIN")
        if name not in _EXPLAIN_OPTIONS:
            raise database.StatementRefused(f"EXPLAIN option {name.upper()} is not allowed")
    if not isinstance(statement.query, ast.SelectStmt):
        inner = _describe(statement.query) if statement.query else "nothing"
        raise database.StatementRefused(f"EXPLAIN of {inner} is not allowed: only of a SELECT")
    return _check_tree(statement.query)


@dataclass
class _Found:
    """Names the server resolves through search_path, gathered while checking a tree."""

    calls: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    operators: set[str] = field(default_factory=set)

    def names(self) -> database.Names:
        return database.Names(
            calls=frozenset(self.calls),
            fields=frozenset(self.fields),
            operators=frozenset(self.operators),
        )


def _check_tree(root: ast.Node) -> database.Names:
    found = _Found()
    for node in _walk(root):
        kind = type(node).__name__
        if kind not in _SAFE_NODES:
            raise database.StatementRefused(f"{_describe(node)} is not allowed in a probe")
        rule = _NODE_RULES.get(kind)
        if rule is not None:
            rule(node, found)
    return found.names()


def _check_select(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.SelectStmt)
    if node.intoClause is not None:
        raise database.StatementRefused("SELECT … INTO creates a table; plain SELECT only")
    if node.lockingClause:
        raise database.StatementRefused("FOR UPDATE/SHARE takes row locks; plain SELECT only")


def _check_cte(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.CommonTableExpr)
    if not isinstance(node.ctequery, ast.SelectStmt):
        raise database.StatementRefused(
            f"WITH {node.ctequery.__class__.__name__.removesuffix('Stmt').upper()} modifies "
            f"data (in CTE {node.ctename!r}); every query in WITH must be a SELECT"
        )


def _check_function(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.FuncCall)
    name = _qualified(node.funcname, what="function")
    _refuse_forbidden(name, form=f"{name}()")
    if name not in ALLOWED_FUNCTIONS:
        hint = " (a quoted name keeps its case)" if name.lower() in ALLOWED_FUNCTIONS else ""
        raise database.StatementRefused(f"function {name}() is not on the allow-list{hint}")
    if len(node.funcname or ()) == 1:
        found.calls.add(name)


def _check_indirection(node: ast.Node, found: _Found) -> None:
    """``(x).f`` is the call ``f(x)`` when ``x`` has no field ``f``."""
    assert isinstance(node, ast.A_Indirection)
    for part in node.indirection or ():
        if isinstance(part, ast.String):
            name = str(part.sval)
            _refuse_forbidden(name, form=f"(…).{name}")
            found.fields.add(name)


def _check_column(node: ast.Node, found: _Found) -> None:
    """``rel.f`` is the call ``f(rel)`` when the relation has no column ``f``."""
    assert isinstance(node, ast.ColumnRef)
    fields = node.fields or ()
    last = fields[-1] if fields else None
    if len(fields) >= 2 and isinstance(last, ast.String):
        name = str(last.sval)
        _refuse_forbidden(name, form=".".join(str(getattr(f, "sval", "*")) for f in fields))
        found.fields.add(name)


def _check_operator(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.A_Expr)
    symbol = _operator(node.name, found=found)
    if node.kind in _RANGE_KINDS:
        found.operators.update({"<", ">", "<=", ">="})
        found.operators.discard(symbol)
    elif symbol not in ALLOWED_OPERATORS:
        raise database.StatementRefused(f"operator {symbol} is not on the allow-list")


def _check_sublink(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.SubLink)
    if node.operName:
        symbol = _operator(node.operName, found=found)
        if symbol not in ALLOWED_OPERATORS:
            raise database.StatementRefused(f"operator {symbol} is not on the allow-list")
    elif node.subLinkType == enums.SubLinkType.ANY_SUBLINK:
        found.operators.add("=")  # x IN (SELECT …)


def _check_sort(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.SortBy)
    if node.useOp:
        symbol = _operator(node.useOp, found=found)
        if symbol not in ALLOWED_OPERATORS:
            raise database.StatementRefused(f"ORDER BY … USING {symbol} is not on the allow-list")


def _check_case(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.CaseExpr)
    if node.arg is not None:
        found.operators.add("=")  # CASE x WHEN y compares with =


def _check_join(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.JoinExpr)
    if node.usingClause or node.isNatural:
        found.operators.add("=")  # JOIN … USING and NATURAL JOIN compare with =


def _operator(names: tuple[ast.String, ...] | None, *, found: _Found) -> str:
    """An operator's symbol. ``OPERATOR(pg_catalog.op)`` is the built-in whatever the search
    path holds; an unqualified symbol is looked up through it, so the server is asked."""
    parts = [str(part.sval) for part in names or ()]
    if len(parts) == 2 and parts[0] == "pg_catalog":
        return parts[1].lower()
    if len(parts) != 1:
        raise database.StatementRefused(
            f"schema-qualified operator OPERATOR({'.'.join(parts)}) is not allowed: "
            "only OPERATOR(pg_catalog.…)"
        )
    found.operators.add(parts[0].lower())
    return parts[0].lower()


def _refuse_forbidden(name: str, *, form: str) -> None:
    if FORBIDDEN_NAMES.fullmatch(name):
        raise database.StatementRefused(
            f"{form} names {name}, a function that acts or runs SQL held in a string "
            "(signals, locks, sleep, files, settings, other servers, statistics resets); "
            "it is refused in every form, (x).f and rel.f included"
        )


def _check_type(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.TypeName)
    name = _qualified(node.names, what="type")
    if name not in ALLOWED_TYPES:
        raise database.StatementRefused(f"type {name} is not on the allow-list")


def _check_relation(node: ast.Node, found: _Found) -> None:
    assert isinstance(node, ast.RangeVar)
    if node.catalogname:
        raise database.StatementRefused("relations in another database are not allowed")


def _qualified(names: tuple[ast.String, ...] | None, *, what: str) -> str:
    """An object name, with an explicit ``pg_catalog.`` dropped; other schemas are refused (a
    function, operator or type in a user schema can do anything)."""
    parts = [str(part.sval) for part in names or ()]
    if len(parts) == 2 and parts[0] == "pg_catalog":
        parts = parts[1:]
    if len(parts) != 1:
        raise database.StatementRefused(f"{what} {'.'.join(parts)} is outside pg_catalog")
    return parts[0]


def _describe(node: ast.Node) -> str:
    kind = type(node).__name__
    return _STATEMENT_WORDS.get(kind) or _NODE_WORDS.get(kind) or f"a {kind} node"


def _approve_explain(text: str) -> database.Approved:
    parsed = _parse_one(text)
    assert isinstance(parsed, ast.ExplainStmt)
    names = _check_explain(parsed)
    return database.Approved(text=text, kind=database.StatementKind.EXPLAIN, names=names)


def _declare(sql: str, *, parsed: ast.SelectStmt) -> str:
    text = f"DECLARE {database.CURSOR} NO SCROLL CURSOR FOR {sql}"
    declared = _parse_one(text)
    if not isinstance(declared, ast.DeclareCursorStmt) or declared.query != parsed:
        raise database.StatementRefused("the statement does not survive a cursor intact")
    return text


def _prepared_plan(
    body: str, *, parsed: ast.SelectStmt, names: database.Names
) -> database.Approved:
    name = "diagnose_plan_" + hashlib.sha256(body.encode()).hexdigest()[:12]
    prepare = f"PREPARE {name} AS {body}"
    prepared = _parse_one(prepare)
    if not isinstance(prepared, ast.PrepareStmt) or prepared.query != parsed:
        raise database.StatementRefused("the statement does not survive being prepared intact")
    arguments = ", ".join(["NULL"] * count_parameters(body))
    execute = f"EXECUTE {name}({arguments})" if arguments else f"EXECUTE {name}"
    return database.Approved(
        text=f"EXPLAIN (FORMAT JSON) {execute}",
        kind=database.StatementKind.EXPLAIN,
        setup=("SET LOCAL plan_cache_mode = force_generic_plan", prepare),
        teardown=(f"DEALLOCATE {name}",),
        names=names,
    )


def _shadowed(item: database.Visible, *, how: str) -> str:
    return (
        f"{item.kind} {item.name} is also defined in schema {item.schema}, which is on the "
        f"probe's search_path: PostgreSQL may pick that one, so an unqualified {item.name} "
        f"is refused in this database; write {how} to mean the built-in"
    )


_TEXT_TYPES = frozenset({25, 1042, 1043})
"""``text``, ``bpchar`` and ``varchar``: cut to a number of characters, not replaced."""

ALLOWED_EXTENSIONS = frozenset({"plpgsql"})
"""Extensions whose functions a probe may name (``pg_stat_statements`` is read through its
view, never by calling its functions)."""

_EXPLAIN_OPTIONS = frozenset(
    {"verbose", "costs", "settings", "format", "summary", "generic_plan", "buffers", "memory"}
)

_RANGE_KINDS = frozenset(
    {
        enums.A_Expr_Kind.AEXPR_BETWEEN, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN,
        enums.A_Expr_Kind.AEXPR_BETWEEN_SYM, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM,
    }
)  # fmt: skip

_NODE_RULES = {
    "SelectStmt": _check_select,
    "CommonTableExpr": _check_cte,
    "FuncCall": _check_function,
    "A_Indirection": _check_indirection,
    "ColumnRef": _check_column,
    "A_Expr": _check_operator,
    "SubLink": _check_sublink,
    "SortBy": _check_sort,
    "CaseExpr": _check_case,
    "JoinExpr": _check_join,
    "TypeName": _check_type,
    "RangeVar": _check_relation,
}

_SAFE_NODES = frozenset(
    {
        "SelectStmt", "ResTarget", "ColumnRef", "A_Star", "A_Const", "String", "Integer",
        "Float", "Boolean", "BitString", "A_Expr", "BoolExpr", "FuncCall", "TypeCast",
        "TypeName", "RangeVar", "JoinExpr", "RangeSubselect", "RangeFunction", "SubLink",
        "CaseExpr", "CaseWhen", "NullTest", "BooleanTest", "CoalesceExpr", "MinMaxExpr",
        "SortBy", "WithClause", "CommonTableExpr", "Alias", "ParamRef", "A_Indirection",
        "A_Indices", "A_ArrayExpr", "RowExpr", "WindowDef", "GroupingSet", "GroupingFunc",
        "SQLValueFunction", "CollateClause", "NamedArgExpr",
    }
)  # fmt: skip
"""Syntax-tree nodes that read and compute only. Anything else (DML, DDL, utility statements,
SELECT INTO's IntoClause, row locks, TABLESAMPLE, XML, JSON_TABLE) is refused by default."""

ALLOWED_OPERATORS = frozenset(
    {
        "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "^", "||", "~", "~*",
        "!~", "!~*", "~~", "~~*", "!~~", "!~~*", "@>", "<@", "&&", "->", "->>", "#>", "#>>",
        "?", "?|", "?&", "@@", "@?", "|/", "||/", "@", "&", "|", "#", "<<", ">>",
    }
)  # fmt: skip
"""Operator symbols as PostgreSQL's catalogue defines them for built-in types. ``BETWEEN``
is read as the comparisons it stands for."""

FORBIDDEN_NAMES = re.compile(
    r"pg_terminate_backend|pg_cancel_backend|pg_signal_\w*|pg_(try_)?advisory_\w*"
    r"|pg_sleep\w*|ts_stat|ts_rewrite|ts_debug"
    r"|(query|cursor|table|database|schema)_to_xml\w*|query_to_xmlschema"
    r"|pg_read_file|pg_read_binary_file|pg_ls_\w*|pg_stat_file|pg_file_\w*|pg_logdir_ls"
    r"|pg_stat_reset\w*|pg_stat_statements_reset|lo_\w*|loread|lowrite|set_config"
    r"|dblink\w*|postgres_fdw\w*|file_fdw\w*|nextval|setval|pg_notify|pg_reload_conf"
    r"|pg_rotate_logfile|pg_switch_wal|pg_promote|pg_create_\w*|pg_drop_replication_slot"
    r"|pg_replication_\w*|pg_logical_\w*|pg_backup_\w*|pg_start_backup|pg_stop_backup"
    r"|pg_wal_replay_\w*|pg_log_backend_memory_contexts|pg_import_system_collations"
    r"|pg_export_snapshot|txid_current\w*|pg_current_xact_id\w*|pg_copy_\w*_slot"
    r"|xpath\w*|xmlexists|pg_cancel_\w*|pg_reload_\w*",
    re.IGNORECASE,
)
"""Functions that act (signals, locks, sleep, files, settings, sequences, other servers,
statistics resets, WAL and slots) or run SQL held in a string (``ts_stat``, ``ts_rewrite``,
``query_to_xml``, ``cursor_to_xml`` and the other ``*_to_xml``). Refused in every syntactic
form, as a call and as a field (``(x).f``, ``rel.f``), whatever the case."""

ALLOWED_TYPES = frozenset(
    {
        "bool", "boolean", "int2", "int4", "int8", "smallint", "integer", "int", "bigint",
        "numeric", "decimal", "float4", "float8", "real", "double precision", "text", "varchar",
        "bpchar", "char", "name", "oid", "regclass", "regtype", "regnamespace", "regrole",
        "regproc", "regprocedure", "interval", "timestamp", "timestamptz", "date", "time",
        "timetz", "json", "jsonb", "uuid", "inet", "cidr", "xid", "xid8", "pg_lsn", "bit",
        "varbit", "bytea",
    }
)  # fmt: skip

ALLOWED_FUNCTIONS = frozenset(
    {
        # aggregates and window functions
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg", "jsonb_agg",
        "json_object_agg", "jsonb_object_agg", "bool_and", "bool_or", "every", "stddev",
        "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "percentile_cont",
        "percentile_disc", "mode", "row_number", "rank", "dense_rank", "percent_rank",
        "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
        # maths
        "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power",
        "pow", "exp", "ln", "log", "log10", "mod", "div", "greatest", "least", "width_bucket",
        # text
        "lower", "upper", "length", "char_length", "octet_length", "substr", "substring",
        "left", "right", "position", "strpos", "replace", "split_part", "btrim", "ltrim",
        "rtrim", "trim", "lpad", "rpad", "concat", "concat_ws", "format", "quote_ident",
        "quote_literal", "initcap", "starts_with", "regexp_replace", "regexp_match",
        "regexp_matches", "regexp_like", "regexp_count", "regexp_substr", "translate",
        "to_char", "to_number", "md5", "similar_to_escape", "like_escape", "overlay",
        "string_to_array", "array_to_string", "encode",
        # time
        "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "age",
        "date_part", "date_trunc", "extract", "make_interval", "justify_interval",
        "justify_hours", "justify_days", "to_timestamp", "to_date", "timezone", "isfinite",
        # arrays and json
        "array_length", "array_lower", "array_upper", "cardinality", "array_position",
        "array_positions", "unnest", "array_remove", "array_cat", "array_append",
        "array_prepend", "to_json", "to_jsonb", "row_to_json", "json_build_object",
        "jsonb_build_object", "json_build_array", "jsonb_build_array", "jsonb_array_elements",
        "jsonb_array_length", "jsonb_each", "jsonb_each_text", "jsonb_object_keys",
        "jsonb_typeof", "jsonb_extract_path_text", "json_extract_path_text", "jsonb_pretty",
        "jsonb_path_query", "jsonb_path_exists",
        # conditional helpers
        "nullif", "num_nonnulls", "num_nulls", "pg_typeof", "collation_for",
        # statistics, sizes and catalogue lookups (read-only, in pg_catalog)
        "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_backend_pid",
        "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size",
        "pg_database_size", "pg_size_pretty", "pg_size_bytes", "pg_column_size",
        "pg_get_indexdef", "pg_get_constraintdef", "pg_get_userbyid", "pg_get_expr",
        "pg_get_viewdef", "format_type", "obj_description", "col_description",
        "has_table_privilege", "has_database_privilege", "has_schema_privilege",
        "current_setting", "current_database", "current_schema", "version",
        "pg_postmaster_start_time", "pg_conf_load_time", "pg_is_in_recovery",
        "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_last_wal_receive_lsn",
        "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp", "pg_wal_lsn_diff",
        "pg_is_wal_replay_paused", "mxid_age", "txid_status", "pg_xact_status",
        "pg_stat_get_backend_pid", "pg_index_column_has_property", "pg_relation_is_updatable",
        "pg_table_is_visible", "pg_get_serial_sequence", "quote_nullable",
    }
)  # fmt: skip
"""Functions that read: no sleep, no signals (pg_cancel_backend, pg_terminate_backend), no
settings (set_config), no files (pg_read_file, lo_*), no other servers (dblink*), no sequences
(nextval, setval), no advisory locks, no large-object or replication-slot functions."""

_STATEMENT_WORDS = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
    "CreateStmt": "CREATE TABLE",
    "CreateTableAsStmt": "CREATE TABLE AS / SELECT INTO",
    "DropStmt": "DROP",
    "TruncateStmt": "TRUNCATE",
    "AlterTableStmt": "ALTER TABLE",
    "VariableSetStmt": "SET/RESET (session settings)",
    "TransactionStmt": "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT)",
    "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE",
    "DeallocateStmt": "DEALLOCATE",
    "DoStmt": "DO (anonymous code block)",
    "CallStmt": "CALL",
    "ListenStmt": "LISTEN",
    "NotifyStmt": "NOTIFY",
    "UnlistenStmt": "UNLISTEN",
    "LockStmt": "LOCK TABLE",
    "VacuumStmt": "VACUUM/ANALYZE",
    "GrantStmt": "GRANT/REVOKE",
    "GrantRoleStmt": "GRANT/REVOKE role",
    "CreateRoleStmt": "CREATE ROLE",
    "AlterRoleStmt": "ALTER ROLE",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "FetchStmt": "FETCH/MOVE",
    "ClosePortalStmt": "CLOSE",
    "DiscardStmt": "DISCARD",
    "LoadStmt": "LOAD",
    "CheckPointStmt": "CHECKPOINT",
    "ReindexStmt": "REINDEX",
    "ClusterStmt": "CLUSTER",
    "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateFunctionStmt": "CREATE FUNCTION",
    "IndexStmt": "CREATE INDEX",
    "ViewStmt": "CREATE VIEW",
    "RuleStmt": "CREATE RULE",
    "CreateTrigStmt": "CREATE TRIGGER",
    "CreateExtensionStmt": "CREATE EXTENSION",
    "ExplainStmt": "EXPLAIN",
    "VariableShowStmt": "SHOW",
    "SelectStmt": "SELECT",
}

_NODE_WORDS = {
    "IntoClause": "SELECT … INTO",
    "LockingClause": "FOR UPDATE/SHARE",
    "RangeTableSample": "TABLESAMPLE",
    "XmlExpr": "an XML expression",
    "XmlSerialize": "XMLSERIALIZE",
    "RangeTableFunc": "XMLTABLE",
    "JsonTable": "JSON_TABLE",
}
