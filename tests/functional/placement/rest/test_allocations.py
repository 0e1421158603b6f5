"""``/allocations``: formats per microversion, consumer generations,
capacity, ``used`` kept, POST for several consumers, DELETE."""

import sqlalchemy as sa

from nova_rt.placement import models
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
    client.call('POST', '/allocations', body, v='1.12', status=405)
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
