"""Parsing of GET /allocation_candidates query strings, per microversion,
with Placement's error texts and codes."""

import pytest

from nova_rt.placement import candidate_request as creq

AGG1 = '9323b2b1-82c9-4e91-bdff-e95e808ef954'
AGG2 = '8592a199-7d73-4465-8df6-ab00a6243c82'
RP1 = 'b9fc9abb-afc2-44d7-9722-19afc977446a'


def parse(query, version=(1, 39)):
    return creq.parse(query, version)


def bad(query, version=(1, 39)):
    with pytest.raises(creq.BadQuery) as info:
        creq.parse(query, version)
    return info.value


def test_full_request_parsed_into_groups():
    req = parse([
        ('resources', 'VCPU:2,MEMORY_MB:1024'),
        ('required', 'HW_CPU_X86_VMX,!CUSTOM_OLD'),
        ('required', 'in:CUSTOM_A,CUSTOM_B'),
        ('member_of', AGG1), ('member_of', f'in:{AGG1},{AGG2}'),
        ('member_of', f'!{AGG2}'), ('in_tree', RP1),
        ('resources_NET', 'SRIOV_NET_VF:1'), ('required_NET', 'CUSTOM_P'),
        ('resources1', 'VCPU:1'), ('group_policy', 'isolate'),
        ('limit', '5'), ('root_required', 'HW_CPU_X86_AVX,!CUSTOM_NO'),
        ('same_subtree', '_NET, 1')])
    assert list(req.groups) == ['', '_NET', '1']
    g = req.groups['']
    assert not g.use_same_provider
    assert g.resources == {'VCPU': 2, 'MEMORY_MB': 1024}
    assert g.required == [{'HW_CPU_X86_VMX'}, {'CUSTOM_A', 'CUSTOM_B'}]
    assert g.forbidden == {'CUSTOM_OLD'}
    assert g.member_of == [{AGG1}, {AGG1, AGG2}]
    assert g.forbidden_aggs == {AGG2}
    assert g.in_tree == RP1
    assert req.groups['_NET'].use_same_provider
    assert req.groups['_NET'].required == [{'CUSTOM_P'}]
    assert (req.limit, req.group_policy) == (5, 'isolate')
    assert req.root_required == {'HW_CPU_X86_AVX'}
    assert req.root_forbidden == {'CUSTOM_NO'}
    assert req.same_subtrees == [{'_NET', '1'}]
    assert req.resource_classes == {'VCPU', 'MEMORY_MB', 'SRIOV_NET_VF'}


@pytest.mark.parametrize('query,version,text', [
    ([('resources', 'VCPU:1'), ('limit', '1')], (1, 15),
     "'limit' was unexpected"),
    ([('resources', 'VCPU:1'), ('required', 'X')], (1, 16),
     "'required' was unexpected"),
    ([('resources', 'VCPU:1'), ('member_of', AGG1)], (1, 20),
     "'member_of' was unexpected"),
    ([('resources1', 'VCPU:1')], (1, 24), "'resources1' was unexpected"),
    ([('limit', '1')], (1, 24), "'resources' is a required property"),
    ([('resources01', 'VCPU:1')], (1, 25),
     "'resources01' does not match any of the regexes"),
    ([('resources_X', 'VCPU:1')], (1, 32),
     "'resources_X' does not match any of the regexes"),
    ([('resources', 'VCPU:1'), ('in_tree', RP1)], (1, 30),
     "does not match any of the regexes"),
    ([('resources', 'VCPU:1'), ('root_required', 'X')], (1, 34),
     "'root_required' does not match any of the regexes"),
    ([('resources', 'VCPU:1'), ('limit', '0')], (1, 39),
     "Failed validating 'pattern'"),
    ([('resources', 'VCPU:1'), ('group_policy', 'bogus')], (1, 39),
     "'bogus' is not one of ['none', 'isolate']"),
])
def test_schema_per_microversion(query, version, text):
    error = bad(query, version)
    assert text in error.detail
    assert error.detail.startswith('Invalid query string parameters')
    assert error.code == creq.UNDEFINED


@pytest.mark.parametrize('value,text', [
    ('', 'Got: empty string.'),
    ('VCPU', 'Badly formed resources parameter'),
    ('VCPU:x', 'expected positive integer amount. Got: x.'),
    ('VCPU:0', 'requires amount >= 1. Got: 0.'),
])
def test_bad_resources(value, text):
    assert text in bad([('resources', value)]).detail


def test_traits_by_microversion():
    q = [('resources', 'VCPU:1'), ('required', '!CUSTOM_A')]
    assert "of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: !CUSTOM_A" in bad(
        q, (1, 21)).detail
    assert parse(q, (1, 22)).groups[''].forbidden == {'CUSTOM_A'}
    q = [('resources', 'VCPU:1'), ('required', 'in:CUSTOM_A,CUSTOM_B')]
    assert 'only supported since microversion 1.39' in bad(q, (1, 38)).detail
    assert 'does not support forbidden traits' in bad(
        [('resources', 'VCPU:1'), ('required', 'in:CUSTOM_A,!CUSTOM_B')]
    ).detail
    assert 'Got an empty trait in: CUSTOM_A,' in bad(
        [('resources', 'VCPU:1'), ('required', 'CUSTOM_A,')]).detail
    # Repeated: the last one before 1.39, all of them from 1.39.
    q = [('resources', 'VCPU:1'), ('required', 'CUSTOM_A'),
         ('required', 'CUSTOM_B')]
    assert parse(q, (1, 38)).groups[''].required == [{'CUSTOM_B'}]
    assert parse(q).groups[''].required == [{'CUSTOM_A'}, {'CUSTOM_B'}]
    error = bad([('resources', 'VCPU:1'), ('required', 'CUSTOM_A,!CUSTOM_A')])
    assert error.detail == ('Conflicting required and forbidden traits found '
                            'in the following traits keys: required: '
                            '(CUSTOM_A)')


def test_member_of_by_microversion():
    two = [('resources', 'VCPU:1'), ('member_of', AGG1), ('member_of', AGG2)]
    assert 'Multiple member_of parameters are not supported' in bad(
        two, (1, 23)).detail
    assert parse(two, (1, 24)).groups[''].member_of == [{AGG1}, {AGG2}]
    nope = [('resources', 'VCPU:1'), ('member_of', f'!{AGG1}')]
    assert 'Forbidden member_of parameters are not supported' in bad(
        nope, (1, 31)).detail
    assert "must be prefixed with the 'in:' or '!in:' keyword" in bad(
        [('resources', 'VCPU:1'), ('member_of', f'{AGG1},{AGG2}')]).detail
    assert "to contain valid UUID(s). Got: nope" in bad(
        [('resources', 'VCPU:1'), ('member_of', 'in:nope')]).detail
    assert "'in_tree' parameter to be a format of uuid" in bad(
        [('resources', 'VCPU:1'), ('in_tree', 'nope')]).detail


def test_orphans_before_1_36_and_resourceless_after():
    q = [('resources', 'VCPU:1'), ('required1', 'CUSTOM_A'),
         ('member_of3', AGG1)]
    error = bad(q, (1, 35))
    assert 'orphaned traits keys: required1' in error.detail
    assert 'orphaned member_of keys: member_of3' in bad(
        [('resources', 'VCPU:1'), ('member_of3', AGG1)], (1, 35)).detail
    error = bad(q + [('group_policy', 'none')])
    assert 'Resourceless suffixed group request should be specified in ' \
        '`same_subtree` query param' in error.detail
    assert error.code == creq.BAD_VALUE
    error = bad([('required1', 'CUSTOM_A'), ('same_subtree', '1')])
    assert error.code == creq.MISSING_VALUE
    error = bad([('resources1', 'VCPU:1'), ('same_subtree', '1,2')])
    assert 'Real suffixes should be specified in `same_subtree`' in \
        error.detail
    error = bad([('resources1', 'VCPU:1'), ('same_subtree', '1,')])
    assert 'Empty string (unsuffixed group)' in error.detail
    assert 'At least one request group' in bad([('limit', '1')], (1, 35)
                                               ).detail


def test_group_policy_and_root_required():
    q = [('resources1', 'VCPU:1'), ('resources2', 'VCPU:1')]
    assert 'The "group_policy" parameter is required' in bad(q).detail
    assert parse(q + [('group_policy', 'none')]).group_policy == 'none'
    # One numbered group (and the unnumbered one) needs none.
    assert parse([('resources', 'VCPU:1'), ('resources1', 'VCPU:1')])
    error = bad([('resources', 'VCPU:1'), ('root_required', 'CUSTOM_A'),
                 ('root_required', 'CUSTOM_B')])
    assert error.code == creq.DUPLICATE_KEY
    error = bad([('resources', 'VCPU:1'),
                 ('root_required', 'CUSTOM_A,!CUSTOM_A')])
    assert error.detail.endswith('in root_required: CUSTOM_A')
    assert error.code == creq.BAD_VALUE
    assert 'only supported since microversion 1.39' in bad(
        [('resources', 'VCPU:1'), ('root_required', 'in:CUSTOM_A')]).detail


def test_multidict_input():
    class MultiDict:
        def items(self):
            return [('resources', 'VCPU:1'), ('limit', '3')]
    assert parse(MultiDict()).limit == 3
