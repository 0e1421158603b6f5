"""Edge validation of the compute RPC payloads: every bad field is named."""

import copy

import pytest

from nova_rt import exception
from nova_rt.compute import methods

UUID = '6f0c8f7e-1c2d-4b9a-8f6e-0a1b2c3d4e5f'
UUID2 = '0b5d8a3e-9a8f-4e43-bd3d-7f8e6b0c1d2a'
FLAVOR = {'name': 'm1.small', 'vcpus': 1, 'memory_mb': 128, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}
INSTANCE = {'uuid': UUID, 'project_id': 'p1', 'user_id': 'u1',
            'flavor': FLAVOR, 'vm_state': 'building', 'task_state': None,
            'os_type': 'linux', 'is_volume_backed': False}
MIGRATION = {'uuid': UUID2, 'instance_uuid': UUID, 'migration_type': 'resize',
             'status': 'pre-migrating', 'source_compute': 'a',
             'source_node': 'a', 'dest_compute': 'b', 'dest_node': 'b',
             'old_flavor': FLAVOR, 'new_flavor': FLAVOR}

VALID = {
    'instance_claim': {'instance': INSTANCE},
    'abort_instance_claim': {'instance_uuid': UUID},
    'update_instance': {'instance_uuid': UUID, 'vm_state': 'active',
                        'task_state': None},
    'resize_claim': {'instance': INSTANCE, 'migration': MIGRATION},
    'rebuild_claim': {'instance': INSTANCE,
                      'migration': dict(MIGRATION, migration_type='evacuation',
                                        old_flavor=None, new_flavor=None)},
    'live_migration_claim': {'instance': INSTANCE, 'migration': MIGRATION},
    'update_migration': {'migration_uuid': UUID2, 'status': 'migrating'},
    'drop_move_claim_at_source': {'migration': MIGRATION},
    'drop_move_claim_at_dest': {'migration_uuid': UUID2},
    'abort_move_claim': {'migration_uuid': UUID2},
    'finish_move': {'migration_uuid': UUID2},
    'claim_pci_devices': {'instance_uuid': UUID, 'alias_counts': {'nic': 2},
                          'request_id': UUID2},
    'free_pci_devices': {'instance_uuid': UUID, 'addresses': ['0000:81:00.1']},
    'get_host_state': {},
    'run_audit': {},
}


@pytest.mark.parametrize('method', sorted(VALID))
def test_valid_payloads_pass(method):
    methods.TABLE.validate(method, copy.deepcopy(VALID[method]))


def test_every_compute_method_has_a_schema():
    assert {method.name for method in methods.TABLE} == set(VALID)


def _reason(method, arguments):
    with pytest.raises(exception.InvalidInput) as info:
        methods.TABLE.validate(method, arguments)
    return str(info.value)


def _instance(**flavor_changes):
    return dict(INSTANCE, flavor=dict(FLAVOR, **flavor_changes))


@pytest.mark.parametrize('arguments, expected', [
    ({'instance': _instance(vcpus=-1)},
     'instance.flavor.vcpus: -1 is less than the minimum of 1'),
    ({'instance': _instance(memory_mb=0)}, 'instance.flavor.memory_mb: 0 is less'),
    ({'instance': _instance(swap=-5)}, 'instance.flavor.swap: -5 is less'),
    ({'instance': _instance(vcpus=1.0)}, "instance.flavor.vcpus: 1.0 is not of type 'integer'"),
    ({'instance': _instance(vcpus=True)}, "instance.flavor.vcpus: True is not of type"),
    ({'instance': _instance(vcpus='2')}, "instance.flavor.vcpus: '2' is not of type"),
    ({'instance': _instance(extra_specs={'hw:numa_nodes': 2})},
     "instance.flavor.extra_specs.hw:numa_nodes: 2 is not of type 'string'"),
    ({'instance': dict(INSTANCE, uuid='abc')}, "instance.uuid: 'abc' is not a uuid"),
    ({'instance': dict(INSTANCE, vm_state='running')},
     "instance.vm_state: 'running' is not one of"),
    ({'instance': {k: v for k, v in INSTANCE.items() if k != 'flavor'}},
     'instance.flavor: is required'),
    ({}, 'instance: is required'),
    ({'instance': INSTANCE, 'nodename': 5}, 'nodename: 5 is not of type'),
])
def test_instance_claim_errors_name_the_field(arguments, expected):
    assert expected in _reason('instance_claim', arguments)


@pytest.mark.parametrize('method, arguments, expected', [
    ('resize_claim', {'instance': INSTANCE,
                      'migration': dict(MIGRATION, migration_type='teleport')},
     "migration.migration_type: 'teleport' is not one of"),
    ('resize_claim', {'instance': INSTANCE,
                      'migration': dict(MIGRATION, new_flavor=None)},
     'migration.new_flavor'),
    ('resize_claim', {'instance': INSTANCE,
                      'migration': dict(MIGRATION, new_flavor=dict(FLAVOR, vcpus=0))},
     'migration.new_flavor.vcpus: 0 is less than the minimum of 1'),
    ('update_migration', {'migration_uuid': UUID2, 'status': 'sleeping'},
     "status: 'sleeping' is not one of"),
    ('update_instance', {'instance_uuid': UUID}, 'vm_state: is required'),
    ('claim_pci_devices', {'instance_uuid': UUID, 'alias_counts': {'nic': 0},
                           'request_id': UUID2},
     'alias_counts.nic: 0 is less than the minimum of 1'),
    ('claim_pci_devices', {'instance_uuid': UUID, 'alias_counts': {'nic': 1},
                           'request_id': 'r1'},
     'request_id'),
    ('free_pci_devices', {'instance_uuid': UUID, 'addresses': ['81:00.1']},
     "addresses[0]: '81:00.1' is not a PCI address"),
    ('free_pci_devices', {'instance_uuid': UUID, 'addresses': '0000:81:00.1'},
     "addresses: '0000:81:00.1' is not of type 'array'"),
    ('drop_move_claim_at_source', {'migration': dict(MIGRATION, status=None)},
     'migration.status: None is not of type'),
])
def test_move_and_pci_errors_name_the_field(method, arguments, expected):
    assert expected in _reason(method, arguments)


def test_unknown_payload_keys_are_allowed_for_newer_callers():
    methods.TABLE.validate('instance_claim', {
        'instance': dict(INSTANCE, future_field={'x': 1},
                         flavor=dict(FLAVOR, description='new'))})


def test_validation_does_not_change_the_payload():
    arguments = copy.deepcopy(VALID['resize_claim'])
    methods.TABLE.validate('resize_claim', arguments)
    assert arguments == VALID['resize_claim']


def test_unknown_method_is_invalid_input():
    assert 'is not a method of nova-rt-compute' in _reason('format_disk', {})


@pytest.mark.parametrize('key, value', [
    ('resources:VCPU', '\u00b2'), ('resources:CUSTOM_X', '1e3'),
    ('hw:numa_nodes', '\u00b2'), ('hw:numa_nodes', '1.5'),
    ('pci_passthrough:alias', 'nic:\u00b2'), ('pci_passthrough:alias', 'nic:1,'),
])
def test_the_numbers_the_tracker_reads_are_ascii_digits(key, value):
    # str.isdigit() takes '²' and int() does not: the tracker's parsers
    # answered a remote ValueError (found by tools/fuzz_rpc.py).
    reason = _reason('instance_claim', {'instance': _instance(
        extra_specs={key: value})})
    assert reason.startswith(f'Invalid input: instance.flavor.extra_specs.{key}: ')


@pytest.mark.parametrize('key, value', [
    ('resources:VCPU', '2'), ('resources:VCPU', ' 0 '), ('hw:numa_nodes', '2'),
    ('pci_passthrough:alias', 'nic:1, gpu:2'), ('hw:cpu_policy', 'anything'),
])
def test_extra_specs_in_their_syntax_pass(key, value):
    methods.TABLE.validate('instance_claim', {'instance': _instance(
        extra_specs={key: value})})
