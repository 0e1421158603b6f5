"""Options listed for oslo-config-generator (entry point ``oslo.config.opts``)."""

import itertools

from nova_rt.conf import api
from nova_rt.conf import compute
from nova_rt.conf import default
from nova_rt.conf import identity
from nova_rt.conf import libvirt
from nova_rt.conf import metrics
from nova_rt.conf import pci
from nova_rt.conf import placement
from nova_rt.conf import upgrade_levels


def list_opts():
    groups = {}
    for module in (default, compute, libvirt, pci, placement, identity,
                   upgrade_levels, metrics, api):
        for group, opts in module.list_opts().items():
            groups.setdefault(group, []).extend(opts)
    return [(group, list(itertools.chain(opts)))
            for group, opts in groups.items()]


def set_defaults():
    """Nothing to override in other libraries' defaults yet."""
