"""Nova's allocation-ratio rule, in one place.

An option that is set (``cpu_allocation_ratio`` ...) wins; unset, a new
provider gets the ``initial_*`` value and an existing one keeps what
placement has, so that an operator's change through placement survives a
restart.  The tracker admits claims with the ratios this rule gives, and the
same ratios are what the reporter sends, so both sides count alike.
"""

from __future__ import annotations

from typing import Mapping, Optional

CLASSES = ('VCPU', 'MEMORY_MB', 'DISK_GB')
_OPTIONS = {'VCPU': 'cpu_allocation_ratio', 'MEMORY_MB': 'ram_allocation_ratio',
            'DISK_GB': 'disk_allocation_ratio'}


def configured(conf) -> dict:
    """The ``*_allocation_ratio`` options; None where unset."""
    return {rc: getattr(conf, option) for rc, option in _OPTIONS.items()}


def initial(conf) -> dict:
    """The ``initial_*_allocation_ratio`` options."""
    return {rc: getattr(conf, 'initial_' + option)
            for rc, option in _OPTIONS.items()}


def effective(configured: Mapping[str, Optional[float]],
              initial: Mapping[str, float],
              placement_ratios: Optional[Mapping[str, float]]) -> dict:
    """The ratio of each class: the option, else placement's (an existing
    provider), else the initial value (a new one)."""
    ratios = {}
    for rc in CLASSES:
        if configured.get(rc) is not None:
            ratios[rc] = float(configured[rc])
        elif placement_ratios and placement_ratios.get(rc) is not None:
            ratios[rc] = float(placement_ratios[rc])
        else:
            ratios[rc] = float(initial[rc])
    return ratios


def from_conf(conf, known: Optional[Mapping[str, float]] = None) -> dict:
    """The rule applied to the options and the ratios last known to be
    placement's (kept in the local store), before placement is asked."""
    return effective(configured(conf), initial(conf), known)
