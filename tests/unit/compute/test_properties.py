"""Property tests of the ledger, through public reads only.

Random sequences of every verb (claims, aborts, state changes, PCI attach and
detach, every move kind with confirm, revert, abort and finish, the source
hearing a move finished, deletions, audits with unmanaged and missing
domains) must keep, after each step:

- usage equal to the sum of what the records hold: a tracker rebuilt from
  the same store shows the same figures, NUMA cells, PCI devices and
  placement consumers, and the host's used figures are exactly the
  consumers' sum plus what unmanaged domains take;
- no claim beyond capacity, no host CPU pinned twice, no device owned twice;
- a refused call changes nothing;
- and everything freed at the end leaves the host empty.
"""

import collections

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod
from nova_rt.pci import spec as pci_spec
from tests.unit.compute import helpers as h
from tests.unit.compute import test_pci_claims as pci

PINNED = {'name': 'pinned', 'vcpus': 2, 'memory_mb': 128, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0,
          'extra_specs': {'hw:cpu_policy': 'dedicated'}}
FLAVORS = [
    h.FLAVOR_1, h.FLAVOR_2,
    {'name': 'm1.big', 'vcpus': 4, 'memory_mb': 300, 'root_gb': 2,
     'ephemeral_gb': 1, 'swap': 512, 'extra_specs': {}},
    PINNED,
    {'name': 'numa2', 'vcpus': 2, 'memory_mb': 256, 'root_gb': 1,
     'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {'hw:numa_nodes': '2'}},
    pci.flavor('vf:2'),
    dict(pci.flavor('pf:1', numa_nodes=1, policy='required'), name='pf-numa'),
]
STATES = ['active', 'stopped', 'deleted', 'shelved_offloaded', 'error',
          'resized']
MIG_STATUSES = ['migrating', 'post-migrating', 'finished', 'error',
                'confirmed', 'reverted', 'failed']
SLOTS = 4
UUIDS = [f'00000000-0000-0000-0000-00000000000{i}' for i in range(SLOTS)]
STRAY = 'aaaaaaaa-0000-0000-0000-000000000001'
CONTRACT_ERRORS = (exception.ComputeResourcesUnavailable,
                   exception.ClaimConflict, exception.InstanceNotFound,
                   exception.MigrationNotFound, exception.PciDeviceNotFound,
                   exception.InvalidInput, exception.NodeNotFound)

slot = st.integers(0, SLOTS - 1)
op = st.one_of(
    st.tuples(st.just('claim'), slot, st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('abort'), slot, st.just(0)),
    st.tuples(st.just('state'), slot, st.integers(0, len(STATES) - 1)),
    st.tuples(st.just('attach'), slot, st.integers(1, 2)),
    st.tuples(st.just('detach'), slot, st.just(0)),
    st.tuples(st.just('resize_same'), slot, st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('incoming'), slot, st.integers(0, len(FLAVORS) - 1)),
    st.tuples(st.just('evacuate'), slot, st.just(0)),
    st.tuples(st.just('live'), slot, st.just(0)),
    st.tuples(st.just('outgoing'), slot, st.just(0)),
    st.tuples(st.just('finish'), slot, st.just(0)),
    st.tuples(st.just('confirm'), slot, st.just(0)),
    st.tuples(st.just('revert'), slot, st.just(0)),
    st.tuples(st.just('abort_move'), slot, st.just(0)),
    st.tuples(st.just('mig_status'), slot, st.integers(0, len(MIG_STATUSES) - 1)),
    st.tuples(st.just('stray_domain'), st.just(0), st.integers(0, 1)),
    st.tuples(st.just('domain_of'), slot, st.integers(0, 1)),
    st.tuples(st.just('audit'), st.just(0), st.just(0)),
)


class Host(h.StaticHost):
    """A NUMA host whose running domains a test changes."""

    def __init__(self):
        super().__init__(h.numa_host(cells=2, cpus_per_cell=4,
                                     memory_mb_per_cell=512))
        self.running = {}       # uuid -> DomainInfo

    def list_domains(self):
        return list(self.running.values())


def _config():
    return tracker_mod.TrackerConfig(
        host=h.HOST, node=h.HOST, reserved_host_memory_mb=0,
        cpu_shared_set=frozenset({0, 1, 4, 5}),
        cpu_dedicated_set=frozenset({2, 3, 6, 7}),
        pci_specs=tuple(pci_spec.parse_device_specs(['{"vendor_id": "8086"}'])),
        pci_aliases=pci_spec.parse_aliases(pci.ALIASES))


def _tracker(path, host):
    rt = tracker_mod.ResourceTracker(
        _config(), store_mod.ClaimStore(path, synchronous='NORMAL'),
        host_source=host, pci_source=pci.Bus())
    rt.load()
    return rt


def _domain(uuid, vcpus=1, memory_mb=64):
    return objects.DomainInfo(uuid=uuid, name=uuid[:8], state='running',
                              active=True, vcpus=vcpus, memory_mb=memory_mb)


# -- public reads -----------------------------------------------------------------

_CLAIM_FIGURES = ('pcpus_used', 'instances', 'migrations', 'running_vms',
                  'current_workload', 'stats', 'numa_topology', 'pci_devices',
                  'pci_pools')


def _public(rt) -> dict:
    """Everything a caller can read, but the audit's time."""
    state = rt.get_host_state()
    state.pop('last_audit')
    _, view = rt.placement_view()
    return {'state': state, 'placement': view}


def _consumer_sum(view) -> collections.Counter:
    total = collections.Counter()
    for alloc in view['allocations'].values():
        total.update(alloc['resources'])
    return total


def _check_invariants(rt, path, host):
    public = _public(rt)
    state, view = public['state'], public['placement']
    held = _consumer_sum(view)
    stray = collections.Counter()
    for dom in state['unmanaged_domains']:
        stray.update({'VCPU': dom['vcpus'], 'MEMORY_MB': dom['memory_mb']})
    # The host's figures are the consumers' sum plus what the host runs.
    assert state['vcpus_used'] == held['VCPU'] + stray['VCPU']
    assert state['pcpus_used'] == held['PCPU']
    assert state['memory_mb_used'] == held['MEMORY_MB'] + stray['MEMORY_MB']
    assert state['local_gb_used'] == held['DISK_GB']
    # Claims never go beyond what the host offers.
    for rc, inv in state['inventory'].items():
        capacity = int((inv['total'] - inv['reserved']) * inv['allocation_ratio'])
        assert held[rc] <= capacity, rc
    # No host CPU pinned twice; every pinned CPU is a PCPU in use.
    pinned = [cpu for cell in state['numa_topology']['cells']
              for cpu in cell['pinned_cpus']]
    assert len(pinned) == len(set(pinned)) == held['PCPU']
    # Devices are owned by tracked instances only.
    tracked = set(state['instances']) | set(UUIDS)
    owned = [d for d in state['pci_devices'] if d['instance_uuid']]
    assert all(d['instance_uuid'] in tracked for d in owned)
    assert all(d['status'] in ('claimed', 'allocated', 'removed') for d in owned)
    # Usage is derived: the same records, loaded afresh, give the same figures.
    again = _tracker(path, host)
    try:
        fresh = _public(again)
        for key in _CLAIM_FIGURES:
            assert fresh['state'][key] == state[key], key
        assert fresh['placement']['allocations'] == view['allocations']
    finally:
        again.store.close()


# -- driving -----------------------------------------------------------------------

def _step(rt, host, name, idx, arg, instances, migrations, made):
    uuid = UUIDS[idx]
    inst = instances.get(idx) or h.instance(FLAVORS[0], uuid_=uuid)
    mig = migrations.get(idx)
    if name == 'claim':
        inst = h.instance(FLAVORS[arg], uuid_=uuid)
        rt.instance_claim(instance=inst)
        instances[idx] = inst
    elif name == 'abort':
        rt.abort_instance_claim(instance_uuid=uuid)
    elif name == 'state':
        rt.update_instance(instance_uuid=uuid, vm_state=STATES[arg])
    elif name == 'attach':
        rt.claim_pci_devices(instance_uuid=uuid, alias_counts={'vf': arg},
                             request_id=f'10000000-0000-0000-0000-00000000000{idx}')
    elif name == 'detach':
        held = [d['address'] for d in rt.get_host_state()['pci_devices']
                if d['instance_uuid'] == uuid]
        rt.free_pci_devices(instance_uuid=uuid, addresses=held[:1])
    elif name in ('resize_same', 'incoming', 'evacuate', 'live', 'outgoing'):
        if name == 'resize_same':
            mig = h.migration(inst, FLAVORS[arg])
            rt.resize_claim(instance=inst, migration=mig)
        elif name == 'incoming':
            mig = h.migration(inst, FLAVORS[arg], source='src')
            rt.resize_claim(instance=inst, migration=mig)
        elif name == 'evacuate':
            mig = h.migration(inst, inst['flavor'], source='src',
                              migration_type='evacuation')
            rt.rebuild_claim(instance=inst, migration=mig)
        elif name == 'live':
            mig = h.migration(inst, inst['flavor'], source='src',
                              migration_type='live-migration')
            rt.live_migration_claim(instance=inst, migration=mig)
        else:
            # Out of this host; the source hears that it finished there.
            mig = h.migration(inst, FLAVORS[1], source=h.HOST, dest='dst',
                              migration_type='migration')
            rt.update_migration(migration_uuid=mig['uuid'], status='finished',
                                migration=mig)
        migrations[idx] = mig
        made.append(mig)
    elif mig is None:
        return
    elif name == 'finish':
        rt.finish_move(migration_uuid=mig['uuid'])
    elif name == 'confirm':
        rt.drop_move_claim_at_source(migration=mig)
    elif name == 'revert':
        if mig['dest_compute'] == h.HOST:
            rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
        else:
            rt.update_migration(migration_uuid=mig['uuid'], status='reverted')
    elif name == 'abort_move':
        rt.abort_move_claim(migration_uuid=mig['uuid'])
    elif name == 'mig_status':
        rt.update_migration(migration_uuid=mig['uuid'],
                            status=MIG_STATUSES[arg])


def _drive(rt, host, path, ops):
    instances, migrations, made = {}, {}, []
    for name, idx, arg in ops:
        if name in ('stray_domain', 'domain_of', 'audit'):
            if name == 'stray_domain':
                if arg:
                    host.running[STRAY] = _domain(STRAY, vcpus=2, memory_mb=100)
                else:
                    host.running.pop(STRAY, None)
            elif name == 'domain_of':
                if arg:
                    host.running[UUIDS[idx]] = _domain(UUIDS[idx])
                else:
                    host.running.pop(UUIDS[idx], None)
            rt.run_audit()
        else:
            before = _public(rt)
            try:
                _step(rt, host, name, idx, arg, instances, migrations, made)
            except CONTRACT_ERRORS:
                assert _public(rt) == before, f'refused {name} changed state'
        _check_invariants(rt, path, host)
    return made


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=10, max_size=40))
def test_any_sequence_keeps_usage_derived_and_frees_to_zero(tmp_path_factory, ops):
    path = str(tmp_path_factory.mktemp('ledger') / 'compute.sqlite')
    host = Host()
    rt = _tracker(path, host)
    rt.run_audit()
    migrations = _drive(rt, host, path, ops)
    # Free everything: moves first (a departed instance comes back), then
    # every instance; what the host still runs stays counted.
    for mig in migrations:
        rt.abort_move_claim(migration_uuid=mig['uuid'])
        _check_invariants(rt, path, host)
    for uuid in UUIDS:
        rt.abort_instance_claim(instance_uuid=uuid)
    _check_invariants(rt, path, host)
    state = rt.get_host_state()
    _, view = rt.placement_view()
    assert view['allocations'] == {}
    assert state['pcpus_used'] == state['local_gb_used'] == 0
    assert all(not c['pinned_cpus'] and c['cpu_usage'] == 0
               and c['memory_usage_mb'] == 0
               for c in state['numa_topology']['cells'])
    assert all(d['status'] == 'available' for d in state['pci_devices']
               if d['dev_type'] == 'type-VF' or d['instance_uuid'] is None)
    assert all(d['instance_uuid'] is None for d in state['pci_devices'])
    rt.store.close()
