"""Table views of the nova-rt CLI from plain data."""


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


def test_host_show_has_bars_cells_pools_and_unmanaged_domains():
    text = views.HOST_SHOW.text(_state())
    assert text['vcpus_used'] == '[###.......] 5/16  (x4 allocation ratio)'
    assert text['memory_mb_used'] == '[###.......] 8704/32768'
    assert text['pcpus_used'] == '-'              # no dedicated CPUs
    cell = text['numa_topology']
    assert cell.startswith('cell 0: cpus 0-3 ')
    assert 'cpu [#####.....] 2/4' in cell and '1024/2048' in cell
    assert '4K 0/524288' in cell
    pool = text['pci_pools']
    assert pool.startswith('8086:10ed type-VF numa 0 PF 0000:81:00.0')
    assert pool.endswith('in use [###.......] 1/3')   # 1 of 3 VFs in use
    assert text['pci_devices'] == ('0000:81:10.0 type-VF claimed vm-b\n'
                                   '(2 not in use)')
    assert text['unmanaged_domains'] == 'legacy d1: 1 vCPU, 1024 MB'
    assert text['last_audit'] == '2026-01-01T00:00:00+00:00 (0.010s)'


def test_host_show_of_a_bare_host_says_none():
    text = views.HOST_SHOW.text(_state(numa_topology=None, pci_pools=[],
                                       pci_devices=[], unmanaged_domains=[],
                                       pcpus=4, pcpus_used=4, last_audit=None))
    assert (text['numa_topology'], text['pci_pools'], text['pci_devices'],
            text['unmanaged_domains'], text['last_audit']) == ('-',) * 5
    assert text['pcpus_used'] == '[##########] 4/4'


def test_pool_size_counts_devices_of_that_pool_only():
    state = _state()
    other = dict(state['pci_devices'][1], address='0000:82:10.0',
                 parent_addr='0000:82:00.0')
    removed = dict(state['pci_devices'][1], address='0000:81:10.7', status='removed')
    assert views.pool_size(state['pci_pools'][0],
                           state['pci_devices'] + [other, removed]) == 3


def test_host_list_usage_as_bars_against_capacity():
    host = {'host': 'h1', 'alive': True, 'heartbeat_age_s': 1.2,
            'capacity': {'VCPU': 64, 'MEMORY_MB': 1000, 'CUSTOM_X': 2},
            'usages': {'VCPU': 32}}
    text = views.HOST_LIST.text(host)
    assert text['usages'].splitlines() == [
        'VCPU      [#####.....] 32/64',
        'MEMORY_MB [..........] 0/1000',
        'CUSTOM_X  [..........] 0/2']
    assert text['heartbeat_age_s'] == '1s ago'
    silent = views.HOST_LIST.text({'host': 'h2', 'alive': False,
                                   'heartbeat_age_s': None, 'capacity': {},
                                   'usages': {}})
    assert silent == {'heartbeat_age_s': '-', 'usages': '-'}


def test_candidates_and_providers():
    text = views.CANDIDATES.text({'root_uuid': 'r1', 'host': 'h1',
                                  'allocation': {'r1': {'VCPU': 2},
                                                 'c1': {'SRIOV_NET_VF': 1}},
                                  'free': {'VCPU': 10}})
    assert text['allocation'] == 'VCPU=2\nSRIOV_NET_VF=1'
    text = views.PROVIDER_SHOW.text({
        'uuid': 'r1', 'inventories': {'MEMORY_MB': {
            'total': 2048, 'reserved': 512, 'min_unit': 1, 'max_unit': 2048,
            'step_size': 1, 'allocation_ratio': 1.0, 'capacity': 1536}},
        'usages': {'MEMORY_MB': 768}})
    assert text['inventories'] == (
        'MEMORY_MB: total 2048, reserved 512, ratio 1.0, units 1..2048 step 1, '
        'used [#####.....] 768/1536')


def test_claim_view_lists_cells_and_devices():
    text = views.CLAIM.text({'instance_uuid': 'vm', 'resources': {'VCPU': 1},
                             'numa_topology': {'cells': [{'id': 1, 'cpuset': [4, 5],
                                                          'memory_mb': 512}]},
                             'pci_devices': [{'address': '0000:81:10.0',
                                              'vendor_id': '8086',
                                              'product_id': '10ed',
                                              'dev_type': 'type-VF'}]})
    assert text == {'numa_topology': 'cell 1: cpus 4-5, 512 MB',
                    'pci_devices': '0000:81:10.0 8086:10ed type-VF'}
