"""Versioned notifications of the compute daemon (claims, moves, audits).

They go through an oslo.messaging ``Notifier``, so they are off unless the
operator sets ``[oslo_messaging_notifications] driver = messagingv2`` (the
library's default is no driver).  Payloads are versioned the way Nova's are
(``nova_object.name``/``version``/``data``) so that consumers can evolve.
Sending never fails a claim: a notification that cannot be sent is logged.
"""

from __future__ import annotations

import logging
from typing import Optional

from nova_rt.compute import methods

LOG = logging.getLogger(__name__)

PUBLISHER = 'nova-rt-compute'
TOPICS = ('versioned_notifications',)
PAYLOAD_VERSION = '1.0'


def versioned(name: str, data: dict) -> dict:
    return {'nova_object.name': name,
            'nova_object.namespace': 'nova_rt',
            'nova_object.version': PAYLOAD_VERSION,
            'nova_object.data': data}


def _summary(method: str, arguments: dict, result) -> dict:
    """What a consumer needs, without copying whole payloads around."""
    data = {'method': method}
    instance = arguments.get('instance')
    migration = arguments.get('migration')
    if instance:
        data['instance_uuid'] = instance.get('uuid')
    if migration:
        data['migration_uuid'] = migration.get('uuid')
        data['instance_uuid'] = migration.get('instance_uuid')
        data['migration_type'] = migration.get('migration_type')
    for key in ('instance_uuid', 'migration_uuid', 'vm_state', 'task_state',
                'status', 'request_id', 'alias_counts', 'addresses'):
        if key in arguments:
            data[key] = arguments[key]
    if isinstance(result, dict):
        if 'resources' in result:
            data['resources'] = result['resources']
        if method == 'run_audit':
            data.update(result)
    return data


class ComputeNotifier:
    """``ComputeNotifier(notifier)``: ``notifier`` an oslo.messaging Notifier or None."""

    def __init__(self, notifier=None):
        self._notifier = notifier

    @classmethod
    def from_conf(cls, conf, host: str) -> 'ComputeNotifier':
        import oslo_messaging as messaging
        from nova_rt import rpc
        transport = rpc.get_notification_transport(conf)
        notifier = messaging.Notifier(
            transport, publisher_id=f'{PUBLISHER}:{host}',
            topics=list(TOPICS), serializer=rpc.ContextSerializer())
        # Notifier.is_enabled() is true with no driver at all (the default):
        # every claim would build and hand over a notification that goes
        # nowhere.  The option (registered by Notifier) says it plainly.
        drivers = conf.oslo_messaging_notifications.driver
        if not [d for d in drivers if d != 'noop']:
            transport.cleanup()
            return cls(None)
        return cls(notifier)

    @property
    def enabled(self) -> bool:
        return self._notifier is not None and self._notifier.is_enabled()

    def notify(self, context, method: str, arguments: dict, result=None,
               error: Optional[BaseException] = None) -> None:
        # Event types come from the table of methods; some send none.
        if not self.enabled or method not in methods.TABLE:
            return
        event = methods.TABLE[method].event
        if event is None:
            return
        event_type, payload_name = event
        data = _summary(method, arguments, result)
        try:
            if error is None:
                self._notifier.info(context or {}, event_type + '.end',
                                    versioned(payload_name, data))
            else:
                data['error'] = {'class': type(error).__name__,
                                 'message': str(error)}
                self._notifier.error(context or {}, event_type + '.error',
                                     versioned(payload_name, data))
        except Exception as exc:   # a lost notification must not fail a claim
            LOG.warning('Could not send notification %s: %s', event_type,
                        type(exc).__name__)

    def stop(self) -> None:
        if self._notifier is not None:
            try:
                self._notifier.transport.cleanup()
            except Exception:
                pass
