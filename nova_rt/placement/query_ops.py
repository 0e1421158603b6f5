"""Reads: providers, usages, allocations and allocation candidates.

Allocation candidates are one SQL statement whatever the number of
providers: the root providers joined once per requested resource class with
their inventory (whose ``capacity`` and ``used`` are kept current by every
write), filtered by liveness, traits and aggregates, ordered and limited in
the database.

A request is satisfied within one tree, as Placement's unnumbered request
group: each class from any provider of the tree that has room for it (the
compute node's VCPU, PCPU, MEMORY_MB, DISK_GB from the root, a PCI device's
class from its child provider).  A tree where a class fits on several
providers (two PFs with free VFs of the same class) is one candidate per
combination, as in Placement.  Required and forbidden traits and
``member_of`` are judged on the root.

Order: ``spread`` puts the emptiest host first, ``pack`` the fullest that still
fits; "empty" is the sum over the requested classes of free / capacity, ties
broken by provider age (oldest first) so that the order is stable.
"""

from __future__ import annotations

import datetime
import functools
import operator

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import models

RP = common.RP
INV = models.Inventory
ALLOC = models.Allocation
CONSUMER = models.Consumer
PT = models.ProviderTrait
PA = models.ProviderAggregate
_NO_NESTLOOP = common.Direct(sa.text('SET LOCAL enable_nestloop = off'))


def _cutoff(now, heartbeat_timeout: int):
    return now - datetime.timedelta(seconds=heartbeat_timeout)


def _iso(value):
    return value.replace(tzinfo=datetime.UTC).isoformat() if value else None


def _has_all_traits(rp_id_col, names):
    """``names``: distinct trait names, or bind parameters that will be."""
    # One semi-join per trait, by the trait's id: over thousands of providers
    # cheaper than grouping every provider's traits and counting them.
    return sa.and_(*(rp_id_col.in_(
        sa.select(PT.resource_provider_id).where(
            PT.trait_id == sa.select(models.Trait.id)
            .where(models.Trait.name == name).scalar_subquery()))
        for name in names))


def has_any_trait(rp_id_col, names):
    """The provider has one of the traits ``names`` (REST filters too)."""
    return sa.exists().where(PT.resource_provider_id == rp_id_col,
                             PT.trait_id == models.Trait.id,
                             models.Trait.name.in_(names))


def in_any_aggregate(rp_id_col, aggregates):
    """The provider is in one of the aggregates (uuids; REST filters too)."""
    return sa.exists().where(PA.resource_provider_id == rp_id_col,
                             PA.aggregate_id == models.Aggregate.id,
                             models.Aggregate.uuid.in_(aggregates))


def _fits(rp_id_col, rc, n):
    return sa.exists().where(INV.resource_provider_id == rp_id_col,
                             INV.resource_class == rc,
                             INV.capacity - INV.used >= n)


def _provider_dict(row, cutoff) -> dict:
    return {'uuid': row.uuid, 'name': row.name, 'host': row.host,
            'generation': row.generation, 'parent_uuid': row.parent_uuid,
            'root_uuid': row.root_uuid,
            'alive': bool(row.last_heartbeat and row.last_heartbeat > cutoff),
            'last_heartbeat': _iso(row.last_heartbeat)}


def _provider_select():
    parent, root = aliased(RP), aliased(RP)
    return sa.select(
        RP.id, RP.uuid, RP.name, RP.host, RP.generation,
        parent.uuid.label('parent_uuid'), root.uuid.label('root_uuid'),
        root.last_heartbeat).outerjoin(
            parent, parent.id == RP.parent_provider_id).outerjoin(
            root, root.id == RP.root_provider_id)


def list_resource_providers(session, heartbeat_timeout: int, name=None,
                            host=None, in_tree=None, member_of=None,
                            required=None, resources=None, now=None) -> list:
    now = now or common.utcnow()
    common.check_traits(required, 'required')
    stmt = _provider_select()
    if name is not None:
        stmt = stmt.where(RP.name == name)
    if host is not None:
        stmt = stmt.where(RP.host == host)
    if in_tree is not None:
        stmt = stmt.where(RP.root_provider_id == sa.select(
            RP.root_provider_id).where(RP.uuid == in_tree).scalar_subquery())
    if member_of:
        stmt = stmt.where(in_any_aggregate(RP.id, member_of))
    if required:
        stmt = stmt.where(_has_all_traits(RP.id, sorted(set(required))))
    for rc, n in sorted((resources or {}).items()):
        stmt = stmt.where(_fits(RP.id, rc, n))
    cutoff = _cutoff(now, heartbeat_timeout)
    return [_provider_dict(row, cutoff)
            for row in session.execute(stmt.order_by(RP.id))]


def get_resource_provider(session, uuid: str, heartbeat_timeout: int,
                          now=None) -> dict:
    now = now or common.utcnow()
    row = session.execute(_provider_select().where(RP.uuid == uuid)).first()
    if row is None:
        raise exception.ResourceProviderNotFound(uuid=uuid)
    result = _provider_dict(row, _cutoff(now, heartbeat_timeout))
    invs = session.execute(sa.select(
        INV.resource_class, INV.total, INV.reserved, INV.min_unit,
        INV.max_unit, INV.step_size, INV.allocation_ratio, INV.capacity,
        INV.used).where(INV.resource_provider_id == row.id)).all()
    result['inventories'] = {
        i.resource_class: {'total': i.total, 'reserved': i.reserved,
                           'min_unit': i.min_unit, 'max_unit': i.max_unit,
                           'step_size': i.step_size,
                           'allocation_ratio': i.allocation_ratio,
                           'capacity': i.capacity} for i in invs}
    result['usages'] = {i.resource_class: i.used for i in invs}
    result['traits'] = sorted(session.execute(
        sa.select(models.Trait.name).join(PT)
        .where(PT.resource_provider_id == row.id)).scalars())
    result['aggregates'] = sorted(session.execute(
        sa.select(models.Aggregate.uuid).join(PA)
        .where(PA.resource_provider_id == row.id)).scalars())
    return result


def get_usages(session, uuid=None, project_id=None) -> dict:
    """``{rc: used}`` of a provider (every class it has inventory of, zeros
    included, as Placement) or of a project's consumers; both: the project's
    usage on that provider."""
    if uuid is None and project_id is None:
        raise exception.InvalidInput(reason='get_usages needs uuid or '
                                            'project_id')
    if uuid is not None and project_id is None:
        rp = common.get_provider(session, uuid)
        return dict(session.execute(sa.select(INV.resource_class, INV.used)
                                    .where(INV.resource_provider_id == rp.id)).all())
    stmt = (sa.select(ALLOC.resource_class, sa.func.sum(ALLOC.used))
            .join(CONSUMER, CONSUMER.id == ALLOC.consumer_id)
            .where(CONSUMER.project_id == project_id)
            .group_by(ALLOC.resource_class))
    if uuid is not None:
        rp = common.get_provider(session, uuid)
        stmt = stmt.where(ALLOC.resource_provider_id == rp.id)
    return {rc: int(n) for rc, n in session.execute(stmt)}


def get_allocations(session, consumer_uuid: str) -> dict:
    result: dict = {}
    for rp_uuid, rc, n in session.execute(
            sa.select(RP.uuid, ALLOC.resource_class, ALLOC.used)
            .join(RP, RP.id == ALLOC.resource_provider_id)
            .join(CONSUMER, CONSUMER.id == ALLOC.consumer_id)
            .where(CONSUMER.uuid == consumer_uuid)):
        result.setdefault(rp_uuid, {})[rc] = n
    return result


@functools.lru_cache(maxsize=256)
def _candidates_query(classes: tuple, n_required: int, forbidden: bool,
                      member_of: bool, order: str,
                      limited: bool) -> common.Direct:
    """The candidates statement for one shape of request, built and compiled
    once (building it took milliseconds per call); the amounts, traits,
    aggregates, cut-off and limit are its parameters."""
    # Core aliases of the table: ORM ``aliased()`` cost milliseconds per call
    # just to build the statement.
    inv_table, rp = INV.__table__, RP.__table__
    invs = [inv_table.alias(f'inv{i}') for i in range(len(classes))]
    frees = [inv.c.capacity - inv.c.used for inv in invs]
    # Each class from any provider of the tree (inventories carry their
    # root): the compute node's own classes come from the root, a PCI
    # device's from its child provider, whose id is given (NULL: the root).
    stmt = sa.select(rp.c.uuid, rp.c.host, *frees, *(
        sa.func.nullif(inv.c.resource_provider_id, rp.c.id) for inv in invs))
    for i, (rc, inv, free) in enumerate(zip(classes, invs, frees)):
        n = sa.bindparam(f'n{i}', type_=sa.Integer)
        stmt = stmt.join(inv, sa.and_(
            inv.c.root_provider_id == rp.c.id, inv.c.resource_class == rc,
            free >= n, inv.c.min_unit <= n, inv.c.max_unit >= n,
            n % inv.c.step_size == 0))
    stmt = stmt.where(rp.c.parent_provider_id.is_(None),
                      rp.c.last_heartbeat > sa.bindparam('cutoff'))
    if n_required:
        stmt = stmt.where(_has_all_traits(rp.c.id, [
            sa.bindparam(f'required{i}') for i in range(n_required)]))
    if forbidden:
        stmt = stmt.where(~has_any_trait(
            rp.c.id, sa.bindparam('forbidden', expanding=True)))
    if member_of:
        stmt = stmt.where(in_any_aggregate(
            rp.c.id, sa.bindparam('member_of', expanding=True)))
    # Both sides double precision: a float divided by an integer is done in
    # NUMERIC by PostgreSQL, several times slower over thousands of rows.
    emptiness = sum(
        (sa.cast(free, sa.Double)
         / sa.func.nullif(sa.cast(inv.c.capacity, sa.Double), 0.0,
                          type_=sa.Double) for inv, free in zip(invs, frees)),
        sa.literal(0.0, sa.Double))
    # Ties go to the oldest provider, then to the lowest child providers: an
    # integer compare, where the uuid (a collated string) made the sort
    # several times slower.
    stmt = stmt.order_by(emptiness.desc() if order == 'spread'
                         else emptiness.asc(), rp.c.id,
                         *(inv.c.resource_provider_id for inv in invs))
    if limited:
        stmt = stmt.limit(sa.bindparam('limit', type_=sa.Integer))
    # Planned at each execution: the plan depends on how many providers the
    # amounts let through, which a generic plan does not know.
    return common.Direct(stmt, plan_each_time=True, plain_rows=True)


def _free_of(classes: tuple):
    """``row -> {class: free}`` for a candidates row (the free amounts
    follow the uuid and host).  A dict display for the usual few classes:
    ``dict(zip(classes, row[2:]))`` was half the cost of building 10,000
    candidates."""
    k = classes
    if len(k) == 1:
        return lambda row: {k[0]: row[2]}
    if len(k) == 2:
        return lambda row: {k[0]: row[2], k[1]: row[3]}
    if len(k) == 3:
        return lambda row: {k[0]: row[2], k[1]: row[3], k[2]: row[4]}
    if len(k) == 4:
        return lambda row: {k[0]: row[2], k[1]: row[3], k[2]: row[4],
                            k[3]: row[5]}
    return lambda row: dict(zip(k, row[2:2 + len(k)]))


_CHILD_UUIDS = common.Direct(
    sa.select(RP.id, RP.uuid).where(
        RP.id.in_(sa.bindparam('ids', expanding=True))), plain_rows=True)


def get_allocation_candidates(session, resources: dict, heartbeat_timeout: int,
                              order: str = 'spread', required=(), forbidden=(),
                              member_of=(), limit=None, now=None) -> list:
    now = now or common.utcnow()
    common.check_traits(required, 'required')
    common.check_traits(forbidden, 'forbidden')
    if set(required or ()) & set(forbidden or ()):
        raise exception.InvalidInput(
            reason='a trait cannot be both required and forbidden')
    classes = tuple(sorted(resources))
    required = sorted(set(required or ()))
    query = _candidates_query(classes, len(required), bool(forbidden),
                              bool(member_of), order, bool(limit))
    params = {f'n{i}': resources[rc] for i, rc in enumerate(classes)}
    params.update({f'required{i}': name for i, name in enumerate(required)})
    params.update(cutoff=_cutoff(now, heartbeat_timeout),
                  forbidden=list(forbidden or ()),
                  member_of=list(member_of or ()), limit=limit)
    if common.dialect_name(session) == 'postgresql':
        # The planner under-estimates how many providers pass the combined
        # capacity filters and picks nested loops; over thousands of providers
        # hash joins are twice as fast (bench/bench_placement.py).  LOCAL:
        # this transaction only.
        _NO_NESTLOOP.run(session, {})
    rows = query.rows(session, params)
    if not rows:
        return []
    width = len(classes)
    # Which child providers appear, if any, a column at a time (C loops).
    children = set()
    for column in range(2 + width, 2 + 2 * width):
        children.update(map(operator.itemgetter(column), rows))
    children.discard(None)
    if not children:
        # One dict per candidate: with 10,000 candidates anything more per
        # row was most of the call.
        free = _free_of(classes)
        return [{'root_uuid': row[0], 'host': row[1],
                 'allocation': {row[0]: resources.copy()}, 'free': free(row)}
                for row in rows]
    uuids = dict(_CHILD_UUIDS.rows(session, {'ids': sorted(children)}))
    free = _free_of(classes)
    candidates = []
    for row in rows:
        root_uuid, host = row[:2]
        allocation: dict = {}
        for rc, rp_id in zip(classes, row[2 + width:]):
            holder = root_uuid if rp_id is None else uuids[rp_id]
            allocation.setdefault(holder, {})[rc] = resources[rc]
        candidates.append({'root_uuid': root_uuid, 'host': host,
                           'allocation': allocation,
                           'free': free(row)})
    return candidates
