"""Which host CPUs a guest NUMA node's pinned vCPUs get, by thread policy.

The rules of what fits are Nova 34's (``_pack_instance_onto_cores`` in
``nova/virt/hardware.py``), over one host cell's free dedicated CPUs grouped
into cores by their SMT thread siblings:

- ``prefer`` (the default): any free dedicated CPUs, thread siblings of one
  core together where possible.
- ``require``: vCPUs placed ``t`` to a core (``t`` >= 2, the same for every
  core), so the cell needs SMT and enough cores with ``t`` free threads.
- ``isolate``: one vCPU per core with no thread sibling in use by anyone.
  With ``[compute] cpu_dedicated_set`` Nova only serves it on cells without
  SMT (bug #1889633: its scheduler forbids HW_CPU_HYPERTHREADING for it), so
  a cell with thread siblings refuses it.

The emulator threads of ``hw:emulator_threads_policy=isolate`` get one more
free dedicated CPU, beside guest node 0's pinned vCPUs (Nova places it on the
host cell of guest node 0 and only beside pinned vCPUs).  Which CPUs are
chosen among those that fit is this module's own rule, not Nova's.
"""

from __future__ import annotations

import itertools
from typing import Iterable

from nova_rt.hardware.request import ISOLATE, REQUIRE


def threads_per_core(siblings: Iterable[frozenset]) -> int:
    return max((len(s) for s in siblings), default=1) or 1


def has_smt(siblings: Iterable[frozenset]) -> bool:
    return threads_per_core(siblings) > 1


def free_cores(cell, pinned: set) -> list[list[int]]:
    """The cell's free dedicated CPUs as cores: sorted lists of free threads.

    A CPU that libvirt lists in no sibling set is a core of its own.
    """
    free = cell.pcpuset - pinned
    cores, grouped = [], set()
    for siblings in cell.siblings:
        grouped |= siblings
        threads = sorted(siblings & free)
        if threads:
            cores.append(threads)
    cores.extend([cpu] for cpu in sorted(free - grouped))
    return cores


def pick_pinned_cpus(cell, pinned: set, count: int) -> list[int] | None:
    """``count`` free dedicated CPUs of ``cell``, siblings together (prefer).

    Cores with the most free threads first (ties by lowest CPU id), so that
    consecutive guest vCPUs share a core.  None when fewer are free.
    """
    cores = sorted(free_cores(cell, pinned), key=lambda t: (-len(t), t[0]))
    chosen = list(itertools.chain.from_iterable(cores))
    return chosen[:count] if count <= len(chosen) else None


def _require(cores: list, count: int, threads: int) -> list[int] | str:
    if threads <= 1:
        return ("has no SMT thread siblings, which "
                "hw:cpu_thread_policy=require needs")
    for per_core in range(threads, 1, -1):
        usable = [t[:per_core] for t in cores if len(t) >= per_core]
        # As Nova: even a node with nothing to pin needs a core of siblings.
        if usable and per_core * len(usable) >= count:
            return list(itertools.chain.from_iterable(usable))[:count]
    widest = max((len(t) for t in cores), default=0)
    return (f"needs {count} pinned CPUs on free thread siblings "
            f"(hw:cpu_thread_policy=require); the widest free core has "
            f"{widest} free threads")


def pin(cell, pinned: set, count: int, policy, reserved: int) -> tuple | str:
    """Host CPUs for ``count`` pinned vCPUs plus ``reserved`` emulator CPUs.

    Returns ``(vcpu_cpus, reserved_cpus)`` or the reason it does not fit.
    The caller has checked that ``count + reserved`` CPUs are free.
    """
    threads = threads_per_core(cell.siblings)
    cores = free_cores(cell, pinned)
    if reserved and not count:
        return ("guest NUMA node 0 has no dedicated vCPUs to place the "
                "emulator threads' CPU beside "
                "(hw:emulator_threads_policy=isolate)")
    if policy == ISOLATE:
        if threads > 1:
            return (f"has SMT ({threads} threads per core): "
                    f"hw:cpu_thread_policy=isolate needs cores without thread "
                    f"siblings")
        if not count:
            return ("hw:cpu_thread_policy=isolate cannot place a guest NUMA "
                    "node without dedicated vCPUs")
        chosen = sorted(cpu for t in cores for cpu in t)[:count]
    elif policy == REQUIRE:
        chosen = _require(cores, count, threads)
        if isinstance(chosen, str):
            return chosen
    else:
        chosen = pick_pinned_cpus(cell, pinned, count)
    return chosen, _emulator_cpus(cores, set(chosen), reserved)


def _emulator_cpus(cores: list, chosen: set, reserved: int) -> list[int]:
    """Free CPUs for the emulator threads, from the cores the guest broke
    into first, so that whole free cores stay whole."""
    left = [[cpu for cpu in t if cpu not in chosen] for t in cores]
    left = sorted((t for t in left if t), key=lambda t: (len(t), t[0]))
    return list(itertools.chain.from_iterable(left))[:reserved]
