"""The edge's checks: bounded before typed, strict types, short messages."""

import math
import uuid

import pytest

from nova_rt import exception
from nova_rt import validation


def _reason(func, *args) -> str:
    with pytest.raises(exception.InvalidInput) as info:
        func(*args)
    return str(info.value)


def _bounds(arguments, budget=validation.CALL) -> str:
    return _reason(validation.check_bounds, arguments, budget)


# -- bounds ---------------------------------------------------------------------

def test_plain_json_within_bounds_passes():
    validation.check_bounds({'a': [1, 2.5, 'x', None, True, {'b': {}}],
                             'c': {'d': [[]]}}, validation.CALL)


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_numbers_json_cannot_carry_are_refused(value):
    assert _bounds({'instance': {'flavor': {'vcpus': value}}}).startswith(
        'Invalid input: instance.flavor.vcpus: ')


@pytest.mark.parametrize('value', [2 ** 63, -2 ** 63 - 1, 10 ** 4000])
def test_integers_beyond_64_bits_are_refused(value):
    assert 'out of range' in _bounds({'x': [0, value]})


def test_depth_is_bounded_without_recursion():
    deep = current = {}
    for _ in range(100_000):
        current['k'] = current = {}
    reason = _bounds({'instance': deep})
    assert 'nested deeper than 16 levels' in reason
    assert len(reason) < 300
    # The deepest payload of the contract, with room to spare.
    nested = {'a': {'b': {'c': {'d': {'e': {'f': 1}}}}}}
    validation.check_bounds({'x': nested}, validation.CALL)


class _Untouchable(list):
    """A list whose items must not be looked at: only its length may be."""

    def __iter__(self):
        raise AssertionError('an item was looked at')

    __getitem__ = __iter__


def test_the_number_of_values_is_bounded_before_they_are_looked_at():
    huge = _Untouchable([0] * 5_000_000)
    reason = _bounds({'addresses': huge})
    assert reason == ('Invalid input: addresses: the call holds more than '
                      '20000 values')


def test_the_characters_of_a_call_are_bounded():
    reason = _bounds({'a': ['x' * 60000] * 20})
    assert 'the call holds more than 1048576 characters' in reason


def test_strings_and_keys_are_bounded():
    assert 'is too long (at most 65535 characters)' in _bounds(
        {'instance': {'user_id': 'u' * 120_000}})
    assert "key 'kkkk" in _bounds({'extra_specs': {'k' * 256: 'v'}})


def test_only_json_values_pass():
    assert 'set is not a JSON value' in _bounds({'x': {1, 2}})
    assert 'key 1 is not a string' in _bounds({'x': {1: 2}})


def test_a_report_of_a_large_host_is_within_its_budget():
    root = str(uuid.uuid4())
    children = [str(uuid.uuid4()) for _ in range(500)]
    allocations = {str(uuid.uuid4()): {
        'project_id': 'p' * 32, 'user_id': 'u' * 32,
        'resources': {root: {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20},
                      children[i % 500]: {'CUSTOM_PCI_8086_10ED': 1}}}
        for i in range(20_000)}
    validation.check_bounds({'host': 'h', 'allocations': allocations},
                            validation.REPORT)


# -- messages -----------------------------------------------------------------

def test_short_cuts_strings_and_containers():
    assert len(validation.short('u' * 120_000)) < 100
    assert validation.short('abc') == "'abc'"
    assert validation.short(list(range(100))) == '[0, 1, 2, 3, ...]'


def test_field_names_paths_as_they_read():
    assert validation.field(['providers', 0, 'inventories', 'VCPU']) == \
        'providers[0].inventories.VCPU'
    assert validation.field([]) == 'arguments'
    assert len(validation.field(['k' * 10_000])) < 70


# -- schemas ------------------------------------------------------------------

INTEGER = validation.Schema({'type': 'integer', 'minimum': 0})


@pytest.mark.parametrize('value', [1.0, True, '1', None])
def test_integers_are_ints_and_nothing_else(value):
    # fastjsonschema's draft 6+ check lets 1.0 be an integer: held to the
    # strict check here, so that an upgrade of it cannot loosen the edge.
    assert 'is not of type' in _reason(INTEGER.validate, value, ['n'])


def test_numbers_are_not_bools():
    number = validation.Schema({'type': 'number'})
    number.validate(1.5)
    number.validate(2)
    assert 'is not of type' in _reason(number.validate, False, ['r'])


def test_a_pattern_is_named_by_its_description():
    schema = validation.Schema({'type': 'string', 'maxLength': 36,
                                'pattern': '^[0-9a-f-]{36}$',
                                'description': 'a uuid'})
    assert _reason(schema.validate, 'nope', ['uuid']) == \
        "Invalid input: uuid: 'nope' is not a uuid"


def test_messages_never_carry_the_whole_value():
    schema = validation.Schema({'type': 'string', 'maxLength': 255})
    reason = _reason(schema.validate, 'u' * 60_000, ['instance', 'user_id'])
    assert reason.startswith('Invalid input: instance.user_id: ')
    assert 'is too long (at most 255 characters)' in reason
    assert len(reason) < 200


def test_a_bad_item_of_a_big_report_is_worded_at_once(monkeypatch):
    consumer = {'type': 'object', 'required': ['resources'],
                'additionalProperties': False,
                'properties': {'resources': {
                    'type': 'object', 'maxProperties': 10,
                    'additionalProperties': {'type': 'integer',
                                             'minimum': 0}}}}
    schema = validation.Schema({'type': 'object', 'maxProperties': 50_000,
                                'additionalProperties': consumer})
    report = {str(i): {'resources': {'VCPU': 1}} for i in range(20_000)}
    report['19999']['resources']['VCPU'] = -1
    worded = []
    iter_errors = validation._Wording.iter_errors

    def spy(self, instance, *args, **kwargs):
        worded.append(instance)
        return iter_errors(self, instance, *args, **kwargs)

    monkeypatch.setattr(validation._Wording, 'iter_errors', spy)
    reason = _reason(schema.validate, report, ['allocations'])
    # jsonschema over the whole report takes seconds; it is only given the
    # part fastjsonschema points at.
    assert worded and all(len(w) < 2 for w in worded if isinstance(w, dict))
    assert reason == ('Invalid input: allocations.19999.resources.VCPU: -1 '
                      'is less than the minimum of 0')


@pytest.mark.parametrize('value, expected', [
    ({}, 'n.a: is required'),
    ({'a': 1, 'zz': 2}, 'n.zz: is not a known field'),
    ({'a': 'x'}, "n.a: 'x' is not of type 'integer'"),
    ({'a': 9}, 'n.a: 9 is greater than the maximum of 5'),
])
def test_errors_name_the_field(value, expected):
    schema = validation.Schema({
        'type': 'object', 'required': ['a'], 'additionalProperties': False,
        'properties': {'a': {'type': 'integer', 'maximum': 5}}})
    assert _reason(schema.validate, value, ['n']) == f'Invalid input: {expected}'


def test_a_bad_key_is_named_as_a_key():
    schema = validation.Schema({
        'type': 'object', 'maxProperties': 5,
        'propertyNames': {'maxLength': 36, 'pattern': '^[a-f0-9-]+$',
                          'description': 'a lower-case uuid'}})
    assert _reason(schema.validate, {'X': 1}, ['allocations']) == \
        "Invalid input: allocations: key 'X' is not a lower-case uuid"
