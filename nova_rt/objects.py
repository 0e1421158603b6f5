"""Plain data shared by the core and the adapters.

Nothing here talks to the world.  Payload classes (Flavor, Instance, Migration)
are built from already validated JSON (see ``nova_rt.compute.schemas``) and turn
back into JSON with ``to_dict``.  Host classes are what the libvirt adapter
reads and the tracker consumes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

#: vm_states that hold no resources on the host.
VM_STATES = ('building', 'active', 'stopped', 'paused', 'suspended',
             'rescued', 'resized', 'shelved', 'shelved_offloaded',
             'soft-deleted', 'error', 'deleted')
MIGRATION_TYPES = ('resize', 'migration', 'live-migration', 'evacuation')
#: Migration statuses after which a migration holds nothing.
MIGRATION_DONE_STATUSES = frozenset(
    ('confirmed', 'reverted', 'failed', 'completed', 'cancelled', 'done'))


def holds_resources(vm_state: str, task_state: Optional[str]) -> bool:
    """Whether an instance in this state keeps its resources on the host.

    As Nova's ``vm_states.allow_resource_removal``: deleted instances hold
    nothing, nor do shelved-offloaded ones except while being unshelved.
    """
    if vm_state == 'deleted':
        return False
    if vm_state == 'shelved_offloaded':
        return task_state == 'spawning'
    return True


def migration_in_progress(status: str) -> bool:
    return status not in MIGRATION_DONE_STATUSES


def fields_dict(obj) -> dict:
    """``dataclasses.asdict(obj)`` for plain data (fields holding JSON
    values, or dataclasses of such), a few times cheaper.

    ``asdict`` deep-copies every leaf and looks each class's fields up again
    at every level; a claim's record goes through it on each durable write
    and each reply.  Containers are copied as ``asdict`` copies them (dicts
    and lists new, tuples kept tuples), leaves (str, int, float, bool, None)
    shared, since they cannot change.
    """
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(
            f.name for f in dataclasses.fields(obj))
    return {name: _plain(getattr(obj, name)) for name in names}


_FIELD_NAMES: dict = {}


def _plain(value):
    kind = type(value)
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return kind(_plain(v) for v in value)
    if kind in _FIELD_NAMES or dataclasses.is_dataclass(value):
        return fields_dict(value)
    return value


@dataclasses.dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    extra_specs: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> 'Flavor':
        return cls(name=data['name'], vcpus=data['vcpus'],
                   memory_mb=data['memory_mb'], root_gb=data['root_gb'],
                   ephemeral_gb=data['ephemeral_gb'], swap=data['swap'],
                   extra_specs=dict(data.get('extra_specs') or {}))

    def to_dict(self) -> dict:
        return fields_dict(self)

    def disk_gb(self, is_volume_backed: bool = False) -> int:
        """GiB of local disk: root (0 when volume backed) + ephemeral + swap."""
        root = 0 if is_volume_backed else self.root_gb
        return root + self.ephemeral_gb + math.ceil(self.swap / 1024)

    def __hash__(self):
        return hash((self.name, self.vcpus, self.memory_mb, self.root_gb,
                     self.ephemeral_gb, self.swap,
                     tuple(sorted(self.extra_specs.items()))))


@dataclasses.dataclass
class Instance:
    uuid: str
    project_id: str
    user_id: str
    flavor: Flavor
    vm_state: str = 'building'
    task_state: Optional[str] = None
    os_type: Optional[str] = None
    is_volume_backed: bool = False
    # The image's properties (``hw_*``), merged with the flavor's extra
    # specs by Nova's rules (``hardware.constraints``).
    image_properties: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> 'Instance':
        return cls(uuid=data['uuid'], project_id=data['project_id'],
                   user_id=data['user_id'],
                   flavor=Flavor.from_dict(data['flavor']),
                   vm_state=data.get('vm_state', 'building'),
                   task_state=data.get('task_state'),
                   os_type=data.get('os_type'),
                   is_volume_backed=bool(data.get('is_volume_backed', False)),
                   image_properties=dict(data.get('image_properties') or {}))

    def to_dict(self) -> dict:
        return fields_dict(self)


@dataclasses.dataclass
class Migration:
    uuid: str
    instance_uuid: str
    migration_type: str
    status: str
    source_compute: str
    source_node: str
    dest_compute: str
    dest_node: str
    old_flavor: Optional[Flavor] = None
    new_flavor: Optional[Flavor] = None

    @classmethod
    def from_dict(cls, data: dict) -> 'Migration':
        def flavor(key):
            return Flavor.from_dict(data[key]) if data.get(key) else None
        return cls(uuid=data['uuid'], instance_uuid=data['instance_uuid'],
                   migration_type=data['migration_type'],
                   status=data['status'],
                   source_compute=data['source_compute'],
                   source_node=data['source_node'],
                   dest_compute=data['dest_compute'],
                   dest_node=data['dest_node'],
                   old_flavor=flavor('old_flavor'),
                   new_flavor=flavor('new_flavor'))

    def to_dict(self) -> dict:
        return fields_dict(self)


# --- the host as the hypervisor shows it ------------------------------------

@dataclasses.dataclass(frozen=True)
class MemPagePool:
    size_kb: int
    total: int
    reserved: int = 0


@dataclasses.dataclass(frozen=True)
class HostNumaCell:
    id: int
    cpus: frozenset            # online host CPU ids in this cell
    memory_mb: int
    siblings: tuple = ()       # tuple of frozensets of SMT thread siblings
    mempages: tuple = ()       # tuple of MemPagePool, smallest first
    socket_id: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class HostInfo:
    """What libvirt says about the host; plain data, no handles."""
    hostname: str
    hypervisor_type: str
    hypervisor_version: int
    uri: str
    online_cpus: frozenset
    memory_mb: int
    disk_total_gb: int
    disk_used_gb: int
    numa_cells: tuple = ()     # tuple of HostNumaCell; empty: no topology
    cpu_model: Optional[str] = None
    cpu_features: frozenset = frozenset()

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data['online_cpus'] = sorted(self.online_cpus)
        data['cpu_features'] = sorted(self.cpu_features)
        data['numa_cells'] = [
            {'id': c.id, 'cpus': sorted(c.cpus), 'memory_mb': c.memory_mb,
             'siblings': [sorted(s) for s in c.siblings],
             'mempages': [dataclasses.asdict(p) for p in c.mempages],
             'socket_id': c.socket_id}
            for c in self.numa_cells]
        return data


@dataclasses.dataclass(frozen=True)
class DomainInfo:
    """One libvirt domain, read from its info and its XML."""
    uuid: str
    name: str
    # running, blocked, paused, shutdown, shutoff, crashed, pmsuspended, nostate
    state: str
    active: bool               # libvirt's isActive(): it uses host resources
    vcpus: int
    memory_mb: int
    cpu_pinning: dict = dataclasses.field(default_factory=dict)  # vcpu -> frozenset(host cpus)
    numa_memory_nodes: frozenset = frozenset()
    hugepage_kb: Optional[int] = None
    hostdev_addresses: tuple = ()   # PCI addresses "0000:81:00.1"
