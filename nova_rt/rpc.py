"""oslo.messaging plumbing shared by both services and their clients.

Targets name no exchange: the transport's ``control_exchange`` applies.  The
request context travels as a plain dict; on the server side it becomes an
oslo.context ``RequestContext`` stored for the worker thread, so that oslo.log
writes its ``request_id`` on every line logged while serving the call.
"""

from __future__ import annotations

import oslo_messaging as messaging
from oslo_context import context as oslo_context

COMPUTE_TOPIC = 'nova-rt-compute'
PLACEMENT_TOPIC = 'nova-rt-placement'
RPC_VERSION = '1.0'

#: Context keys a caller may send; anything else is dropped.
_CONTEXT_KEYS = ('request_id', 'global_request_id', 'user_id', 'project_id',
                 'user', 'project', 'domain_id', 'user_domain_id',
                 'project_domain_id', 'is_admin', 'read_only',
                 'show_deleted', 'auth_token', 'roles')


class ContextSerializer(messaging.NoOpSerializer):
    """Context dict on the wire, ``RequestContext`` in the server's thread."""

    def serialize_context(self, context):
        if context is None:
            return {}
        if isinstance(context, dict):
            return dict(context)
        return context.to_dict()

    def deserialize_context(self, context):
        context = context or {}
        kwargs = {k: context[k] for k in _CONTEXT_KEYS
                  if k in context and context[k] is not None}
        # oslo.context calls them user_id/project_id, older callers user/project.
        if 'user_id' in kwargs:
            kwargs['user_id'] = str(kwargs['user_id'])
        if 'project_id' in kwargs:
            kwargs['project_id'] = str(kwargs['project_id'])
        kwargs.pop('user', None)
        kwargs.pop('project', None)
        kwargs.pop('auth_token', None)  # never kept, never logged
        kwargs.pop('roles', None)
        ctx = oslo_context.RequestContext(overwrite=True, **kwargs)
        return ctx


def get_transport(conf):
    return messaging.get_rpc_transport(conf)


def get_notification_transport(conf):
    return messaging.get_notification_transport(conf)


def executor_for(conf) -> str:
    return 'eventlet' if conf.concurrency_backend == 'eventlet' else 'threading'


def get_server(conf, transport, target, endpoints):
    return messaging.get_rpc_server(
        transport, target, endpoints, executor=executor_for(conf),
        serializer=ContextSerializer(),
        access_policy=messaging.DefaultRPCAccessPolicy)


def get_client(transport, target, version_cap=None, timeout=None):
    return messaging.get_rpc_client(
        transport, target, version_cap=version_cap, timeout=timeout,
        serializer=ContextSerializer())


def compute_target(host=None):
    return messaging.Target(topic=COMPUTE_TOPIC, server=host,
                            version=RPC_VERSION)


def placement_target():
    return messaging.Target(topic=PLACEMENT_TOPIC, version=RPC_VERSION)
