"""``report_allocations``: the host's own view of who uses its tree.

The root provider's generation (the one the reporter last saw) is
compare-and-swapped first, which also serialises writers of one tree.  Only
consumers whose allocations differ are rewritten; ``inventories.used`` of the
tree is set, in the same transaction and under the root's row lock, wherever
it differs: a full report recomputes it from every allocation of the tree
(which also heals any drift), an incremental one (``full=false``) reads only
its own consumers' allocations and moves the stored usage by the difference.
An amount
of 0 means "none of that class" and is not stored (a volume-backed instance
reports ``DISK_GB: 0``).

Allocations written through the REST API in the host's tree (a
scheduler's claim, ``allocations.rest_claim``) are kept by every report
that does not name their consumer, full ones included, and counted in the
usage; a report that names the consumer takes its allocations in the tree
over (as the host reports them, from then on the host's).

Capacity is checked as Placement does: a (provider, class) whose usage grows
must stay within capacity; one that shrinks or stays is accepted even if an
inventory change left it over capacity, so a host can always report less.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import aliased

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import models
from nova_rt.placement import usage_ops

RP = common.RP
INV = models.Inventory
ALLOC = models.Allocation
CONSUMER = models.Consumer


def _want(allocations: dict, tree: dict, inventories: dict,
          owner_of=lambda uuid: None) -> dict:
    """consumer -> {(rp_id, rc): n}, checked against the tree's inventories.

    ``owner_of(uuid)`` names the host of a provider outside the tree (asked
    only on that error path), so that a write to another host's provider is
    refused as such.
    """
    want = {}
    for consumer, body in allocations.items():
        rows = {}
        for rp_uuid, amounts in body['resources'].items():
            rp_id = tree.get(rp_uuid)
            if rp_id is None:
                owner = owner_of(rp_uuid)
                if owner is not None:
                    raise exception.NotAuthorized(
                        reason=f'consumer {consumer}: provider {rp_uuid} '
                               f'belongs to host {owner}')
                raise exception.InvalidAllocation(
                    reason=f'consumer {consumer}: provider {rp_uuid} is not '
                           'in the reporting host\'s tree')
            for rc, n in amounts.items():
                if n == 0:
                    continue
                inv = inventories.get((rp_id, rc))
                if inv is None:
                    raise exception.InvalidAllocation(
                        reason=f'consumer {consumer}: provider {rp_uuid} has '
                               f'no {rc} inventory')
                if not inv.min_unit <= n <= inv.max_unit or n % inv.step_size:
                    raise exception.InvalidAllocation(
                        reason=f'consumer {consumer}: {rc} {n} on provider '
                               f'{rp_uuid} is outside min_unit '
                               f'{inv.min_unit}, max_unit {inv.max_unit}, '
                               f'step_size {inv.step_size}')
                rows[(rp_id, rc)] = n
        want[consumer] = rows
    return want


def _usage(by_consumer: dict) -> dict:
    usage: dict = {}
    for rows in by_consumer.values():
        for key, n in rows.items():
            usage[key] = usage.get(key, 0) + n
    return usage


# Built once: constructing a statement cost more Python than executing it.
_CAS_ROOT_UPDATE = (
    sa.update(RP).where(RP.uuid == sa.bindparam('b_uuid'),
                        RP.host == sa.bindparam('b_host'),
                        RP.parent_provider_id.is_(None),
                        RP.generation == sa.bindparam('b_generation'))
    .values(generation=RP.generation + 1,
            last_heartbeat=sa.bindparam('b_now')))
_CAS_ROOT = common.Direct(_CAS_ROOT_UPDATE.returning(RP.id))
_WHY_REFUSED = sa.select(RP.host, RP.parent_provider_id, RP.generation).where(
    RP.uuid == sa.bindparam('b_uuid'))
_TREE_COLUMNS = (RP.uuid, RP.id, RP.generation, INV.id.label('inv_id'),
                 INV.resource_class, INV.min_unit, INV.max_unit,
                 INV.step_size, INV.capacity, INV.used)
_TREE = common.Direct(
    sa.select(*_TREE_COLUMNS)
    .outerjoin(INV, INV.resource_provider_id == RP.id)
    .where(RP.root_provider_id == sa.bindparam('b_root_id')))
# Joined through the provider so that it needs the root only, not the ids.
_ALLOCATIONS_IN_TREE = (
    sa.select(CONSUMER.uuid, CONSUMER.id, ALLOC.resource_provider_id,
              ALLOC.resource_class, ALLOC.used, ALLOC.rest_claim)
    .join(CONSUMER, CONSUMER.id == ALLOC.consumer_id)
    .join(RP, RP.id == ALLOC.resource_provider_id)
    .where(RP.root_provider_id == sa.bindparam('b_root_id')))
_TREE_ALLOCATIONS = common.Direct(_ALLOCATIONS_IN_TREE)
# Those of the reported consumers only, found by their uuids: every
# allocation of a busy host churns, and reading them all at each report cost
# more with every dead row until autovacuum came round.
_REPORTED_ALLOCATIONS = common.Direct(_ALLOCATIONS_IN_TREE.where(
    CONSUMER.uuid.in_(sa.bindparam('b_uuids', expanding=True))),
    plan_each_time=True)
_DELETE_ALLOCATIONS = common.Direct(sa.delete(ALLOC).where(
    ALLOC.resource_provider_id.in_(sa.bindparam('b_rp_ids', expanding=True)),
    ALLOC.consumer_id.in_(sa.bindparam('b_consumer_ids', expanding=True))),
    plan_each_time=True)
_INSERT_ALLOCATION = common.Direct(sa.insert(ALLOC).values(
    {c: sa.bindparam(c) for c in ('resource_provider_id', 'consumer_id',
                                  'resource_class', 'used')}))
_BUMP_CHILDREN = common.Direct(
    sa.update(RP).where(RP.id.in_(sa.bindparam('b_ids', expanding=True)))
    .values(generation=RP.generation + 1)
    .execution_options(synchronize_session=False))
_DELETE_UNUSED_CONSUMERS = common.Direct(sa.delete(CONSUMER).where(
    CONSUMER.id.in_(sa.bindparam('b_ids', expanding=True)),
    ~sa.exists().where(ALLOC.consumer_id == CONSUMER.id)),
    plan_each_time=True)
# Those that keep allocations elsewhere: any change of a consumer's
# allocations moves its generation, as in Placement, so that a REST
# client's view from before is refused.
_BUMP_LEAVING_CONSUMERS = common.Direct(sa.update(CONSUMER).where(
    CONSUMER.id.in_(sa.bindparam('b_ids', expanding=True))).values(
    generation=CONSUMER.generation + 1), plan_each_time=True)


_CONSUMER_VALUES = {c: sa.bindparam(c) for c in ('uuid', 'project_id',
                                                  'user_id', 'generation')}


@functools.cache
def _consumer_upsert(dialect: str):
    """INSERT ... ON CONFLICT (uuid) DO UPDATE ... RETURNING uuid, id."""
    if dialect == 'mysql':
        # No RETURNING on MySQL: upsert_consumers reads the ids after.
        stmt = mysql.insert(CONSUMER).values(_CONSUMER_VALUES)
        return stmt.on_duplicate_key_update(
            # A literal, not a bound 1: PyMySQL's many-row INSERT leaves the
            # parameters after VALUES (...) unfilled.
            generation=CONSUMER.generation + sa.literal_column('1'),
            project_id=stmt.inserted.project_id,
            user_id=stmt.inserted.user_id)
    module = postgresql if dialect == 'postgresql' else sqlite
    stmt = module.insert(CONSUMER).values(_CONSUMER_VALUES)
    return common.Direct(stmt.on_conflict_do_update(
        index_elements=['uuid'],
        set_={'generation': CONSUMER.generation + 1,
              'project_id': stmt.excluded.project_id,
              'user_id': stmt.excluded.user_id}).returning(
                  CONSUMER.uuid, CONSUMER.id))


def _upsert_consumers(session, rows: list[dict]) -> dict:
    """Consumers created or their generation bumped: ``uuid -> id``."""
    dialect = common.dialect_name(session)
    upsert = _consumer_upsert(dialect)
    if dialect != 'mysql':
        return dict(upsert.rows(session, rows))
    session.execute(upsert, rows)
    return common.ids_of(session, CONSUMER, 'uuid', [r['uuid'] for r in rows])


def _lock_root(session, host, root_uuid, generation, now) -> int:
    """Compare-and-swap the root's generation; the id of the root.

    One statement on the happy path; only a refused write pays for finding
    out why (unknown, someone else's, not a root, or stale).
    """
    params = {'b_uuid': root_uuid, 'b_host': host, 'b_generation': generation,
              'b_now': now}
    if session.dialect.update_returning:
        rows = _CAS_ROOT.rows(session, params)
        if rows:
            return rows[0].id
    elif session.execute(_CAS_ROOT_UPDATE, params).rowcount == 1:
        # MySQL: the row is ours (locked) until commit, so reading its id
        # after is as good as RETURNING.
        return common.ids_of(session, RP, 'uuid', [root_uuid])[root_uuid]
    found = session.execute(_WHY_REFUSED, {'b_uuid': root_uuid}).first()
    if found is None:
        raise exception.ResourceProviderNotFound(uuid=root_uuid)
    if found.host != host:
        raise exception.NotAuthorized(
            reason=f'provider {root_uuid} belongs to another host')
    if found.parent_provider_id is not None:
        raise exception.InvalidInput(
            reason=f'root_uuid: {root_uuid} is not a root provider')
    raise exception.ResourceProviderGenerationConflict(
        uuid=root_uuid, expected=generation, current=found.generation)


def _foreign_owner(session, rp_uuid: str, host: str):
    owner = session.execute(sa.select(RP.host).where(RP.uuid == rp_uuid)).scalar()
    return owner if owner is not None and owner != host else None


_ROOT_OF = aliased(RP)
# The root (found by its uuid) and its tree in one statement: a full
# report that changes nothing is answered from this and the allocations,
# two statements in all.
_ROOT_AND_TREE = common.Direct(
    sa.select(_ROOT_OF.id.label('root_id'), _ROOT_OF.host.label('root_host'),
              _ROOT_OF.parent_provider_id.label('root_parent'),
              _ROOT_OF.generation.label('root_generation'),
              *_TREE_COLUMNS)
    .join(RP, RP.root_provider_id == _ROOT_OF.id)
    .outerjoin(INV, INV.resource_provider_id == RP.id)
    .where(_ROOT_OF.uuid == sa.bindparam('b_uuid')))


def _unchanged(session, host, root_uuid, generation, allocations):
    """The generations to answer for a full report that changes nothing
    (the root is the host's at that generation, every allocation and every
    usage is already as reported); None otherwise, and the report takes the
    writing path, which also raises whatever error the report deserves.
    Read without locks: what a serial execution at the moment of the reads
    would have answered (the root and its tree read first, in one
    statement: a writer of the tree in between shows as a difference in the
    allocations or usages read next, never as a match)."""
    rows = _ROOT_AND_TREE.rows(session, {'b_uuid': root_uuid})
    # No row: no such provider, or not a root (a root's tree holds it).
    if (not rows or rows[0].root_host != host or rows[0].root_parent
            is not None or rows[0].root_generation != generation):
        return None
    root_id = rows[0].root_id
    tree, generations, inventories = _tree_of(rows)
    try:
        want = _want(allocations, tree, inventories)
    except exception.NovaRtException:
        return None
    have: dict = {}
    claims: set = set()
    for c_uuid, _c_id, rp_id, rc, n, rest_claim in _TREE_ALLOCATIONS.rows(
            session, {'b_root_id': root_id}):
        have.setdefault(c_uuid, {})[(rp_id, rc)] = n
        if rest_claim:
            claims.add(c_uuid)
    if claims & set(want):
        return None              # REST claims to take over: a write
    expected = {**_kept(have, claims, want), **want}
    if any(have.get(c, {}) != expected.get(c, {})
           for c in set(have) | set(expected)):
        return None
    usage = _usage(expected)
    if any(inv.used != usage.get(key, 0) for key, inv in inventories.items()):
        return None
    return {uuid: generations[rp_id] for uuid, rp_id in tree.items()}


def _read_tree(session, root_id: int) -> tuple[dict, dict, dict]:
    """The tree's providers (uuid -> id), their generations (id ->
    generation) and inventories ((id, class) -> row)."""
    return _tree_of(_TREE.rows(session, {'b_root_id': root_id}))


def _tree_of(rows) -> tuple[dict, dict, dict]:
    tree, generations, inventories = {}, {}, {}
    for row in rows:
        tree[row.uuid] = row.id
        generations[row.id] = row.generation
        if row.resource_class is not None:
            inventories[(row.id, row.resource_class)] = row
    return tree, generations, inventories


def _kept(have: dict, claims: set, want: dict) -> dict:
    """The REST claims in the tree that a full report leaves as they are:
    those of consumers it does not report."""
    return {c: have[c] for c in claims if c not in want}


def unchanged_report(session, host: str, root_uuid: str, generation: int,
                     allocations: dict, full: bool, defer_heartbeat,
                     now=None):
    """What ``report_allocations`` would answer to a full report that
    changes nothing (the generations stay), its heartbeat handed to
    ``defer_heartbeat(host, root_uuid, now)`` (``heartbeats``: written with
    the next batch); None for any other report, which
    ``report_allocations`` then writes (or refuses).  Reads only: the
    manager runs it outside a transaction, before the write."""
    if not full:
        return None
    unchanged = _unchanged(session, host, root_uuid, generation, allocations)
    if unchanged is not None:
        defer_heartbeat(host, root_uuid, now or common.utcnow())
    return unchanged


def report_allocations(session, host: str, root_uuid: str, generation: int,
                       allocations: dict, full: bool, now=None) -> dict:
    """Every report bumps the root's generation and writes its heartbeat.
    A full report that changes nothing is answered by ``unchanged_report``
    before it comes here (the manager, when heartbeats are coalesced)."""
    now = now or common.utcnow()
    root_id = _lock_root(session, host, root_uuid, generation, now)

    tree, generations, inventories = _read_tree(session, root_id)
    want = _want(allocations, tree, inventories,
                 lambda uuid: _foreign_owner(session, uuid, host))

    # The root's row lock (taken by the compare-and-swap above) serialises
    # every writer of this tree's allocations, so what is read now stays true
    # until commit.  A full report reads them all; an incremental one those
    # of its consumers.
    have: dict = {}
    consumer_ids: dict = {}
    claims: set = set()
    found = (_TREE_ALLOCATIONS.rows(session, {'b_root_id': root_id}) if full
             else _REPORTED_ALLOCATIONS.rows(session, {
                 'b_root_id': root_id, 'b_uuids': sorted(allocations)}))
    for c_uuid, c_id, rp_id, rc, n, rest_claim in found:
        have.setdefault(c_uuid, {})[(rp_id, rc)] = n
        consumer_ids[c_uuid] = c_id
        if rest_claim:
            claims.add(c_uuid)

    # REST claims the host does not report stay (they are their REST
    # writer's); those it reports become its own, rewritten even if the
    # amounts are the same.
    new_state = ({**_kept(have, claims, want), **want} if full
                 else {**have, **want})
    if full:
        # Recomputed from every allocation: this also heals any drift.
        old_usage, new_usage = _usage(have), _usage(new_state)
    else:
        # The stored usage (kept current by every write, in the transaction
        # that writes) with the reported consumers' old amounts swapped for
        # their new ones.
        old_usage = {key: inv.used for key, inv in inventories.items()}
        before, after = _usage(have), _usage(want)
        new_usage = {key: used - before.get(key, 0) + after.get(key, 0)
                     for key, used in old_usage.items()}
    for key, used in sorted(new_usage.items()):
        inv = inventories[key]
        if used > inv.capacity and used > old_usage.get(key, 0):
            rp_uuid = next(u for u, i in tree.items() if i == key[0])
            raise exception.AllocationCapacityExceeded(
                reason=f'{key[1]} on provider {rp_uuid}: {used} requested '
                       f'in total, capacity {inv.capacity}')

    changed = sorted(c for c in set(have) | set(new_state)
                     if have.get(c, {}) != new_state.get(c, {})
                     or (c in claims and c in want))
    if changed:
        touched = {rp_id for c in changed
                   for rows in (have.get(c, {}), new_state.get(c, {}))
                   for rp_id, _rc in rows}
        _write(session, allocations, have, new_state, changed,
               list(tree.values()), consumer_ids)
        children = touched - {root_id}
        if children:
            _BUMP_CHILDREN.run(session, {'b_ids': sorted(children)})
            for rp_id in children:
                generations[rp_id] += 1
    # inventories.used is what the candidate query reads: set from the usage
    # just computed wherever it differs.
    drift = [(inv.inv_id, new_usage.get(key, 0))
             for key, inv in inventories.items()
             if inv.used != new_usage.get(key, 0)]
    if drift:
        usage_ops.set_used(session, drift)
    return {uuid: generations[rp_id] for uuid, rp_id in tree.items()}


def _write(session, allocations, have, new_state, changed, tree_ids,
           known_ids) -> None:
    incoming = [c for c in changed if new_state.get(c)]
    # Consumers: created, or their generation bumped, ids returned: one
    # statement.  An upsert also survives another host creating or deleting
    # the same consumer (a move) at the same moment.
    consumer_ids = {}
    if incoming:
        consumer_ids = _upsert_consumers(session, [
            {'uuid': c, 'project_id': allocations[c]['project_id'],
             'user_id': allocations[c]['user_id'], 'generation': 0}
            for c in incoming])
    leaving = [c for c in changed if c in have and c not in consumer_ids]
    consumer_ids.update((c, known_ids[c]) for c in leaving)
    old_ids = [consumer_ids[c] for c in changed if c in have]
    rows = [{'resource_provider_id': rp_id, 'consumer_id': consumer_ids[c],
             'resource_class': rc, 'used': n}
            for c in incoming for (rp_id, rc), n in new_state[c].items()]
    # One by one, not in a psycopg pipeline: its machinery cost the process
    # more CPU than the round trips it saved.  (Leaving consumers are not
    # incoming ones, so the allocations inserted afterwards never belong to
    # them.)
    if old_ids:
        _DELETE_ALLOCATIONS.run(session, {'b_rp_ids': tree_ids,
                                          'b_consumer_ids': old_ids})
    if leaving:
        leaving_ids = {'b_ids': [consumer_ids[c] for c in leaving]}
        _DELETE_UNUSED_CONSUMERS.run(session, leaving_ids)
        _BUMP_LEAVING_CONSUMERS.run(session, leaving_ids)
    if rows:
        # Every row in one INSERT (common.Direct).
        _INSERT_ALLOCATION.run(session, rows)
