"""Plain-data builders for tracker tests: hosts, flavors, instances, moves."""

import collections
import uuid

from nova_rt import objects
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod

HOST = 'fake-host'

FLAVOR_1 = {'name': 'm1.one', 'vcpus': 1, 'memory_mb': 128, 'root_gb': 1,
            'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}
FLAVOR_2 = {'name': 'm1.two', 'vcpus': 2, 'memory_mb': 256, 'root_gb': 5,
            'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


class StaticHost:
    """A host source that answers with fixed plain data (no libvirt)."""

    def __init__(self, host, domains=()):
        self.host = host
        self.domains = list(domains)

    def get_host_info(self):
        return self.host

    def list_domains(self):
        return list(self.domains)


def host_info(vcpus=4, memory_mb=512, disk_gb=6, cells=()):
    return objects.HostInfo(
        hostname=HOST, hypervisor_type='QEMU', hypervisor_version=8002000,
        uri='test:///fake', online_cpus=frozenset(range(vcpus)),
        memory_mb=memory_mb, disk_total_gb=disk_gb, disk_used_gb=0,
        numa_cells=tuple(cells))


def numa_host(cells=2, cpus_per_cell=4, memory_mb_per_cell=4096,
              pages_2m=0, threads=2):
    numa_cells = []
    for cid in range(cells):
        cpus = list(range(cid * cpus_per_cell, (cid + 1) * cpus_per_cell))
        siblings = tuple(frozenset(cpus[i:i + threads])
                         for i in range(0, len(cpus), threads))
        pages = [objects.MemPagePool(size_kb=4, total=memory_mb_per_cell * 256)]
        if pages_2m:
            pages.append(objects.MemPagePool(size_kb=2048, total=pages_2m))
        numa_cells.append(objects.HostNumaCell(
            id=cid, cpus=frozenset(cpus), memory_mb=memory_mb_per_cell,
            siblings=siblings, mempages=tuple(pages), socket_id=cid))
    return host_info(vcpus=cells * cpus_per_cell,
                     memory_mb=cells * memory_mb_per_cell, disk_gb=100,
                     cells=numa_cells)


def make_tracker(path=':memory:', host=None, store=None, domains=(),
                 **config):
    config.setdefault('reserved_host_memory_mb', 0)
    cfg = tracker_mod.TrackerConfig(host=HOST, node=HOST, **config)
    store = store or store_mod.ClaimStore(path)
    source = StaticHost(host or host_info(), domains)
    rt = tracker_mod.ResourceTracker(cfg, store, host_source=source)
    rt.load()
    rt.run_audit()
    return rt


def instance(flavor=FLAVOR_1, uuid_=None, vm_state='building',
             task_state=None, project_id='p1', **kw):
    data = {'uuid': uuid_ or str(uuid.uuid4()), 'project_id': project_id,
            'user_id': 'u1', 'flavor': dict(flavor), 'vm_state': vm_state,
            'task_state': task_state, 'os_type': 'linux',
            'is_volume_backed': False}
    data.update(kw)
    return data


def migration(inst, new_flavor=FLAVOR_2, source=HOST, dest=HOST,
              migration_type='resize', status='pre-migrating', uuid_=None):
    return {'uuid': uuid_ or str(uuid.uuid4()), 'instance_uuid': inst['uuid'],
            'migration_type': migration_type, 'status': status,
            'source_compute': source, 'source_node': source,
            'dest_compute': dest, 'dest_node': dest,
            'old_flavor': dict(inst['flavor']), 'new_flavor': dict(new_flavor)}


def used(rt):
    """(vcpus_used, memory_mb_used, local_gb_used) as get_host_state says."""
    state = rt.get_host_state()
    return (state['vcpus_used'], state['memory_mb_used'],
            state['local_gb_used'])


def held_resources(rt):
    """What the tracker's claims hold: the sum of its placement consumers."""
    _, view = rt.placement_view()
    held = collections.Counter()
    for alloc in view['allocations'].values():
        held.update(alloc['resources'])
    return +held


def running_instance(rt, flavor=FLAVOR_1):
    """An instance claimed here and running (vm_state active)."""
    inst = instance(flavor)
    rt.instance_claim(instance=inst)
    rt.update_instance(instance_uuid=inst['uuid'], vm_state='active')
    return inst
