"""Resource classes as the REST API sees them (``/resource_classes``).

The standard classes are os-resource-classes', never stored; a custom one
(``CUSTOM_*``) exists once created through the API (``resource_classes``)
or once a host reported an inventory of it (the RPC path writes class
names as they come), so that every class an inventory holds is listed.
"""

from __future__ import annotations

import functools

import os_resource_classes
import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import models
from nova_rt.placement import tree_locks

RC = models.ResourceClass
RP = models.ResourceProvider
INV = models.Inventory
ALLOC = models.Allocation


@functools.cache
def standard() -> tuple:
    return tuple(os_resource_classes.STANDARDS)


def _custom(conn) -> list:
    created = list(conn.execute(sa.select(RC.name).order_by(RC.id)).scalars())
    reported = conn.execute(sa.select(INV.resource_class).where(
        INV.resource_class.like('CUSTOM\\_%', escape='\\')).distinct())
    return created + sorted(set(reported.scalars()) - set(created))


def list_classes(conn) -> list:
    return list(standard()) + _custom(conn)


def exists(conn, name: str) -> bool:
    if name in standard():
        return True
    return conn.execute(sa.select(RC.id).where(RC.name == name)).first() \
        is not None or _in_use(conn, name)


def _in_use(conn, name: str) -> bool:
    return conn.execute(sa.select(INV.id).where(
        INV.resource_class == name).limit(1)).first() is not None


def _not_found(name: str):
    return exception.NotFound(reason=f'No such resource class {name}.')


def get(conn, name: str) -> str:
    if not exists(conn, name):
        raise _not_found(name)
    return name


def create(conn, name: str, code: str) -> None:
    """``code``: Placement's code for the duplicate it refuses."""
    if exists(conn, name):
        raise exception.Conflict(
            reason=f'Conflicting resource class already exists: {name}',
            code=code)
    conn.execute(sa.insert(RC).values(name=name))


def ensure(conn, name: str) -> bool:
    """Create if missing; whether it was created."""
    if exists(conn, name):
        return False
    conn.execute(sa.insert(RC).values(name=name))
    return True


def rename(conn, name: str, new_name: str) -> None:
    if name in standard():
        raise exception.InvalidInput(
            message=f'Cannot update standard resource class {name}')
    if not exists(conn, name):
        raise _not_found(name)
    if new_name != name and exists(conn, new_name):
        raise exception.Conflict(
            reason=f'Resource class already exists: {new_name}')
    holders = conn.execute(sa.select(INV.resource_provider_id).where(
        INV.resource_class == name)).scalars().all()
    # A claim of the old name must not land after the rename (tree_locks).
    tree_locks.lock(conn, holders)
    owner = conn.execute(sa.select(RP.host).join(
        INV, INV.resource_provider_id == RP.id).where(
            INV.resource_class == name, RP.host.is_not(None)).order_by(
            RP.host).limit(1)).scalar()
    if owner is not None:
        # The host reports the class by its old name: its next report would
        # meet its own allocations under the new one (InventoryInUse).
        raise exception.Conflict(
            reason=f'Resource class {name} is in the inventory of host '
                   f'{owner}, whose reports name it: it cannot be renamed.')
    # Class names are stored as they are in inventories and allocations:
    # they follow, in the same transaction.
    if conn.execute(sa.select(RC.id).where(RC.name == name)).first():
        conn.execute(sa.update(RC).where(RC.name == name).values(
            name=new_name))
    else:
        conn.execute(sa.insert(RC).values(name=new_name))
    conn.execute(sa.update(INV).where(INV.resource_class == name).values(
        resource_class=new_name))
    conn.execute(sa.update(ALLOC).where(ALLOC.resource_class == name).values(
        resource_class=new_name))


def delete(conn, name: str) -> None:
    if name in standard():
        raise exception.InvalidInput(
            message='Error in delete resource class: Cannot delete standard '
                    f'resource class {name}')
    if not exists(conn, name):
        raise _not_found(name)
    if _in_use(conn, name):
        raise exception.Conflict(
            reason=f'Error in delete resource class: Cannot delete resource '
                   f'class {name}. Class is in use in inventory.')
    conn.execute(sa.delete(RC).where(RC.name == name))
