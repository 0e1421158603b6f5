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

from nova_rt.placement import common

RP = common.RP

_ROOTS = sa.select(RP.root_provider_id).where(
    RP.id.in_(sa.bindparam('b_ids', expanding=True))).distinct()
_LOCK = sa.select(RP.id).where(RP.id.in_(sa.bindparam(
    'b_ids', expanding=True))).order_by(RP.id).with_for_update()


def lock(conn, rp_ids, locked: set | None = None) -> set:
    """Lock the roots of the providers ``rp_ids`` (those not in ``locked``
    already); the ids of every root locked, ``locked`` included."""
    locked = set(locked or ())
    rp_ids = sorted(set(rp_ids))
    while rp_ids:
        roots = {r for r in conn.execute(_ROOTS, {'b_ids': rp_ids}).scalars()
                 if r is not None}
        missing = sorted(roots - locked)
        if not missing:
            return locked
        conn.execute(_LOCK, {'b_ids': missing}).all()
        locked.update(missing)
    return locked
