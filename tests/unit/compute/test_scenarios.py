"""Scenarios after Nova's test_resource_tracker.py: plain data in, figures out.

Node: 4 vCPU, 512 MB, 6 GB.  Flavor 1: 1 vCPU, 128 MB, 1 GB.  Flavor 2:
2 vCPU, 256 MB, 5 GB.
"""

import pytest

from nova_rt import exception
from tests.unit.compute import helpers as h
from tests.unit.compute.helpers import FLAVOR_1, FLAVOR_2


@pytest.fixture
def rt():
    return h.make_tracker()


def test_empty_node_figures(rt):
    state = rt.get_host_state()
    assert (state['vcpus'], state['memory_mb'], state['local_gb']) == (4, 512, 6)
    assert h.used(rt) == (0, 0, 0)
    assert state['free_ram_mb'] == 512 and state['free_disk_gb'] == 6
    assert state['running_vms'] == 0 and state['current_workload'] == 0
    assert state['stats'] == {'num_instances': 0, 'io_workload': 0}


def test_instance_claim_counts_and_returns_the_claim(rt):
    inst = h.instance(FLAVOR_1)
    claim = rt.instance_claim(instance=inst)
    assert claim['instance_uuid'] == inst['uuid']
    assert claim['migration_uuid'] is None
    assert claim['host'] == claim['node'] == h.HOST
    assert claim['resources'] == {'VCPU': 1, 'MEMORY_MB': 128, 'DISK_GB': 1}
    assert claim['numa_topology'] is None and claim['pci_devices'] == []
    assert h.used(rt) == (1, 128, 1)
    state = rt.get_host_state()
    assert state['instances'] == [inst['uuid']]
    assert state['running_vms'] == 1


def test_claim_is_idempotent(rt):
    inst = h.instance(FLAVOR_1)
    first = rt.instance_claim(instance=inst)
    again = rt.instance_claim(instance=inst)
    assert first == again
    assert h.used(rt) == (1, 128, 1)


def test_same_uuid_other_flavor_is_a_conflict(rt):
    inst = h.instance(FLAVOR_1)
    rt.instance_claim(instance=inst)
    with pytest.raises(exception.ClaimConflict):
        rt.instance_claim(instance=dict(inst, flavor=FLAVOR_2))
    assert h.used(rt) == (1, 128, 1)


def test_claim_beyond_memory_is_refused_and_changes_nothing():
    rt = h.make_tracker(host=h.host_info(disk_gb=100))
    rt.instance_claim(instance=h.instance(FLAVOR_2))
    rt.instance_claim(instance=h.instance(FLAVOR_2))
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert 'MEMORY_MB: requested 128, 0 free of 512' in str(err.value)
    assert h.used(rt) == (4, 512, 10)


def test_disk_capacity_names_the_resource(rt):
    rt.instance_claim(instance=h.instance(FLAVOR_2))
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(FLAVOR_2))
    assert 'DISK_GB: requested 5, 1 free of 6' in str(err.value)
    assert h.used(rt) == (2, 256, 5)


def test_vcpu_overcommit_uses_the_ratio():
    rt = h.make_tracker(host=h.host_info(vcpus=1, memory_mb=4096, disk_gb=100),
                        allocation_ratios={'VCPU': 2.0, 'MEMORY_MB': 1.0,
                                           'DISK_GB': 1.0})
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert 'VCPU' in str(err.value)


def test_volume_backed_and_swap_disk():
    rt = h.make_tracker()
    flavor = dict(FLAVOR_2, ephemeral_gb=0, swap=1025)
    rt.instance_claim(instance=h.instance(flavor, is_volume_backed=True))
    # root 0 (volume), swap 1025 MiB rounds up to 2 GiB
    assert h.used(rt) == (2, 256, 2)


def test_reserved_amounts_count_as_used():
    rt = h.make_tracker(reserved_host_memory_mb=64, reserved_host_disk_mb=1,
                        reserved_host_cpus=1)
    assert h.used(rt) == (1, 64, 1)
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert h.used(rt) == (2, 192, 2)
    state = rt.get_host_state()
    assert state['free_ram_mb'] == 512 - 192


def test_reserved_larger_than_host_is_not_an_error_and_free_goes_negative():
    rt = h.make_tracker(reserved_host_memory_mb=1024)
    state = rt.get_host_state()
    assert state['memory_mb_used'] == 1024
    assert state['free_ram_mb'] == -512
    with pytest.raises(exception.ComputeResourcesUnavailable):
        rt.instance_claim(instance=h.instance(FLAVOR_1))


def test_abort_frees_and_is_idempotent(rt):
    inst = h.instance(FLAVOR_1)
    rt.instance_claim(instance=inst)
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['instances'] == []


def test_deleted_and_shelved_offloaded_hold_nothing(rt):
    a, b = h.instance(FLAVOR_1), h.instance(FLAVOR_2)
    rt.instance_claim(instance=a)
    rt.instance_claim(instance=b)
    rt.update_instance(instance_uuid=a['uuid'], vm_state='deleted')
    assert h.used(rt) == (2, 256, 5)
    rt.update_instance(instance_uuid=b['uuid'], vm_state='shelved_offloaded')
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['running_vms'] == 0
    # unshelve: spawning re-claims
    rt.update_instance(instance_uuid=b['uuid'], vm_state='shelved_offloaded',
                       task_state='spawning')
    assert h.used(rt) == (2, 256, 5)


def test_update_unknown_instance(rt):
    with pytest.raises(exception.InstanceNotFound):
        rt.update_instance(instance_uuid='nope', vm_state='active')


def test_stats_and_workload(rt):
    rt.instance_claim(instance=h.instance(FLAVOR_1, project_id='p1'))
    b = h.instance(FLAVOR_1, project_id='p2')
    rt.instance_claim(instance=b)
    rt.update_instance(instance_uuid=b['uuid'], vm_state='active',
                       task_state='image_snapshot')
    state = rt.get_host_state()
    stats = state['stats']
    assert stats['num_instances'] == 2
    assert stats['num_vm_building'] == 1 and stats['num_vm_active'] == 1
    assert stats['num_task_None'] == 1 and stats['num_task_image_snapshot'] == 1
    assert stats['num_proj_p1'] == 1 and stats['num_proj_p2'] == 1
    assert stats['num_os_type_linux'] == 2
    assert stats['io_workload'] == 2     # one building, one snapshotting
    assert state['current_workload'] == 1


def test_nodename_must_be_ours(rt):
    with pytest.raises(exception.NodeNotFound):
        rt.instance_claim(instance=h.instance(), nodename='other-node')


# --- moves -------------------------------------------------------------------

def test_same_host_resize_holds_both_then_confirm(rt):
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    claim = rt.resize_claim(instance=inst, migration=mig)
    assert claim['migration_uuid'] == mig['uuid']
    assert h.used(rt) == (3, 384, 6)
    rt.finish_move(migration_uuid=mig['uuid'])
    assert h.used(rt) == (3, 384, 6)
    rt.drop_move_claim_at_source(migration=dict(mig, status='confirming'))
    assert h.used(rt) == (2, 256, 5)
    assert rt.get_host_state()['migrations'] == []


def test_same_host_resize_then_revert(rt):
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    rt.resize_claim(instance=inst, migration=mig)
    rt.finish_move(migration_uuid=mig['uuid'])
    rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert h.used(rt) == (1, 128, 1)
    # the revert is remembered: repeating it changes nothing
    rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert h.used(rt) == (1, 128, 1)


def test_same_host_revert_before_finish(rt):
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    rt.resize_claim(instance=inst, migration=mig)
    rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert h.used(rt) == (1, 128, 1)


def test_two_incoming_resizes(rt):
    a, b = h.instance(FLAVOR_1), h.instance(FLAVOR_1)
    rt.resize_claim(instance=a, migration=h.migration(a, FLAVOR_1, source='src'))
    rt.resize_claim(instance=b, migration=h.migration(b, FLAVOR_2, source='src'))
    assert h.used(rt) == (3, 384, 6)
    # incoming claims are not running_vms until finish_move, as in Nova
    assert rt.get_host_state()['running_vms'] == 0
    assert len(rt.get_host_state()['migrations']) == 2


def test_resize_claim_is_idempotent_and_conflicts_on_other_flavor(rt):
    a = h.instance(FLAVOR_1)
    mig = h.migration(a, FLAVOR_2, source='src')
    first = rt.resize_claim(instance=a, migration=mig)
    assert rt.resize_claim(instance=a, migration=mig) == first
    assert h.used(rt) == (2, 256, 5)
    with pytest.raises(exception.ClaimConflict):
        rt.resize_claim(instance=a, migration=dict(mig, new_flavor=FLAVOR_1))


def test_incoming_resize_finish_then_revert_leaves_nothing(rt):
    a = h.instance(FLAVOR_1)
    mig = h.migration(a, FLAVOR_2, source='src')
    rt.resize_claim(instance=a, migration=mig)
    rt.finish_move(migration_uuid=mig['uuid'])
    state = rt.get_host_state()
    assert state['instances'] == [a['uuid']] and state['running_vms'] == 1
    assert h.used(rt) == (2, 256, 5)
    rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['instances'] == []


def test_outgoing_confirm_forgets_the_instance(rt):
    inst = h.running_instance(rt, FLAVOR_2)
    mig = h.migration(inst, FLAVOR_1, source=h.HOST, dest='dest-host')
    # the source never saw the migration before the confirm
    rt.drop_move_claim_at_source(migration=mig)
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['instances'] == []
    rt.drop_move_claim_at_source(migration=mig)     # idempotent
    assert h.used(rt) == (0, 0, 0)


def test_error_migration_still_counts_until_dropped(rt):
    a = h.instance(FLAVOR_1)
    mig = h.migration(a, FLAVOR_2, source='src')
    rt.resize_claim(instance=a, migration=mig)
    rt.update_migration(migration_uuid=mig['uuid'], status='error')
    assert h.used(rt) == (2, 256, 5)
    rt.update_migration(migration_uuid=mig['uuid'], status='failed')
    assert h.used(rt) == (0, 0, 0)


def test_only_the_newest_migration_of_an_instance_counts(rt):
    a = h.instance(FLAVOR_1)
    old = h.migration(a, FLAVOR_2, source='src')
    rt.resize_claim(instance=a, migration=old)
    rt.update_migration(migration_uuid=old['uuid'], status='error')
    new = h.migration(a, FLAVOR_1, source='src')
    rt.resize_claim(instance=a, migration=new)
    assert h.used(rt) == (1, 128, 1)


def test_abort_move_claim_is_remembered(rt):
    a = h.instance(FLAVOR_1)
    mig = h.migration(a, FLAVOR_2, source='src')
    rt.resize_claim(instance=a, migration=mig)
    rt.abort_move_claim(migration_uuid=mig['uuid'])
    rt.abort_move_claim(migration_uuid=mig['uuid'])
    assert h.used(rt) == (0, 0, 0)
    with pytest.raises(exception.ClaimConflict):
        rt.resize_claim(instance=a, migration=mig)


def test_evacuation_holds_current_flavor_and_finishes_done(rt):
    a = h.instance(FLAVOR_2, vm_state='active')
    mig = h.migration(a, FLAVOR_2, source='dead-host',
                      migration_type='evacuation', status='accepted')
    claim = rt.rebuild_claim(instance=a, migration=mig)
    assert claim['resources'] == {'VCPU': 2, 'MEMORY_MB': 256, 'DISK_GB': 5}
    assert h.used(rt) == (2, 256, 5)
    rt.finish_move(migration_uuid=mig['uuid'])
    state = rt.get_host_state()
    assert state['migrations'] == [] and state['instances'] == [a['uuid']]
    assert h.used(rt) == (2, 256, 5)


def test_live_migration_claim_keeps_status(rt):
    a = h.instance(FLAVOR_1, vm_state='active')
    mig = h.migration(a, FLAVOR_1, source='src',
                      migration_type='live-migration', status='preparing')
    rt.live_migration_claim(instance=a, migration=mig)
    assert h.used(rt) == (1, 128, 1)
    rt.update_migration(migration_uuid=mig['uuid'], status='running')
    rt.finish_move(migration_uuid=mig['uuid'])
    assert h.used(rt) == (1, 128, 1)
    assert rt.get_host_state()['running_vms'] == 1


def test_move_claim_into_another_node_is_refused(rt):
    a = h.instance(FLAVOR_1)
    with pytest.raises(exception.NodeNotFound):
        rt.resize_claim(instance=a, migration=h.migration(a, dest='elsewhere'))
    assert h.used(rt) == (0, 0, 0)


def test_unknown_migration(rt):
    with pytest.raises(exception.MigrationNotFound):
        rt.update_migration(migration_uuid='nope', status='running')
    with pytest.raises(exception.MigrationNotFound):
        rt.finish_move(migration_uuid='nope')


# --- the store -----------------------------------------------------------------

def test_state_survives_a_restart(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    rt = h.make_tracker(path)
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    rt.resize_claim(instance=inst, migration=mig)
    before = rt.get_host_state()
    rt.store.close()
    again = h.make_tracker(path)
    after = again.get_host_state()
    for key in ('vcpus_used', 'memory_mb_used', 'local_gb_used', 'instances',
                'migrations', 'stats'):
        assert after[key] == before[key], key
    again.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
    assert h.used(again) == (1, 128, 1)


def test_claims_served_from_stored_inventory_without_libvirt(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    h.make_tracker(path).store.close()
    from nova_rt.compute import store as store_mod
    from nova_rt.compute import tracker as tracker_mod

    class Down:
        def get_host_info(self):
            raise exception.HypervisorUnavailable(reason='down')
        list_domains = get_host_info

    cfg = tracker_mod.TrackerConfig(host=h.HOST, node=h.HOST,
                                    reserved_host_memory_mb=0)
    rt = tracker_mod.ResourceTracker(cfg, store_mod.ClaimStore(path), Down())
    rt.load()
    rt.run_audit()
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert h.used(rt) == (1, 128, 1)
    assert rt.get_host_state()['hypervisor']['connected'] is False


def test_first_start_without_libvirt_is_hypervisor_unavailable(tmp_path):
    from nova_rt.compute import store as store_mod
    from nova_rt.compute import tracker as tracker_mod
    cfg = tracker_mod.TrackerConfig(host=h.HOST, node=h.HOST)
    rt = tracker_mod.ResourceTracker(cfg, store_mod.ClaimStore(':memory:'))
    rt.load()
    with pytest.raises(exception.HypervisorUnavailable):
        rt.instance_claim(instance=h.instance(FLAVOR_1))


def test_deleting_an_instance_mid_resize_frees_both_flavors(rt):
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    rt.resize_claim(instance=inst, migration=mig)
    rt.update_instance(instance_uuid=inst['uuid'], vm_state='deleted')
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['migrations'] == []


def test_numa_shortage_crosses_as_compute_resources_unavailable():
    rt = h.make_tracker(host=h.numa_host(cells=2, cpus_per_cell=4),
                        cpu_dedicated_set=frozenset(range(8)))
    big = dict(FLAVOR_1, vcpus=6, memory_mb=128,
               extra_specs={'hw:cpu_policy': 'dedicated'})
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(big))
    assert type(err.value) is exception.ComputeResourcesUnavailable
    assert 'NUMA' in str(err.value) or 'cell' in str(err.value)


def test_dedicated_claim_pins_onto_siblings():
    rt = h.make_tracker(host=h.numa_host(cells=2, cpus_per_cell=4),
                        cpu_shared_set=frozenset({0, 1, 4, 5}),
                        cpu_dedicated_set=frozenset({2, 3, 6, 7}))
    pinned = dict(FLAVOR_1, vcpus=2, extra_specs={'hw:cpu_policy': 'dedicated'})
    claim = rt.instance_claim(instance=h.instance(pinned))
    assert claim['resources'] == {'PCPU': 2, 'MEMORY_MB': 128, 'DISK_GB': 1}
    cell = claim['numa_topology']['cells'][0]
    assert cell['id'] == 0 and sorted(cell['cpu_pinning'].values()) == [2, 3]
    state = rt.get_host_state()
    assert state['pcpus'] == 4 and state['pcpus_used'] == 2
    assert state['numa_topology']['cells'][0]['pinned_cpus'] == [2, 3]
    # the second pinned guest goes to the other cell
    claim2 = rt.instance_claim(instance=h.instance(pinned))
    assert claim2['numa_topology']['cells'][0]['id'] == 1
    with pytest.raises(exception.ComputeResourcesUnavailable):
        rt.instance_claim(instance=h.instance(pinned))


def test_unmanaged_domains_count_as_used():
    from nova_rt import objects
    dom = objects.DomainInfo(uuid='aaaaaaaa-0000-0000-0000-000000000001',
                             name='stray', state='running', active=True,
                             vcpus=2, memory_mb=256)
    off = objects.DomainInfo(uuid='aaaaaaaa-0000-0000-0000-000000000002',
                             name='off', state='shutoff', active=False,
                             vcpus=2, memory_mb=256)
    rt = h.make_tracker(domains=[dom, off])
    state = rt.get_host_state()
    assert state['unmanaged_domains'] == [
        {'uuid': dom.uuid, 'name': 'stray', 'vcpus': 2, 'memory_mb': 256}]
    assert h.used(rt) == (2, 256, 0)
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(dict(FLAVOR_1, memory_mb=300)))
    assert 'MEMORY_MB: requested 300, 256 free' in str(err.value)
    # What fills the host is named, in the reason of the refusal.
    assert ('; 1 unmanaged domain (running, but no claim of this host '
            'explains them) use 256 MB: see get_host_state()["unmanaged_domains"]'
            ) in str(err.value)


def test_a_refusal_names_the_unmanaged_domains_that_fill_the_host():
    from nova_rt import objects
    doms = [objects.DomainInfo(uuid=f'aaaaaaaa-0000-0000-0000-00000000000{i}',
                               name=f'stray{i}', state='running', active=True,
                               vcpus=7, memory_mb=128) for i in (1, 2)]
    rt = h.make_tracker(domains=doms)
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(dict(FLAVOR_1, vcpus=4,
                                                   memory_mb=300)))
    assert str(err.value).endswith(
        '; 2 unmanaged domains (running, but no claim of this host explains '
        'them) use 14 VCPU and 256 MB: see get_host_state()["unmanaged_domains"]')
    # Claims alone filling the host: no word of unmanaged domains.
    rt = h.make_tracker()
    rt.instance_claim(instance=h.instance(dict(FLAVOR_1, memory_mb=512)))
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert 'unmanaged' not in str(err.value)


def test_audit_summary_and_missing_domains():
    rt = h.make_tracker()
    inst = h.running_instance(rt)
    first = rt.run_audit()
    assert first['instances'] == 1 and first['missing_domains'] == 0
    second = rt.run_audit()
    assert second['missing_domains'] == 1        # gone for two audits
    assert h.used(rt) == (1, 128, 1)              # reported, not freed
    assert rt.get_host_state()['missing_domains'] == [inst['uuid']]
    assert set(second) == {'duration_s', 'instances', 'migrations',
                           'unmanaged_domains', 'missing_domains',
                           'pci_devices', 'changed', 'reported'}
    assert second['changed'] is False


def test_idle_audit_changes_nothing_for_placement():
    rt = h.make_tracker()
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    version, _ = rt.placement_view()
    rt.run_audit()
    rt.run_audit()
    assert rt.placement_view()[0] == version


def test_placement_view_consumers():
    rt = h.make_tracker()
    inst = h.running_instance(rt)
    mig = h.migration(inst, FLAVOR_2)
    rt.resize_claim(instance=inst, migration=mig)
    _, view = rt.placement_view()
    assert view['allocations'][inst['uuid']]['resources'] == {
        'VCPU': 1, 'MEMORY_MB': 128, 'DISK_GB': 1}
    assert view['allocations'][mig['uuid']]['resources'] == {
        'VCPU': 2, 'MEMORY_MB': 256, 'DISK_GB': 5}
    assert view['inventories']['MEMORY_MB']['total'] == 512
    assert 'COMPUTE_NODE' in view['traits']


def test_new_ratios_apply_at_the_next_audit():
    import dataclasses
    rt = h.make_tracker(host=h.host_info(vcpus=1, memory_mb=4096, disk_gb=100),
                        allocation_ratios={'VCPU': 1.0, 'MEMORY_MB': 1.0,
                                           'DISK_GB': 1.0})
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    with pytest.raises(exception.ComputeResourcesUnavailable):
        rt.instance_claim(instance=h.instance(FLAVOR_1))
    rt.apply_config(dataclasses.replace(
        rt.config, allocation_ratios={'VCPU': 2.0, 'MEMORY_MB': 1.0,
                                      'DISK_GB': 1.0}))
    rt.run_audit()
    rt.instance_claim(instance=h.instance(FLAVOR_1))
    assert rt.get_host_state()['allocation_ratios']['VCPU'] == 2.0


def test_only_periodic_audits_count_a_domain_missing():
    rt = h.make_tracker()
    inst = h.running_instance(rt)
    for _ in range(5):       # a burst of event-driven audits
        assert rt.run_audit(periodic=False)['missing_domains'] == 0
    rt.run_audit()
    assert rt.run_audit()['missing_domains'] == 1
    assert rt.get_host_state()['missing_domains'] == [inst['uuid']]


def test_an_aborted_claim_is_not_missing_at_the_next_read():
    rt = h.make_tracker()
    inst = h.running_instance(rt)
    rt.run_audit()
    rt.run_audit()
    assert rt.get_host_state()['missing_domains'] == [inst['uuid']]
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert rt.get_host_state()['missing_domains'] == []


def test_same_uuid_other_image_properties_is_a_conflict(rt):
    inst = h.instance(FLAVOR_1)
    rt.instance_claim(instance=inst)
    with pytest.raises(exception.ClaimConflict):
        rt.instance_claim(instance=dict(inst, image_properties={
            'hw_numa_nodes': '1'}))
    assert rt.instance_claim(instance=inst)['instance_uuid'] == inst['uuid']
