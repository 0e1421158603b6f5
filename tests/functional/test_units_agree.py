"""The tracker and placement count in the same units (issue 14, item 4).

For any allocation ratios (0.5-16), reserved amounts and running domains
that no claim explains, placement accepts the host's full report, holds the
usage the tracker counts, and has room for a claim exactly when the tracker
admits it.  The tracker is real, on plain host data; placement is the real
PlacementManager on SQLite, fed by the real reporter.
"""

import datetime
import itertools
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import reporter as reporter_mod
from nova_rt.compute import store as store_mod
from nova_rt.placement import db
from nova_rt.placement import manager as placement_manager
from tests.functional.placement.helpers import CTX, Conf
from tests.unit.compute import helpers as h

_hosts = itertools.count()


@pytest.fixture(scope='module')
def placement(tmp_path_factory):
    url = f'sqlite:///{tmp_path_factory.mktemp("units")}/placement.sqlite'
    db.sync(url)
    return placement_manager.PlacementManager(db.get_engine(url), Conf)


ratio = st.floats(0.5, 16).map(lambda r: round(r, 2))
domain = st.tuples(st.integers(1, 8), st.integers(64, 4096))
request = st.tuples(st.integers(1, 24), st.integers(1, 8192), st.integers(0, 60))


def _flavor(vcpus, memory_mb, disk_gb, name='probe'):
    return {'name': name, 'vcpus': vcpus, 'memory_mb': memory_mb,
            'root_gb': disk_gb, 'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


def _admits(rt, flavor) -> bool:
    inst = h.instance(flavor)
    try:
        rt.instance_claim(instance=inst)
    except exception.ComputeResourcesUnavailable:
        return False
    rt.abort_instance_claim(instance_uuid=inst['uuid'])
    return True


def _offered(placement, root_uuid, flavor) -> bool:
    wanted = {'VCPU': flavor['vcpus'], 'MEMORY_MB': flavor['memory_mb'],
              'DISK_GB': flavor['root_gb']}
    candidates = placement.get_allocation_candidates(
        CTX, resources={rc: n for rc, n in wanted.items() if n})
    return any(c['root_uuid'] == root_uuid for c in candidates)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(vcpus=st.integers(1, 16), memory_mb=st.integers(1024, 16384),
       disk_gb=st.integers(10, 200),
       ratios=st.tuples(ratio, ratio, ratio),
       reserved=st.tuples(st.integers(0, 20), st.integers(0, 20000),
                          st.integers(0, 250 * 1024)),
       domains=st.lists(domain, max_size=3),
       claims=st.lists(request, max_size=4),
       probes=st.lists(request, min_size=1, max_size=4))
def test_tracker_admits_exactly_what_placement_has_room_for(
        placement, vcpus, memory_mb, disk_gb, ratios, reserved, domains,
        claims, probes):
    host = f'units-{next(_hosts)}'
    running = [objects.DomainInfo(uuid=str(uuid.uuid4()), name=f'stray-{i}',
                                  state='running', active=True, vcpus=v,
                                  memory_mb=m)
               for i, (v, m) in enumerate(domains)]
    rt = h.make_tracker(
        host=h.host_info(vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb),
        domains=running, reserved_host_cpus=reserved[0],
        reserved_host_memory_mb=reserved[1], reserved_host_disk_mb=reserved[2],
        allocation_ratios=dict(zip(('VCPU', 'MEMORY_MB', 'DISK_GB'), ratios)))
    for n, (v, m, d) in enumerate(claims):
        try:
            rt.instance_claim(instance=h.instance(_flavor(v, m, d, f'c{n}')))
        except exception.ComputeResourcesUnavailable:
            pass
    store = store_mod.ClaimStore(':memory:')
    reporter = reporter_mod.PlacementReporter(placement, store, host)
    assert reporter.report(*rt.placement_view(), force_full=True)
    assert not reporter.pending, 'placement refused the full report'
    placement.heartbeat(CTX, host=host, root_uuid=reporter.root_uuid,
                        sent_at=datetime.datetime.now(
                            datetime.timezone.utc).isoformat())

    # Placement holds what the tracker counts, the host's own use included.
    state = rt.get_host_state()
    usages = placement.get_usages(CTX, uuid=reporter.root_uuid)
    inventory = state['inventory']
    for rc, used in (('VCPU', state['vcpus_used'] - reserved[0]),
                     ('MEMORY_MB', state['memory_mb_used'] - reserved[1]),
                     ('DISK_GB', state['local_gb_used']
                      - -(-reserved[2] // 1024))):
        if rc not in inventory:
            continue
        inv = inventory[rc]
        capacity = int((inv['total'] - min(inv['reserved'], inv['total']))
                       * inv['allocation_ratio'])
        # Exactly equal, unless the host uses more than there is: placement
        # is then full (it cannot hold more than its capacity).
        assert usages.get(rc, 0) == min(used, capacity), rc

    for v, m, d in probes:
        flavor = _flavor(v, m, d)
        assert _admits(rt, flavor) == _offered(placement, reporter.root_uuid,
                                               flavor), (flavor, state['inventory'],
                                                         usages)
