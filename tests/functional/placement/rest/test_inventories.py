"""``/resource_providers/{uuid}/inventories``: Placement's bodies,
generations, capacity rules, and capacity/used kept for the candidates."""

import sqlalchemy as sa

from nova_rt.placement import models
from tests.functional.placement.rest.helpers import generation, provider

INV = '/resource_providers/{}/inventories'


def _stored(engine, uuid):
    with engine.connect() as conn:
        return {row.resource_class: (row.capacity, row.used)
                for row in conn.execute(sa.select(
                    models.Inventory.resource_class,
                    models.Inventory.capacity, models.Inventory.used).join(
                        models.ResourceProvider,
                        models.ResourceProvider.id ==
                        models.Inventory.resource_provider_id).where(
                        models.ResourceProvider.uuid == uuid))}


def test_put_all_defaults_generation_and_capacity(client, rest_engine):
    uuid = provider(client, 'rp')
    resp = client.call('PUT', INV.format(uuid), {
        'resource_provider_generation': 0,
        'inventories': {'VCPU': {'total': 8, 'allocation_ratio': 4.0},
                        'MEMORY_MB': {'total': 1024, 'reserved': 24}}},
        status=200)
    assert resp.json['resource_provider_generation'] == 1
    assert resp.json['inventories']['MEMORY_MB'] == {
        'total': 1024, 'reserved': 24, 'min_unit': 1,
        'max_unit': 2 ** 31 - 1, 'step_size': 1, 'allocation_ratio': 1.0}
    assert _stored(rest_engine, uuid) == {'VCPU': (32, 0),
                                          'MEMORY_MB': (1000, 0)}
    got = client.call('GET', INV.format(uuid)).json
    assert got == resp.json
    one = client.call('GET', INV.format(uuid) + '/VCPU').json
    assert one['total'] == 8 and one['resource_provider_generation'] == 1
    client.call('GET', INV.format(uuid) + '/DISK_GB', status=404)


def test_stale_generation_is_409_and_changes_nothing(client, rest_engine):
    uuid = provider(client, 'rp', {'VCPU': {'total': 4}})
    resp = client.call('PUT', INV.format(uuid), {
        'resource_provider_generation': 0,
        'inventories': {'VCPU': {'total': 99}}}, status=409)
    assert resp.json['errors'][0]['code'] == 'placement.concurrent_update'
    assert _stored(rest_engine, uuid) == {'VCPU': (4, 0)}
    assert generation(client, uuid) == 1


def test_reserved_equal_total_from_1_26(client):
    uuid = provider(client, 'rp')
    body = {'resource_provider_generation': 0,
            'inventories': {'VCPU': {'total': 4, 'reserved': 4}}}
    resp = client.call('PUT', INV.format(uuid), body, v='1.25', status=400)
    assert 'greater than or equal to total' in resp.json['errors'][0][
        'detail']
    client.call('PUT', INV.format(uuid), body, v='1.26', status=200)
    body = {'resource_provider_generation': 1,
            'inventories': {'VCPU': {'total': 4, 'reserved': 5}}}
    client.call('PUT', INV.format(uuid), body, status=400)


def test_unknown_class_and_bad_fields_are_400(client):
    uuid = provider(client, 'rp')
    resp = client.call('PUT', INV.format(uuid), {
        'resource_provider_generation': 0,
        'inventories': {'CUSTOM_NOPE': {'total': 1}}}, status=400)
    assert 'Unknown resource class' in resp.json['errors'][0]['detail']
    for bad in ({'total': 0}, {'total': 1, 'min_unit': 0},
                {'total': 'x'}, {'total': 1, 'nope': 1}):
        client.call('PUT', INV.format(uuid), {
            'resource_provider_generation': 0,
            'inventories': {'VCPU': bad}}, status=400)
    assert generation(client, uuid) == 0


def test_post_one_put_one_delete_one(client, rest_engine):
    uuid = provider(client, 'rp')
    resp = client.call('POST', INV.format(uuid),
                       {'resource_class': 'DISK_GB', 'total': 100},
                       status=201)
    assert resp.headers['Location'].endswith(f'{uuid}/inventories/DISK_GB')
    assert resp.json['resource_provider_generation'] == 1
    client.call('POST', INV.format(uuid),
                {'resource_class': 'DISK_GB', 'total': 100}, status=409)
    resp = client.call('PUT', INV.format(uuid) + '/DISK_GB',
                       {'resource_provider_generation': 1, 'total': 50,
                        'reserved': 10}, status=200)
    assert resp.json['total'] == 50
    assert _stored(rest_engine, uuid) == {'DISK_GB': (40, 0)}
    client.call('PUT', INV.format(uuid) + '/VCPU',
                {'resource_provider_generation': 2, 'total': 5}, status=400)
    client.call('DELETE', INV.format(uuid) + '/DISK_GB', status=204)
    client.call('DELETE', INV.format(uuid) + '/DISK_GB', status=404)
    assert _stored(rest_engine, uuid) == {}


def test_delete_all_from_1_5(client):
    uuid = provider(client, 'rp', {'VCPU': {'total': 4}})
    client.call('DELETE', INV.format(uuid), v='1.4', status=405)
    client.call('DELETE', INV.format(uuid), v='1.5', status=204)
    assert client.call('GET', INV.format(uuid)).json['inventories'] == {}


def test_inventory_in_use_is_409_inuse(client, rest_engine):
    from tests.functional.placement.rest.helpers import allocate, new_uuid
    uuid = provider(client, 'rp', {'VCPU': {'total': 4},
                                   'DISK_GB': {'total': 10}})
    allocate(client, new_uuid(), {uuid: {'VCPU': 2}})
    gen = generation(client, uuid)
    resp = client.call('PUT', INV.format(uuid), {
        'resource_provider_generation': gen,
        'inventories': {'DISK_GB': {'total': 10}}}, status=409)
    assert resp.json['errors'][0]['code'] == 'placement.inventory.inuse'
    resp = client.call('DELETE', INV.format(uuid), status=409)
    assert resp.json['errors'][0]['code'] == 'placement.inventory.inuse'
    client.call('DELETE', INV.format(uuid) + '/VCPU', status=409)
    assert _stored(rest_engine, uuid) == {'VCPU': (4, 2), 'DISK_GB': (10, 0)}
    # Shrinking below what is used is allowed, as in Placement; used stays.
    client.call('PUT', INV.format(uuid), {
        'resource_provider_generation': gen,
        'inventories': {'VCPU': {'total': 1}, 'DISK_GB': {'total': 10}}},
        status=200)
    assert _stored(rest_engine, uuid)['VCPU'] == (1, 2)


def test_missing_provider_is_404(client):
    client.call('GET', INV.format('5b7a8f2e-0000-4000-8000-000000000001'),
                status=404)
