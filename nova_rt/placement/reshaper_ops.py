"""``POST /reshaper`` (1.30): inventories and allocations moved in one
transaction, as when a host's VCPU moves from its root to NUMA children.

The new inventories are written first without removing any class, then
the allocations are replaced (``consumer_ops.replace``, with its capacity
and generation rules), and only then are the classes no longer wanted
removed: one in use then is still ``InventoryInUse``.  Every provider named
gets a new generation.  Host-owned providers are their host's to reshape
(its report does it): refused as for any REST inventory write.
"""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import consumer_ops
from nova_rt.placement import inventory_rest_ops as inventory
from nova_rt.placement.rest import errors


def reshape(conn, inventories: dict, allocations: dict,
            reserved_can_be_total: bool = True) -> None:
    """``inventories``: ``{rp_uuid: (generation, {rc: fields})}``;
    ``allocations``: as ``consumer_ops.replace`` takes them."""
    plans = []
    for uuid, (generation, raw) in sorted(inventories.items()):
        try:
            rp = inventory.provider(conn, uuid, writing=True)
        except exception.NotFound:
            raise exception.InvalidInput(
                message=f'Resource provider {uuid} in inventories not found',
                code=errors.RESOURCE_PROVIDER_NOT_FOUND) from None
        if generation != rp.generation:
            raise exception.Conflict(
                reason=f'resource provider generation conflict for provider '
                       f'{uuid}: actual: {rp.generation}, given: '
                       f'{generation}', code=errors.CONCURRENT_UPDATE)
        inventory.check_classes(conn, uuid, raw)
        want = {rc: inventory.normalise(uuid, rc, fields,
                                        reserved_can_be_total)
                for rc, fields in raw.items()}
        have = inventory.rows(conn, rp.id)
        # Added and changed classes now; removed ones after the move.
        inventory.write(conn, rp, {rc: have[rc] for rc in want
                                    if rc in have}, want)
        if want:
            # Placement's interim inventory write is a generation too.
            common.bump_generation(conn, rp.id, uuid, rp.generation)
        plans.append((rp, want))
    if allocations:
        try:
            consumer_ops.replace(conn, allocations, bump_left=True)
        except exception.InvalidAllocation as error:
            # Placement's reshaper answers a unit violation with 409.
            raise exception.Conflict(reason=str(error)) from None
    for rp, want in plans:
        inventory.write(conn, rp, inventory.rows(conn, rp.id), want)
        # Read under the tree's lock (``inventory.provider``), which every
        # writer of the provider's inventories and allocations holds.
        current = conn.execute(sa.select(common.RP.generation).where(
            common.RP.id == rp.id)).scalar()
        common.bump_generation(conn, rp.id, rp.uuid, current)
