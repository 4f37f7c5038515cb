"""The anchors of a dataset as one SQL query, for every batch dialect. Pure.

One row per anchor: ``anchor_id`` (text), one column per attribute key (its id as text),
``anchor_ts`` and ``label`` (unless unlabeled). Session and event anchors are events of
``atomic.events``, at their event time (``derived_tstamp``, else ``collector_tstamp``, as the
engine), in ``training_span`` (``start_time <= t < end_time``) and with a ``domain_sessionid``;
``anchor_id`` is the event id. ``docs/semantics.md`` ("Training datasets") states the rules:

session   the events of a session (but ``excluded_events``) strictly before its first goal
          event, with at least ``min_events`` such events before them; label 1 in sessions
          that reach the goal, else 0. At most ``max_anchors_per_session`` per session, the
          smallest ``md5('<seed>:<event_id>')``; then negatives are cut to
          ``floor(max_negative_ratio * positives)``, whole sessions first in the order of
          ``md5('<seed>:<domain_sessionid>')`` (then time, event id).
event     every event matching ``criteria``; the earliest ``max_anchors_per_session`` per
          session; no label.
user      the rows of the ``source`` table, numbered in (``anchor_ts``, keys) order.
"""

from __future__ import annotations

from sqlglot import exp

from signals_stream.batch.compile import EventsTable
from signals_stream.batch.dialects import SqlDialect
from signals_stream.batch.filters import criteria_predicate
from signals_stream.batch.values import SqlValue, all_of, compile_value
from signals_stream.datasets.models import (
    EventAnchors,
    SessionAnchors,
    TrainingSpan,
    UserSuppliedAnchors,
)
from signals_stream.definitions.keys import AttributeKey
from signals_stream.definitions.properties import AtomicProperty
from signals_stream.warehouse.sql import TableRef

__all__ = [
    "ANCHOR_ID",
    "ANCHOR_TS",
    "LABEL",
    "SESSION_KEY",
    "anchors_query",
    "sample_hash_text",
]

ANCHOR_ID = "anchor_id"
ANCHOR_TS = "anchor_ts"
LABEL = "label"
SESSION_KEY = "domain_sessionid"


def sample_hash_text(seed: int, value: str) -> str:
    """The text whose MD5 orders the sampling: ``'<seed>:<value>'`` (the log side uses
    ``hashlib.md5(sample_hash_text(...).encode()).hexdigest()``)."""
    return f"{seed}:{value}"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _lit(n: int | float) -> exp.Expr:
    return exp.Literal.number(n)


def _text(node: exp.Expr) -> exp.Expr:
    return exp.cast(node, exp.DataType.build("text"))


def _ms(value: object) -> int:
    from datetime import UTC, datetime

    assert isinstance(value, datetime)
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _row_number(partition: list[exp.Expr], order: list[exp.Expr]) -> exp.Expr:
    return exp.Window(
        this=exp.RowNumber(),
        partition_by=partition,
        order=exp.Order(expressions=[exp.Ordered(this=o) for o in order]),
    )


def _hash(sql: SqlDialect, seed: int, value: exp.Expr) -> exp.Expr:
    text = exp.DPipe(this=exp.Literal.string(sample_hash_text(seed, "")), expression=value)
    return sql.call("md5_hex", text)


class _EventAnchors:
    """The shared part of session and event anchors: the events of the span, with keys."""

    def __init__(self, sql: SqlDialect, table: EventsTable, keys: tuple[AttributeKey, ...]):
        self.sql = sql
        self.table = table
        self.keys = keys

    def value(self, name: str) -> SqlValue:
        return compile_value(self.sql, self.table.columns, AtomicProperty(name=name))

    def events(self, span: TrainingSpan, flags: dict[str, exp.Expr]) -> exp.Select:
        """``__ev``: anchor id, every key, ``anchor_ts``, ``__t`` (ms), ``__eid`` and
        ``flags`` of each event in the span with a session."""
        time = exp.Coalesce(
            this=self.value("derived_tstamp").timestamp,
            expressions=[self.value("collector_tstamp").timestamp],
        )
        t = self.sql.call("epoch_ms", time.copy())
        eid = _text(_col("event_id"))
        selects: list[exp.Expr] = [exp.alias_(eid, ANCHOR_ID, quoted=True)]
        for key in _key_columns(self.keys):
            source = key.source
            assert source is not None  # DatasetAttributeGroups refuses keys without one
            value = compile_value(self.sql, self.table.columns, source).text
            selects.append(exp.alias_(value, key.name, quoted=True))
        selects += [
            exp.alias_(time, ANCHOR_TS, quoted=True),
            exp.alias_(t, "__t", quoted=True),
            exp.alias_(eid.copy(), "__eid", quoted=True),
        ]
        selects += [exp.alias_(node, name, quoted=True) for name, node in flags.items()]
        session = self.value(SESSION_KEY).text
        where = all_of(
            exp.Not(this=exp.Is(this=_col("event_id"), expression=exp.Null())),
            exp.Not(this=exp.Is(this=session.copy(), expression=exp.Null())),
            exp.NEQ(this=session.copy(), expression=exp.Literal.string("")),
            exp.GTE(this=t.copy(), expression=_lit(_ms(span.start_time))),
            exp.LT(this=t.copy(), expression=_lit(_ms(span.end_time))),
        )
        return exp.select(*selects).from_("__raw").where(where)

    def raw(self) -> exp.Select:
        """``__raw``: the events with the JSON lookups computed once (as the batch query)."""
        ref = self.table.ref
        lookups = [exp.alias_(node, name, quoted=True) for name, node in self.sql.hoisted.values()]
        return exp.select(exp.Star(), *lookups).from_(
            exp.table_(ref.table, db=ref.schema, catalog=ref.database, quoted=True)
        )

    def outputs(self, *, labeled: bool) -> list[exp.Expr]:
        names = [ANCHOR_ID, *(k.name for k in _key_columns(self.keys)), ANCHOR_TS]
        return [_col(n) for n in (*names, *((LABEL,) if labeled else ()))]


def _key_columns(keys: tuple[AttributeKey, ...]) -> tuple[AttributeKey, ...]:
    """The session key first (session and event anchors always have it), then the others."""
    session = AttributeKey(name=SESSION_KEY, key=SESSION_KEY)
    return (session, *(k for k in keys if k.name != SESSION_KEY))


def _with(query: exp.Select, ctes: list[tuple[str, exp.Expr]]) -> exp.Select:
    for name, body in ctes:
        query = query.with_(name, as_=body, copy=False)
    return query


def _session(
    sql: SqlDialect,
    table: EventsTable,
    keys: tuple[AttributeKey, ...],
    a: SessionAnchors,
    seed: int,
) -> exp.Select:
    base = _EventAnchors(sql, table, keys)
    excluded = [exp.Literal.string(e.name) for e in a.excluded_events or ()]
    event_name = base.value("event_name").text
    candidate: exp.Expr = exp.true()
    if excluded:
        candidate = exp.Not(
            this=exp.Coalesce(
                this=exp.In(this=event_name, expressions=excluded), expressions=[exp.false()]
            )
        )
    goal = criteria_predicate(sql, table.columns, a.goal_criteria)
    events = base.events(a.training_span, {"__goal": goal, "__cand": candidate})
    sid = _col(SESSION_KEY)
    goals = (
        exp.select(
            exp.alias_(sid.copy(), "__sid", quoted=True),
            exp.alias_(exp.Min(this=_col("__t")), "__gt", quoted=True),
        )
        .from_("__ev")
        .where(_col("__goal"))
        .group_by(sid.copy())
    )
    prior = exp.Sub(
        this=_row_number([sid.copy()], [_col("__t"), _col("__eid")]), expression=_lit(1)
    )
    candidates = (
        exp.select(
            exp.Star(),
            exp.alias_(prior, "__prior", quoted=True),
        )
        .from_("__ev")
        .where(_col("__cand"))
    )
    label = (
        exp.Case().when(exp.Is(this=_col("__gt"), expression=exp.Null()), _lit(0)).else_(_lit(1))
    )
    eligible = (
        exp.select(exp.Star(), exp.alias_(label, LABEL, quoted=True))
        .from_("__cand_ev")
        .join(
            "__goals",
            on=exp.EQ(this=_col("__sid", "__goals"), expression=_col(SESSION_KEY, "__cand_ev")),
            join_type="left",
        )
        .where(
            all_of(
                exp.or_(
                    exp.Is(this=_col("__gt"), expression=exp.Null()),
                    exp.LT(this=_col("__t"), expression=_col("__gt")),
                ),
                exp.GTE(this=_col("__prior"), expression=_lit(a.min_events or 0)),
            )
        )
    )
    ctes: list[tuple[str, exp.Expr]] = [
        ("__raw", base.raw()),
        ("__ev", events),
        ("__goals", goals),
        ("__cand_ev", candidates),
        ("__eligible", eligible),
    ]
    current = "__eligible"
    if a.max_anchors_per_session is not None:
        n = _row_number([sid.copy()], [_hash(sql, seed, _col("__eid")), _col("__eid")])
        ctes.append(
            ("__numbered", exp.select(exp.Star(), exp.alias_(n, "__n", quoted=True)).from_(current))
        )
        ctes.append(
            (
                "__capped",
                exp.select(exp.Star())
                .from_("__numbered")
                .where(exp.LTE(this=_col("__n"), expression=_lit(a.max_anchors_per_session))),
            )
        )
        current = "__capped"
    if a.max_negative_ratio is not None:
        rank = _row_number(
            [_col(LABEL)], [_hash(sql, seed, sid.copy()), _col("__t"), _col("__eid")]
        )
        positives = exp.Window(this=exp.Sum(this=_col(LABEL)))
        ctes.append(
            (
                "__ranked",
                exp.select(
                    exp.Star(),
                    exp.alias_(rank, "__rank", quoted=True),
                    exp.alias_(positives, "__positives", quoted=True),
                ).from_(current),
            )
        )
        keep = exp.Floor(
            this=exp.Mul(this=_lit(float(a.max_negative_ratio)), expression=_col("__positives"))
        )
        ctes.append(
            (
                "__sampled",
                exp.select(exp.Star())
                .from_("__ranked")
                .where(
                    exp.or_(
                        exp.EQ(this=_col(LABEL), expression=_lit(1)),
                        exp.LTE(this=_col("__rank"), expression=keep),
                    )
                ),
            )
        )
        current = "__sampled"
    query = exp.select(*base.outputs(labeled=True)).from_(current)
    return _with(query, ctes)


def _event(
    sql: SqlDialect, table: EventsTable, keys: tuple[AttributeKey, ...], a: EventAnchors
) -> exp.Select:
    base = _EventAnchors(sql, table, keys)
    matches = criteria_predicate(sql, table.columns, a.criteria)
    events = base.events(a.training_span, {"__match": matches})
    ctes: list[tuple[str, exp.Expr]] = [("__raw", base.raw()), ("__ev", events)]
    n = _row_number([_col(SESSION_KEY)], [_col("__t"), _col("__eid")])
    numbered = (
        exp.select(exp.Star(), exp.alias_(n, "__n", quoted=True))
        .from_("__ev")
        .where(_col("__match"))
    )
    ctes.append(("__numbered", numbered))
    query = exp.select(*base.outputs(labeled=False)).from_("__numbered")
    if a.max_anchors_per_session is not None:
        query = query.where(exp.LTE(this=_col("__n"), expression=_lit(a.max_anchors_per_session)))
    return _with(query, ctes)


def _user(keys: tuple[AttributeKey, ...], a: UserSuppliedAnchors, source: TableRef) -> exp.Select:
    names = [k.name for k in keys]
    n = _row_number([], [_col(ANCHOR_TS), *(_col(name) for name in names)])
    selects: list[exp.Expr] = [exp.alias_(_text(n), ANCHOR_ID, quoted=True)]
    selects += [exp.alias_(_text(_col(name)), name, quoted=True) for name in names]
    selects.append(_col(ANCHOR_TS))
    if a.has_label is not False:
        selects.append(_col(LABEL))
    table = exp.table_(source.table, db=source.schema, catalog=source.database, quoted=True)
    return (
        exp.select(*selects)
        .from_(table)
        .where(exp.Not(this=exp.Is(this=_col(ANCHOR_TS), expression=exp.Null())))
    )


def anchors_query(
    anchors: SessionAnchors | EventAnchors | UserSuppliedAnchors,
    *,
    keys: tuple[AttributeKey, ...],
    events: EventsTable,
    sql: SqlDialect,
    seed: int,
    source: TableRef | None = None,
) -> exp.Select:
    """The anchors ``SELECT`` (see the module docstring).

    Args:
        anchors: the request's anchors.
        keys: the attribute keys of the requested groups (one column each).
        events: the atomic events table.
        sql: the dialect.
        seed: the sampling seed.
        source: where a user-supplied anchors table is (its database and schema resolved).
    """
    if isinstance(anchors, SessionAnchors):
        return _session(sql, events, keys, anchors, seed)
    if isinstance(anchors, EventAnchors):
        return _event(sql, events, keys, anchors)
    assert source is not None
    return _user(keys, anchors, source)
