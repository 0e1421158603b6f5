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
              missing_before: Mapping[str, int]) -> tuple:
    """(unmanaged domains, {instance uuid: audits its domain has been absent}).

    A domain of an instance or of a move in progress is explained; an
    instance still building, or moving, is not missing yet.
    """
    domains = list(domains)
    moving = ledger.moving_instances()
    present = {d.uuid for d in domains}
    unmanaged = [d for d in domains if d.active
                 and d.uuid not in ledger.instances and d.uuid not in moving]
    missing = {uuid: missing_before.get(uuid, 0) + 1
               for uuid, rec in ledger.instances.items()
               if rec.holds and uuid not in present and uuid not in moving
               and rec.instance.vm_state != 'building'}
    return unmanaged, missing
