"""TLS to RabbitMQ: a real nova-rt-placement and its clients on a private
node whose only listener is TLS, with a CA, server and client certificates
made at test time."""

from __future__ import annotations

import ssl
import uuid

import kombu
import kombu.exceptions
import oslo_messaging as messaging
import pytest

from nova_rt.placement import rpcapi as placement_rpcapi
from tests.functional.broker.conftest import VHOST
from tests.functional.broker.conftest import client_options
from tests.functional.broker.conftest import client_transport

CTX = {'request_id': 'req-broker-tls', 'user_id': 'u1', 'project_id': 'p1'}


def test_placement_answers_over_tls(rabbit, principals, placement_service):
    with client_transport(rabbit, principals['operator']) as transport:
        api = placement_rpcapi.PlacementAPI(transport, timeout=20)
        assert isinstance(api.list_resource_providers(CTX), list)


@pytest.mark.parametrize('ca', ['system', 'other'])
def test_a_client_that_does_not_trust_the_ca_cannot_connect(
        rabbit, principals, placement_service, ca):
    """No ssl_ca_file (the system's CAs) or another CA: the handshake fails
    and nothing is sent.  (A cast: a call would first make its reply queue,
    on a connection that oslo.messaging retries for ever.)"""
    with client_transport(
            rabbit, principals['operator'],
            ca=None if ca == 'system' else rabbit.pki.other_ca) as transport:
        client = placement_rpcapi.PlacementAPI(transport).client
        with pytest.raises((messaging.MessageDeliveryFailure,
                            kombu.exceptions.OperationalError)) as failure:
            client.prepare(retry=1).cast(CTX, 'heartbeat', host='nowhere',
                                         root_uuid=str(uuid.uuid4()),
                                         sent_at='2026-01-01T00:00:00Z')
        assert 'CERTIFICATE_VERIFY_FAILED' in str(failure.value)


def _kombu(rabbit, principal, **ssl_options):
    options = {'ca_certs': rabbit.pki.ca, 'cert_reqs': ssl.CERT_REQUIRED,
               'server_hostname': '127.0.0.1',
               'certfile': principal.cert, 'keyfile': principal.key}
    options.update(ssl_options)
    return kombu.Connection(
        hostname='127.0.0.1', port=rabbit.tls_port, userid=principal.user,
        password=principal.password, virtual_host=VHOST,
        ssl={k: v for k, v in options.items() if v is not None},
        connect_timeout=10)


def test_the_node_checks_the_client_certificate(rabbit, principals):
    """The listener has fail_if_no_peer_cert: a right password without a
    certificate of our CA does not get in."""
    me = principals['operator']
    with _kombu(rabbit, me) as conn:
        conn.connect()                          # the control case
    for stray in ({'certfile': None, 'keyfile': None},
                  dict(zip(('certfile', 'keyfile'), rabbit.pki.other_client))):
        with _kombu(rabbit, me, **stray) as conn:
            with pytest.raises(Exception):
                conn.connect()


def test_the_server_name_is_verified(rabbit, principals):
    """The certificate is for 127.0.0.1 and localhost, nothing else."""
    with _kombu(rabbit, principals['operator'],
                server_hostname='broker.example.com') as conn:
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.connect()


@pytest.mark.parametrize('ca', ['trusted', 'system', 'other'])
def test_the_cli_probe_uses_the_ca_and_client_certificate(rabbit, principals,
                                                         ca):
    """``nova-rt``'s broker probe connects the way the services do: with
    ssl_ca_file, ssl_cert_file and ssl_key_file, not a bare ssl=True."""
    from nova_rt.cli import clients
    with client_options(rabbit, principals['operator'],
                        ca={'system': None, 'other': rabbit.pki.other_ca}.get(
                            ca, ca)) as (conf, url):
        if ca == 'trusted':
            clients.probe_broker(conf, url, timeout=10)
            return
        with pytest.raises(clients.CliError) as failure:
            clients.probe_broker(conf, url, timeout=10)
    assert 'CERTIFICATE_VERIFY_FAILED' in str(failure.value)
    assert principals['operator'].password not in str(failure.value)
