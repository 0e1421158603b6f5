"""What the ledger's records hold, and usage as their sum.

:func:`holdings` is the one rule of what a record holds: resources, NUMA
cells and PCI devices, under which placement consumer.  :class:`Usage` is
the sum of the holdings of a ledger.  Its only mutator, :meth:`Usage.apply`,
moves it from one ledger to the next by the difference of the holdings of the
records that changed, so it always equals what a rebuild from the records
would give: there is nothing that can drift (DESIGN.md principle 7).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Iterable, Optional

from nova_rt import exception
from nova_rt.compute import claims
from nova_rt.compute import ledger as ledger_mod
from nova_rt.hardware import numa
from nova_rt.pci import device as pcidev

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Holding:
    """One claim that counts on this host."""
    #: Names the claim, also in the PCI device tracker; stays the same when a
    #: claim passes from a migration to its instance.
    key: str
    #: The placement consumer: the instance, or the migration for the
    #: destination (and the departed source) side of a move.
    consumer: str
    instance_uuid: str
    project_id: str
    user_id: str
    resources: tuple = ()           # sorted (rc, amount) pairs
    numa_topology: Optional[dict] = None
    pci_devices: tuple = ()         # claim views of the devices
    pci_status: str = pcidev.CLAIMED

    @property
    def pci_addresses(self) -> frozenset:
        return frozenset(d['address'] for d in self.pci_devices)


def _holding(key, consumer, instance, resources=None, numa_topology=None,
             pci_devices=(), pci_status=pcidev.CLAIMED) -> Holding:
    return Holding(key=key, consumer=consumer, instance_uuid=instance.uuid,
                   project_id=instance.project_id, user_id=instance.user_id,
                   resources=tuple(sorted((resources or {}).items())),
                   numa_topology=numa_topology,
                   pci_devices=tuple(pci_devices), pci_status=pci_status)


def holdings(record) -> tuple:
    """What ``record`` (an instance or a migration record) holds here."""
    if isinstance(record, claims.InstanceRecord):
        # Devices are claimed while the guest builds, allocated once it runs.
        running = record.instance.vm_state != 'building'
    elif record.in_progress:
        # A move's devices are claimed until it finishes; those a departed
        # instance left behind stay as they were, allocated.
        running = record.finished or record.outbound
    else:
        return ()
    status = pcidev.ALLOCATED if running else pcidev.CLAIMED
    inst, claim = record.instance, record.claim
    held = []
    if claim is not None:
        held.append(_holding(claim.claim_id, record.uuid, inst, claim.resources,
                             claim.numa_topology, claim.pci_devices, status))
    for req in record.pci_requests:
        held.append(_holding(req.claim_id, record.uuid, inst,
                             pci_devices=req.devices, pci_status=status))
    return tuple(held)


def ledger_holdings(ledger: ledger_mod.Ledger) -> Iterable[Holding]:
    for rec in ledger.instances.values():
        yield from holdings(rec)
    for rec in ledger.migrations.values():
        yield from holdings(rec)


def _touched_holdings(ledger, instance_uuids, migration_uuids) -> dict:
    found = {}
    for uuid in instance_uuids:
        rec = ledger.instances.get(uuid)
        if rec is not None:
            found.update((h.key, h) for h in holdings(rec))
    for uuid in migration_uuids:
        rec = ledger.migrations.get(uuid)
        if rec is not None:
            found.update((h.key, h) for h in holdings(rec))
    return found


class Usage:
    """The sum of a ledger's holdings: per resource class, per NUMA cell,
    per PCI device (through ``pci``, the node's PciDeviceTracker), and per
    placement consumer.  Not thread-safe: the tracker calls it under its lock.
    """

    def __init__(self, pci, cells: Iterable = ()):
        self.pci = pci
        self.cells = list(cells)
        self.resources = collections.Counter()
        self.cell_usage = numa.empty_usage(self.cells)
        self._held: dict = {}                # key -> Holding
        self._by_consumer: dict = collections.defaultdict(set)

    # -- reads ----------------------------------------------------------------

    def allocations(self) -> dict:
        """consumer -> {project_id, user_id, resources, pci_devices}."""
        result = {}
        for consumer, keys in self._by_consumer.items():
            held = [self._held[k] for k in sorted(keys)]
            resources = collections.Counter()
            for h in held:
                resources.update(dict(h.resources))
            result[consumer] = {
                'project_id': held[0].project_id, 'user_id': held[0].user_id,
                'resources': dict(+resources),
                'pci_devices': [d for h in held for d in h.pci_devices]}
        return result

    # -- the one mutator ------------------------------------------------------

    def apply(self, old: ledger_mod.Ledger, new: ledger_mod.Ledger,
              change: ledger_mod.Change) -> None:
        """Move usage from ``old`` to ``new`` (= ``old.apply(change)``)."""
        instance_uuids, migration_uuids = change.touched()
        before = _touched_holdings(old, instance_uuids, migration_uuids)
        after = _touched_holdings(new, instance_uuids, migration_uuids)
        gone = [h for k, h in before.items() if after.get(k) != h]
        come = [h for k, h in after.items() if before.get(k) != h]
        for h in gone:
            self._count(h, -1)
        for h in come:
            self._count(h, +1)
        self._move_pci(before, after)

    def rebuild(self, ledger: ledger_mod.Ledger,
                cells: Optional[Iterable] = None) -> None:
        """Count again from the records (at load, or on a new host topology)."""
        if cells is not None:
            self.cells = list(cells)
        self.resources = collections.Counter()
        self.cell_usage = numa.empty_usage(self.cells)
        self._held, self._by_consumer = {}, collections.defaultdict(set)
        for h in ledger_holdings(ledger):
            self._count(h, +1)

    def restore_pci(self) -> None:
        """Re-own the devices of every holding (at load), tolerating devices
        that left the bus: they stay owned and ``removed``."""
        for h in self._held.values():
            if h.pci_devices:
                self.pci.restore(h.instance_uuid, h.key, list(h.pci_devices),
                                 h.pci_status)

    def _count(self, h: Holding, sign: int) -> None:
        for rc, amount in h.resources:
            self.resources[rc] += sign * amount
        if h.numa_topology and self.cells:
            try:
                numa.add_usage(self.cell_usage, h.numa_topology, sign)
            except exception.NovaRtException as exc:
                # A topology from before a host change: usage stays per node.
                LOG.warning('NUMA usage of %s not applied: %s', h.consumer, exc)
        if sign > 0:
            self._held[h.key] = h
            self._by_consumer[h.consumer].add(h.key)
        else:
            self._held.pop(h.key, None)
            keys = self._by_consumer.get(h.consumer)
            if keys is not None:
                keys.discard(h.key)
                if not keys:
                    del self._by_consumer[h.consumer]

    def _move_pci(self, before: dict, after: dict) -> None:
        """Per claim key: free the devices it no longer holds, give it the
        new ones, and mark them allocated once the guest runs."""
        for key in before.keys() | after.keys():
            old, new = before.get(key), after.get(key)
            had = old.pci_addresses if old else frozenset()
            has = new.pci_addresses if new else frozenset()
            if had - has:
                self.pci.free(claim_key=key, addresses=sorted(had - has))
            if has - had:
                self.pci.allocate(new.instance_uuid, key, sorted(has - had),
                                  pcidev.CLAIMED)
            if has and new.pci_status == pcidev.ALLOCATED:
                self.pci.mark_allocated(key)
