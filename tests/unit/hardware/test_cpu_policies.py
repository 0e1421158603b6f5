"""Mixed guests, thread policies, emulator threads and asymmetric nodes, fitted
on synthetic hosts: 2 sockets x 4 cores x 2 threads, and the same without SMT."""

import copy

import pytest

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import view
from nova_rt.hardware import numa
from nova_rt.hardware.constraints import NumaRequest


def smt_host(sockets=2, cores=4, threads=2, shared_cores=0, memory_mb=4096):
    """One cell per socket; the first ``shared_cores`` cores of each cell are
    shared (cpu_shared_set), the rest dedicated (cpu_dedicated_set).  CPU ids
    as Linux numbers them: thread t of core c of socket s is
    ``t * sockets * cores + s * cores + c``."""
    cells = []
    for socket in range(sockets):
        siblings, shared, dedicated = [], set(), set()
        for core in range(cores):
            cpus = {t * sockets * cores + socket * cores + core for t in range(threads)}
            siblings.append(frozenset(cpus))
            (shared if core < shared_cores else dedicated).update(cpus)
        cells.append(numa.HostCell(
            id=socket, cpuset=frozenset(shared), pcpuset=frozenset(dedicated),
            siblings=tuple(siblings), memory_mb=memory_mb,
            mempages=(objects.MemPagePool(4, memory_mb * 256),), socket_id=socket))
    return cells


def req(vcpus=2, memory_mb=1024, numa_nodes=1, **kw):
    kw.setdefault('dedicated', 'dedicated_mask' not in kw)
    return NumaRequest(vcpus=vcpus, memory_mb=memory_mb, numa_nodes=numa_nodes, **kw)


def fit(request, cells, usage=None, **kw):
    usage = numa.empty_usage(cells) if usage is None else usage
    return numa.fit_instance(request, cells, usage, 4.0, 1.0, **kw)


def pins(topology):
    return [cpu for cell in topology['cells'] for cpu in cell.get('cpu_pinning', {}).values()]


def cores_of(cells, cpus):
    return {s for cell in cells for s in cell.siblings if s & set(cpus)}


# --- prefer -------------------------------------------------------------------------

def test_prefer_keeps_siblings_together():
    cells = smt_host()
    topology = fit(req(vcpus=4), cells)
    assert pins(topology) == [0, 8, 1, 9]
    assert len(cores_of(cells, pins(topology))) == 2


def test_prefer_falls_back_to_any_free_thread():
    cells = smt_host(sockets=1, cores=2)
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = {0}
    assert sorted(pins(fit(req(vcpus=3), cells, usage))) == [1, 2, 3]


# --- require ------------------------------------------------------------------------

def test_require_places_vcpus_on_thread_siblings():
    cells = smt_host()
    topology = fit(req(vcpus=3, thread_policy='require'), cells)
    used_cores = cores_of(cells, pins(topology))
    assert len(used_cores) == 2
    assert sorted(len(core & set(pins(topology))) for core in used_cores) == [1, 2]


def test_require_refuses_a_cell_without_two_free_threads_per_core():
    cells = smt_host(sockets=1, cores=4)
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = {0, 1, 2, 3}        # one thread of every core taken
    with pytest.raises(numa.NumaFitError, match='free thread siblings'):
        fit(req(vcpus=2, thread_policy='require'), cells, usage)
    # prefer takes the four free threads all the same
    assert sorted(pins(fit(req(vcpus=4), cells, usage))) == [4, 5, 6, 7]


def test_require_needs_the_same_threads_on_every_core_it_uses():
    # As Nova: 3 + 2 free threads on 4-thread cores hold 4 vCPUs two to a
    # core, but not 5.
    cells = smt_host(sockets=1, cores=2, threads=4)
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = {0, 1, 3}      # core 0: 2, 4, 6 free; core 1: 5, 7 free
    assert len(pins(fit(req(vcpus=4, thread_policy='require'), cells, usage))) == 4
    with pytest.raises(numa.NumaFitError):
        fit(req(vcpus=5, thread_policy='require'), cells, usage)


def test_require_on_a_host_without_smt():
    cells = smt_host(threads=1)
    with pytest.raises(numa.NumaFitError, match='HW_CPU_HYPERTHREADING required'):
        fit(req(vcpus=2, thread_policy='require'), cells)


# --- isolate ------------------------------------------------------------------------

def test_isolate_on_a_host_without_smt():
    cells = smt_host(threads=1)
    topology = fit(req(vcpus=3, thread_policy='isolate'), cells)
    assert pins(topology) == [0, 1, 2]


def test_isolate_is_refused_on_a_host_with_smt():
    cells = smt_host()
    with pytest.raises(numa.NumaFitError, match='HW_CPU_HYPERTHREADING forbidden'):
        fit(req(vcpus=2, thread_policy='isolate'), cells)


def test_isolate_follows_the_hosts_trait_not_the_cells_view():
    # cpu_dedicated_set holds one thread of each core: the cells show no
    # siblings, but the host has SMT and reports HW_CPU_HYPERTHREADING.
    libvirt_cells = [objects.HostNumaCell(
        id=0, cpus=frozenset(range(8)), memory_mb=4096,
        siblings=tuple(frozenset({c, c + 4}) for c in range(4)))]
    cells = numa.host_cells(libvirt_cells, shared_cpus=(), dedicated_cpus={0, 1, 2, 3})
    assert cells[0].siblings == tuple(frozenset({c}) for c in range(4))
    assert numa.host_has_smt(libvirt_cells)
    request = req(vcpus=2, thread_policy='isolate')
    with pytest.raises(numa.NumaFitError, match='forbidden'):
        fit(request, cells, host_smt=numa.host_has_smt(libvirt_cells))
    assert pins(fit(request, cells, host_smt=False)) == [0, 1]


def test_hyperthreading_trait_is_reported_from_libvirts_siblings():
    def host(siblings):
        return objects.HostInfo(
            hostname='h', hypervisor_type='QEMU', hypervisor_version=1, uri='test:///',
            online_cpus=frozenset(range(4)), memory_mb=1, disk_total_gb=1, disk_used_gb=0,
            numa_cells=(objects.HostNumaCell(id=0, cpus=frozenset(range(4)), memory_mb=1,
                                             siblings=siblings),))
    assert 'HW_CPU_HYPERTHREADING' in view.capability_traits(
        host((frozenset({0, 1}), frozenset({2, 3}))))
    assert 'HW_CPU_HYPERTHREADING' not in view.capability_traits(
        host(tuple(frozenset({c}) for c in range(4))))


# --- emulator threads -----------------------------------------------------------------

@pytest.mark.parametrize('threads, policy', [(2, None), (2, 'require'), (1, 'isolate')])
def test_emulator_threads_take_one_more_cpu_on_node_0s_cell(threads, policy):
    cells = smt_host(threads=threads)
    request = req(vcpus=4, numa_nodes=2, thread_policy=policy,
                  emulator_threads_isolate=True)
    topology = fit(request, cells)
    first, second = topology['cells']
    assert len(first['cpuset_reserved']) == 1 and 'cpuset_reserved' not in second
    assert not set(first['cpuset_reserved']) & set(pins(topology))
    assert set(first['cpuset_reserved']) <= cells[first['id']].pcpuset
    usage = numa.empty_usage(cells)
    numa.add_usage(usage, topology)
    assert usage[first['id']].pinned_cpus == set(first['cpu_pinning'].values()) | set(
        first['cpuset_reserved'])
    assert numa.cells_view(cells, usage)[first['id']]['emulator_cpus'] == first['cpuset_reserved']
    numa.add_usage(usage, topology, sign=-1)
    assert usage == numa.empty_usage(cells)


def test_emulator_cpu_must_be_free_too():
    cells = smt_host(sockets=1, cores=2)
    with pytest.raises(numa.NumaFitError, match='needs 4 pinned CPUs and 1 for the '
                                                'emulator threads, has 4 dedicated CPUs'):
        fit(req(vcpus=4, emulator_threads_isolate=True), cells)
    assert fit(req(vcpus=3, emulator_threads_isolate=True), cells)


def test_emulator_threads_need_a_pinned_vcpu_on_node_0():
    # As Nova: the emulator CPU goes beside guest node 0's pinned vCPUs.
    cells = smt_host(shared_cores=2)
    request = req(vcpus=4, numa_nodes=2, dedicated_mask={2, 3},
                  emulator_threads_isolate=True)
    with pytest.raises(numa.NumaFitError, match='no dedicated vCPUs'):
        fit(request, cells)
    ok = req(vcpus=4, numa_nodes=2, dedicated_mask={0, 3}, emulator_threads_isolate=True)
    assert fit(ok, cells)['cells'][0]['cpuset_reserved']


# --- mixed --------------------------------------------------------------------------

def test_mixed_pins_the_dedicated_vcpus_and_floats_the_others():
    cells = smt_host(shared_cores=2)
    topology = fit(req(vcpus=4, dedicated_mask={2, 3}), cells)
    cell = topology['cells'][0]
    assert cell['cpuset'] == [0, 1, 2, 3]
    assert set(cell['cpu_pinning']) == {'2', '3'}
    assert set(cell['cpu_pinning'].values()) <= cells[0].pcpuset
    usage = numa.empty_usage(cells)
    numa.add_usage(usage, topology)
    assert usage[0].cpu_usage == 2 and len(usage[0].pinned_cpus) == 2


def test_mixed_needs_both_kinds_of_cpu_in_the_cell():
    with pytest.raises(numa.NumaFitError, match='needs 2 vCPUs, has 0 shared CPUs'):
        fit(req(vcpus=4, dedicated_mask={2, 3}), smt_host())
    with pytest.raises(numa.NumaFitError, match='needs 2 pinned CPUs, has 0 dedicated'):
        fit(req(vcpus=4, dedicated_mask={2, 3}), smt_host(shared_cores=4))


def test_mixed_thread_policy_applies_to_the_dedicated_vcpus():
    cells = smt_host(shared_cores=2)
    topology = fit(req(vcpus=4, dedicated_mask={1, 2, 3}, thread_policy='require'), cells)
    assert len(cores_of(cells, pins(topology))) == 2


# --- asymmetric nodes ---------------------------------------------------------------

def test_asymmetric_nodes_each_go_where_they_fit():
    cells = smt_host()
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = set(range(0, 4)) | set(range(8, 11))  # one CPU free in cell 0
    request = req(vcpus=6, memory_mb=2048, numa_nodes=2,
                  node_cpus=({0, 1, 2, 3, 4}, {5}), node_memory_mb=(1536, 512))
    topology = fit(request, cells, usage)
    assert [(c['id'], c['cpuset'], c['memory_mb']) for c in topology['cells']] == [
        (1, [0, 1, 2, 3, 4], 1536), (0, [5], 512)]


def test_asymmetric_refusal_names_the_guest_node():
    cells = smt_host()
    usage = numa.empty_usage(cells)
    usage[0].pinned_cpus = set(range(0, 4)) | set(range(8, 11))
    usage[1].pinned_cpus = set(range(4, 8)) | set(range(12, 15))
    request = req(vcpus=6, memory_mb=2048, numa_nodes=2,
                  node_cpus=({0, 1, 2, 3, 4}, {5}), node_memory_mb=(1536, 512))
    with pytest.raises(numa.NumaFitError) as info:
        fit(request, cells, usage)
    assert 'cell 0 for guest node 0: needs 5 pinned CPUs, 1 free' in str(info.value)


def test_malformed_reserved_cpus_are_refused_by_usage():
    usage = numa.empty_usage(smt_host())
    before = copy.deepcopy(usage)
    for reserved in ('x', [-1], [4]):
        with pytest.raises(exception.InvalidInput, match='invalid NUMA topology'):
            numa.add_usage(usage, {'cells': [{
                'id': 0, 'cpuset': [0], 'cpu_pinning': {'0': 4}, 'cpuset_reserved': reserved,
                'memory_mb': 512, 'pagesize_kb': None}]})
    assert usage == before
