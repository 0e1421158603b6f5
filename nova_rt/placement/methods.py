"""The placement RPC methods, once (``shared/spec/rpc-api.md``).

Each row: the method's name, its arguments (schema, default), and whether it
only reads; the operation that serves it is the function of the same name in
``operations``.  From this table come the endpoint
(``manager.PlacementManager``), validation and the check of the client
(``rpcapi.PlacementAPI``); ``doc/source/rpc-api.rst`` is held to it by
``tests/unit/placement/test_methods.py``.
"""

from __future__ import annotations

import datetime

from nova_rt import exception
from nova_rt import rpctable
from nova_rt import validation
from nova_rt.identity import scheme
from nova_rt.placement import schemas as s

A = rpctable.Argument
M = rpctable.Method
OWN_HOST = scheme.OWN_HOST
OPERATOR = scheme.OPERATOR


def _iso_sent_at(arguments: dict) -> None:
    try:
        datetime.datetime.fromisoformat(arguments['sent_at'])
    except ValueError:
        raise exception.InvalidInput(
            reason=f'sent_at: {validation.short(arguments["sent_at"])} is not '
                   'an ISO-8601 time') from None


TABLE = rpctable.Table('nova-rt-placement', [
    # -- writes from compute daemons (each the owner of its provider tree)
    M('report_provider_tree', [A('host', s.HOST), A('providers', s.PROVIDERS)],
      budget=validation.REPORT, who=OWN_HOST),
    M('report_allocations',
      [A('host', s.HOST), A('root_uuid', s.UUID),
       A('generation', s.GENERATION), A('allocations', s.ALLOCATIONS),
       A('full', {'type': 'boolean'})],
      budget=validation.REPORT, who=OWN_HOST),
    M('heartbeat',
      [A('host', s.HOST), A('root_uuid', s.UUID), A('sent_at', s.SENT_AT)],
      cast=True, check=_iso_sent_at, who=OWN_HOST),
    # -- reads
    M('list_resource_providers',
      [A('name', s.nullable(s.NAME), None), A('host', s.nullable(s.HOST), None),
       A('in_tree', s.nullable(s.UUID), None),
       A('member_of', s.nullable(s.AGGREGATES), None),
       A('required', s.nullable(s.TRAITS), None),
       A('resources', s.nullable(s.amounts(max_classes=50)), None)],
      read_only=True),
    M('get_resource_provider', [A('uuid', s.UUID)], read_only=True),
    M('get_usages',
      [A('uuid', s.nullable(s.UUID), None),
       A('project_id', s.nullable(s.PROJECT), None)],
      read_only=True),
    M('get_allocations', [A('consumer_uuid', s.UUID)], read_only=True),
    M('get_allocation_candidates',
      [A('resources', dict(s.amounts(max_classes=20, minimum=1),
                           minProperties=1)),
       A('required', s.TRAITS, []), A('forbidden', s.TRAITS, []),
       A('member_of', s.AGGREGATES, []), A('limit', s.LIMIT, None)],
      read_only=True),
    # -- operator writes
    M('set_traits',
      [A('uuid', s.UUID), A('traits', s.TRAITS), A('generation', s.GENERATION)],
      who=OPERATOR),
    M('set_aggregates',
      [A('uuid', s.UUID), A('aggregates', s.AGGREGATES),
       A('generation', s.GENERATION)],
      who=OPERATOR),
    M('delete_resource_provider', [A('uuid', s.UUID)], who=OPERATOR),
])
