"""Building synthetic hosts and filling them, for the NUMA property tests and
the differential test (which runs where only Nova and this package are)."""

import copy

from nova_rt import objects
from nova_rt.hardware import numa


def smt_cpus(cores_per_cell, threads, role_of):
    """Per cell, its cores as sibling sets; and the shared and dedicated CPUs.

    Core *k* of the whole host has CPUs ``k*threads .. k*threads+threads-1``.
    ``role_of(cell_id, core)`` says what the core's CPUs are: ``'shared'``,
    ``'dedicated'``, ``'first'`` (only its first thread dedicated, the others
    left to the host) or None (neither).
    """
    cells, shared, dedicated = [], set(), set()
    cpu = 0
    for cell_id, cores in enumerate(cores_per_cell):
        siblings = []
        for _ in range(cores):
            core = list(range(cpu, cpu + threads))
            cpu += threads
            siblings.append(frozenset(core))
            role = role_of(cell_id, core)
            if role == 'first':
                dedicated.add(core[0])
            elif role in ('shared', 'dedicated'):
                (shared if role == 'shared' else dedicated).update(core)
        cells.append(tuple(siblings))
    return cells, shared, dedicated


def libvirt_cell(cell_id, siblings, memory_mb, pools):
    return objects.HostNumaCell(
        id=cell_id, cpus=frozenset(c for s in siblings for c in s),
        memory_mb=memory_mb, siblings=tuple(siblings), mempages=tuple(pools))


def place_until_full(guests, fit, usage, per_guest, check):
    """Place each guest up to ``per_guest`` times, until it no longer fits.

    ``fit(request)`` gives a topology or raises NumaFitError, and must not
    change ``usage``; each placed topology is counted, then
    ``check(placed)`` sees every (request, topology) so far.
    """
    placed = []
    for request in guests:
        for _ in range(per_guest):
            before = copy.deepcopy(usage)
            try:
                topology = fit(request)
            except numa.NumaFitError:
                assert usage == before
                break
            assert usage == before, 'fit_instance must not change usage'
            numa.add_usage(usage, topology)
            placed.append((request, topology))
            check(placed)
    return placed
