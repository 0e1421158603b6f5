"""The resource tracker shell: a lock, a ledger, and one apply.

Every RPC verb is a pure transition (``transitions``, ``moves``) from
(ledger, host view, context, request) to a ``ledger.Change``.  This shell
parses the request (``payloads``), runs the transition under one short lock,
swaps the new ledger in, moves usage by the difference
(``accounting.Usage.apply``) and queues the change for the local store;
then, without the lock, the caller waits until the change is durable and
only then hears yes.  Usage is derived from the records, never kept by hand
(DESIGN.md principle 7).

Durability (principle 4) with group commit (``groupcommit``): changes made
while a commit is under way are written together in the next transaction,
so concurrent claims share an fsync and a lone claim commits at once.  The
ledger in memory runs ahead of the store by the changes not yet durable, so
that a later claim sees an earlier one and capacity is never granted twice;
nobody hears of such a change before it is durable: its own caller, a call
that answers from it (an idempotent retry), and a reader (``get_host_state``,
the report to placement) all wait for it.  When a commit fails, every change
not yet durable is undone in memory before any of their callers hears the
error, and memory is again exactly what the store holds.

Locking (principle 2): a claim takes the lock, fits on in-memory data and
swaps; it never waits for libvirt, udev, placement or the disk under it.  The
audit gathers from libvirt and udev without the lock, judges a ledger
snapshot (``reconcile``), and only swaps its result in under the lock.  A
failed check leaves the tracker exactly as it was; a failed write leaves it
as the store is.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import threading
import time
import uuid as uuidlib
from typing import Callable, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import accounting
from nova_rt.compute import claims
from nova_rt.compute import groupcommit
from nova_rt.compute import ledger as ledger_mod
from nova_rt.compute import moves
from nova_rt.compute import node as node_mod
from nova_rt.compute import payloads
from nova_rt.compute import reconcile
from nova_rt.compute import store as store_mod
from nova_rt.compute import transitions
from nova_rt.compute import usage
from nova_rt.compute import view as view_mod
from nova_rt.pci import manager as pci_manager

LOG = logging.getLogger(__name__)

TrackerConfig = node_mod.TrackerConfig
ENDED_MIGRATION_TTL = ledger_mod.ENDED_TTL
#: Ended migrations are pruned once there are a tenth more than the bound,
#: so that the sort runs once per few hundred ended moves.
_PRUNE_SLACK = ledger_mod.ENDED_MAX // 10
#: How often the audit gives the store's freed pages back and truncates its
#: WAL when nothing was pruned (it does so after every prune).
COMPACT_INTERVAL = 600.0
#: How many times a read is made again when a write it saw failed.
_READ_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class _Write:
    """A change on its way to the store: what to write, and the ledger in
    memory once it was applied (what is durable once it is)."""
    change: ledger_mod.Change
    ledger: ledger_mod.Ledger


class ResourceTracker:
    """Claims and usage of one node; thread-safe."""

    def __init__(self, config: TrackerConfig, store: store_mod.ClaimStore,
                 host_source=None, pci_source: Optional[Callable] = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.host_source = host_source
        self.pci_source = pci_source
        self.clock = clock
        self.audit_wanted = threading.Event()
        self._lock = threading.Lock()
        self._pending_config: Optional[TrackerConfig] = None
        self._ledger = ledger_mod.Ledger()
        #: What the store holds: ``_ledger`` without the changes on their way.
        self._durable = self._ledger
        self.commits = groupcommit.GroupCommit(
            self._write, self._lock, on_durable=self._made_durable,
            on_failed=self._undo)
        self._node = node_mod.NodeState()
        self._pci = pci_manager.PciDeviceTracker(list(config.pci_specs))
        self._usage = accounting.Usage(self._pci)
        self._hypervisor_connected = False
        self._unmanaged: list = []          # DomainInfo
        self._host_used: dict = {}          # what the unmanaged ones take
        self._missing: dict = {}            # instance uuid -> audits absent
        self._change_seq = 0                # every state change
        self._view_version = 0              # changes placement should hear of
        self._placement_view = None         # (version, view) last computed
        #: Audits whose judgement had to be made again under the lock.
        self.reconciled_under_lock = 0
        self._last_audit: Optional[dict] = None
        self._last_discovered = None        # the PCI bus as the last audit saw it
        self._compacted_at = time.monotonic()

    # ------------------------------------------------------------------ start

    def load(self) -> None:
        """Restore the last known host and every record from the store.

        PCI devices are discovered first (when a source is given) so that
        restored claims find their devices; a device gone from the bus stays
        owned and is marked removed.
        """
        host = self.store.get_meta('host_info')
        oldest = self.clock() - ENDED_MIGRATION_TTL
        # The store forgets first, so that memory and the store remember
        # the same ended migrations.
        self.store.prune_ended_migrations(oldest)
        instances, migrations = self.store.load()
        discovered = self._gather_pci()
        ledger = ledger_mod.Ledger.from_records(
            [claims.InstanceRecord.from_dict(d) for d in instances],
            [rec for rec in map(claims.MigrationRecord.from_dict, migrations)
             if rec.ended_at is None or rec.ended_at >= oldest])
        with self._lock:
            if discovered is not None:
                self._pci.set_devices(discovered)
                self._last_discovered = discovered
            if host:
                self._node = node_mod.NodeState.of(_host_from_dict(host),
                                                   self.config)
            self._ledger = self._durable = ledger
            self._usage.rebuild(ledger, self._node.cells)
            self._usage.restore_pci()
            self._bump()
        LOG.info('Loaded %d instances and %d migrations from the local store',
                 len(instances), len(migrations))

    # ------------------------------------------------------------ the one apply

    def _view(self) -> node_mod.HostView:
        used = collections.Counter(self._usage.resources)
        used.update(self._host_used)
        return node_mod.HostView(
            config=self.config, node=self._node, used=used,
            cell_usage=self._usage.cell_usage, pci=self._pci,
            host_used=self._host_used, unmanaged_domains=len(self._unmanaged))

    def _run(self, transition, **request):
        with self._lock:
            context = transitions.Context(now=self.clock(), new_id=_new_id)
            change = transition(self._ledger, self._view(), context, **request)
            # A change of nothing may answer from a change not durable yet
            # (a retried claim): it waits for that one too.
            ticket = self._apply(change) or self.commits.pending()
        if ticket is not None:
            self.commits.wait(ticket)
        if change.log:
            LOG.info('%s', change.log)
        return change.result

    def _apply(self, change: ledger_mod.Change):
        """Swap ``change`` in and queue it for the store, under the lock;
        the ticket to wait for (outside the lock) before telling anyone."""
        if not change:
            return None
        old = self._ledger
        new = old.apply(change)
        self._usage.apply(old, new, change)
        self._ledger = new
        for uuid in change.drop_instances:
            self._missing.pop(uuid, None)
        self._bump()
        ticket = self.commits.submit(_Write(change, new))
        if len(new.migrations) > ledger_mod.ENDED_MAX + _PRUNE_SLACK:
            ticket = self._apply(ledger_mod.prune_ended(new, self.clock())) \
                or ticket
        return ticket

    def _read(self, read: Callable):
        """``read()`` under the lock, returned once what it saw is durable;
        read again if a write it saw failed (and was undone)."""
        for attempt in range(_READ_ATTEMPTS):
            with self._lock:
                result = read()
                ticket = self.commits.pending()
            if ticket is None:
                return result
            try:
                self.commits.wait(ticket)
                return result
            except exception.ComputeResourcesUnavailable:
                if attempt == _READ_ATTEMPTS - 1:
                    raise

    # ------------------------------------------------------------ the store

    def _write(self, writes: list) -> None:
        """One transaction for a group (``groupcommit``); no lock held."""
        self.store.apply(store_mod.Changes.merged(
            [_store_changes(w.change) for w in writes]))

    def _made_durable(self, writes: list) -> None:
        self._durable = writes[-1].ledger

    def _undo(self, writes: list, error: BaseException) -> None:
        """A commit failed: memory back to what the store holds (under the
        lock, before any caller of ``writes`` hears the error)."""
        durable, current = self._durable, self._ledger
        back = ledger_mod.back_to(durable, [w.change for w in writes])
        self._usage.apply(current, durable, back)
        self._ledger = durable
        self._bump()
        LOG.warning('%d changes were not written to the local store and are '
                    'undone, their callers told so: %s', len(writes), error)

    def _bump(self) -> None:
        self._change_seq += 1
        self._view_version += 1

    # ============================================================ instances

    def instance_claim(self, instance: dict, nodename: Optional[str] = None) -> dict:
        return self._run(transitions.instance_claim,
                         instance=payloads.instance(instance), nodename=nodename)

    def abort_instance_claim(self, instance_uuid: str) -> None:
        return self._run(transitions.abort_instance_claim,
                         instance_uuid=instance_uuid)

    def update_instance(self, instance_uuid: str, vm_state: str,
                        task_state: Optional[str] = None) -> None:
        return self._run(transitions.update_instance,
                         instance_uuid=instance_uuid, vm_state=vm_state,
                         task_state=task_state)

    def claim_pci_devices(self, instance_uuid: str, alias_counts: dict,
                          request_id: str) -> list:
        return self._run(transitions.claim_pci_devices,
                         instance_uuid=instance_uuid,
                         alias_counts=dict(alias_counts), request_id=request_id)

    def free_pci_devices(self, instance_uuid: str, addresses: list) -> None:
        return self._run(transitions.free_pci_devices,
                         instance_uuid=instance_uuid, addresses=list(addresses))

    # ================================================================ moves

    def resize_claim(self, instance: dict, migration: dict) -> dict:
        return self._run(moves.resize_claim, instance=payloads.instance(instance),
                         migration=payloads.migration(migration))

    def rebuild_claim(self, instance: dict, migration: dict) -> dict:
        return self._run(moves.rebuild_claim,
                         instance=payloads.instance(instance),
                         migration=payloads.migration(migration))

    def live_migration_claim(self, instance: dict, migration: dict) -> dict:
        return self._run(moves.live_migration_claim,
                         instance=payloads.instance(instance),
                         migration=payloads.migration(migration),
                         page_size_kb=payloads.source_page_size_kb(instance))

    def update_migration(self, migration_uuid: str, status: str,
                         migration: Optional[dict] = None) -> None:
        return self._run(moves.update_migration, migration_uuid=migration_uuid,
                         status=status, migration=payloads.migration(migration))

    def drop_move_claim_at_source(self, migration: dict) -> None:
        return self._run(moves.drop_move_claim_at_source,
                         migration=payloads.migration(migration))

    def drop_move_claim_at_dest(self, migration_uuid: str) -> None:
        return self._run(moves.drop_move_claim_at_dest,
                         migration_uuid=migration_uuid)

    def abort_move_claim(self, migration_uuid: str) -> None:
        return self._run(moves.abort_move_claim, migration_uuid=migration_uuid)

    def finish_move(self, migration_uuid: str) -> None:
        return self._run(moves.finish_move, migration_uuid=migration_uuid)

    # ================================================================= audit

    def _gather_pci(self):
        if self.pci_source is None:
            return None
        try:
            return list(self.pci_source())
        except Exception:   # udev trouble degrades only the PCI part
            LOG.exception('PCI discovery failed; keeping the last known devices')
            return None

    def _gather_host(self):
        if self.host_source is None:
            return None, None
        try:
            host = self.host_source.get_host_info()
            domains = self.host_source.list_domains()
        except exception.HypervisorUnavailable as exc:
            if self._hypervisor_connected:
                LOG.warning('Audit: libvirt unreachable (%s); serving claims '
                            'from the last known inventory', exc)
            self._hypervisor_connected = False
            return None, None
        except Exception:
            LOG.exception('Audit: reading the host from libvirt failed')
            self._hypervisor_connected = False
            return None, None
        self._hypervisor_connected = True
        return host, domains

    def _judge(self, domains: list, periodic: bool) -> tuple:
        """(snapshot, missing before, judgement) of ``domains`` against a
        snapshot of the ledger, made without the lock.

        The audit swaps the judgement in only if the ledger is still that
        snapshot, and otherwise judges again under the lock.  Under a stream
        of claims the ledger moves every few milliseconds, so that would be
        most audits, each holding every claim behind a walk of all the
        domains: the judgement is made again, still without the lock, while
        the ledger moved during it (up to ``_JUDGE_ATTEMPTS`` times).
        """
        for _ in range(_JUDGE_ATTEMPTS):
            with self._lock:
                snapshot, missing_before = self._ledger, dict(self._missing)
            judged = _judgement(snapshot, domains, missing_before, periodic)
            if self._ledger is snapshot:     # checked again under the lock
                break
        return snapshot, missing_before, judged

    def run_audit(self, periodic: bool = True) -> dict:
        """Reconcile with libvirt and udev; return the contract's summary.

        ``periodic``: False for an audit brought forward by events, which
        does not count towards a domain being missing.
        """
        started = time.monotonic()
        host, domains = self._gather_host()
        discovered = self._gather_pci()
        if discovered is not None and discovered == self._last_discovered:
            # Same bus as last time (compared outside the lock): nothing to
            # reconcile; hotplug events are applied as they come.
            discovered = None
        with self._lock:
            if self._pending_config is not None:
                self._apply_config(self._pending_config)
        snapshot = missing_before = judged = None
        if domains is not None:
            snapshot, missing_before, judged = self._judge(domains, periodic)
        changed = False
        with self._lock:
            if host is not None and host != self._node.host:
                try:
                    self._set_node(host)
                    changed = True
                except exception.ConfigError as exc:
                    LOG.error('Audit: host not usable with this configuration '
                              '(%s); keeping the last known inventory', exc)
                    host = None
            if discovered is not None:
                changed = self._pci.set_devices(discovered) or changed
                self._last_discovered = discovered
            if judged is not None:
                if self._ledger is not snapshot:
                    # Calls made since the snapshot explain their domains too.
                    self.reconciled_under_lock += 1
                    judged = _judgement(self._ledger, domains, missing_before,
                                        periodic)
                unmanaged, self._missing, host_used = judged
                changed = changed or host_used != self._host_used
                self._unmanaged, self._host_used = unmanaged, host_used
            if changed:
                self._bump()
            prune = ledger_mod.prune_ended(self._ledger, self.clock())
            pruned = self._apply(prune)
            missing = reconcile.missing_domains(
                self._ledger, self._missing, self.config.missing_domain_audits)
            summary = {
                'duration_s': round(time.monotonic() - started, 6),
                'instances': len(self._ledger.instances),
                'migrations': sum(1 for _ in self._ledger.in_progress()),
                'unmanaged_domains': len(self._unmanaged),
                'missing_domains': len(missing),
                'pci_devices': self._pci.count(),
                'changed': changed,
                'reported': False,
            }
            self._last_audit = {'at': _iso(self.clock()),
                                'duration_s': summary['duration_s']}
        if pruned is not None:
            self.commits.wait(pruned)
        if host is not None and changed:
            self.store.set_meta('host_info', host.to_dict())
        if prune or time.monotonic() - self._compacted_at >= COMPACT_INTERVAL:
            # Outside the lock: a few ms of the store's own lock.
            self._compacted_at = time.monotonic()
            self.store.compact()
        if missing:
            LOG.warning('Audit: %d instances hold claims but have no domain '
                        'here (kept, not freed): %s', len(missing),
                        ', '.join(missing[:10]))
        return summary

    def _set_node(self, host: objects.HostInfo) -> None:
        """A new host or new options: the node again, usage recounted."""
        self._node = node_mod.NodeState.of(host, self.config)
        self._usage.rebuild(self._ledger, self._node.cells)
        over = [f'{rc} reserved {inv.reserved} of {inv.total}'
                for rc, inv in sorted(self._node.inventory.items())
                if inv.reserved > inv.total]
        if over:
            # Not a start-up error (the contract: free figures go negative,
            # claims are refused), but nothing will fit here.
            LOG.error('Reserved amounts larger than the host: %s; no claim '
                      'of those classes fits, and placement is sent reserved '
                      '= total', ', '.join(over))

    def pci_event(self, action: str, device, address: str) -> None:
        """udev hotplug: apply now, and ask for an early audit."""
        with self._lock:
            if self._pci.handle_event(action, device, address):
                self._bump()
        self.audit_wanted.set()

    # ============================================================ config

    def apply_config(self, config: TrackerConfig) -> None:
        """New options (SIGHUP); they take effect at the next audit."""
        with self._lock:
            self._pending_config = config
        self.audit_wanted.set()

    def set_allocation_ratios(self, ratios: dict) -> None:
        with self._lock:
            config = self._pending_config or self.config
            self._apply_config(dataclasses.replace(
                config, allocation_ratios=dict(ratios)))

    def _apply_config(self, config: TrackerConfig) -> None:
        self._pending_config = None
        if config == self.config:
            return
        old = self.config
        self.config = config
        if self._node.host is not None:
            try:
                self._set_node(self._node.host)
            except exception.ConfigError as exc:
                LOG.error('New configuration refused: %s', exc)
                self.config = old
                self._set_node(self._node.host)
                return
        self._bump()

    # ============================================================ views

    def get_host_state(self) -> dict:
        return view_mod.host_state(self._read(self._snapshot))

    def _snapshot(self) -> view_mod.Snapshot:
        """What get_host_state shows; under the lock."""
        node = self._node
        return view_mod.Snapshot(
            config=self.config, host=node.host,
            # The source hears at once that libvirt is gone; audits, later.
            connected=(self._hypervisor_connected
                       and getattr(self.host_source, 'connected', True)),
            uri=getattr(self.host_source, 'uri', None),
            inventory=dict(node.inventory),
            used=dict(self._view().used),
            instances=list(self._ledger.instances.values()),
            migrations=list(self._ledger.migrations.values()),
            cells=list(node.cells),
            cell_usage={k: dataclasses.replace(
                v, pinned_cpus=set(v.pinned_cpus),
                pages_used=dict(v.pages_used))
                for k, v in self._usage.cell_usage.items()},
            unmanaged=list(self._unmanaged),
            missing=reconcile.missing_domains(
                self._ledger, self._missing,
                self.config.missing_domain_audits),
            pci_pools=self._pci.pools(),
            pci_devices=self._pci.devices(),
            last_audit=dict(self._last_audit) if self._last_audit else None)

    def placement_view(self) -> tuple:
        """(version, view) for the reporter; version moves on every change.
        Placement hears of durable claims only.

        The view is computed once per version (every change bumps it) and
        kept: an audit that changed nothing reports nothing, and should not
        have to build the view to find that out.  Callers do not change it.
        """
        kept, parts = self._read(self._placement_parts)
        if kept is not None:
            return kept
        version, allocations, claims_used, host_used, pci_devices, config, \
            node = parts
        computed = version, view_mod.placement_view(
            config, node.host, dict(node.inventory), allocations, claims_used,
            host_used, pci_devices)
        self._placement_view = computed
        return computed

    def _placement_parts(self) -> tuple:
        """(the view kept for this version, None) or (None, what
        placement_view shows); under the lock."""
        kept = self._placement_view
        if kept is not None and kept[0] == self._view_version:
            return kept, None
        return None, (self._view_version, self._usage.allocations(),
                      dict(self._usage.resources), dict(self._host_used),
                      self._pci.devices() if self.config.report_pci_in_placement
                      else [], self.config, self._node)


#: Judgements of an audit made without the lock before one is made with it.
_JUDGE_ATTEMPTS = 3


def _judgement(ledger, domains, missing_before, periodic) -> tuple:
    """(unmanaged domains, missing instances, what the unmanaged take)."""
    unmanaged, missing = reconcile.reconcile(ledger, domains, missing_before,
                                             periodic)
    return unmanaged, missing, usage.unmanaged_usage(unmanaged)


def _new_id() -> str:
    return str(uuidlib.uuid4())


def _store_changes(change: ledger_mod.Change) -> store_mod.Changes:
    changes = store_mod.Changes()
    for uuid in change.drop_instances:
        changes.delete_instance(uuid)
    for uuid in change.drop_migrations:
        changes.delete_migration(uuid)
    for rec in change.put_instances:
        changes.put_instance(rec)
    for rec in change.put_migrations:
        changes.put_migration(rec)
    return changes


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).isoformat()


def _host_from_dict(data: dict) -> objects.HostInfo:
    cells = tuple(
        objects.HostNumaCell(
            id=c['id'], cpus=frozenset(c['cpus']), memory_mb=c['memory_mb'],
            siblings=tuple(frozenset(s) for s in c.get('siblings', ())),
            mempages=tuple(objects.MemPagePool(**p) for p in c.get('mempages', ())),
            socket_id=c.get('socket_id'))
        for c in data.get('numa_cells', ()))
    return objects.HostInfo(
        hostname=data['hostname'], hypervisor_type=data['hypervisor_type'],
        hypervisor_version=data['hypervisor_version'], uri=data['uri'],
        online_cpus=frozenset(data['online_cpus']),
        memory_mb=data['memory_mb'], disk_total_gb=data['disk_total_gb'],
        disk_used_gb=data['disk_used_gb'], numa_cells=cells,
        cpu_model=data.get('cpu_model'),
        cpu_features=frozenset(data.get('cpu_features', ())))
