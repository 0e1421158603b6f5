import pytest

from nova_rt import exception
from nova_rt.pci import manager, spec
from nova_rt.pci.device import PciDevice

from tests.unit.pci.helpers import PF0, PF1, host_devices

SPECS = ['{"vendor_id": "8086", "product_id": "10ed", "physical_network": "physnet1"}',
         '{"vendor_id": "8086", "product_id": "10fb"}',
         '{"vendor_id": "10de"}']
ALIASES = spec.parse_aliases([
    '{"name": "vf", "vendor_id": "8086", "product_id": "10ed", "device_type": "type-VF"}',
    '{"name": "pf", "vendor_id": "8086", "product_id": "10fb", "device_type": "type-PF"}',
    '{"name": "gpu", "vendor_id": "10de", "product_id": "1eb8"}'])


def req(name, count=1, policy=None):
    return spec.requests_from_alias_counts({name: count}, ALIASES, policy)


@pytest.fixture
def tracker():
    t = manager.PciDeviceTracker(spec.parse_device_specs(SPECS))
    assert t.set_devices(host_devices()) is True
    return t


def status(t, address):
    return t.get(address).status


def test_only_matching_devices_are_tracked(tracker):
    addrs = [d['address'] for d in tracker.devices()]
    assert '0000:00:1f.2' not in addrs
    assert len(addrs) == 11
    assert tracker.get('0000:81:10.0').tags == {'physical_network': 'physnet1'}
    assert tracker.set_devices(host_devices()) is False


def test_pools_count_available_devices(tracker):
    pools = {(p['vendor_id'], p['product_id'], p['numa_node'], p['dev_type'],
              p.get('parent_addr')): p for p in tracker.pools()}
    vf0 = pools[('8086', '10ed', 0, 'type-VF', PF0)]
    assert vf0['count'] == 4 and vf0['tags'] == {'physical_network': 'physnet1'}
    assert pools[('10de', '1eb8', None, 'type-PCI', None)]['count'] == 1
    tracker.allocate('i1', 'c1', ['0000:81:10.0'])
    pools = {(p['product_id'], p['numa_node'], p['dev_type']): p['count']
             for p in tracker.pools()}
    assert pools[('10ed', 0, 'type-VF')] == 3
    assert pools[('10fb', 0, 'type-PF')] == 0  # its VF is used


def test_pf_vf_rules(tracker):
    view = tracker.allocate('i1', 'c1', [PF0])
    assert view == [{'address': PF0, 'vendor_id': '8086', 'product_id': '10fb',
                     'dev_type': 'type-PF', 'numa_node': 0, 'parent_addr': None}]
    assert {status(tracker, f'0000:81:10.{i}') for i in range(4)} == {'unavailable'}
    assert status(tracker, '0000:c1:10.0') == 'available'
    with pytest.raises(exception.ComputeResourcesUnavailable, match='unavailable'):
        tracker.allocate('i2', 'c2', ['0000:81:10.1'])
    assert tracker.free(claim_key='c1') == [PF0]
    assert {status(tracker, f'0000:81:10.{i}') for i in range(4)} == {'available'}

    tracker.allocate('i2', 'c2', ['0000:81:10.1', '0000:81:10.2'])
    assert status(tracker, PF0) == 'unavailable'
    tracker.free(instance_uuid='i2', addresses=['0000:81:10.1'])
    assert status(tracker, PF0) == 'unavailable'
    tracker.free(instance_uuid='i2')
    assert status(tracker, PF0) == 'available'


def test_allocate_is_all_or_nothing(tracker):
    before = tracker.to_dict()
    for addrs in (['0000:81:10.0', '0000:99:00.0'], ['0000:81:10.0', '0000:81:10.0'],
                  [PF0, '0000:81:10.0'], ['0000:00:1f.2']):
        with pytest.raises(exception.ComputeResourcesUnavailable):
            tracker.allocate('i1', 'c1', addrs)
        assert tracker.to_dict() == before
    with pytest.raises(exception.InvalidInput):
        tracker.allocate('i1', 'c1', ['0000:81:10.0'], status='available')
    tracker.allocate('i1', 'c1', ['0000:81:10.0'])
    with pytest.raises(exception.ClaimConflict):
        tracker.allocate('i2', 'c1', ['0000:81:10.1'])


def test_claimed_allocated_available(tracker):
    tracker.allocate('i1', 'c1', ['0000:3b:00.0'])
    assert status(tracker, '0000:3b:00.0') == 'claimed'
    tracker.mark_allocated('c1')
    dev = tracker.get('0000:3b:00.0')
    assert (dev.status, dev.instance_uuid, dev.claim_key) == ('allocated', 'i1', 'c1')
    assert [d.address for d in tracker.owned('c1')] == ['0000:3b:00.0']
    tracker.free(claim_key='c1')
    dev = tracker.get('0000:3b:00.0')
    assert (dev.status, dev.instance_uuid, dev.claim_key) == ('available', None, None)
    assert tracker.claim_keys() == {}


def test_free_unknown_address_is_an_error_and_changes_nothing(tracker):
    tracker.allocate('i1', 'c1', ['0000:3b:00.0'])
    before = tracker.to_dict()
    with pytest.raises(exception.PciDeviceNotFound, match='0000:d8:00.0'):
        tracker.free(instance_uuid='i1', addresses=['0000:3b:00.0', '0000:d8:00.0'])
    assert tracker.to_dict() == before
    with pytest.raises(exception.InvalidInput):
        tracker.free()


def test_removed_while_free_disappears(tracker):
    devs = [d for d in host_devices() if d.address != '0000:d8:00.0']
    assert tracker.set_devices(devs) is True
    assert tracker.get('0000:d8:00.0') is None


def test_removed_while_allocated_stays_owned_until_freed(tracker):
    tracker.allocate('i1', 'c1', ['0000:d8:00.0'])
    tracker.mark_allocated('c1')
    assert tracker.remove_device('0000:d8:00.0') is True
    dev = tracker.get('0000:d8:00.0')
    assert (dev.status, dev.instance_uuid) == ('removed', 'i1')
    assert all(p['count'] == 0 or p['numa_node'] != 1 or p['vendor_id'] != '10de'
               for p in tracker.pools())
    # Back on the bus while still held: owned again, in the claim's state.
    again = PciDevice('0000:d8:00.0', '10de', '1eb8', numa_node=1)
    assert tracker.add_device(again) is True
    assert status(tracker, '0000:d8:00.0') == 'allocated'
    tracker.remove_device('0000:d8:00.0')
    assert tracker.free(claim_key='c1') == ['0000:d8:00.0']
    assert tracker.get('0000:d8:00.0') is None


def test_removed_pf_keeps_vfs_unavailable(tracker):
    tracker.allocate('i1', 'c1', [PF1])
    tracker.set_devices([d for d in host_devices() if d.address != PF1])
    assert status(tracker, PF1) == 'removed'
    assert status(tracker, '0000:c1:10.0') == 'unavailable'
    tracker.free(instance_uuid='i1')
    assert status(tracker, '0000:c1:10.0') == 'available'


def test_hotplug_add_change_and_events(tracker):
    new = PciDevice('0000:5e:00.0', '10de', '1eb8', numa_node=0)
    assert tracker.handle_event('add', new, new.address) is True
    assert status(tracker, '0000:5e:00.0') == 'available'
    assert tracker.handle_event('add', new, new.address) is False
    moved = PciDevice('0000:5e:00.0', '10de', '1eb8', numa_node=1)
    assert tracker.handle_event('change', moved, moved.address) is True
    assert tracker.get('0000:5e:00.0').numa_node == 1
    other = PciDevice('0000:5e:00.0', '1234', '5678')
    assert tracker.change_device(other) is True  # no longer matches: dropped
    assert tracker.get('0000:5e:00.0') is None
    assert tracker.handle_event('remove', None, '0000:3b:00.0') is True
    assert tracker.get('0000:3b:00.0') is None
    assert tracker.handle_event('remove', None, '0000:77:00.0') is False


def test_vf_matched_by_pf_address_when_pf_arrives_late():
    t = manager.PciDeviceTracker(spec.parse_device_specs(
        ['{"address": "0000:81:00.0", "product_id": "10ed"}']))
    vf = PciDevice('0000:81:10.0', '8086', '10ed', dev_type='type-VF',
                   parent_addr=PF0)
    assert t.add_device(vf) is True  # the address of its parent is enough
    assert t.get(vf.address) is not None


def test_select_policies(tracker):
    assert tracker.select(req('gpu', 1), numa_nodes={1}) == ['0000:05:00.0']
    assert tracker.select(req('gpu', 2), numa_nodes={1}) == \
        ['0000:05:00.0', '0000:d8:00.0']
    assert tracker.select(req('gpu', 3), numa_nodes={1}) is None
    assert tracker.select(req('gpu', 1, 'required'), numa_nodes={1}) == ['0000:d8:00.0']
    assert tracker.select(req('gpu', 2, 'required'), numa_nodes={1}) is None
    assert tracker.select(req('gpu', 3, 'preferred'), numa_nodes={1}) == \
        ['0000:d8:00.0', '0000:05:00.0', '0000:3b:00.0']
    assert tracker.select(req('gpu', 3), numa_nodes=None) is not None
    sockets = {0: 0, 1: 0, 2: 1}
    assert tracker.select(req('gpu', 2, 'socket'), {1}, sockets) == \
        ['0000:3b:00.0', '0000:d8:00.0']
    assert tracker.select(req('gpu', 1, 'socket'), {2}, sockets) is None


def test_select_respects_pf_vf_exclusion_and_changes_nothing(tracker):
    before = tracker.to_dict()
    chosen = tracker.select(req('pf', 1) + req('vf', 6))
    assert chosen is None  # either PF kills 4 or 2 of the 6 VFs
    chosen = tracker.select(req('pf', 1) + req('vf', 2))
    assert chosen == [PF0, '0000:c1:10.0', '0000:c1:10.1']
    assert tracker.to_dict() == before
    tracker.allocate('i1', 'c1', chosen)
    assert tracker.select(req('vf', 1)) is None


def test_restore(tracker):
    tracker.allocate('i1', 'c1', ['0000:81:10.0'])
    tracker.mark_allocated('c1')
    # A fresh start: claims from the store, then what udev sees.
    fresh = manager.PciDeviceTracker(spec.parse_device_specs(SPECS))
    stored = [d.to_dict() for d in tracker.owned('c1')]
    gone = PciDevice('0000:99:00.0', '10de', '1eb8').to_dict()
    assert fresh.restore('i1', 'c1', stored + [gone], 'allocated') == []
    assert status(fresh, '0000:81:10.0') == 'removed'
    fresh.set_devices(host_devices())
    assert status(fresh, '0000:81:10.0') == 'allocated'
    assert status(fresh, '0000:99:00.0') == 'removed'
    assert status(fresh, PF0) == 'unavailable'
    assert fresh.restore('i2', 'c2', stored, 'claimed') == ['0000:81:10.0']
    assert fresh.get('0000:81:10.0').instance_uuid == 'i1'
    assert sorted(fresh.free(instance_uuid='i1')) == ['0000:81:10.0', '0000:99:00.0']
    assert fresh.get('0000:99:00.0') is None
