"""The payload classes turn back into the JSON they came from."""

import dataclasses

import pytest

from nova_rt import objects
from nova_rt.compute import usage

FLAVOR = {'name': 'f', 'vcpus': 2, 'memory_mb': 512, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0,
          'extra_specs': {'hw:cpu_policy': 'dedicated'}}


def _instance():
    return objects.Instance.from_dict({
        'uuid': 'u1', 'project_id': 'p', 'user_id': 'u', 'flavor': FLAVOR,
        'image_properties': {'hw_numa_nodes': 2,
                             'hw_list': [{'a': [1, 2]}, 'x']}})


def _migration():
    return objects.Migration.from_dict({
        'uuid': 'm1', 'instance_uuid': 'u1', 'migration_type': 'resize',
        'status': 'migrating', 'source_compute': 'a', 'source_node': 'a',
        'dest_compute': 'b', 'dest_node': 'b', 'old_flavor': FLAVOR,
        'new_flavor': None})


@pytest.mark.parametrize('make', [
    lambda: objects.Flavor.from_dict(FLAVOR), _instance, _migration,
    lambda: usage.Inventory(total=8, reserved=1, min_unit=1, max_unit=8,
                            step_size=1, allocation_ratio=4.0)],
    ids=['flavor', 'instance', 'migration', 'inventory'])
def test_to_dict_is_asdict(make):
    obj = make()
    assert obj.to_dict() == dataclasses.asdict(obj)


def test_to_dict_shares_no_container_with_the_object():
    inst = _instance()
    data = inst.to_dict()
    data['flavor']['extra_specs']['k'] = 'v'
    data['image_properties']['hw_list'][0]['a'].append(3)
    assert inst.flavor.extra_specs == FLAVOR['extra_specs']
    assert inst.image_properties['hw_list'][0]['a'] == [1, 2]
