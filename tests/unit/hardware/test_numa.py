"""Nova's classic NUMA fitting cases, as plain data."""

import copy
import dataclasses

import pytest

from nova_rt import exception
from nova_rt.hardware import numa
from nova_rt.hardware.numa import CellUsage, HostCell, NumaRequest
from nova_rt.objects import Flavor, HostNumaCell, MemPagePool


def make_cell(cell_id, memory_mb=4096, huge_2m=512, huge_1g=1):
    """8 CPUs as 4 SMT cores; CPUs 0-3 of the cell shared, 4-7 dedicated.

    Memory: 1 GiB in 2 MiB pages, 1 GiB in 1 GiB pages, the rest in 4 KiB.
    """
    base = cell_id * 8
    small = (memory_mb - huge_2m * 2 - huge_1g * 1024) * 256
    return HostCell(
        id=cell_id,
        cpuset=frozenset(range(base, base + 4)),
        pcpuset=frozenset(range(base + 4, base + 8)),
        siblings=tuple(frozenset({base + i, base + i + 1}) for i in range(0, 8, 2)),
        memory_mb=memory_mb,
        mempages=(MemPagePool(4, small), MemPagePool(2048, huge_2m),
                  MemPagePool(1048576, huge_1g)),
        socket_id=cell_id)


def host(cells=2):
    return [make_cell(i) for i in range(cells)]


def req(vcpus=2, memory_mb=1024, numa_nodes=1, dedicated=False, page_size=None):
    return NumaRequest(vcpus=vcpus, memory_mb=memory_mb, numa_nodes=numa_nodes,
                       dedicated=dedicated, page_size=page_size)


def fit(request, cells=None, usage=None, cpu_ratio=1.0, ram_ratio=1.0, pci_check=None):
    cells = host() if cells is None else cells
    usage = numa.empty_usage(cells) if usage is None else usage
    return numa.fit_instance(request, cells, usage, cpu_ratio, ram_ratio, pci_check)


def flavor(vcpus=4, memory_mb=2048, **extra_specs):
    return Flavor(name='f', vcpus=vcpus, memory_mb=memory_mb, root_gb=1,
                  ephemeral_gb=0, swap=0, extra_specs=extra_specs)


# --- request_from_flavor ------------------------------------------------------

def test_flavor_without_numa_asks_nothing():
    assert numa.request_from_flavor(flavor()) is None
    assert numa.request_from_flavor(flavor(**{'hw:cpu_policy': 'shared'})) is None
    assert numa.request_from_flavor(flavor(**{'hw:numa_nodes': ''})) is None


@pytest.mark.parametrize('specs, nodes, dedicated, page_size', [
    ({'hw:numa_nodes': '2'}, 2, False, None),
    ({'hw:numa_nodes': 4}, 4, False, None),
    ({'hw:cpu_policy': 'dedicated'}, 1, True, None),
    ({'hw:mem_page_size': 'large'}, 1, False, 'large'),
    ({'hw:mem_page_size': '2MB'}, 1, False, 2048),
    ({'hw:mem_page_size': '1GB', 'hw:numa_nodes': '2'}, 2, False, 1048576),
    ({'hw:mem_page_size': '2048', 'hw:cpu_policy': 'dedicated'}, 1, True, 2048),
    ({'hw:numa_nodes': '1', 'hw:cpu_policy': 'shared', 'unknown': 'kept'}, 1, False, None),
])
def test_flavor_requests(specs, nodes, dedicated, page_size):
    request = numa.request_from_flavor(flavor(**specs))
    assert request == NumaRequest(vcpus=4, memory_mb=2048, numa_nodes=nodes,
                                  dedicated=dedicated, page_size=page_size)
    assert request.cell_vcpus == 4 // nodes
    assert request.cell_memory_mb == 2048 // nodes


@pytest.mark.parametrize('specs, vcpus, memory_mb, spec_named', [
    ({'hw:numa_nodes': '0'}, 4, 2048, 'hw:numa_nodes'),
    ({'hw:numa_nodes': '-1'}, 4, 2048, 'hw:numa_nodes'),
    ({'hw:numa_nodes': 'two'}, 4, 2048, 'hw:numa_nodes'),
    ({'hw:numa_nodes': True}, 4, 2048, 'hw:numa_nodes'),
    ({'hw:numa_nodes': '8'}, 4, 2048, 'hw:numa_nodes=8 is more than'),
    ({'hw:numa_nodes': '3'}, 4, 3072, 'hw:numa_nodes=3'),
    ({'hw:numa_nodes': '2'}, 4, 1025, 'hw:numa_nodes=2'),
    ({'hw:cpu_policy': 'mixed'}, 4, 2048, 'hw:cpu_policy'),
    ({'hw:mem_page_size': 'huge'}, 4, 2048, 'hw:mem_page_size'),
    ({'hw:mem_page_size': '0'}, 4, 2048, 'hw:mem_page_size'),
    ({'hw:mem_page_size': '2M'}, 4, 2048, 'hw:mem_page_size'),
])
def test_flavor_errors_name_the_spec(specs, vcpus, memory_mb, spec_named):
    with pytest.raises(exception.InvalidInput) as info:
        numa.request_from_flavor(flavor(vcpus=vcpus, memory_mb=memory_mb, **specs))
    assert spec_named in str(info.value)


def test_request_validates_itself():
    with pytest.raises(exception.InvalidInput, match='split evenly'):
        req(vcpus=3, numa_nodes=2)
    with pytest.raises(exception.InvalidInput, match='vcpus must be a positive'):
        req(vcpus=0)
    with pytest.raises(exception.InvalidInput, match='not a page size'):
        req(page_size='huge')
    assert req(page_size='1GB').page_size == 1048576


# --- CPUs -----------------------------------------------------------------------

def test_shared_guest_on_first_cell():
    assert fit(req()) == {'cells': [
        {'id': 0, 'cpuset': [0, 1], 'memory_mb': 1024, 'pagesize_kb': None}]}


def test_dedicated_pins_onto_siblings_of_one_core():
    topology = fit(req(dedicated=True))
    assert topology == {'cells': [{'id': 0, 'cpuset': [0, 1], 'cpu_pinning': {'0': 4, '1': 5},
                                   'memory_mb': 1024, 'pagesize_kb': None}]}


def test_dedicated_prefers_cores_with_most_free_siblings():
    usage = numa.empty_usage(host())
    usage[0].pinned_cpus = {4}
    assert fit(req(dedicated=True), usage=usage)['cells'][0]['cpu_pinning'] == {
        '0': 6, '1': 7}
    # Three vCPUs: a whole free core first, then the half-used one.
    assert fit(req(vcpus=3, dedicated=True), usage=usage)['cells'][0]['cpu_pinning'] == {
        '0': 6, '1': 7, '2': 5}


def test_pinning_without_smt_and_cpus_outside_sibling_sets():
    cell = HostCell(id=0, cpuset=frozenset(), pcpuset=frozenset({3, 1, 2}),
                    siblings=(), memory_mb=2048)
    topology = fit(req(dedicated=True), cells=[cell])
    assert topology['cells'][0]['cpu_pinning'] == {'0': 1, '1': 2}


def test_pinning_fails_in_one_cell_and_succeeds_in_the_other():
    usage = numa.empty_usage(host())
    usage[0].pinned_cpus = {4, 5, 6}
    topology = fit(req(dedicated=True), usage=usage)
    assert topology['cells'][0]['id'] == 1
    assert topology['cells'][0]['cpu_pinning'] == {'0': 12, '1': 13}


def test_pinning_never_uses_shared_cpus_nor_overcommits():
    usage = numa.empty_usage(host())
    usage[0].pinned_cpus = {4, 5, 6}
    usage[1].pinned_cpus = {12, 13, 14}
    with pytest.raises(numa.NumaFitError) as info:
        fit(req(dedicated=True), usage=usage, cpu_ratio=16.0)
    assert str(info.value) == (
        'Insufficient compute resources: no host NUMA cell fits: '
        'cell 0: needs 2 pinned CPUs, 1 free; cell 1: needs 2 pinned CPUs, 1 free')
    assert isinstance(info.value, exception.ComputeResourcesUnavailable)


def test_guest_bigger_than_any_cell():
    with pytest.raises(numa.NumaFitError, match='needs 6 pinned CPUs, has 4 dedicated CPUs'):
        fit(req(vcpus=6, dedicated=True))
    with pytest.raises(numa.NumaFitError, match='needs 6 vCPUs, has 4 shared CPUs'):
        fit(req(vcpus=6), cpu_ratio=16.0)


def test_cpu_allocation_ratio_applies_to_shared_cpus():
    usage = numa.empty_usage(host(1))
    usage[0].cpu_usage = 6
    # 4 shared CPUs x 2.0 = 8 vCPUs.
    assert fit(req(vcpus=2), cells=host(1), usage=usage, cpu_ratio=2.0)['cells'][0]['id'] == 0
    with pytest.raises(numa.NumaFitError, match=r'needs 3 vCPUs, 6 of 8 in use '
                                                r'\(4 shared CPUs x ratio 2\)'):
        fit(req(vcpus=3), cells=host(1), usage=usage, cpu_ratio=2.0)


# --- memory ---------------------------------------------------------------------

def test_ram_allocation_ratio_applies_to_small_page_memory():
    usage = numa.empty_usage(host(1))
    usage[0].memory_usage_mb = 5000
    # 4096 MiB x 1.5 = 6144 MiB.
    assert fit(req(memory_mb=1144), cells=host(1), usage=usage, ram_ratio=1.5)
    with pytest.raises(numa.NumaFitError,
                       match=r'needs 1146 MiB, 5000 of 6144 MiB in use'):
        fit(req(vcpus=1, memory_mb=1146), cells=host(1), usage=usage, ram_ratio=1.5)


def test_guest_never_overcommits_memory_against_itself():
    # As Nova, against the cell's smallest pages when it reports page pools
    # (2 GiB of the 4 GiB cell are huge pages) ...
    with pytest.raises(numa.NumaFitError,
                       match='needs 3072 MiB, cell has 2048 MiB of 4 KiB pages'):
        fit(req(memory_mb=3072), ram_ratio=4.0)
    # ... and against the cell's memory when it reports none.
    cell = dataclasses.replace(make_cell(0), mempages=())
    with pytest.raises(numa.NumaFitError, match='needs 6144 MiB, cell has 4096 MiB'):
        fit(req(memory_mb=6144), cells=[cell], ram_ratio=4.0)


def test_numa_only_request_checks_memory_per_cell():
    usage = numa.empty_usage(host())
    usage[0].memory_usage_mb = 4000
    assert fit(req(memory_mb=1024), usage=usage)['cells'][0]['id'] == 1


def test_huge_pages_2m_fit_then_exhaust():
    cells = host()
    usage = numa.empty_usage(cells)
    request = req(memory_mb=1024, page_size=2048)
    first = fit(request, cells, usage)
    assert first['cells'][0] == {'id': 0, 'cpuset': [0, 1], 'memory_mb': 1024,
                                 'pagesize_kb': 2048}
    numa.add_usage(usage, first)
    assert usage[0].pages_used == {2048: 512}
    second = fit(request, cells, usage)
    assert second['cells'][0]['id'] == 1
    numa.add_usage(usage, second)
    with pytest.raises(numa.NumaFitError) as info:
        fit(request, cells, usage)
    assert 'cell 0: needs 1024 MiB of 2048 KiB pages (512 pages), 0 free' in str(info.value)
    assert 'cell 1: needs 1024 MiB of 2048 KiB pages (512 pages), 0 free' in str(info.value)


def test_huge_pages_1g_and_whole_pages():
    assert fit(req(page_size=1048576))['cells'][0]['pagesize_kb'] == 1048576
    with pytest.raises(numa.NumaFitError, match='needs 2048 MiB of 1048576 KiB pages '
                                                r'\(2 pages\), 1 free'):
        fit(req(memory_mb=2048, page_size=1048576))
    with pytest.raises(numa.NumaFitError,
                       match='1536 MiB is not a whole number of 1048576 KiB pages'):
        fit(req(memory_mb=1536, page_size=1048576))


def test_huge_pages_count_as_memory_and_bound_shared_guests_by_the_ratio():
    cells = host(1)
    usage = numa.empty_usage(cells)
    usage[0].memory_usage_mb = 2048        # the small pages, taken by unpaged guests
    # As Nova: a pinned guest's huge pages are real memory, no ratio applies.
    topology = fit(req(page_size='large', dedicated=True), cells, usage)
    assert topology['cells'][0]['pagesize_kb'] == 1048576
    numa.add_usage(usage, topology)
    assert usage[0].memory_usage_mb == 3072
    assert usage[0].pages_used == {1048576: 1}
    # A guest with shared vCPUs is bound by the ratio over all the cell's
    # guests, paged or not.
    with pytest.raises(numa.NumaFitError, match=r'needs 1024 MiB, 3072 of 3686.4 MiB in use'):
        fit(req(page_size='large'), cells, usage, ram_ratio=0.9)
    assert fit(req(page_size='large'), cells, usage)['cells'][0]['pagesize_kb'] == 2048


def test_large_and_any_semantics():
    cells = host(1)
    usage = numa.empty_usage(cells)
    sizes = []
    for _ in range(2):
        topology = fit(req(vcpus=1, memory_mb=1024, page_size='large'), cells, usage)
        numa.add_usage(usage, topology)
        sizes.append(topology['cells'][0]['pagesize_kb'])
    # Largest first, then the next large size; never small pages.
    assert sizes == [1048576, 2048]
    with pytest.raises(numa.NumaFitError) as info:
        fit(req(vcpus=1, memory_mb=1024, page_size='large'), cells, usage)
    assert '4 KiB' not in str(info.value)
    # "any" falls back to small pages when every huge page is taken.
    assert fit(req(vcpus=1, memory_mb=1024, page_size='any'), cells, usage)['cells'][0][
        'pagesize_kb'] == 4
    assert fit(req(vcpus=1, memory_mb=1024, page_size='small'), host(1))['cells'][0][
        'pagesize_kb'] == 4


def test_explicit_page_size_missing_on_the_host():
    with pytest.raises(numa.NumaFitError, match='cell 0: has no 16384 KiB pages'):
        fit(req(page_size=16384))


# --- several guest cells ----------------------------------------------------------

def test_numa_nodes_spread_over_cells():
    topology = fit(req(vcpus=4, memory_mb=2048, numa_nodes=2, dedicated=True,
                       page_size=2048))
    assert topology == {'cells': [
        {'id': 0, 'cpuset': [0, 1], 'cpu_pinning': {'0': 4, '1': 5}, 'memory_mb': 1024,
         'pagesize_kb': 2048},
        {'id': 1, 'cpuset': [2, 3], 'cpu_pinning': {'2': 12, '3': 13}, 'memory_mb': 1024,
         'pagesize_kb': 2048}]}


def test_numa_nodes_skip_a_full_cell():
    cells = host(3)
    usage = numa.empty_usage(cells)
    usage[0].cpu_usage = 4
    topology = fit(req(vcpus=4, numa_nodes=2), cells, usage)
    assert [c['id'] for c in topology['cells']] == [1, 2]
    assert [c['cpuset'] for c in topology['cells']] == [[0, 1], [2, 3]]


def test_more_guest_nodes_than_host_cells():
    with pytest.raises(numa.NumaFitError,
                       match='guest asks for 4 NUMA nodes, host has 2 NUMA cells'):
        fit(req(vcpus=4, numa_nodes=4))


def test_no_combination_reason_lists_each_cell():
    cells = host(2)
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = {4, 5, 6}
    usage[1].pages_used = {1048576: 1}
    with pytest.raises(numa.NumaFitError) as info:
        fit(req(vcpus=4, memory_mb=2048, numa_nodes=2, dedicated=True,
                page_size=1048576), cells, usage)
    assert str(info.value) == (
        'Insufficient compute resources: no combination of 2 host NUMA cells fits: '
        'cell 0: needs 2 pinned CPUs, 1 free; '
        'cell 1: needs 1024 MiB of 1048576 KiB pages (1 pages), 0 free')


def test_bad_ratios_and_duplicate_cells_are_refused():
    with pytest.raises(exception.InvalidInput, match='cpu_allocation_ratio must be > 0'):
        fit(req(), cpu_ratio=0.0)
    with pytest.raises(exception.InvalidInput, match='ram_allocation_ratio must be > 0'):
        fit(req(), ram_ratio=float('nan'))
    with pytest.raises(exception.InvalidInput, match='unique'):
        fit(req(), cells=[make_cell(0), make_cell(0)])


def test_host_without_numa_topology():
    with pytest.raises(numa.NumaFitError, match='host has no NUMA topology'):
        fit(req(), cells=[])


# --- PCI veto and determinism ----------------------------------------------------

def test_pci_check_veto_moves_to_another_cell():
    calls = []

    def pci_check(cell_ids):
        calls.append(cell_ids)
        return 0 not in cell_ids

    assert fit(req(), cells=host(3), pci_check=pci_check)['cells'][0]['id'] == 1
    assert calls == [frozenset({0}), frozenset({1})]


def test_pci_check_only_sees_otherwise_fitting_cells():
    calls = []
    usage = numa.empty_usage(host(3))
    usage[1].cpu_usage = 4

    def pci_check(cell_ids):
        calls.append(cell_ids)
        return False

    with pytest.raises(numa.NumaFitError) as info:
        fit(req(vcpus=2, numa_nodes=2), cells=host(3), usage=usage, pci_check=pci_check)
    assert calls == [frozenset({0, 2})]
    assert 'cell 1: needs 1 vCPUs, 4 of 4 in use' in str(info.value)
    assert 'requested PCI devices do not fit on cells 0+2' in str(info.value)


def test_results_are_deterministic_whatever_the_cell_order():
    cells = host(4)
    request = req(vcpus=4, memory_mb=2048, numa_nodes=2, dedicated=True)
    first = fit(request, cells)
    assert fit(request, list(reversed(cells))) == first
    assert fit(request, cells) == first


def test_fit_does_not_change_usage():
    cells = host()
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = {4}
    before = copy.deepcopy(usage)
    fit(req(dedicated=True, page_size=2048), cells, usage)
    assert usage == before


# --- usage ------------------------------------------------------------------------

def test_add_then_remove_returns_to_zero():
    cells = host()
    usage = numa.empty_usage(cells)
    topologies = [fit(req(vcpus=4, memory_mb=2048, numa_nodes=2, dedicated=True,
                          page_size=2048), cells, usage)]
    numa.add_usage(usage, topologies[0])
    topologies.append(fit(req(vcpus=2, memory_mb=512), cells, usage))
    numa.add_usage(usage, topologies[1])
    assert usage[0] == CellUsage(cpu_usage=2, memory_usage_mb=1536, pinned_cpus={4, 5},
                                 pages_used={2048: 512})
    assert usage[1] == CellUsage(cpu_usage=0, memory_usage_mb=1024, pinned_cpus={12, 13},
                                 pages_used={2048: 512})
    for topology in topologies:
        numa.add_usage(usage, topology, sign=-1)
    assert usage == numa.empty_usage(cells)


def test_pinning_a_pinned_cpu_changes_nothing():
    usage = numa.empty_usage(host())
    usage[0].pinned_cpus = {5}
    topology = {'cells': [
        {'id': 1, 'cpuset': [0], 'cpu_pinning': {'0': 12}, 'memory_mb': 512,
         'pagesize_kb': None},
        {'id': 0, 'cpuset': [1], 'cpu_pinning': {'1': 5}, 'memory_mb': 512,
         'pagesize_kb': None}]}
    before = copy.deepcopy(usage)
    with pytest.raises(numa.NumaFitError, match=r'host CPUs \[5\] of NUMA cell 0'):
        numa.add_usage(usage, topology)
    assert usage == before


def test_removing_what_was_never_added_changes_nothing():
    usage = numa.empty_usage(host())
    usage[0].cpu_usage = 1
    topology = {'cells': [
        {'id': 0, 'cpuset': [0], 'memory_mb': 0, 'pagesize_kb': None},
        {'id': 1, 'cpuset': [1], 'memory_mb': 512, 'pagesize_kb': None}]}
    before = copy.deepcopy(usage)
    with pytest.raises(exception.InvalidInput, match='NUMA cell 1: 1 vCPUs counted'):
        numa.add_usage(usage, topology, sign=-1)
    assert usage == before
    with pytest.raises(exception.InvalidInput, match='no usage'):
        numa.add_usage({}, topology, sign=-1)


@pytest.mark.parametrize('topology', [
    None, {}, {'cells': 'x'}, {'cells': [1]},
    {'cells': [{'id': -1, 'cpuset': [0], 'memory_mb': 1, 'pagesize_kb': None}]},
    {'cells': [{'id': 0, 'cpuset': 'x', 'memory_mb': 1, 'pagesize_kb': None}]},
    {'cells': [{'id': 0, 'cpuset': [0], 'memory_mb': '1', 'pagesize_kb': None}]},
    {'cells': [{'id': 0, 'cpuset': [0], 'memory_mb': 3, 'pagesize_kb': 2048}]},
    {'cells': [{'id': 0, 'cpuset': [0, 1], 'cpu_pinning': {'0': 4, '1': 4},
                'memory_mb': 1, 'pagesize_kb': None}]},
    {'cells': [{'id': 0, 'cpuset': [0], 'cpu_pinning': [4], 'memory_mb': 1,
                'pagesize_kb': None}]},
])
def test_malformed_topology_is_refused(topology):
    usage = numa.empty_usage(host())
    with pytest.raises(exception.InvalidInput, match='invalid NUMA topology'):
        numa.add_usage(usage, topology)
    assert usage == numa.empty_usage(host())


def test_bad_sign():
    with pytest.raises(exception.InvalidInput, match='sign'):
        numa.add_usage({}, {'cells': []}, sign=2)


# --- views ------------------------------------------------------------------------

def test_cells_view_in_contract_form():
    cells = host(1)
    usage = numa.empty_usage(cells)
    numa.add_usage(usage, fit(req(dedicated=True, page_size=2048), cells, usage))
    numa.add_usage(usage, fit(req(vcpus=1, memory_mb=256), cells, usage))
    assert numa.cells_view(cells, usage) == [{
        'id': 0, 'cpuset': [0, 1, 2, 3], 'pcpuset': [4, 5, 6, 7], 'memory_mb': 4096,
        'cpu_usage': 1, 'memory_usage_mb': 1280, 'pinned_cpus': [4, 5],
        'emulator_cpus': [],
        'siblings': [[0, 1], [2, 3], [4, 5], [6, 7]],
        'mempages': [{'size_kb': 4, 'total': 524288, 'used': 0, 'reserved': 0},
                     {'size_kb': 2048, 'total': 512, 'used': 512, 'reserved': 0},
                     {'size_kb': 1048576, 'total': 1, 'used': 0, 'reserved': 0}]}]


def test_host_cells_split_cpus_by_role():
    libvirt_cells = (
        HostNumaCell(id=1, cpus=frozenset({2, 3}), memory_mb=1024,
                     siblings=(frozenset({2, 3}),), mempages=(MemPagePool(4, 262144),),
                     socket_id=0),
        HostNumaCell(id=0, cpus=frozenset({0, 1}), memory_mb=2048))
    cells = numa.host_cells(libvirt_cells, shared_cpus={0, 2}, dedicated_cpus={1, 3})
    assert cells == [
        HostCell(id=0, cpuset=frozenset({0}), pcpuset=frozenset({1}), siblings=(),
                 memory_mb=2048, mempages=(), socket_id=None),
        HostCell(id=1, cpuset=frozenset({2}), pcpuset=frozenset({3}),
                 siblings=(frozenset({2, 3}),), memory_mb=1024,
                 mempages=(MemPagePool(4, 262144),), socket_id=0)]
