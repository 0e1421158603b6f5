"""Does it fit?  Capacity, NUMA and PCI, pure over a ``node.HostView``.

Each function returns what would be claimed, or raises the contract's
``ComputeResourcesUnavailable`` saying which resource is short; none changes
anything.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Mapping, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import claims
from nova_rt.compute import usage
from nova_rt.hardware import constraints
from nova_rt.hardware import numa
from nova_rt.pci import spec as pci_spec


def fit_claim(view, instance: objects.Instance, flavor: objects.Flavor, *,
              claim_id: str, migration_uuid: Optional[str] = None,
              page_size_kb: Optional[int] = None,
              freed: Optional[Mapping[str, int]] = None) -> claims.Claim:
    """The claim of ``flavor`` for ``instance`` if it fits now.

    ``freed`` is what the same change gives back (a superseded migration),
    counted as free for this check.
    """
    view.require_host()
    image = instance.image_properties
    # What the flavor and the image ask is judged before what the host has:
    # a request Nova refuses is InvalidInput on any host, full or not.
    resources = usage.flavor_resources(flavor, instance.is_volume_backed, image)
    request = numa.request_for(flavor, image)
    pci_requests = pci_spec.requests_from_flavor(
        constraints.pci_extra_specs(flavor, image), view.config.pci_aliases)
    used = collections.Counter(view.used)
    if freed:
        used.subtract(freed)
    reasons = usage.shortfalls(resources, used, view.node.inventory)
    if reasons:
        raise exception.ComputeResourcesUnavailable(
            reason='; '.join(reasons) + _host_usage_note(view, reasons))
    if request is not None and page_size_kb is not None:
        request = dataclasses.replace(request, page_size=page_size_kb)
    topology, addresses = _fit_numa_and_pci(view, request, pci_requests)
    return claims.Claim(claim_id=claim_id, instance_uuid=instance.uuid,
                        migration_uuid=migration_uuid, flavor=flavor,
                        resources=resources, numa_topology=topology,
                        pci_devices=tuple(_pci_views(view, addresses)))


def fit_pci_request(view, record: claims.InstanceRecord, alias_counts: dict,
                    request_id: str) -> claims.PciRequestClaim:
    """Devices for an interface attach, near the instance's NUMA cells."""
    policy = constraints.pci_numa_policy(record.instance.flavor,
                                         record.instance.image_properties)
    requests = pci_spec.requests_from_alias_counts(
        alias_counts, view.config.pci_aliases, policy)
    nodes = None
    if record.claim is not None and record.claim.numa_topology:
        nodes = {c['id'] for c in record.claim.numa_topology['cells']}
    addresses = view.pci.select(requests, numa_nodes=nodes,
                                socket_of_node=view.node.socket_of_node)
    if addresses is None:
        raise exception.ComputeResourcesUnavailable(
            reason='PCI devices: no free devices for ' + ', '.join(
                f'{a}:{n}' for a, n in sorted(alias_counts.items())))
    return claims.PciRequestClaim(request_id=request_id,
                                  alias_counts=dict(alias_counts),
                                  devices=tuple(_pci_views(view, addresses)))


#: How a refusal names what unmanaged domains take.
_HOST_AMOUNTS = {usage.VCPU: '{} VCPU', usage.MEMORY_MB: '{} MB'}


def _host_usage_note(view, reasons: list) -> str:
    """Name what the host itself uses when that is what fills it, so that a
    refused claim on a busy host says why (libvirt's test:///default runs a
    domain of its own, and a newcomer's first claim met it unexplained)."""
    busy = {rc: n for rc, n in view.host_used.items()
            if n and any(r.startswith(rc + ':') for r in reasons)}
    if not busy:
        return ''
    amounts = ' and '.join(_HOST_AMOUNTS.get(rc, '{} ' + rc).format(n)
                           for rc, n in sorted(busy.items(),
                                               key=lambda item: item[0] != usage.VCPU))
    count = view.unmanaged_domains
    return (f'; {count} unmanaged domain{"" if count == 1 else "s"} (running, '
            f'but no claim of this host explains them) use {amounts}: see '
            f'get_host_state()["unmanaged_domains"]')


def _fit_numa_and_pci(view, request, pci_requests) -> tuple:
    node = view.node
    topology = None
    nodes = None
    if request is not None:
        pci_check = None
        if pci_requests:
            def pci_check(cell_ids):
                return view.pci.select(
                    pci_requests, numa_nodes=set(cell_ids),
                    socket_of_node=node.socket_of_node) is not None
        ratios = view.config.allocation_ratios
        try:
            topology = numa.fit_instance(
                request, list(node.cells), view.cell_usage,
                ratios.get(usage.VCPU, 1.0), ratios.get(usage.MEMORY_MB, 1.0),
                pci_check, host_smt=numa.host_has_smt(node.host.numa_cells))
        except numa.NumaFitError as exc:
            # The contract's class name, not the subclass, crosses RPC.
            raise exception.ComputeResourcesUnavailable(
                reason=exc.kwargs.get('reason', str(exc))) from None
        nodes = {cell['id'] for cell in topology['cells']}
    addresses = []
    if pci_requests:
        addresses = view.pci.select(pci_requests, numa_nodes=nodes,
                                    socket_of_node=node.socket_of_node)
        if addresses is None:
            wanted = ', '.join(f'{r.alias_name}:{r.count}' for r in pci_requests)
            raise exception.ComputeResourcesUnavailable(
                reason=f'PCI devices: no free devices for {wanted}'
                       + (f' on NUMA nodes {sorted(nodes)}' if nodes else ''))
    return topology, addresses


def _pci_views(view, addresses) -> list:
    return [view.pci.get(address).claim_view() for address in addresses]
