"""Properties of pinning under every CPU policy, on random SMT and non-SMT hosts.

Guests of every kind (shared, dedicated, mixed; prefer, require, isolate;
emulator threads; even and asymmetric nodes) are placed until the host is
full, then removed in any order.  Whatever was placed: no host CPU is pinned
twice, pinned CPUs are dedicated ones, emulator CPUs are none of a guest's,
an isolated guest's thread siblings are nobody's, the PCPU and VCPU amounts
placement gets agree with the pinning, and removing everything gives
everything back.
"""

from hypothesis import event, given, settings, strategies as st

from nova_rt.hardware import numa
from nova_rt.hardware.constraints import NumaRequest
from nova_rt.objects import MemPagePool
from tests.unit.hardware import hosts as hosts_mod


@st.composite
def hosts(draw):
    """(libvirt cells, tracker cells): every core's threads are shared or
    dedicated together, or (a host giving guests one thread per core) only
    the first thread is dedicated."""
    threads = draw(st.sampled_from([1, 2, 2, 4]))
    one_thread_per_core = threads > 1 and draw(st.booleans())

    def role_of(cell_id, core):
        if one_thread_per_core:
            return 'first'
        return 'dedicated' if draw(st.integers(0, 3)) else 'shared'

    cores = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    siblings, shared, dedicated = hosts_mod.smt_cpus(cores, threads, role_of)
    libvirt_cells = []
    for cell_id, cell_siblings in enumerate(siblings):
        memory_mb = draw(st.sampled_from([2048, 4096]))
        huge = draw(st.integers(0, 256))
        pools = (MemPagePool(4, (memory_mb - huge * 2) * 256), MemPagePool(2048, huge))
        libvirt_cells.append(hosts_mod.libvirt_cell(cell_id, cell_siblings, memory_mb, pools))
    cells = numa.host_cells(libvirt_cells, shared, dedicated)
    return libvirt_cells, draw(st.permutations(cells))


@st.composite
def requests(draw):
    nodes = draw(st.sampled_from([1, 1, 2, 3]))
    vcpus = nodes * draw(st.integers(1, 3))
    memory_mb = nodes * draw(st.sampled_from([128, 256, 512]))
    policy = draw(st.sampled_from(['shared', 'dedicated', 'dedicated', 'mixed']))
    kw = {}
    if draw(st.booleans()) and nodes > 1:
        # An asymmetric layout: a random partition of vCPUs and memory.
        order = draw(st.permutations(range(vcpus)))
        cuts = sorted(draw(st.sets(st.integers(1, vcpus - 1), min_size=nodes - 1,
                                   max_size=nodes - 1))) if vcpus > nodes else list(
            range(1, nodes))
        bounds = [0] + cuts + [vcpus]
        kw['node_cpus'] = tuple(frozenset(order[a:b]) for a, b in zip(bounds, bounds[1:]))
        memory = [128] * nodes
        memory[draw(st.integers(0, nodes - 1))] += memory_mb - 128 * nodes
        kw['node_memory_mb'] = tuple(memory)
    if policy == 'mixed':
        if vcpus < 2:
            policy = 'dedicated'
        else:
            kw['dedicated_mask'] = frozenset(draw(st.sets(
                st.integers(0, vcpus - 1), min_size=1, max_size=vcpus - 1)))
    if policy != 'shared':
        kw['thread_policy'] = draw(st.sampled_from([None, 'prefer', 'require', 'isolate']))
        kw['emulator_threads_isolate'] = draw(st.booleans())
    return NumaRequest(vcpus=vcpus, memory_mb=memory_mb, numa_nodes=nodes,
                       dedicated=policy == 'dedicated',
                       page_size=draw(st.sampled_from([None, None, 'small', 'large', 'any'])),
                       **kw)


def check_invariants(libvirt_cells, cells, usage, placed):
    by_id = {cell.id: cell for cell in cells}
    raw_siblings = {cpu: s for cell in libvirt_cells for s in cell.siblings for cpu in s}
    owners = {}
    for index, (request, topology) in enumerate(placed):
        pinned_here = 0
        for guest_cell in topology['cells']:
            cell = by_id[guest_cell['id']]
            guest_cpus = set(guest_cell.get('cpu_pinning', {}).values())
            emulator = set(guest_cell.get('cpuset_reserved', ()))
            assert not guest_cpus & emulator, 'an emulator CPU is also a guest CPU'
            for cpu in guest_cpus | emulator:
                assert cpu not in owners, f'host CPU {cpu} is pinned twice'
                owners[cpu] = index
                assert cpu in cell.pcpuset, 'pinned outside cpu_dedicated_set'
            pinned_here += len(guest_cpus | emulator)
        # Placement's PCPU amount is what the guest pins.
        expected = sum(len(g.pinned) for g in request.cells) + int(
            request.emulator_threads_isolate)
        assert pinned_here == expected
    for index, (request, topology) in enumerate(placed):
        if request.thread_policy != 'isolate':
            continue
        for guest_cell in topology['cells']:
            for cpu in guest_cell['cpu_pinning'].values():
                for sibling in raw_siblings.get(cpu, {cpu}) - {cpu}:
                    assert owners.get(sibling, index) == index, \
                        "an isolated guest's thread sibling went to another guest"
                    assert all(sibling not in c.cpuset for c in cells), \
                        "an isolated guest's thread sibling floats shared guests"
    for cell in cells:
        used = usage.get(cell.id) or numa.CellUsage()
        assert used.pinned_cpus == {cpu for cpu in owners if cpu in cell.pcpuset}
        assert used.emulator_cpus <= used.pinned_cpus
        shared = sum(len(gc['cpuset']) - len(gc.get('cpu_pinning', {}))
                     for _, t in placed for gc in t['cells'] if gc['id'] == cell.id)
        assert used.cpu_usage == shared


@settings(max_examples=200, deadline=None)
@given(host=hosts(), guests=st.lists(requests(), min_size=1, max_size=8), data=st.data())
def test_every_policy_keeps_the_invariants_and_unwinds(host, guests, data):
    libvirt_cells, cells = host
    smt = numa.host_has_smt(libvirt_cells)
    usage = numa.empty_usage(cells)

    def fit(request):
        topology = numa.fit_instance(request, cells, usage, 2.0, 1.0, host_smt=smt)
        assert not (request.thread_policy == 'isolate' and smt), \
            'isolate placed on a host with SMT'
        assert not (request.thread_policy == 'require' and not smt), \
            'require placed on a host without SMT'
        assert [sorted(gc['cpuset']) for gc in topology['cells']] == [
            list(g.cpus) for g in request.cells]
        return topology

    placed = hosts_mod.place_until_full(
        guests, fit, usage, 6,
        lambda placed: check_invariants(libvirt_cells, cells, usage, placed))
    event(f"guests placed: {min(len(placed), 6)}")
    policies = {(r.cpu_policy, r.thread_policy) for r, _ in placed}
    event(f"policies placed: {sorted(policies, key=str)}")
    for _, topology in data.draw(st.permutations(placed)):
        numa.add_usage(usage, topology, sign=-1)
    assert usage == numa.empty_usage(cells), 'removing every guest must give everything back'
