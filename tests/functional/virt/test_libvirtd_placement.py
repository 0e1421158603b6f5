"""Tracker and placement agree on a real libvirtd host with an unmanaged domain
(issue 14, item 4).

A running domain that no claim explains is as busy as any guest: the tracker
counts it in ``vcpus_used``/``memory_mb_used``, and placement must count it
the same way, as usage, not as ``reserved``.  ``reserved`` is in host units
and placement multiplies it by the allocation ratio, so with
``cpu_allocation_ratio = 4.0`` two unmanaged vCPUs in ``reserved`` take eight
from placement's capacity while the tracker takes two: placement then refuses
the host's full report (``AllocationCapacityExceeded``) and shows a busy host
as empty.

Each test: real libvirtd (qemu:///system) with one running unmanaged domain,
nova-rt-placement and nova-rt-compute on a vhost and exchange of their own.
"""

from __future__ import annotations

import dataclasses
import math
import uuid

import pytest

from nova_rt import exception
from tests.functional.compute import fixtures as cf
from tests.functional.placement import fixtures as pf
from tests.functional.virt import libvirtd

pytestmark = pytest.mark.libvirtd

CPU_RATIO = 4.0
RESERVED_CPUS = 1
RESERVED_MEMORY_MB = 1024
UNMANAGED_VCPUS, UNMANAGED_MIB = 2, 64
REFUSED = 'Placement refused the report'
CLASSES = ('VCPU', 'MEMORY_MB', 'DISK_GB')


@dataclasses.dataclass
class Stack:
    compute: cf.ComputeProcess
    api: object         # ComputeAPI
    placement: object   # PlacementAPI
    root_uuid: str
    domain: object      # the unmanaged virDomain

    @property
    def host(self) -> str:
        return self.compute.host

    def audit(self) -> dict:
        """``run_audit`` (which reports to placement before it returns) and
        the host state after it."""
        self.api.run_audit(_ctx(), self.host)
        return self.api.get_host_state(_ctx(), self.host)

    def provider(self) -> dict:
        return self.placement.get_resource_provider({}, uuid=self.root_uuid)

    def refusals(self) -> list:
        return [line for line in self.compute.log_text().splitlines()
                if REFUSED in line]

    def claim(self, vcpus: int, memory_mb: int) -> dict:
        instance = _instance(vcpus, memory_mb)
        self.api.instance_claim(_ctx(), self.host, instance=instance)
        return instance


def _ctx() -> dict:
    return {'request_id': 'req-' + str(uuid.uuid4()), 'user_id': 'u1',
            'project_id': 'p-libvirtd'}


def _instance(vcpus: int, memory_mb: int) -> dict:
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p-libvirtd',
            'user_id': 'u1',
            'flavor': {'name': f'lv.{vcpus}.{memory_mb}', 'vcpus': vcpus,
                       'memory_mb': memory_mb, 'root_gb': 1, 'ephemeral_gb': 0,
                       'swap': 0, 'extra_specs': {}},
            'vm_state': 'building', 'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


def _capacity(inv: dict) -> int:
    return int((inv['total'] - inv['reserved']) * inv['allocation_ratio'])


def tracker_figures(state: dict) -> dict:
    """Per class, in placement's (allocation) units: what the tracker offers,
    what it counts as used beyond the reserved amounts, and what is free."""
    used = {'VCPU': state['vcpus_used'] - RESERVED_CPUS,
            'MEMORY_MB': state['memory_mb_used'] - RESERVED_MEMORY_MB,
            # reserved_host_disk_mb is 0 here.
            'DISK_GB': state['local_gb_used']}
    figures = {}
    for rc in CLASSES:
        capacity = _capacity(state['inventory'][rc])
        figures[rc] = {'capacity': capacity, 'usage': used[rc],
                       'free': capacity - used[rc]}
    return figures


def placement_figures(provider: dict) -> dict:
    figures = {}
    for rc in CLASSES:
        capacity = _capacity(provider['inventories'][rc])
        usage = provider['usages'][rc]
        figures[rc] = {'capacity': capacity, 'usage': usage,
                       'free': capacity - usage}
    return figures


def assert_agree(stack: Stack, state: dict) -> dict:
    """Placement took the host's full report and counts as the tracker does.
    Returns the figures both agree on."""
    tracker = tracker_figures(state)
    placement = placement_figures(stack.provider())
    assert not stack.refusals(), (
        f'tracker {tracker} placement {placement}:\n'
        + '\n'.join(stack.refusals()[-3:]))
    assert placement == tracker
    return tracker


def probes(free: dict, max_unit: int) -> list:
    """``(vcpus, memory_mb)`` either side of the boundary: exactly what is
    free, and one more of each class (with 1 of the other, the least a flavor
    asks for).  Never more vCPUs than placement's ``max_unit`` (the host's
    CPU count): that limit is no question of units, and the tracker does not
    apply it (such a claim is admitted, and placement then refuses the host's
    whole report with ``InvalidAllocation``)."""
    vcpus, memory_mb = free['VCPU']['free'], free['MEMORY_MB']['free']
    amounts = {(vcpus, memory_mb), (vcpus + 1, 1), (1, memory_mb + 1)}
    return sorted((v, m) for v, m in amounts
                  if 1 <= v <= max_unit and m >= 1)


def assert_admit_alike(stack: Stack, amounts: list) -> dict:
    """For each ``(vcpus, memory_mb)``: the tracker admits the claim exactly
    when placement offers this host for it.  Placement is asked first, since
    an admitted claim (aborted at once) is reported."""
    offered = {}
    for vcpus, memory_mb in amounts:
        picks = stack.placement.get_allocation_candidates({}, resources={
            'VCPU': vcpus, 'MEMORY_MB': memory_mb, 'DISK_GB': 1})
        offered[vcpus, memory_mb] = stack.host in {c['host'] for c in picks}
    admitted = {}
    for vcpus, memory_mb in amounts:
        try:
            instance = stack.claim(vcpus, memory_mb)
        except exception.ComputeResourcesUnavailable:
            admitted[vcpus, memory_mb] = False
        else:
            admitted[vcpus, memory_mb] = True
            stack.api.abort_instance_claim(_ctx(), stack.host,
                                           instance_uuid=instance['uuid'])
    assert offered == admitted, 'placement offers / the tracker admits'
    return admitted


def max_unit(state: dict) -> int:
    return state['inventory']['VCPU']['max_unit']


def fill(stack: Stack, state: dict, vcpus: int, memory_mb: int) -> list:
    """Claims of ``vcpus`` and ``memory_mb`` in all, each within placement's
    ``max_unit`` (the host's CPU count), as a scheduler's flavors are."""
    count = max(1, math.ceil(vcpus / max_unit(state)))
    claims = []
    for i in range(count):
        share = vcpus // count + (1 if i < vcpus % count else 0)
        memory = memory_mb // count + (memory_mb % count if i == 0 else 0)
        claims.append(stack.claim(share, memory))
    return claims


def unmanaged_uuids(state: dict) -> set:
    return {d['uuid'] for d in state['unmanaged_domains']}


@pytest.fixture
def stack(tmp_path, libvirt_domains):
    # Running before the daemon starts: its first audit finds it unmanaged.
    domain = libvirt_domains(UNMANAGED_VCPUS, UNMANAGED_MIB)
    workdir = str(tmp_path)
    with pf.running_placement(f'sqlite:///{workdir}/placement.sqlite',
                              workdir) as placement:
        url = cf.transport_url_of(placement)
        compute = cf.ComputeProcess(
            workdir, f'lv-{uuid.uuid4().hex[:6]}', placement.exchange,
            transport_url=url, connection_uri=libvirtd.URI,
            extra=(f'cpu_allocation_ratio = {CPU_RATIO}\n'
                   f'reserved_host_cpus = {RESERVED_CPUS}\n'
                   f'reserved_host_memory_mb = {RESERVED_MEMORY_MB}\n'))
        compute.start()
        api, transport = cf.compute_client(placement.exchange, url=url)
        try:
            found = pf.wait_until(lambda: placement.api.list_resource_providers(
                {}, name=compute.host), timeout=30, interval=0.2)
            assert found, f'{compute.host} never reported:\n' \
                + compute.log_text()[-3000:]
            yield Stack(compute, api, placement.api, found[0]['uuid'], domain)
        finally:
            transport.cleanup()
            code = compute.terminate()
        assert code == 0, compute.log_text()[-3000:]


def check_setup(stack: Stack, state: dict) -> None:
    assert stack.domain.UUIDString() in unmanaged_uuids(state), \
        state['unmanaged_domains']
    vcpu, memory = state['inventory']['VCPU'], state['inventory']['MEMORY_MB']
    assert (vcpu['allocation_ratio'], vcpu['reserved']) == (CPU_RATIO,
                                                            RESERVED_CPUS)
    assert memory['reserved'] == RESERVED_MEMORY_MB
    free = tracker_figures(state)['VCPU']['free']
    if free < 2:
        pytest.skip(f"{vcpu['total']} host CPUs leave {free} VCPU for claims "
                    'beside the unmanaged domain; these tests need 2')


def test_unmanaged_domain_counted_alike_up_to_capacity(stack):
    state = stack.audit()
    check_setup(stack, state)
    free = tracker_figures(state)
    # Leave one vCPU and 512 MiB of the tracker's room: the last claim takes
    # exactly that.
    claims = fill(stack, state, free['VCPU']['free'] - 1,
                  free['MEMORY_MB']['free'] - 512)

    state = stack.audit()
    figures = assert_agree(stack, state)
    unmanaged = {'VCPU': sum(d['vcpus'] for d in state['unmanaged_domains']),
                 'MEMORY_MB': sum(d['memory_mb']
                                  for d in state['unmanaged_domains'])}
    claimed = {'VCPU': sum(i['flavor']['vcpus'] for i in claims),
               'MEMORY_MB': sum(i['flavor']['memory_mb'] for i in claims)}
    for rc, amount in claimed.items():
        assert figures[rc]['usage'] == amount + unmanaged[rc], rc
    for instance in claims:
        assert stack.placement.get_allocations(
            {}, consumer_uuid=instance['uuid']) == {stack.root_uuid: {
                'VCPU': instance['flavor']['vcpus'],
                'MEMORY_MB': instance['flavor']['memory_mb'], 'DISK_GB': 1}}
    assert (figures['VCPU']['free'], figures['MEMORY_MB']['free']) == (1, 512)

    assert_admit_alike(stack, probes(figures, max_unit(state)))
    # The last claim the tracker admits: placement has room for it too, and
    # takes the report that fills the host.
    stack.claim(1, 512)
    state = stack.audit()
    figures = assert_agree(stack, state)
    assert (figures['VCPU']['free'], figures['MEMORY_MB']['free']) == (0, 0)
    assert assert_admit_alike(stack, [(1, 1)]) == {(1, 1): False}


def test_destroyed_unmanaged_domain_leaves_placement_usage(stack):
    state = stack.audit()
    check_setup(stack, state)
    stack.claim(1, 256)
    before = assert_agree(stack, stack.audit())

    stack.domain.destroy()
    state = stack.audit()
    assert stack.domain.UUIDString() not in unmanaged_uuids(state)
    after = assert_agree(stack, state)
    drop = {rc: before[rc]['usage'] - after[rc]['usage'] for rc in CLASSES}
    assert drop == {'VCPU': UNMANAGED_VCPUS, 'MEMORY_MB': UNMANAGED_MIB,
                    'DISK_GB': 0}
    # The room the domain gave back is room for both: fill it to one vCPU.
    fill(stack, state, after['VCPU']['free'] - 1, 256)
    state = stack.audit()
    figures = assert_agree(stack, state)
    assert figures['VCPU']['free'] == 1
    assert_admit_alike(stack, probes(figures, max_unit(state)))
