"""What a lost store held, rebuilt from what placement and libvirt say.

Pure: ``plan(sources)`` turns what ``nova_rt.compute.recovery`` read (the
consumers of this node's provider tree in placement, libvirt's domains and
the Nova metadata in them) into the instance records of a new store, and
says, line by line, what could not be rebuilt and what follows from that.

Each record holds exactly what placement holds for its consumer on the root
provider, so that the daemon's first full report after recovery changes
nothing in placement.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import uuid as uuidlib
from typing import Optional

from nova_rt import objects
from nova_rt.compute import claims
from nova_rt.compute import ratios as ratios_mod
from nova_rt.compute import reporter
from nova_rt.compute import usage

#: The project and user of a consumer whose owner nobody could tell.
UNKNOWN_OWNER = 'unknown'
#: Nova's vm_state for what libvirt says a domain is doing.
_VM_STATES = {'running': 'active', 'blocked': 'active', 'shutdown': 'active',
              'nostate': 'active', 'paused': 'paused',
              'pmsuspended': 'suspended', 'shutoff': 'stopped',
              'crashed': 'error'}


def amounts(resources: dict) -> str:
    """``VCPU=1, MEMORY_MB=128`` for messages."""
    return ', '.join(f'{rc}={n}' for rc, n in sorted(resources.items()))


def total(resources_list) -> dict:
    """The sum of ``{rc: n}`` mappings."""
    summed: dict = {}
    for resources in resources_list:
        for rc, n in resources.items():
            summed[rc] = summed.get(rc, 0) + n
    return summed


def tree_usage(providers: dict) -> dict:
    """``{provider uuid: {rc: used}}`` of ``get_resource_provider`` answers,
    only what is used."""
    found = {}
    for uuid, provider in providers.items():
        used = {rc: n for rc, n in (provider.get('usages') or {}).items() if n}
        if used:
            found[uuid] = used
    return found




@dataclasses.dataclass(frozen=True)
class Consumer:
    """One consumer's allocations on this node's tree."""
    uuid: str
    resources: dict                     # provider uuid -> {rc: n}
    project_id: Optional[str] = None
    user_id: Optional[str] = None


@dataclasses.dataclass
class Sources:
    """What recovery read (nothing is written while reading)."""
    root: dict                          # get_resource_provider of the root
    providers: dict                     # uuid -> get_resource_provider
    consumers: dict                     # uuid -> Consumer
    consumers_from: str                 # where the consumers were listed
    #: Whether that lists every consumer (placement's database) or only
    #: those that could be asked about by uuid (RPC).
    listed_all: bool = False
    host_info: Optional[objects.HostInfo] = None
    domains: dict = dataclasses.field(default_factory=dict)   # uuid -> DomainInfo
    nova: dict = dataclasses.field(default_factory=dict)      # uuid -> NovaMetadata
    libvirt_error: Optional[str] = None


@dataclasses.dataclass
class Plan:
    """The store to write, and what an operator must know about it."""
    root_uuid: str
    records: list                       # claims.InstanceRecord
    meta: dict                          # store meta key -> value
    rebuilt: list                       # one line per record
    not_rebuilt: list                   # what could not be, and what follows
    missing: dict                       # rc -> used by consumers not found

    @property
    def complete(self) -> bool:
        return not self.missing


def plan(sources: Sources, now: Optional[float] = None) -> Plan:
    """The records that hold what placement says this node's consumers
    hold; pure."""
    root_uuid = sources.root['uuid']
    records, rebuilt, notes = [], [], []
    # What the host itself uses (domains no claim explains) is not a record:
    # the daemon derives it again at its first audit.
    own = {reporter.host_usage_consumer(root_uuid, index)
           for index in range(len(sources.consumers))}
    for uuid, consumer in sorted(sources.consumers.items()):
        if uuid in own:
            continue
        held = {rc: n for rc, n in consumer.resources.get(root_uuid, {}).items()
                if n}
        on_children = {rp: a for rp, a in consumer.resources.items()
                       if rp != root_uuid and a}
        if not held:
            notes.append(f'consumer {uuid} holds only PCI devices (on '
                         f'providers {", ".join(sorted(on_children))}): not '
                         'rebuilt; the first full report removes them from '
                         'placement')
            continue
        domain = sources.domains.get(uuid)
        nova = sources.nova.get(uuid)
        flavor, volume_backed, flavor_from = flavor_for(
            held, nova.flavor if nova else None)
        project = consumer.project_id or (nova and nova.project_id)
        user = consumer.user_id or (nova and nova.user_id)
        if not (project and user):
            notes.append(
                f'instance {uuid}: nothing says who owns it (placement over '
                'RPC does not, and its domain has no Nova metadata): project '
                f'and user are "{UNKNOWN_OWNER}"; placement keeps the real '
                'ones as long as the allocation does not change')
        vm_state = _VM_STATES.get(domain.state, 'active') if domain else 'active'
        inst = objects.Instance(
            uuid=uuid, project_id=project or UNKNOWN_OWNER,
            user_id=user or UNKNOWN_OWNER, flavor=flavor, vm_state=vm_state,
            is_volume_backed=volume_backed)
        claim = claims.Claim(claim_id=str(uuidlib.uuid4()), instance_uuid=uuid,
                             migration_uuid=None, flavor=flavor, resources=held)
        records.append(claims.InstanceRecord(instance=inst, claim=claim))
        seen = (f'domain {domain.name} {domain.state}' if domain else
                'no domain here (the audit reports it as missing)')
        rebuilt.append(f'instance {uuid} (project {inst.project_id}, user '
                       f'{inst.user_id}): {claim.describe()}; flavor '
                       f'{flavor.name} ({flavor_from}); {seen}, vm_state '
                       f'{vm_state}')
        notes += _instance_notes(uuid, held, on_children, domain)
    for uuid, domain in sorted(sources.domains.items()):
        if domain.active and uuid not in sources.consumers:
            notes.append(f'domain {uuid} ({domain.name}) runs here but '
                         'placement has no allocation for it: not an '
                         'instance of this store; the tracker counts it as '
                         'an unmanaged domain')
    missing = _missing(sources)
    if missing:
        notes.append(
            f'placement counts {amounts(missing)} on this node for consumers '
            f'that were not found in {sources.consumers_from}: not rebuilt, '
            'and the first full report would remove them from placement. '
            + ('' if sources.listed_all else
               'Over RPC placement can only be asked about consumers by '
               'uuid, and only libvirt\'s domains were there to ask about: '
               'set [placement_database] connection (placement\'s database '
               'URL) in a --config-file to rebuild every consumer with its '
               'project and user.'))
    if sources.libvirt_error:
        notes.append(f'libvirt could not be read ({sources.libvirt_error}): '
                     'no domain was seen, every instance is kept as active')
    notes += _ALWAYS_LOST
    return Plan(root_uuid=root_uuid, records=records,
                meta=_meta(sources, len(records), now), rebuilt=rebuilt,
                not_rebuilt=notes, missing=missing)


_ALWAYS_LOST = [
    'flavors: placement keeps amounts, not flavors; each instance has a '
    'flavor with exactly its allocated amounts (from the domain\'s Nova '
    'metadata where that agrees, else "recovered-...": vcpus from VCPU or '
    'PCPU with hw:cpu_policy=dedicated, memory_mb, root_gb from DISK_GB, '
    'resources:<CLASS> for any other class, no other extra specs). A '
    'repeated instance_claim with the real flavor is refused with '
    'ClaimConflict; moves carry their own flavors',
    'migrations: placement does not record them; none is rebuilt. A move in '
    'progress to or from this host must be aborted or redone by the '
    'conductor (the destination claim of one shows here as an instance '
    'named by the migration\'s uuid: free it with "nova-rt claim abort '
    '--host <host> <uuid>"); '
    'repeating a call for a migration that ended before the loss gets '
    'MigrationNotFound',
]


def _instance_notes(uuid, held, on_children, domain) -> list:
    notes = []
    if domain is not None and (
            domain.vcpus != held.get(usage.VCPU, held.get(usage.PCPU, 0))
            or domain.memory_mb != held.get(usage.MEMORY_MB, 0)):
        notes.append(f'instance {uuid}: its domain has {domain.vcpus} vCPUs '
                     f'and {domain.memory_mb} MiB, placement counts '
                     f'{amounts(held)}; the claim keeps placement\'s amounts')
    pinned = sorted({cpu for cpus in (domain.cpu_pinning.values() if domain
                                      else ()) for cpu in cpus})
    if usage.PCPU in held or (domain and (domain.numa_memory_nodes
                                          or domain.hugepage_kb)):
        detail = ', '.join(filter(None, [
            pinned and f'pinned to host CPUs {pinned}',
            domain and domain.hugepage_kb and
            f'{domain.hugepage_kb} KiB pages',
            domain and domain.numa_memory_nodes and
            f'memory on NUMA nodes {sorted(domain.numa_memory_nodes)}']))
        notes.append(f'instance {uuid}: its NUMA placement is not rebuilt'
                     + (f' ({detail})' if detail else '') + ': its CPUs and '
                     'memory are counted, but not which host CPUs and pages '
                     'it holds, so a new pinned claim may be given the same '
                     'ones; move or rebuild it to have it placed again')
    devices = list(domain.hostdev_addresses) if domain else []
    if devices or on_children:
        notes.append(f'instance {uuid}: its PCI devices are not rebuilt'
                     + (f' (its domain uses {", ".join(devices)})' if devices
                        else '')
                     + ': the tracker may give them to another instance'
                     + (', and the first full report removes its allocations '
                        'on PCI providers' if on_children else '')
                     + '; move or rebuild it to have them claimed again')
    return notes


def _missing(sources: Sources) -> dict:
    counted = total(tree_usage(sources.providers).values())
    found = total(held for consumer in sources.consumers.values()
                  for held in consumer.resources.values())
    return {rc: n - found.get(rc, 0) for rc, n in sorted(counted.items())
            if n > found.get(rc, 0)}


def _meta(sources: Sources, count: int, now: Optional[float]) -> dict:
    meta = {reporter.ROOT_UUID_KEY: sources.root['uuid']}
    inventories = sources.root.get('inventories') or {}
    ratios = {rc: inv['allocation_ratio'] for rc, inv in inventories.items()
              if rc in ratios_mod.CLASSES and 'allocation_ratio' in inv}
    if ratios:
        # What the daemon uses if placement is away at its next start.
        meta[reporter.RATIOS_KEY] = ratios
    if sources.host_info is not None:
        meta['host_info'] = sources.host_info.to_dict()
    at = datetime.datetime.fromtimestamp(
        time.time() if now is None else now, datetime.timezone.utc)
    meta['recovered'] = {'at': at.isoformat(), 'instances': count,
                         'consumers_from': sources.consumers_from}
    return meta


# ------------------------------------------------------------------ flavors

#: Nova's libvirt driver writes <nova:instance> into a domain's <metadata>
#: (namespace .../nova/1.0, 1.1 ...).
NOVA_NS_PREFIX = 'http://openstack.org/xmlns/libvirt/nova/'


@dataclasses.dataclass(frozen=True)
class NovaMetadata:
    """Owner and flavor of a domain that Nova's libvirt driver made."""
    flavor: Optional[objects.Flavor] = None
    project_id: Optional[str] = None
    user_id: Optional[str] = None


def nova_metadata(xml: str) -> Optional[NovaMetadata]:
    """The <nova:instance> metadata of a domain's XML, if it has any."""
    from nova_rt.virt import xmlutil
    try:
        domain = xmlutil.parse(xml, 'domain XML')
    except xmlutil.InvalidXML:
        return None
    for element in domain.find('metadata') if domain.find('metadata') is not None else ():
        namespace, _, name = element.tag.lstrip('{').partition('}')
        if name == 'instance' and namespace.startswith(NOVA_NS_PREFIX):
            return _read_nova_instance(element, f'{{{namespace}}}')
    return None


def _read_nova_instance(element, ns: str) -> NovaMetadata:
    flavor = None
    found = element.find(ns + 'flavor')
    if found is not None:
        try:
            flavor = objects.Flavor(
                name=found.get('name') or 'unknown',
                vcpus=int(found.findtext(ns + 'vcpus')),
                memory_mb=int(found.findtext(ns + 'memory')),
                root_gb=int(found.findtext(ns + 'disk') or 0),
                ephemeral_gb=int(found.findtext(ns + 'ephemeral') or 0),
                swap=int(found.findtext(ns + 'swap') or 0))
        except (TypeError, ValueError):
            flavor = None
    owner = element.find(ns + 'owner')
    ids = {}
    for role in ('project', 'user'):
        item = owner.find(ns + role) if owner is not None else None
        ids[role] = item.get('uuid') if item is not None else None
    return NovaMetadata(flavor=flavor, project_id=ids['project'],
                        user_id=ids['user'])


def flavor_for(held: dict, nova_flavor: Optional[objects.Flavor]) -> tuple:
    """``(flavor, is_volume_backed, where it came from)`` whose amounts are
    exactly ``held``: the usage a record derives from its flavor must be
    what placement holds, or the first report would change it."""
    extra = {}
    cpu_class = usage.PCPU if held.get(usage.PCPU) else usage.VCPU
    shared = held.get(usage.VCPU, 0) if cpu_class == usage.PCPU else 0
    if shared:
        # Both kinds of CPU: a mixed guest, its last vCPUs the pinned ones
        # (Nova refuses resources:VCPU beside a CPU policy).
        pinned = held[usage.PCPU]
        extra['hw:cpu_policy'] = 'mixed'
        extra['hw:cpu_dedicated_mask'] = f'{shared}-{shared + pinned - 1}'
    elif cpu_class == usage.PCPU:
        extra['hw:cpu_policy'] = 'dedicated'
    for rc, n in sorted(held.items()):
        if rc not in (usage.VCPU, usage.PCPU, usage.MEMORY_MB, usage.DISK_GB):
            extra[f'resources:{rc}'] = str(n)
    if nova_flavor is not None:
        candidate = dataclasses.replace(nova_flavor, extra_specs=dict(extra))
        for volume_backed in (False, True):
            if usage.flavor_resources(candidate, volume_backed) == held:
                return (candidate, volume_backed,
                        "from the domain's Nova metadata")
    vcpus = held.get(cpu_class, 0) + shared
    memory_mb = held.get(usage.MEMORY_MB, 0)
    disk_gb = held.get(usage.DISK_GB, 0)
    # A flavor has at least one vCPU and 1 MiB; a class it must not hold
    # is overridden to 0, as Nova's resources:<CLASS>=0 does.
    if not vcpus:
        extra[f'resources:{cpu_class}'] = '0'
    if not memory_mb:
        extra[f'resources:{usage.MEMORY_MB}'] = '0'
    flavor = objects.Flavor(
        name=f'recovered-{vcpus}vcpu-{memory_mb}mb-{disk_gb}gb',
        vcpus=vcpus or 1, memory_mb=memory_mb or 1, root_gb=disk_gb,
        ephemeral_gb=0, swap=0, extra_specs=extra)
    return flavor, False, 'synthesised from the allocation'
