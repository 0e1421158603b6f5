"""What the tracker holds: claims and the records that own them.

Records are immutable: a change makes a new record, so a list of references
taken under the tracker's lock is a consistent snapshot that can be read
after the lock is released.  Each record turns into JSON for the local store
and back.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nova_rt import objects


@dataclasses.dataclass(frozen=True)
class Claim:
    """Resources held on this host for one consumer.

    ``claim_id`` names the claim in the PCI tracker and stays the same when a
    migration's claim becomes its instance's own (``finish_move``).
    """
    claim_id: str
    instance_uuid: str
    migration_uuid: Optional[str]
    flavor: objects.Flavor
    resources: dict
    numa_topology: Optional[dict] = None
    pci_devices: tuple = ()

    def to_wire(self, host: str, node: str) -> dict:
        """The contract's ``Claim`` payload."""
        return {'instance_uuid': self.instance_uuid,
                'migration_uuid': self.migration_uuid,
                'host': host, 'node': node,
                'resources': dict(self.resources),
                'numa_topology': self.numa_topology,
                'pci_devices': [dict(d) for d in self.pci_devices]}

    def describe(self) -> str:
        """A short text for logs: ``VCPU=1, MEMORY_MB=128, NUMA cells [0]``."""
        text = ', '.join(f'{rc}={n}' for rc, n in sorted(self.resources.items()))
        if self.numa_topology:
            text += f", NUMA cells {[c['id'] for c in self.numa_topology['cells']]}"
        if self.pci_devices:
            text += f", PCI {[d['address'] for d in self.pci_devices]}"
        return text

    def to_dict(self) -> dict:
        return {'claim_id': self.claim_id,
                'instance_uuid': self.instance_uuid,
                'migration_uuid': self.migration_uuid,
                'flavor': self.flavor.to_dict(),
                'resources': dict(self.resources),
                'numa_topology': self.numa_topology,
                'pci_devices': [dict(d) for d in self.pci_devices]}

    @classmethod
    def from_dict(cls, data: dict) -> 'Claim':
        return cls(claim_id=data['claim_id'],
                   instance_uuid=data['instance_uuid'],
                   migration_uuid=data.get('migration_uuid'),
                   flavor=objects.Flavor.from_dict(data['flavor']),
                   resources=dict(data['resources']),
                   numa_topology=data.get('numa_topology'),
                   pci_devices=tuple(data.get('pci_devices') or ()))


@dataclasses.dataclass(frozen=True)
class PciRequestClaim:
    """Devices given by ``claim_pci_devices`` (an interface attach)."""
    request_id: str
    alias_counts: dict
    devices: tuple = ()

    @property
    def claim_id(self) -> str:
        return f'pci-request-{self.request_id}'

    def to_dict(self) -> dict:
        return {'request_id': self.request_id,
                'alias_counts': dict(self.alias_counts),
                'devices': [dict(d) for d in self.devices]}

    @classmethod
    def from_dict(cls, data: dict) -> 'PciRequestClaim':
        return cls(request_id=data['request_id'],
                   alias_counts=dict(data['alias_counts']),
                   devices=tuple(data.get('devices') or ()))


@dataclasses.dataclass(frozen=True)
class InstanceRecord:
    """An instance that lives on this host, and what it holds."""
    instance: objects.Instance
    claim: Optional[Claim] = None
    pci_requests: tuple = ()        # PciRequestClaim

    @property
    def uuid(self) -> str:
        return self.instance.uuid

    @property
    def holds(self) -> bool:
        return self.claim is not None

    def to_dict(self) -> dict:
        return {'instance': self.instance.to_dict(),
                'claim': self.claim.to_dict() if self.claim else None,
                'pci_requests': [r.to_dict() for r in self.pci_requests]}

    @classmethod
    def from_dict(cls, data: dict) -> 'InstanceRecord':
        return cls(instance=objects.Instance.from_dict(data['instance']),
                   claim=Claim.from_dict(data['claim']) if data.get('claim') else None,
                   pci_requests=_pci_requests(data))


@dataclasses.dataclass(frozen=True)
class MigrationRecord:
    """A move that involves this host.

    ``claim`` is what the migration holds here on top of its instance's own
    claim: the incoming flavor before ``finish_move``; after a same-host
    resize has finished, the old flavor kept for a revert; at the source of a
    cross-host move that finished at its destination (``outbound``), the old
    flavor the instance left behind, with its attached PCI devices
    (``pci_requests``).  ``seq`` orders the migrations of the ledger.
    """
    migration: objects.Migration
    instance: objects.Instance
    seq: int
    claim: Optional[Claim] = None
    finished: bool = False
    ended_at: Optional[float] = None
    outbound: bool = False
    pci_requests: tuple = ()        # PciRequestClaim

    @property
    def uuid(self) -> str:
        return self.migration.uuid

    @property
    def in_progress(self) -> bool:
        return objects.migration_in_progress(self.migration.status)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def to_dict(self) -> dict:
        return {'migration': self.migration.to_dict(),
                'instance': self.instance.to_dict(),
                'seq': self.seq,
                'claim': self.claim.to_dict() if self.claim else None,
                'finished': self.finished,
                'ended_at': self.ended_at,
                'outbound': self.outbound,
                'pci_requests': [r.to_dict() for r in self.pci_requests]}

    @classmethod
    def from_dict(cls, data: dict) -> 'MigrationRecord':
        return cls(migration=objects.Migration.from_dict(data['migration']),
                   instance=objects.Instance.from_dict(data['instance']),
                   seq=data['seq'],
                   claim=Claim.from_dict(data['claim']) if data.get('claim') else None,
                   finished=data.get('finished', False),
                   ended_at=data.get('ended_at'),
                   outbound=data.get('outbound', False),
                   pci_requests=_pci_requests(data))


def _pci_requests(data: dict) -> tuple:
    return tuple(PciRequestClaim.from_dict(r)
                 for r in data.get('pci_requests') or ())
