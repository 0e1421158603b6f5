"""Nova's CPU and NUMA vocabulary, black box, on libvirt's test:///default.

The test driver's host has two NUMA cells of 8 CPUs (0-7, 8-15) and no SMT;
its own running domain is unmanaged and uses 2 vCPUs and 8 GiB, so memory is
overcommitted here to leave room.  The tracker runs in this process on the
real test driver, with half of each cell dedicated.
"""

import collections

import pytest

from nova_rt import exception
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod
from nova_rt.virt.host import LibvirtHost
from tests.unit.compute import helpers as h

SHARED = frozenset({0, 1, 2, 3, 8, 9, 10, 11})
DEDICATED = frozenset({4, 5, 6, 7, 12, 13, 14, 15})


@pytest.fixture
def rt(tmp_path):
    cfg = tracker_mod.TrackerConfig(
        host=h.HOST, node=h.HOST, reserved_host_memory_mb=0,
        allocation_ratios={'VCPU': 4.0, 'MEMORY_MB': 16.0, 'DISK_GB': 1.0},
        cpu_shared_set=SHARED, cpu_dedicated_set=DEDICATED)
    source = LibvirtHost('test:///default', instances_path=str(tmp_path))
    tracker = tracker_mod.ResourceTracker(cfg, store_mod.ClaimStore(':memory:'),
                                          host_source=source)
    tracker.load()
    tracker.run_audit()
    return tracker


def flavor(vcpus=4, memory_mb=512, **extra_specs):
    return dict(h.FLAVOR_1, vcpus=vcpus, memory_mb=memory_mb, extra_specs=extra_specs)


def pinned_in_state(rt):
    cells = rt.get_host_state()['numa_topology']['cells']
    return {c['id']: c['pinned_cpus'] for c in cells if c['pinned_cpus']}


def placement_cpus(rt):
    resources = h.held_resources(rt)
    return resources.get('VCPU', 0), resources.get('PCPU', 0)


def test_mixed_guest_pins_the_mask_and_floats_the_rest(rt):
    before = rt.get_host_state()
    inst = h.instance(flavor(**{'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '^0-1'}))
    claim = rt.instance_claim(instance=inst)
    assert claim['resources'] == {'VCPU': 2, 'PCPU': 2, 'MEMORY_MB': 512, 'DISK_GB': 1}
    (cell,) = claim['numa_topology']['cells']
    assert cell['cpuset'] == [0, 1, 2, 3]
    assert set(cell['cpu_pinning']) == {'2', '3'}
    assert set(cell['cpu_pinning'].values()) <= DEDICATED
    state = rt.get_host_state()
    assert state['vcpus_used'] == before['vcpus_used'] + 2
    assert state['pcpus_used'] == 2
    assert pinned_in_state(rt) == {cell['id']: sorted(cell['cpu_pinning'].values())}
    assert state['numa_topology']['cells'][cell['id']]['cpu_usage'] == 2
    assert placement_cpus(rt) == (2, 2)
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert rt.get_host_state() == dict(before, last_audit=rt.get_host_state()['last_audit'])


def test_asymmetric_guest_cells(rt):
    inst = h.instance(flavor(vcpus=3, memory_mb=1024, **{
        'hw:cpu_policy': 'dedicated', 'hw:numa_nodes': '2',
        'hw:numa_cpus.0': '0', 'hw:numa_cpus.1': '1-2',
        'hw:numa_mem.0': '256', 'hw:numa_mem.1': '768'}))
    claim = rt.instance_claim(instance=inst)
    cells = claim['numa_topology']['cells']
    assert [(c['cpuset'], c['memory_mb']) for c in cells] == [([0], 256), ([1, 2], 768)]
    assert {c['id'] for c in cells} == {0, 1}
    assert sum(len(c['cpu_pinning']) for c in cells) == 3 == claim['resources']['PCPU']
    with pytest.raises(exception.InvalidInput, match='hw:numa_mem.K'):
        rt.instance_claim(instance=h.instance(flavor(vcpus=3, memory_mb=1024, **{
            'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0', 'hw:numa_cpus.1': '1-2',
            'hw:numa_mem.0': '256', 'hw:numa_mem.1': '512'})))


def test_emulator_threads_isolate_holds_one_more_pinned_cpu(rt):
    inst = h.instance(flavor(vcpus=2, **{'hw:cpu_policy': 'dedicated',
                                         'hw:emulator_threads_policy': 'isolate'}))
    claim = rt.instance_claim(instance=inst)
    assert claim['resources']['PCPU'] == 3
    (cell,) = claim['numa_topology']['cells']
    (emulator,) = cell['cpuset_reserved']
    assert emulator in DEDICATED and emulator not in cell['cpu_pinning'].values()
    state = rt.get_host_state()
    host_cell = state['numa_topology']['cells'][cell['id']]
    assert host_cell['emulator_cpus'] == [emulator]
    assert emulator in host_cell['pinned_cpus'] and len(host_cell['pinned_cpus']) == 3
    assert state['pcpus_used'] == 3 and placement_cpus(rt) == (0, 3)
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert pinned_in_state(rt) == {} and rt.get_host_state()['pcpus_used'] == 0


def test_thread_policies_on_a_host_without_smt(rt):
    _, view = rt.placement_view()
    assert 'HW_CPU_HYPERTHREADING' not in view['traits']
    claim = rt.instance_claim(instance=h.instance(flavor(
        vcpus=4, **{'hw:cpu_policy': 'dedicated', 'hw:cpu_thread_policy': 'isolate'})))
    assert len(claim['numa_topology']['cells'][0]['cpu_pinning']) == 4
    with pytest.raises(exception.ComputeResourcesUnavailable) as info:
        rt.instance_claim(instance=h.instance(flavor(
            vcpus=2, **{'hw:cpu_policy': 'dedicated', 'hw:cpu_thread_policy': 'require'})))
    assert type(info.value) is exception.ComputeResourcesUnavailable
    assert 'HW_CPU_HYPERTHREADING' in str(info.value)


def test_image_properties_merge_with_the_flavor(rt):
    inst = h.instance(flavor(vcpus=2), image_properties={
        'hw_cpu_policy': 'dedicated', 'hw_numa_nodes': '2'})
    claim = rt.instance_claim(instance=inst)
    assert claim['resources']['PCPU'] == 2
    assert [len(c['cpu_pinning']) for c in claim['numa_topology']['cells']] == [1, 1]
    # The record keeps the image's properties across a restart of the view.
    assert rt.get_host_state()['instances'] == [inst['uuid']]
    for image, specs, names in [
            ({'hw_cpu_policy': 'dedicated'}, {'hw:cpu_policy': 'shared'},
             ('hw:cpu_policy', 'hw_cpu_policy')),
            ({'hw_mem_page_size': '2048'}, {}, ('hw:mem_page_size', 'hw_mem_page_size')),
            ({'hw_pci_numa_affinity_policy': 'required'},
             {'hw:pci_numa_affinity_policy': 'legacy'},
             ('hw:pci_numa_affinity_policy', 'hw_pci_numa_affinity_policy'))]:
        with pytest.raises(exception.InvalidInput) as info:
            rt.instance_claim(instance=h.instance(flavor(**specs), image_properties=image))
        assert all(name in str(info.value) for name in names)


def test_placement_amounts_agree_with_the_pinning(rt):
    flavors = [
        flavor(vcpus=2, **{'hw:cpu_policy': 'dedicated'}),
        flavor(vcpus=3, **{'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '0'}),
        flavor(vcpus=2, **{'resources:PCPU': '3', 'hw:emulator_threads_policy': 'isolate'}),
        flavor(vcpus=2)]
    for f in flavors:
        rt.instance_claim(instance=h.instance(f))
    state = rt.get_host_state()
    pinned = collections.Counter()
    for cell in state['numa_topology']['cells']:
        pinned['PCPU'] += len(cell['pinned_cpus'])
    assert placement_cpus(rt)[1] == pinned['PCPU'] == state['pcpus_used'] == 2 + 1 + 3
