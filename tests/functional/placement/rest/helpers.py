"""Builders for the REST tests."""

import uuid as uuid_mod


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


def provider(client, name: str, inventories: dict | None = None,
             parent: str | None = None) -> str:
    body = {'name': name}
    if parent:
        body['parent_provider_uuid'] = parent
    resp = client.call('POST', '/resource_providers', body, status=200)
    uuid = resp.json['uuid']
    if inventories:
        client.call('PUT', f'/resource_providers/{uuid}/inventories', {
            'resource_provider_generation': resp.json['generation'],
            'inventories': inventories}, status=200)
    return uuid


def generation(client, uuid: str) -> int:
    return client.call('GET', f'/resource_providers/{uuid}').json['generation']


def allocate(client, consumer: str, allocations: dict, generation=None,
             status=204, v='latest', project='p1', user='u1', ctype='INSTANCE'):
    body = {'allocations': {rp: {'resources': res}
                            for rp, res in allocations.items()},
            'project_id': project, 'user_id': user,
            'consumer_generation': generation, 'consumer_type': ctype}
    return client.call('PUT', f'/allocations/{consumer}', body, v=v,
                       status=status)
