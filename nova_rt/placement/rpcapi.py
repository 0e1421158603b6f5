"""Client side of the placement RPC API (``shared/spec/rpc-api.md``).

The compute daemon, the CLI and the scheduler use this class; every method
takes the request context (a dict or an oslo.context ``RequestContext``) and
the spec's keyword arguments, and returns what the spec says.  ``heartbeat``
is a cast: liveness never waits for placement.

Errors come back as oslo.messaging remote exceptions whose class name is the
spec's (``ResourceProviderGenerationConflict``, ``InventoryInUse`` ...).

The methods are written out, for their signatures and type hints; at import
they are held to the table of methods (``placement/methods.py``).
"""

from __future__ import annotations

from nova_rt import rpc
from nova_rt.placement import methods


class PlacementAPI:
    """``PlacementAPI(transport, timeout=None)``: one method per RPC method.

    >>> api = PlacementAPI(rpc.get_transport(conf))      # doctest: +SKIP
    >>> gens = api.report_provider_tree(ctx, host='h1', providers=[...])
    """

    def __init__(self, transport, timeout: float | None = None):
        self.client = rpc.get_client(transport, rpc.placement_target(),
                                     timeout=timeout)

    def _call(self, context, method, **kwargs):
        return self.client.prepare().call(context or {}, method, **kwargs)

    # -- writes from the compute daemon (owner of the provider tree) --------

    def report_provider_tree(self, context, host: str, providers: list) -> dict:
        return self._call(context, 'report_provider_tree', host=host,
                          providers=providers)

    def report_allocations(self, context, host: str, root_uuid: str,
                           generation: int | None, allocations: dict,
                           full: bool) -> dict:
        return self._call(context, 'report_allocations', host=host,
                          root_uuid=root_uuid, generation=generation,
                          allocations=allocations, full=full)

    def heartbeat(self, context, host: str, root_uuid: str,
                  sent_at: str) -> None:
        self.client.prepare().cast(context or {}, 'heartbeat', host=host,
                                   root_uuid=root_uuid, sent_at=sent_at)

    # -- reads --------------------------------------------------------------

    def list_resource_providers(self, context, name=None, host=None,
                                in_tree=None, member_of=None, required=None,
                                resources=None) -> list:
        return self._call(context, 'list_resource_providers', name=name,
                          host=host, in_tree=in_tree, member_of=member_of,
                          required=required, resources=resources)

    def get_resource_provider(self, context, uuid: str) -> dict:
        return self._call(context, 'get_resource_provider', uuid=uuid)

    def get_usages(self, context, uuid=None, project_id=None) -> dict:
        return self._call(context, 'get_usages', uuid=uuid,
                          project_id=project_id)

    def get_allocations(self, context, consumer_uuid: str) -> dict:
        return self._call(context, 'get_allocations',
                          consumer_uuid=consumer_uuid)

    def get_allocation_candidates(self, context, resources: dict,
                                  required=(), forbidden=(), member_of=(),
                                  limit=None) -> list:
        return self._call(context, 'get_allocation_candidates',
                          resources=resources, required=list(required),
                          forbidden=list(forbidden),
                          member_of=list(member_of), limit=limit)

    # -- operator writes ----------------------------------------------------

    def set_traits(self, context, uuid: str, traits: list,
                   generation: int) -> dict:
        return self._call(context, 'set_traits', uuid=uuid,
                          traits=list(traits), generation=generation)

    def set_aggregates(self, context, uuid: str, aggregates: list,
                       generation: int) -> dict:
        return self._call(context, 'set_aggregates', uuid=uuid,
                          aggregates=list(aggregates), generation=generation)

    def delete_resource_provider(self, context, uuid: str) -> None:
        return self._call(context, 'delete_resource_provider', uuid=uuid)


methods.TABLE.check_client(PlacementAPI)
