"""Pure accounting: what a flavor costs, what the host offers, what fits.

Plain functions over plain data, as Nova's ``ComputeNode`` figures and
Placement's capacity formula define them.  No locks, no I/O, no global config.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Iterable, Mapping, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.hardware import constraints

VCPU = 'VCPU'
PCPU = 'PCPU'
MEMORY_MB = 'MEMORY_MB'
DISK_GB = 'DISK_GB'

#: task_states that make an instance I/O heavy (Nova's stats.io_workload).
IO_TASK_STATES = ('resize_migrating', 'rebuilding', 'resize_prep',
                  'image_snapshot', 'image_backup', 'rescuing', 'unshelving')


def flavor_resources(flavor: objects.Flavor, is_volume_backed: bool = False,
                     image_properties: Optional[Mapping] = None) -> dict:
    """Resource classes and amounts a flavor consumes on the host.

    VCPU and PCPU as Nova's scheduler asks placement for them, from the
    flavor's and the image's CPU policies (``hardware.constraints``):
    dedicated vCPUs are PCPU, the shared ones of a ``mixed`` guest VCPU,
    and ``hw:emulator_threads_policy=isolate`` one PCPU more.  The other
    ``resources:<CLASS>`` extra specs override the computed amount (``0``
    removes the class), as in Nova's ``resources_from_flavor``.  Raises
    ``InvalidInput`` naming the keys of a combination Nova refuses.
    """
    amounts = dict(constraints.cpu_constraints(flavor, image_properties).resources())
    amounts.update({MEMORY_MB: flavor.memory_mb,
                    DISK_GB: flavor.disk_gb(is_volume_backed)})
    for key, value in flavor.extra_specs.items():
        if key.startswith('resources:') and key not in _CPU_RESOURCE_KEYS:
            amounts[key[len('resources:'):]] = _amount(key, value)
    return {rc: n for rc, n in amounts.items() if n > 0}


# Their rules are Nova's CPU policy rules, in ``hardware.constraints``.
_CPU_RESOURCE_KEYS = ('resources:' + VCPU, 'resources:' + PCPU)


def _amount(key: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise exception.InvalidInput(
            reason=f"{key} must be a whole number, not {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Inventory:
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = 1
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        """Placement's formula: ``int((total - reserved) * allocation_ratio)``,
        over the inventory as placement receives it (:meth:`reported`)."""
        reported = self.reported()
        return int((reported.total - reported.reserved)
                   * reported.allocation_ratio)

    def reported(self) -> 'Inventory':
        """The inventory placement is sent: ``reserved`` capped at ``total``,
        since Placement refuses more (the host's figures keep the full
        amount, and go negative as in Nova)."""
        if self.reserved <= self.total:
            return self
        return dataclasses.replace(self, reserved=self.total)

    def to_dict(self) -> dict:
        return objects.fields_dict(self)


def compute_inventory(host: objects.HostInfo, vcpu_count: int,
                      pcpu_count: int, *, reserved_host_cpus: int,
                      reserved_host_memory_mb: int, reserved_host_disk_mb: int,
                      allocation_ratios: Mapping[str, float]) -> dict:
    """The node's inventory, as Nova's libvirt driver reports it.

    Classes with nothing to offer (no dedicated CPUs, say) are left out.
    A reserved amount larger than the total is kept: free figures go
    negative, as in Nova.
    """
    inventory = {}
    if vcpu_count:
        inventory[VCPU] = Inventory(
            total=vcpu_count, reserved=reserved_host_cpus,
            max_unit=vcpu_count,
            allocation_ratio=allocation_ratios.get(VCPU, 1.0))
    if pcpu_count:
        inventory[PCPU] = Inventory(total=pcpu_count, max_unit=pcpu_count)
    if host.memory_mb:
        inventory[MEMORY_MB] = Inventory(
            total=host.memory_mb, reserved=reserved_host_memory_mb,
            max_unit=host.memory_mb,
            allocation_ratio=allocation_ratios.get(MEMORY_MB, 1.0))
    if host.disk_total_gb:
        inventory[DISK_GB] = Inventory(
            total=host.disk_total_gb,
            reserved=math.ceil(reserved_host_disk_mb / 1024),
            max_unit=host.disk_total_gb,
            allocation_ratio=allocation_ratios.get(DISK_GB, 1.0))
    return inventory


def shortfalls(requested: Mapping[str, int], used: Mapping[str, int],
               inventory: Mapping[str, Inventory]) -> list:
    """Reasons why ``requested`` does not fit on top of ``used``; empty if it fits.

    The same rules as placement's for one allocation (capacity, and at most
    ``max_unit`` at once), so that what the tracker admits placement has
    room for: ``used`` must count what the host itself uses in the units
    placement is sent (see ``view.host_usage_allocations``).
    """
    reasons = []
    for rc in sorted(requested):
        amount = requested[rc]
        if amount <= 0:
            continue
        inv = inventory.get(rc)
        if inv is None:
            reasons.append(f"{rc}: requested {amount}, this host has no "
                           f"{rc} inventory")
            continue
        if amount > inv.max_unit:
            reasons.append(f"{rc}: requested {amount}, at most "
                           f"{inv.max_unit} in one allocation")
            continue
        free = inv.capacity - used.get(rc, 0)
        if amount > free:
            reasons.append(f"{rc}: requested {amount}, {max(free, 0)} free "
                           f"of {inv.capacity}")
    return reasons


def instance_stats(instances: Iterable) -> dict:
    """Nova's ComputeNode stats from instances that hold resources here.

    ``instances`` are ``objects.Instance``; the keys are Nova's:
    ``num_instances``, ``num_vm_<state>``, ``num_task_<state>``,
    ``num_proj_<project>``, ``num_os_type_<os>`` and ``io_workload``.
    """
    stats = collections.Counter()
    for inst in instances:
        stats['num_instances'] += 1
        stats[f'num_vm_{inst.vm_state}'] += 1
        stats[f'num_task_{inst.task_state}'] += 1
        stats[f'num_proj_{inst.project_id}'] += 1
        stats[f'num_os_type_{inst.os_type}'] += 1
    io = stats.get('num_vm_building', 0) + sum(
        stats.get(f'num_task_{t}', 0) for t in IO_TASK_STATES)
    result = dict(stats)
    result.setdefault('num_instances', 0)
    result['io_workload'] = io
    return result


def host_figures(inventory: Mapping[str, Inventory], used: Mapping[str, int],
                 *, reserved_host_cpus: int, reserved_host_memory_mb: int,
                 reserved_host_disk_mb: int,
                 instances: list) -> dict:
    """The ComputeNode-style figures of ``get_host_state``.

    ``used`` is what claims and unmanaged domains hold; the reserved amounts
    are added here, as Nova's ``memory_mb_used`` and ``local_gb_used`` do.
    """
    def total(rc):
        inv = inventory.get(rc)
        return inv.total if inv else 0

    vcpus, pcpus = total(VCPU), total(PCPU)
    memory_mb, local_gb = total(MEMORY_MB), total(DISK_GB)
    vcpus_used = used.get(VCPU, 0) + reserved_host_cpus
    memory_mb_used = used.get(MEMORY_MB, 0) + reserved_host_memory_mb
    local_gb_used = used.get(DISK_GB, 0) + math.ceil(
        reserved_host_disk_mb / 1024)
    return {
        'vcpus': vcpus, 'vcpus_used': vcpus_used,
        'pcpus': pcpus, 'pcpus_used': used.get(PCPU, 0),
        'memory_mb': memory_mb, 'memory_mb_used': memory_mb_used,
        'free_ram_mb': memory_mb - memory_mb_used,
        'local_gb': local_gb, 'local_gb_used': local_gb_used,
        'free_disk_gb': local_gb - local_gb_used,
        'running_vms': len(instances),
        'current_workload': sum(1 for i in instances
                                if i.task_state is not None),
    }


def unmanaged_usage(domains: Iterable[objects.DomainInfo]) -> dict:
    """What running domains that no claim explains take from the host."""
    total = collections.Counter()
    for dom in domains:
        total[VCPU] += dom.vcpus
        total[MEMORY_MB] += dom.memory_mb
    return dict(total)


def same_flavor(a: Optional[objects.Flavor], b: Optional[objects.Flavor]) -> bool:
    if a is None or b is None:
        return a is b
    return a.to_dict() == b.to_dict()
