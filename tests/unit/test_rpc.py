"""The request context as the daemons take it from the wire (``nova_rt.rpc``)."""

import pytest

from nova_rt import rpc


def _taken(context) -> dict:
    ctx = rpc.ContextSerializer().deserialize_context(context)
    return dict(ctx.to_dict(), user_id=ctx.user_id)


def test_the_contract_s_keys_are_kept():
    ctx = _taken({'request_id': 'req-1', 'global_request_id': 'req-g',
                  'user_id': 'u1', 'project_id': 'p1', 'is_admin': True})
    assert (ctx['request_id'], ctx['global_request_id'], ctx['user_id'],
            ctx['project_id'], ctx['is_admin']) == \
        ('req-1', 'req-g', 'u1', 'p1', True)


def test_older_names_and_numeric_ids_are_understood():
    ctx = _taken({'user': 'u1', 'project': 7})
    assert (ctx['user_id'], ctx['project_id']) == ('u1', '7')


def test_secrets_are_never_kept():
    ctx = _taken({'auth_token': 's3cret', 'roles': ['admin']})
    assert ctx['auth_token'] is None and ctx['roles'] == []


@pytest.mark.parametrize('context', [
    None, 5, 'req', ['x'],
    {'request_id': {'a': 1}}, {'request_id': 'r' * 1_000_000},
    {'request_id': ''}, {'is_admin': 'yes'}, {'read_only': [1]},
    {'user_id': 1.5}, {'global_request_id': None}, {'show_deleted': {}},
])
def test_a_wrong_context_never_fails_the_call(context):
    # A wrong value is dropped; oslo.context makes up a request_id.
    ctx = _taken(context)
    assert ctx['request_id'].startswith('req-')
    assert len(ctx['request_id']) < 100
    assert ctx['is_admin'] is False


def test_idle_polls_are_bounded_and_the_rabbit_options_still_valid():
    from oslo_config import cfg
    from oslo_messaging._drivers import amqpdriver
    from oslo_messaging._drivers import impl_rabbit

    assert amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX == rpc.IDLE_POLL_MAX_S
    rpc.bound_idle_poll(3.0)        # never raised again by a second call
    assert amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX == rpc.IDLE_POLL_MAX_S
    # kombu_reconnect_delay's maximum was taken from the unbounded value:
    # its default (1.0) and values up to 4.5 s stay valid.
    conf = cfg.ConfigOpts()
    conf.register_opts(impl_rabbit.rabbit_opts, 'oslo_messaging_rabbit')
    conf([])
    assert conf.oslo_messaging_rabbit.kombu_reconnect_delay == 1.0
    conf.set_override('kombu_reconnect_delay', 4.0, 'oslo_messaging_rabbit')
    assert conf.oslo_messaging_rabbit.kombu_reconnect_delay == 4.0
