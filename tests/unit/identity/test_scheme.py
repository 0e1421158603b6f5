"""The signature scheme without RPC: a stamped request is accepted once,
and any change to what it covers is refused."""

import copy

import hypothesis
from hypothesis import strategies as st
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from nova_rt.identity import scheme

KEY_A = scheme.SigningKey('host-a', ed25519.Ed25519PrivateKey.generate())
KEY_B = scheme.SigningKey('host-b', ed25519.Ed25519PrivateKey.generate())
KEYS = {'host-a': {KEY_A.key_id: KEY_A.verify_key},
        'host-b': {KEY_B.key_id: KEY_B.verify_key}}
NOW = 1_765_100_000_000
ARGS = {'host': 'host-a', 'root_uuid': '6d0b3b56-3f6e-4c3e-9a64-1d1a7e1b5f0e',
        'generation': 3, 'full': True,
        'allocations': {'c1': {'project_id': 'p', 'user_id': 'u',
                               'resources': {'r': {'VCPU': 2}}}},
        'ratio': 1.5}


def _check(stamp, topic='nova-rt-placement', server=None,
           method='report_allocations', args=ARGS, keys=KEYS, now=NOW):
    """What a receiver does, in the scheme's terms."""
    parsed = scheme.read_stamp(stamp)
    scheme.check_window(parsed.ts, now, 60)
    scheme.verify(keys.get(parsed.principal, {}), parsed.key_id, parsed.sig,
                  lambda: scheme.request_bytes(
                      topic=topic, server=server, method=method, args=args,
                      principal=parsed.principal, key_id=parsed.key_id,
                      ts=parsed.ts, nonce=parsed.nonce))
    return parsed


def _stamp(key=KEY_A, args=ARGS, method='report_allocations', ts=NOW):
    return scheme.stamp_request(key, topic='nova-rt-placement', server=None,
                                method=method, args=args, ts=ts)


def test_a_genuine_stamp_is_accepted():
    assert _check(_stamp()).principal == 'host-a'


def test_host_b_signing_as_host_a_is_refused():
    stamp = _stamp(key=KEY_B)
    stamp['principal'] = 'host-a'
    with pytest.raises(scheme.Refused, match='not one of this principal'):
        _check(stamp)
    # ... and with host-a's key id copied too, the signature fails.
    stamp['key_id'] = KEY_A.key_id
    with pytest.raises(scheme.Refused, match='does not match'):
        _check(stamp)


def test_unknown_principal_and_unsigned_are_refused():
    with pytest.raises(scheme.Refused, match='no key is known'):
        _check(_stamp(), keys={})
    with pytest.raises(scheme.Refused, match='not signed'):
        _check(None)


@pytest.mark.parametrize('field, value', [
    ('v', 2), ('principal', '../etc/passwd'), ('key_id', 'zz'),
    ('ts', -1), ('ts', True), ('ts', 1.5), ('nonce', 'A' * 32),
    ('sig', 'x' * 88), ('sig', None)])
def test_malformed_stamps_are_refused(field, value):
    stamp = _stamp()
    stamp[field] = value
    with pytest.raises(scheme.Refused):
        _check(stamp)


@pytest.mark.parametrize('skew_ms', [-61_000, 61_000])
def test_outside_the_window_is_refused(skew_ms):
    with pytest.raises(scheme.Refused, match='replay window'):
        _check(_stamp(ts=NOW + skew_ms))


def test_the_nonce_cache_accepts_each_nonce_once_and_forgets_expired_ones():
    cache = scheme.NonceCache()
    assert cache.add('a' * 32, NOW + 60_000, NOW)
    assert not cache.add('a' * 32, NOW + 60_000, NOW + 1)
    assert cache.add('b' * 32, NOW + 120_000, NOW + 61_000)
    assert len(cache) == 1          # the first expired and was dropped
    small = scheme.NonceCache(limit=2)
    for i in range(5):
        assert small.add(f'{i:032x}', NOW + 60_000, NOW)
    assert len(small) <= 2


def test_policy():
    policy = scheme.Policy.of(operators=['admin'], conductors=['conductor'])
    policy.check(scheme.OWN_HOST, 'host-a', {'host': 'host-a'})
    policy.check(scheme.OWN_HOST, 'admin', {'host': 'host-a'})
    policy.check(scheme.CONDUCTOR, 'conductor', {})
    policy.check(scheme.CONDUCTOR, 'admin', {})
    policy.check(scheme.ANYONE, 'host-b', {})
    for who, principal in ((scheme.OWN_HOST, 'host-b'),
                           (scheme.OPERATOR, 'host-a'),
                           (scheme.OPERATOR, 'conductor'),
                           (scheme.CONDUCTOR, 'host-a')):
        with pytest.raises(scheme.Refused):
            policy.check(who, principal, {'host': 'host-a'})


def _replace_somewhere(value, data):
    """``value`` with one leaf or key changed, chosen by hypothesis."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        changed = dict(value)
        if data.draw(st.booleans()):
            changed[key] = _replace_somewhere(value[key], data)
        else:
            changed[key + data.draw(st.text(min_size=1, max_size=3))] = \
                changed.pop(key)
        return changed
    if isinstance(value, list) and value:
        i = data.draw(st.integers(0, len(value) - 1))
        return value[:i] + [_replace_somewhere(value[i], data)] + value[i + 1:]
    other = data.draw(st.none() | st.booleans() | st.integers()
                      | st.floats(allow_nan=False, allow_infinity=False)
                      | st.text(max_size=5))
    hypothesis.assume(other != value or type(other) is not type(value))
    hypothesis.assume(not (other == value and isinstance(other, (int, float))
                           and isinstance(value, (int, float))
                           and not isinstance(other, bool)
                           and not isinstance(value, bool)))
    return other


@hypothesis.given(st.data())
@hypothesis.settings(max_examples=300)
def test_any_change_to_method_arguments_principal_or_time_is_refused(data):
    stamp = _stamp()
    what = data.draw(st.sampled_from(
        ['method', 'args', 'principal', 'ts', 'nonce', 'topic', 'server']))
    kwargs = {}
    if what == 'method':
        kwargs['method'] = data.draw(st.sampled_from(
            ['report_provider_tree', 'heartbeat', 'set_traits',
             'report_allocations_']))
    elif what == 'args':
        kwargs['args'] = _replace_somewhere(copy.deepcopy(ARGS), data)
    elif what == 'topic':
        kwargs['topic'] = 'nova-rt-compute'
    elif what == 'server':
        kwargs['server'] = data.draw(st.sampled_from(['host-a', '']))
    elif what == 'principal':
        stamp['principal'] = 'host-b'
        stamp['key_id'] = data.draw(st.sampled_from([KEY_A.key_id,
                                                     KEY_B.key_id]))
    elif what == 'ts':
        stamp['ts'] += data.draw(st.integers(-59_000, 59_000).filter(bool))
    else:
        stamp['nonce'] = data.draw(st.text('0123456789abcdef', min_size=32,
                                           max_size=32))
        hypothesis.assume(stamp['nonce'] != _stamp()['nonce'])
    with pytest.raises(scheme.Refused):
        _check(stamp, **kwargs)


def test_replies_and_errors_are_bound_to_their_request():
    seal = scheme.seal(KEY_A, lambda principal, kid: scheme.reply_bytes(
        method='instance_claim', request_nonce='1' * 32, principal=principal,
        key_id=kid, result={'host': 'host-a'}))
    principal, kid, sig = scheme.read_seal(seal)
    public = KEYS['host-a']
    scheme.verify(public, kid, sig, lambda: scheme.reply_bytes(
        method='instance_claim', request_nonce='1' * 32, principal=principal,
        key_id=kid, result={'host': 'host-a'}))
    for nonce, result in (('2' * 32, {'host': 'host-a'}),
                          ('1' * 32, {'host': 'host-b'})):
        with pytest.raises(scheme.Refused):
            scheme.verify(public, kid, sig, lambda: scheme.reply_bytes(
                method='instance_claim', request_nonce=nonce,
                principal=principal, key_id=kid, result=result))
    with pytest.raises(scheme.Refused):      # a reply is not an error
        scheme.verify(public, kid, sig, lambda: scheme.error_bytes(
            method='instance_claim', request_nonce='1' * 32,
            principal=principal, key_id=kid, error_class='X', message='m'))
