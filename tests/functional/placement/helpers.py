"""Payload builders for the placement tests."""

import uuid

CTX = {'request_id': 'req-test'}


class Conf:
    """The options a PlacementManager reads, at their defaults."""

    class placement:
        heartbeat_timeout = 60
        candidate_order = 'spread'


def new_uuid() -> str:
    return str(uuid.uuid4())


def compute_node(rp_uuid, name='h1', generation=None, vcpus=8, memory_mb=4096,
                 disk_gb=100, traits=None, **extra):
    return {'uuid': rp_uuid, 'name': name, 'parent_uuid': None,
            'generation': generation,
            'inventories': {
                'VCPU': {'total': vcpus, 'allocation_ratio': 4.0},
                'MEMORY_MB': {'total': memory_mb, 'reserved': 512},
                'DISK_GB': {'total': disk_gb}},
            'traits': traits, **extra}


def consumer(resources, project_id='p1', user_id='u1'):
    return {'project_id': project_id, 'user_id': user_id,
            'resources': resources}


def add_host(mgr, host='h1', vcpus=8, memory_mb=4096, disk_gb=100,
             traits=None):
    root = new_uuid()
    gens = mgr.report_provider_tree(CTX, host=host, providers=[
        compute_node(root, host, vcpus=vcpus, memory_mb=memory_mb,
                     disk_gb=disk_gb, traits=traits)])
    return root, gens[root]


def empty_tables(conn) -> None:
    """Delete every row of the placement schema (tests and benchmarks only);
    provider links are cut first so that no foreign key stands in the way."""
    from nova_rt.placement import models
    for table in reversed(models.Base.metadata.sorted_tables):
        if table.name == 'resource_providers':
            conn.execute(table.update().values(parent_provider_id=None,
                                               root_provider_id=None))
        conn.execute(table.delete())
