"""Property tests: any sequence of claims, moves, drops and state changes
keeps usage equal to the sum of what is held, never admits beyond capacity,
and returns to empty when everything is freed."""

import collections

from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from nova_rt import exception
from nova_rt.compute import usage
from tests.unit.compute import helpers as h

FLAVORS = [
    h.FLAVOR_1, h.FLAVOR_2,
    {'name': 'm1.big', 'vcpus': 4, 'memory_mb': 300, 'root_gb': 2,
     'ephemeral_gb': 1, 'swap': 512, 'extra_specs': {}},
    {'name': 'pinned', 'vcpus': 2, 'memory_mb': 128, 'root_gb': 1,
     'ephemeral_gb': 0, 'swap': 0,
     'extra_specs': {'hw:cpu_policy': 'dedicated'}},
    {'name': 'numa2', 'vcpus': 2, 'memory_mb': 256, 'root_gb': 1,
     'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {'hw:numa_nodes': '2'}},
]
STATES = ['active', 'stopped', 'deleted', 'shelved_offloaded', 'error',
          'resized']
MIG_STATUSES = ['migrating', 'post-migrating', 'finished', 'error',
                'confirmed', 'reverted', 'failed']

op = st.one_of(
    st.tuples(st.just('claim'), st.integers(0, 7), st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('abort'), st.integers(0, 7), st.just(0)),
    st.tuples(st.just('state'), st.integers(0, 7), st.integers(0, len(STATES) - 1)),
    st.tuples(st.just('resize_same'), st.integers(0, 7), st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('incoming'), st.integers(0, 7), st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('evacuate'), st.integers(0, 7), st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('finish'), st.integers(0, 7), st.just(0)),
    st.tuples(st.just('confirm'), st.integers(0, 7), st.just(0)),
    st.tuples(st.just('revert'), st.integers(0, 7), st.just(0)),
    st.tuples(st.just('abort_move'), st.integers(0, 7), st.just(0)),
    st.tuples(st.just('mig_status'), st.integers(0, 7),
              st.integers(0, len(MIG_STATUSES) - 1)),
    st.tuples(st.just('audit'), st.just(0), st.just(0)),
)

UUIDS = [f'00000000-0000-0000-0000-00000000000{i}' for i in range(8)]


CPU_SETS = {'cpu_shared_set': frozenset({0, 1, 4, 5}),
            'cpu_dedicated_set': frozenset({2, 3, 6, 7})}


def _host():
    host = h.numa_host(cells=2, cpus_per_cell=4, memory_mb_per_cell=512)
    return host


def _check_invariants(rt):
    held = h.held_resources(rt)
    alloc_sum = collections.Counter()
    for alloc in rt._allocations.values():
        usage.add_resources(alloc_sum, alloc['resources'])
    assert +alloc_sum == +held
    for rc, inv in rt._inventory.items():
        assert rt._used.get(rc, 0) <= inv.capacity, rc
    # NUMA: pinned CPUs are host CPUs of the right cell, never doubled
    pinned = []
    for cell_id, cell_usage in rt._cell_usage.items():
        pinned.extend(cell_usage.pinned_cpus)
        assert cell_usage.cpu_usage >= 0 and cell_usage.memory_usage_mb >= 0
    assert len(pinned) == len(set(pinned))
    assert len(pinned) == rt._used.get('PCPU', 0)


def _run(rt, ops):
    migrations = {}     # instance index -> migration payload
    instances = {}
    for name, idx, arg in ops:
        uuid = UUIDS[idx]
        try:
            if name == 'claim':
                inst = h.instance(FLAVORS[arg], uuid_=uuid)
                rt.instance_claim(instance=inst)
                instances[idx] = inst
            elif name == 'abort':
                rt.abort_instance_claim(instance_uuid=uuid)
            elif name == 'state':
                rt.update_instance(instance_uuid=uuid, vm_state=STATES[arg])
            elif name in ('resize_same', 'incoming', 'evacuate'):
                inst = instances.get(idx) or h.instance(FLAVORS[0], uuid_=uuid)
                if name == 'resize_same':
                    mig = h.migration(inst, FLAVORS[arg])
                    rt.resize_claim(instance=inst, migration=mig)
                elif name == 'incoming':
                    mig = h.migration(inst, FLAVORS[arg], source='src')
                    rt.resize_claim(instance=inst, migration=mig)
                else:
                    mig = h.migration(inst, inst['flavor'], source='src',
                                      migration_type='evacuation')
                    rt.rebuild_claim(instance=inst, migration=mig)
                migrations[idx] = mig
            elif name == 'finish' and idx in migrations:
                rt.finish_move(migration_uuid=migrations[idx]['uuid'])
            elif name == 'confirm' and idx in migrations:
                rt.drop_move_claim_at_source(migration=migrations[idx])
            elif name == 'revert' and idx in migrations:
                rt.drop_move_claim_at_dest(migration_uuid=migrations[idx]['uuid'])
            elif name == 'abort_move' and idx in migrations:
                rt.abort_move_claim(migration_uuid=migrations[idx]['uuid'])
            elif name == 'mig_status' and idx in migrations:
                rt.update_migration(migration_uuid=migrations[idx]['uuid'],
                                    status=MIG_STATUSES[arg])
            elif name == 'audit':
                rt.run_audit()
        except (exception.ComputeResourcesUnavailable, exception.ClaimConflict,
                exception.InstanceNotFound, exception.MigrationNotFound,
                exception.InvalidInput):
            pass
        _check_invariants(rt)
    return migrations


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=40))
def test_any_sequence_keeps_usage_true_and_frees_to_zero(ops):
    rt = h.make_tracker(host=_host(), **CPU_SETS)
    migrations = _run(rt, ops)
    # free everything
    for mig in migrations.values():
        rt.abort_move_claim(migration_uuid=mig['uuid'])
        _check_invariants(rt)
    for uuid in UUIDS:
        rt.abort_instance_claim(instance_uuid=uuid)
        _check_invariants(rt)
    assert +rt._used == collections.Counter()
    assert rt._allocations == {}
    assert all(not u.pinned_cpus and u.cpu_usage == 0 and u.memory_usage_mb == 0
               for u in rt._cell_usage.values())
    state = rt.get_host_state()
    assert (state['vcpus_used'], state['memory_mb_used'],
            state['local_gb_used']) == (0, 0, 0)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=25))
def test_a_restart_reproduces_the_same_state(tmp_path_factory, ops):
    path = str(tmp_path_factory.mktemp('store') / 'compute.sqlite')
    rt = h.make_tracker(path, host=_host(), **CPU_SETS)
    _run(rt, ops)
    before = rt.get_host_state()
    rt.store.close()
    again = h.make_tracker(path, host=_host(), **CPU_SETS)
    after = again.get_host_state()
    for key in ('vcpus_used', 'pcpus_used', 'memory_mb_used', 'local_gb_used',
                'instances', 'migrations', 'stats', 'numa_topology'):
        assert after[key] == before[key], key
    assert again._allocations == rt._allocations
