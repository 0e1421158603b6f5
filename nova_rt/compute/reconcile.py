"""The audit's judgement, pure: which running domains no record explains,
and which instances that hold resources have no domain.

The tracker gathers the domains from libvirt without its lock and calls
:func:`reconcile` on a ledger snapshot; what it returns is swapped in under
the lock (DESIGN.md principle 2).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from nova_rt import objects
from nova_rt.compute.ledger import Ledger


def reconcile(ledger: Ledger, domains: Iterable[objects.DomainInfo],
              missing_before: Mapping[str, int], periodic: bool = True) -> tuple:
    """(unmanaged domains, {instance uuid: periodic audits its domain has
    been absent}).

    A domain of an instance or of a move in progress is explained; an
    instance still building, or moving, is not missing yet.  Only periodic
    audits count the absence: a burst of lifecycle events (a domain that is
    starting or migrating) brings audits forward but must not turn the
    domain into a missing one.
    """
    domains = list(domains)
    moving = ledger.moving_instances()
    present = {d.uuid for d in domains}
    unmanaged = [d for d in domains if d.active
                 and d.uuid not in ledger.instances and d.uuid not in moving]
    missing = {uuid: missing_before.get(uuid, 0) + int(periodic)
               for uuid, rec in ledger.instances.items()
               if rec.holds and uuid not in present and uuid not in moving
               and rec.instance.vm_state != 'building'}
    return unmanaged, missing


def missing_domains(ledger: Ledger, absent: Mapping[str, int],
                    audits: int) -> list:
    """The instances that hold resources here and whose domain has been
    absent for ``audits`` periodic audits, as the records say now (an
    instance aborted or deleted since is not missing any more)."""
    return sorted(uuid for uuid, count in absent.items() if count >= audits
                  and uuid in ledger.instances and ledger.instances[uuid].holds)
