"""Helpers shared by the placement operations: lookups, traits, upserts."""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import re

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from psycopg.rows import tuple_row
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite

from nova_rt import exception
from nova_rt.placement import models

RP = models.ResourceProvider
MAX_INT = 2 ** 31 - 1
_CUSTOM = re.compile(r'^CUSTOM_[A-Z0-9_]+$')


def utcnow() -> datetime.datetime:
    """Placement's clock: naive UTC, as stored."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


@functools.cache
def standard_traits() -> frozenset:
    import os_traits
    return frozenset(os_traits.get_traits())


def check_traits(names, field='traits') -> None:
    for name in names or ():
        if not (_CUSTOM.match(name) or name in standard_traits()):
            raise exception.InvalidInput(
                reason=f'{field}: {name!r} is neither an os-traits name nor '
                       'CUSTOM_[A-Z0-9_]+')


def dialect_name(conn) -> str:
    """'sqlite', 'postgresql' or 'mysql', for a Connection (or a Session)."""
    dialect = getattr(conn, 'dialect', None) or conn.get_bind().dialect
    return dialect.name


@contextlib.contextmanager
def driver_errors(session, statement: str, params):
    """The driver's errors, from statements run on the driver itself, raised as
    SQLAlchemy raises them, so that callers tell a unique violation, a
    deadlock or a dropped connection apart as for any other statement; a
    dropped connection is invalidated, as SQLAlchemy does, so that the pool
    never hands it out again."""
    try:
        yield
    except session.dialect.loaded_dbapi.Error as error:
        dbapi = session.connection.dbapi_connection
        lost = session.dialect.is_disconnect(error, dbapi, None)
        if lost:
            session.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            statement, params, error, session.dialect.loaded_dbapi.Error,
            connection_invalidated=lost, dialect=session.dialect) from error


# How SQLAlchemy leaves an expanding parameter for execution time.
_EXPANDING_IN = re.compile(r'\bIN \(__\[POSTCOMPILE_(\w+)\]\)')


class Direct:
    """A prebuilt Core statement that PostgreSQL runs straight on the psycopg
    cursor, compiled once.

    SQLAlchemy's execution context and result object cost about 55 µs per
    statement on top of psycopg's own 50 (bench/bench_placement.py): a third
    of the placement process's CPU per report went there.  For the hot
    statements whose values psycopg adapts as SQLAlchemy's PostgreSQL
    dialect does (ints, strings, floats, naive datetimes); an expanding
    ``IN`` list becomes ``= ANY(array)``, one statement whatever its length.
    Several rows of an ``INSERT`` (a list of parameters) are one statement
    too, ``VALUES (...), (...)``; a few executions of another statement go
    one by one (``ONE_BY_ONE``): psycopg's executemany runs in pipeline mode,
    which costs the process more CPU than the round trips it saves.  Other
    backends (SQLite) go through ``Connection.execute`` as usual, so both
    give the same rows.

    MySQL/MariaDB: they run on the PyMySQL cursor too (not ``RETURNING``,
    which MySQL has not).  PyMySQL parses every value in Python, and
    SQLAlchemy's result on top of it doubled the cost of 10,000 candidates
    (bench/bench_placement.py).
    """

    def __init__(self, stmt, plan_each_time: bool = False,
                 plain_rows: bool = False):
        """``plan_each_time``: never a prepared statement (psycopg prepares
        one run five times).  For an array over a table that churns:
        PostgreSQL's generic plan for ``= ANY($1)`` does not know the array
        is short, and a sequential scan it chose on a small table stayed
        while dead rows piled up (bench: the query by consumer uuids went
        from 0.4 to 1.7 ms in 30 s of reports).  ``plain_rows``: rows are
        plain tuples (index access only), for queries of thousands of rows
        where building a named tuple per row shows."""
        self.stmt = stmt
        self.plan_each_time = plan_each_time
        self.row_factory = tuple_row if plain_rows else namedtuple_row
        self._pg = None
        self._pg_values = None
        self._mysql = None
        self._named = None

    def _pg_compiled(self, dialect):
        if self._pg is None:
            compiled = self.stmt.compile(dialect=dialect)
            if compiled.positional:
                raise TypeError('Direct needs a named paramstyle')
            # Literal values SQLAlchemy bound itself (``generation + 1``).
            defaults = {k: v for k, v in compiled.params.items()
                        if v is not None}
            sql = _EXPANDING_IN.sub(r'= ANY(%(\1)s)', str(compiled))
            if '__[POSTCOMPILE' in sql:
                raise TypeError(f'Direct cannot run {sql!r}')
            self._pg = (sql, defaults, False if self.plan_each_time else None)
            self._pg_values = _values_group(sql)
        return self._pg

    def _mysql_compiled(self, dialect):
        """``(sql, defaults, expanding names)``; all None for a statement
        MySQL cannot run as it is (``RETURNING``): SQLAlchemy says so."""
        if self._mysql is None:
            try:
                compiled = self.stmt.compile(dialect=dialect)
            except sa_exc.CompileError:
                self._mysql = (None, None, None)
                return self._mysql
            defaults = {k: v for k, v in compiled.params.items()
                        if v is not None}
            # PyMySQL renders a list parameter as ``(a, b, ...)``.
            sql = _EXPANDING_IN.sub(r'IN %(\1)s', str(compiled))
            if '__[POSTCOMPILE' in sql or compiled.positional:
                raise TypeError(f'Direct cannot run {sql!r} on MySQL')
            expanding = [m.group(1) for m in _EXPANDING_IN.finditer(
                str(compiled))]
            self._mysql = (sql, defaults, expanding)
        return self._mysql

    def _on_pymysql(self, session, params, fetch: bool):
        """Run on PyMySQL's cursor: the rows (``fetch``) or the rows
        changed; None where SQLAlchemy has to run it (``RETURNING``, an
        empty ``IN`` list, which MySQL's syntax does not have, or one in
        each of several executions)."""
        sql, defaults, expanding = self._mysql_compiled(session.dialect)
        several = isinstance(params, list)
        if sql is None or (fetch and several) or (expanding and (
                several or any(not params.get(n) for n in expanding))):
            return None
        cursor = session.connection.dbapi_connection.cursor()
        with driver_errors(session, sql, params), cursor:
            if several:
                # A many-row INSERT is one statement (PyMySQL joins them);
                # the rows changed are of every execution, as SQLAlchemy's
                # executemany on PyMySQL counts them.
                return cursor.executemany(
                    sql, [{**defaults, **p} for p in params])
            changed = cursor.execute(sql, {**defaults, **params})
            if not fetch:
                return changed
            rows = cursor.fetchall()
            if self.row_factory is tuple_row:
                return list(rows)        # (PyMySQL's is a tuple)
            if self._named is None:
                self._named = collections.namedtuple(
                    'Row', [d[0] for d in cursor.description])
            return list(map(self._named._make, rows))

    def rows(self, session, params) -> list:
        """The rows (attribute access as SQLAlchemy's) of a query or of a
        ``RETURNING`` statement; for a list of dicts, of every execution."""
        return self._execute(session, params, fetch=True)

    def run(self, session, params) -> int:
        """Execute for a dict, or once per dict of a list; the rows changed
        (of the last execution; on MySQL of every execution)."""
        return self._execute(session, params, fetch=False)

    def _execute(self, session, params, fetch: bool):
        dialect = dialect_name(session)
        if dialect == 'mysql':
            result = self._on_pymysql(session, params, fetch)
            if result is not None:
                return result
        if dialect != 'postgresql':
            result = session.execute(self.stmt, params)
            return result.all() if fetch else result.rowcount
        compiled = self._pg_compiled(session.dialect)
        if (isinstance(params, list) and self._pg_values
                and 1 < len(params) <= MAX_ROWS_PER_INSERT):
            # Several rows of an INSERT: one statement, VALUES (...), (...).
            sql, params = _many_rows(self._pg_values, compiled[1], params)
            compiled = (sql, {}, compiled[2])
        with driver_errors(session, compiled[0], params):
            if fetch:
                return self._pg_rows(session, self.row_factory, *compiled,
                                     params)
            return self._pg_run(session, *compiled, params)

    @staticmethod
    def _pg_rows(session, row_factory, sql, defaults, prepare,
                 params) -> list:
        cursor = session.connection.dbapi_connection.cursor(
            row_factory=row_factory)
        if not isinstance(params, list):
            return cursor.execute(sql, {**defaults, **params},
                                  prepare=prepare).fetchall()
        if len(params) <= ONE_BY_ONE:
            rows = []
            for p in params:
                rows.extend(cursor.execute(sql, {**defaults, **p},
                                           prepare=prepare).fetchall())
            return rows
        cursor.executemany(sql, [{**defaults, **p} for p in params],
                           returning=True)
        rows = []
        while True:
            rows.extend(cursor.fetchall())
            if not cursor.nextset():
                return rows

    @staticmethod
    def _pg_run(session, sql, defaults, prepare, params) -> int:
        cursor = session.connection.dbapi_connection.cursor()
        if not isinstance(params, list):
            cursor.execute(sql, {**defaults, **params}, prepare=prepare)
            return cursor.rowcount
        if len(params) <= ONE_BY_ONE:
            changed = 0
            for p in params:
                cursor.execute(sql, {**defaults, **p}, prepare=prepare)
                changed += cursor.rowcount
            return changed
        cursor.executemany(sql, [{**defaults, **p} for p in params])
        return cursor.rowcount


#: Up to this many executions of one statement are sent one by one rather
#: than as psycopg's executemany, whose pipeline mode costs more of the
#: process's CPU than the round trips it saves (3 rows: ~210 µs against
#: ~150 µs one by one; bench in the commit that set this).  Beyond, the
#: round trips would cost more time than the pipeline costs CPU.
ONE_BY_ONE = 8
#: At most this many rows in one INSERT (far under PostgreSQL's 65,535
#: parameters); more go as executemany.
MAX_ROWS_PER_INSERT = 1000
_PARAM = re.compile(r'%\((\w+)\)s')


def _values_group(sql: str):
    """``(head, group, tail, names)`` of an ``INSERT ... VALUES (group)
    tail`` (the group's parentheses balanced, ``tail`` e.g. ``ON CONFLICT
    ... RETURNING ...``), for one statement of several rows; None for any
    other statement."""
    if not sql.startswith('INSERT INTO '):
        return None
    start = sql.find(' VALUES (')
    if start < 0:
        return None
    start += len(' VALUES ')
    depth = 0
    for end in range(start, len(sql)):
        depth += {'(': 1, ')': -1}.get(sql[end], 0)
        if depth == 0:
            break
    group = sql[start:end + 1]
    return sql[:start], group, sql[end + 1:], set(_PARAM.findall(group))


def _many_rows(values, defaults: dict, params: list) -> tuple[str, dict]:
    """One ``INSERT`` of every row: ``(sql, its parameters)``, the group's
    parameters numbered per row, the others (``ON CONFLICT``'s literals)
    as they were."""
    head, group, tail, names = values
    groups, merged = [], dict(defaults)
    for i, p in enumerate(params):
        groups.append(_PARAM.sub(lambda m, i=i: f'%({m.group(1)}__{i})s'
                                 if m.group(1) in names else m.group(0),
                                 group))
        full = {**defaults, **p}
        merged.update((f'{name}__{i}', full[name]) for name in names)
    return head + ', '.join(groups) + tail, merged


def insert_ignore(session, model, rows: list[dict], conflict_cols: list[str]):
    """INSERT ... ON CONFLICT DO NOTHING, in the session's dialect."""
    if not rows:
        return
    if dialect_name(session) == 'mysql':
        # Not INSERT IGNORE, which would hide every other error too.
        stmt = mysql.insert(model)
        stmt = stmt.on_duplicate_key_update(
            {c: stmt.inserted[c] for c in conflict_cols})
    else:
        module = postgresql if dialect_name(session) == 'postgresql' else sqlite
        stmt = module.insert(model).on_conflict_do_nothing(
            index_elements=conflict_cols)
    session.execute(stmt, rows)


def ids_of(session, model, column: str, values) -> dict:
    """``value -> id`` of the rows of ``model`` whose unique ``column`` is one
    of ``values``: what ``RETURNING`` gives where the database has it (MySQL
    has none)."""
    key = getattr(model, column)
    return dict(session.execute(
        sa.select(key, model.id).where(key.in_(list(values)))).all())


@functools.lru_cache(maxsize=16)
def _insert_returning(model, column: str, columns: tuple) -> Direct:
    """``INSERT`` of ``columns`` returning ``(column, id)``, built once."""
    return Direct(sa.insert(model).values(
        {c: sa.bindparam(c) for c in columns}).returning(
            getattr(model, column), model.id))


def insert_ids(session, model, rows: list[dict], column: str) -> dict:
    """Insert ``rows`` (all with the same keys); ``value of column -> id``
    of each.  On PostgreSQL one ``INSERT ... RETURNING`` on the driver
    (``Direct``): through SQLAlchemy a consumer's insert was an eighth of a
    REST allocation write's CPU."""
    if dialect_name(session) == 'postgresql':
        stmt = _insert_returning(model, column, tuple(rows[0]))
        return dict(stmt.rows(session, rows if len(rows) > 1 else rows[0]))
    if session.dialect.insert_executemany_returning:
        key = getattr(model, column)
        return dict(session.execute(
            sa.insert(model).returning(key, model.id), rows).all())
    session.execute(sa.insert(model), rows)
    return ids_of(session, model, column, [r[column] for r in rows])


def _ensure(session, model, column: str, values) -> dict:
    """``value -> id`` for rows of ``model`` keyed by unique ``column``,
    creating the missing ones."""
    values = sorted(set(values))
    if not values:
        return {}
    insert_ignore(session, model, [{column: v} for v in values], [column])
    return ids_of(session, model, column, values)


def ensure_traits(session, names) -> dict[str, int]:
    """Trait name -> id, creating the missing ones (first use)."""
    return _ensure(session, models.Trait, 'name', names)


def ensure_aggregates(session, uuids) -> dict[str, int]:
    """Aggregate uuid -> id, creating the missing ones (first use)."""
    return _ensure(session, models.Aggregate, 'uuid', uuids)


def get_provider(session, uuid: str):
    rp = session.execute(
        sa.select(RP.id, RP.uuid, RP.host, RP.generation,
                  RP.parent_provider_id).where(RP.uuid == uuid)).first()
    if rp is None:
        raise exception.ResourceProviderNotFound(uuid=uuid)
    return rp


def bump_generation(session, rp_id: int, uuid: str, expected: int,
                    **values) -> int:
    """Compare-and-swap the generation: the loser of a race gets a conflict.

    ``UPDATE ... WHERE generation = :expected`` matches no row when another
    writer got there first (PostgreSQL re-checks the condition after waiting
    for the winner's row lock; SQLite writers are serialised), so two writers
    can never both win.
    """
    result = session.execute(
        sa.update(RP).where(RP.id == rp_id, RP.generation == expected)
        .values(generation=RP.generation + 1, **values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        current = session.execute(
            sa.select(RP.generation).where(RP.id == rp_id)).scalar()
        raise exception.ResourceProviderGenerationConflict(
            uuid=uuid, expected=expected, current=current)
    return expected + 1


def tree_generations(session, root_id: int) -> dict[str, int]:
    rows = session.execute(sa.select(RP.uuid, RP.generation)
                           .where(RP.root_provider_id == root_id))
    return dict(rows.all())


def has_allocations(session, rp_ids) -> bool:
    rp_ids = list(rp_ids)
    if not rp_ids:
        return False
    return session.execute(
        sa.select(sa.literal(1)).where(
            models.Allocation.resource_provider_id.in_(rp_ids)).limit(1)
    ).first() is not None


def capacity(total: int, reserved: int, allocation_ratio: float) -> int:
    """Placement's formula; ``int()`` truncates toward zero as Placement does."""
    return int((total - reserved) * allocation_ratio)
