"""The guard of an endpoint and the caller of a client, end to end in one
process: real keys in a temp ``keys_dir``, the context as the serializer
leaves it (an object with ``nova_rt_identity``), no broker."""

import os
import time
import types

import pytest

from nova_rt import exception
from nova_rt import rpc
from nova_rt.compute import methods as compute_methods
from nova_rt.identity import caller as caller_mod
from nova_rt.identity import guard as guard_mod
from nova_rt.identity import keys
from nova_rt.identity import scheme
from nova_rt.placement import methods as placement_methods

ARGS = {'host': 'host-a', 'providers': []}
REPORT = placement_methods.TABLE['report_provider_tree']
CLAIM = compute_methods.TABLE['instance_claim']
READ = placement_methods.TABLE['list_resource_providers']


@pytest.fixture
def keys_dir(tmp_path):
    for principal in ('host-a', 'host-b', 'nova-rt-placement', 'admin',
                      'conductor-1'):
        keys.create_key(str(tmp_path), principal)
    return str(tmp_path)


def _caller(keys_dir, principal, enforce=True):
    own = None if principal is None else keys.OwnKey(
        keys.key_path(keys_dir, principal), principal)
    return caller_mod.Caller(own_key=own, keyring=keys.Keyring(keys_dir),
                             enforce=enforce,
                             placement_principal='nova-rt-placement')


def _guard(keys_dir, enforce=True, topic=rpc.PLACEMENT_TOPIC, server=None,
           principal='nova-rt-placement', **kwargs):
    return guard_mod.Guard(
        topic=topic, server=server, keyring=keys.Keyring(keys_dir),
        policy=scheme.Policy.of(['admin'], ['conductor-1']), enforce=enforce,
        window_s=60, own_key=keys.OwnKey(keys.key_path(keys_dir, principal),
                                         principal), **kwargs)


def _send(caller, method=REPORT, args=ARGS, topic=rpc.PLACEMENT_TOPIC,
          server=None):
    """The context the receiver sees, and the nonce."""
    context, nonce = caller.stamp({'request_id': 'req-1'}, topic=topic,
                                  server=server, method=method.name, args=args)
    return types.SimpleNamespace(
        nova_rt_identity=context.get(scheme.CONTEXT_KEY)), nonce


def test_a_signed_report_is_accepted_and_its_answer_checks(keys_dir):
    guard, host_a = _guard(keys_dir), _caller(keys_dir, 'host-a')
    context, nonce = _send(host_a)
    verdict = guard.check(context, REPORT, ARGS)
    assert verdict.refusal is None and verdict.principal == 'host-a'
    reply = verdict.seal({'rp': 3})
    assert set(reply) == {'nova_rt_reply', 'result'}
    assert host_a.open_reply('nova-rt-placement', REPORT.name, nonce,
                             reply) == {'rp': 3}
    # The same answer for another request, or from another principal, is
    # refused by the caller.
    with pytest.raises(exception.NotAuthorized, match='does not match'):
        host_a.open_reply('nova-rt-placement', REPORT.name, 'f' * 32, reply)
    with pytest.raises(exception.NotAuthorized, match='signed by nova-rt-pl'):
        host_a.open_reply('host-a', REPORT.name, nonce, reply)
    with pytest.raises(exception.NotAuthorized, match='not signed'):
        host_a.open_reply('nova-rt-placement', REPORT.name, nonce, {'rp': 3})


def test_refusals_are_signed_and_checked_like_answers(keys_dir):
    guard, host_b = _guard(keys_dir), _caller(keys_dir, 'host-b')
    context, nonce = _send(host_b)
    with pytest.raises(exception.NotAuthorized) as info:
        guard_mod.admit(guard, context, REPORT, ARGS)
    error = info.value
    assert scheme.REPLY_KEY in error.kwargs         # signed by admit()
    host_b.check_error('nova-rt-placement', REPORT.name, nonce, error)
    assert scheme.REPLY_KEY not in error.kwargs     # taken off, not shown
    forged = exception.ComputeResourcesUnavailable(reason='forged')
    with pytest.raises(exception.NotAuthorized, match='refusal is not signed'):
        host_b.check_error('host-a', CLAIM.name, nonce, forged)


def test_who_may_call_what(keys_dir):
    compute_guard = _guard(keys_dir, topic=rpc.COMPUTE_TOPIC, server='host-a',
                           principal='host-a')
    claim_args = {'instance': {}}
    for principal, allowed in (('conductor-1', True), ('admin', True),
                               ('host-b', False), ('host-a', False)):
        context, _ = _send(_caller(keys_dir, principal), CLAIM, claim_args,
                           rpc.COMPUTE_TOPIC, 'host-a')
        verdict = compute_guard.check(context, CLAIM, claim_args)
        assert (verdict.refusal is None) == allowed, principal
    # A claim stamped for host-b's topic is not valid at host-a's.
    context, _ = _send(_caller(keys_dir, 'conductor-1'), CLAIM, claim_args,
                       rpc.COMPUTE_TOPIC, 'host-b')
    refusal = compute_guard.check(context, CLAIM, claim_args).refusal
    assert 'does not match' in str(refusal)


def test_reads_are_open_unless_configured(keys_dir):
    unsigned = types.SimpleNamespace(nova_rt_identity=None)
    assert _guard(keys_dir).check(unsigned, READ, {}).refusal is None
    closed = _guard(keys_dir, open_reads=False)
    assert 'not signed' in str(closed.check(unsigned, READ, {}).refusal)
    context, _ = _send(_caller(keys_dir, 'host-b'), READ, {})
    assert closed.check(context, READ, {}).refusal is None


def test_enforce_off_accepts_everything_and_says_so(keys_dir, caplog):
    guard = _guard(keys_dir, enforce=False)
    unsigned = types.SimpleNamespace(nova_rt_identity=None)
    context, nonce = _send(_caller(keys_dir, 'host-b'))
    with caplog.at_level('DEBUG', logger='nova_rt.identity.guard'):
        assert guard.check(unsigned, REPORT, ARGS).refusal is None
        verdict = guard.check(context, REPORT, ARGS)
    assert verdict.refusal is None
    # Still answered signed, for a caller that enforces on its side.
    assert _caller(keys_dir, 'host-b').open_reply(
        'nova-rt-placement', REPORT.name, nonce, verdict.seal(1)) == 1
    levels = {r.levelname for r in caplog.records}
    assert levels == {'DEBUG', 'WARNING'}       # unsigned: DEBUG; host-b: WARNING
    assert 'accepted only because [identity] enforce is off' in caplog.text
    # A caller without enforce takes an unsigned answer (an old placement).
    lax = _caller(keys_dir, 'host-a', enforce=False)
    assert lax.open_reply('nova-rt-placement', REPORT.name, nonce, 7) == 7


def test_replay_and_time_window(keys_dir):
    now = [1_765_100_000.0]
    guard = _guard(keys_dir, clock=lambda: now[0])
    host_a = caller_mod.Caller(
        own_key=keys.OwnKey(keys.key_path(keys_dir, 'host-a'), 'host-a'),
        keyring=None, enforce=True, placement_principal='nova-rt-placement',
        clock=lambda: now[0])
    context, _ = _send(host_a)
    assert guard.check(context, REPORT, ARGS).refusal is None
    assert 'replayed' in str(guard.check(context, REPORT, ARGS).refusal)
    context, _ = _send(host_a)
    now[0] += 61
    assert 'replay window' in str(guard.check(context, REPORT, ARGS).refusal)


def test_rotation_keeps_two_keys_valid_then_one(keys_dir):
    guard = _guard(keys_dir)
    old = scheme.SigningKey('host-a', keys.load_signing_key(
        keys.key_path(keys_dir, 'host-a'), 'host-a').private_key)
    _, _, valid = keys.rotate_key(keys_dir, 'host-a')
    assert len(valid) == 2 and valid[1] == old.key_id
    new = keys.load_signing_key(keys.key_path(keys_dir, 'host-a'), 'host-a')
    assert new.key_id == valid[0]
    guard.keyring = keys.Keyring(keys_dir)      # (a fresh read, not in 1 s)

    def check(key):
        stamp = scheme.stamp_request(key, topic=rpc.PLACEMENT_TOPIC,
                                     server=None, method=REPORT.name,
                                     args=ARGS, ts=int(time.time() * 1000))
        return guard.check(types.SimpleNamespace(nova_rt_identity=stamp),
                           REPORT, ARGS).refusal

    assert check(old) is None and check(new) is None
    keys.retire_old_keys(keys_dir, 'host-a')
    guard.keyring = keys.Keyring(keys_dir)
    assert check(new) is None
    assert 'not one of this principal' in str(check(old))


def test_key_files(keys_dir, tmp_path):
    path = keys.key_path(keys_dir, 'host-a')
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not keys.readable_by_others(path)
    with pytest.raises(keys.KeyFileError, match='use rotate-key'):
        keys.create_key(keys_dir, 'host-a')
    with pytest.raises(keys.KeyFileError, match='not a valid principal'):
        keys.key_path(keys_dir, '../etc/x')
    bad = tmp_path / 'bad.pub'
    bad.write_text('ed25519 not-base64!\n')
    with pytest.raises(keys.KeyFileError, match='bad.pub:1'):
        keys.parse_public_keys(bad.read_text(), str(bad))
    not_pem = tmp_path / 'x.key'
    not_pem.write_text('hello')
    with pytest.raises(keys.KeyFileError, match='not an unencrypted PEM'):
        keys.load_signing_key(str(not_pem), 'x')


@pytest.mark.parametrize('service, settings, expected', [
    ('compute', {'principal': 'other'},
     "[identity] principal: nova-rt-compute signs as its [DEFAULT] host "
     "'host-a'"),
    ('placement', {'principal': 'host-a'},
     "[identity] principal: nova-rt-placement signs as 'host-a'"),
    ('cli', {'principal': 'a/b'},
     "[identity] principal: 'a/b' is not a valid principal name"),
    ('cli', {'operators': ['ok', 'not ok']}, "[identity] operators: 'not ok'"),
    ('compute', {'enforce': True}, "[identity] key_file: "),
    ('placement', {'enforce': True, 'keys_dir': '/nonexistent'},
     'identity create-key nova-rt-placement'),
])
def test_what_cannot_work_stops_the_start_naming_the_option(
        tmp_path, service, settings, expected):
    from oslo_config import cfg

    from nova_rt.conf import identity as identity_opts
    from nova_rt.identity import config as identity_config
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt('host', default='host-a'))
    # A group of its own: the module's OptGroup would carry overrides over.
    conf.register_opts(identity_opts.identity_opts, group='identity')
    conf([], default_config_files=[])
    conf.set_override('keys_dir', str(tmp_path), group='identity')
    for name, value in settings.items():
        conf.set_override(name, value, group='identity')
    with pytest.raises(exception.ConfigError) as info:
        identity_config.check(conf, service)
    assert expected in str(info.value)
    assert '\n' not in str(info.value)
