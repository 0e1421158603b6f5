"""Per-principal RabbitMQ users, as ``tools/rabbitmq-least-privilege.sh``
makes them, on the private TLS node: every legitimate path works end to end
(a real nova-rt-compute for host-a reporting to a real nova-rt-placement,
answering the operator, sending notifications), and host-b's user cannot
take host-a's calls.  The one path the broker cannot close (the default
exchange) is pinned here too, as doc/source/broker-security.rst says."""

from __future__ import annotations

import json
import re
import ssl
import uuid

import amqp.exceptions
import kombu
import pytest

from nova_rt.compute import rpcapi as compute_rpcapi
from nova_rt.placement import rpcapi as placement_rpcapi
from tests.functional.broker.conftest import EXCHANGE
from tests.functional.broker.conftest import VHOST
from tests.functional.broker.conftest import client_transport
from tests.functional.broker.conftest import run_script
from tests.functional.broker.conftest import tls_section
from tests.functional.compute.fixtures import ComputeProcess

CTX = {'request_id': 'req-broker-lp', 'user_id': 'u1', 'project_id': 'p1'}
HOST_A_QUEUE = 'nova-rt-compute.host-a'


@pytest.fixture(scope='module')
def compute_a(rabbit, principals, placement_service, tmp_path_factory):
    """A real nova-rt-compute for host-a as its own user, notifications on."""
    me = principals['host-a']
    daemon = ComputeProcess(
        str(tmp_path_factory.mktemp('compute')), 'host-a', EXCHANGE,
        transport_url=rabbit.url(me.user, me.password, VHOST),
        sections=tls_section(rabbit.pki.ca, me.cert, me.key)
        + '[oslo_messaging_notifications]\ndriver = messagingv2\n')
    try:
        daemon.start()      # ready = its first report reached placement
        yield daemon
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_text()[-3000:]


def _connect(rabbit, principal) -> kombu.Connection:
    conn = kombu.Connection(
        hostname='127.0.0.1', port=rabbit.tls_port, userid=principal.user,
        password=principal.password, virtual_host=VHOST, connect_timeout=10,
        ssl={'ca_certs': rabbit.pki.ca, 'cert_reqs': ssl.CERT_REQUIRED,
             'server_hostname': '127.0.0.1', 'certfile': principal.cert,
             'keyfile': principal.key},
        transport_options={'confirm_publish': True})
    conn.connect()
    return conn


def _refused(rabbit, principal, operation) -> str:
    """Run ``operation(channel)`` as ``principal``; the broker's refusal."""
    with _connect(rabbit, principal) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.AccessRefused) as refusal:
            operation(channel)
    return str(refusal.value)


def _refusals_for(rabbit, user: str) -> list:
    return re.findall(rf".*refused for user '{re.escape(user)}'.*",
                      rabbit.log_text())


def _queue_messages(rabbit, name: str) -> int | None:
    for line in rabbit.ctl('list_queues', '-p', VHOST, '--no-table-headers',
                           'name', 'messages').splitlines():
        fields = line.split('\t')
        if fields[0] == name:
            return int(fields[1])
    return None


def _oslo_cast(method: str) -> str:
    # What an oslo.messaging cast looks like on the wire (envelope 2.0).
    return json.dumps({'oslo.version': '2.0', 'oslo.message': json.dumps({
        'method': method, 'args': {}, 'namespace': None, 'version': '1.0',
        '_unique_id': uuid.uuid4().hex, '_context_request_id': 'req-host-b'})})


def test_the_script_is_idempotent(rabbit, principals):
    """A second run sets the same permissions and keeps the password."""
    out, err = run_script(rabbit, 'compute', 'host-b')
    assert out == '' and 'password kept' in err
    listed = rabbit.ctl('list_user_permissions', '-p', VHOST,
                        '--no-table-headers', principals['host-b'].user)
    assert r'nova-rt-compute\.host-b' in listed
    topics = rabbit.ctl('list_user_topic_permissions', '--no-table-headers',
                        principals['host-b'].user)
    assert topics.count(EXCHANGE) == 1


def test_every_role_works_end_to_end(rabbit, principals, compute_a):
    """compute -> placement (reports, heartbeats), operator -> compute and
    placement, compute -> notifications: nothing refused on the way."""
    with client_transport(rabbit, principals['operator']) as transport:
        compute = compute_rpcapi.ComputeAPI(transport, timeout=20)
        assert compute.get_host_state(CTX, 'host-a')['host'] == 'host-a'
        summary = compute.run_audit(CTX, 'host-a')
        assert summary['instances'] == 0
        placement = placement_rpcapi.PlacementAPI(transport, timeout=20)
        providers = placement.list_resource_providers(CTX, host='host-a')
        assert [p['name'] for p in providers] == ['host-a']
        assert providers[0]['alive'], 'no heartbeat from host-a'
    # run_audit sends compute.audit; the notifier's queue keeps it.
    assert _queue_messages(rabbit, 'versioned_notifications.info') >= 1
    for principal in ('host-a', 'placement', 'operator'):
        assert _refusals_for(rabbit, principals[principal].user) == []
    assert 'refused' not in compute_a.log_text().lower()


def test_host_b_cannot_consume_host_a_queue(rabbit, principals, compute_a):
    refusal = _refused(rabbit, principals['host-b'], lambda channel:
                       channel.basic_consume(HOST_A_QUEUE, callback=print))
    assert f"queue '{HOST_A_QUEUE}'" in refusal
    # Nor placement's, nor may an operator consume a host's calls.
    _refused(rabbit, principals['host-b'], lambda channel:
             channel.basic_consume('nova-rt-placement', callback=print))
    _refused(rabbit, principals['eve'], lambda channel:
             channel.basic_consume(HOST_A_QUEUE, callback=print))


def test_host_b_cannot_declare_or_delete_host_a_queue(rabbit, principals,
                                                      compute_a):
    host_b = principals['host-b']
    _refused(rabbit, host_b, lambda channel: channel.queue_declare(
        HOST_A_QUEUE, auto_delete=False))
    _refused(rabbit, host_b, lambda channel: channel.queue_delete(
        HOST_A_QUEUE))


def test_host_b_cannot_bind_to_host_a_routing_key(rabbit, principals,
                                                  compute_a):
    """Its own queue, on the control exchange it may read, with host-a's
    routing key: that would copy host-a's calls to host-b."""
    host_b = principals['host-b']
    own = 'nova-rt-compute.host-b'
    with _connect(rabbit, host_b) as conn:
        conn.channel().queue_declare(own, auto_delete=False)
        conn.channel().queue_bind(own, EXCHANGE, routing_key=own)  # control
    refusal = _refused(rabbit, host_b, lambda channel: channel.queue_bind(
        own, EXCHANGE, routing_key=HOST_A_QUEUE))
    assert 'routing key' in refusal or 'topic' in refusal


def test_host_b_cannot_publish_with_host_a_routing_key(rabbit, principals,
                                                       compute_a):
    refusal = _refused(rabbit, principals['host-b'], lambda channel:
                       channel.basic_publish(
                           amqp.Message(_oslo_cast('get_host_state')),
                           exchange=EXCHANGE, routing_key=HOST_A_QUEUE))
    assert HOST_A_QUEUE in refusal


def test_limit_the_default_exchange_reaches_any_queue(rabbit, principals,
                                                      compute_a):
    """Every RPC server answers through the default exchange, which routes
    by queue name; the broker cannot tell a reply from a message to
    host-a's queue.  This is why [identity] signs messages."""
    returned = []
    with _connect(rabbit, principals['host-b']) as conn:
        channel = conn.channel()
        channel.events['basic_return'].add(
            lambda exc, exchange, routing_key, message:
            returned.append(routing_key))
        # A harmless, read-only cast; confirmed by the broker.
        channel.basic_publish(amqp.Message(_oslo_cast('get_host_state')),
                              exchange='', routing_key=HOST_A_QUEUE,
                              mandatory=True)
        channel.basic_publish(amqp.Message('{}'), exchange='',
                              routing_key='no-such-queue', mandatory=True)
    assert returned == ['no-such-queue'], 'host-a\'s queue did not take it'
