"""RFC 8785 canonical JSON: the examples of the RFC, and stability under a
JSON round trip whichever way the numbers were written."""

import json
import math

import hypothesis
from hypothesis import strategies as st
import pytest

from nova_rt.identity import canonical


def test_rfc8785_example_sorts_keys_and_writes_numbers_as_ecmascript():
    # RFC 8785, section 3.2.3 (numbers) and 3.2.2 (strings).
    value = {'numbers': [333333333.33333329, 1E30, 4.50, 2e-3,
                         0.000000000000000000000000001],
             'string': '\u20ac$\u000f\u000aA\'\u0042\u0022\u005c\\"/',
             'literals': [None, True, False]}
    assert canonical.dumps(value) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,'
        '4.5,0.002,1e-27],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode('utf-8')


def test_keys_sort_by_utf16_code_units():
    # U+10000 is D800 DC00 in UTF-16: before U+E000, after it by code point.
    value = {'\ue000': 1, '\U00010000': 2, 'a': 3}
    assert canonical.dumps(value).decode() == \
        '{"a":3,"\U00010000":2,"\ue000":1}'


@pytest.mark.parametrize('number, text', [
    (0.0, '0'), (-0.0, '0'), (4.0, '4'), (-4.0, '-4'), (1.5, '1.5'),
    (1e21, '1e+21'), (1e20, '100000000000000000000'), (1e-6, '0.000001'),
    (1e-7, '1e-7'), (123456789.125, '123456789.125'), (5e-324, '5e-324'),
    (1.7976931348623157e308, '1.7976931348623157e+308'), (0.1, '0.1'),
    (-1.25e-10, '-1.25e-10')])
def test_numbers_as_ecmascript_writes_them(number, text):
    assert canonical.number(number) == text


@pytest.mark.parametrize('value', [math.nan, math.inf, {object(): 'x'}, object(),
                                   '\ud800'])
def test_what_has_no_json_form_is_refused(value):
    with pytest.raises(ValueError):
        canonical.dumps({'v': value})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@hypothesis.given(json_values)
def test_a_json_round_trip_keeps_the_canonical_form(value):
    # What a receiver decodes has the canonical form the sender signed.
    again = json.loads(json.dumps(value))
    assert canonical.dumps(again) == canonical.dumps(value)


@hypothesis.given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_reads_back_as_the_same_float(number):
    assert float(canonical.number(number)) == number


@hypothesis.given(json_values)
def test_the_fast_path_writes_what_the_walk_writes(value):
    # dumps() takes Python's C encoder when it can; the walk is RFC 8785.
    walked = []
    canonical._write(value, walked)
    assert canonical.dumps(value) == ''.join(walked).encode('utf-8')
