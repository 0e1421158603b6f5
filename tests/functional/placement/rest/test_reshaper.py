"""``POST /reshaper``: VCPU moved from a root to a child, allocations with
it, in one transaction."""

import sqlalchemy as sa

from nova_rt.placement import models
from tests.functional.placement.rest.helpers import (
    allocate, generation, new_uuid, provider)

SERVICE = {'X-Roles': 'service'}


def _reshape(client, body, status, v='latest', token='nova:service'):
    return client.call('POST', '/reshaper', body, v=v, token=token,
                       headers=SERVICE, status=status)


def _used(engine):
    with engine.connect() as conn:
        return dict(((rp, rc), used) for rp, rc, used in conn.execute(
            sa.select(models.ResourceProvider.uuid,
                      models.Inventory.resource_class,
                      models.Inventory.used).join(
                models.ResourceProvider, models.ResourceProvider.id ==
                models.Inventory.resource_provider_id)))


def test_move_vcpu_to_a_child_with_its_allocations(client, rest_engine):
    root = provider(client, 'cn', {'VCPU': {'total': 8},
                                   'MEMORY_MB': {'total': 1024}})
    child = provider(client, 'numa0', parent=root)
    consumer = new_uuid()
    allocate(client, consumer, {root: {'VCPU': 2, 'MEMORY_MB': 128}})
    body = {
        'inventories': {
            root: {'resource_provider_generation': generation(client, root),
                   'inventories': {'MEMORY_MB': {'total': 1024}}},
            child: {'resource_provider_generation': generation(client, child),
                    'inventories': {'VCPU': {'total': 8}}}},
        'allocations': {consumer: {
            'allocations': {root: {'resources': {'MEMORY_MB': 128}},
                            child: {'resources': {'VCPU': 2}}},
            'project_id': 'p1', 'user_id': 'u1', 'consumer_generation': 1,
            'consumer_type': 'INSTANCE'}}}
    _reshape(client, body, 403, token='admin')       # service role only
    _reshape(client, body, 404, v='1.29')
    _reshape(client, body, 204)
    assert _used(rest_engine) == {(root, 'MEMORY_MB'): 128,
                                  (child, 'VCPU'): 2}
    got = client.call('GET', f'/allocations/{consumer}').json
    assert got['allocations'][child]['resources'] == {'VCPU': 2}
    assert got['consumer_generation'] == 2
    # Schemas are built once per microversion: the reshaper's own copy of
    # the POST /allocations schema left the original as it was.
    client.call('POST', '/allocations', {}, status=400)
    client.call('POST', '/resource_providers',
                {'name': 'x', 'uuid': new_uuid()}, status=200)


def test_a_class_still_in_use_after_the_move_changes_nothing(
        client, rest_engine):
    root = provider(client, 'cn', {'VCPU': {'total': 8}})
    child = provider(client, 'numa0', parent=root)
    consumer = new_uuid()
    allocate(client, consumer, {root: {'VCPU': 2}})
    before = _used(rest_engine)
    body = {
        'inventories': {
            root: {'resource_provider_generation': generation(client, root),
                   'inventories': {}},
            child: {'resource_provider_generation': generation(client, child),
                    'inventories': {'VCPU': {'total': 8}}}},
        'allocations': {}}
    resp = _reshape(client, body, 409)
    assert resp.json['errors'][0]['code'] == 'placement.inventory.inuse'
    assert _used(rest_engine) == before
    body['inventories'][root]['resource_provider_generation'] += 7
    resp = _reshape(client, body, 409)
    assert resp.json['errors'][0]['code'] == 'placement.concurrent_update'
    body['inventories'][new_uuid()] = body['inventories'].pop(root)
    resp = _reshape(client, body, 400)
    assert resp.json['errors'][0]['code'] == (
        'placement.resource_provider.not_found')
