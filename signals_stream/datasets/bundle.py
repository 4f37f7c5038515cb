"""A dataset request compiled to its stages: the anchors, one attributes table per key, and
the dataset that joins them. Pure: a request and the events table's columns in, sqlglot trees
and SQL text out.

Each stage is a ``SELECT`` and the table it fills. The attributes of a key are every group of
that key compiled at the anchors by the batch engine's compiler
(``batch.compile.compile_at_anchors``), joined on ``anchor_id``; the dataset is the anchors
(keys, ``anchor_ts``, ``label``) with every attribute column. A column is named as its
attribute, or ``<group>_<attribute>`` when two groups (or the anchor columns) share the name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from signals_stream.batch.compile import AnchorJoin, EventsTable, compile_at_anchors
from signals_stream.batch.dialects import DialectName, SqlDialect
from signals_stream.datasets.anchors import ANCHOR_ID, ANCHOR_TS, LABEL, anchors_query
from signals_stream.datasets.models import (
    DEFAULT_ANCHORS_TABLE,
    DEFAULT_DATASET_TABLE,
    DatasetBundleRequest,
    UserSuppliedAnchors,
    WarehouseTable,
)
from signals_stream.definitions import AttributeGroup
from signals_stream.definitions.durations import duration_ms
from signals_stream.definitions.keys import AttributeKey
from signals_stream.engine.windows import bucket_width_ms
from signals_stream.errors import DefinitionError
from signals_stream.warehouse.sql import TableRef

__all__ = ["Bundle", "Stage", "build_bundle", "create_table_sql"]

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Stage:
    """One table of a bundle and the query that fills it."""

    table: TableRef
    query: exp.Select


@dataclass(frozen=True)
class Bundle:
    """A request's stages in the order they run, and the dataset's column names."""

    dialect: DialectName
    anchors: Stage
    attributes: tuple[tuple[AttributeKey, Stage], ...]
    dataset: Stage
    columns: tuple[str, ...]

    @property
    def stages(self) -> tuple[Stage, ...]:
        return (self.anchors, *(s for _, s in self.attributes), self.dataset)


def create_table_sql(stage: Stage, dialect: DialectName) -> list[str]:
    """The statements that (re)create ``stage.table`` from its query: ``CREATE OR REPLACE
    TABLE ... AS`` where the dialect has it, else ``DROP TABLE IF EXISTS`` and ``CREATE``."""
    ref = stage.table
    table = exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True)
    create = exp.Create(this=table, kind="TABLE", expression=stage.query.copy())
    if dialect == "postgres":
        drop = exp.Drop(tables=[table.copy()], kind="TABLE", exists=True)
        return [drop.sql(dialect=dialect), create.sql(dialect=dialect, pretty=True)]
    create.set("replace", True)
    return [create.sql(dialect=dialect, pretty=True)]


def _ref(
    table: WarehouseTable | None, default: str, where: TableRef, dialect: DialectName
) -> TableRef:
    """A requested table, the warehouse's defaults (``where``) filling what it leaves out.
    PostgreSQL names no database (the connection's); DuckDB's is a catalog (file stem)."""
    if table is None:
        return TableRef(None if dialect == "postgres" else where.database, where.schema, default)
    database = table.database or where.database
    return TableRef(
        None if dialect == "postgres" else database, table.schema_ or where.schema, table.table
    )


def _lookback_ms(groups: tuple[AttributeGroup, ...], days: int | None) -> int | None:
    """How far before an anchor events are read: ``max_lookback_days``, else the longest
    rolling period (and its bucket) when every attribute has one, else all history."""
    if days is not None:
        return days * _DAY_MS
    longest = 0
    for group in groups:
        for attribute in group.attributes or ():
            if attribute.period is None:
                return None
            period = duration_ms(attribute.period)
            longest = max(longest, period + bucket_width_ms(period))
    return longest or None


def _column_names(groups: tuple[AttributeGroup, ...], reserved: set[str]) -> list[dict[str, str]]:
    """Per group, attribute -> its dataset column (see the module docstring)."""
    counts: dict[str, int] = {}
    for group in groups:
        for attribute in group.attributes or ():
            counts[attribute.name] = counts.get(attribute.name, 0) + 1
    return [
        {
            a.name: a.name
            if counts[a.name] == 1 and a.name not in reserved
            else f"{g.name}_{a.name}"
            for a in g.attributes or ()
        }
        for g in groups
    ]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def build_bundle(
    request: DatasetBundleRequest,
    events: EventsTable,
    *,
    dialect: DialectName,
    output: TableRef,
) -> Bundle:
    """Compile ``request`` for ``dialect``.

    Args:
        request: the request.
        events: the atomic events table and its columns.
        dialect: ``duckdb``, ``postgres``, ``snowflake`` or ``bigquery``.
        output: the default database and schema of the tables (``table`` unused).

    Raises:
        DefinitionError: a definition with no SQL translation (named in the message).
    """
    if request.agentic_contexts:
        raise DefinitionError(
            "agentic_contexts: a context at each anchor is built by replaying the log "
            "(signals-stream dataset build --from log); it has no SQL form"
        )
    groups = request.attributes.attribute_groups
    keys: dict[str, AttributeKey] = {}
    for group in groups:
        keys.setdefault(group.attribute_key.name, group.attribute_key)
    anchors = request.anchors
    labeled = not (isinstance(anchors, UserSuppliedAnchors) and anchors.has_label is False)
    labeled = labeled and anchors.mode != "event"
    source = None
    if isinstance(anchors, UserSuppliedAnchors):
        anchors_table = _ref(None, DEFAULT_ANCHORS_TABLE, output, dialect)
        source = _ref(anchors.source, anchors.source.table, output, dialect)
    else:
        anchors_table = _ref(anchors.output, DEFAULT_ANCHORS_TABLE, output, dialect)
    anchor_keys = tuple(keys.values())
    query = anchors_query(
        anchors,
        keys=anchor_keys,
        events=events,
        sql=SqlDialect(dialect),
        seed=request.seed,
        source=source,
    )
    key_columns = [
        s.alias_or_name
        for s in query.selects
        if s.alias_or_name not in (ANCHOR_ID, ANCHOR_TS, LABEL)
    ]
    reserved = {ANCHOR_ID, ANCHOR_TS, LABEL, *key_columns}
    names = _column_names(groups, reserved)
    lookback = _lookback_ms(groups, request.max_lookback_days)
    attrs_where = TableRef(
        request.attributes.database or output.database,
        request.attributes.schema_ or output.schema,
        "",
    )
    per_key: list[tuple[AttributeKey, Stage]] = []
    columns_by_key: list[tuple[TableRef, list[str]]] = []
    for key_name, key in keys.items():
        join = AnchorJoin(anchors_table, ANCHOR_ID, key_name, ANCHOR_TS, lookback)
        parts: list[tuple[str, exp.Select, dict[str, str]]] = []
        for i, group in enumerate(groups):
            if group.attribute_key.name == key_name:
                compiled = compile_at_anchors(group, events, join, dialect=dialect)
                assert isinstance(compiled.expression, exp.Select)
                parts.append((f"__g{i}", compiled.expression, names[i]))
        first = parts[0][0]
        selects: list[exp.Expr] = [_col(ANCHOR_ID, first)]
        columns: list[str] = []
        for alias, _, renamed in parts:
            for attribute, column in renamed.items():
                selects.append(exp.alias_(_col(attribute, alias), column, quoted=True))
                columns.append(column)
        attrs = exp.select(*selects).from_(exp.paren(parts[0][1]).as_(first, quoted=True))
        for alias, body, _ in parts[1:]:
            attrs = attrs.join(
                exp.paren(body).as_(alias, quoted=True),
                on=exp.EQ(this=_col(ANCHOR_ID, alias), expression=_col(ANCHOR_ID, first)),
                join_type="left",
            )
        table = _ref(None, f"{request.attributes.prefix}_{key_name}", attrs_where, dialect)
        per_key.append((key, Stage(table, attrs)))
        columns_by_key.append((table, columns))
    outputs: list[str] = [*key_columns, ANCHOR_TS, *((LABEL,) if labeled else ())]
    dataset = exp.select(*(_col(c, "__a") for c in outputs))
    dataset = dataset.from_(
        exp.table_(
            anchors_table.table,
            db=anchors_table.schema,
            catalog=anchors_table.database,
            quoted=True,
        ).as_("__a", quoted=True)
    )
    for n, (table, columns) in enumerate(columns_by_key):
        alias = f"__k{n}"
        dataset = dataset.select(*(_col(c, alias) for c in columns), copy=False)
        dataset = dataset.join(
            exp.table_(table.table, db=table.schema, catalog=table.database, quoted=True).as_(
                alias, quoted=True
            ),
            on=exp.EQ(this=_col(ANCHOR_ID, alias), expression=_col(ANCHOR_ID, "__a")),
            join_type="left",
            copy=False,
        )
        outputs += columns
    dataset = dataset.order_by(_col(ANCHOR_TS, "__a"), _col(ANCHOR_ID, "__a"), copy=False)
    dataset_table = _ref(request.dataset, DEFAULT_DATASET_TABLE, output, dialect)
    return Bundle(
        dialect=dialect,
        anchors=Stage(anchors_table, query),
        attributes=tuple(per_key),
        dataset=Stage(dataset_table, dataset),
        columns=tuple(outputs),
    )
