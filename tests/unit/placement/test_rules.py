"""Pure rules of the placement operations: no database involved."""

import re
import types

import pytest
from hypothesis import given, strategies as st

from nova_rt import exception
from nova_rt.placement import allocation_ops
from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import provider_ops

A = '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f'
B = '7d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f'


@given(total=st.integers(0, 10 ** 6), reserved=st.integers(0, 10 ** 6),
       ratio=st.floats(0.01, 64))
def test_capacity_is_placements_formula(total, reserved, ratio):
    assert common.capacity(total, reserved, ratio) == int(
        (total - reserved) * ratio)


def test_inventory_defaults_and_checks():
    inv = provider_ops.normalise_inventory('VCPU', {'total': 8}, 'inv')
    assert inv == {'total': 8, 'reserved': 0, 'min_unit': 1, 'max_unit': 8,
                   'step_size': 1, 'allocation_ratio': 1.0, 'capacity': 8}
    with pytest.raises(exception.InvalidInput, match='reserved'):
        provider_ops.normalise_inventory('VCPU', {'total': 1, 'reserved': 2},
                                         'inv')
    with pytest.raises(exception.InvalidInput, match='min_unit'):
        provider_ops.normalise_inventory(
            'VCPU', {'total': 8, 'min_unit': 4, 'max_unit': 2}, 'inv')
    with pytest.raises(exception.InvalidInput, match='too large'):
        provider_ops.normalise_inventory(
            'VCPU', {'total': 2 ** 31 - 1, 'allocation_ratio': 16}, 'inv')


def test_tree_validation():
    with pytest.raises(exception.InvalidInput, match='twice'):
        provider_ops._validate_tree([{'uuid': A, 'name': 'a'},
                                     {'uuid': A, 'name': 'b'}])
    with pytest.raises(exception.InvalidInput, match='cycle'):
        provider_ops._validate_tree([
            {'uuid': A, 'name': 'a', 'parent_uuid': B},
            {'uuid': B, 'name': 'b', 'parent_uuid': A}])
    provider_ops._validate_tree([{'uuid': A, 'name': 'a'},
                                 {'uuid': B, 'name': 'b', 'parent_uuid': A}])


@pytest.mark.parametrize('name, ok', [
    ('COMPUTE_NODE', True), ('HW_CPU_X86_AVX2', True), ('CUSTOM_GOLD_1', True),
    ('CUSTOM_', False), ('GOLD', False), ('custom_gold', False)])
def test_traits(name, ok):
    if ok:
        common.check_traits([name])
    else:
        with pytest.raises(exception.InvalidInput):
            common.check_traits([name])


def _inv(**kw):
    base = dict(min_unit=1, max_unit=8, step_size=1, capacity=32)
    return types.SimpleNamespace(**{**base, **kw})


def test_wanted_allocations_checked_against_inventory():
    tree = {A: 1}
    invs = {(1, 'VCPU'): _inv(), (1, 'MEMORY_MB'): _inv(
        min_unit=256, max_unit=4096, step_size=256)}
    body = {'project_id': 'p', 'user_id': 'u'}
    want = allocation_ops._want(
        {B: {**body, 'resources': {A: {'VCPU': 2, 'MEMORY_MB': 512,
                                       'DISK_GB': 0}}}}, tree, invs)
    assert want == {B: {(1, 'VCPU'): 2, (1, 'MEMORY_MB'): 512}}
    for amounts in ({'VCPU': 9}, {'MEMORY_MB': 128}, {'MEMORY_MB': 300},
                    {'PCPU': 1}):
        with pytest.raises(exception.InvalidAllocation):
            allocation_ops._want({B: {**body, 'resources': {A: amounts}}},
                                 tree, invs)
    with pytest.raises(exception.InvalidAllocation, match='tree'):
        allocation_ops._want({B: {**body, 'resources': {B: {'VCPU': 1}}}},
                             tree, invs)


def test_safe_url_hides_password():
    masked = db.safe_url('postgresql+psycopg://nova:s3cret@db/placement')
    assert 's3cret' not in masked and 'nova:***@db' in masked


def test_unsupported_backend_is_invalid_input():
    with pytest.raises(exception.InvalidInput, match='unsupported'):
        db.create_engine('oracle://u:p@h/d')


def test_a_driver_not_installed_is_invalid_input_naming_the_one_to_use():
    # mysql:// means mysqlclient to SQLAlchemy, which nova_rt does not ship.
    with pytest.raises(exception.InvalidInput,
                       match=re.escape('use mysql+pymysql://')) as error:
        db.create_engine('mysql://u:p@h/d')
    assert 'p@h' not in str(error.value)
