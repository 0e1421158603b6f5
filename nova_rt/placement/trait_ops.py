"""Traits as the REST API sees them (``/traits``, a provider's traits).

Placement keeps every os-traits name in its table; here the table holds
only the names in use or created, and the standard names are those of
os-traits (``common.standard_traits``): a standard trait always exists and
cannot be deleted, a custom one (``CUSTOM_*``) exists once created by
``PUT /traits/{name}`` or set on a provider (the RPC path creates them on
first use).
"""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import models

TRAIT = models.Trait
PT = models.ProviderTrait


def _custom_names(conn) -> set:
    return set(conn.execute(sa.select(TRAIT.name).where(
        TRAIT.name.like('CUSTOM\\_%', escape='\\'))).scalars())


def exists(conn, name: str) -> bool:
    return name in common.standard_traits() or conn.execute(
        sa.select(TRAIT.id).where(TRAIT.name == name)).first() is not None


def list_traits(conn, names=None, prefix=None, associated=None) -> list:
    every = set(common.standard_traits()) | _custom_names(conn)
    if names is not None:
        every &= set(names)
    if prefix is not None:
        every = {n for n in every if n.startswith(prefix)}
    if associated is not None:
        used = set(conn.execute(sa.select(TRAIT.name).join(
            PT, PT.trait_id == TRAIT.id).distinct()).scalars())
        every = every & used if associated else every - used
    return sorted(every)


def create(conn, name: str) -> bool:
    """Create a custom trait; False if it existed."""
    if exists(conn, name):
        return False
    common.ensure_traits(conn, [name])
    return True


def delete(conn, name: str) -> None:
    if name in common.standard_traits():
        raise exception.InvalidInput(
            message=f'Cannot delete standard trait {name}.')
    row = conn.execute(sa.select(TRAIT.id).where(TRAIT.name == name)).first()
    if row is None:
        raise exception.NotFound(reason=f'No such trait(s): {name}.')
    in_use = conn.execute(sa.select(PT.resource_provider_id).where(
        PT.trait_id == row.id).limit(1)).first()
    if in_use is not None:
        raise exception.Conflict(
            reason=f'The trait {name} is in use by a resource provider.')
    conn.execute(sa.delete(TRAIT).where(TRAIT.id == row.id))


def of_provider(conn, rp_id: int) -> list:
    return sorted(conn.execute(sa.select(TRAIT.name).join(
        PT, PT.trait_id == TRAIT.id).where(
            PT.resource_provider_id == rp_id)).scalars())


def missing(conn, names) -> list:
    """Names of ``names`` that are no trait (neither standard nor created)."""
    custom = [n for n in names if n not in common.standard_traits()]
    if not custom:
        return []
    known = set(conn.execute(sa.select(TRAIT.name).where(
        TRAIT.name.in_(custom))).scalars())
    return sorted(set(custom) - known)
