"""Human-readable views of PCI devices and pools, for the CLI. Pure."""

from __future__ import annotations

from typing import Iterable, Optional

from nova_rt.pci import device as pcidev
from nova_rt.pci import manager
from nova_rt.pci import spec as pcispec
from nova_rt.pci.device import PciDevice


def _line(dev: PciDevice) -> str:
    numa = '-' if dev.numa_node is None else str(dev.numa_node)
    parts = [dev.address, f'{dev.vendor_id}:{dev.product_id}', dev.dev_type,
             f'numa={numa}']
    if dev.dev_class:
        parts.append(f'class={dev.dev_class}')
    if dev.driver:
        parts.append(f'driver={dev.driver}')
    if dev.devname:
        parts.append(f'dev={dev.devname}')
    if dev.status != pcidev.AVAILABLE or dev.instance_uuid:
        owner = f' {dev.instance_uuid}' if dev.instance_uuid else ''
        parts.append(f'[{dev.status}{owner}]')
    return ' '.join(parts)


def format_tree(devices: Iterable[PciDevice]) -> str:
    """SR-IOV tree: each PF with its VFs, then the other devices.

    >>> print(format_tree([PciDevice('0000:05:00.0', '10de', '1eb8')]))
    PCI devices: 1 (0 PF, 0 VF, 1 other)
    0000:05:00.0 10de:1eb8 type-PCI numa=-
    """
    devices = sorted(devices, key=lambda d: d.address)
    by_addr = {d.address: d for d in devices}
    vfs: dict[str, list[PciDevice]] = {}
    for dev in devices:
        if dev.dev_type == pcidev.TYPE_VF:
            vfs.setdefault(dev.parent_addr or '', []).append(dev)
    pfs = [d for d in devices if d.dev_type == pcidev.TYPE_PF]
    others = [d for d in devices if d.dev_type == pcidev.TYPE_PCI]
    n_vf = sum(len(v) for v in vfs.values())
    lines = [f'PCI devices: {len(devices)} ({len(pfs)} PF, {n_vf} VF, '
             f'{len(others)} other)']
    for pf in pfs:
        lines.append(_line(pf))
        children = vfs.pop(pf.address, [])
        for index, vf in enumerate(children):
            branch = '`--' if index == len(children) - 1 else '|--'
            lines.append(f'  {branch} {_line(vf)}')
    for parent, orphans in sorted(vfs.items()):
        where = 'not tracked' if parent not in by_addr else 'not a PF'
        lines.append(f'VFs of {parent or "unknown PF"} ({where}):')
        lines.extend(f'  {_line(vf)}' for vf in orphans)
    lines.extend(_line(d) for d in others)
    return '\n'.join(lines)


def format_pools(pools: list[dict], title: str = '') -> str:
    header = f'PCI pools {title}'.rstrip() + ':'
    if not pools:
        return f'{header} none'
    lines = [header]
    for pool in pools:
        numa = '-' if pool['numa_node'] is None else pool['numa_node']
        tags = ','.join(f'{k}={v}' for k, v in sorted(pool['tags'].items()))
        parent = f" pf={pool['parent_addr']}" if pool.get('parent_addr') else ''
        lines.append(f"  {pool['vendor_id']}:{pool['product_id']} "
                     f"{pool['dev_type']} numa={numa}{parent} "
                     f"count={pool['count']}" + (f' tags={tags}' if tags else ''))
    return '\n'.join(lines)


def summary(devices: list[PciDevice], specs: Optional[list] = None) -> str:
    """The bus as a tree, then the pools ``specs`` would offer.

    Without ``specs`` (no ``[pci] device_spec``) the pools show every device,
    as a preview of what could be offered.
    """
    if not specs:
        specs = pcispec.parse_device_specs(['{}'])
        title = '(no [pci] device_spec: every device shown)'
    else:
        title = f'({len(specs)} device_spec entries)'
    tracker = manager.PciDeviceTracker(specs)
    tracker.set_devices(devices)
    return '\n'.join([format_tree(devices), format_pools(tracker.pools(), title)])
