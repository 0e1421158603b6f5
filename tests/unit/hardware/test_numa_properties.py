"""Properties of NUMA fitting on random hosts and random guests."""

import itertools

from hypothesis import event, given, settings, strategies as st

from nova_rt.hardware import numa
from nova_rt.hardware.numa import HostCell, NumaRequest
from nova_rt.objects import MemPagePool
from tests.unit.hardware import hosts as hosts_mod

PAGE_SIZES = [None, 'small', 'large', 'any', 4, 2048, 1048576, 16384]


@st.composite
def host_cells(draw):
    cells = []
    next_cpu = 0
    for cell_id in range(draw(st.integers(1, 4))):
        threads = draw(st.integers(1, 2))
        siblings, shared, dedicated = [], set(), set()
        for _ in range(draw(st.integers(1, 6))):
            core = set(range(next_cpu, next_cpu + threads))
            next_cpu += threads
            siblings.append(frozenset(core))
            (dedicated if draw(st.booleans()) else shared).update(core)
        huge_1g = draw(st.integers(0, 2))
        huge_2m = draw(st.integers(0, 512))
        memory_mb = huge_1g * 1024 + huge_2m * 2 + draw(st.sampled_from([1024, 2048, 4096]))
        small = (memory_mb - huge_1g * 1024 - huge_2m * 2) * 256
        pools = [MemPagePool(4, small, reserved=draw(st.integers(0, 1024)))]
        if huge_2m:
            reserved_2m = draw(st.integers(0, min(8, huge_2m)))
            pools.append(MemPagePool(2048, huge_2m, reserved=reserved_2m))
        if huge_1g:
            pools.append(MemPagePool(1048576, huge_1g, reserved=draw(st.integers(0, huge_1g))))
        cells.append(HostCell(id=cell_id, cpuset=frozenset(shared),
                              pcpuset=frozenset(dedicated), siblings=tuple(siblings),
                              memory_mb=memory_mb, mempages=tuple(pools)))
    return draw(st.permutations(cells))


@st.composite
def requests(draw):
    nodes = draw(st.sampled_from([1, 1, 1, 2, 2, 3]))
    return NumaRequest(vcpus=nodes * draw(st.integers(1, 3)),
                       memory_mb=nodes * draw(st.sampled_from([128, 512, 1024, 1536, 2048])),
                       numa_nodes=nodes, dedicated=draw(st.booleans()),
                       page_size=draw(st.sampled_from(PAGE_SIZES)))


ratios = st.tuples(st.sampled_from([1.0, 2.0, 4.0]), st.sampled_from([1.0, 1.5]))


def assert_within_limits(cells, usage, placed, cpu_ratio, ram_ratio):
    for cell in cells:
        used = usage.get(cell.id) or numa.CellUsage()
        guest_cells = [gc for topology in placed for gc in topology['cells']
                       if gc['id'] == cell.id]
        pins = [cpu for gc in guest_cells for cpu in gc.get('cpu_pinning', {}).values()]
        assert len(pins) == len(set(pins)), 'a host CPU is pinned twice'
        assert set(pins) == used.pinned_cpus
        assert used.pinned_cpus <= cell.pcpuset
        assert used.cpu_usage <= len(cell.cpuset) * cpu_ratio
        unpaged_mb = sum(gc['memory_mb'] for gc in guest_cells if gc['pagesize_kb'] is None)
        assert unpaged_mb <= cell.memory_mb * ram_ratio
        for pool in cell.mempages:
            assert used.pages_used.get(pool.size_kb, 0) <= pool.total - pool.reserved
        assert set(used.pages_used) <= {pool.size_kb for pool in cell.mempages}


@settings(max_examples=150, deadline=None)
@given(cells=host_cells(), guests=st.lists(requests(), min_size=1, max_size=6),
       ratio=ratios, data=st.data())
def test_fitting_until_failure_stays_within_limits_and_unwinds(cells, guests, ratio, data):
    cpu_ratio, ram_ratio = ratio
    usage = numa.empty_usage(cells)

    def fit(request):
        topology = numa.fit_instance(request, cells, usage, cpu_ratio, ram_ratio)
        assert len(topology['cells']) == request.numa_nodes
        assert len({gc['id'] for gc in topology['cells']}) == request.numa_nodes
        assert sorted(v for gc in topology['cells'] for v in gc['cpuset']) == list(
            range(request.vcpus))
        return topology

    placed = [topology for _, topology in hosts_mod.place_until_full(
        guests, fit, usage, 40,
        lambda placed: assert_within_limits(cells, usage, [t for _, t in placed],
                                            cpu_ratio, ram_ratio))]
    event(f"guests placed: {min(len(placed), 10)}")
    sizes = {gc['pagesize_kb'] or 0 for topology in placed for gc in topology['cells']}
    event(f"page sizes used: {sorted(sizes)}")
    for topology in data.draw(st.permutations(placed)):
        numa.add_usage(usage, topology, sign=-1)
    assert usage == numa.empty_usage(cells)


def nova_search(request, cells, usage, cpu_ratio, ram_ratio, pci_check):
    """Nova's order, spelled out: every permutation, each guest cell in turn."""
    for permutation in itertools.permutations(sorted(cells, key=lambda c: c.id),
                                              request.numa_nodes):
        if all(not isinstance(numa._fit_cell(request, guest, 0, cell, usage[cell.id],
                                             cpu_ratio, ram_ratio), str)
               for guest, cell in zip(request.cells, permutation)):
            if pci_check(frozenset(c.id for c in permutation)):
                return [c.id for c in permutation]
    return None


@settings(max_examples=150, deadline=None)
@given(cells=host_cells(), preload=st.lists(requests(), max_size=4), request=requests(),
       ratio=ratios, vetoed=st.sets(st.frozensets(st.integers(0, 3), min_size=1)))
def test_same_cells_as_nova_permutation_search(cells, preload, request, ratio, vetoed):
    cpu_ratio, ram_ratio = ratio
    usage = numa.empty_usage(cells)
    for earlier in preload:
        try:
            numa.add_usage(usage, numa.fit_instance(earlier, cells, usage, *ratio))
        except numa.NumaFitError:
            pass

    def pci_check(cell_ids):
        return cell_ids not in vetoed

    expected = nova_search(request, cells, usage, cpu_ratio, ram_ratio, pci_check)
    event(f"fits: {expected is not None}")
    try:
        topology = numa.fit_instance(request, cells, usage, cpu_ratio, ram_ratio, pci_check)
    except numa.NumaFitError:
        assert expected is None
    else:
        assert [gc['id'] for gc in topology['cells']] == expected
