"""Which host CPUs make the VCPU and the PCPU inventory (pure).

As Nova's libvirt driver since Train: ``[compute] cpu_shared_set`` gives the
CPUs of shared (floating) guest vCPUs, ``[compute] cpu_dedicated_set`` the CPUs
that pinned guests get one-to-one.  With neither set every online CPU is
shared and there is no PCPU inventory.
"""

from __future__ import annotations

from typing import Iterable, Optional

from nova_rt import exception
from nova_rt.hardware.cpuset import format_cpu_spec, parse_cpu_spec

SHARED_OPT = '[compute] cpu_shared_set'
DEDICATED_OPT = '[compute] cpu_dedicated_set'


def parse_cpu_set_option(option: str, value: Optional[str]) -> Optional[frozenset]:
    """An option's range string as a set; None when unset or blank (as Nova).

    A string that does not parse, or that leaves no CPU (``"0-3,^0-3"``), is a
    ``ConfigError`` naming ``option``.
    """
    if value is None or not value.strip():
        return None
    try:
        cpus = parse_cpu_spec(value)
    except ValueError as exc:
        raise exception.ConfigError(reason=f"{option}: {exc}") from exc
    if not cpus:
        raise exception.ConfigError(reason=f"{option}: {value!r} names no CPU")
    return frozenset(cpus)


def cpu_inventory(online_cpus: Iterable[int],
                  shared_set: Optional[Iterable[int]],
                  dedicated_set: Optional[Iterable[int]]) -> tuple[frozenset, frozenset]:
    """(VCPU cpus, PCPU cpus) for a host with ``online_cpus``.

    ``None`` means the option is unset.  A configured set naming CPUs that are
    not online, an empty configured set, or the two sets overlapping is a
    ``ConfigError`` that names the option and the CPUs.
    """
    online = frozenset(online_cpus)
    shared = _checked(SHARED_OPT, shared_set, online)
    dedicated = _checked(DEDICATED_OPT, dedicated_set, online)
    if shared is not None and dedicated is not None and shared & dedicated:
        raise exception.ConfigError(reason=(
            f"{SHARED_OPT} and {DEDICATED_OPT} must not overlap; both name CPUs "
            f"{format_cpu_spec(shared & dedicated)}"))
    if shared is None and dedicated is None:
        return online, frozenset()
    return shared or frozenset(), dedicated or frozenset()


def _checked(option: str, cpus: Optional[Iterable[int]], online: frozenset):
    if cpus is None:
        return None
    cpus = frozenset(cpus)
    if not cpus:
        raise exception.ConfigError(reason=f"{option} is set but names no CPU")
    offline = cpus - online
    if offline:
        raise exception.ConfigError(reason=(
            f"{option} names CPUs that are not online: {format_cpu_spec(offline)} "
            f"(online CPUs: {format_cpu_spec(online) or 'none'})"))
    return cpus


def split_cells(cells, vcpu_set: Iterable[int], pcpu_set: Iterable[int]) -> list:
    """For each ``HostNumaCell``, its (cpuset, pcpuset): shared and dedicated CPUs."""
    vcpus, pcpus = frozenset(vcpu_set), frozenset(pcpu_set)
    return [(cell.cpus & vcpus, cell.cpus & pcpus) for cell in cells]
