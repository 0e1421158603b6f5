"""Writes to providers: the host's tree report, operator traits and
aggregates, decommission, heartbeat.

Decisions the spec leaves open (documented in ``doc`` of the package):

- A provider listed with ``generation: null`` is created; if it already
  exists the report is stale and gets ``ResourceProviderGenerationConflict``
  (``current`` carries the generation to retry with).  A listed generation for
  a provider placement no longer has is a conflict too (``current`` None).
- A provider owned by another host is refused (``NotAuthorized``, logged by
  the manager): uuids are not a way to take over someone else's tree.
- Only providers that changed get a generation bump; an unchanged provider's
  generation is still checked.  A created provider starts at generation 1.
- ``traits: null`` (or absent) leaves the provider's traits alone, so the
  operator's ``set_traits`` survives reports; a list replaces them.
- A report refreshes its roots' ``last_heartbeat``: a host that reports is
  alive.  Heartbeats never bump generations (they are not provider writes).
- ``delete_resource_provider`` removes the provider and its descendants,
  refused with ``InventoryInUse`` while any of them has allocations.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import models

LOG = logging.getLogger(__name__)
RP = common.RP
INV = models.Inventory
_INV_FIELDS = ('total', 'reserved', 'min_unit', 'max_unit', 'step_size',
               'allocation_ratio')


def normalise_inventory(rc: str, raw: dict, field: str) -> dict:
    inv = {'total': raw['total'], 'reserved': raw.get('reserved', 0),
           'min_unit': raw.get('min_unit', 1),
           'max_unit': raw.get('max_unit', max(raw['total'], 1)),
           'step_size': raw.get('step_size', 1),
           'allocation_ratio': float(raw.get('allocation_ratio', 1.0))}
    if inv['reserved'] > inv['total']:
        raise exception.InvalidInput(
            reason=f'{field}.{rc}: reserved {inv["reserved"]} is more than '
                   f'total {inv["total"]}')
    if inv['min_unit'] > inv['max_unit']:
        raise exception.InvalidInput(
            reason=f'{field}.{rc}: min_unit {inv["min_unit"]} is more than '
                   f'max_unit {inv["max_unit"]}')
    cap = common.capacity(inv['total'], inv['reserved'],
                          inv['allocation_ratio'])
    if cap > common.MAX_INT:
        raise exception.InvalidInput(
            reason=f'{field}.{rc}: capacity {cap} is too large')
    inv['capacity'] = cap
    return inv


def _validate_tree(providers: list) -> dict:
    """Check the reported tree; each provider's inventories normalised
    (``uuid -> {rc: inventory}``)."""
    uuids = [p['uuid'] for p in providers]
    if len(set(uuids)) != len(uuids):
        raise exception.InvalidInput(reason='providers: a uuid is listed twice')
    listed = set(uuids)
    parents = {p['uuid']: p.get('parent_uuid') for p in providers}
    inventories = {}
    for i, p in enumerate(providers):
        parent = p.get('parent_uuid')
        if parent is not None and parent not in listed:
            raise exception.InvalidInput(
                reason=f'providers[{i}].parent_uuid: {parent} is not one of '
                       'the listed providers')
        common.check_traits(p.get('traits'), f'providers[{i}].traits')
        inventories[p['uuid']] = {
            rc: normalise_inventory(rc, raw, f'providers[{i}].inventories')
            for rc, raw in (p.get('inventories') or {}).items()}
        seen, node = set(), p['uuid']
        while node is not None:
            if node in seen:
                raise exception.InvalidInput(
                    reason=f'providers[{i}]: parent_uuid makes a cycle')
            seen.add(node)
            node = parents[node]
    return inventories


def _root_of(uuid: str, parents: dict) -> str:
    while parents[uuid] is not None:
        uuid = parents[uuid]
    return uuid


# Built once: constructing a statement cost more Python than executing it.
# The host's providers with their inventories, locked in one order so that
# concurrent reports cannot deadlock; the same statement finds listed uuids
# that belong to someone else.  (SQLite ignores FOR UPDATE: BEGIN IMMEDIATE
# has already serialised writers.)
_TREE = (
    sa.select(RP.id, RP.uuid, RP.name, RP.host, RP.generation,
              RP.parent_provider_id, RP.root_provider_id,
              INV.id.label('inv_id'), INV.resource_class, INV.used,
              *(getattr(INV, f) for f in _INV_FIELDS))
    .outerjoin(INV, INV.resource_provider_id == RP.id)
    .where(sa.or_(RP.host == sa.bindparam('b_host'),
                  RP.uuid.in_(sa.bindparam('b_uuids', expanding=True))))
    .order_by(RP.id))
_TREE_FOR_UPDATE = common.Direct(_TREE.with_for_update(of=RP))
# The same without locks: a report that changes nothing is answered from it
# (``_unchanged``), with no write at all.
_TREE_READ = common.Direct(_TREE)
_BUMP = common.Direct(
    sa.update(RP).where(RP.id == sa.bindparam('b_id'),
                        RP.generation == sa.bindparam('b_generation'))
    .values(generation=RP.generation + 1, name=sa.bindparam('b_name'),
            parent_provider_id=sa.bindparam('b_parent'),
            root_provider_id=sa.bindparam('b_root'),
            # A root's bump is its heartbeat too; a child's keeps its own.
            last_heartbeat=sa.func.coalesce(sa.bindparam('b_now'),
                                            RP.last_heartbeat))
    .execution_options(synchronize_session=False))
_LINK = (sa.update(RP).where(RP.id == sa.bindparam('b_id'))
         .values(parent_provider_id=sa.bindparam('b_parent'),
                 root_provider_id=sa.bindparam('b_root'))
         .execution_options(synchronize_session=False))
_HEARTBEAT = common.Direct(
    sa.update(RP).where(RP.id.in_(sa.bindparam('b_ids', expanding=True)))
    .values(last_heartbeat=sa.bindparam('b_now')))
_UPDATE_INVENTORY = common.Direct(
    sa.update(INV).where(INV.id == sa.bindparam('b_id'))
    .values({k: sa.bindparam(f'b_{k}') for k in (*_INV_FIELDS, 'capacity')})
    .execution_options(synchronize_session=False))
_MOVE_INVENTORY = (
    sa.update(INV).where(INV.resource_provider_id == sa.bindparam('b_rp_id'))
    .values(root_provider_id=sa.bindparam('b_root'))
    .execution_options(synchronize_session=False))
_DELETE_INVENTORY = sa.delete(INV).where(
    INV.resource_provider_id == sa.bindparam('b_rp_id'),
    INV.resource_class.in_(sa.bindparam('b_classes', expanding=True)))


def _read_tree(query, session, host: str, uuids: list):
    """``(owned, foreign, inventories)``: the host's providers and the
    listed ones by uuid, one of the listed that belongs to another host (or
    None), ``rp_id -> {rc: inventory}``."""
    owned, foreign, inventories = {}, None, {}
    for row in query.rows(session, {'b_host': host, 'b_uuids': uuids}):
        if row.host != host:
            foreign = row
            continue
        owned[row.uuid] = row
        if row.resource_class is not None:
            inventories.setdefault(row.id, {})[row.resource_class] = {
                'id': row.inv_id, 'used': row.used,
                **{f: getattr(row, f) for f in _INV_FIELDS}}
    return owned, foreign, inventories


def _same_inventories(have: dict, want: dict) -> bool:
    return {rc: {f: i[f] for f in _INV_FIELDS} for rc, i in have.items()} == {
        rc: {f: i[f] for f in _INV_FIELDS} for rc, i in want.items()}


def _unchanged(session, host: str, providers: list,
               wanted_inventories: dict):
    """The generations to answer if the report changes nothing (every
    provider exists with the listed generation, name, parent, inventories
    and traits, and none of the host's is left out); None otherwise, and
    the report takes the locking path.  Read without locks: what a serial
    execution at the moment of the read would have answered."""
    by_uuid = {p['uuid']: p for p in providers}
    owned, foreign, inventories = _read_tree(_TREE_READ, session, host,
                                             list(by_uuid))
    if foreign is not None or set(owned) != set(by_uuid):
        return None
    parents = {u: p.get('parent_uuid') for u, p in by_uuid.items()}
    listed_traits = []
    for uuid, p in by_uuid.items():
        rp = owned[uuid]
        parent_id = owned[parents[uuid]].id if parents[uuid] else None
        root_id = owned[_root_of(uuid, parents)].id
        if (p.get('generation') != rp.generation or rp.name != p['name']
                or rp.parent_provider_id != parent_id
                or rp.root_provider_id != root_id
                or not _same_inventories(inventories.get(rp.id, {}),
                                         wanted_inventories[uuid])):
            return None
        if p.get('traits') is not None:
            listed_traits.append(rp.id)
    if listed_traits:
        traits = _current_traits(session, listed_traits)
        for uuid, p in by_uuid.items():
            if (p.get('traits') is not None
                    and set(p['traits']) != traits.get(owned[uuid].id, set())):
                return None
    return {uuid: rp.generation for uuid, rp in owned.items()}


def unchanged_report(session, host: str, providers: list, defer_heartbeat,
                     now=None):
    """What ``report_provider_tree`` would answer to a report that changes
    nothing, the roots' heartbeats handed to ``defer_heartbeat(host,
    root_uuid, now)`` (``heartbeats``: written with the next batch); None
    for any other report, which ``report_provider_tree`` then writes (or
    refuses).  Reads only: the manager runs it outside a transaction,
    before the write.  An invalid tree is refused here as there."""
    unchanged = _unchanged(session, host, providers, _validate_tree(providers))
    if unchanged is not None:
        now = now or common.utcnow()
        for p in providers:
            if p.get('parent_uuid') is None:
                defer_heartbeat(host, p['uuid'], now)
    return unchanged


def report_provider_tree(session, host: str, providers: list,
                         now=None) -> dict:
    """Create/update the host's providers; remove the unlisted ones.

    Every root's heartbeat is written here.  A report that changes nothing
    is answered by ``unchanged_report`` before it comes here (the manager,
    when heartbeats are coalesced).
    """
    now = now or common.utcnow()
    wanted_inventories = _validate_tree(providers)
    by_uuid = {p['uuid']: p for p in providers}
    parents = {p['uuid']: p.get('parent_uuid') for p in providers}

    owned, foreign, inventories = _read_tree(_TREE_FOR_UPDATE, session, host,
                                             list(by_uuid))
    if foreign is not None:
        raise exception.NotAuthorized(
            reason=f'provider {foreign.uuid} belongs to another host')

    for uuid, p in by_uuid.items():
        rp, gen = owned.get(uuid), p.get('generation')
        if rp is None and gen is not None:
            raise exception.ResourceProviderGenerationConflict(
                uuid=uuid, expected=gen, current=None)
        if rp is not None and gen != rp.generation:
            raise exception.ResourceProviderGenerationConflict(
                uuid=uuid, expected=gen, current=rp.generation)

    # Traits are read only for providers whose report lists them.
    traits = _current_traits(
        session, [rp.id for u, rp in owned.items()
                  if u in by_uuid and by_uuid[u].get('traits') is not None])

    new = [u for u in by_uuid if u not in owned]
    if new:
        ids = common.insert_ids(
            session, RP,
            [{'uuid': u, 'name': by_uuid[u]['name'], 'host': host,
              'generation': 1,
              'last_heartbeat': now if parents[u] is None else None}
             for u in new], 'uuid')
    else:
        ids = {}
    ids.update({u: rp.id for u, rp in owned.items() if u in by_uuid})

    links, changed = [], []
    for uuid, p in by_uuid.items():
        parent_id = ids[parents[uuid]] if parents[uuid] else None
        root_id = ids[_root_of(uuid, parents)]
        want_inv = wanted_inventories[uuid]
        want_traits = p.get('traits')
        rp = owned.get(uuid)
        if rp is None:
            links.append({'b_id': ids[uuid], 'b_parent': parent_id,
                          'b_root': root_id})
            _write_inventories(session, ids[uuid], root_id, uuid, {},
                               want_inv)
            if want_traits:
                _write_traits(session, ids[uuid], want_traits)
            continue
        have_inv = inventories.get(rp.id, {})
        same_inv = _same_inventories(have_inv, want_inv)
        same_traits = (want_traits is None
                       or set(want_traits) == traits.get(rp.id, set()))
        if (same_inv and same_traits and rp.name == p['name']
                and rp.parent_provider_id == parent_id
                and rp.root_provider_id == root_id):
            continue
        _bump(session, rp, uuid, p['name'], parent_id, root_id,
              now if parent_id is None else None)
        changed.append(uuid)
        if not same_inv:
            _write_inventories(session, rp.id, root_id, uuid, have_inv,
                               want_inv)
        if rp.root_provider_id != root_id and have_inv:
            # Moved to another tree: its inventory is found under the new root.
            session.execute(_MOVE_INVENTORY, {'b_rp_id': rp.id,
                                              'b_root': root_id})
        if not same_traits:
            _write_traits(session, rp.id, want_traits)
    if links:
        session.execute(_LINK, links)
    # Last, so that kept providers no longer point at what goes away.
    removed = [rp for u, rp in owned.items() if u not in by_uuid]
    _remove(session, removed)
    if new or removed:
        LOG.info('Providers of host %s: created %s, removed %s', host, new,
                 [rp.uuid for rp in removed])
    beats = [ids[u] for u in by_uuid
             if parents[u] is None and u not in changed and u not in new]
    if beats:
        _HEARTBEAT.run(session, {'b_ids': beats, 'b_now': now})
    LOG.debug('Provider tree of %s: changed %s', host, changed)
    result = {u: owned[u].generation for u in by_uuid if u in owned}
    result.update({u: result[u] + 1 for u in changed})
    result.update({u: 1 for u in new})
    return result


def _bump(session, rp, uuid, name, parent_id, root_id, heartbeat) -> None:
    """Compare-and-swap the generation (see ``common.bump_generation``)."""
    changed = _BUMP.run(session, {
        'b_id': rp.id, 'b_generation': rp.generation, 'b_name': name,
        'b_parent': parent_id, 'b_root': root_id, 'b_now': heartbeat})
    if changed != 1:
        current = session.execute(
            sa.select(RP.generation).where(RP.id == rp.id)).scalar()
        raise exception.ResourceProviderGenerationConflict(
            uuid=uuid, expected=rp.generation, current=current)


def _current_traits(session, rp_ids) -> dict[int, set]:
    result: dict[int, set] = {}
    if not rp_ids:
        return result
    rows = session.execute(
        sa.select(models.ProviderTrait.resource_provider_id, models.Trait.name)
        .join(models.Trait)
        .where(models.ProviderTrait.resource_provider_id.in_(rp_ids)))
    for rp_id, name in rows:
        result.setdefault(rp_id, set()).add(name)
    return result


def _write_inventories(session, rp_id, root_id, uuid, have: dict,
                       want: dict) -> None:
    gone = [rc for rc in have if rc not in want]
    in_use = [rc for rc in gone if have[rc]['used'] > 0]
    if in_use:
        raise exception.InventoryInUse(
            reason=f'provider {uuid} has allocations of {", ".join(in_use)}; '
                   'their inventory cannot be removed')
    if gone:
        session.execute(_DELETE_INVENTORY, {'b_rp_id': rp_id,
                                            'b_classes': gone})
    # Only the rows that differ: a host usually changes one class at a time.
    updates = [{'b_id': have[rc]['id'],
                **{f'b_{k}': v for k, v in inv.items()}}
               for rc, inv in want.items() if rc in have
               and any(have[rc][f] != inv[f] for f in _INV_FIELDS)]
    inserts = [{'resource_provider_id': rp_id, 'root_provider_id': root_id,
                'resource_class': rc, 'used': 0, **inv}
               for rc, inv in want.items()
               if rc not in have]
    if updates:
        _UPDATE_INVENTORY.run(session, updates)
    if inserts:
        session.execute(sa.insert(INV), inserts)


def _write_traits(session, rp_id, names) -> None:
    session.execute(sa.delete(models.ProviderTrait).where(
        models.ProviderTrait.resource_provider_id == rp_id))
    trait_ids = common.ensure_traits(session, names)
    if trait_ids:
        session.execute(sa.insert(models.ProviderTrait), [
            {'resource_provider_id': rp_id, 'trait_id': t}
            for t in trait_ids.values()])


def _remove(session, rps) -> None:
    if not rps:
        return
    ids = [rp.id for rp in rps]
    if common.has_allocations(session, ids):
        raise exception.InventoryInUse(
            reason='a provider no longer reported still has allocations: '
                   + ', '.join(sorted(rp.uuid for rp in rps)))
    # Unlink first: the tree's self references would otherwise order the
    # deletes.  Inventories, traits and aggregates go by ON DELETE CASCADE.
    session.execute(sa.update(RP).where(RP.id.in_(ids))
                    .values(parent_provider_id=None, root_provider_id=None)
                    .execution_options(synchronize_session=False))
    session.execute(sa.delete(RP).where(RP.id.in_(ids))
                    .execution_options(synchronize_session=False))


def set_traits(session, uuid: str, traits: list, generation: int) -> dict:
    common.check_traits(traits)
    rp = common.get_provider(session, uuid)
    new_gen = common.bump_generation(session, rp.id, uuid, generation)
    _write_traits(session, rp.id, traits)
    return {uuid: new_gen}


def set_aggregates(session, uuid: str, aggregates: list,
                   generation: int) -> dict:
    rp = common.get_provider(session, uuid)
    new_gen = common.bump_generation(session, rp.id, uuid, generation)
    replace_aggregates(session, rp.id, aggregates)
    return {uuid: new_gen}


def replace_aggregates(session, rp_id: int, aggregates: list) -> None:
    """The provider's aggregates made ``aggregates``, its generation left
    (REST before 1.19, as Placement)."""
    session.execute(sa.delete(models.ProviderAggregate).where(
        models.ProviderAggregate.resource_provider_id == rp_id))
    agg_ids = common.ensure_aggregates(session, aggregates)
    if agg_ids:
        session.execute(sa.insert(models.ProviderAggregate), [
            {'resource_provider_id': rp_id, 'aggregate_id': a}
            for a in agg_ids.values()])


def delete_resource_provider(session, uuid: str) -> None:
    rp = common.get_provider(session, uuid)
    subtree, frontier = [rp], [rp.id]
    while frontier:
        children = session.execute(sa.select(RP.id, RP.uuid).where(
            RP.parent_provider_id.in_(frontier))).all()
        subtree.extend(children)
        frontier = [c.id for c in children]
    _remove(session, subtree)


def heartbeat(session, host: str, root_uuid: str, now=None) -> bool:
    """Record liveness; False (and nothing written) if not this host's root."""
    now = now or common.utcnow()
    result = session.execute(
        sa.update(RP).where(RP.uuid == root_uuid, RP.host == host,
                            RP.parent_provider_id.is_(None))
        .values(last_heartbeat=now)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


# One statement for a whole batch of heartbeats (``heartbeats``): the rows
# matched by uuid AND host AND being a root are the accepted ones.
# GREATEST ignores a NULL stamp and never moves one backwards.
_PG_HEARTBEATS = sa.text(
    'UPDATE resource_providers AS rp '
    'SET last_heartbeat = GREATEST(rp.last_heartbeat, v.at) '
    'FROM unnest(CAST(:hosts AS TEXT[]), CAST(:uuids AS TEXT[]), '
    'CAST(:ats AS TIMESTAMP[])) AS v(host, uuid, at) '
    'WHERE rp.uuid = v.uuid AND rp.host = v.host '
    'AND rp.parent_provider_id IS NULL RETURNING rp.host, rp.uuid')
_ROOTS_OF = sa.select(RP.id, RP.uuid, RP.host).where(
    RP.uuid.in_(sa.bindparam('b_uuids', expanding=True)),
    RP.parent_provider_id.is_(None))
_STAMP = (sa.update(RP).where(
    RP.id == sa.bindparam('b_id'),
    sa.or_(RP.last_heartbeat.is_(None),
           RP.last_heartbeat < sa.bindparam('b_now')))
    .values(last_heartbeat=sa.bindparam('b_now'))
    .execution_options(synchronize_session=False))


def heartbeats(session, beats: dict) -> set:
    """Record many heartbeats at once: ``beats`` is ``{(host, root_uuid):
    time of receipt}``; the pairs accepted (the others are not a root of
    that host, and nothing is written for them)."""
    if not beats:
        return set()
    keys = sorted(beats)
    if common.dialect_name(session) == 'postgresql':
        rows = session.execute(_PG_HEARTBEATS, {
            'hosts': [h for h, _u in keys], 'uuids': [u for _h, u in keys],
            'ats': [beats[k] for k in keys]}).all()
        return {(row.host, row.uuid) for row in rows}
    found = session.execute(_ROOTS_OF, {
        'b_uuids': sorted({u for _h, u in keys})}).all()
    ids = {(row.host, row.uuid): row.id for row in found}
    accepted = [k for k in keys if k in ids]
    if accepted:
        session.execute(_STAMP, [{'b_id': ids[k], 'b_now': beats[k]}
                                 for k in accepted])
    return set(accepted)
