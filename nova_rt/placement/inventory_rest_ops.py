"""Inventories written through the REST API, with Placement's rules.

Every write keeps ``inventories.capacity`` (Placement's formula) and
``used`` (the sum of the allocations, which a new row has none of: an
inventory with allocations is never removed) as the RPC path does, and
compare-and-swaps the provider's generation, under the lock of its tree's
root that claims take too (``tree_locks``).  A host-owned provider's
inventory is its host's report's to write: refused (``Conflict`` naming the
host).  Usage above a lowered capacity is allowed, as in Placement: only
allocations that grow are checked.
"""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import models
from nova_rt.placement import resource_class_ops
from nova_rt.placement import tree_locks
from nova_rt.placement.rest import errors

RP = common.RP
INV = models.Inventory
FIELDS = ('total', 'reserved', 'min_unit', 'max_unit', 'step_size',
          'allocation_ratio')
DEFAULTS = {'reserved': 0, 'min_unit': 1, 'max_unit': common.MAX_INT,
            'step_size': 1, 'allocation_ratio': 1.0}


_PROVIDER = sa.select(
    RP.id, RP.uuid, RP.host, RP.generation, RP.root_provider_id).where(
        RP.uuid == sa.bindparam('b_uuid'))


def provider(conn, uuid: str, writing: bool):
    """The provider's row; ``writing``: its tree's root locked first and the
    row read again under the lock, so that no claim checks an inventory
    that this write changes before it commits (``tree_locks``)."""
    row = conn.execute(_PROVIDER, {'b_uuid': uuid}).first()
    if row is None:
        raise exception.NotFound(
            reason=f'No resource provider with uuid {uuid} found',
            code=errors.RESOURCE_PROVIDER_NOT_FOUND)
    if writing and row.host is None:
        tree_locks.lock(conn, [row.id])
        row = conn.execute(_PROVIDER, {'b_uuid': uuid}).first()
        if row is None:
            raise exception.NotFound(
                reason=f'No resource provider with uuid {uuid} found',
                code=errors.RESOURCE_PROVIDER_NOT_FOUND)
    if writing and row.host is not None:
        raise exception.Conflict(
            reason=f'Resource provider {uuid} belongs to host {row.host}, '
                   'whose own reports are the authority for its inventory: '
                   'inventory writes are refused through the REST API (set '
                   'it in the host\'s configuration).')
    return row


def rows(conn, rp_id: int) -> dict:
    return {row.resource_class: row for row in conn.execute(sa.select(
        INV.id, INV.resource_class, INV.used,
        *(getattr(INV, f) for f in FIELDS)).where(
            INV.resource_provider_id == rp_id))}


def as_dict(row) -> dict:
    return {f: getattr(row, f) for f in FIELDS}


def read_all(conn, uuid: str):
    """``(generation, {rc: fields})``."""
    rp = provider(conn, uuid, writing=False)
    return rp.generation, {rc: as_dict(r) for rc, r in
                           rows(conn, rp.id).items()}


def read_one(conn, uuid: str, rc: str):
    rp = provider(conn, uuid, writing=False)
    row = rows(conn, rp.id).get(rc)
    if row is None:
        raise exception.NotFound(
            reason=f'No inventory of class {rc} for {uuid}')
    return rp.generation, as_dict(row)


def normalise(uuid: str, rc: str, raw: dict,
              reserved_can_be_total: bool, doing: str = 'update') -> dict:
    """Placement's defaults filled in and its capacity rule checked."""
    inv = {**DEFAULTS, **raw}
    inv['allocation_ratio'] = float(inv['allocation_ratio'])
    capacity = common.capacity(inv['total'], inv['reserved'],
                               inv['allocation_ratio'])
    if capacity < 0 or (capacity == 0 and not reserved_can_be_total):
        than = 'greater than' if reserved_can_be_total else (
            'greater than or equal to')
        raise exception.InvalidInput(message=(
            f"Unable to {doing} inventory for resource provider {uuid}: "
            f"Invalid inventory for '{rc}' on resource provider '{uuid}'. "
            f"The reserved value is {than} total."))
    if capacity > common.MAX_INT:
        raise exception.InvalidInput(message=(
            f'Bad inventory {rc} for resource provider {uuid}: capacity '
            f'{capacity} is too large'))
    inv['capacity'] = capacity
    return inv


def check_classes(conn, uuid: str, classes) -> None:
    for rc in classes:
        if not resource_class_ops.exists(conn, rc):
            raise exception.InvalidInput(message=(
                'Unknown resource class in inventory for resource provider '
                f'{uuid}: No such resource class {rc}.'))


def write(conn, rp, have: dict, want: dict) -> None:
    """Make the provider's rows ``want`` (normalised); ``have``: its rows."""
    in_use = sorted(rc for rc in have if rc not in want and have[rc].used)
    if in_use:
        raise exception.InventoryInUse(
            reason=f'There are allocations of {", ".join(in_use)} on '
                   f'resource provider {rp.uuid}: their inventory cannot be '
                   'removed.')
    gone = [rc for rc in have if rc not in want]
    if gone:
        conn.execute(sa.delete(INV).where(
            INV.resource_provider_id == rp.id,
            INV.resource_class.in_(gone)))
    for rc, inv in want.items():
        if rc in have:
            conn.execute(sa.update(INV).where(INV.id == have[rc].id)
                         .values(**inv))
        else:
            conn.execute(sa.insert(INV).values(
                resource_provider_id=rp.id, root_provider_id=rp.root_provider_id,
                resource_class=rc, used=0, **inv))


def set_all(conn, uuid: str, generation: int, inventories: dict,
            reserved_can_be_total: bool):
    rp = provider(conn, uuid, writing=True)
    _check_generation(rp, generation)
    check_classes(conn, uuid, inventories)
    want = {rc: normalise(uuid, rc, raw, reserved_can_be_total)
            for rc, raw in inventories.items()}
    write(conn, rp, rows(conn, rp.id), want)
    new = common.bump_generation(conn, rp.id, uuid, rp.generation)
    return new, {rc: {f: inv[f] for f in FIELDS} for rc, inv in want.items()}


def _check_generation(rp, generation: int) -> None:
    if generation != rp.generation:
        raise exception.Conflict(
            reason='resource provider generation conflict',
            code=errors.CONCURRENT_UPDATE)


def create_one(conn, uuid: str, rc: str, raw: dict,
               reserved_can_be_total: bool):
    rp = provider(conn, uuid, writing=True)
    check_classes(conn, uuid, [rc])
    have = rows(conn, rp.id)
    if rc in have:
        raise exception.Conflict(
            reason=f'Update conflict: Inventory for {rc} on resource '
                   f'provider {uuid} already exists.',
            code=errors.CONCURRENT_UPDATE)
    inv = normalise(uuid, rc, raw, reserved_can_be_total, 'create')
    write(conn, rp, {}, {rc: inv})
    new = common.bump_generation(conn, rp.id, uuid, rp.generation)
    return new, {f: inv[f] for f in FIELDS}


def update_one(conn, uuid: str, rc: str, generation: int, raw: dict,
               reserved_can_be_total: bool):
    rp = provider(conn, uuid, writing=True)
    _check_generation(rp, generation)
    inv = normalise(uuid, rc, raw, reserved_can_be_total)
    have = rows(conn, rp.id)
    if rc not in have:
        raise exception.InvalidInput(message=(
            'No inventory record with resource class for resource provider '
            f'{uuid}: No inventory of class {rc} found.'))
    write(conn, rp, {rc: have[rc]}, {rc: inv})
    new = common.bump_generation(conn, rp.id, uuid, rp.generation)
    return new, {f: inv[f] for f in FIELDS}


def delete_one(conn, uuid: str, rc: str) -> None:
    rp = provider(conn, uuid, writing=True)
    have = rows(conn, rp.id)
    if rc not in have:
        raise exception.NotFound(
            reason=f'No inventory of class {rc} found for delete: No '
                   f'inventory of class {rc} found for resource provider '
                   f'{uuid}.')
    if have[rc].used:
        # Placement answers this one with concurrent_update, not inuse.
        raise exception.Conflict(
            reason=f'Unable to delete inventory of class {rc}: Inventory '
                   f'for {rc} on resource provider {uuid} in use.',
            code=errors.CONCURRENT_UPDATE)
    write(conn, rp, {rc: have[rc]}, {})
    common.bump_generation(conn, rp.id, uuid, rp.generation)


def delete_all(conn, uuid: str) -> None:
    rp = provider(conn, uuid, writing=True)
    write(conn, rp, rows(conn, rp.id), {})
    common.bump_generation(conn, rp.id, uuid, rp.generation)
