"""A PCI device as the tracker sees it: plain, serialisable data."""

from __future__ import annotations

import dataclasses
from typing import Optional

TYPE_PCI = 'type-PCI'
TYPE_PF = 'type-PF'
TYPE_VF = 'type-VF'
DEV_TYPES = (TYPE_PCI, TYPE_PF, TYPE_VF)

AVAILABLE = 'available'
CLAIMED = 'claimed'
ALLOCATED = 'allocated'
UNAVAILABLE = 'unavailable'
REMOVED = 'removed'
STATUSES = (AVAILABLE, CLAIMED, ALLOCATED, UNAVAILABLE, REMOVED)
#: Statuses of a device that an instance holds.
OWNED_STATUSES = (CLAIMED, ALLOCATED)

_DICT_KEYS = ('address', 'vendor_id', 'product_id', 'dev_type', 'status',
              'numa_node', 'parent_addr', 'instance_uuid', 'tags', 'dev_class',
              'driver', 'devname', 'claim_key')


@dataclasses.dataclass
class PciDevice:
    """One function on the PCI bus.

    >>> d = PciDevice('0000:81:10.0', '8086', '10ed', dev_type=TYPE_VF,
    ...               parent_addr='0000:81:00.0', numa_node=0)
    >>> d.claim_view()['parent_addr']
    '0000:81:00.0'
    """

    address: str
    vendor_id: str
    product_id: str
    dev_class: Optional[str] = None
    numa_node: Optional[int] = None
    driver: Optional[str] = None
    dev_type: str = TYPE_PCI
    parent_addr: Optional[str] = None
    devname: Optional[str] = None
    tags: dict = dataclasses.field(default_factory=dict)
    status: str = AVAILABLE
    instance_uuid: Optional[str] = None
    claim_key: Optional[str] = None

    @property
    def owned(self) -> bool:
        """Whether an instance holds it (a removed device may still be held)."""
        return self.instance_uuid is not None

    def to_dict(self) -> dict:
        data = {key: getattr(self, key) for key in _DICT_KEYS}
        data['tags'] = dict(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> 'PciDevice':
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs['tags'] = dict(kwargs.get('tags') or {})
        return cls(**kwargs)

    def claim_view(self) -> dict:
        """The item of a Claim's ``pci_devices`` list (the RPC contract)."""
        return {'address': self.address, 'vendor_id': self.vendor_id,
                'product_id': self.product_id, 'dev_type': self.dev_type,
                'numa_node': self.numa_node, 'parent_addr': self.parent_addr}

    def copy(self) -> 'PciDevice':
        return dataclasses.replace(self, tags=dict(self.tags))
