"""Fitting a guest onto host NUMA cells, with Nova's rules.

The pure equivalent of ``numa_fit_instance_to_host`` in Nova 34's
``nova/virt/hardware.py``: the tracker calls :func:`fit_instance` under its
claim lock, so everything here is plain data and arithmetic, no I/O.  What
the guest asks for (a :class:`NumaRequest`) is read from the flavor and the
image in :mod:`nova_rt.hardware.constraints`; which host CPUs its pinned
vCPUs get, by thread policy, in :mod:`nova_rt.hardware.pinning`.

Each (host cell, guest node) pair is judged once, as Nova caches it, and the
search walks Nova's order: permutations of the host cells in ascending id,
guest node 0 first.  Guest nodes that are alike (an even split) take host
cells in ascending order, which finds the same first fit without walking
their permutations, so a claim on an 8-cell host stays in microseconds.
Nova 34 also sorts the host cells first (most free memory, least used CPUs)
where the guest has fewer nodes than the host; here the cell ids decide, so
the cells chosen may differ from Nova's but never whether the guest fits.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.hardware import constraints
from nova_rt.hardware import pages
from nova_rt.hardware import pinning
from nova_rt.hardware.request import GuestCell, NumaRequest  # noqa: F401

PciCheck = Callable[[frozenset], bool]

# How many vetoed PCI combinations an error message lists before summing up.
_MAX_LISTED_COMBINATIONS = 5


class NumaFitError(exception.ComputeResourcesUnavailable):
    """The guest's NUMA topology does not fit this host.

    A subclass so that callers can tell NUMA from other shortages; across
    RPC it must travel as ``ComputeResourcesUnavailable`` (the contract's
    class name), with the same ``reason``.
    """


@dataclasses.dataclass
class HostCell:
    id: int
    cpuset: frozenset          # host CPUs for shared guest vCPUs
    pcpuset: frozenset         # host CPUs guests may be pinned to
    siblings: tuple            # frozensets of SMT thread siblings
    memory_mb: int
    mempages: tuple = ()       # objects.MemPagePool, any order
    socket_id: Optional[int] = None


@dataclasses.dataclass
class CellUsage:
    cpu_usage: int = 0                 # shared vCPUs placed on the cell
    memory_usage_mb: int = 0           # every guest's memory, paged or not
    pinned_cpus: set = dataclasses.field(default_factory=set)
    pages_used: dict = dataclasses.field(default_factory=dict)  # size_kb -> pages
    # Of ``pinned_cpus``, those the emulator threads of guests hold.
    emulator_cpus: set = dataclasses.field(default_factory=set)


def host_cells(numa_cells: Iterable[objects.HostNumaCell], shared_cpus: Iterable[int],
               dedicated_cpus: Iterable[int]) -> list[HostCell]:
    """The tracker's view of libvirt's cells, split by CPU role.

    As Nova's libvirt driver, thread siblings are kept only among the CPUs
    guests may use, so a core whose other thread is left to the host counts
    as a core without SMT for the fit (the host still reports
    HW_CPU_HYPERTHREADING: see :func:`host_has_smt`).
    """
    shared, dedicated = frozenset(shared_cpus), frozenset(dedicated_cpus)
    cells = []
    for cell in sorted(numa_cells, key=lambda c: c.id):
        usable = frozenset(cell.cpus) & (shared | dedicated)
        siblings = tuple(frozenset(s) & usable for s in cell.siblings)
        cells.append(HostCell(id=cell.id, cpuset=frozenset(cell.cpus) & shared,
                              pcpuset=frozenset(cell.cpus) & dedicated,
                              siblings=tuple(s for s in siblings if s),
                              memory_mb=cell.memory_mb,
                              mempages=tuple(cell.mempages),
                              socket_id=cell.socket_id))
    return cells


def host_has_smt(numa_cells: Iterable[objects.HostNumaCell]) -> bool:
    """Whether libvirt shows any CPU with a thread sibling: Nova's
    HW_CPU_HYPERTHREADING trait, whatever the CPU options leave to guests."""
    return any(pinning.has_smt(cell.siblings) for cell in numa_cells)


def empty_usage(cells: Iterable[HostCell]) -> dict[int, CellUsage]:
    return {cell.id: CellUsage() for cell in cells}


# --- flavor and image -------------------------------------------------------------

def request_for(flavor: objects.Flavor,
                image_properties: Optional[Mapping] = None) -> NumaRequest | None:
    """The NUMA placement ``flavor`` and the instance's image ask for.

    See :func:`nova_rt.hardware.constraints.numa_request`; raises
    ``InvalidInput`` naming the keys that are wrong.
    """
    return constraints.numa_request(flavor, image_properties)


def request_from_flavor(flavor: objects.Flavor) -> NumaRequest | None:
    """:func:`request_for` a flavor alone (no image properties)."""
    return constraints.numa_request(flavor, None)


# --- one host cell ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _CellFit:
    cell: HostCell
    pagesize_kb: Optional[int]
    host_cpus: tuple = ()          # for the guest node's pinned vCPUs, in order
    reserved_cpus: tuple = ()      # for the emulator threads


def _unpaged_kb(usage: CellUsage) -> int:
    """KiB of guest memory on the cell without a page size: Nova counts it in
    the cell's smallest pages."""
    paged_kb = sum(size_kb * count for size_kb, count in usage.pages_used.items())
    return max(0, usage.memory_usage_mb * 1024 - paged_kb)


def _unpaged_memory_problem(pinned: bool, memory_mb: int, cell: HostCell,
                            usage: CellUsage) -> Optional[str]:
    """Memory of a guest node without a page size, as Nova checks it: against
    the cell's smallest pages when it reports page pools, and never
    overcommitted for a pinned guest."""
    if not cell.mempages:
        if pinned:
            free = cell.memory_mb - usage.memory_usage_mb
            if memory_mb > free:
                return (f"needs {memory_mb} MiB, {max(free, 0)} MiB free "
                        f"(pinned guests do not overcommit memory)")
        elif memory_mb > cell.memory_mb:
            return f"needs {memory_mb} MiB, cell has {cell.memory_mb} MiB"
        return None
    smallest = min(cell.mempages, key=lambda pool: pool.size_kb)
    size_kb, memory_kb = smallest.size_kb, memory_mb * 1024
    if memory_kb % size_kb:
        return f"{memory_mb} MiB is not a whole number of {size_kb} KiB pages"
    if pinned:
        free_kb = (pages.free_pages(smallest, usage.pages_used) * size_kb
                   - _unpaged_kb(usage))
        if memory_kb > free_kb:
            return (f"needs {memory_mb} MiB of {size_kb} KiB pages, "
                    f"{max(free_kb, 0) // 1024} MiB free (pinned guests do "
                    f"not overcommit memory)")
    elif memory_kb > smallest.total * size_kb:
        # As Nova, a guest never overcommits memory against itself.
        return (f"needs {memory_mb} MiB, cell has "
                f"{smallest.total * size_kb // 1024} MiB of {size_kb} KiB pages")
    return None


def _fit_cell(request: NumaRequest, guest: GuestCell, reserved: int,
              cell: HostCell, usage: CellUsage, cpu_ratio: float,
              ram_ratio: float) -> _CellFit | str:
    """Does guest node ``guest`` (with ``reserved`` emulator CPUs) fit ``cell``?"""
    problems = []
    pinned_count = len(guest.pinned)
    if request.pinned:
        needed = pinned_count + reserved
        what = f"{pinned_count} pinned CPUs" + (
            " and 1 for the emulator threads" if reserved else "")
        free = len(cell.pcpuset - usage.pinned_cpus)
        if needed > len(cell.pcpuset):
            problems.append(f"needs {what}, has {len(cell.pcpuset)} "
                            f"dedicated CPUs")
        elif needed > free:
            problems.append(f"needs {what}, {free} free")
    if not request.dedicated:
        # Shared vCPUs, of a shared or a mixed guest.
        vcpus, limit = guest.shared, len(cell.cpuset) * cpu_ratio
        if vcpus > len(cell.cpuset):
            problems.append(f"needs {vcpus} vCPUs, has {len(cell.cpuset)} "
                            f"shared CPUs")
        elif usage.cpu_usage + vcpus > limit:
            problems.append(f"needs {vcpus} vCPUs, {usage.cpu_usage} of "
                            f"{limit:g} in use ({len(cell.cpuset)} shared CPUs "
                            f"x ratio {cpu_ratio:g})")

    memory_mb, pagesize_kb = guest.memory_mb, None
    if request.page_size is None:
        memory_problem = _unpaged_memory_problem(request.pinned, memory_mb,
                                                 cell, usage)
    else:
        pagesize_kb, memory_problem = pages.select_page_size(
            cell.mempages, usage.pages_used, memory_mb, request.page_size,
            unpaged_kb=_unpaged_kb(usage))
    if memory_problem:
        problems.append(memory_problem)
    elif not request.dedicated:
        # As Nova, the allocation ratio bounds every guest's memory on the
        # cell, paged or not, for guests with shared vCPUs.
        limit = cell.memory_mb * ram_ratio
        if usage.memory_usage_mb + memory_mb > limit:
            problems.append(f"needs {memory_mb} MiB, {usage.memory_usage_mb} of "
                            f"{limit:g} MiB in use ({cell.memory_mb} MiB x "
                            f"ratio {ram_ratio:g})")
    if problems:
        return ' and '.join(problems)
    if not request.pinned:
        return _CellFit(cell=cell, pagesize_kb=pagesize_kb)
    placed = pinning.pin(cell, usage.pinned_cpus, pinned_count,
                         request.thread_policy, reserved)
    if isinstance(placed, str):
        return placed
    host_cpus, reserved_cpus = placed
    return _CellFit(cell=cell, pagesize_kb=pagesize_kb, host_cpus=tuple(host_cpus),
                    reserved_cpus=tuple(reserved_cpus))


# --- the whole guest --------------------------------------------------------

def _check_thread_policy_trait(request: NumaRequest, smt: bool) -> None:
    """Nova's scheduler turns ``require`` into HW_CPU_HYPERTHREADING required
    and ``isolate`` into forbidden: a host with the wrong trait is no host
    for the guest, whatever its cells would say."""
    if request.thread_policy == constraints.ISOLATE and smt:
        raise NumaFitError(
            reason="hw:cpu_thread_policy=isolate needs a host without SMT "
                   "(HW_CPU_HYPERTHREADING forbidden), and this host has "
                   "thread siblings")
    if request.thread_policy == constraints.REQUIRE and not smt:
        raise NumaFitError(
            reason="hw:cpu_thread_policy=require needs a host with SMT "
                   "(HW_CPU_HYPERTHREADING required), and this host has no "
                   "thread siblings")


def fit_instance(request: NumaRequest, cells: list[HostCell],
                 usage: Mapping[int, CellUsage], cpu_allocation_ratio: float,
                 ram_allocation_ratio: float,
                 pci_check: PciCheck | None = None,
                 host_smt: Optional[bool] = None) -> dict:
    """Place ``request`` on host cells; return the instance topology.

    The topology is the contract's JSON form: ``{"cells": [{"id", "cpuset",
    "cpu_pinning" (dedicated and mixed guests: the pinned vCPUs),
    "cpuset_reserved" (the emulator threads' CPUs, on guest node 0's cell),
    "memory_mb", "pagesize_kb"}]}``, guest node *i* first.  ``usage`` is
    read, never changed (see :func:`add_usage`); a cell missing from it is
    unused.  ``pci_check`` gets each otherwise fitting set of host cell ids,
    last, and may veto it.  ``host_smt`` is whether the host reports
    HW_CPU_HYPERTHREADING (:func:`host_has_smt`); by default, whether the
    cells show thread siblings.  Raises :class:`NumaFitError` saying why.
    """
    for name, ratio in (('cpu_allocation_ratio', cpu_allocation_ratio),
                        ('ram_allocation_ratio', ram_allocation_ratio)):
        if not ratio > 0:
            raise exception.InvalidInput(reason=f"{name} must be > 0, not {ratio!r}")
    if len({cell.id for cell in cells}) < len(cells):
        raise exception.InvalidInput(reason="host NUMA cell ids must be unique")
    if not cells:
        raise NumaFitError(reason="host has no NUMA topology")
    nodes = request.numa_nodes
    if nodes > len(cells):
        raise NumaFitError(
            reason=f"guest asks for {nodes} NUMA nodes, host has "
                   f"{len(cells)} NUMA cells")
    if host_smt is None:
        host_smt = any(pinning.has_smt(cell.siblings) for cell in cells)
    _check_thread_policy_trait(request, host_smt)

    guests = request.cells
    reserved = [int(request.emulator_threads_isolate and i == 0)
                for i in range(nodes)]
    # Guest nodes of the same shape and reserve get the same verdict.
    shapes = [(len(g.cpus), len(g.pinned), g.memory_mb, reserved[i])
              for i, g in enumerate(guests)]
    ordered = sorted(cells, key=lambda c: c.id)
    verdicts = {}
    for cell in ordered:
        for i, shape in enumerate(shapes):
            if (cell.id, shape) not in verdicts:
                verdicts[cell.id, shape] = _fit_cell(
                    request, guests[i], reserved[i], cell,
                    usage.get(cell.id) or CellUsage(),
                    cpu_allocation_ratio, ram_allocation_ratio)

    pci_verdicts: dict = {}
    vetoed: list = []

    def pci_ok(cell_ids: frozenset) -> bool:
        if pci_check is None:
            return True
        if cell_ids not in pci_verdicts:
            pci_verdicts[cell_ids] = pci_check(cell_ids)
            if not pci_verdicts[cell_ids]:
                vetoed.append(tuple(sorted(cell_ids)))
        return pci_verdicts[cell_ids]

    def search(chosen: list):
        index = len(chosen)
        if index == nodes:
            return chosen if pci_ok(frozenset(f.cell.id for f in chosen)) else None
        for cell in ordered:
            if any(f.cell.id == cell.id for f in chosen):
                continue
            if index and shapes[index] == shapes[index - 1] and \
                    cell.id < chosen[-1].cell.id:
                continue
            fit = verdicts[cell.id, shapes[index]]
            if isinstance(fit, str):
                continue
            found = search(chosen + [fit])
            if found:
                return found
        return None

    found = search([])
    if found:
        return _topology(request, guests, found)
    raise NumaFitError(reason=_no_fit_reason(nodes, ordered, shapes, verdicts,
                                             vetoed))


def _topology(request: NumaRequest, guests: tuple, fits: list) -> dict:
    guest_cells = []
    for guest, fit in zip(guests, fits):
        guest_cell = {'id': fit.cell.id, 'cpuset': list(guest.cpus)}
        if request.pinned:
            guest_cell['cpu_pinning'] = {
                str(vcpu): host_cpu for vcpu, host_cpu in zip(guest.pinned, fit.host_cpus)}
        if fit.reserved_cpus:
            guest_cell['cpuset_reserved'] = sorted(fit.reserved_cpus)
        guest_cell['memory_mb'] = guest.memory_mb
        guest_cell['pagesize_kb'] = fit.pagesize_kb
        guest_cells.append(guest_cell)
    return {'cells': guest_cells}


def _no_fit_reason(nodes: int, cells: list, shapes: list, verdicts: dict,
                   vetoed: list) -> str:
    if nodes == 1:
        head = "no host NUMA cell fits"
    else:
        head = f"no combination of {nodes} host NUMA cells fits"
    distinct = list(dict.fromkeys(shapes))
    parts = []
    for cell in cells:
        for shape in distinct:
            verdict = verdicts[cell.id, shape]
            if not isinstance(verdict, str):
                continue
            if len(distinct) == 1:
                parts.append(f"cell {cell.id}: {verdict}")
            else:
                which = ', '.join(str(i) for i, s in enumerate(shapes) if s == shape)
                word = 'node' if ',' not in which else 'nodes'
                parts.append(f"cell {cell.id} for guest {word} {which}: {verdict}")
    if vetoed:
        listed = ', '.join('+'.join(str(i) for i in combination)
                           for combination in vetoed[:_MAX_LISTED_COMBINATIONS])
        more = len(vetoed) - _MAX_LISTED_COMBINATIONS
        if more > 0:
            listed += f" and {more} more"
        word = 'cell' if nodes == 1 else 'cells'
        parts.append(f"requested PCI devices do not fit on {word} {listed}")
    if not parts:
        parts.append("each guest NUMA node needs a host cell of its own")
    return f"{head}: {'; '.join(parts)}"


# --- usage ------------------------------------------------------------------

def add_usage(usage: dict[int, CellUsage], topology: dict, sign: int = +1) -> None:
    """Count (``sign=+1``) or uncount (``sign=-1``) an instance topology.

    All or nothing: a malformed topology, or removing what was never
    counted, raises ``InvalidInput``; pinning a host CPU that is already
    pinned raises :class:`NumaFitError`; either way ``usage`` is unchanged.
    A cell missing from ``usage`` is added on the way in.
    """
    if sign not in (1, -1):
        raise exception.InvalidInput(reason=f"sign must be +1 or -1, not {sign!r}")
    deltas = _usage_deltas(topology)
    for cell_id, delta in deltas.items():
        current = usage.get(cell_id)
        if sign > 0:
            clash = delta.pinned_cpus & current.pinned_cpus if current else set()
            if clash:
                raise NumaFitError(
                    reason=f"host CPUs {sorted(clash)} of NUMA cell {cell_id} "
                           f"are already pinned")
        else:
            _check_removable(cell_id, current, delta)
    for cell_id, delta in deltas.items():
        current = usage.setdefault(cell_id, CellUsage())
        current.cpu_usage += sign * delta.cpu_usage
        current.memory_usage_mb += sign * delta.memory_usage_mb
        if sign > 0:
            current.pinned_cpus |= delta.pinned_cpus
            current.emulator_cpus |= delta.emulator_cpus
        else:
            current.pinned_cpus -= delta.pinned_cpus
            current.emulator_cpus -= delta.emulator_cpus
        for size_kb, count in delta.pages_used.items():
            remaining = current.pages_used.get(size_kb, 0) + sign * count
            if remaining:
                current.pages_used[size_kb] = remaining
            else:
                # An emptied pool is dropped so that usage returns to its
                # initial state exactly.
                current.pages_used.pop(size_kb, None)


def _check_removable(cell_id: int, current: CellUsage | None, delta: CellUsage) -> None:
    def refuse(what):
        raise exception.InvalidInput(
            reason=f"cannot remove usage from NUMA cell {cell_id}: {what}")
    if current is None:
        refuse("the cell has no usage")
    if delta.cpu_usage > current.cpu_usage:
        refuse(f"{delta.cpu_usage} vCPUs counted, only {current.cpu_usage} used")
    if delta.memory_usage_mb > current.memory_usage_mb:
        refuse(f"{delta.memory_usage_mb} MiB counted, only "
               f"{current.memory_usage_mb} MiB used")
    if not delta.pinned_cpus <= current.pinned_cpus:
        refuse(f"host CPUs {sorted(delta.pinned_cpus - current.pinned_cpus)} "
               f"are not pinned")
    for size_kb, count in delta.pages_used.items():
        if count > current.pages_used.get(size_kb, 0):
            refuse(f"{count} pages of {size_kb} KiB counted, only "
                   f"{current.pages_used.get(size_kb, 0)} used")


def _usage_deltas(topology) -> dict[int, CellUsage]:
    """Per host cell, what a topology uses; raises InvalidInput if malformed."""
    def bad(what):
        raise exception.InvalidInput(reason=f"invalid NUMA topology: {what}")

    def is_int(value, minimum):
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

    if not isinstance(topology, dict) or not isinstance(topology.get('cells'), list):
        bad("expected {'cells': [...]}")
    deltas: dict[int, CellUsage] = {}
    for guest_cell in topology['cells']:
        if not isinstance(guest_cell, dict):
            bad(f"cell {guest_cell!r} is not an object")
        cell_id, cpuset = guest_cell.get('id'), guest_cell.get('cpuset')
        memory_mb, size_kb = guest_cell.get('memory_mb'), guest_cell.get('pagesize_kb')
        pinning = guest_cell.get('cpu_pinning')
        reserved = guest_cell.get('cpuset_reserved')
        if not is_int(cell_id, 0):
            bad(f"cell id {cell_id!r} is not a cell number")
        if not isinstance(cpuset, list) or not all(is_int(v, 0) for v in cpuset):
            bad(f"cell {cell_id}: cpuset {cpuset!r} is not a list of vCPU ids")
        if not is_int(memory_mb, 0):
            bad(f"cell {cell_id}: memory_mb {memory_mb!r} is not a size in MiB")
        if size_kb is not None and (not is_int(size_kb, 1) or (memory_mb * 1024) % size_kb):
            bad(f"cell {cell_id}: pagesize_kb {size_kb!r} does not divide "
                f"{memory_mb} MiB")
        delta = deltas.setdefault(cell_id, CellUsage())
        pinning = {} if pinning is None else pinning
        if not isinstance(pinning, dict) or not all(
                is_int(cpu, 0) for cpu in pinning.values()) or not set(
                pinning) <= {str(vcpu) for vcpu in cpuset}:
            bad(f"cell {cell_id}: cpu_pinning {pinning!r} is not a map of "
                f"the cell's vCPUs to host CPUs")
        if reserved is None:
            reserved = []
        if not isinstance(reserved, list) or not all(is_int(v, 0) for v in reserved):
            bad(f"cell {cell_id}: cpuset_reserved {reserved!r} is not a list "
                f"of host CPUs")
        host_cpus = set(pinning.values()) | set(reserved)
        if (len(host_cpus) < len(pinning) + len(reserved)
                or host_cpus & delta.pinned_cpus):
            bad(f"cell {cell_id}: a host CPU is pinned twice")
        # Pinned vCPUs hold their host CPU; the others (all of a shared
        # guest's, the shared ones of a mixed guest's) float.
        delta.pinned_cpus |= host_cpus
        delta.emulator_cpus |= set(reserved)
        delta.cpu_usage += len(set(cpuset)) - len(pinning)
        delta.memory_usage_mb += memory_mb
        if size_kb is not None:
            delta.pages_used[size_kb] = (delta.pages_used.get(size_kb, 0)
                                         + memory_mb * 1024 // size_kb)
    return deltas


def cells_view(cells: Iterable[HostCell], usage: Mapping[int, CellUsage]) -> list[dict]:
    """``get_host_state()["numa_topology"]["cells"]`` in the contract's form."""
    view = []
    for cell in sorted(cells, key=lambda c: c.id):
        used = usage.get(cell.id) or CellUsage()
        view.append({
            'id': cell.id,
            'cpuset': sorted(cell.cpuset),
            'pcpuset': sorted(cell.pcpuset),
            'memory_mb': cell.memory_mb,
            'cpu_usage': used.cpu_usage,
            'memory_usage_mb': used.memory_usage_mb,
            'pinned_cpus': sorted(used.pinned_cpus),
            'emulator_cpus': sorted(used.emulator_cpus),
            'siblings': [sorted(s) for s in cell.siblings],
            'mempages': [{'size_kb': pool.size_kb, 'total': pool.total,
                          'used': used.pages_used.get(pool.size_kb, 0),
                          'reserved': pool.reserved}
                         for pool in sorted(cell.mempages, key=lambda p: p.size_kb)],
        })
    return view
