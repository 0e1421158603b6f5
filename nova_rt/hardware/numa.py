"""Fitting a guest onto host NUMA cells, with Nova's rules.

The pure equivalent of ``numa_fit_instance_to_host`` in Nova's
``nova/virt/hardware.py``: the tracker calls :func:`fit_instance` under its
claim lock, so everything here is plain data and arithmetic, no I/O.

Nova splits a guest evenly: every guest cell has ``vcpus / numa_nodes`` vCPUs
and ``memory_mb / numa_nodes`` MiB.  Because all guest cells are alike,
whether a guest cell fits a host cell depends on the host cell only, and the
first fitting permutation of host cells (Nova's search order) is always the
first fitting *combination* in ascending id order: a permutation out of order
has a sorted twin with the same cells that comes earlier.  So each host cell
is judged once and the search walks combinations, which keeps a claim on an
8-cell host in microseconds.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Iterable, Mapping, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.hardware import pages

PciCheck = Callable[[frozenset], bool]

_CPU_POLICIES = ('shared', 'dedicated')
# How many vetoed PCI combinations an error message lists before summing up.
_MAX_LISTED_COMBINATIONS = 5


class NumaFitError(exception.ComputeResourcesUnavailable):
    """The guest's NUMA topology does not fit this host.

    A subclass so that callers can tell NUMA from other shortages; across
    RPC it must travel as ``ComputeResourcesUnavailable`` (the contract's
    class name), with the same ``reason``.
    """


@dataclasses.dataclass(frozen=True)
class NumaRequest:
    vcpus: int
    memory_mb: int
    numa_nodes: int
    dedicated: bool
    # None (not asked), 'small', 'large', 'any', or a size in KiB.
    page_size: Optional[pages.PageSize] = None

    def __post_init__(self):
        for name in ('vcpus', 'memory_mb', 'numa_nodes'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise exception.InvalidInput(
                    reason=f"NUMA request {name} must be a positive integer, "
                           f"not {value!r}")
        if self.vcpus % self.numa_nodes or self.memory_mb % self.numa_nodes:
            raise exception.InvalidInput(
                reason=f"{self.vcpus} vCPUs and {self.memory_mb} MiB cannot "
                       f"be split evenly over {self.numa_nodes} NUMA nodes")
        if self.page_size is not None:
            try:
                page_size = pages.parse_page_size(self.page_size)
            except ValueError as err:
                raise exception.InvalidInput(reason=str(err))
            # Frozen: normalise "2MB" or "Large" once, here.
            object.__setattr__(self, 'page_size', page_size)

    @property
    def cell_vcpus(self) -> int:
        return self.vcpus // self.numa_nodes

    @property
    def cell_memory_mb(self) -> int:
        return self.memory_mb // self.numa_nodes


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


def host_cells(numa_cells: Iterable[objects.HostNumaCell], shared_cpus: Iterable[int],
               dedicated_cpus: Iterable[int]) -> list[HostCell]:
    """The tracker's view of libvirt's cells, split by CPU role."""
    shared, dedicated = frozenset(shared_cpus), frozenset(dedicated_cpus)
    return [HostCell(id=cell.id, cpuset=frozenset(cell.cpus) & shared,
                     pcpuset=frozenset(cell.cpus) & dedicated,
                     siblings=tuple(frozenset(s) for s in cell.siblings),
                     memory_mb=cell.memory_mb, mempages=tuple(cell.mempages),
                     socket_id=cell.socket_id)
            for cell in sorted(numa_cells, key=lambda c: c.id)]


def empty_usage(cells: Iterable[HostCell]) -> dict[int, CellUsage]:
    return {cell.id: CellUsage() for cell in cells}


# --- flavor -----------------------------------------------------------------

def _is_set(value) -> bool:
    return value is not None and value != ''


def _parse_numa_nodes(value, vcpus: int) -> int:
    if isinstance(value, bool):
        nodes = None
    elif isinstance(value, int):
        nodes = value
    elif isinstance(value, str) and value.strip().isdigit():
        nodes = int(value.strip())
    else:
        nodes = None
    if nodes is None or nodes < 1:
        raise exception.InvalidInput(
            reason=f"hw:numa_nodes must be a positive integer, not {value!r}")
    if nodes > vcpus:
        raise exception.InvalidInput(
            reason=f"hw:numa_nodes={nodes} is more than the flavor's {vcpus} "
                   f"vCPUs: every NUMA node needs at least one vCPU")
    return nodes


def request_from_flavor(flavor: objects.Flavor) -> NumaRequest | None:
    """The NUMA placement a flavor asks for, or None when it asks for none.

    As Nova, ``hw:cpu_policy=dedicated`` or ``hw:mem_page_size`` without
    ``hw:numa_nodes`` means one node.  Raises ``InvalidInput`` naming the
    extra spec that is wrong.
    """
    specs = flavor.extra_specs or {}
    nodes_spec = specs.get('hw:numa_nodes')
    policy = specs.get('hw:cpu_policy')
    page_spec = specs.get('hw:mem_page_size')

    if _is_set(policy) and policy not in _CPU_POLICIES:
        raise exception.InvalidInput(
            reason=f"hw:cpu_policy must be shared or dedicated, not {policy!r}")
    dedicated = policy == 'dedicated'
    page_size = None
    if _is_set(page_spec):
        try:
            page_size = pages.parse_page_size(page_spec)
        except ValueError as err:
            raise exception.InvalidInput(reason=f"hw:mem_page_size: {err}")
    if not (_is_set(nodes_spec) or dedicated or page_size is not None):
        return None

    nodes = _parse_numa_nodes(nodes_spec, flavor.vcpus) if _is_set(nodes_spec) else 1
    if flavor.vcpus % nodes or flavor.memory_mb % nodes:
        raise exception.InvalidInput(
            reason=f"hw:numa_nodes={nodes}: the flavor's {flavor.vcpus} vCPUs "
                   f"and {flavor.memory_mb} MiB must both divide evenly by "
                   f"{nodes}")
    return NumaRequest(vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                       numa_nodes=nodes, dedicated=dedicated, page_size=page_size)


# --- one host cell ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _CellFit:
    cell: HostCell
    usage: CellUsage
    pagesize_kb: Optional[int]


def pick_pinned_cpus(cell: HostCell, pinned: set, count: int) -> list[int] | None:
    """``count`` free dedicated CPUs of ``cell``, siblings together.

    Nova's default ``prefer`` thread policy: guest vCPUs land on thread
    siblings of one core where they can, filling cores with the most free
    threads first (ties by lowest CPU id), so consecutive guest vCPUs share a
    core.  None when fewer than ``count`` are free.
    """
    free = cell.pcpuset - pinned
    if count > len(free):
        return None
    cores = []
    grouped: set = set()
    for siblings in cell.siblings:
        threads = sorted(siblings & free)
        grouped |= siblings
        if threads:
            cores.append(threads)
    # A CPU that libvirt lists in no sibling set is a core of its own.
    cores.extend([cpu] for cpu in free - grouped)
    cores.sort(key=lambda threads: (-len(threads), threads[0]))
    return list(itertools.chain.from_iterable(cores))[:count]


def _fit_cell(request: NumaRequest, cell: HostCell, usage: CellUsage,
              cpu_ratio: float, ram_ratio: float) -> _CellFit | str:
    vcpus, memory_mb = request.cell_vcpus, request.cell_memory_mb
    problems = []
    if request.dedicated:
        free = len(cell.pcpuset - usage.pinned_cpus)
        if vcpus > len(cell.pcpuset):
            problems.append(f"needs {vcpus} pinned CPUs, has "
                            f"{len(cell.pcpuset)} dedicated CPUs")
        elif vcpus > free:
            problems.append(f"needs {vcpus} pinned CPUs, {free} free")
    else:
        limit = len(cell.cpuset) * cpu_ratio
        if vcpus > len(cell.cpuset):
            problems.append(f"needs {vcpus} vCPUs, has {len(cell.cpuset)} "
                            f"shared CPUs")
        elif usage.cpu_usage + vcpus > limit:
            problems.append(f"needs {vcpus} vCPUs, {usage.cpu_usage} of "
                            f"{limit:g} in use ({len(cell.cpuset)} shared CPUs "
                            f"x ratio {cpu_ratio:g})")

    pagesize_kb = None
    if request.page_size is None:
        limit = cell.memory_mb * ram_ratio
        # As Nova, a guest never overcommits memory against itself.
        if memory_mb > cell.memory_mb:
            problems.append(f"needs {memory_mb} MiB, cell has "
                            f"{cell.memory_mb} MiB")
        elif usage.memory_usage_mb + memory_mb > limit:
            problems.append(f"needs {memory_mb} MiB, {usage.memory_usage_mb} of "
                            f"{limit:g} MiB in use ({cell.memory_mb} MiB x "
                            f"ratio {ram_ratio:g})")
    else:
        # Pages are real memory: no allocation ratio applies (as Nova).
        pagesize_kb, reason = pages.select_page_size(
            cell.mempages, usage.pages_used, memory_mb, request.page_size)
        if reason:
            problems.append(reason)
    if problems:
        return ' and '.join(problems)
    # Which CPUs to pin is only worked out for the cells finally chosen.
    return _CellFit(cell=cell, usage=usage, pagesize_kb=pagesize_kb)


# --- the whole guest --------------------------------------------------------

def fit_instance(request: NumaRequest, cells: list[HostCell],
                 usage: Mapping[int, CellUsage], cpu_allocation_ratio: float,
                 ram_allocation_ratio: float,
                 pci_check: PciCheck | None = None) -> dict:
    """Place ``request`` on host cells; return the instance topology.

    The topology is the contract's JSON form: ``{"cells": [{"id",
    "cpuset", "cpu_pinning" (dedicated only), "memory_mb",
    "pagesize_kb"}]}``, guest cell *i* holding vCPUs
    ``i*k .. i*k+k-1``.  ``usage`` is read, never changed (see
    :func:`add_usage`); a cell missing from it is unused.  ``pci_check``
    gets each otherwise fitting set of host cell ids, last, and may veto
    it.  Raises :class:`NumaFitError` saying why each cell was refused.
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
    fits: dict[int, _CellFit] = {}
    refusals: list[str] = []
    for cell in sorted(cells, key=lambda c: c.id):
        result = _fit_cell(request, cell, usage.get(cell.id) or CellUsage(),
                           cpu_allocation_ratio, ram_allocation_ratio)
        if isinstance(result, str):
            refusals.append(f"cell {cell.id}: {result}")
        else:
            fits[cell.id] = result

    vetoed = []
    for combination in itertools.combinations(fits, nodes):
        if pci_check is not None and not pci_check(frozenset(combination)):
            vetoed.append(combination)
            continue
        return _topology(request, combination, fits)
    raise NumaFitError(reason=_no_fit_reason(request, refusals, vetoed))


def _topology(request: NumaRequest, host_ids: tuple, fits: dict) -> dict:
    per_cell = request.cell_vcpus
    guest_cells = []
    for index, host_id in enumerate(host_ids):
        fit = fits[host_id]
        vcpus = list(range(index * per_cell, (index + 1) * per_cell))
        guest_cell = {'id': host_id, 'cpuset': vcpus}
        if request.dedicated:
            host_cpus = pick_pinned_cpus(fit.cell, fit.usage.pinned_cpus, per_cell)
            guest_cell['cpu_pinning'] = {
                str(vcpu): host_cpu for vcpu, host_cpu in zip(vcpus, host_cpus)}
        guest_cell['memory_mb'] = request.cell_memory_mb
        guest_cell['pagesize_kb'] = fit.pagesize_kb
        guest_cells.append(guest_cell)
    return {'cells': guest_cells}


def _no_fit_reason(request: NumaRequest, refusals: list[str], vetoed: list) -> str:
    nodes = request.numa_nodes
    if nodes == 1:
        head = "no host NUMA cell fits"
    else:
        head = f"no combination of {nodes} host NUMA cells fits"
    parts = list(refusals)
    if vetoed:
        listed = ', '.join('+'.join(str(i) for i in combination)
                           for combination in vetoed[:_MAX_LISTED_COMBINATIONS])
        more = len(vetoed) - _MAX_LISTED_COMBINATIONS
        if more > 0:
            listed += f" and {more} more"
        word = 'cell' if nodes == 1 else 'cells'
        parts.append(f"requested PCI devices do not fit on {word} {listed}")
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
        else:
            current.pinned_cpus -= delta.pinned_cpus
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
        if pinning is not None:
            if not isinstance(pinning, dict) or not all(
                    is_int(cpu, 0) for cpu in pinning.values()):
                bad(f"cell {cell_id}: cpu_pinning {pinning!r} is not a map of "
                    f"vCPU to host CPU")
            host_cpus = set(pinning.values())
            if len(host_cpus) < len(pinning) or host_cpus & delta.pinned_cpus:
                bad(f"cell {cell_id}: a host CPU is pinned twice")
            delta.pinned_cpus |= host_cpus
        else:
            delta.cpu_usage += len(cpuset)
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
            'siblings': [sorted(s) for s in cell.siblings],
            'mempages': [{'size_kb': pool.size_kb, 'total': pool.total,
                          'used': used.pages_used.get(pool.size_kb, 0),
                          'reserved': pool.reserved}
                         for pool in sorted(cell.mempages, key=lambda p: p.size_kb)],
        })
    return view
