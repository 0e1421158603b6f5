"""PCI device states, PF/VF rules and pools: a pure state machine.

The tracker feeds it what udev sees (``set_devices`` at each audit, ``add_device``
/ ``remove_device`` / ``change_device`` on hotplug) and applies claims to it.
Not thread-safe on purpose: the resource tracker serialises calls under its own
short lock, and never holds that lock across udev I/O.

States (as Nova's, plus ``removed``)::

    available -> claimed -> allocated -> available      (allocate / free)
    available <-> unavailable      (a PF and its VFs exclude each other)
    claimed|allocated -> removed   (the device left the bus while held: it stays
                                    owned, is never offered, and vanishes when freed)
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

from nova_rt import exception
from nova_rt.pci import device as pcidev
from nova_rt.pci import spec as pcispec
from nova_rt.pci.device import PciDevice

LOG = logging.getLogger(__name__)
SERIAL_VERSION = 1


class PciDeviceTracker:
    def __init__(self, specs: list[pcispec.DeviceSpec]):
        self._specs = list(specs)
        self._devices: dict[str, PciDevice] = {}
        # Everything udev last reported, tracked or not: parents for matching.
        self._seen: dict[str, PciDevice] = {}
        # claim_key -> claimed|allocated, so a held device that leaves and
        # comes back returns to the state of its claim.
        self._claims: dict[str, str] = {}

    # ----------------------------------------------------------------- views

    def get(self, address: str) -> Optional[PciDevice]:
        dev = self._devices.get(address)
        return dev.copy() if dev else None

    def count(self) -> int:
        return len(self._devices)

    def devices(self) -> list[dict]:
        return [self._devices[a].to_dict() for a in sorted(self._devices)]

    def owned(self, claim_key: str) -> list[PciDevice]:
        return [d.copy() for d in self._sorted() if d.claim_key == claim_key]

    def claim_keys(self) -> dict[str, str]:
        return dict(self._claims)

    def pools(self) -> list[dict]:
        """Devices grouped as Nova's pools; ``count`` is how many are available.

        A pool whose devices are all in use stays listed with count 0, so a
        reader sees the host has that kind of device.
        """
        pools: dict[tuple, dict] = {}
        for dev in self._sorted():
            if dev.status == pcidev.REMOVED:
                continue
            parent = dev.parent_addr if dev.dev_type == pcidev.TYPE_VF else None
            key = (dev.vendor_id, dev.product_id, dev.numa_node, dev.dev_type,
                   parent, tuple(sorted(dev.tags.items())))
            pool = pools.get(key)
            if pool is None:
                pool = pools[key] = {
                    'vendor_id': dev.vendor_id, 'product_id': dev.product_id,
                    'numa_node': dev.numa_node, 'dev_type': dev.dev_type,
                    'count': 0, 'tags': dict(dev.tags)}
                if parent is not None:
                    pool['parent_addr'] = parent
            if dev.status == pcidev.AVAILABLE:
                pool['count'] += 1
        return list(pools.values())

    def _sorted(self) -> list[PciDevice]:
        return [self._devices[a] for a in sorted(self._devices)]

    # ---------------------------------------------------------- bus changes

    def set_devices(self, discovered: Iterable[PciDevice]) -> bool:
        """Reconcile with everything udev sees now; return whether anything changed."""
        before = self._snapshot()
        self._seen = {d.address: d.copy() for d in discovered}
        for address in list(self._devices):
            if address not in self._seen:
                self._gone(address)
        for dev in self._seen.values():
            self._upsert(dev)
        self._refresh_all()
        return self._snapshot() != before

    def add_device(self, dev: PciDevice) -> bool:
        return self._event(dev)

    def change_device(self, dev: PciDevice) -> bool:
        return self._event(dev)

    def remove_device(self, address: str) -> bool:
        before = self._snapshot()
        self._seen.pop(address, None)
        if address in self._devices:
            self._gone(address)
            self._refresh_all()
        return self._snapshot() != before

    def handle_event(self, action: str, dev: Optional[PciDevice],
                     address: str) -> bool:
        """Apply a hotplug event as ``PciMonitor`` reports it.

        ``dev`` is None when the device is gone or unreadable: either way it
        can no longer be offered.
        """
        if action in ('add', 'change', 'bind', 'unbind') and dev is not None:
            return self._event(dev)
        return self.remove_device(address)

    def _event(self, dev: PciDevice) -> bool:
        before = self._snapshot()
        self._seen[dev.address] = dev.copy()
        self._upsert(self._seen[dev.address])
        # A PF that arrives after its VFs lets VF-by-PF-address specs match.
        for vf in self._seen.values():
            if vf.parent_addr == dev.address:
                self._upsert(vf)
        self._refresh_all()
        return self._snapshot() != before

    def _gone(self, address: str) -> None:
        dev = self._devices[address]
        if dev.owned:
            if dev.status != pcidev.REMOVED:
                LOG.warning('PCI device %s left the bus while held by instance '
                            '%s; it stays reserved until freed',
                            address, dev.instance_uuid)
            dev.status = pcidev.REMOVED
        else:
            del self._devices[address]

    def _upsert(self, seen: PciDevice) -> None:
        parent = self._seen.get(seen.parent_addr) if seen.parent_addr else None
        matched = pcispec.match_spec(self._specs, seen, parent)
        current = self._devices.get(seen.address)
        if current is None:
            if matched is not None:
                new = seen.copy()
                new.tags = dict(matched.tags)
                new.status = pcidev.AVAILABLE
                new.instance_uuid = new.claim_key = None
                self._devices[new.address] = new
            return
        if matched is None and not current.owned:
            del self._devices[seen.address]
            return
        for field in ('vendor_id', 'product_id', 'dev_class', 'numa_node',
                      'driver', 'dev_type', 'parent_addr', 'devname'):
            setattr(current, field, getattr(seen, field))
        if matched is not None:
            current.tags = dict(matched.tags)
        if current.status == pcidev.REMOVED:
            current.status = self._claims.get(current.claim_key, pcidev.CLAIMED)

    def _refresh_all(self) -> None:
        """Recompute ``unavailable`` from who holds what (Nova's PF/VF rules)."""
        taken_pfs = set()
        pfs_with_taken_vfs = set()
        for dev in self._devices.values():
            if not dev.owned:
                continue
            if dev.dev_type == pcidev.TYPE_PF:
                taken_pfs.add(dev.address)
            elif dev.dev_type == pcidev.TYPE_VF and dev.parent_addr:
                pfs_with_taken_vfs.add(dev.parent_addr)
        for dev in self._devices.values():
            if dev.owned:
                continue
            blocked = ((dev.dev_type == pcidev.TYPE_VF
                        and dev.parent_addr in taken_pfs)
                       or (dev.dev_type == pcidev.TYPE_PF
                           and dev.address in pfs_with_taken_vfs))
            dev.status = pcidev.UNAVAILABLE if blocked else pcidev.AVAILABLE

    def _snapshot(self) -> list[dict]:
        return self.devices()

    # --------------------------------------------------------------- claims

    def select(self, requests: list[pcispec.PciRequest],
               numa_nodes: Optional[set[int]] = None,
               socket_of_node: Optional[dict[int, int]] = None
               ) -> Optional[list[str]]:
        """Addresses that would satisfy every request, or None. Changes nothing.

        ``numa_nodes`` are the host cells the instance sits on (None: the
        instance has no NUMA topology, any device will do).  Choices are
        deterministic: by address, affine devices first for ``preferred``.
        """
        chosen: list[str] = []
        chosen_set: set[str] = set()
        chosen_pfs: set[str] = set()
        parents_of_chosen_vfs: set[str] = set()
        for request in requests:
            candidates = [d for d in self._sorted()
                          if d.status == pcidev.AVAILABLE
                          and d.address not in chosen_set
                          and request.matches(d)]
            candidates = _numa_filter(candidates, request.numa_policy,
                                      numa_nodes, socket_of_node or {})
            found = 0
            for dev in candidates:
                if found == request.count:
                    break
                if dev.dev_type == pcidev.TYPE_PF and \
                        dev.address in parents_of_chosen_vfs:
                    continue
                if dev.dev_type == pcidev.TYPE_VF and \
                        dev.parent_addr in chosen_pfs:
                    continue
                chosen.append(dev.address)
                chosen_set.add(dev.address)
                found += 1
                if dev.dev_type == pcidev.TYPE_PF:
                    chosen_pfs.add(dev.address)
                elif dev.dev_type == pcidev.TYPE_VF and dev.parent_addr:
                    parents_of_chosen_vfs.add(dev.parent_addr)
            if found < request.count:
                return None
        return chosen

    def allocate(self, instance_uuid: str, claim_key: str,
                 addresses: list[str], status: str = pcidev.CLAIMED) -> list[dict]:
        """Give ``addresses`` to the instance under ``claim_key``; all or nothing."""
        if status not in pcidev.OWNED_STATUSES:
            raise exception.InvalidInput(
                reason=f'PCI claim status {status!r} is not one of '
                       f'{pcidev.OWNED_STATUSES}')
        if not instance_uuid or not claim_key:
            raise exception.InvalidInput(
                reason='a PCI claim needs an instance uuid and a claim key')
        holder = self._claim_holder(claim_key)
        if holder is not None and holder != instance_uuid:
            raise exception.ClaimConflict(
                reason=f'PCI claim {claim_key} belongs to instance {holder}')
        if len(set(addresses)) != len(addresses):
            raise exception.ComputeResourcesUnavailable(
                reason=f'PCI devices requested twice: {sorted(addresses)}')
        picked = []
        for address in addresses:
            dev = self._devices.get(address)
            if dev is None or dev.status != pcidev.AVAILABLE:
                state = dev.status if dev else 'not tracked'
                raise exception.ComputeResourcesUnavailable(
                    reason=f'PCI device {address} is {state}')
            picked.append(dev)
        pfs = {d.address for d in picked if d.dev_type == pcidev.TYPE_PF}
        clash = [d.address for d in picked
                 if d.dev_type == pcidev.TYPE_VF and d.parent_addr in pfs]
        if clash:
            raise exception.ComputeResourcesUnavailable(
                reason=f'PCI devices {clash} are VFs of a PF in the same claim')
        for dev in picked:
            dev.status = status
            dev.instance_uuid = instance_uuid
            dev.claim_key = claim_key
        if picked:
            self._claims.setdefault(claim_key, status)
        self._refresh_all()
        return [d.claim_view() for d in picked]

    def _claim_holder(self, claim_key: str) -> Optional[str]:
        for dev in self._devices.values():
            if dev.claim_key == claim_key:
                return dev.instance_uuid
        return None

    def mark_allocated(self, claim_key: str) -> None:
        if claim_key not in self._claims:
            return
        self._claims[claim_key] = pcidev.ALLOCATED
        for dev in self._devices.values():
            if dev.claim_key == claim_key and dev.status == pcidev.CLAIMED:
                dev.status = pcidev.ALLOCATED

    def free(self, claim_key: Optional[str] = None,
             instance_uuid: Optional[str] = None,
             addresses: Optional[list[str]] = None) -> list[str]:
        """Free what a claim (or an instance) holds; return the freed addresses."""
        if claim_key is None and instance_uuid is None:
            raise exception.InvalidInput(
                reason='freeing PCI devices needs a claim key or an instance')
        held = [d for d in self._sorted()
                if d.owned
                and (claim_key is None or d.claim_key == claim_key)
                and (instance_uuid is None or d.instance_uuid == instance_uuid)]
        if addresses is not None:
            held_addrs = {d.address for d in held}
            for address in addresses:
                if address not in held_addrs:
                    raise exception.PciDeviceNotFound(
                        address=address,
                        reason=f'not held by instance {instance_uuid or claim_key}')
            held = [d for d in held if d.address in set(addresses)]
        keys = {d.claim_key for d in held}
        for dev in held:
            if dev.status == pcidev.REMOVED:
                del self._devices[dev.address]
                continue
            dev.status = pcidev.AVAILABLE
            dev.instance_uuid = dev.claim_key = None
            # The spec may have changed while it was held: no longer offered.
            seen = self._seen.get(dev.address, dev)
            parent = self._seen.get(dev.parent_addr) if dev.parent_addr else None
            if pcispec.match_spec(self._specs, seen, parent) is None:
                del self._devices[dev.address]
        still = {d.claim_key for d in self._devices.values() if d.owned}
        for key in keys | ({claim_key} if claim_key else set()):
            if key not in still:
                self._claims.pop(key, None)
        self._refresh_all()
        return [d.address for d in held]

    def restore(self, instance_uuid: str, claim_key: str,
                device_dicts: list[dict], status: str = pcidev.CLAIMED) -> list[str]:
        """Re-own the devices of a stored claim (at start); return addresses refused.

        A device no longer on the bus is kept, owned and ``removed``.  A device
        another claim already holds is refused and logged: two owners must never be.
        """
        if status not in pcidev.OWNED_STATUSES:
            status = pcidev.CLAIMED
        self._claims.setdefault(claim_key, status)
        refused = []
        for data in device_dicts:
            address = data['address']
            dev = self._devices.get(address)
            if dev is not None and dev.status == pcidev.UNAVAILABLE:
                LOG.error('PCI device %s of claim %s is unavailable (its PF or '
                          'a VF is held elsewhere); not restored', address,
                          claim_key)
                refused.append(address)
                continue
            if dev is not None and dev.owned:
                if dev.claim_key != claim_key:
                    LOG.error('PCI device %s is stored for claims %s and %s; '
                              'keeping it with %s', address, dev.claim_key,
                              claim_key, dev.claim_key)
                    refused.append(address)
                continue
            if dev is None:
                seen = self._seen.get(address)
                dev = (seen or PciDevice.from_dict(data)).copy()
                dev.tags = dict(data.get('tags') or dev.tags)
                self._devices[address] = dev
                if seen is None:
                    dev.status = pcidev.REMOVED
            if dev.status != pcidev.REMOVED or address in self._seen:
                dev.status = self._claims[claim_key]
            dev.instance_uuid = instance_uuid
            dev.claim_key = claim_key
        if self._claim_holder(claim_key) is None:
            self._claims.pop(claim_key, None)
        self._refresh_all()
        return refused

    # -------------------------------------------------------- serialisation

    def to_dict(self) -> dict:
        return {'version': SERIAL_VERSION, 'devices': self.devices(),
                'seen': [self._seen[a].to_dict() for a in sorted(self._seen)],
                'claims': dict(self._claims)}


def _numa_filter(candidates: list[PciDevice], policy: str,
                 numa_nodes: Optional[set[int]],
                 socket_of_node: dict[int, int]) -> list[PciDevice]:
    """Nova's ``pci_numa_affinity_policy`` applied to one request's candidates."""
    if numa_nodes is None:
        return candidates
    if policy == 'required':
        return [d for d in candidates if d.numa_node in numa_nodes]
    if policy == 'preferred':
        return sorted(candidates, key=lambda d: d.numa_node not in numa_nodes)
    if policy == 'socket':
        sockets = {socket_of_node[n] for n in numa_nodes if n in socket_of_node}
        return [d for d in candidates if d.numa_node is not None
                and socket_of_node.get(d.numa_node) in sockets]
    # legacy: affine devices, or devices that do not say where they are.
    return [d for d in candidates
            if d.numa_node is None or d.numa_node in numa_nodes]
