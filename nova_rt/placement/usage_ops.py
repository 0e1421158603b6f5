"""Usages as the REST API reports them: a provider's (every class it has
inventory of, zeros included) and a project's (optionally a user's),
totalled per resource class, and from microversion 1.38 grouped by
consumer type with the number of consumers."""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt.placement import models

ALLOC = models.Allocation
CONSUMER = models.Consumer
INV = models.Inventory


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
