"""Consumers' allocations written through the REST API (a scheduler's
claim, ``PUT``/``POST``/``DELETE /allocations``), with Placement's rules.

One transaction replaces every allocation of the named consumers:

- the roots of every tree touched are locked first (``tree_locks``): the
  RPC path's writers of a tree and the REST inventory writers serialise on
  the root's row too, so ``inventories`` read here (``used``, capacity,
  existence) stay true until commit;
- consumer generations (1.28): an existing consumer's must match, a new
  consumer is named with null; each consumer written gets the next one
  (a new consumer starts at 1), one left without allocations is removed;
- capacity as Placement checks it (and as the RPC path): a (provider,
  class) whose usage grows must stay within capacity, and each amount
  within min_unit, max_unit and step_size;
- ``inventories.used`` moves by the difference, in the same transaction;
  every provider given allocations gets a new generation, compared and
  swapped with the one read with the inventories, as in Placement.

A host-owned provider takes allocations here too (a scheduler's claim,
marked ``rest_claim``): that host's reports keep them until one of them
names the consumer, which takes them over (``allocation_ops``).
"""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import models
from nova_rt.placement import resource_class_ops
from nova_rt.placement import tree_locks
from nova_rt.placement import usage_ops
from nova_rt.placement.rest import errors

RP = common.RP
INV = models.Inventory
ALLOC = models.Allocation
CONSUMER = models.Consumer

#: Placement's ``incomplete_consumer_project_id``/``user_id`` (before 1.8).
INCOMPLETE = '00000000-0000-0000-0000-000000000000'
#: ``consumer_generation`` not given (before 1.28): not checked.
UNCHECKED = object()


# Built once: constructing a statement cost more Python than running it
# (as in allocation_ops); and run on the driver's cursor (common.Direct),
# about 55 us each less than through SQLAlchemy's execution, which was a
# third of a REST allocation write on PostgreSQL.  Consumers and their
# allocations churn: planned each time (see common.Direct).
_CONSUMERS_QUERY = sa.select(
    CONSUMER.id, CONSUMER.uuid, CONSUMER.project_id, CONSUMER.user_id,
    CONSUMER.generation, CONSUMER.consumer_type).where(
        CONSUMER.uuid.in_(sa.bindparam('b_uuids', expanding=True)))
_CONSUMERS = common.Direct(_CONSUMERS_QUERY, plan_each_time=True)
_CURRENT = common.Direct(sa.select(
    ALLOC.consumer_id, ALLOC.resource_provider_id, ALLOC.resource_class,
    ALLOC.used).where(ALLOC.consumer_id.in_(sa.bindparam('b_ids',
                                                         expanding=True))),
    plan_each_time=True)
_PROVIDERS = common.Direct(sa.select(RP.id, RP.uuid).where(
    RP.uuid.in_(sa.bindparam('b_uuids', expanding=True))))
# With each provider's generation: read under the roots' locks, it is the
# one the compare-and-swap below expects.
_INVENTORIES = common.Direct(sa.select(
    INV.id, INV.resource_provider_id, INV.resource_class, INV.min_unit,
    INV.max_unit, INV.step_size, INV.capacity, INV.used, RP.uuid,
    RP.generation).join(
        RP, RP.id == INV.resource_provider_id).where(
        INV.resource_provider_id.in_(sa.bindparam('b_ids', expanding=True))))
_LOCK_CONSUMERS = common.Direct(
    _CONSUMERS_QUERY.order_by(CONSUMER.uuid).with_for_update(),
    plan_each_time=True)
_DELETE_ALLOCATIONS = common.Direct(sa.delete(ALLOC).where(
    ALLOC.consumer_id.in_(sa.bindparam('b_ids', expanding=True)),
    ALLOC.resource_provider_id.in_(sa.bindparam('b_rp_ids', expanding=True))),
    plan_each_time=True)
# Every row of a consumer in one INSERT (common.Direct).
_INSERT_ALLOCATIONS = common.Direct(sa.insert(ALLOC).values(
    {c: sa.bindparam(c) for c in ('resource_provider_id', 'consumer_id',
                                  'resource_class', 'used', 'rest_claim')}))
# Compare-and-swap on the consumer's generation (under its row lock it
# cannot fail; it says what the write relies on).
_BUMP_CONSUMER = sa.update(CONSUMER).where(
    CONSUMER.id == sa.bindparam('b_id'),
    CONSUMER.generation == sa.bindparam('b_seen')).values(
    generation=CONSUMER.generation + 1)


_GENERATIONS = common.Direct(sa.select(RP.id, RP.uuid, RP.generation).where(
    RP.id.in_(sa.bindparam('b_ids', expanding=True))))
# Compare-and-swap, as Placement's increment_generation: a provider changed
# since the capacity check read it makes this write the loser.
_BUMP = common.Direct(sa.update(RP).where(
    RP.id == sa.bindparam('b_id'),
    RP.generation == sa.bindparam('b_seen')).values(
    generation=RP.generation + 1))


def _consumers(conn, uuids) -> dict:
    return {row.uuid: row for row in _CONSUMERS.rows(
        conn, {'b_uuids': sorted(uuids)})}


def _lock_consumers(conn, uuids) -> dict:
    return {row.uuid: row for row in _LOCK_CONSUMERS.rows(
        conn, {'b_uuids': sorted(uuids)})}


def _current(conn, consumer_ids) -> dict:
    """consumer id -> {(rp_id, rc): used}."""
    result: dict = {}
    if not consumer_ids:
        return result
    for c_id, rp_id, rc, used in _CURRENT.rows(
            conn, {'b_ids': sorted(consumer_ids)}):
        result.setdefault(c_id, {})[(rp_id, rc)] = used
    return result


def _check_generations(requests: dict, consumers: dict) -> None:
    for uuid, request in requests.items():
        given = request.get('consumer_generation', UNCHECKED)
        if given is UNCHECKED:
            continue
        have = consumers.get(uuid)
        expected = have.generation if have is not None else None
        if given != expected:
            raise exception.Conflict(
                reason=f'consumer generation conflict - expected '
                       f'{"null" if expected is None else expected} but got '
                       f'{"null" if given is None else given}',
                code=errors.CONCURRENT_UPDATE)


def _providers(conn, uuids) -> dict:
    if not uuids:
        return {}
    return {row.uuid: row for row in _PROVIDERS.rows(
        conn, {'b_uuids': sorted(uuids)})}


def _wanted(conn, requests: dict) -> dict:
    """consumer uuid -> {(rp_id, rc): n}; 400 for unknown providers."""
    uuids = {rp for r in requests.values() for rp in r['allocations']}
    providers = _providers(conn, uuids)
    for uuid in sorted(uuids - set(providers)):
        raise exception.InvalidInput(message=(
            f"Allocation for resource provider '{uuid}' that does not "
            'exist.'))
    return {c: {(providers[rp].id, rc): n
                for rp, resources in r['allocations'].items()
                for rc, n in resources.items()}
            for c, r in requests.items()}


def _inventories(conn, keys) -> dict:
    rp_ids = sorted({rp_id for rp_id, _rc in keys})
    if not rp_ids:
        return {}
    return {(row.resource_provider_id, row.resource_class): row
            for row in _INVENTORIES.rows(conn, {'b_ids': rp_ids})}


def _uuid_of(conn, rp_id: int) -> str:
    return conn.execute(sa.select(RP.uuid).where(RP.id == rp_id)).scalar()


def _check(conn, want: dict, delta: dict, inventories: dict) -> None:
    for consumer, rows in want.items():
        for (rp_id, rc), n in sorted(rows.items()):
            inv = inventories.get((rp_id, rc))
            if inv is None and not resource_class_ops.exists(conn, rc):
                raise exception.InvalidInput(message=(
                    f'Unable to allocate inventory for consumer {consumer}: '
                    f'No such resource class {rc}.'))
            if inv is None:
                raise exception.Conflict(reason=(
                    f'Unable to allocate inventory: Inventory for {rc!r} on '
                    f'resource provider {_uuid_of(conn, rp_id)!r} invalid.'))
            if not inv.min_unit <= n <= inv.max_unit or n % inv.step_size:
                raise exception.InvalidAllocation(message=(
                    f'Unable to allocate inventory: Unable to create '
                    f'allocation for {rc!r} on resource provider '
                    f'{inv.uuid!r}. The requested amount would violate '
                    'inventory constraints.'))
    for key, change in sorted(delta.items()):
        inv = inventories[key] if key in inventories else None
        if inv is not None and change > 0 and inv.used + change > inv.capacity:
            raise exception.AllocationCapacityExceeded(
                message=f'Unable to allocate inventory: Unable to create '
                        f'allocation for {key[1]!r} on resource provider '
                        f'{inv.uuid!r}. The requested amount would exceed '
                        'the capacity.')


def replace(conn, requests: dict, bump_left: bool = False,
            bump_emptied: bool = True) -> None:
    """Replace the allocations of each consumer of ``requests``:
    ``{consumer_uuid: {'allocations': {rp_uuid: {rc: n}}, 'project_id',
    'user_id', 'consumer_type' (optional), 'consumer_generation'
    (optional: unchecked)}}``; empty allocations remove them all.
    ``bump_left``: providers that only lose allocations get a new
    generation too (Placement's reshaper counts them); ``bump_emptied``:
    those of a consumer emptied (Placement writes its allocations as
    zero, which bumps their providers; its DELETE does not)."""
    consumers = _consumers(conn, requests)
    have = _current(conn, [c.id for c in consumers.values()])
    want = _wanted(conn, requests)
    touched = {rp_id for rows in have.values() for rp_id, _rc in rows} | {
        rp_id for rows in want.values() for rp_id, _rc in rows}
    locked = tree_locks.lock(conn, touched)
    # Then the consumers' rows: every writer of a consumer's allocations
    # holds it (the RPC path's upsert too), so that none come or go from
    # here on.  Read again under the locks: another writer may have gone
    # first, and taken the consumer to trees the first read did not see,
    # whose roots are locked now (out of the usual order: a deadlock with
    # that tree's writer is retried as any).
    consumers = _lock_consumers(conn, requests)
    _check_generations(requests, consumers)
    have = _current(conn, [c.id for c in consumers.values()])
    tree_locks.lock(conn, {rp_id for rows in have.values()
                           for rp_id, _rc in rows}, locked)
    delta: dict = {}
    for uuid in requests:
        old = have.get(consumers[uuid].id, {}) if uuid in consumers else {}
        for key, n in old.items():
            delta[key] = delta.get(key, 0) - n
        for key, n in want[uuid].items():
            delta[key] = delta.get(key, 0) + n
    allocated = {rp_id for rows in want.values() for rp_id, _rc in rows}
    if bump_left:
        allocated |= {rp_id for rp_id, _rc in delta}
    elif bump_emptied:
        allocated |= {rp_id for uuid in requests
                      if uuid in consumers and not want[uuid]
                      for rp_id, _rc in have.get(consumers[uuid].id, {})}
    inventories = _inventories(conn, set(delta) | {
        k for rows in want.values() for k in rows})
    _check(conn, want, delta, inventories)
    generations = _generations(conn, allocated, inventories)

    old_ids = [consumers[u].id for u in requests if u in consumers]
    old_rps = sorted({rp_id for c_id in old_ids
                      for rp_id, _rc in have.get(c_id, {})})
    if old_ids and old_rps:
        # Exactly the rows read under the locks, nothing of a tree that
        # was not locked.
        _DELETE_ALLOCATIONS.run(conn, {'b_ids': old_ids,
                                       'b_rp_ids': old_rps})
    for uuid, request in requests.items():
        rows = want[uuid]
        if not rows:
            continue
        consumer_id = _upsert_consumer(conn, uuid, request,
                                       consumers.get(uuid))
        _INSERT_ALLOCATIONS.run(conn, [
            {'resource_provider_id': rp_id, 'consumer_id': consumer_id,
             'resource_class': rc, 'used': n, 'rest_claim': True}
            for (rp_id, rc), n in sorted(rows.items())])
    gone = [consumers[u].id for u in requests
            if u in consumers and not want[u]]
    if gone:
        conn.execute(sa.delete(CONSUMER).where(CONSUMER.id.in_(gone)))
    usage_ops.set_used(conn, [
        (inventories[key].id, inventories[key].used + change)
        for key, change in sorted(delta.items())
        if change and key in inventories])
    for rp_id, (uuid, generation) in sorted(generations.items()):
        if _BUMP.run(conn, {'b_id': rp_id, 'b_seen': generation}) != 1:
            raise exception.ResourceProviderGenerationConflict(
                uuid=uuid, expected=generation,
                current='changed concurrently')


def _generations(conn, rp_ids, inventories: dict) -> dict:
    """rp id -> (uuid, generation) of the providers ``rp_ids``: from the
    inventories read under the same locks, the others (a provider without
    inventory) read here."""
    found = {inv.resource_provider_id: (inv.uuid, inv.generation)
             for inv in inventories.values()
             if inv.resource_provider_id in rp_ids}
    rest = sorted(set(rp_ids) - set(found))
    if rest:
        found.update((row.id, (row.uuid, row.generation))
                     for row in _GENERATIONS.rows(conn, {'b_ids': rest}))
    return found


def _upsert_consumer(conn, uuid: str, request: dict, existing) -> int:
    values = {'project_id': request.get('project_id') or INCOMPLETE,
              'user_id': request.get('user_id') or INCOMPLETE}
    if request.get('consumer_type') is not None:
        values['consumer_type'] = request['consumer_type']
    if existing is None:
        try:
            return common.insert_ids(conn, CONSUMER, [
                {'uuid': uuid, 'generation': 1, 'consumer_type': None,
                 **values}], 'uuid')[uuid]
        except Exception as error:
            if not db.is_duplicate(error):
                raise
            # Another request created it first (in trees this one did not
            # lock): Placement's "created concurrently", rolled back.
            raise exception.ConsumerGenerationConflict(
                consumer_uuid=uuid,
                reason='another request created this consumer '
                       'concurrently; retry') from None
    if conn.execute(_BUMP_CONSUMER.values(**values), {
            'b_id': existing.id, 'b_seen': existing.generation}).rowcount != 1:
        raise exception.ConsumerGenerationConflict(
            consumer_uuid=uuid, reason='changed concurrently; retry')
    return existing.id


def delete(conn, uuid: str) -> None:
    """Remove every allocation of the consumer (404 if it has none)."""
    consumer = _consumers(conn, [uuid]).get(uuid)
    if consumer is None or not _current(conn, [consumer.id]):
        raise exception.NotFound(
            reason=f"No allocations for consumer '{uuid}'")
    replace(conn, {uuid: {'allocations': {}}}, bump_emptied=False)


def of_consumer(conn, uuid: str):
    """``(consumer row or None, {rp_uuid: {'generation', 'resources'}})``."""
    consumer = _consumers(conn, [uuid]).get(uuid)
    allocations: dict = {}
    if consumer is None:
        return None, allocations
    for rp_uuid, generation, rc, used in conn.execute(sa.select(
            RP.uuid, RP.generation, ALLOC.resource_class, ALLOC.used).join(
                RP, RP.id == ALLOC.resource_provider_id).where(
                ALLOC.consumer_id == consumer.id)):
        entry = allocations.setdefault(rp_uuid, {'generation': generation,
                                                 'resources': {}})
        entry['resources'][rc] = used
    return consumer, allocations


def of_provider(conn, rp_id: int) -> dict:
    """``{consumer_uuid: {'resources': {...}, 'consumer_generation'}}``."""
    result: dict = {}
    for c_uuid, c_gen, rc, used in conn.execute(sa.select(
            CONSUMER.uuid, CONSUMER.generation, ALLOC.resource_class,
            ALLOC.used).join(CONSUMER, CONSUMER.id == ALLOC.consumer_id)
            .where(ALLOC.resource_provider_id == rp_id)):
        entry = result.setdefault(c_uuid, {'resources': {},
                                           'consumer_generation': c_gen})
        entry['resources'][rc] = used
    return result
