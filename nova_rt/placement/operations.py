"""Placement operations: one function per RPC method, on a SQLAlchemy
session, plain JSON in and out, ``nova_rt.exception`` errors out.

No oslo.messaging and no global configuration here: the manager hands in the
session (one transaction per call), the clock and the options.  The functions
live in three small modules by concern; this is the list.
"""

from nova_rt.placement.allocation_ops import report_allocations
from nova_rt.placement.provider_ops import (
    delete_resource_provider, heartbeat, report_provider_tree,
    set_aggregates, set_traits)
from nova_rt.placement.query_ops import (
    get_allocation_candidates, get_allocations, get_resource_provider,
    get_usages, list_resource_providers)

__all__ = [
    'report_provider_tree', 'report_allocations', 'heartbeat',
    'list_resource_providers', 'get_resource_provider', 'get_usages',
    'get_allocations', 'get_allocation_candidates', 'set_traits',
    'set_aggregates', 'delete_resource_provider',
]
