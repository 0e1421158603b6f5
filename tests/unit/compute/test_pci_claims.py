"""PCI passthrough through the tracker: flavor aliases, NUMA affinity,
interface attach/detach, hotplug while allocated, and restarts."""

import json

import pytest

from nova_rt import exception
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod
from nova_rt.pci import device as pcidev
from nova_rt.pci import spec as pci_spec
from tests.unit.compute import helpers as h

PF0, PF1 = '0000:81:00.0', '0000:82:00.0'


def bus():
    """A PF with 4 VFs on NUMA 0, another PF with 4 VFs on NUMA 1."""
    devices = []
    for pf, node in ((PF0, 0), (PF1, 1)):
        devices.append(pcidev.PciDevice(pf, '8086', '10fb', numa_node=node,
                                        dev_type=pcidev.TYPE_PF))
        for fn in range(4):
            devices.append(pcidev.PciDevice(
                pf[:-3] + f'10.{fn}', '8086', '10ed', numa_node=node,
                dev_type=pcidev.TYPE_VF, parent_addr=pf))
    return devices


ALIASES = [json.dumps({'name': 'vf', 'vendor_id': '8086', 'product_id': '10ed',
                       'device_type': 'type-VF'}),
           json.dumps({'name': 'pf', 'vendor_id': '8086', 'product_id': '10fb',
                       'device_type': 'type-PF'})]


class Bus:
    def __init__(self):
        self.devices = bus()

    def __call__(self):
        return list(self.devices)


def make(path=':memory:', source=None, store=None):
    config = tracker_mod.TrackerConfig(
        host=h.HOST, node=h.HOST, reserved_host_memory_mb=0,
        cpu_shared_set=frozenset(range(8)),
        pci_specs=tuple(pci_spec.parse_device_specs(['{"vendor_id": "8086"}'])),
        pci_aliases=pci_spec.parse_aliases(ALIASES))
    rt = tracker_mod.ResourceTracker(
        config, store or store_mod.ClaimStore(path),
        host_source=h.StaticHost(h.numa_host()), pci_source=source or Bus())
    rt.load()
    rt.run_audit()
    return rt


def flavor(alias, numa_nodes=None, policy=None):
    specs = {'pci_passthrough:alias': alias}
    if numa_nodes:
        specs['hw:numa_nodes'] = str(numa_nodes)
    if policy:
        specs['hw:pci_numa_affinity_policy'] = policy
    return dict(h.FLAVOR_1, name=f'pci-{alias}', extra_specs=specs)


def owners(rt):
    return {d['address']: d['instance_uuid']
            for d in rt.get_host_state()['pci_devices'] if d['instance_uuid']}


def test_claim_with_vfs_and_pools():
    rt = make()
    claim = rt.instance_claim(instance=h.instance(flavor('vf:2')))
    assert len(claim['pci_devices']) == 2
    dev = claim['pci_devices'][0]
    assert set(dev) == {'address', 'vendor_id', 'product_id', 'dev_type',
                        'numa_node', 'parent_addr'}
    assert dev['dev_type'] == 'type-VF' and dev['parent_addr'] in (PF0, PF1)
    pools = rt.get_host_state()['pci_pools']
    vf_free = sum(p['count'] for p in pools if p['dev_type'] == 'type-VF')
    assert vf_free == 6
    # a PF whose VF is taken is not offered
    pf_free = sum(p['count'] for p in pools if p['dev_type'] == 'type-PF')
    assert pf_free == 1


def test_pci_shortage_refuses_and_changes_nothing():
    rt = make()
    rt.instance_claim(instance=h.instance(flavor('vf:8')))
    before = owners(rt)
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(flavor('vf:1')))
    assert 'PCI' in str(err.value)
    assert owners(rt) == before
    assert rt.get_host_state()['instances'].__len__() == 1


def test_pf_and_vf_exclude_each_other():
    rt = make()
    rt.instance_claim(instance=h.instance(flavor('pf:2')))
    with pytest.raises(exception.ComputeResourcesUnavailable):
        rt.instance_claim(instance=h.instance(flavor('vf:1')))


def test_numa_affinity_required_picks_the_cell_with_devices():
    rt = make()
    # fill NUMA 0's VFs
    rt.instance_claim(instance=h.instance(flavor('vf:4', numa_nodes=1,
                                                  policy='required')))
    claim = rt.instance_claim(instance=h.instance(flavor(
        'vf:2', numa_nodes=1, policy='required')))
    assert claim['numa_topology']['cells'][0]['id'] == 1
    assert {d['numa_node'] for d in claim['pci_devices']} == {1}


def test_attach_is_idempotent_per_request_and_detach_frees():
    rt = make()
    inst = h.instance(h.FLAVOR_1)
    rt.instance_claim(instance=inst)
    first = rt.claim_pci_devices(instance_uuid=inst['uuid'],
                                 alias_counts={'vf': 1}, request_id='r1')
    again = rt.claim_pci_devices(instance_uuid=inst['uuid'],
                                 alias_counts={'vf': 1}, request_id='r1')
    assert first == again and len(first) == 1
    second = rt.claim_pci_devices(instance_uuid=inst['uuid'],
                                  alias_counts={'vf': 1}, request_id='r2')
    assert second[0]['address'] != first[0]['address']
    with pytest.raises(exception.ClaimConflict):
        rt.claim_pci_devices(instance_uuid=inst['uuid'],
                             alias_counts={'vf': 2}, request_id='r1')
    with pytest.raises(exception.PciDeviceNotFound):
        rt.free_pci_devices(instance_uuid=inst['uuid'],
                            addresses=['0000:00:00.0'])
    rt.free_pci_devices(instance_uuid=inst['uuid'],
                        addresses=[first[0]['address']])
    assert set(owners(rt)) == {second[0]['address']}
    with pytest.raises(exception.InstanceNotFound):
        rt.claim_pci_devices(instance_uuid='nope', alias_counts={'vf': 1},
                             request_id='r3')


def test_unknown_alias_is_invalid_input():
    rt = make()
    with pytest.raises(exception.InvalidInput):
        rt.instance_claim(instance=h.instance(flavor('gpu:1')))


def test_device_removed_while_allocated_stays_owned_until_freed():
    source = Bus()
    rt = make(source=source)
    inst = h.instance(flavor('vf:1'))
    claim = rt.instance_claim(instance=inst)
    rt.update_instance(instance_uuid=inst['uuid'], vm_state='active')
    address = claim['pci_devices'][0]['address']
    # the device vanishes from the bus (hotplug remove)
    rt.pci_event('remove', None, address)
    devices = {d['address']: d for d in rt.get_host_state()['pci_devices']}
    assert devices[address]['status'] == 'removed'
    assert devices[address]['instance_uuid'] == inst['uuid']
    # nobody else ever gets it
    other = rt.instance_claim(instance=h.instance(flavor('vf:7')))
    assert address not in {d['address'] for d in other['pci_devices']}
    # a full audit (bus without it) keeps it owned too
    source.devices = [d for d in source.devices if d.address != address]
    rt.run_audit()
    assert owners(rt)[address] == inst['uuid']
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert address not in {d['address'] for d in rt.get_host_state()['pci_devices']}


def test_pci_claims_survive_a_restart(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    rt = make(path)
    inst = h.instance(flavor('vf:2'))
    rt.instance_claim(instance=inst)
    rt.update_instance(instance_uuid=inst['uuid'], vm_state='active')
    extra = rt.claim_pci_devices(instance_uuid=inst['uuid'],
                                 alias_counts={'vf': 1}, request_id='r1')
    before = owners(rt)
    assert len(before) == 3
    rt.store.close()
    again = make(path)
    assert owners(again) == before
    statuses = {d['address']: d['status']
                for d in again.get_host_state()['pci_devices']}
    assert all(statuses[a] == 'allocated' for a in before)
    with pytest.raises(exception.ComputeResourcesUnavailable):
        again.instance_claim(instance=h.instance(flavor('vf:6')))
    assert again.claim_pci_devices(instance_uuid=inst['uuid'],
                                   alias_counts={'vf': 1},
                                   request_id='r1') == extra


def test_move_with_pci_keeps_devices_through_finish_and_frees_on_revert():
    rt = make()
    inst = h.instance(flavor('vf:1'))
    mig = h.migration(inst, flavor('vf:1'), source='src')
    claim = rt.resize_claim(instance=inst, migration=mig)
    address = claim['pci_devices'][0]['address']
    assert owners(rt) == {address: inst['uuid']}
    rt.finish_move(migration_uuid=mig['uuid'])
    assert owners(rt) == {address: inst['uuid']}
    rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert owners(rt) == {}
