"""Fuzzing the RPC APIs from outside, as any oslo.messaging client could.

For every method of a table (``nova_rt.compute.methods``,
``nova_rt.placement.methods``), hypothesis mutates valid calls: an argument
missing, an unknown one (``context`` and ``self`` among them), a value
replaced anywhere in the payload by a nasty one (wrong types, huge and
negative numbers, NaN and infinity, very long strings, huge lists and
mappings, deep nesting, wrong uuids, odd digits in the extra specs the
tracker parses), keys added or removed at any depth, a wrong request
context, or nothing at all.  Each call goes through a real RabbitMQ to a
real daemon, and its outcome is judged:

- an answer, or a refusal whose class the contract lists, is expected; any
  other error (a remote ``TypeError``, ``KeyError``, ``ValueError``,
  ``AttributeError``, a timeout ...) is recorded as unexpected;
- after a refusal, or any call of a read-only method, the service's state,
  read through its public methods (timestamps left out), must be what it
  was before the call;
- the daemon must still answer: the state read after each call is that.

``tests/functional/test_fuzz_rpc.py`` runs a few hundred payloads in the
default suite; ``tools/fuzz_rpc.py`` runs thousands per method.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import reprlib
import time
import uuid
from typing import Callable

import hypothesis
import oslo_messaging as messaging
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from nova_rt import exception
from nova_rt.compute import reporter

#: What starts a traceback in a log (the word alone may be a fuzzed name).
TRACEBACK = 'Traceback (most recent call last)'
#: The refusals the contract names (``shared/spec/rpc-api.md``, Errors).
CONTRACT_ERRORS = frozenset(
    [cls.__name__ for cls in exception.RPC_ERRORS] + ['NotAuthorized'])

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlist = _REPR.maxdict = 6
_REPR.maxlevel = 4


# -- nasty values -------------------------------------------------------------

def _nest(depth: int, kind: str):
    value: object = 1
    for _ in range(depth):
        value = [value] if kind == 'list' else {'k': value}
    return value


def _wrong_uuids():
    good = str(uuid.UUID(int=0x6F0C8F7E1C2D4B9A8F6E0A1B2C3D4E5F))
    return st.sampled_from([
        good.upper(), good.replace('-', ''), good + '0', good[:-1],
        good + '\n', ' ' + good, good.replace('-', '_'), '', '-' * 36,
        'g' * 8 + good[8:], '{' + good + '}', good.replace('6', '\u0666'),
        '00000000-0000-0000-0000-000000000000'])


#: A number the tracker's parsers may read with isdigit(): '²' is a digit to
#: str.isdigit and not to int().
_ODD_DIGITS = st.sampled_from(['\u00b2', '\u0663', '\uff11', '1' * 5000, '-1',
                               '0', ' 2 ', '1e3', '0x10', '1_0', '99999999999'])

NASTY = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, -1, 1, 2 ** 31 - 1, 2 ** 31, -2 ** 31, 2 ** 63 - 1,
                     2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30, 10 ** 100]),
    st.integers(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1.0, 0.5, -0.0, 1e308,
                     5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    _ODD_DIGITS,
    # Long strings, some of the shapes that made the log's masking slow.
    st.builds(lambda unit, n: unit * n,
              st.sampled_from(['u', 'ab:', 'a://b:c@', 'password=', ' ',
                               '\x00', '\u2603', '"', '%s', '{}']),
              st.integers(256, 150_000)),
    _wrong_uuids(),
    st.lists(st.integers(), max_size=5),
    st.builds(lambda n, v: [v] * n, st.integers(1000, 60_000),
              st.sampled_from([0, 'x', None, {}, []])),
    st.dictionaries(st.text(max_size=10), st.integers(), max_size=5),
    st.builds(lambda n: {f'k{i}': i for i in range(n)},
              st.integers(1000, 30_000)),
    st.builds(lambda n: {'k' * n: 1}, st.integers(256, 100_000)),
    st.builds(_nest, st.integers(14, 400), st.sampled_from(['list', 'dict'])),
)

#: Names of unknown arguments and keys.
_NAMES = st.one_of(
    st.sampled_from(['context', 'self', 'force', '__class__', '_serve',
                     'kwargs', '', ' ', 'instance', 'uuid', 'host']),
    st.text(max_size=20),
    st.builds(lambda n: 'a' * n, st.integers(256, 20_000)))

#: What a request context may hold, right or wrong.  Not a key "self":
#: oslo.messaging's driver builds its RpcContext with cls(**values) before
#: any code of ours runs, fails with a TypeError, drops the message and
#: reconnects (the caller times out): a bug of oslo.messaging 18.3's
#: amqp.unpack_context, not of the contract.
_CONTEXTS = st.one_of(
    st.just({'request_id': 'req-fuzz'}),
    st.dictionaries((st.sampled_from([
        'request_id', 'global_request_id', 'user_id', 'project_id',
        'is_admin', 'read_only', 'roles', 'auth_token', 'user', 'project'])
        | _NAMES).filter(lambda key: key != 'self'), NASTY, max_size=4))


# -- mutations ----------------------------------------------------------------

def _paths(value, path=()):
    """Every (path, container) inside ``value``, the arguments included."""
    found = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                found += _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                found += _paths(item, path + (index,))
    return found


@st.composite
def mutated(draw, valid: st.SearchStrategy, required: tuple,
            parsed: dict) -> tuple:
    """``(kind, context, arguments)``: a valid call, mutated (or not).

    ``parsed`` maps a dotted path inside the payload (``instance.flavor.
    extra_specs``) to keys whose values the daemon parses: those get odd
    numbers and long strings more often than chance would give them.
    """
    # A copy: sampled_from and just hand out the same objects every time.
    arguments = copy.deepcopy(draw(valid))
    context = {'request_id': 'req-fuzz-' + uuid.uuid4().hex[:8]}
    kinds = ['valid', 'missing', 'unknown', 'replace', 'replace-inner',
             'drop-inner', 'add-inner', 'parsed', 'context', 'random']
    kind = draw(st.sampled_from(kinds))
    containers = _paths(arguments)
    if kind == 'missing' and required:
        del arguments[draw(st.sampled_from(sorted(required)))]
    elif kind == 'unknown':
        arguments[draw(_NAMES)] = draw(NASTY)
    elif kind == 'replace' and arguments:
        arguments[draw(st.sampled_from(sorted(arguments)))] = draw(NASTY)
    elif kind in ('replace-inner', 'drop-inner', 'add-inner'):
        path, container = draw(st.sampled_from(containers))
        if isinstance(container, dict):
            keys = sorted(container, key=str)
            if kind == 'add-inner' or not keys:
                container[draw(_NAMES)] = draw(NASTY)
            elif kind == 'drop-inner':
                del container[draw(st.sampled_from(keys))]
            else:
                container[draw(st.sampled_from(keys))] = draw(NASTY)
        elif container:
            index = draw(st.integers(0, len(container) - 1))
            if kind == 'drop-inner':
                del container[index]
            else:
                container[index] = draw(NASTY)
        else:
            container.append(draw(NASTY))
    elif kind == 'parsed' and parsed:
        where = draw(st.sampled_from(sorted(parsed)))
        target = _at(arguments, where)
        if isinstance(target, dict):
            key = draw(st.sampled_from(parsed[where]))
            target[key] = draw(_ODD_DIGITS | st.sampled_from(
                ['a:' + v for v in ('\u00b2', '0', '-1', '1' * 5000)] +
                ['1:2', ':', ',', 'a:1,', 'dedicated', '2048', 'large',
                 '1GB', '-2048', '1' * 400, 'any', 'required']) | NASTY)
    elif kind == 'context':
        context = draw(_CONTEXTS)
    elif kind == 'random':
        arguments = draw(st.dictionaries(_NAMES, NASTY, max_size=3))
    return kind, context, arguments


def _at(arguments: dict, dotted: str):
    value = arguments
    for part in dotted.split('.'):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# -- running --------------------------------------------------------------------

@dataclasses.dataclass
class Finding:
    method: str
    what: str          # 'unexpected error', 'state changed', 'daemon gone'
    detail: str
    payload: str


@dataclasses.dataclass
class Report:
    counts: dict = dataclasses.field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    findings: list = dataclasses.field(default_factory=list)
    seconds: dict = dataclasses.field(default_factory=dict)

    def sent(self, method=None) -> int:
        methods = [method] if method else list(self.counts)
        return sum(sum(self.counts[m].values()) for m in methods)

    def lines(self) -> list:
        out = [f'{"method":28} {"sent":>6} {"ok":>6}  refusals by class, '
               'unexpected']
        for method, counts in self.counts.items():
            refusals = ', '.join(f'{name} {n}' for name, n in sorted(
                counts.items()) if name not in ('ok', 'UNEXPECTED'))
            out.append(f'{method:28} {sum(counts.values()):6} '
                       f'{counts.get("ok", 0):6}  {refusals or "-"}; '
                       f'unexpected {counts.get("UNEXPECTED", 0)} '
                       f'({self.seconds.get(method, 0):.1f} s)')
        out.append(f'{len(self.findings)} findings in {self.sent()} payloads, '
                   f'{sum(self.seconds.values()):.1f} s')
        for finding in self.findings[:50]:
            out.append(f'  {finding.method}: {finding.what}: '
                       f'{finding.detail[:300]}\n      payload {finding.payload}')
        return out


@dataclasses.dataclass
class Target:
    """What is fuzzed: a way to call, to read the state, to see it alive.

    ``seeds[name]``: a callable returning the hypothesis strategy of valid
    arguments of that method (it may create what they refer to first).
    """
    table: object
    call: Callable          # (method, context, arguments) -> result
    state: Callable         # () -> what must not change on a refusal
    alive: Callable         # () -> bool
    seeds: dict
    parsed: dict = dataclasses.field(default_factory=dict)


def error_name(error: BaseException) -> str:
    return reporter.error_name(error)


def fuzz(target: Target, per_method: int, report: Report | None = None,
         methods=None, derandomize: bool = False, seed=None) -> Report:
    """Send ``per_method`` payloads to every method (or those named);
    ``derandomize`` or ``seed`` make the run repeatable."""
    report = report or Report()
    for method in target.table:
        if methods and method.name not in methods:
            continue
        started = time.monotonic()
        _fuzz_one(target, method, per_method, report, derandomize, seed)
        report.seconds[method.name] = time.monotonic() - started
    return report


def _fuzz_one(target, method, per_method, report, derandomize, seed):
    name = method.name
    required = tuple(a.name for a in method.arguments if a.required)
    valid = target.seeds[name]()
    before = [target.state()]

    @settings(max_examples=per_method, database=None, deadline=None,
              derandomize=derandomize, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(mutated(valid, required, target.parsed.get(name, {})))
    def one(case):
        kind, context, arguments = case
        payload = _REPR.repr(arguments)
        if kind == 'context':
            payload += f' with context {_REPR.repr(context)}'
        try:
            target.call(name, context, arguments)
            outcome = 'ok'
        except messaging.MessagingTimeout as error:
            outcome = 'UNEXPECTED'
            report.findings.append(Finding(name, 'timeout', repr(error), payload))
        except Exception as error:   # judged by name: that is the contract
            outcome = error_name(error)
            if outcome not in CONTRACT_ERRORS:
                report.findings.append(Finding(
                    name, f'unexpected error ({kind})',
                    f'{outcome}: {error}', payload))
                outcome = 'UNEXPECTED'
        report.counts[name][outcome] += 1
        if not target.alive():
            report.findings.append(Finding(name, 'daemon gone', kind, payload))
            raise SystemExit('the daemon is gone')
        after = target.state()
        if outcome not in ('ok', 'UNEXPECTED') and after != before[0]:
            report.findings.append(Finding(
                name, f'state changed by a refused call ({outcome}, {kind})',
                _difference(before[0], after), payload))
        elif method.read_only and after != before[0]:
            report.findings.append(Finding(
                name, f'state changed by a read ({kind})',
                _difference(before[0], after), payload))
        before[0] = after

    if seed is not None:
        one = hypothesis.seed(seed)(one)
    one()


def fuzz_and_check(made: tuple, per_method: int, log_text: Callable) -> None:
    """What a fuzzing test asserts, for ``made = (target, transport)``:
    ``per_method`` repeatable payloads per method, no finding, the daemon
    alive and its log (``log_text()``) without a traceback."""
    target, transport = made
    try:
        report = fuzz(target, per_method, derandomize=True)
    finally:
        transport.cleanup()
    assert report.findings == [], '\n'.join(report.lines())
    assert report.sent() >= per_method * len(list(target.table))
    assert target.alive()
    log = log_text()
    assert TRACEBACK not in log
    assert 'failed unexpectedly' not in log


def _difference(old, new) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return '; '.join(f'{k}: {_REPR.repr(old.get(k))} -> '
                         f'{_REPR.repr(new.get(k))}' for k in keys[:5])
    return f'{_REPR.repr(old)} -> {_REPR.repr(new)}'
