"""What the transitions know of the node: its options and the host as read.

``TrackerConfig`` is the tracker's share of the options, as plain data.
``NodeState`` is the host as the last audit (or the local store) saw it:
inventory, NUMA cells, PCI devices; it is rebuilt only when the host or the
options change.  ``HostView`` is what one transition reads: the node state
and the usage of the moment.  Nothing here changes anything.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import ratios as ratios_mod
from nova_rt.compute import usage
from nova_rt.hardware import cpu_inventory
from nova_rt.hardware import numa
from nova_rt.pci import spec as pci_spec


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
        """Build from oslo.config; ``allocation_ratios`` are the ratios last
        known to be placement's (see ``ratios.from_conf``)."""
        from nova_rt import conf as conf_mod
        shared, dedicated = conf_mod.cpu_sets(conf)
        return cls(host=conf.host, node=conf.host,
                   reserved_host_memory_mb=conf.reserved_host_memory_mb,
                   reserved_host_disk_mb=conf.reserved_host_disk_mb,
                   reserved_host_cpus=conf.reserved_host_cpus,
                   allocation_ratios=ratios_mod.from_conf(conf, allocation_ratios),
                   cpu_shared_set=frozenset(shared) if shared else None,
                   cpu_dedicated_set=frozenset(dedicated) if dedicated else None,
                   pci_specs=tuple(pci_spec.parse_device_specs(conf.pci.device_spec)),
                   pci_aliases=pci_spec.parse_aliases(conf.pci.alias),
                   report_pci_in_placement=conf.pci.report_in_placement)


@dataclasses.dataclass(frozen=True)
class NodeState:
    """The host under the options: None fields until libvirt was ever read."""
    host: Optional[objects.HostInfo] = None
    inventory: Mapping = dataclasses.field(default_factory=dict)
    cells: tuple = ()
    socket_of_node: Mapping = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, host: Optional[objects.HostInfo], config: TrackerConfig) -> 'NodeState':
        """Raises ConfigError when the host cannot serve these options."""
        if host is None:
            return cls()
        vcpus, pcpus = cpu_inventory.cpu_inventory(
            host.online_cpus, config.cpu_shared_set, config.cpu_dedicated_set)
        inventory = usage.compute_inventory(
            host, len(vcpus), len(pcpus),
            reserved_host_cpus=config.reserved_host_cpus,
            reserved_host_memory_mb=config.reserved_host_memory_mb,
            reserved_host_disk_mb=config.reserved_host_disk_mb,
            allocation_ratios=config.allocation_ratios)
        return cls(host=host, inventory=inventory,
                   cells=tuple(numa.host_cells(host.numa_cells, vcpus, pcpus)),
                   socket_of_node={c.id: c.socket_id for c in host.numa_cells
                                   if c.socket_id is not None})


@dataclasses.dataclass(frozen=True)
class HostView:
    """What a transition reads: options, node, usage, and the PCI devices.

    ``used`` counts claims and what the host itself uses (unmanaged
    domains); ``pci`` is the node's PciDeviceTracker, only read here
    (``select``, ``get``).
    """
    config: TrackerConfig
    node: NodeState
    used: Mapping
    cell_usage: Mapping
    pci: object
    host_used: Mapping = dataclasses.field(default_factory=dict)
    #: How many running domains ``host_used`` comes from.
    unmanaged_domains: int = 0

    def require_host(self) -> None:
        if self.node.host is None:
            raise exception.HypervisorUnavailable(
                reason='no host inventory has ever been read from libvirt on '
                       'this node; claims wait until it has')

    def check_node(self, nodename: Optional[str]) -> None:
        if nodename is not None and nodename != self.config.node:
            raise exception.NodeNotFound(nodename=nodename,
                                         node=self.config.node)
