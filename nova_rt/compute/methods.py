"""The compute RPC methods, once (``shared/spec/rpc-api.md``).

Each row: the method's name, its arguments (schema, default), the tracker
method that serves it (same name, same keywords), and the notification it
sends.  From this table come the endpoint (``manager.ComputeManager``), the
check of the client (``rpcapi.ComputeAPI``), validation, and the
notifications' event types; ``doc/source/rpc-api.rst`` is held to it by
``tests/unit/compute/test_methods.py``.
"""

from __future__ import annotations

from nova_rt import rpctable
from nova_rt.compute import schemas

A = rpctable.Argument
M = rpctable.Method

_INSTANCE_EVENT = 'InstanceClaimPayload'
_MOVE_EVENT = 'MoveClaimPayload'

#: Served by the service's audit thread, and no change placement hears of
#: from the endpoint: the audit reports itself.
AUDIT = 'run_audit'

TABLE = rpctable.Table('nova-rt-compute', [
    # -- claims of instances
    M('instance_claim',
      [A('instance', schemas.INSTANCE),
       A('nodename', schemas.NULLABLE_STRING, None)],
      event=('compute.instance.claim', _INSTANCE_EVENT)),
    M('abort_instance_claim', [A('instance_uuid', schemas.UUID)],
      event=('compute.instance.claim_abort', _INSTANCE_EVENT)),
    M('update_instance',
      [A('instance_uuid', schemas.UUID), A('vm_state', schemas.VM_STATE),
       A('task_state', schemas.NULLABLE_STRING, None)],
      event=('compute.instance.update', _INSTANCE_EVENT)),
    # -- moves
    M('resize_claim',
      [A('instance', schemas.INSTANCE),
       A('migration', schemas.MIGRATION_WITH_NEW_FLAVOR)],
      event=('compute.move.claim', _MOVE_EVENT)),
    M('rebuild_claim',
      [A('instance', schemas.INSTANCE), A('migration', schemas.MIGRATION)],
      event=('compute.move.claim', _MOVE_EVENT)),
    M('live_migration_claim',
      [A('instance', schemas.INSTANCE), A('migration', schemas.MIGRATION)],
      event=('compute.move.claim', _MOVE_EVENT)),
    # ``migration``: the full payload, for a host that may not have seen the
    # migration (the source of a cross-host move hearing "finished").  Daemons
    # older than 1.1 refuse it as an unknown argument.
    M('update_migration',
      [A('migration_uuid', schemas.UUID),
       A('status', schemas.MIGRATION_STATUS),
       A('migration', schemas.NULLABLE_MIGRATION, None, since='1.1')],
      event=('compute.move.update', _MOVE_EVENT)),
    M('drop_move_claim_at_source', [A('migration', schemas.MIGRATION)],
      event=('compute.move.drop', _MOVE_EVENT)),
    M('drop_move_claim_at_dest', [A('migration_uuid', schemas.UUID)],
      event=('compute.move.drop', _MOVE_EVENT)),
    M('abort_move_claim', [A('migration_uuid', schemas.UUID)],
      event=('compute.move.abort', _MOVE_EVENT)),
    M('finish_move', [A('migration_uuid', schemas.UUID)],
      event=('compute.move.finish', _MOVE_EVENT)),
    # -- PCI
    M('claim_pci_devices',
      [A('instance_uuid', schemas.UUID),
       A('alias_counts', schemas.ALIAS_COUNTS),
       A('request_id', schemas.UUID)],
      event=('compute.instance.pci_claim', _INSTANCE_EVENT)),
    M('free_pci_devices',
      [A('instance_uuid', schemas.UUID), A('addresses', schemas.ADDRESSES)],
      event=('compute.instance.pci_free', _INSTANCE_EVENT)),
    # -- node
    M('get_host_state', read_only=True),
    M(AUDIT, event=('compute.audit', 'AuditPayload')),
])
