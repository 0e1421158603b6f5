"""VCPU/PCPU sets as Nova's libvirt driver computes them (Train+)."""

import pytest

from nova_rt import exception
from nova_rt.hardware.cpu_inventory import cpu_inventory, parse_cpu_set_option, split_cells
from nova_rt.virt import capabilities
from tests.unit.virt.fixtures import read

ONLINE = frozenset(range(16))


@pytest.fixture(scope='module')
def dedicated_host():
    caps = capabilities.parse_capabilities(read('caps_dedicated_host.xml'))
    online = frozenset().union(*(c.cpus for c in caps.numa_cells)) - caps.cpus_without_topology
    return capabilities.restrict_to_cpus(caps.numa_cells, online), online


def test_neither_set_all_online_are_vcpus():
    assert cpu_inventory(ONLINE, None, None) == (ONLINE, frozenset())


def test_only_dedicated_no_vcpus():
    assert cpu_inventory(ONLINE, None, {2, 3}) == (frozenset(), frozenset({2, 3}))


def test_only_shared():
    assert cpu_inventory(ONLINE, {0, 1}, None) == (frozenset({0, 1}), frozenset())


def test_both_sets(dedicated_host):
    cells, online = dedicated_host
    shared = parse_cpu_set_option('[compute] cpu_shared_set', '0-1')
    dedicated = parse_cpu_set_option('[compute] cpu_dedicated_set', '2-6')
    vcpus, pcpus = cpu_inventory(online, shared, dedicated)
    assert (vcpus, pcpus) == (frozenset({0, 1}), frozenset(range(2, 7)))
    assert split_cells(cells, vcpus, pcpus) == [(frozenset({0, 1}), frozenset(range(2, 7)))]


def test_dedicated_naming_offline_cpu_is_config_error(dedicated_host):
    _cells, online = dedicated_host          # CPU 7 is offline on this host
    with pytest.raises(exception.ConfigError) as err:
        cpu_inventory(online, None, parse_cpu_set_option('x', '2-7'))
    assert '[compute] cpu_dedicated_set' in str(err.value)
    assert 'not online: 7' in str(err.value)


def test_shared_naming_missing_cpus_is_config_error():
    with pytest.raises(exception.ConfigError,
                       match=r'\[compute\] cpu_shared_set names CPUs that are not online: 16-17'):
        cpu_inventory(ONLINE, {0, 16, 17}, None)


def test_overlap_is_config_error():
    with pytest.raises(exception.ConfigError, match='must not overlap.*CPUs 2-3'):
        cpu_inventory(ONLINE, {0, 1, 2, 3}, {2, 3, 4})


def test_empty_configured_set_is_config_error():
    with pytest.raises(exception.ConfigError, match='cpu_dedicated_set is set but names no CPU'):
        cpu_inventory(ONLINE, None, set())


@pytest.mark.parametrize('value', [None, '', '   '])
def test_unset_or_blank_option_is_none(value):
    assert parse_cpu_set_option('[compute] cpu_shared_set', value) is None


@pytest.mark.parametrize('value, message', [
    ('0-x', "0-x"), ('3-1', 'greater'), ('0-3,^0-3', 'names no CPU')])
def test_bad_option_value(value, message):
    with pytest.raises(exception.ConfigError, match=message) as err:
        parse_cpu_set_option('[compute] cpu_dedicated_set', value)
    assert '[compute] cpu_dedicated_set' in str(err.value)


def test_split_cells_two_sockets():
    cells = capabilities.parse_capabilities(
        read('caps_2socket_smt_hugepages.xml')).numa_cells
    vcpus, pcpus = cpu_inventory(ONLINE, {0, 8, 4, 12}, set(ONLINE) - {0, 8, 4, 12})
    (c0_shared, c0_ded), (c1_shared, c1_ded) = split_cells(cells, vcpus, pcpus)
    assert c0_shared == {0, 8} and c1_shared == {4, 12}
    assert c0_ded == {1, 2, 3, 9, 10, 11}
    assert c1_ded == {5, 6, 7, 13, 14, 15}
