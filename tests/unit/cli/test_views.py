"""Table views of the nova-rt CLI from plain data."""

import pytest

from nova_rt.cli import views


def _state(**changes):
    state = {
        'host': 'h2', 'node': 'h2',
        'hypervisor': {'uri': 'test:///default', 'connected': True},
        'vcpus': 16, 'vcpus_used': 5, 'pcpus': 0, 'pcpus_used': 0,
        'memory_mb': 32768, 'memory_mb_used': 8704, 'local_gb': 100,
        'local_gb_used': 30, 'running_vms': 2, 'current_workload': 0,
        'allocation_ratios': {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0},
        'numa_topology': {'cells': [
            {'id': 0, 'cpuset': [0, 1, 2, 3], 'pcpuset': [], 'memory_mb': 2048,
             'cpu_usage': 2, 'memory_usage_mb': 1024, 'pinned_cpus': [],
             'mempages': [{'size_kb': 4, 'total': 524288, 'used': 0}]}]},
        'pci_pools': [{'vendor_id': '8086', 'product_id': '10ed', 'numa_node': 0,
                       'dev_type': 'type-VF', 'count': 2, 'tags': {},
                       'parent_addr': '0000:81:00.0'}],
        'pci_devices': [
            {'address': f'0000:81:10.{i}', 'vendor_id': '8086', 'product_id': '10ed',
             'dev_type': 'type-VF', 'status': 'claimed' if i == 0 else 'available',
             'numa_node': 0, 'parent_addr': '0000:81:00.0',
             'instance_uuid': 'vm-b' if i == 0 else None} for i in range(3)],
        'instances': ['vm-a', 'vm-b'], 'migrations': [],
        'unmanaged_domains': [{'uuid': 'd1', 'name': 'legacy', 'vcpus': 1,
                               'memory_mb': 1024}],
        'last_audit': {'at': '2026-01-01T00:00:00+00:00', 'duration_s': 0.01},
    }
    state.update(changes)
    return state


def _row(text, first):
    return next(line for line in text.splitlines()
                if line.startswith('|') and line.split('|')[1].strip() == first)


def test_host_show_has_bars_cells_pools_and_unmanaged_domains():
    text = views.host_show(_state())
    assert '[###.......] 5/16  (x4 allocation ratio)' in _row(text, 'VCPU')
    assert '[###.......] 8704/32768' in _row(text, 'MEMORY_MB')
    with pytest.raises(StopIteration):            # no dedicated CPUs: no row
        _row(text, 'PCPU')
    cell = _row(text, '0')
    assert '0-3' in cell and '[#####.....] 2/4' in cell and '1024/2048' in cell
    pool = _row(text, '8086:10ed')
    assert '0000:81:00.0' in pool and '1/3' in pool   # 1 of 3 VFs in use
    assert 'vm-b' in _row(text, '0000:81:10.0')
    assert '| legacy ' in text


def test_host_show_of_a_bare_host_says_none():
    text = views.host_show(_state(numa_topology=None, pci_pools=[], pci_devices=[],
                                  unmanaged_domains=[], pcpus=4, pcpus_used=4))
    assert 'NUMA cells:\n  none' in text
    assert 'PCI pools:\n  none' in text
    assert '[##########] 4/4' in _row(text, 'PCPU')


def test_pool_size_counts_devices_of_that_pool_only():
    state = _state()
    other = dict(state['pci_devices'][1], address='0000:82:10.0',
                 parent_addr='0000:82:00.0')
    removed = dict(state['pci_devices'][1], address='0000:81:10.7', status='removed')
    assert views.pool_size(state['pci_pools'][0],
                           state['pci_devices'] + [other, removed]) == 3


def test_host_list_rows_with_placement_usage():
    hosts = [{'host': 'h1', 'alive': True, 'heartbeat_age_s': 1.2,
              'capacity': {'VCPU': 64, 'MEMORY_MB': 1000, 'CUSTOM_X': 2},
              'usages': {'VCPU': 32}},
             {'host': 'h2', 'alive': False, 'heartbeat_age_s': None,
              'capacity': {}, 'usages': {}}]
    text = views.host_list(hosts)
    header = [c.strip() for c in text.splitlines()[1].split('|')[1:-1]]
    assert header == ['Host', 'Alive', 'Heartbeat', 'VCPU', 'MEMORY_MB', 'CUSTOM_X']
    assert '[#####.....] 32/64' in _row(text, 'h1')
    assert '1s ago' in _row(text, 'h1')
    assert _row(text, 'h2').split('|')[2].strip() == 'no'
    assert views.host_list([]) == 'No compute hosts have reported to placement.'


def test_candidates_and_providers():
    assert 'No allocation candidates' in views.candidates([])
    text = views.candidates([{'root_uuid': 'r1', 'host': 'h1',
                              'allocation': {'r1': {'VCPU': 2}, 'c1': {'SRIOV_NET_VF': 1}},
                              'free': {'VCPU': 10}}])
    assert 'VCPU=2' in text and 'SRIOV_NET_VF=1' in text and 'VCPU=10' in text
    text = views.provider_show({
        'uuid': 'r1', 'name': 'h1', 'host': 'h1', 'parent_uuid': None,
        'root_uuid': 'r1', 'generation': 3, 'alive': True, 'last_heartbeat': None,
        'traits': ['HW_CPU_X86_AVX2'], 'aggregates': [],
        'inventories': {'MEMORY_MB': {'total': 2048, 'reserved': 512, 'min_unit': 1,
                                      'max_unit': 2048, 'step_size': 1,
                                      'allocation_ratio': 1.0, 'capacity': 1536}},
        'usages': {'MEMORY_MB': 768}})
    assert 'HW_CPU_X86_AVX2' in text
    assert '[#####.....] 768/1536' in _row(text, 'MEMORY_MB')


def test_claim_view_lists_resources_and_devices():
    text = views.claim({'instance_uuid': 'vm', 'migration_uuid': None, 'host': 'h',
                        'node': 'h', 'resources': {'VCPU': 1},
                        'numa_topology': {'cells': [{'id': 1, 'cpuset': [4, 5],
                                                     'memory_mb': 512}]},
                        'pci_devices': [{'address': '0000:81:10.0', 'vendor_id': '8086',
                                         'product_id': '10ed', 'dev_type': 'type-VF'}]})
    assert 'VCPU=1' in text
    assert 'cell 1: cpus 4-5, 512 MB' in text
    assert '0000:81:10.0 8086:10ed type-VF' in text
