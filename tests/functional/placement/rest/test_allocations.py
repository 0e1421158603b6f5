"""``/allocations``: formats per microversion, consumer generations,
capacity, ``used`` kept, POST for several consumers, DELETE."""

import pytest
import sqlalchemy as sa

from nova_rt.placement import models
from nova_rt.placement import usage_ops
from tests.functional.placement.rest.helpers import (
    allocate, generation, new_uuid, provider)


def _used(engine, uuid, rc):
    with engine.connect() as conn:
        return conn.execute(sa.select(models.Inventory.used).join(
            models.ResourceProvider, models.ResourceProvider.id ==
            models.Inventory.resource_provider_id).where(
                models.ResourceProvider.uuid == uuid,
                models.Inventory.resource_class == rc)).scalar()


def _host(client):
    return provider(client, 'cn', {'VCPU': {'total': 4},
                                   'MEMORY_MB': {'total': 2048,
                                                 'max_unit': 1024,
                                                 'step_size': 256}})


def test_put_get_with_consumer_generations(client, rest_engine):
    rp, consumer = _host(client), new_uuid()
    before = generation(client, rp)
    allocate(client, consumer, {rp: {'VCPU': 2, 'MEMORY_MB': 512}})
    got = client.call('GET', f'/allocations/{consumer}').json
    assert got == {
        'allocations': {rp: {'generation': before + 1,
                             'resources': {'VCPU': 2, 'MEMORY_MB': 512}}},
        'project_id': 'p1', 'user_id': 'u1', 'consumer_generation': 1,
        'consumer_type': 'INSTANCE'}
    assert _used(rest_engine, rp, 'VCPU') == 2
    # New consumer named with a generation, existing one with null: 409.
    resp = allocate(client, consumer, {rp: {'VCPU': 1}}, generation=None,
                    status=409)
    assert resp.json['errors'][0]['code'] == 'placement.concurrent_update'
    assert 'expected 1 but got null' in resp.json['errors'][0]['detail']
    allocate(client, new_uuid(), {rp: {'VCPU': 1}}, generation=3, status=409)
    assert _used(rest_engine, rp, 'VCPU') == 2
    allocate(client, consumer, {rp: {'VCPU': 1}}, generation=1)
    assert _used(rest_engine, rp, 'VCPU') == 1
    got = client.call('GET', f'/allocations/{consumer}', v='1.27').json
    assert 'consumer_generation' not in got and got['project_id'] == 'p1'
    got = client.call('GET', f'/allocations/{consumer}', v='1.11').json
    assert set(got) == {'allocations'}


def test_capacity_and_unit_rules(client, rest_engine):
    rp = _host(client)
    resp = allocate(client, new_uuid(), {rp: {'VCPU': 5}}, status=409)
    assert 'would exceed the capacity' in resp.json['errors'][0]['detail']
    allocate(client, new_uuid(), {rp: {'MEMORY_MB': 2048}}, status=400)
    allocate(client, new_uuid(), {rp: {'MEMORY_MB': 300}}, status=400)
    resp = allocate(client, new_uuid(), {rp: {'DISK_GB': 1}}, status=409)
    assert 'DISK_GB' in resp.json['errors'][0]['detail']
    allocate(client, new_uuid(), {new_uuid(): {'VCPU': 1}}, status=400)
    allocate(client, new_uuid(), {rp: {'VCPU': 0}}, status=400)
    assert _used(rest_engine, rp, 'VCPU') == 0
    allocate(client, new_uuid(), {rp: {'VCPU': 4}})
    allocate(client, new_uuid(), {rp: {'VCPU': 1}}, status=409)


def test_old_list_format_and_incomplete_consumer(client, rest_engine):
    rp, consumer = _host(client), new_uuid()
    client.call('PUT', f'/allocations/{consumer}', {'allocations': [
        {'resource_provider': {'uuid': rp}, 'resources': {'VCPU': 1}}]},
        v='1.7', status=204)
    got = client.call('GET', f'/allocations/{consumer}', v='1.12').json
    assert got['project_id'] == '00000000-0000-0000-0000-000000000000'
    client.call('PUT', f'/allocations/{consumer}', {'allocations': [
        {'resource_provider': {'uuid': rp}, 'resources': {'VCPU': 2}}]},
        v='1.8', status=400)                     # project_id/user_id needed
    client.call('PUT', f'/allocations/{consumer}', {
        'allocations': [{'resource_provider': {'uuid': rp},
                         'resources': {'VCPU': 2}}],
        'project_id': 'p', 'user_id': 'u'}, v='1.8', status=204)
    assert _used(rest_engine, rp, 'VCPU') == 2


def test_post_several_consumers_and_empty_means_delete(client, rest_engine):
    rp = _host(client)
    first, second = new_uuid(), new_uuid()
    allocate(client, first, {rp: {'VCPU': 1}})
    body = {
        first: {'allocations': {}, 'project_id': 'p1', 'user_id': 'u1',
                'consumer_generation': 1, 'consumer_type': 'INSTANCE'},
        second: {'allocations': {rp: {'resources': {'VCPU': 3}}},
                 'project_id': 'p1', 'user_id': 'u1',
                 'consumer_generation': None,
                 'consumer_type': 'MIGRATION'}}
    client.call('POST', '/allocations', body, status=204)
    assert client.call('GET', f'/allocations/{first}').json == {
        'allocations': {}}
    assert _used(rest_engine, rp, 'VCPU') == 3
    # Not a route before 1.13: 404, as Placement's version_handler answers.
    client.call('POST', '/allocations', body, v='1.12', status=404)
    # Over capacity: nothing of the POST happens.
    third = new_uuid()
    resp = client.call('POST', '/allocations', {
        third: {'allocations': {rp: {'resources': {'VCPU': 1}}},
                'project_id': 'p1', 'user_id': 'u1',
                'consumer_generation': None, 'consumer_type': 'INSTANCE'},
        second: {'allocations': {rp: {'resources': {'VCPU': 4}}},
                 'project_id': 'p1', 'user_id': 'u1',
                 'consumer_generation': 1, 'consumer_type': 'MIGRATION'}},
        status=409)
    assert 'capacity' in resp.json['errors'][0]['detail']
    assert client.call('GET', f'/allocations/{third}').json == {
        'allocations': {}}
    assert _used(rest_engine, rp, 'VCPU') == 3


def test_delete_and_provider_allocations(client, rest_engine):
    rp, consumer = _host(client), new_uuid()
    allocate(client, consumer, {rp: {'VCPU': 2}})
    got = client.call('GET', f'/resource_providers/{rp}/allocations').json
    assert got['allocations'] == {consumer: {'resources': {'VCPU': 2},
                                             'consumer_generation': 1}}
    assert got['resource_provider_generation'] == generation(client, rp)
    client.call('DELETE', f'/allocations/{consumer}', status=204)
    client.call('DELETE', f'/allocations/{consumer}', status=404)
    assert _used(rest_engine, rp, 'VCPU') == 0
    client.call('GET', f'/resource_providers/{new_uuid()}/allocations',
                status=404)
    client.call('GET', '/allocations/not-a-uuid', status=400)


def test_provider_with_allocations_cannot_be_deleted(client):
    rp = _host(client)
    allocate(client, new_uuid(), {rp: {'VCPU': 1}})
    resp = client.call('DELETE', f'/resource_providers/{rp}', status=409)
    assert resp.json['errors'][0]['code'] == (
        'placement.resource_provider.inuse')


def test_emptying_a_consumer_moves_the_generation_of_the_providers_it_leaves(
        client):
    # Review bug 11: Placement bumps them (the emptied allocations are
    # written as zero); DELETE does not.
    from tests.functional.placement.rest.helpers import generation
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    c = new_uuid()
    allocate(client, c, {rp: {'VCPU': 1}})
    seen = client.call('GET', f'/allocations/{c}').json
    before = generation(client, rp)
    client.call('POST', '/allocations', {c: {
        'allocations': {}, 'project_id': 'p1', 'user_id': 'u1',
        'consumer_generation': seen['consumer_generation'],
        'consumer_type': 'INSTANCE'}}, status=204)
    assert generation(client, rp) == before + 1
    allocate(client, c, {rp: {'VCPU': 1}})
    before = generation(client, rp)
    client.call('DELETE', f'/allocations/{c}', status=204)
    assert generation(client, rp) == before


@pytest.mark.parametrize('v, bumps', [('1.18', False), ('1.19', True)])
def test_aggregates_move_the_generation_from_1_19_only(client, v, bumps):
    from tests.functional.placement.rest.helpers import generation
    rp = provider(client, 'rp')
    before = generation(client, rp)
    body = [new_uuid()]
    if bumps:
        body = {'aggregates': body, 'resource_provider_generation': before}
    client.call('PUT', f'/resource_providers/{rp}/aggregates', body, v=v,
                status=200)
    assert generation(client, rp) == before + bumps
    assert len(client.call('GET', f'/resource_providers/{rp}/aggregates',
                           v=v).json['aggregates']) == 1


def test_used_of_many_classes_follows_every_write(client, rest_engine):
    # More classes than one statement sets ``used`` of
    # (usage_ops.USED_PER_STATEMENT), changed up, down and away.
    classes = [f'CUSTOM_C{i}' for i in range(11)]
    assert len(classes) > usage_ops.USED_PER_STATEMENT
    for rc in classes:
        client.call('PUT', f'/resource_classes/{rc}', status=201)
    rp = provider(client, 'many', {rc: {'total': 100} for rc in classes})
    consumer = new_uuid()
    allocate(client, consumer, {rp: {rc: i + 1 for i, rc in enumerate(classes)}})
    assert [_used(rest_engine, rp, rc) for rc in classes] == list(range(1, 12))
    other = new_uuid()
    allocate(client, other, {rp: {rc: 10 for rc in classes}})
    allocate(client, consumer, {rp: {rc: 20 - i for i, rc in enumerate(classes[:9])}},
             generation=1)
    assert [_used(rest_engine, rp, rc) for rc in classes] == (
        [30 - i for i in range(9)] + [10, 10])
    client.call('DELETE', f'/allocations/{consumer}', status=204)
    assert [_used(rest_engine, rp, rc) for rc in classes] == [10] * 11
    # A write refused for capacity changes nothing of any class.
    allocate(client, new_uuid(), {rp: {**{rc: 1 for rc in classes[:10]},
                                       classes[10]: 91}}, status=409)
    assert [_used(rest_engine, rp, rc) for rc in classes] == [10] * 11
