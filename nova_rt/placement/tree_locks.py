"""Row locks on the roots of provider trees: the one lock that every writer
of a tree's allocations or inventories holds until it commits.

The RPC path takes it by compare-and-swapping the root's generation
(``allocation_ops``, ``provider_ops``); the REST writers take it here with
``SELECT ... FOR UPDATE``, in root id order (two REST writers never
deadlock on it).  What a writer reads of the tree after that (inventories,
``used``, generations) stays true until it commits, on PostgreSQL and
MySQL alike; SQLite serialises writers anyway (``BEGIN IMMEDIATE``), and
SQLAlchemy leaves ``FOR UPDATE`` out there.

A provider's root can change (re-parenting, 1.37) while a writer waits for
it: the roots are read again once locked, and the new ones locked too.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm  # noqa: F401 (sa.orm.aliased)

from nova_rt.placement import common

RP = common.RP

# Direct statements (common.Direct): run on the driver's cursor, a REST
# write's handful of them cost about 55 us each less than through
# SQLAlchemy's execution.
_ROOTS = common.Direct(sa.select(RP.root_provider_id).where(
    RP.id.in_(sa.bindparam('b_ids', expanding=True))).distinct())
_LOCK = common.Direct(sa.select(RP.id).where(RP.id.in_(sa.bindparam(
    'b_ids', expanding=True))).order_by(RP.id).with_for_update(of=RP))
# The roots of the providers, locked in one statement (the subquery's
# roots are those of its snapshot: read again below, once locked).
_OF = sa.orm.aliased(RP)
_LOCK_ROOTS_OF = common.Direct(sa.select(RP.id).where(RP.id.in_(
    sa.select(_OF.root_provider_id).where(
        _OF.id.in_(sa.bindparam('b_ids', expanding=True)))))
    .order_by(RP.id).with_for_update(of=RP))


def lock(conn, rp_ids, locked: set | None = None) -> set:
    """Lock the roots of the providers ``rp_ids`` (those not in ``locked``
    already); the ids of every root locked, ``locked`` included."""
    locked = set(locked or ())
    rp_ids = sorted(set(rp_ids))
    if not rp_ids:
        return locked
    if not locked:
        # The usual case: the roots found and locked at once, then read
        # again (two round trips rather than three).
        locked.update(row.id for row in _LOCK_ROOTS_OF.rows(
            conn, {'b_ids': rp_ids}))
    while True:
        roots = {row.root_provider_id for row in _ROOTS.rows(
            conn, {'b_ids': rp_ids}) if row.root_provider_id is not None}
        missing = sorted(roots - locked)
        if not missing:
            return locked
        _LOCK.rows(conn, {'b_ids': missing})
        locked.update(missing)
