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
from nova_rt.identity import caller as caller_mod
from nova_rt.placement import methods


class PlacementAPI:
    """``PlacementAPI(transport, timeout=None, identity=None,
    version_cap=None)``: one method per RPC method.

    ``version_cap``: ``[upgrade_levels] placement`` (``auto``, a release name
    or a version): arguments newer than it are not sent.

    ``identity`` (a ``nova_rt.identity.caller.Caller``): calls are signed as
    its principal and answers accepted only from ``[identity]
    placement_principal``.

    >>> api = PlacementAPI(rpc.get_transport(conf))      # doctest: +SKIP
    >>> gens = api.report_provider_tree(ctx, host='h1', providers=[...])
    """

    #: Public methods that are no RPC method.
    NOT_RPC = ('can_send_version',)

    def __init__(self, transport, timeout: float | None = None,
                 identity=None, version_cap: str | None = None):
        self.versions = rpc.VersionCaps(methods.TABLE, 'placement',
                                        version_cap)
        self.client = rpc.get_client(transport, rpc.placement_target(),
                                     version_cap=self.versions.cap,
                                     timeout=timeout)
        self.identity = identity

    def can_send_version(self, version: str) -> bool:
        return self.versions.can_send_version(version)

    def _call(self, context, method, **kwargs):
        def send(version: str, arguments: dict):
            cctxt = self.client.prepare(version=version)
            return caller_mod.call(
                self.identity, lambda ctx: cctxt.call(ctx, method, **arguments),
                context, topic=rpc.PLACEMENT_TOPIC, server=None, method=method,
                args=arguments)

        return self.versions.call(None, method, kwargs, send)

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
        version, arguments = self.versions.prepare(None, 'heartbeat', {
            'host': host, 'root_uuid': root_uuid, 'sent_at': sent_at})
        context, _ = caller_mod.stamp(
            self.identity, context, topic=rpc.PLACEMENT_TOPIC, server=None,
            method='heartbeat', args=arguments)
        self.client.prepare(version=version).cast(context, 'heartbeat',
                                                  **arguments)

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
