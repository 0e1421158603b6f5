"""Usages as the REST API reports them: a provider's (every class it has
inventory of, zeros included) and a project's (optionally a user's),
totalled per resource class, and from microversion 1.38 grouped by
consumer type with the number of consumers; and ``used``, which every
allocation write (RPC reports and REST) sets in the transaction that
writes."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from nova_rt.placement import common
from nova_rt.placement import models

ALLOC = models.Allocation
CONSUMER = models.Consumer
INV = models.Inventory

#: At most this many inventories' ``used`` per statement (a statement is
#: built once per count, so the counts are bounded): a Nova claim has 3.
USED_PER_STATEMENT = 8


@functools.lru_cache(maxsize=USED_PER_STATEMENT)
def _set_used(n: int) -> common.Direct:
    """``used`` of ``n`` inventories in one statement (``b_id0``,
    ``b_used0`` ...) rather than a round trip per class.  Built once per
    ``n``."""
    ids = [sa.bindparam(f'b_id{i}', type_=sa.Integer) for i in range(n)]
    return common.Direct(sa.update(INV).where(INV.id.in_(ids)).values(
        used=sa.case(*((INV.id == ids[i],
                        sa.bindparam(f'b_used{i}', type_=sa.Integer))
                       for i in range(n)), else_=INV.used)))


def set_used(conn, changes: list) -> None:
    """``changes``: ``[(inventory id, used)]``, a statement per
    ``USED_PER_STATEMENT`` of them."""
    for start in range(0, len(changes), USED_PER_STATEMENT):
        part = changes[start:start + USED_PER_STATEMENT]
        params = {}
        for i, (inv_id, used) in enumerate(part):
            params[f'b_id{i}'], params[f'b_used{i}'] = inv_id, used
        _set_used(len(part)).run(conn, params)


def of_provider(conn, rp_id: int) -> dict:
    # inventories.used is the sum of the provider's allocations, kept by
    # every write in the transaction that writes.
    return dict(conn.execute(sa.select(INV.resource_class, INV.used).where(
        INV.resource_provider_id == rp_id)).all())


def _filtered(stmt, project_id: str, user_id: str | None):
    stmt = stmt.join(CONSUMER, CONSUMER.id == ALLOC.consumer_id).where(
        CONSUMER.project_id == project_id)
    if user_id is not None:
        stmt = stmt.where(CONSUMER.user_id == user_id)
    return stmt


def of_project(conn, project_id: str, user_id: str | None = None) -> dict:
    stmt = _filtered(sa.select(ALLOC.resource_class, sa.func.sum(ALLOC.used)),
                     project_id, user_id).group_by(ALLOC.resource_class)
    return {rc: int(n) for rc, n in conn.execute(stmt)}


def by_consumer_type(conn, project_id: str, user_id: str | None = None,
                     consumer_type: str | None = None) -> dict:
    """``{type: {rc: n, 'consumer_count': n}}``; ``all`` sums every type,
    ``unknown`` is a consumer written without one."""
    kind = sa.func.coalesce(CONSUMER.consumer_type, 'unknown')
    group = sa.literal('all') if consumer_type == 'all' else kind
    stmt = _filtered(sa.select(group.label('kind'), ALLOC.resource_class,
                               sa.func.sum(ALLOC.used),
                               sa.func.count(sa.distinct(ALLOC.consumer_id))),
                     project_id, user_id)
    if consumer_type not in (None, 'all'):
        stmt = stmt.where(kind == consumer_type)
    stmt = stmt.group_by(group, ALLOC.resource_class)
    result: dict = {}
    for kind_, rc, used, _count in conn.execute(stmt):
        result.setdefault(kind_, {})[rc] = int(used)
    counts = _filtered(sa.select(group.label('kind'), sa.func.count(
        sa.distinct(ALLOC.consumer_id))), project_id, user_id)
    if consumer_type not in (None, 'all'):
        counts = counts.where(kind == consumer_type)
    for kind_, count in conn.execute(counts.group_by(group)):
        result.setdefault(kind_, {})['consumer_count'] = int(count)
    return result
