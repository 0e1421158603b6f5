"""The placement table of methods: every bad call is refused by name before
the database is touched; a large host's reports fit the limits."""

import copy
import os
import time
import uuid

import pytest

from nova_rt import exception
from nova_rt import validation
from nova_rt.placement import manager
from nova_rt.placement import methods
from nova_rt.placement import rpcapi  # noqa: F401 (its import checks it)

ROOT = str(uuid.uuid4())
DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc',
                   'source', 'rpc-api.rst')

VALID = {
    'report_provider_tree': {'host': 'h1', 'providers': [
        {'uuid': ROOT, 'name': 'h1', 'parent_uuid': None, 'generation': None,
         'inventories': {'VCPU': {'total': 8, 'allocation_ratio': 4.0}},
         'traits': ['COMPUTE_NODE']}]},
    'report_allocations': {
        'host': 'h1', 'root_uuid': ROOT, 'generation': 1, 'full': True,
        'allocations': {ROOT: {'project_id': 'p', 'user_id': 'u',
                               'resources': {ROOT: {'VCPU': 1}}}}},
    'heartbeat': {'host': 'h1', 'root_uuid': ROOT,
                  'sent_at': '2026-01-01T00:00:00+00:00'},
    'list_resource_providers': {'host': 'h1'},
    'get_resource_provider': {'uuid': ROOT},
    'get_usages': {'uuid': ROOT},
    'get_allocations': {'consumer_uuid': ROOT},
    'get_allocation_candidates': {'resources': {'VCPU': 1}},
    'set_traits': {'uuid': ROOT, 'traits': ['CUSTOM_A'], 'generation': 1},
    'set_aggregates': {'uuid': ROOT, 'aggregates': [ROOT], 'generation': 1},
    'delete_resource_provider': {'uuid': ROOT},
}


class UntouchableEngine:
    """An engine a refused call must never reach."""

    class dialect:
        name = 'postgresql'

    def begin(self):
        raise AssertionError('the database was touched')


@pytest.fixture
def mgr():
    conf = type('Conf', (), {'placement': type('P', (), {
        'heartbeat_timeout': 60, 'candidate_order': 'spread'})})()
    return manager.PlacementManager(UntouchableEngine(), conf)


def _reason(mgr, name, arguments) -> str:
    with pytest.raises(exception.InvalidInput) as info:
        getattr(mgr, name)({}, **arguments)
    return str(info.value)


def test_every_method_has_a_valid_example():
    assert {m.name for m in methods.TABLE} == set(VALID)
    for name, arguments in VALID.items():
        methods.TABLE.validate(name, copy.deepcopy(arguments))


@pytest.mark.parametrize('name, missing', [
    (m.name, a.name) for m in methods.TABLE for a in m.arguments
    if a.required])
def test_a_missing_argument_is_named(mgr, name, missing):
    arguments = {k: v for k, v in VALID[name].items() if k != missing}
    assert _reason(mgr, name, arguments) == \
        f'Invalid input: {missing}: is required'


@pytest.mark.parametrize('name', sorted(VALID))
@pytest.mark.parametrize('extra', ['force', 'context', 'self'])
def test_an_unknown_argument_is_named(mgr, name, extra):
    assert _reason(mgr, name, dict(VALID[name], **{extra: 1})) == \
        f'Invalid input: {extra}: is not an argument of {name}'


@pytest.mark.parametrize('name, argument, wrong', [
    (m.name, a.name, wrong) for m in methods.TABLE for a in m.arguments
    for wrong in (1.0, True, 'x' * 300, {'k': []}, [{}])
    # True is a valid value of full, not a wrong one.
    if not (a.name == 'full' and wrong is True)])
def test_a_mistyped_argument_is_named(mgr, name, argument, wrong):
    reason = _reason(mgr, name, dict(VALID[name], **{argument: wrong}))
    assert reason.startswith(f'Invalid input: {argument}')


def test_an_integral_float_is_no_integer(mgr):
    tree = copy.deepcopy(VALID['report_provider_tree'])
    tree['providers'][0]['inventories']['VCPU']['total'] = 8.0
    assert _reason(mgr, 'report_provider_tree', tree) == (
        "Invalid input: providers[0].inventories.VCPU.total: 8.0 is not of "
        "type 'integer'")


def test_nan_is_no_allocation_ratio(mgr):
    tree = copy.deepcopy(VALID['report_provider_tree'])
    tree['providers'][0]['inventories']['VCPU']['allocation_ratio'] = float('nan')
    assert 'is not a JSON number' in _reason(mgr, 'report_provider_tree', tree)


def test_a_heartbeat_needs_an_iso_time(mgr):
    assert _reason(mgr, 'heartbeat', dict(VALID['heartbeat'], sent_at='soon')) \
        == "Invalid input: sent_at: 'soon' is not an ISO-8601 time"


def test_every_string_list_and_mapping_has_a_limit():
    for method in methods.TABLE:
        for arg in method.arguments:
            assert validation.unbounded(arg.schema, arg.name) == [], method.name


def _large_host():
    """A host with 500 PCI child providers and 20,000 consumers."""
    children = [str(uuid.uuid4()) for _ in range(500)]
    pci = {'CUSTOM_PCI_8086_10ED': {'total': 64, 'reserved': 0, 'min_unit': 1,
                                    'max_unit': 64, 'step_size': 1,
                                    'allocation_ratio': 1.0}}
    providers = [dict(VALID['report_provider_tree']['providers'][0],
                      generation=7)] + [
        {'uuid': child, 'name': f'h1_0000:{i // 256:02x}:{i % 256:02x}.0',
         'parent_uuid': ROOT, 'generation': 3, 'inventories': pci,
         'traits': ['CUSTOM_PHYSNET_A', 'HW_NIC_SRIOV']}
        for i, child in enumerate(children)]
    allocations = {str(uuid.uuid4()): {
        'project_id': uuid.uuid4().hex, 'user_id': uuid.uuid4().hex,
        'resources': {ROOT: {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20},
                      children[i % 500]: {'CUSTOM_PCI_8086_10ED': 1}}}
        for i in range(20_000)}
    return providers, allocations


def test_the_reports_of_a_large_host_pass_quickly():
    providers, allocations = _large_host()
    started = time.perf_counter()
    methods.TABLE.validate('report_provider_tree',
                           {'host': 'h1', 'providers': providers})
    methods.TABLE.validate('report_allocations', {
        'host': 'h1', 'root_uuid': ROOT, 'generation': 8, 'full': True,
        'allocations': allocations})
    assert time.perf_counter() - started < 5


def test_one_bad_consumer_of_a_large_report_is_named_quickly(mgr):
    _, allocations = _large_host()
    bad = list(allocations)[-1]
    allocations[bad]['resources'][ROOT]['VCPU'] = -2
    started = time.perf_counter()
    reason = _reason(mgr, 'report_allocations', {
        'host': 'h1', 'root_uuid': ROOT, 'generation': 8, 'full': True,
        'allocations': allocations})
    assert time.perf_counter() - started < 5
    assert reason == (f'Invalid input: allocations.{bad}.resources.{ROOT}.VCPU:'
                      ' -2 is less than the minimum of 0')


def test_the_docs_name_every_method_as_the_table_does():
    with open(DOC) as f:
        text = f.read()
    for method in methods.TABLE:
        signature = f'``{methods.TABLE.signature(method.name)}``'
        assert signature in text
        line = text[text.index(signature):].split('\n', 1)[0]
        assert ('(*cast*)' in line) == method.cast, line
