import pytest

from nova_rt import exception
from nova_rt.placement import methods

ROOT = '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f'


def _bad(method, kwargs):
    with pytest.raises(exception.InvalidInput) as err:
        methods.TABLE.validate(method, kwargs)
    return str(err.value)


def test_every_method_has_an_endpoint_method():
    from nova_rt.placement import manager
    for method in methods.TABLE:
        assert getattr(manager.PlacementEndpoint, method.name).exposed


def test_valid_payloads_pass():
    methods.TABLE.validate('report_provider_tree', {'host': 'h1', 'providers': [
        {'uuid': ROOT, 'name': 'h1', 'parent_uuid': None, 'generation': None,
         'inventories': {'VCPU': {'total': 8, 'reserved': 0, 'min_unit': 1,
                                  'max_unit': 8, 'step_size': 1,
                                  'allocation_ratio': 4.0}},
         'traits': ['COMPUTE_NODE']}]})
    methods.TABLE.validate('report_allocations', {
        'host': 'h1', 'root_uuid': ROOT, 'generation': 3, 'full': True,
        'allocations': {ROOT: {'project_id': 'p', 'user_id': 'u',
                               'resources': {ROOT: {'VCPU': 1}}}}})
    methods.TABLE.validate('get_allocation_candidates', {
        'resources': {'VCPU': 1}, 'required': [], 'forbidden': [],
        'member_of': [], 'limit': None})


@pytest.mark.parametrize('method, kwargs, field', [
    ('report_allocations', {'host': 'h1', 'root_uuid': ROOT,
                            'generation': None, 'allocations': {},
                            'full': True}, 'generation'),
    ('report_allocations', {'host': 'h1', 'root_uuid': ROOT, 'generation': 1,
                            'allocations': {'x': {}}, 'full': True},
     'allocations'),
    ('report_allocations', {'host': 'h1', 'root_uuid': ROOT, 'generation': 1,
                            'allocations': {ROOT: {
                                'project_id': 'p', 'user_id': 'u',
                                'resources': {ROOT: {'VCPU': -1}}}},
                            'full': True},
     f'allocations.{ROOT}.resources.{ROOT}.VCPU'),
    ('report_allocations', {'host': 'h1', 'root_uuid': ROOT, 'generation': 1,
                            'allocations': {}, 'full': 'yes'}, 'full'),
    ('heartbeat', {'host': '', 'root_uuid': ROOT, 'sent_at': 'x'}, 'host'),
    ('get_allocation_candidates', {'resources': {'VCPU': 1}, 'limit': 0},
     'limit'),
    ('get_allocation_candidates', {'resources': {'VCPU': 1},
                                   'member_of': ['not-a-uuid']}, 'member_of'),
    ('set_traits', {'uuid': ROOT, 'traits': ['A', 'A'], 'generation': 1},
     'traits'),
    ('get_allocations', {'consumer_uuid': ROOT.upper()}, 'consumer_uuid'),
    ('get_usages', {'uuid': ROOT, 'extra': 1}, 'extra'),
])
def test_errors_name_the_field(method, kwargs, field):
    assert _bad(method, kwargs).startswith(f'Invalid input: {field}')
