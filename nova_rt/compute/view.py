"""Views of the tracker's state: ``get_host_state`` and what placement gets.

Pure functions over a snapshot taken under the tracker's lock; building the
view itself happens after the lock is released.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nova_rt import objects
from nova_rt.compute import usage
from nova_rt.hardware import numa

try:
    import os_traits
    _KNOWN_TRAITS = frozenset(os_traits.get_traits())
except ImportError:     # pragma: no cover - os-traits is a requirement
    _KNOWN_TRAITS = frozenset()


@dataclasses.dataclass
class Snapshot:
    config: object
    host: Optional[objects.HostInfo]
    connected: bool
    inventory: dict
    used: dict
    instances: list
    migrations: list
    cells: list
    cell_usage: dict
    unmanaged: list
    missing: list
    pci_pools: list
    pci_devices: list
    last_audit: Optional[dict]
    # The configured hypervisor URI (password masked), known before the
    # first HostInfo is; None: take the last HostInfo's.
    uri: Optional[str] = None


_PCI_DEVICE_KEYS = ('address', 'vendor_id', 'product_id', 'dev_type', 'status',
                    'numa_node', 'parent_addr', 'instance_uuid')


def host_state(snap: Snapshot) -> dict:
    config = snap.config
    holding = [r.instance for r in snap.instances if r.holds]
    figures = usage.host_figures(
        snap.inventory, snap.used,
        reserved_host_cpus=config.reserved_host_cpus,
        reserved_host_memory_mb=config.reserved_host_memory_mb,
        reserved_host_disk_mb=config.reserved_host_disk_mb,
        instances=holding)
    ratios = dict(config.allocation_ratios)
    ratios.setdefault(usage.PCPU, 1.0)
    state = {
        'host': config.host, 'node': config.node,
        'hypervisor': {
            'uri': snap.uri or (snap.host.uri if snap.host else None),
            'hostname': snap.host.hostname if snap.host else None,
            'type': snap.host.hypervisor_type if snap.host else None,
            'version': snap.host.hypervisor_version if snap.host else None,
            'connected': snap.connected,
        },
        **figures,
        'allocation_ratios': ratios,
        'inventory': {rc: inv.to_dict() for rc, inv in snap.inventory.items()},
        'stats': usage.instance_stats(holding),
        'numa_topology': ({'cells': numa.cells_view(snap.cells, snap.cell_usage)}
                          if snap.cells else None),
        'pci_pools': snap.pci_pools,
        'pci_devices': [{k: d.get(k) for k in _PCI_DEVICE_KEYS}
                        for d in snap.pci_devices],
        'instances': sorted(i.uuid for i in holding),
        'migrations': sorted(r.uuid for r in snap.migrations if r.in_progress),
        'unmanaged_domains': [{'uuid': d.uuid, 'name': d.name,
                               'vcpus': d.vcpus, 'memory_mb': d.memory_mb}
                              for d in snap.unmanaged],
        'missing_domains': list(snap.missing),
        'last_audit': ({'at': snap.last_audit['at'],
                        'duration_s': snap.last_audit['duration_s']}
                       if snap.last_audit else None),
    }
    return state


def capability_traits(host: Optional[objects.HostInfo]) -> list:
    """``COMPUTE_NODE`` plus the standard traits the host's CPU shows.

    ``HW_CPU_HYPERTHREADING`` when libvirt shows thread siblings, as Nova's
    libvirt driver reports it: Nova's scheduler requires it for
    ``hw:cpu_thread_policy=require`` and forbids it for ``isolate``.
    """
    traits = {'COMPUTE_NODE'}
    if host is not None:
        if numa.host_has_smt(host.numa_cells):
            traits.add('HW_CPU_HYPERTHREADING')
        for feature in host.cpu_features:
            name = 'HW_CPU_X86_' + feature.upper().replace('.', '_').replace('-', '_')
            if name in _KNOWN_TRAITS:
                traits.add(name)
    return sorted(traits)


def pci_resource_class(dev: dict) -> str:
    tags = dev.get('tags') or {}
    if tags.get('resource_class'):
        rc = str(tags['resource_class']).upper()
        return rc if rc.startswith('CUSTOM_') or rc in ('PGPU', 'VGPU') \
            else 'CUSTOM_' + rc
    return f"CUSTOM_PCI_{dev['vendor_id']}_{dev['product_id']}".upper()


def host_usage_allocations(inventory: dict, claims_used: dict,
                           host_used: dict) -> list:
    """What the host itself uses (unmanaged domains), as allocations.

    Placement is sent this as usage, in the units the tracker counts it in
    (allocation units, like a guest's), never folded into ``reserved``
    (host units, which placement multiplies by the allocation ratio).  Each
    share is at most ``max_unit`` of a class, and all of them together at
    most what the claims leave of the capacity, so that placement accepts
    the report; the tracker then admits a claim exactly when placement has
    room for it (the tracker's free figure is negative where placement's is
    0).
    """
    room = {}
    for rc, amount in host_used.items():
        inv = inventory.get(rc)
        if inv is None or amount <= 0:
            continue
        left = min(amount, max(0, inv.capacity - claims_used.get(rc, 0)))
        if left > 0:
            room[rc] = (left, max(1, inv.max_unit))
    shares = []
    while room:
        share = {rc: min(left, unit) for rc, (left, unit) in room.items()}
        shares.append(share)
        room = {rc: (left - share[rc], unit)
                for rc, (left, unit) in room.items() if left > share[rc]}
    return shares


def placement_view(config, host, inventory: dict, allocations: dict,
                   claims_used: dict, host_used: dict, pci_devices: list) -> dict:
    """The provider tree and allocations the reporter sends to placement.

    ``allocations`` are the consumers of ``accounting.Usage.allocations()``;
    ``host_used`` is what running domains that no claim explains take, sent
    as usage (:func:`host_usage_allocations`) so that the scheduler, like the
    tracker, sees the host as busy as it is.
    """
    inventories = {rc: inv.reported().to_dict() for rc, inv in inventory.items()}
    pci_providers = _pci_providers(config.node, pci_devices)
    # The tracker's own device data (with the spec's tags, which name the
    # resource class), of the devices that are held and on the bus.
    held = {d['address']: d for d in pci_devices
            if d.get('status') in ('claimed', 'allocated')}
    allocs = {}
    for consumer, alloc in allocations.items():
        entry = {'project_id': alloc['project_id'], 'user_id': alloc['user_id'],
                 'resources': dict(alloc['resources'])}
        child = _pci_allocations(config.node, [
            held[d['address']] for d in alloc.get('pci_devices') or ()
            if d['address'] in held])
        if child:
            entry['child_resources'] = child
        allocs[consumer] = entry
    return {'node': config.node, 'inventories': inventories,
            'traits': capability_traits(host), 'pci_providers': pci_providers,
            'allocations': allocs,
            'host_usage': host_usage_allocations(inventory, claims_used,
                                                 host_used)}


def _pci_group(node: str, dev: dict) -> str:
    parent = dev['parent_addr'] if dev['dev_type'] == 'type-VF' else None
    return f"{node}_{parent or dev['address']}"


def _pci_providers(node: str, pci_devices: list) -> list:
    """One child provider per physical device (a PF holds its VFs), as Nova."""
    groups = {}
    for dev in pci_devices:
        if dev.get('status') in ('removed',):
            continue
        name = _pci_group(node, dev)
        group = groups.setdefault(name, {'name': name, 'inventories': {},
                                         'traits': set()})
        rc = pci_resource_class(dev)
        inv = group['inventories'].setdefault(rc, {
            'total': 0, 'reserved': 0, 'min_unit': 1, 'max_unit': 0,
            'step_size': 1, 'allocation_ratio': 1.0})
        inv['total'] += 1
        inv['max_unit'] = inv['total']
        if dev.get('status') == 'unavailable':
            inv['reserved'] += 1
        for trait in str((dev.get('tags') or {}).get('traits', '')).split(','):
            trait = trait.strip().upper()
            if trait:
                group['traits'].add(trait if trait in _KNOWN_TRAITS
                                    or trait.startswith('CUSTOM_')
                                    else 'CUSTOM_' + trait)
    return [{'name': g['name'], 'inventories': g['inventories'],
             'traits': sorted(g['traits'])}
            for g in sorted(groups.values(), key=lambda g: g['name'])]


def _pci_allocations(node: str, devices) -> dict:
    """Child provider name -> {rc: n} for the devices one consumer holds."""
    result = {}
    for dev in devices:
        per_provider = result.setdefault(_pci_group(node, dev), {})
        rc = pci_resource_class(dev)
        per_provider[rc] = per_provider.get(rc, 0) + 1
    return result
