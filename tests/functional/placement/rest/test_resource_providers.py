"""``/resource_providers``: create, show, list with Placement's filters,
update, delete, per microversion."""

import uuid as uuid_mod

import pytest


def _new(client, name, parent=None, uuid=None, v='latest'):
    body = {'name': name}
    if uuid:
        body['uuid'] = uuid
    if parent:
        body['parent_provider_uuid'] = parent
    resp = client.call('POST', '/resource_providers', body, v=v)
    assert resp.status_int in (200, 201), resp.text
    return resp.headers['Location'].rsplit('/', 1)[1]


def test_create_answers_per_microversion(client):
    resp = client.call('POST', '/resource_providers', {'name': 'old'},
                       v='1.19', status=201)
    assert resp.body == b'' and '/resource_providers/' in resp.headers[
        'Location']
    uuid = str(uuid_mod.uuid4())
    resp = client.call('POST', '/resource_providers',
                       {'name': 'new', 'uuid': uuid}, v='1.20', status=200)
    assert resp.json['uuid'] == uuid and resp.json['generation'] == 0
    assert resp.json['links'][0] == {'rel': 'self',
                                     'href': f'/resource_providers/{uuid}'}
    assert 'parent_provider_uuid' in resp.json
    assert resp.json['root_provider_uuid'] == uuid


def test_show_and_links_by_microversion(client):
    uuid = _new(client, 'rp1')
    resp = client.call('GET', f'/resource_providers/{uuid}', v='1.0')
    assert {link['rel'] for link in resp.json['links']} == {
        'self', 'inventories', 'usages'}
    assert 'root_provider_uuid' not in resp.json
    resp = client.call('GET', f'/resource_providers/{uuid}', v='1.14')
    assert {link['rel'] for link in resp.json['links']} == {
        'self', 'inventories', 'usages', 'aggregates', 'traits',
        'allocations'}
    client.call('GET', f'/resource_providers/{uuid_mod.uuid4()}', status=404)


def test_duplicates_are_409_duplicate_name(client):
    uuid = _new(client, 'dup')
    resp = client.call('POST', '/resource_providers', {'name': 'dup'},
                       status=409)
    assert resp.json['errors'][0]['code'] == 'placement.duplicate_name'
    resp = client.call('POST', '/resource_providers',
                       {'name': 'other', 'uuid': uuid}, status=409)
    assert resp.json['errors'][0]['code'] == 'placement.duplicate_name'


@pytest.mark.parametrize('body', [
    {}, {'name': 'x' * 201}, {'name': 'a', 'uuid': 'not-a-uuid'},
    {'name': 'a', 'extra': 1}])
def test_bad_bodies_are_400_and_create_nothing(client, body):
    client.call('POST', '/resource_providers', body, status=400)
    assert client.call('GET', '/resource_providers').json == {
        'resource_providers': []}


def test_parent_before_1_14_is_400_and_missing_parent_400(client):
    client.call('POST', '/resource_providers',
                {'name': 'c', 'parent_provider_uuid': str(uuid_mod.uuid4())},
                v='1.13', status=400)
    resp = client.call('POST', '/resource_providers',
                       {'name': 'c', 'parent_provider_uuid':
                        str(uuid_mod.uuid4())}, status=400)
    assert 'parent provider UUID does not exist' in resp.json['errors'][0][
        'detail']


def test_tree_and_in_tree(client):
    root = _new(client, 'root')
    child = _new(client, 'child', parent=root)
    grandchild = _new(client, 'grandchild', parent=child)
    other = _new(client, 'other')
    resp = client.call('GET', f'/resource_providers/{grandchild}')
    assert resp.json['parent_provider_uuid'] == child
    assert resp.json['root_provider_uuid'] == root
    listed = client.call('GET', f'/resource_providers?in_tree={child}').json
    assert sorted(rp['uuid'] for rp in listed['resource_providers']) == \
        sorted([root, child, grandchild])
    assert other not in str(listed)
    client.call('GET', '/resource_providers?in_tree=nope', status=400)


def test_list_filters_name_uuid_and_unknown_params(client):
    a, b = _new(client, 'a'), _new(client, 'b')
    assert [rp['uuid'] for rp in client.call(
        'GET', '/resource_providers?name=b').json['resource_providers']] == [b]
    assert [rp['uuid'] for rp in client.call(
        'GET', f'/resource_providers?uuid={a}').json['resource_providers']] \
        == [a]
    resp = client.call('GET', '/resource_providers?bogus=1', status=400)
    assert 'Invalid query string parameters' in resp.json['errors'][0][
        'detail']
    # in_tree exists from 1.14 only.
    client.call('GET', f'/resource_providers?in_tree={a}', v='1.13',
                status=400)


def _aggregates(client, uuid, aggs):
    gen = client.call('GET', f'/resource_providers/{uuid}').json['generation']
    client.call('PUT', f'/resource_providers/{uuid}/aggregates',
                {'aggregates': aggs, 'resource_provider_generation': gen},
                status=200)


def test_member_of_any_all_and_forbidden(client):
    agg1, agg2 = str(uuid_mod.uuid4()), str(uuid_mod.uuid4())
    a, b, c = _new(client, 'a'), _new(client, 'b'), _new(client, 'c')
    _aggregates(client, a, [agg1])
    _aggregates(client, b, [agg1, agg2])
    _aggregates(client, c, [agg2])

    def listed(query, v='latest', status=200):
        resp = client.call('GET', f'/resource_providers?{query}', v=v,
                           status=status)
        return sorted(rp['name'] for rp in resp.json.get(
            'resource_providers', []))

    assert listed(f'member_of={agg1}') == ['a', 'b']
    assert listed(f'member_of=in:{agg1},{agg2}') == ['a', 'b', 'c']
    assert listed(f'member_of={agg1}&member_of={agg2}') == ['b']
    assert listed(f'member_of=!{agg2}') == ['a']
    assert listed(f'member_of=!in:{agg1},{agg2}') == []
    listed(f'member_of=!{agg2}', v='1.31', status=400)
    listed(f'member_of={agg1}&member_of={agg2}', v='1.23', status=400)
    listed(f'member_of={agg1},{agg2}', status=400)
    listed('member_of=in:not-a-uuid', status=400)


def _traits(client, uuid, traits):
    for trait in traits:
        if trait.startswith('CUSTOM_'):
            client.call('PUT', f'/traits/{trait}')
    gen = client.call('GET', f'/resource_providers/{uuid}').json['generation']
    client.call('PUT', f'/resource_providers/{uuid}/traits',
                {'traits': traits, 'resource_provider_generation': gen},
                status=200)


def test_required_forbidden_and_any_of_traits(client):
    a, b, c = _new(client, 'a'), _new(client, 'b'), _new(client, 'c')
    _traits(client, a, ['HW_CPU_X86_AVX', 'CUSTOM_GOLD'])
    _traits(client, b, ['HW_CPU_X86_AVX'])
    _traits(client, c, ['CUSTOM_GOLD'])

    def listed(query, v='latest', status=200):
        resp = client.call('GET', f'/resource_providers?{query}', v=v,
                           status=status)
        return sorted(rp['name'] for rp in resp.json.get(
            'resource_providers', []))

    assert listed('required=HW_CPU_X86_AVX') == ['a', 'b']
    assert listed('required=HW_CPU_X86_AVX,CUSTOM_GOLD') == ['a']
    assert listed('required=HW_CPU_X86_AVX,!CUSTOM_GOLD') == ['b']
    assert listed('required=in:HW_CPU_X86_AVX,CUSTOM_GOLD') == ['a', 'b', 'c']
    assert listed('required=in:HW_CPU_X86_AVX,CUSTOM_GOLD'
                  '&required=!HW_CPU_X86_AVX') == ['c']
    listed('required=HW_CPU_X86_AVX,!CUSTOM_GOLD', v='1.21', status=400)
    listed('required=in:HW_CPU_X86_AVX,CUSTOM_GOLD', v='1.38', status=400)
    listed('required=HW_CPU_X86_AVX', v='1.17', status=400)
    resp = client.call('GET', '/resource_providers?required=CUSTOM_NOPE',
                       status=400)
    assert 'No such trait(s): CUSTOM_NOPE' in resp.json['errors'][0]['detail']


def test_resources_filter_counts_usage_and_units(client):
    a, b = _new(client, 'a'), _new(client, 'b')
    for uuid, total in ((a, 8), (b, 2)):
        client.call('PUT', f'/resource_providers/{uuid}/inventories', {
            'resource_provider_generation': 0,
            'inventories': {'VCPU': {'total': total, 'max_unit': 4}}},
            status=200)

    def listed(query, status=200):
        resp = client.call('GET', f'/resource_providers?{query}',
                           status=status)
        return sorted(rp['name'] for rp in resp.json.get(
            'resource_providers', []))

    assert listed('resources=VCPU:2') == ['a', 'b']
    assert listed('resources=VCPU:3') == ['a']
    assert listed('resources=VCPU:5') == []          # above max_unit
    listed('resources=VCPU:0', status=400)
    listed('resources=VCPU', status=400)
    resp = client.call('GET', '/resource_providers?resources=CUSTOM_NO:1',
                       status=400)
    assert 'No such resource class CUSTOM_NO' in resp.json['errors'][0][
        'detail']


def test_update_rename_reparent_and_loops(client):
    root = _new(client, 'root')
    child = _new(client, 'child', parent=root)
    other = _new(client, 'other')
    resp = client.call('PUT', f'/resource_providers/{child}',
                       {'name': 'renamed'}, status=200)
    assert resp.json['name'] == 'renamed'
    assert resp.json['parent_provider_uuid'] == root
    # Re-parenting only from 1.37.
    client.call('PUT', f'/resource_providers/{child}',
                {'name': 'renamed', 'parent_provider_uuid': other},
                v='1.36', status=400)
    resp = client.call('PUT', f'/resource_providers/{child}',
                       {'name': 'renamed', 'parent_provider_uuid': other},
                       status=200)
    assert resp.json['root_provider_uuid'] == other
    client.call('PUT', f'/resource_providers/{other}',
                {'name': 'other', 'parent_provider_uuid': child}, status=400)
    resp = client.call('PUT', f'/resource_providers/{child}',
                       {'name': 'renamed', 'parent_provider_uuid': None},
                       status=200)
    assert resp.json['root_provider_uuid'] == child
    resp = client.call('PUT', f'/resource_providers/{child}',
                       {'name': 'root'}, status=409)
    assert resp.json['errors'][0]['code'] == 'placement.duplicate_name'


def test_delete_rules(client):
    root = _new(client, 'root')
    child = _new(client, 'child', parent=root)
    resp = client.call('DELETE', f'/resource_providers/{root}', status=409)
    assert resp.json['errors'][0]['code'] == (
        'placement.resource_provider.cannot_delete_parent')
    client.call('DELETE', f'/resource_providers/{child}', status=204)
    client.call('DELETE', f'/resource_providers/{root}', status=204)
    client.call('DELETE', f'/resource_providers/{root}', status=404)
    client.call('GET', f'/resource_providers/{root}', status=404)
