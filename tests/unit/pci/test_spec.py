import json

import pytest

from nova_rt import exception
from nova_rt.pci import spec
from nova_rt.pci.device import PciDevice

PF = PciDevice('0000:81:00.0', '8086', '10fb', dev_type='type-PF',
               devname='ens1f0', numa_node=0)
VF = PciDevice('0000:81:10.2', '8086', '10ed', dev_type='type-VF',
               parent_addr='0000:81:00.0', numa_node=0)
GPU = PciDevice('0000:3b:00.0', '10de', '1eb8', numa_node=0)


def one(entry):
    specs = spec.parse_device_specs([json.dumps(entry)])
    assert len(specs) == 1
    return specs[0]


def test_vendor_product_match_and_normalise():
    s = one({'vendor_id': '10DE', 'product_id': '1eb8'})
    assert s.match(GPU)
    assert not s.match(VF)
    assert one({'vendor_id': '8086', 'product_id': '*'}).match(VF)
    assert one({}).match(GPU)


def test_short_hex_is_padded():
    dev = PciDevice('0000:00:01.0', '0abc', '0001')
    assert one({'vendor_id': 'abc', 'product_id': '1'}).match(dev)


@pytest.mark.parametrize('address,matches', [
    ('0000:81:10.2', True), ('*:81:10.*', True), ('81:10.2', True),
    (':81:', True), ('0000:81:00.*', False), ('*:*:*.3', False),
    ('*', True), ('0000:82:10.2', False),
])
def test_glob_address(address, matches):
    assert one({'address': address}).match(VF, PF) is matches


def test_exact_pf_address_matches_its_vfs_but_a_glob_does_not():
    exact = one({'address': '0000:81:00.0', 'vendor_id': '8086',
                 'product_id': '10ed'})
    assert exact.match(VF, PF)
    assert exact.match(VF)  # parent known only by address
    assert not exact.match(GPU)
    assert not one({'address': '0000:81:00.*', 'product_id': '10ed'}).match(VF, PF)


def test_regex_address():
    s = one({'address': {'domain': '.*', 'bus': '81', 'slot': '1[01]',
                         'function': '[2-7]'}})
    assert s.match(VF)
    assert not s.match(PF)
    assert not s.match(GPU)


def test_devname_matches_interface_and_vfs_of_that_pf():
    s = one({'devname': 'ens1f0'})
    assert s.match(PF)
    assert s.match(VF, PF)
    assert not s.match(VF, None)
    assert not s.match(GPU)


def test_tags_are_kept_and_normalised():
    s = one({'vendor_id': '8086', 'physical_network': 'physnet1',
             'trusted': True, 'remote_managed': 'False',
             'resource_class': 'custom_nic', 'traits': 'custom_a, CUSTOM_B'})
    assert s.tags == {'physical_network': 'physnet1', 'trusted': 'true',
                      'remote_managed': 'false', 'resource_class': 'CUSTOM_NIC',
                      'traits': 'CUSTOM_A,CUSTOM_B'}


def test_list_of_specs_in_one_value():
    specs = spec.parse_device_specs(['[{"vendor_id": "8086"}, {"vendor_id": "10de"}]',
                                     '{"devname": "eth0"}'])
    assert len(specs) == 3


@pytest.mark.parametrize('entry,words', [
    ({'address': '0000:81:00.0', 'devname': 'eth0'}, 'both'),
    ({'address': '0000:100:00.0'}, 'out of range'),
    ({'address': '0000:81:20.0'}, 'slot'),
    ({'address': '0000:81:00.8'}, 'function'),
    ({'address': '10000:81:00.0'}, 'domain'),
    ({'address': 'zz:00.0'}, 'not hexadecimal'),
    ({'address': {'bus': '(81'}}, 'regular expression'),
    ({'address': {'bus': '81', 'lane': '1'}}, 'unknown keys'),
    ({'address': 12}, 'string'),
    ({'vendor_id': 'xyz'}, 'vendor_id'),
    ({'product_id': '12345'}, 'product_id'),
    ({'trusted': 'maybe'}, 'trusted'),
    ({'traits': 'bad-trait'}, 'traits'),
    ({'devname': ''}, 'devname'),
])
def test_invalid_specs_name_the_problem(entry, words):
    with pytest.raises(exception.InvalidInput) as err:
        spec.parse_device_specs([json.dumps(entry)])
    assert words in str(err.value)
    assert 'device_spec #1' in str(err.value)


@pytest.mark.parametrize('raw', ['{not json', '"a string"', '[]', '[1]'])
def test_malformed_json(raw):
    with pytest.raises(exception.InvalidInput, match='device_spec'):
        spec.parse_device_specs([raw])


ALIASES = [
    '{"name": "nic", "vendor_id": "8086", "product_id": "10ed", '
    '"device_type": "type-VF", "numa_policy": "required"}',
    '{"name": "nic", "vendor_id": "15b3", "product_id": "1018", '
    '"device_type": "type-VF", "numa_policy": "required"}',
    '{"name": "gpu", "vendor_id": "10de", "product_id": "1eb8"}',
]


def test_aliases_same_name_is_or():
    aliases = spec.parse_aliases(ALIASES)
    assert set(aliases) == {'nic', 'gpu'}
    assert aliases['nic'].specs == (
        {'vendor_id': '8086', 'product_id': '10ed', 'dev_type': 'type-VF'},
        {'vendor_id': '15b3', 'product_id': '1018', 'dev_type': 'type-VF'})
    [req] = spec.requests_from_alias_counts({'nic': 2}, aliases)
    assert req.numa_policy == 'required' and req.count == 2
    assert req.matches(VF)
    assert req.matches(PciDevice('0000:c1:00.2', '15b3', '1018',
                                 dev_type='type-VF'))
    assert not req.matches(PF)


@pytest.mark.parametrize('raw,words', [
    ('{"vendor_id": "8086"}', 'name'),
    ('{"name": "a", "device_type": "type-XX"}', 'device_type'),
    ('{"name": "a", "numa_policy": "sometimes"}', 'numa_policy'),
    ('{"name": "a", "colour": "red"}', 'unknown keys'),
    ('{"name": "a", "vendor_id": "zz"}', 'vendor_id'),
    ('not json', 'JSON'),
])
def test_invalid_aliases(raw, words):
    with pytest.raises(exception.InvalidInput, match=words):
        spec.parse_aliases([raw])


def test_alias_redefined_with_other_policy_is_refused():
    with pytest.raises(exception.InvalidInput, match='already defined'):
        spec.parse_aliases(['{"name": "a", "numa_policy": "required"}',
                            '{"name": "a", "numa_policy": "preferred"}'])


def test_requests_from_flavor_policy_override_and_default():
    aliases = spec.parse_aliases(ALIASES)
    reqs = spec.requests_from_flavor(
        {'pci_passthrough:alias': 'nic:2, gpu:1'}, aliases)
    assert [(r.alias_name, r.count, r.numa_policy) for r in reqs] == [
        ('nic', 2, 'required'), ('gpu', 1, 'legacy')]
    reqs = spec.requests_from_flavor(
        {'pci_passthrough:alias': 'nic:1,gpu:1',
         'hw:pci_numa_affinity_policy': 'socket'}, aliases)
    assert {r.numa_policy for r in reqs} == {'socket'}
    assert spec.requests_from_flavor({}, aliases) == []


@pytest.mark.parametrize('extra,words', [
    ({'pci_passthrough:alias': 'nope:1'}, 'not defined'),
    ({'pci_passthrough:alias': 'nic'}, 'alias:count'),
    ({'pci_passthrough:alias': 'nic:x'}, 'alias:count'),
    ({'pci_passthrough:alias': 'nic:0'}, 'alias:count'),
    ({'pci_passthrough:alias': 'nic:1,'}, 'alias:count'),
    ({'pci_passthrough:alias': 'nic:1',
      'hw:pci_numa_affinity_policy': 'bogus'}, 'hw:pci_numa_affinity_policy'),
])
def test_bad_flavor_requests(extra, words):
    with pytest.raises(exception.InvalidInput, match=words):
        spec.requests_from_flavor(extra, spec.parse_aliases(ALIASES))


def test_alias_counts_validation():
    aliases = spec.parse_aliases(ALIASES)
    with pytest.raises(exception.InvalidInput, match='count'):
        spec.requests_from_alias_counts({'nic': -1}, aliases)
    with pytest.raises(exception.InvalidInput, match='count'):
        spec.requests_from_alias_counts({'nic': True}, aliases)
    with pytest.raises(exception.InvalidInput, match='not defined'):
        spec.requests_from_alias_counts({'x': 1}, aliases)
    [req] = spec.requests_from_alias_counts({'gpu': 1}, aliases, 'preferred')
    assert req.numa_policy == 'preferred'
