"""The resource tracker: claims, moves and the audit of one compute node.

Locking (DESIGN.md principle 2): one short lock guards the tracker's state.
A claim takes it, checks capacity, NUMA and PCI on in-memory data, writes the
change to the local store in one transaction and applies it; it never waits
for libvirt, udev or placement.  The audit gathers from libvirt and udev
without the lock, works out the new view from a snapshot, and only swaps the
result in under the lock.

Every public method mirrors a compute RPC method of the contract (same name,
same keyword arguments, JSON in and out) and expects payloads that already
passed the edge's schema validation.  Operations are written as: validate,
compute new records (pure), persist, apply — so a failed check or a failed
write leaves the tracker exactly as it was.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
import uuid as uuidlib
from typing import Callable, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import audit
from nova_rt.compute import claims as claims_mod
from nova_rt.compute import moves
from nova_rt.compute import store as store_mod
from nova_rt.compute import usage
from nova_rt.compute import view as view_mod
from nova_rt.hardware import cpu_inventory
from nova_rt.hardware import numa
from nova_rt.pci import manager as pci_manager
from nova_rt.pci import spec as pci_spec

LOG = logging.getLogger(__name__)

Claim = claims_mod.Claim
InstanceRecord = claims_mod.InstanceRecord
MigrationRecord = claims_mod.MigrationRecord

#: How long an ended migration is remembered (so that repeating the call
#: that ended it succeeds and changes nothing).
ENDED_MIGRATION_TTL = 7 * 86400


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    host: str
    node: str
    reserved_host_memory_mb: int = 512
    reserved_host_disk_mb: int = 0
    reserved_host_cpus: int = 0
    allocation_ratios: dict = dataclasses.field(
        default_factory=lambda: {usage.VCPU: 4.0, usage.MEMORY_MB: 1.0,
                                 usage.DISK_GB: 1.0})
    cpu_shared_set: Optional[frozenset] = None
    cpu_dedicated_set: Optional[frozenset] = None
    pci_specs: tuple = ()
    pci_aliases: dict = dataclasses.field(default_factory=dict)
    report_pci_in_placement: bool = False
    missing_domain_audits: int = 2

    @classmethod
    def from_conf(cls, conf, allocation_ratios: Optional[dict] = None) -> 'TrackerConfig':
        """Build from oslo.config; ``allocation_ratios`` are the effective ones.

        Without them the options are used where set, else the ``initial_*``
        values (a new provider's ratios, as Nova).
        """
        from nova_rt import conf as conf_mod
        if allocation_ratios is None:
            allocation_ratios = {
                usage.VCPU: conf.cpu_allocation_ratio or conf.initial_cpu_allocation_ratio,
                usage.MEMORY_MB: conf.ram_allocation_ratio or conf.initial_ram_allocation_ratio,
                usage.DISK_GB: conf.disk_allocation_ratio or conf.initial_disk_allocation_ratio,
            }
        shared, dedicated = conf_mod.cpu_sets(conf)
        return cls(host=conf.host, node=conf.host,
                   reserved_host_memory_mb=conf.reserved_host_memory_mb,
                   reserved_host_disk_mb=conf.reserved_host_disk_mb,
                   reserved_host_cpus=conf.reserved_host_cpus,
                   allocation_ratios=dict(allocation_ratios),
                   cpu_shared_set=frozenset(shared) if shared else None,
                   cpu_dedicated_set=frozenset(dedicated) if dedicated else None,
                   pci_specs=tuple(pci_spec.parse_device_specs(conf.pci.device_spec)),
                   pci_aliases=pci_spec.parse_aliases(conf.pci.alias),
                   report_pci_in_placement=conf.pci.report_in_placement)


class ResourceTracker(moves.MoveClaimsMixin, audit.AuditMixin):
    """Claims and usage of one node; thread-safe."""

    def __init__(self, config: TrackerConfig, store: store_mod.ClaimStore,
                 host_source=None, pci_source: Optional[Callable] = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.host_source = host_source
        self.pci_source = pci_source
        self.clock = clock
        self._lock = threading.Lock()
        self._pending_config: Optional[TrackerConfig] = None
        self.audit_wanted = threading.Event()

        self._instances: dict = {}          # uuid -> InstanceRecord
        self._migrations: dict = {}         # uuid -> MigrationRecord
        self._seq = 0
        self._host: Optional[objects.HostInfo] = None
        self._hypervisor_connected = False
        self._inventory: dict = {}
        self._cells: list = []
        self._cell_usage: dict = {}
        self._socket_of_node: dict = {}
        self._used = collections.Counter()  # what claims hold
        self._allocations: dict = {}        # consumer uuid -> placement allocation
        self._unmanaged: list = []          # DomainInfo
        self._unmanaged_used: dict = {}
        self._missing: dict = {}            # instance uuid -> consecutive audits
        self._pci = pci_manager.PciDeviceTracker(list(config.pci_specs))
        self._change_seq = 0                # every state change
        self._view_version = 0              # changes placement should hear of
        self._last_audit: Optional[dict] = None
        self._last_discovered = None        # the PCI bus as the last audit saw it
        self._pci_count = 0

    # ------------------------------------------------------------------ start

    def load(self) -> None:
        """Restore the last known host and every claim from the store.

        PCI devices are discovered first (when a source is given) so that
        restored claims find their devices; a device gone from the bus stays
        owned and is marked removed.
        """
        host = self.store.get_meta('host_info')
        instances, migrations = self.store.load()
        self.store.prune_ended_migrations(self.clock() - ENDED_MIGRATION_TTL)
        discovered = self._gather_pci()
        with self._lock:
            if discovered is not None:
                self._pci.set_devices(discovered)
                self._last_discovered = discovered
            if host:
                self._set_host(_host_from_dict(host))
            for data in instances:
                rec = InstanceRecord.from_dict(data)
                self._instances[rec.uuid] = rec
            for data in migrations:
                rec = MigrationRecord.from_dict(data)
                if rec.ended_at is not None and \
                        rec.ended_at < self.clock() - ENDED_MIGRATION_TTL:
                    continue
                self._migrations[rec.uuid] = rec
                self._seq = max(self._seq, rec.seq)
            for consumer, holder, claim in self._held_claims():
                self._pci.restore(claim.instance_uuid, claim.claim_id,
                                  list(claim.pci_devices), _pci_status(holder))
            for rec in self._instances.values():
                for req in rec.pci_requests:
                    self._pci.restore(rec.uuid, req.claim_id, list(req.devices),
                                      _pci_status(rec))
            self._rebuild_usage()
            self._pci_count = len(self._pci.devices())
            self._bump()
        LOG.info('Loaded %d instances and %d migrations from the local store',
                 len(instances), len(migrations))

    # ------------------------------------------------------------ accounting

    def _held_claims(self):
        """(consumer uuid, holder record, claim) for every claim that counts."""
        for rec in self._instances.values():
            if rec.claim is not None:
                yield rec.uuid, rec, rec.claim
        for rec in self._migrations.values():
            if rec.claim is not None and rec.in_progress:
                yield rec.uuid, rec, rec.claim

    def _rebuild_usage(self) -> None:
        """Recompute every counter from the records (load, new topology)."""
        self._used = collections.Counter()
        self._cell_usage = numa.empty_usage(self._cells)
        self._allocations = {}
        for consumer, holder, claim in self._held_claims():
            self._account(consumer, holder, claim, +1)

    def _account(self, consumer: str, holder, claim: Claim, sign: int) -> None:
        usage.add_resources(self._used, claim.resources, sign)
        if claim.numa_topology and self._cells:
            try:
                numa.add_usage(self._cell_usage, claim.numa_topology, sign)
            except exception.NovaRtException as exc:
                # A topology from before a host change: usage stays per node.
                LOG.warning('NUMA usage of %s not applied: %s', consumer, exc)
        if sign > 0:
            self._allocations[consumer] = {
                'project_id': holder.instance.project_id,
                'user_id': holder.instance.user_id,
                'resources': dict(claim.resources)}
        else:
            self._allocations.pop(consumer, None)

    def _hold(self, consumer, holder, claim) -> None:
        self._account(consumer, holder, claim, +1)
        if claim.pci_devices:
            self._pci.allocate(claim.instance_uuid, claim.claim_id,
                               [d['address'] for d in claim.pci_devices],
                               _pci_status(holder))

    def _release(self, consumer, holder, claim) -> None:
        self._account(consumer, holder, claim, -1)
        if claim.pci_devices:
            self._pci.free(claim_key=claim.claim_id)

    def _used_with_unmanaged(self) -> collections.Counter:
        used = collections.Counter(self._used)
        usage.add_resources(used, self._unmanaged_used)
        return used

    def _bump(self) -> None:
        self._change_seq += 1
        self._view_version += 1

    # ---------------------------------------------------------------- host

    def _set_host(self, host: objects.HostInfo) -> None:
        vcpus, pcpus = cpu_inventory.cpu_inventory(
            host.online_cpus, self.config.cpu_shared_set,
            self.config.cpu_dedicated_set)
        self._host = host
        self._vcpu_set, self._pcpu_set = vcpus, pcpus
        self._inventory = usage.compute_inventory(
            host, len(vcpus), len(pcpus),
            reserved_host_cpus=self.config.reserved_host_cpus,
            reserved_host_memory_mb=self.config.reserved_host_memory_mb,
            reserved_host_disk_mb=self.config.reserved_host_disk_mb,
            allocation_ratios=self.config.allocation_ratios)
        self._cells = numa.host_cells(host.numa_cells, vcpus, pcpus)
        self._socket_of_node = {c.id: c.socket_id for c in host.numa_cells
                                if c.socket_id is not None}

    def _require_host(self) -> None:
        if self._host is None:
            raise exception.HypervisorUnavailable(
                reason='no host inventory has ever been read from libvirt on '
                       'this node; claims wait until it has')

    def _check_node(self, nodename: Optional[str]) -> None:
        if nodename is not None and nodename != self.config.node:
            raise exception.NodeNotFound(nodename=nodename,
                                         node=self.config.node)

    # --------------------------------------------------------------- fitting

    def _new_claim(self, instance: objects.Instance, flavor: objects.Flavor,
                   migration_uuid: Optional[str] = None,
                   page_size_kb: Optional[int] = None,
                   extra_used: Optional[dict] = None) -> Claim:
        """Check that ``flavor`` fits now; return the claim (nothing applied)."""
        self._require_host()
        resources = usage.flavor_resources(flavor, instance.is_volume_backed)
        used = self._used_with_unmanaged()
        if extra_used:
            usage.add_resources(used, extra_used, -1)
        reasons = usage.shortfalls(resources, used, self._inventory)
        if reasons:
            raise exception.ComputeResourcesUnavailable(
                reason='; '.join(reasons))
        pci_requests = pci_spec.requests_from_flavor(
            flavor.extra_specs, self.config.pci_aliases)
        request = numa.request_from_flavor(flavor)
        if request is not None and page_size_kb is not None:
            request = dataclasses.replace(request, page_size=page_size_kb)
        topology, addresses = self._fit(request, pci_requests)
        return Claim(claim_id=str(uuidlib.uuid4()), instance_uuid=instance.uuid,
                     migration_uuid=migration_uuid, flavor=flavor,
                     resources=resources, numa_topology=topology,
                     pci_devices=tuple(self._pci_views(addresses)))

    def _fit(self, request, pci_requests) -> tuple:
        topology = None
        nodes = None
        if request is not None:
            pci_check = None
            if pci_requests:
                def pci_check(cell_ids):
                    return self._pci.select(
                        pci_requests, numa_nodes=set(cell_ids),
                        socket_of_node=self._socket_of_node) is not None
            try:
                topology = numa.fit_instance(
                    request, self._cells, self._cell_usage,
                    self.config.allocation_ratios.get(usage.VCPU, 1.0),
                    self.config.allocation_ratios.get(usage.MEMORY_MB, 1.0),
                    pci_check)
            except numa.NumaFitError as exc:
                # The contract's class name, not the subclass, crosses RPC.
                raise exception.ComputeResourcesUnavailable(
                    reason=exc.kwargs.get('reason', str(exc))) from None
            nodes = {cell['id'] for cell in topology['cells']}
        addresses = []
        if pci_requests:
            addresses = self._pci.select(pci_requests, numa_nodes=nodes,
                                         socket_of_node=self._socket_of_node)
            if addresses is None:
                wanted = ', '.join(f'{r.alias_name}:{r.count}'
                                   for r in pci_requests)
                raise exception.ComputeResourcesUnavailable(
                    reason=f'PCI devices: no free devices for {wanted}'
                           + (f' on NUMA nodes {sorted(nodes)}' if nodes else ''))
        return topology, addresses

    def _pci_views(self, addresses) -> list:
        views = []
        for address in addresses:
            dev = self._pci.get(address)
            views.append(dev.claim_view())
        return views

    # ---------------------------------------------------------- persistence

    def _commit(self, instances=(), migrations=(), drop_instances=()) -> None:
        """Write records, then make them the tracker's; under the lock."""
        changes = store_mod.Changes()
        for rec in instances:
            changes.put_instance(rec)
        for rec in migrations:
            changes.put_migration(rec)
        for uuid in drop_instances:
            changes.delete_instance(uuid)
        self.store.apply(changes)
        for rec in instances:
            self._instances[rec.uuid] = rec
        for rec in migrations:
            self._migrations[rec.uuid] = rec
        for uuid in drop_instances:
            self._instances.pop(uuid, None)
            self._missing.pop(uuid, None)
        self._bump()

    # ============================================================ instances

    def instance_claim(self, instance: dict, nodename: Optional[str] = None) -> dict:
        inst = objects.Instance.from_dict(instance)
        with self._lock:
            self._check_node(nodename)
            rec = self._instances.get(inst.uuid)
            if rec is not None:
                if not usage.same_flavor(rec.instance.flavor, inst.flavor):
                    raise exception.ClaimConflict(
                        reason=f'instance {inst.uuid} is already tracked here '
                               f'with flavor {rec.instance.flavor.name!r}')
                if rec.claim is not None:
                    return rec.claim.to_wire(self.config.host, self.config.node)
            if not objects.holds_resources(inst.vm_state, inst.task_state):
                raise exception.InvalidInput(
                    reason=f'instance.vm_state {inst.vm_state!r} with '
                           f'task_state {inst.task_state!r} holds no resources '
                           f'and cannot be claimed')
            claim = self._new_claim(inst, inst.flavor)
            new = InstanceRecord(instance=inst, claim=claim,
                                 pci_requests=rec.pci_requests if rec else ())
            self._commit(instances=[new])
            self._hold(inst.uuid, new, claim)
            LOG.info('Claimed %s for instance %s', claim.describe(), inst.uuid)
            return claim.to_wire(self.config.host, self.config.node)

    def abort_instance_claim(self, instance_uuid: str) -> None:
        with self._lock:
            rec = self._instances.get(instance_uuid)
            if rec is None:
                return None
            self._forget_instance(rec, 'failed')
            LOG.info('Aborted the claim of instance %s', instance_uuid)
        return None

    def _forget_instance(self, rec: InstanceRecord, migration_status: str) -> None:
        """Drop an instance and end its moves here: nothing of it stays held."""
        moves = [r for r in self._migrations.values()
                 if r.migration.instance_uuid == rec.uuid and r.in_progress]
        ended = [self._end(r, migration_status, claim=None) for r in moves]
        self._commit(migrations=ended, drop_instances=[rec.uuid])
        self._release_instance(rec)
        for old in moves:
            if old.claim is not None:
                self._release(old.uuid, old, old.claim)

    def _release_instance(self, rec: InstanceRecord) -> None:
        if rec.claim is not None:
            self._release(rec.uuid, rec, rec.claim)
        for req in rec.pci_requests:
            self._pci.free(claim_key=req.claim_id)

    def update_instance(self, instance_uuid: str, vm_state: str,
                        task_state: Optional[str] = None) -> None:
        with self._lock:
            rec = self._instances.get(instance_uuid)
            if rec is None:
                raise exception.InstanceNotFound(instance_uuid=instance_uuid)
            inst = dataclasses.replace(rec.instance, vm_state=vm_state,
                                       task_state=task_state)
            holds = objects.holds_resources(vm_state, task_state)
            if vm_state == 'deleted':
                self._forget_instance(rec, 'cancelled')
                return None
            elif holds and rec.claim is None:
                claim = self._new_claim(inst, inst.flavor)
                new = InstanceRecord(instance=inst, claim=claim,
                                     pci_requests=rec.pci_requests)
                self._commit(instances=[new])
                self._hold(instance_uuid, new, claim)
            elif not holds and rec.claim is not None:
                new = InstanceRecord(instance=inst, claim=None)
                self._commit(instances=[new])
                self._release_instance(rec)
            else:
                new = dataclasses.replace(rec, instance=inst)
                self._commit(instances=[new])
            if vm_state not in ('building', 'deleted'):
                # The guest runs: its devices go from claimed to allocated.
                for key in _claim_ids(new):
                    self._pci.mark_allocated(key)
        return None

    # ================================================================= PCI

    def claim_pci_devices(self, instance_uuid: str, alias_counts: dict,
                          request_id: str) -> list:
        with self._lock:
            rec = self._instances.get(instance_uuid)
            if rec is None:
                raise exception.InstanceNotFound(instance_uuid=instance_uuid)
            for req in rec.pci_requests:
                if req.request_id == request_id:
                    if req.alias_counts != dict(alias_counts):
                        raise exception.ClaimConflict(
                            reason=f'PCI request {request_id} was made with '
                                   f'other aliases: {req.alias_counts}')
                    return [dict(d) for d in req.devices]
            policy = rec.instance.flavor.extra_specs.get(
                'hw:pci_numa_affinity_policy')
            requests = pci_spec.requests_from_alias_counts(
                alias_counts, self.config.pci_aliases, policy)
            nodes = None
            if rec.claim is not None and rec.claim.numa_topology:
                nodes = {c['id'] for c in rec.claim.numa_topology['cells']}
            addresses = self._pci.select(requests, numa_nodes=nodes,
                                         socket_of_node=self._socket_of_node)
            if addresses is None:
                raise exception.ComputeResourcesUnavailable(
                    reason='PCI devices: no free devices for ' + ', '.join(
                        f'{a}:{n}' for a, n in sorted(alias_counts.items())))
            req = claims_mod.PciRequestClaim(
                request_id=request_id, alias_counts=dict(alias_counts),
                devices=tuple(self._pci_views(addresses)))
            new = dataclasses.replace(rec, pci_requests=rec.pci_requests + (req,))
            self._commit(instances=[new])
            self._pci.allocate(instance_uuid, req.claim_id, addresses,
                               _pci_status(new))
            return [dict(d) for d in req.devices]

    def free_pci_devices(self, instance_uuid: str, addresses: list) -> None:
        with self._lock:
            rec = self._instances.get(instance_uuid)
            if rec is None:
                raise exception.InstanceNotFound(instance_uuid=instance_uuid)
            owned = {}
            if rec.claim is not None:
                for dev in rec.claim.pci_devices:
                    owned[dev['address']] = ('claim', rec.claim.claim_id)
            for req in rec.pci_requests:
                for dev in req.devices:
                    owned[dev['address']] = ('request', req.claim_id)
            for address in addresses:
                if address not in owned:
                    raise exception.PciDeviceNotFound(
                        address=address,
                        reason=f'it is not held by instance {instance_uuid}')
            gone = set(addresses)
            claim = rec.claim
            if claim is not None:
                claim = dataclasses.replace(claim, pci_devices=tuple(
                    d for d in claim.pci_devices if d['address'] not in gone))
            requests = tuple(
                dataclasses.replace(r, devices=tuple(
                    d for d in r.devices if d['address'] not in gone))
                for r in rec.pci_requests)
            new = dataclasses.replace(rec, claim=claim, pci_requests=requests)
            self._commit(instances=[new])
            for address in sorted(gone):
                self._pci.free(claim_key=owned[address][1], addresses=[address])
        return None

    def pci_event(self, action: str, device, address: str) -> None:
        """udev hotplug: apply now, and ask for an early audit."""
        with self._lock:
            if self._pci.handle_event(action, device, address):
                self._pci_count = len(self._pci.devices())
                self._bump()
        self.audit_wanted.set()

    # ============================================================ views

    def get_host_state(self) -> dict:
        with self._lock:
            snapshot = view_mod.Snapshot(
                config=self.config, host=self._host,
                connected=self._hypervisor_connected,
                inventory=dict(self._inventory),
                used=dict(self._used_with_unmanaged()),
                instances=list(self._instances.values()),
                migrations=list(self._migrations.values()),
                cells=list(self._cells),
                cell_usage={k: dataclasses.replace(
                    v, pinned_cpus=set(v.pinned_cpus),
                    pages_used=dict(v.pages_used))
                    for k, v in self._cell_usage.items()},
                unmanaged=list(self._unmanaged),
                pci_pools=self._pci.pools(),
                pci_devices=self._pci.devices(),
                last_audit=dict(self._last_audit) if self._last_audit else None)
        return view_mod.host_state(snapshot)

    def placement_view(self) -> tuple:
        """(version, view) for the reporter; version moves on every change."""
        with self._lock:
            version = self._view_version
            inventory = dict(self._inventory)
            allocations = dict(self._allocations)
            unmanaged_used = dict(self._unmanaged_used)
            pci_devices = (self._pci.devices()
                           if self.config.report_pci_in_placement else [])
            config = self.config
            host = self._host
        return version, view_mod.placement_view(
            config, host, inventory, allocations, unmanaged_used, pci_devices)


def _claim_ids(rec: InstanceRecord) -> list:
    keys = [rec.claim.claim_id] if rec.claim is not None else []
    return keys + [r.claim_id for r in rec.pci_requests]


def _pci_status(holder) -> str:
    vm_state = holder.instance.vm_state
    if isinstance(holder, MigrationRecord) and not holder.finished:
        return 'claimed'
    return 'claimed' if vm_state == 'building' else 'allocated'


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
