"""The SQL of the allocation candidates engine (``candidates``).

Each statement is built and compiled once per dialect and shape of request
(how many groups, classes, trait and aggregate filters: the names, amounts
and ids are parameters), and run on the driver's own cursor: psycopg and
PyMySQL through ``common.Direct``, SQLite here (SQLAlchemy's result objects
cost as much as the database's own work for thousands of rows).  A list
parameter is one value whatever its length: a JSON array read with
``json_each`` on SQLite, an array read with ``unnest`` on PostgreSQL (a
set it hashes), a list on MySQL.

- ``fits_query``: for each group and each of its classes, the providers with
  room for the amount on live roots, with the group's own filters; one
  UNION ALL, rows ``(group, class, provider, root)``.
- ``single_group_query``: a request that is only the unnumbered group, as
  one row per combination (the root joined once per class, as the RPC
  path's statement), with the group's trait and aggregate rules exact,
  ordered and limited in the database.
- ``tree_queries``: every provider of the trees found, with its
  inventories, and their traits (the summaries, and what combining groups
  needs).

Liveness: a root with a host (reported by nova-rt-compute) counts while its
``last_heartbeat`` is after the cut-off; one without (created through the
REST API) always.
"""

from __future__ import annotations

import functools
import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from nova_rt.placement import common
from nova_rt.placement import models

RP = models.ResourceProvider.__table__
INV = models.Inventory.__table__
PT = models.ProviderTrait.__table__
PA = models.ProviderAggregate.__table__
TRAIT = models.Trait.__table__

_NO_NESTLOOP = common.Direct(sa.text('SET LOCAL enable_nestloop = off'))


class Query:
    """A statement compiled once; ``rows()`` gives plain tuples."""

    def __init__(self, stmt):
        self.stmt = stmt
        self.direct = common.Direct(stmt, plan_each_time=True,
                                    plain_rows=True)
        self._sqlite = None

    def rows(self, conn, params: dict) -> list:
        if common.dialect_name(conn) != 'sqlite':
            return self.direct.rows(conn, params)
        if self._sqlite is None:
            compiled = self.stmt.compile(dialect=conn.dialect)
            sql = str(compiled)
            if '__[POSTCOMPILE' in sql:
                raise TypeError(f'cannot run {sql!r} on the cursor')
            defaults = {k: v for k, v in compiled.params.items()
                        if v is not None}
            self._sqlite = (sql, compiled.positiontup, defaults)
        sql, order, defaults = self._sqlite
        values = {**defaults, **params}
        args = [values[name] for name in order]
        cursor = conn.connection.dbapi_connection.cursor()
        with common.driver_errors(conn, sql, args):
            try:
                return cursor.execute(sql, args).fetchall()
            finally:
                cursor.close()


def list_param(dialect: str, values) -> object:
    values = sorted(values)
    return json.dumps(values) if dialect == 'sqlite' else values


def time_param(dialect: str, value):
    # As SQLAlchemy stores a DateTime in SQLite: text that sorts as time.
    return (value.strftime('%Y-%m-%d %H:%M:%S.%f') if dialect == 'sqlite'
            else value)


def _in_list(dialect: str, column, name: str):
    if dialect == 'sqlite':
        each = sa.func.json_each(sa.bindparam(name)).table_valued('value')
        return column.in_(sa.select(each.c.value))
    if dialect == 'postgresql':
        # A set the planner can hash: ``= ANY(array)`` compared each row
        # with every element, and 10,000 roots took seconds.
        return column.in_(sa.select(sa.func.unnest(sa.cast(
            sa.bindparam(name), postgresql.ARRAY(sa.Integer)))))
    return column.in_(sa.bindparam(name, expanding=True))


def _has_trait(dialect, rp_col, param: str):
    return sa.exists().where(PT.c.resource_provider_id == rp_col,
                             _in_list(dialect, PT.c.trait_id, param))


def _in_aggregate(dialect, rp_col, param: str):
    return sa.exists().where(PA.c.resource_provider_id == rp_col,
                             _in_list(dialect, PA.c.aggregate_id, param))


def _tree_has_trait(dialect, root_col, param: str):
    member = RP.alias('member')
    return sa.exists().where(member.c.root_provider_id == root_col,
                             PT.c.resource_provider_id == member.c.id,
                             _in_list(dialect, PT.c.trait_id, param))


def _live(root):
    return sa.or_(root.c.host.is_(None),
                  root.c.last_heartbeat > sa.bindparam('cutoff'))


def _root_filters(dialect, root, n_root_required: int,
                  root_forbidden: bool) -> list:
    where = [root.c.id.in_(sa.select(PT.c.resource_provider_id).where(
        PT.c.trait_id == sa.bindparam(f'root_req{k}', type_=sa.Integer)))
        for k in range(n_root_required)]
    if root_forbidden:
        where.append(~_has_trait(dialect, root.c.id, 'root_forbidden'))
    return where


def _room(inv, gi: int, ci: int) -> list:
    n = sa.bindparam(f'g{gi}_n{ci}', type_=sa.Integer)
    return [inv.c.resource_class == sa.bindparam(f'g{gi}_rc{ci}'),
            inv.c.capacity - inv.c.used >= n, inv.c.min_unit <= n,
            inv.c.max_unit >= n, n % inv.c.step_size == 0]


def _group_filters(dialect, gi: int, shape: tuple, rp_col, root_col) -> list:
    """A provider's filters in one group (``shape``: ``candidates._Group``'s)."""
    numbered, _, in_tree, n_req, forbidden, n_mem, forbidden_aggs = shape
    where = []
    p = f'g{gi}_'
    if in_tree:
        where.append(root_col == sa.bindparam(p + 'tree', type_=sa.Integer))
    if forbidden:
        # Unnumbered too: a provider with a forbidden trait gives nothing.
        where.append(~_has_trait(dialect, rp_col, p + 'forbidden'))
    for k in range(n_req):
        # The unnumbered group's are the tree's (judged exactly later).
        where.append(_has_trait(dialect, rp_col, f'{p}req{k}') if numbered
                     else _tree_has_trait(dialect, root_col, f'{p}req{k}'))
    if n_mem:
        mine = sa.and_(*(_in_aggregate(dialect, rp_col, f'{p}mem{k}')
                         for k in range(n_mem)))
        # An aggregate of the root spans its tree (unnumbered group).
        where.append(mine if numbered else sa.or_(mine, sa.and_(*(
            _in_aggregate(dialect, root_col, f'{p}mem{k}')
            for k in range(n_mem)))))
    if forbidden_aggs:
        where.append(~_in_aggregate(dialect, rp_col, p + 'nagg'))
        if not numbered:
            where.append(~_in_aggregate(dialect, root_col, p + 'nagg'))
    return where


@functools.lru_cache(maxsize=256)
def fits_query(dialect: str, shapes: tuple, n_root_required: int,
               root_forbidden: bool) -> Query:
    """``(group index, class index, provider id, root id, capacity, used,
    max_unit)`` of every provider with room for one class of one group
    (class index -1 and no inventory: a group without resources, any
    provider that passes its filters)."""
    selects = []
    for gi, shape in enumerate(shapes):
        n_classes = shape[1]
        for ci in range(max(n_classes, 1)):
            root = RP.alias(f'root{gi}_{ci}')
            if n_classes:
                inv = INV.alias(f'inv{gi}_{ci}')
                rp_col = inv.c.resource_provider_id
                root_col = inv.c.root_provider_id
                stmt = sa.select(
                    sa.literal_column(str(gi)), sa.literal_column(str(ci)),
                    rp_col, root_col, inv.c.capacity, inv.c.used,
                    inv.c.max_unit).select_from(inv.join(
                        root, root.c.id == root_col)).where(
                    *_room(inv, gi, ci))
            else:
                rp = RP.alias(f'rp{gi}')
                rp_col, root_col = rp.c.id, rp.c.root_provider_id
                nothing = sa.cast(sa.null(), sa.Integer)
                stmt = sa.select(
                    sa.literal_column(str(gi)), sa.literal_column('-1'),
                    rp_col, root_col, nothing, nothing, nothing
                ).select_from(rp.join(root, root.c.id == root_col))
            stmt = stmt.where(
                _live(root), *_group_filters(dialect, gi, shape, rp_col,
                                             root_col),
                *_root_filters(dialect, root, n_root_required,
                               root_forbidden))
            selects.append(stmt)
    return Query(selects[0] if len(selects) == 1 else sa.union_all(*selects))


@functools.lru_cache(maxsize=256)
def single_group_query(dialect: str, shape: tuple, n_root_required: int,
                       root_forbidden: bool, order: str, limited: bool,
                       one_provider: bool) -> Query:
    """The unnumbered group alone: ``(root id, provider id per class...)``,
    one row per combination, best first.  Its rules are exact here: the
    required traits on the providers that give resources, together; a
    forbidden trait on none of them; ``member_of`` on each or on the root,
    a forbidden aggregate on none of them nor the root.  ``one_provider``:
    all classes from one provider (before microversion 1.29)."""
    _, n_classes, in_tree, n_req, forbidden, n_mem, forbidden_aggs = shape
    root = RP.alias('root')
    invs = [INV.alias(f'inv{ci}') for ci in range(n_classes)]
    rps = [inv.c.resource_provider_id for inv in invs]
    stmt = sa.select(root.c.id, *rps).select_from(root)
    for ci, inv in enumerate(invs):
        stmt = stmt.join(inv, sa.and_(inv.c.root_provider_id == root.c.id,
                                      *_room(inv, 0, ci)))
    where = [root.c.parent_provider_id.is_(None), _live(root),
             *_root_filters(dialect, root, n_root_required, root_forbidden)]
    if in_tree:
        where.append(root.c.id == sa.bindparam('g0_tree', type_=sa.Integer))
    if one_provider:
        where.extend(rp == rps[0] for rp in rps[1:])
    for rp in rps:
        if forbidden:
            where.append(~_has_trait(dialect, rp, 'g0_forbidden'))
        if n_mem:
            where.append(sa.or_(*(sa.and_(*(
                _in_aggregate(dialect, holder, f'g0_mem{k}')
                for k in range(n_mem))) for holder in (rp, root.c.id))))
        if forbidden_aggs:
            where.append(~_in_aggregate(dialect, rp, 'g0_nagg'))
    if forbidden_aggs:
        where.append(~_in_aggregate(dialect, root.c.id, 'g0_nagg'))
    for k in range(n_req):
        where.append(sa.or_(*(_has_trait(dialect, rp, f'g0_req{k}')
                              for rp in rps)))
    stmt = stmt.where(*where)
    # Both sides double precision (PostgreSQL divides a float by an
    # integer in NUMERIC, several times slower).
    emptiness = sum(
        (sa.cast(inv.c.capacity - inv.c.used, sa.Double)
         / sa.func.nullif(sa.cast(inv.c.capacity, sa.Double), 0.0,
                          type_=sa.Double) for inv in invs),
        sa.literal(0.0, sa.Double))
    stmt = stmt.order_by(emptiness.desc() if order == 'spread'
                         else emptiness.asc(), root.c.id, *rps)
    if limited:
        stmt = stmt.limit(sa.bindparam('limit', type_=sa.Integer))
    return Query(stmt)


def prefer_hash_joins(conn) -> None:
    """PostgreSQL under-estimates how many providers pass the capacity
    filters together and picks nested loops; over thousands of providers
    hash joins are twice as fast (as the RPC path's statement).  This
    transaction only."""
    if common.dialect_name(conn) == 'postgresql':
        _NO_NESTLOOP.run(conn, {})


PROVIDER, INVENTORY, TRAIT_ROW = 0, 1, 2


def tagged_tree_rows(dialect: str) -> bool:
    """Whether ``tree_queries`` is one statement of tagged rows."""
    return dialect == 'postgresql'


def _trait_ids(dialect: str):
    """The trait ids of a provider as one text, comma separated."""
    as_text = sa.cast(PT.c.trait_id, sa.String)
    if dialect == 'postgresql':
        return sa.func.string_agg(as_text, postgresql.aggregate_order_by(
            sa.literal_column("','"), PT.c.trait_id), type_=sa.String)
    # SQLite and MySQL: ',' by default; MySQL cuts it at
    # group_concat_max_len (``long_concat``).
    return sa.func.group_concat(as_text, type_=sa.String)


def long_concat(conn) -> None:
    """MySQL cuts GROUP_CONCAT at 1,024 bytes by default (some 200 trait
    ids); this session's limit is raised once, to far more than any
    provider has."""
    if common.dialect_name(conn) != 'mysql':
        return
    info = conn.connection.info
    if not info.get('nova_rt_long_concat'):
        conn.exec_driver_sql('SET SESSION group_concat_max_len = 1048576')
        info['nova_rt_long_concat'] = True


@functools.lru_cache(maxsize=16)
def tree_queries(dialect: str, inventories: bool, traits: bool) -> tuple:
    """Of the trees given (``roots``): every provider ``(PROVIDER, id,
    uuid, parent id, root id)``, every inventory ``(INVENTORY, provider id,
    class, capacity, used)`` and the traits of each provider that has some
    ``(TRAIT_ROW, provider id, "id,id,...", None, None)``: one row per
    provider, not per trait (a compute node has dozens; identical hosts
    give the same text, resolved to names once per answer).

    PostgreSQL: one statement (UNION ALL), one round trip instead of three
    (1,000 compute nodes: 7.4 -> 6.4 ms).  SQLite and MySQL: three, without
    the tag and padding, which cost them more than the statements (SQLite
    4.1 -> 5.0 ms, PyMySQL converting every value in Python).  A joined
    statement repeated each provider's columns on each of its inventories
    and took longer everywhere."""
    nothing = sa.cast(sa.null(), sa.Integer)
    tagged = tagged_tree_rows(dialect)

    def select(tag, *columns):
        if tagged:
            columns += (nothing,) * (4 - len(columns))
            return sa.select(sa.literal_column(str(tag)), *columns)
        return sa.select(*columns)

    selects = [select(
        PROVIDER, RP.c.id, RP.c.uuid, RP.c.parent_provider_id,
        RP.c.root_provider_id
    ).where(_in_list(dialect, RP.c.root_provider_id, 'roots'))]
    if inventories:
        selects.append(select(
            INVENTORY, INV.c.resource_provider_id, INV.c.resource_class,
            INV.c.capacity, INV.c.used
        ).where(_in_list(dialect, INV.c.root_provider_id, 'roots')))
    if traits:
        member = RP.alias('member')
        selects.append(select(
            TRAIT_ROW, PT.c.resource_provider_id, _trait_ids(dialect)
        ).select_from(PT.join(
            member, member.c.id == PT.c.resource_provider_id)).where(
            _in_list(dialect, member.c.root_provider_id, 'roots')).group_by(
            PT.c.resource_provider_id))
    if tagged:
        return (Query(sa.union_all(*selects)),)
    return tuple(Query(stmt) for stmt in selects)
