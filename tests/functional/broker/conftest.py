"""One private RabbitMQ node (TLS only) for the whole package, the nova_rt
users made on it by ``tools/rabbitmq-least-privilege.sh``, and a real
``nova-rt-placement`` on it.

A machine without rabbitmq-server fails these tests rather than skipping
them, as the tests on the shared node do (``require_rabbit``): it is in
bindep.txt, and CI must not go green without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import uuid

import pytest

from tests.functional.broker import node as node_mod
from tests.functional.placement import fixtures as placement_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPT = os.path.join(REPO, 'tools', 'rabbitmq-least-privilege.sh')
VHOST = 'nova_rt'
#: Not the default, so that the script's --exchange is what makes it work.
EXCHANGE = 'nova_rt_broker_test'
PLACEMENT_HOST = 'placement-1'

#: principal -> (script arguments, client certificate name)
ROLES = {
    'host-a': (['--notifications', 'compute', 'host-a'], 'nova-rt-compute-host-a'),
    'host-b': (['compute', 'host-b'], 'nova-rt-compute-host-b'),
    'placement': (['placement', PLACEMENT_HOST], 'nova-rt-placement-placement-1'),
    'operator': (['operator'], 'nova-rt-operator'),
    'eve': (['operator', 'eve'], 'nova-rt-operator-eve'),
}


@pytest.fixture(scope='package')
def rabbit(tmp_path_factory):
    """The started node: ``PrivateRabbit``, vhost ``VHOST``, no guest."""
    directory = str(tmp_path_factory.mktemp('rabbit'))
    pki = node_mod.make_pki(os.path.join(directory, 'pki'),
                            clients=[cert for _, cert in ROLES.values()])
    rabbit = node_mod.PrivateRabbit(directory, pki)
    try:
        rabbit.start()
        # Only the users the script makes may log in.
        rabbit.ctl('delete_user', 'guest')
        rabbit.ctl('add_vhost', VHOST)
        yield rabbit
    finally:
        rabbit.stop()


def run_script(rabbit, *args, password: str | None = None):
    """The script against the private node: (stdout, stderr)."""
    env = {**rabbit.env,
           'RABBITMQCTL': os.path.join(node_mod.RABBITMQ_BIN, 'rabbitmqctl')}
    extra = ['--password-stdin'] if password is not None else []
    done = subprocess.run(
        [SCRIPT, '--node', rabbit.name, '--vhost', VHOST, '--exchange',
         EXCHANGE, *extra, *args], env=env, capture_output=True, text=True,
        input=None if password is None else password + '\n', timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


@dataclasses.dataclass
class Principal:
    user: str
    password: str
    cert: str
    key: str


@pytest.fixture(scope='package')
def principals(rabbit):
    """principal -> Principal, made by the script (one password from stdin,
    the others generated)."""
    made = {}
    for principal, (args, cert_name) in ROLES.items():
        given = uuid.uuid4().hex if principal == 'placement' else None
        out, _err = run_script(rabbit, *args, password=given)
        password = given if given is not None else out.strip()
        assert password and '\n' not in password
        cert, key = rabbit.pki.clients[cert_name]
        made[principal] = Principal(cert_name, password, cert, key)
    return made


def tls_section(ca: str | None, cert: str | None = None,
                key: str | None = None) -> str:
    lines = ['[oslo_messaging_rabbit]', 'ssl = true']
    if ca:
        lines.append(f'ssl_ca_file = {ca}')
    if cert:
        lines += [f'ssl_cert_file = {cert}', f'ssl_key_file = {key}']
    return '\n'.join(lines) + '\n'


@contextlib.contextmanager
def client_options(rabbit, principal: Principal, ca: str | None = 'trusted'):
    """The process-wide CONF (what nova_rt's clients read) set up as this
    principal's client over TLS, trusting ``ca`` ('trusted': the node's CA,
    None: the system's), for the time of the ``with``."""
    import oslo_messaging as messaging

    from nova_rt import conf as nova_conf
    conf = nova_conf.CONF
    url = rabbit.url(principal.user, principal.password, VHOST)
    if 'oslo_messaging_rabbit' not in conf or 'control_exchange' not in conf:
        # oslo.messaging registers its options when a driver is loaded.
        messaging.get_rpc_transport(conf, url=url).cleanup()
    overrides = [('control_exchange', EXCHANGE, None),
                 ('ssl', True, 'oslo_messaging_rabbit'),
                 ('ssl_ca_file', rabbit.pki.ca if ca == 'trusted' else ca or '',
                  'oslo_messaging_rabbit'),
                 ('ssl_cert_file', principal.cert, 'oslo_messaging_rabbit'),
                 ('ssl_key_file', principal.key, 'oslo_messaging_rabbit')]
    for name, value, group in overrides:
        conf.set_override(name, value, group=group)
    try:
        yield conf, url
    finally:
        for name, _value, group in overrides:
            conf.clear_override(name, group=group)


@contextlib.contextmanager
def client_transport(rabbit, principal: Principal,
                     ca: str | None = 'trusted'):
    """An RPC transport for ``principal`` over TLS (see client_options)."""
    import oslo_messaging as messaging
    from nova_rt.compute import rpcapi as compute_rpcapi
    with client_options(rabbit, principal, ca) as (conf, url):
        transport = messaging.get_rpc_transport(
            conf, url=url,
            allowed_remote_exmods=compute_rpcapi.ALLOWED_REMOTE_EXMODS)
        try:
            yield transport
        finally:
            transport.cleanup()


@pytest.fixture(scope='package')
def placement_service(rabbit, principals, tmp_path_factory):
    """A real nova-rt-placement over TLS as its least-privilege user."""
    from nova_rt.placement import db
    workdir = str(tmp_path_factory.mktemp('placement'))
    db_url = f'sqlite:///{workdir}/placement.sqlite'
    db.sync(db_url)
    me = principals['placement']
    config = placement_fixtures.write_config(
        os.path.join(workdir, 'placement.conf'), db_url, EXCHANGE,
        os.path.join(workdir, 'state'),
        extra=f'host = {PLACEMENT_HOST}\n'
              + tls_section(rabbit.pki.ca, me.cert, me.key),
        transport_url=rabbit.url(me.user, me.password, VHOST))
    log = os.path.join(workdir, 'placement.log')
    proc = placement_fixtures.start_process(config, log)
    try:
        placement_fixtures.wait_serving(proc, log)
        yield log
    finally:
        code = placement_fixtures.stop_process(proc)
    assert code == 0, open(log).read()[-3000:]
