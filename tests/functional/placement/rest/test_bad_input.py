"""Input that passed the schemas and failed later with a 500 (review bug 7):
Placement answers 400, and nothing changes."""

import pytest

from tests.functional.placement.rest.helpers import (
    allocate, generation, new_uuid, provider)

#: 36 characters of the pattern's alphabet that no UUID parser takes.
NOT_A_UUID = '-' * 36
SERVICE = {'X-Roles': 'service'}


def _consumer(rp_key):
    return {'allocations': {rp_key: {'resources': {'VCPU': 1}}},
            'project_id': 'p', 'user_id': 'u', 'consumer_generation': None,
            'consumer_type': 'INSTANCE'}


def test_provider_key_that_is_not_a_uuid(client):
    client.call('PUT', f'/allocations/{new_uuid()}', _consumer(NOT_A_UUID),
                status=400)
    client.call('POST', '/allocations', {new_uuid(): _consumer(NOT_A_UUID)},
                status=400)


def test_consumer_key_that_is_not_a_uuid(client):
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    client.call('POST', '/allocations', {NOT_A_UUID: _consumer(rp)},
                status=400)
    assert client.call('GET', f'/resource_providers/{rp}/usages').json[
        'usages'] == {'VCPU': 0}


def test_reshaper_keys_that_are_not_uuids(client):
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    inventories = {rp: {'resource_provider_generation': generation(
        client, rp), 'inventories': {'VCPU': {'total': 4}}}}
    client.call('POST', '/reshaper', {
        'inventories': {NOT_A_UUID: inventories[rp]}, 'allocations': {}},
        token='nova:service', headers=SERVICE, status=400)
    client.call('POST', '/reshaper', {
        'inventories': inventories,
        'allocations': {NOT_A_UUID: _consumer(rp)}}, token='nova:service', headers=SERVICE,
        status=400)
    client.call('POST', '/reshaper', {
        'inventories': inventories,
        'allocations': {new_uuid(): _consumer(NOT_A_UUID)}},
        token='nova:service', headers=SERVICE, status=400)


@pytest.mark.parametrize('ratio', [float('nan'), float('inf'),
                                   float('-inf')])
def test_allocation_ratio_that_is_not_a_number(client, ratio):
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    gen = generation(client, rp)
    client.call('PUT', f'/resource_providers/{rp}/inventories', {
        'resource_provider_generation': gen,
        'inventories': {'VCPU': {'total': 4, 'allocation_ratio': ratio}}},
        status=400)
    client.call('PUT', f'/resource_providers/{rp}/inventories/VCPU', {
        'resource_provider_generation': gen, 'total': 4,
        'allocation_ratio': ratio}, status=400)
    assert generation(client, rp) == gen


def test_resources_amount_beyond_any_capacity(client):
    rp = provider(client, 'rp', {'VCPU': {'total': 4}})
    allocate(client, new_uuid(), {rp: {'VCPU': 1}})
    resp = client.call(
        'GET', '/resource_providers?resources=VCPU:99999999999999999999',
        status=400)
    assert 'VCPU' in resp.json['errors'][0]['detail']
    client.call('GET', '/resource_providers?resources=VCPU:3', status=200)
