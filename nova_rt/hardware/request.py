"""What a guest asks of the host's NUMA cells, as plain data.

:class:`NumaRequest` is built from a flavor and an image by
:mod:`nova_rt.hardware.constraints` and fitted by :mod:`nova_rt.hardware.numa`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from nova_rt import exception
from nova_rt.hardware import pages

SHARED, DEDICATED, MIXED = 'shared', 'dedicated', 'mixed'
CPU_POLICIES = (SHARED, DEDICATED, MIXED)
PREFER, ISOLATE, REQUIRE = 'prefer', 'isolate', 'require'
THREAD_POLICIES = (PREFER, ISOLATE, REQUIRE)


def _invalid(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=reason)


@dataclasses.dataclass(frozen=True)
class GuestCell:
    """One guest NUMA node: its vCPUs, which of them are pinned, its memory."""
    cpus: tuple              # sorted guest vCPU ids
    pinned: tuple            # sorted subset of ``cpus`` pinned to host CPUs
    memory_mb: int

    @property
    def shared(self) -> int:
        """How many of its vCPUs float over the host's shared CPUs."""
        return len(self.cpus) - len(self.pinned)


@dataclasses.dataclass(frozen=True)
class NumaRequest:
    """The NUMA placement a guest asks for.

    ``dedicated``: every vCPU pinned; ``dedicated_mask``: only those vCPUs
    pinned (``hw:cpu_policy=mixed``).  ``node_cpus``/``node_memory_mb``: the
    asymmetric layout of ``hw:numa_cpus.K``/``hw:numa_mem.K``; without them
    the guest is split evenly, as Nova does.  Built by :func:`numa_request`,
    which names the keys at fault; the checks here are a backstop for
    requests built by hand.
    """
    vcpus: int
    memory_mb: int
    numa_nodes: int
    dedicated: bool = False
    # None (not asked), 'small', 'large', 'any', or a size in KiB.
    page_size: Optional[pages.PageSize] = None
    dedicated_mask: Optional[frozenset] = None
    thread_policy: Optional[str] = None
    emulator_threads_isolate: bool = False
    node_cpus: Optional[tuple] = None
    node_memory_mb: Optional[tuple] = None

    def __post_init__(self):
        for name in ('vcpus', 'memory_mb', 'numa_nodes'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _invalid(f"NUMA request {name} must be a positive "
                               f"integer, not {value!r}")
        if (self.node_cpus is None) != (self.node_memory_mb is None):
            raise _invalid("NUMA request: node_cpus and node_memory_mb go "
                           "together")
        if self.node_cpus is None:
            if self.vcpus % self.numa_nodes or self.memory_mb % self.numa_nodes:
                raise _invalid(
                    f"{self.vcpus} vCPUs and {self.memory_mb} MiB cannot "
                    f"be split evenly over {self.numa_nodes} NUMA nodes")
        else:
            object.__setattr__(self, 'node_cpus',
                               tuple(frozenset(c) for c in self.node_cpus))
            object.__setattr__(self, 'node_memory_mb', tuple(self.node_memory_mb))
            flat = sorted(cpu for cpus in self.node_cpus for cpu in cpus)
            if (len(self.node_cpus) != self.numa_nodes
                    or len(self.node_memory_mb) != self.numa_nodes
                    or flat != list(range(self.vcpus))
                    or not all(self.node_cpus)
                    or sum(self.node_memory_mb) != self.memory_mb
                    or min(self.node_memory_mb) < 1):
                raise _invalid(
                    f"NUMA request: cells {self.node_cpus} with "
                    f"{self.node_memory_mb} MiB do not partition {self.vcpus} "
                    f"vCPUs and {self.memory_mb} MiB over {self.numa_nodes} "
                    f"nodes")
        if self.dedicated_mask is not None:
            mask = frozenset(self.dedicated_mask)
            object.__setattr__(self, 'dedicated_mask', mask)
            # All of them is a mixed guest too: Nova's hw:cpu_realtime
            # without a mask, with hw:emulator_threads_policy.
            if self.dedicated or not mask or not mask <= frozenset(range(self.vcpus)):
                raise _invalid(f"NUMA request: dedicated_mask {sorted(mask)} "
                               f"must pin some of {self.vcpus} vCPUs, and only "
                               f"with a mixed policy")
        if self.thread_policy is not None and (
                self.thread_policy not in THREAD_POLICIES or not self.pinned):
            raise _invalid(f"NUMA request: thread_policy {self.thread_policy!r} "
                           f"needs pinned vCPUs")
        if self.emulator_threads_isolate and not self.pinned:
            raise _invalid("NUMA request: isolated emulator threads need "
                           "pinned vCPUs")
        if self.page_size is not None:
            try:
                page_size = pages.parse_page_size(self.page_size)
            except ValueError as err:
                raise _invalid(str(err))
            # Frozen: normalise "2MB" or "Large" once, here.
            object.__setattr__(self, 'page_size', page_size)

    @property
    def cpu_policy(self) -> str:
        if self.dedicated:
            return DEDICATED
        return MIXED if self.dedicated_mask is not None else SHARED

    @property
    def pinned(self) -> bool:
        return self.dedicated or self.dedicated_mask is not None

    @property
    def cell_vcpus(self) -> int:
        """vCPUs per guest cell of an even split."""
        return self.vcpus // self.numa_nodes

    @property
    def cell_memory_mb(self) -> int:
        """MiB per guest cell of an even split."""
        return self.memory_mb // self.numa_nodes

    @property
    def cells(self) -> tuple:
        """The guest NUMA nodes, node *i* first."""
        if self.node_cpus is None:
            per = self.cell_vcpus
            layout = [(range(i * per, (i + 1) * per), self.cell_memory_mb)
                      for i in range(self.numa_nodes)]
        else:
            layout = zip(self.node_cpus, self.node_memory_mb)
        if self.dedicated:
            pinned = frozenset(range(self.vcpus))
        else:
            pinned = self.dedicated_mask or frozenset()
        return tuple(GuestCell(cpus=tuple(sorted(cpus)),
                               pinned=tuple(sorted(pinned.intersection(cpus))),
                               memory_mb=memory)
                     for cpus, memory in layout)
