"""Client side of the compute RPC API, as the conductor uses it.

>>> transport = get_transport(conf)                       # doctest: +SKIP
>>> compute = ComputeAPI(transport, version_cap='1.0')    # doctest: +SKIP
>>> claim = compute.instance_claim(ctx, 'host-a', instance=instance)

Every method takes the request context (a dict such as ``{'request_id':
'req-...'}`` or an oslo.context ``RequestContext``), the host whose daemon
should answer, and the spec's keyword arguments.  A refusal is raised as the
``nova_rt.exception`` class the spec names (``ComputeResourcesUnavailable``
...), with the daemon's message and without the remote traceback.

Versioning (``doc/source/rpc-api.rst``, "Versions"): each call is sent at
the lowest version its arguments need; an argument newer than
``version_cap`` (``[upgrade_levels] compute``: ``auto``, a release name or a
version) is left out, so a conductor upgraded first keeps talking to older
daemons.

The methods are written out, for their signatures and type hints; at import
they are held to the table of methods (``compute/methods.py``), so that a
method or argument cannot be added to one and not the other.
"""

from __future__ import annotations

import oslo_messaging as messaging

from nova_rt import exception
from nova_rt import rpc
from nova_rt.compute import methods
from nova_rt.identity import caller as caller_mod

#: The modules whose exception classes callers may rebuild from the wire.
ALLOWED_REMOTE_EXMODS = ['nova_rt.exception']


def get_transport(conf):
    """An RPC transport whose remote errors come back as our classes."""
    return messaging.get_rpc_transport(
        conf, allowed_remote_exmods=ALLOWED_REMOTE_EXMODS)


def _plain_error(exc: Exception) -> Exception:
    """``InvalidInput_Remote`` (message + remote traceback) -> ``InvalidInput``."""
    name = type(exc).__name__
    if not name.endswith('_Remote'):
        return exc
    cls = getattr(exception, name[:-len('_Remote')], None)
    if cls is None or not isinstance(exc, exception.NovaRtException):
        return exc
    plain = cls(exc.message, **exc.kwargs)
    return plain


class ComputeAPI:
    """``ComputeAPI(transport, version_cap=None, timeout=None, identity=None)``.

    ``transport`` should come from ``get_transport`` so that errors keep
    their class; with a plain transport they arrive as
    ``oslo_messaging.RemoteError`` whose ``exc_type`` is the class name.

    ``identity``: a ``nova_rt.identity.caller.Caller``
    (``identity.config.caller(conf, 'cli')``): every call is then signed as
    its principal, and an answer is accepted only when signed by the host
    called (``doc/source/security.rst``).
    """

    VERSION = methods.TABLE.version
    #: Public methods that are no RPC method.
    NOT_RPC = ('can_send_version',)
    #: The Caller that signs and checks, if any.
    identity = None

    def __init__(self, transport, version_cap: str | None = None,
                 timeout: float | None = None, identity=None):
        self.versions = rpc.VersionCaps(methods.TABLE, 'compute', version_cap)
        self.client = rpc.get_client(transport, rpc.compute_target(),
                                     version_cap=self.versions.cap,
                                     timeout=timeout)
        self.identity = identity

    def can_send_version(self, version: str, host: str | None = None) -> bool:
        """Whether ``version`` may be sent (to ``host``, under ``auto``)."""
        return self.versions.can_send_version(version, host)

    def _call(self, context, host: str, method: str,
              timeout: float | None = None, **kwargs):
        options = {'server': host}
        if timeout is not None:
            # prepare(timeout=None) would mean "wait forever", not "default".
            options['timeout'] = timeout

        def send(version: str, arguments: dict):
            cctxt = self.client.prepare(version=version, **options)
            return caller_mod.call(
                self.identity, lambda ctx: cctxt.call(ctx, method, **arguments),
                context, topic=rpc.COMPUTE_TOPIC, server=host, method=method,
                args=arguments)

        try:
            return self.versions.call(host, method, kwargs, send)
        except exception.NovaRtException as exc:
            plain = _plain_error(exc)
            if plain is exc:
                raise
            raise plain from None

    # -- claims of instances -------------------------------------------------

    def instance_claim(self, context, host: str, instance: dict,
                       nodename: str | None = None) -> dict:
        return self._call(context, host, 'instance_claim', instance=instance,
                          nodename=nodename)

    def abort_instance_claim(self, context, host: str, instance_uuid: str) -> None:
        return self._call(context, host, 'abort_instance_claim',
                          instance_uuid=instance_uuid)

    def update_instance(self, context, host: str, instance_uuid: str,
                        vm_state: str, task_state: str | None = None) -> None:
        return self._call(context, host, 'update_instance',
                          instance_uuid=instance_uuid, vm_state=vm_state,
                          task_state=task_state)

    # -- moves ---------------------------------------------------------------

    def resize_claim(self, context, host: str, instance: dict,
                     migration: dict) -> dict:
        return self._call(context, host, 'resize_claim', instance=instance,
                          migration=migration)

    def rebuild_claim(self, context, host: str, instance: dict,
                      migration: dict) -> dict:
        return self._call(context, host, 'rebuild_claim', instance=instance,
                          migration=migration)

    def live_migration_claim(self, context, host: str, instance: dict,
                             migration: dict) -> dict:
        return self._call(context, host, 'live_migration_claim',
                          instance=instance, migration=migration)

    def update_migration(self, context, host: str, migration_uuid: str,
                         status: str, migration: dict | None = None) -> None:
        # ``migration`` only when there is one: a daemon older than that
        # argument refuses it, and has no use for a None.
        extra = {} if migration is None else {'migration': migration}
        return self._call(context, host, 'update_migration',
                          migration_uuid=migration_uuid, status=status,
                          **extra)

    def drop_move_claim_at_source(self, context, host: str,
                                  migration: dict) -> None:
        return self._call(context, host, 'drop_move_claim_at_source',
                          migration=migration)

    def drop_move_claim_at_dest(self, context, host: str,
                                migration_uuid: str) -> None:
        return self._call(context, host, 'drop_move_claim_at_dest',
                          migration_uuid=migration_uuid)

    def abort_move_claim(self, context, host: str, migration_uuid: str) -> None:
        return self._call(context, host, 'abort_move_claim',
                          migration_uuid=migration_uuid)

    def finish_move(self, context, host: str, migration_uuid: str) -> None:
        return self._call(context, host, 'finish_move',
                          migration_uuid=migration_uuid)

    # -- PCI -------------------------------------------------------------------

    def claim_pci_devices(self, context, host: str, instance_uuid: str,
                          alias_counts: dict, request_id: str) -> list:
        return self._call(context, host, 'claim_pci_devices',
                          instance_uuid=instance_uuid,
                          alias_counts=alias_counts, request_id=request_id)

    def free_pci_devices(self, context, host: str, instance_uuid: str,
                         addresses: list) -> None:
        return self._call(context, host, 'free_pci_devices',
                          instance_uuid=instance_uuid, addresses=list(addresses))

    # -- node ------------------------------------------------------------------

    def get_host_state(self, context, host: str) -> dict:
        return self._call(context, host, 'get_host_state')

    def run_audit(self, context, host: str, timeout: float | None = None) -> dict:
        return self._call(context, host, 'run_audit', timeout=timeout)


methods.TABLE.check_client(ComputeAPI, leading=('context', 'host'),
                           client_only={'run_audit': ('timeout',)})
