"""Query values as Placement parses them."""

import types

import pytest
from webob.multidict import MultiDict

from nova_rt.placement.rest import errors
from nova_rt.placement.rest import microversion as mv
from nova_rt.placement.rest import params

A = '11111111-1111-4111-8111-111111111111'
B = '22222222-2222-4222-8222-222222222222'


def _req(pairs, version=(1, 39)):
    return types.SimpleNamespace(params=MultiDict(pairs),
                                 microversion=mv.Version(*version))


def test_resources():
    assert params.resources('VCPU:2,MEMORY_MB:1024') == {
        'VCPU': 2, 'MEMORY_MB': 1024}
    for bad in ('', 'VCPU', 'VCPU:x', 'VCPU:0', 'VCPU:1:2', 'VCPU:-1'):
        with pytest.raises(errors.HTTPError) as caught:
            params.resources(bad)
        assert caught.value.status == 400


def test_required_any_all_forbidden():
    all_of, forbidden = params.required(_req([
        ('required', 'A,!B'), ('required', 'in:C,D')]))
    assert all_of == [{'A'}, {'C', 'D'}] and forbidden == {'B'}
    # Before 1.39 only the last value counts, and in: is refused.
    all_of, _ = params.required(_req([('required', 'A'), ('required', 'B')],
                                     (1, 38)))
    assert all_of == [{'B'}]
    for pairs, version in (([('required', 'in:A')], (1, 38)),
                           ([('required', 'A,!B')], (1, 21)),
                           ([('required', 'A,,B')], (1, 39)),
                           ([('required', 'in:A,!B')], (1, 39)),
                           ([('required', '!')], (1, 39))):
        with pytest.raises(errors.HTTPError):
            params.required(_req(pairs, version))


def test_member_of():
    all_of, forbidden = params.member_of(_req([
        ('member_of', f'in:{A},{B}'), ('member_of', f'!{B}')]))
    assert all_of == [{A, B}] and forbidden == {B}
    for pairs, version in (([('member_of', A), ('member_of', B)], (1, 23)),
                           ([('member_of', f'!{A}')], (1, 31)),
                           ([('member_of', f'{A},{B}')], (1, 39)),
                           ([('member_of', 'in:nope')], (1, 39))):
        with pytest.raises(errors.HTTPError):
            params.member_of(_req(pairs, version))


def test_in_tree():
    assert params.in_tree(f' {A} ') == A
    with pytest.raises(errors.HTTPError):
        params.in_tree('nope')
