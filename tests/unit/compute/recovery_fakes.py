"""Placement's answers and what recovery reads, as plain data, for the
recovery tests."""

import uuid

from nova_rt import objects
from nova_rt.compute import rebuild

HOST = 'cmp-1'
ROOT = str(uuid.uuid4())


def provider(uuid_=ROOT, usages=None, parent=None, name=HOST, heartbeat=None):
    inventories = {rc: {'total': 64, 'reserved': 0, 'min_unit': 1,
                        'max_unit': 64, 'step_size': 1,
                        'allocation_ratio': ratio}
                   for rc, ratio in (('VCPU', 4.0), ('MEMORY_MB', 1.0),
                                     ('DISK_GB', 1.0))}
    return {'uuid': uuid_, 'name': name, 'host': HOST, 'generation': 3,
            'parent_uuid': parent, 'root_uuid': parent or uuid_,
            'last_heartbeat': heartbeat, 'alive': True,
            'inventories': inventories, 'usages': usages or {},
            'traits': [], 'aggregates': []}


def domain(uuid_, state='running', vcpus=2, memory_mb=512, **kw):
    return objects.DomainInfo(uuid=uuid_, name=f'instance-{uuid_[:8]}',
                              state=state, active=state != 'shutoff',
                              vcpus=vcpus, memory_mb=memory_mb, **kw)


def host_info():
    return objects.HostInfo(
        hostname=HOST, hypervisor_type='QEMU', hypervisor_version=8002000,
        uri='test:///default', online_cpus=frozenset(range(16)),
        memory_mb=65536, disk_total_gb=500, disk_used_gb=0)


def sources(consumers, domains=(), listed_all=True, nova=None, usages=None):
    consumers = {c.uuid: c for c in consumers}
    if usages is None:
        usages = rebuild.total(c.resources[ROOT] for c in consumers.values())
    root = provider(usages=usages)
    return rebuild.Sources(
        root=root, providers={ROOT: root}, consumers=consumers,
        consumers_from='the placement database', listed_all=listed_all,
        host_info=host_info(), domains={d.uuid: d for d in domains},
        nova=nova or {})


def consumer(resources, project='p1', user='u1', uuid_=None):
    return rebuild.Consumer(uuid_ or str(uuid.uuid4()), {ROOT: resources},
                            project, user)
