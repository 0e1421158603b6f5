"""The tracker's ledger: every record of this node, frozen.

The ledger is the tracker's whole state about instances and migrations
(DESIGN.md principle 7).  It is never changed in place: a transition returns
a :class:`Change`, and ``ledger.apply(change)`` is a new ledger.  A reference
to a ledger is therefore a consistent snapshot that can be read without the
tracker's lock.  What the records hold on the host is derived from them
(``accounting``); nothing else is kept.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Iterator, Mapping, Optional

from nova_rt.compute import claims

InstanceRecord = claims.InstanceRecord
MigrationRecord = claims.MigrationRecord

_EMPTY: Mapping = types.MappingProxyType({})

#: How long an ended migration is remembered, so that repeating the call
#: that ended it succeeds and changes nothing.
ENDED_TTL = 7 * 86400
#: How many ended migrations are remembered at most, whatever their age: a
#: node that ends thousands of moves a day keeps a bounded memory and store.
ENDED_MAX = 5000


@dataclasses.dataclass(frozen=True)
class Change:
    """What one transition does: records written and dropped.

    ``result`` is what the RPC call returns; ``log`` is a line for the
    operator (``None`` for no line), written once the change is durable.
    """
    put_instances: tuple = ()       # InstanceRecord
    put_migrations: tuple = ()      # MigrationRecord
    drop_instances: tuple = ()      # uuids
    drop_migrations: tuple = ()     # uuids
    result: object = None
    log: Optional[str] = None

    def __bool__(self) -> bool:
        return bool(self.put_instances or self.put_migrations
                    or self.drop_instances or self.drop_migrations)

    def touched(self) -> tuple:
        """(instance uuids, migration uuids) this change writes or drops."""
        return ({r.uuid for r in self.put_instances} | set(self.drop_instances),
                {r.uuid for r in self.put_migrations} | set(self.drop_migrations))


@dataclasses.dataclass(frozen=True)
class Ledger:
    instances: Mapping[str, InstanceRecord] = dataclasses.field(
        default_factory=lambda: _EMPTY)
    migrations: Mapping[str, MigrationRecord] = dataclasses.field(
        default_factory=lambda: _EMPTY)
    #: The last migration sequence number given out.
    seq: int = 0

    @classmethod
    def from_records(cls, instances, migrations) -> 'Ledger':
        migrations = sorted(migrations, key=lambda r: r.seq)
        return cls(
            instances=types.MappingProxyType({r.uuid: r for r in instances}),
            migrations=types.MappingProxyType({r.uuid: r for r in migrations}),
            seq=max((r.seq for r in migrations), default=0))

    def apply(self, change: Change) -> 'Ledger':
        return Ledger(
            instances=_patched(self.instances, change.drop_instances,
                               change.put_instances),
            migrations=_patched(self.migrations, change.drop_migrations,
                                change.put_migrations),
            seq=max([self.seq] + [r.seq for r in change.put_migrations]))

    # -- reads ----------------------------------------------------------------

    def moves_of(self, instance_uuid: str) -> list:
        """The migrations of an instance still in progress here, oldest first."""
        return [r for r in self.migrations.values()
                if r.migration.instance_uuid == instance_uuid and r.in_progress]

    def in_progress(self) -> Iterator[MigrationRecord]:
        return (r for r in self.migrations.values() if r.in_progress)

    def moving_instances(self) -> set:
        return {r.migration.instance_uuid for r in self.in_progress()}


def _patched(records: Mapping, drops, puts) -> Mapping:
    """``records`` without ``drops`` and with ``puts``; itself if untouched,
    so that an unchanged half of the ledger is shared, not copied."""
    if not drops and not puts:
        return records
    patched = records.copy()        # the dict's own copy, not item by item
    for uuid in drops:
        patched.pop(uuid, None)
    for rec in puts:
        patched[rec.uuid] = rec
    return types.MappingProxyType(patched)


def back_to(durable: Ledger, changes) -> Change:
    """The change that puts every record ``changes`` touched back as it is
    in ``durable``: applied to ``durable.apply(changes...)``, it gives
    ``durable`` again (the undoing of writes whose commit failed)."""
    instances, migrations = set(), set()
    for change in changes:
        touched = change.touched()
        instances |= touched[0]
        migrations |= touched[1]
    return Change(
        put_instances=tuple(durable.instances[u] for u in sorted(instances)
                            if u in durable.instances),
        drop_instances=tuple(u for u in sorted(instances)
                             if u not in durable.instances),
        put_migrations=tuple(durable.migrations[u] for u in sorted(migrations)
                             if u in durable.migrations),
        drop_migrations=tuple(u for u in sorted(migrations)
                              if u not in durable.migrations))


def prune_ended(ledger: Ledger, now: float, ttl: Optional[float] = None,
                keep: Optional[int] = None) -> Change:
    """Forget ended migrations older than ``ttl``, and all but the newest
    ``keep`` of them.  Called with a little slack (see the tracker) so that
    the sort runs once per many ended moves, not on every one."""
    ttl = ENDED_TTL if ttl is None else ttl
    keep = ENDED_MAX if keep is None else keep
    ended = sorted((r for r in ledger.migrations.values() if r.ended),
                   key=lambda r: r.ended_at)
    drop = [r.uuid for r in ended if r.ended_at < now - ttl]
    survivors = len(ended) - len(drop)
    if survivors > keep:
        drop.extend(r.uuid for r in ended[len(drop):len(drop) + survivors - keep])
    return Change(drop_migrations=tuple(drop))
