"""Issue 18 from outside: with ``[identity] enforce = true``, nobody but a
host speaks for that host, nobody but an operator makes operator writes, and
nobody but the host called answers for it.

Real ``nova-rt-placement`` and ``nova-rt-compute`` (host-a) processes on
RabbitMQ, keys made by ``nova-rt-manage identity create-key``; the attackers
are plain oslo.messaging clients holding the broker's credentials, as every
hypervisor host does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import oslo_messaging as messaging
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from nova_rt import exception
from nova_rt import rpc
from nova_rt.identity import caller as caller_mod
from nova_rt.identity import keys
from nova_rt.identity import scheme
from nova_rt.placement import rpcapi as placement_rpcapi
from tests.functional.compute import fixtures as compute_fixtures
from tests.functional.placement import fixtures as placement_fixtures

MANAGE = os.path.join(os.path.dirname(sys.executable), 'nova-rt-manage')
CLI = os.path.join(os.path.dirname(sys.executable), 'nova-rt')
PRINCIPALS = ('host-a', 'host-b', 'nova-rt-placement', 'admin', 'conductor-1')
FLAVOR = {'name': 'm1.tiny', 'vcpus': 1, 'memory_mb': 256, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


def _identity_section(keys_dir: str) -> str:
    return (f'[identity]\nenforce = true\nkeys_dir = {keys_dir}\n'
            'operators = admin\nconductors = conductor-1\n')


class Stack:
    """placement + host-a's daemon, enforcing, and clients as anyone."""

    def __init__(self, workdir, placement, compute, keys_dir):
        self.workdir = workdir
        self.placement = placement
        self.compute = compute
        self.keys_dir = keys_dir
        self._transports = []

    def caller(self, principal: str | None, key: str | None = None):
        own = None
        if principal is not None:
            own = keys.OwnKey(key or keys.key_path(self.keys_dir, principal),
                              principal)
        return caller_mod.Caller(own_key=own, keyring=keys.Keyring(self.keys_dir),
                                 enforce=True,
                                 placement_principal='nova-rt-placement')

    def placement_as(self, principal, key=None):
        if not hasattr(self, 'transport'):
            # Errors rebuilt as our classes, as the project's clients have.
            _, self.transport = compute_fixtures.compute_client(
                self.placement.exchange, url=self.placement.transport_url)
            self._transports.append(self.transport)
        return placement_rpcapi.PlacementAPI(
            self.transport, timeout=10, identity=self.caller(principal, key))

    def compute_as(self, principal, key=None, exchange=None):
        api, transport = compute_fixtures.compute_client(
            exchange or self.compute.exchange, timeout=10,
            url=self.placement.transport_url)
        self._transports.append(transport)
        api.identity = self.caller(principal, key)
        return api

    def close(self):
        for transport in self._transports:
            transport.cleanup()


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('identity'))
    keys_dir = os.path.join(workdir, 'keys')
    conf = os.path.join(workdir, 'keys.conf')
    with open(conf, 'w') as f:
        f.write(f'[identity]\nkeys_dir = {keys_dir}\n')
    for principal in PRINCIPALS:
        out = subprocess.run([MANAGE, '--config-file', conf, 'identity',
                              'create-key', principal], check=True,
                             capture_output=True, text=True).stdout
        assert f'{keys_dir}/{principal}.key' in out
    assert oct(os.stat(f'{keys_dir}/host-a.key').st_mode & 0o777) == '0o600'
    section = _identity_section(keys_dir)
    db_url = f'sqlite:///{workdir}/placement.sqlite'
    with placement_fixtures.running_placement(
            db_url, workdir, extra_conf='\n' + section) as placement:
        compute = compute_fixtures.ComputeProcess(
            workdir, 'host-a', placement.exchange,
            transport_url=placement.transport_url, sections=section)
        compute.start()
        result = Stack(workdir, placement, compute, keys_dir)
        try:
            yield result
        finally:
            result.close()
            assert compute.terminate() == 0


def _root(stack) -> dict:
    api = stack.placement_as(None)      # reads are open
    rps = api.list_resource_providers({}, host='host-a')
    return next(rp for rp in rps if rp['parent_uuid'] is None)


def _state(stack, root_uuid: str) -> dict:
    """What placement holds for host-a: generation, usages, allocations."""
    rp = stack.placement_as(None).get_resource_provider({}, root_uuid)
    return {k: rp[k] for k in ('generation', 'usages', 'traits', 'aggregates',
                               'inventories')}


def _refused(call) -> str:
    with pytest.raises(exception.NotAuthorized) as info:
        call()
    return str(info.value)


def test_hosts_own_reports_work_and_claims_reach_placement(stack):
    conductor = stack.compute_as('conductor-1')
    instance = {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
                'flavor': FLAVOR, 'vm_state': 'building', 'task_state': None,
                'os_type': 'linux', 'is_volume_backed': False}
    claim = conductor.instance_claim({}, 'host-a', instance=instance)
    assert claim['host'] == 'host-a' and claim['resources']['VCPU'] == 1
    stack.instance_uuid = instance['uuid']
    api = stack.placement_as(None)
    # The daemon signs its reports; placement takes them.
    assert placement_fixtures.wait_until(
        lambda: api.get_allocations({}, instance['uuid']), timeout=20)
    state = conductor.get_host_state({}, 'host-a')
    assert instance['uuid'] in state['instances']


def test_unsigned_wrong_key_and_another_hosts_key_are_refused(stack):
    root = _root(stack)
    before = _state(stack, root['uuid'])
    allocations_before = stack.placement_as(None).get_allocations(
        {}, stack.instance_uuid)
    stranger = os.path.join(stack.workdir, 'stranger.key')
    with open(stranger, 'wb') as f:
        f.write(keys._private_pem(ed25519.Ed25519PrivateKey.generate()))
    attackers = {'no key': stack.placement_as(None),
                 'wrong key': stack.placement_as('host-a', key=stranger),
                 "host-b's key": stack.placement_as('host-b')}
    for name, api in attackers.items():
        # Wipe host-a's allocations with a full report, as host-a.
        reason = _refused(lambda: api.report_allocations(
            {}, host='host-a', root_uuid=root['uuid'],
            generation=before['generation'], allocations={}, full=True))
        assert 'report_allocations' in reason, name
        # Replace host-a's tree, as host-a.
        _refused(lambda: api.report_provider_tree(
            {}, host='host-a', providers=[]))
        # Operator writes, even at the right generation.
        _refused(lambda: api.set_traits({}, root['uuid'], ['CUSTOM_EVIL'],
                                        before['generation']))
        _refused(lambda: api.set_aggregates({}, root['uuid'],
                                            [str(uuid.uuid4())],
                                            before['generation']))
        _refused(lambda: api.delete_resource_provider({}, root['uuid']))
    assert _state(stack, root['uuid']) == before
    assert stack.placement_as(None).get_allocations(
        {}, stack.instance_uuid) == allocations_before
    log = stack.placement.log_text()
    assert 'Identity: refused report_allocations from host-a: the message ' \
           'is not signed' not in log       # no principal was claimed
    assert 'Identity: refused report_allocations from (no principal): ' \
           'the message is not signed' in log
    assert 'refused report_allocations from host-b: host-b may write only ' \
           "for its own host, not for 'host-a'" in log
    with open(keys.key_path(stack.keys_dir, 'host-a'), 'rb') as f:
        secret = f.read().decode().split('\n')[1]
    assert secret not in log


def test_a_stamp_with_another_principal_written_in_is_refused(stack):
    api = stack.placement_as('host-b')
    root = _root(stack)
    arguments = {'host': 'host-a', 'providers': []}
    context, _ = api.identity.stamp({}, topic=rpc.PLACEMENT_TOPIC, server=None,
                                    method='report_provider_tree',
                                    args=arguments)
    context[scheme.CONTEXT_KEY]['principal'] = 'host-a'
    raw = stack.placement.api.client.prepare()
    with pytest.raises(messaging.RemoteError) as info:
        raw.call(context, 'report_provider_tree', **arguments)
    assert info.value.exc_type == 'NotAuthorized'
    assert _root(stack)['uuid'] == root['uuid']


def test_a_replayed_message_is_refused_before_any_other_check(stack):
    admin = stack.placement_as('admin')
    root = _root(stack)
    generation = _state(stack, root['uuid'])['generation']
    arguments = {'uuid': root['uuid'], 'traits': ['CUSTOM_REPLAYED'],
                 'generation': generation}
    context, nonce = admin.identity.stamp(
        {}, topic=rpc.PLACEMENT_TOPIC, server=None, method='set_traits',
        args=arguments)
    raw = stack.placement.api.client.prepare()
    reply = raw.call(context, 'set_traits', **arguments)       # captured ...
    assert admin.identity.open_reply('nova-rt-placement', 'set_traits',
                                     nonce, reply) == {root['uuid']:
                                                       generation + 1}
    after = _state(stack, root['uuid'])
    with pytest.raises(messaging.RemoteError) as info:          # ... replayed
        raw.call(context, 'set_traits', **arguments)
    # Not the generation conflict it would also be: who comes first.
    assert info.value.exc_type == 'NotAuthorized'
    assert 'replayed' in info.value.value
    assert _state(stack, root['uuid']) == after
    admin.set_traits({}, root['uuid'], [], after['generation'])


def test_heartbeats_keep_alive_only_when_the_host_sends_them(stack):
    host_b = stack.placement_as('host-b')
    root_b = str(uuid.uuid4())
    gens = host_b.report_provider_tree({}, host='host-b', providers=[{
        'uuid': root_b, 'name': 'host-b', 'parent_uuid': None,
        'generation': None, 'traits': [],
        'inventories': {'VCPU': {'total': 4, 'reserved': 0, 'min_unit': 1,
                                 'max_unit': 4, 'step_size': 1,
                                 'allocation_ratio': 1.0}}}])
    assert root_b in gens

    def last_heartbeat():
        rps = stack.placement_as(None).list_resource_providers({}, host='host-b')
        return rps[0]['last_heartbeat']

    before = last_heartbeat()
    sent_at = '2026-12-07T10:00:00+00:00'
    for api in (stack.placement_as(None), stack.placement_as('host-a')):
        api.heartbeat({}, host='host-b', root_uuid=root_b, sent_at=sent_at)
    time.sleep(1.0)       # a cast: give placement the time to (not) apply it
    assert last_heartbeat() == before
    host_b.heartbeat({}, host='host-b', root_uuid=root_b, sent_at=sent_at)
    assert placement_fixtures.wait_until(lambda: last_heartbeat() != before,
                                         timeout=10)
    _refused(lambda: stack.placement_as('host-b').delete_resource_provider(
        {}, root_b))
    stack.placement_as('admin').delete_resource_provider({}, root_b)


def test_only_conductors_and_operators_call_a_compute_host(stack):
    before = stack.compute_as('admin').get_host_state({}, 'host-a')
    instance = {'uuid': str(uuid.uuid4()), 'project_id': 'p1', 'user_id': 'u1',
                'flavor': FLAVOR, 'vm_state': 'building', 'task_state': None,
                'os_type': 'linux', 'is_volume_backed': False}
    for principal in (None, 'host-b', 'nova-rt-placement'):
        api = stack.compute_as(principal)
        _refused(lambda: api.instance_claim({}, 'host-a', instance=instance))
        _refused(lambda: api.abort_instance_claim({}, 'host-a',
                                                  stack.instance_uuid))
    # A read stays open, and its answer is still signed by host-a.
    assert stack.compute_as('host-b').get_host_state({}, 'host-a')['host'] \
        == 'host-a'
    after = stack.compute_as('admin').get_host_state({}, 'host-a')
    assert after['instances'] == before['instances']
    assert after['vcpus_used'] == before['vcpus_used']
    assert "host-b is not one of the conductors or operators" in \
        stack.compute.log_text()


class _Rogue:
    """Answers host-a's compute topic with forged claims."""

    def __init__(self, key=None):
        self.key = key

    @messaging.expose
    def get_host_state(self, context, **kwargs):
        forged = {'host': 'host-a', 'instances': ['forged']}
        stamp = getattr(context, 'nova_rt_identity', None)
        if self.key is None or stamp is None:
            return forged
        return {scheme.REPLY_KEY: scheme.seal(
            self.key, lambda principal, kid: scheme.reply_bytes(
                method='get_host_state', request_nonce=stamp['nonce'],
                principal=principal, key_id=kid, result=forged)),
            'result': forged}


@pytest.mark.parametrize('rogue_key', [None, 'host-b'])
def test_a_rogue_listener_on_a_hosts_topic_is_not_believed(stack, rogue_key):
    exchange = compute_fixtures.unique_exchange('nova_rt_rogue')
    transport = placement_fixtures.make_transport(
        exchange, stack.placement.transport_url)
    key = None
    if rogue_key:
        key = keys.load_signing_key(keys.key_path(stack.keys_dir, rogue_key),
                                    rogue_key)
    from nova_rt import conf as nova_conf
    server = rpc.get_server(nova_conf.CONF, transport,
                            rpc.compute_target('host-a'), [_Rogue(key)])
    server.start()
    try:
        # The rogue and host-a's daemon share the queue (its name ignores
        # the exchange) and take turns: no forged answer may get through.
        conductor = stack.compute_as('conductor-1', exchange=exchange)
        refused = []
        for _ in range(20):
            try:
                state = conductor.get_host_state({}, 'host-a')
            except exception.NotAuthorized as exc:
                refused.append(str(exc))
            else:
                assert 'forged' not in state['instances']
        assert refused, 'the rogue answered no call'
        assert 'not from host-a' in refused[0]
        assert ('signed by host-b' if rogue_key else 'not signed') in refused[0]
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def _cli(stack, principal: str, *args):
    conf = os.path.join(stack.workdir, f'cli-{principal}.conf')
    with open(conf, 'w') as f:
        f.write(f'[DEFAULT]\ntransport_url = {stack.placement.transport_url}\n'
                f'control_exchange = {stack.placement.exchange}\n'
                f'{_identity_section(stack.keys_dir)}principal = {principal}\n')
    return subprocess.run([CLI, '--config-file', conf, '-f', 'json', *args],
                          capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_the_cli_makes_operator_writes_as_an_operator_only(stack):
    root = _root(stack)['uuid']
    aggregate = str(uuid.uuid4())
    done = _cli(stack, 'admin', 'provider', 'trait', 'set', root,
                '--trait', 'CUSTOM_GOLD', '--trait', 'HW_CPU_X86_AVX2')
    assert done.returncode == 0, done.stderr
    assert '"CUSTOM_GOLD"' in done.stdout
    done = _cli(stack, 'admin', 'provider', 'aggregate', 'set', root,
                '--aggregate', aggregate)
    assert done.returncode == 0, done.stderr
    refused = _cli(stack, 'host-a', 'provider', 'trait', 'set', root,
                   '--trait', 'CUSTOM_EVIL')
    assert refused.returncode == 1
    assert refused.stderr.startswith('ERROR: NotAuthorized: ')
    assert 'host-a is not one of the operators' in refused.stderr
    state = _state(stack, root)
    assert sorted(state['traits']) == ['CUSTOM_GOLD', 'HW_CPU_X86_AVX2']
    assert state['aggregates'] == [aggregate]
    done = _cli(stack, 'admin', 'provider', 'trait', 'set', root)
    assert done.returncode == 0, done.stderr
    assert _state(stack, root)['traits'] == []
