"""``/allocations/{consumer_uuid}``, ``POST /allocations``,
``/resource_providers/{uuid}/allocations``."""

from __future__ import annotations

import uuid as uuid_mod

from nova_rt.placement import consumer_ops as ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.handlers import util
from nova_rt.placement.rest.schemas import allocation as schema


def _consumer_uuid(req) -> str:
    value = req.urlvars['consumer_uuid']
    if not util.is_uuid(value):
        raise errors.bad_request(f'Malformed consumer_uuid: {value}')
    return str(uuid_mod.UUID(value))


def for_consumer(req: app.Request) -> app.Response:
    req.authorize('placement:allocations:list')
    consumer, allocations = req.db(ops.of_consumer, _consumer_uuid(req))
    body = {'allocations': allocations}
    if allocations and req.microversion >= (1, 12):
        body['project_id'] = consumer.project_id
        body['user_id'] = consumer.user_id
        if req.microversion >= (1, 28):
            body['consumer_generation'] = consumer.generation
        if req.microversion >= (1, 38):
            body['consumer_type'] = consumer.consumer_type or 'unknown'
    return app.json_response(body)


def for_provider(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:allocations:list')

    uuid = req.urlvars['uuid']
    try:
        generation, allocations = req.db(util.provider_read, uuid,
                                         ops.of_provider)
    except errors.HTTPError as error:
        if error.status != 404:
            raise
        raise errors.not_found(f"Resource provider '{uuid}' not found: No "
                               f'resource provider with uuid {uuid} found'
                               ) from None
    if req.microversion < (1, 28):
        for entry in allocations.values():
            del entry['consumer_generation']
    return app.json_response({'allocations': allocations,
                              'resource_provider_generation': generation})


def consumer_request(req, body: dict) -> dict:
    """One consumer's body as ``consumer_ops.replace`` takes it."""
    if req.microversion < (1, 12):
        allocations = {}
        for entry in body['allocations']:
            rp = str(uuid_mod.UUID(entry['resource_provider']['uuid']))
            allocations.setdefault(rp, {}).update(entry['resources'])
    else:
        allocations = {str(uuid_mod.UUID(rp)): entry['resources']
                       for rp, entry in body['allocations'].items()}
    request = {'allocations': allocations,
               'project_id': body.get('project_id'),
               'user_id': body.get('user_id')}
    if req.microversion >= (1, 28):
        request['consumer_generation'] = body['consumer_generation']
    if req.microversion >= (1, 38):
        request['consumer_type'] = body['consumer_type']
    return request


def put(req: app.Request) -> app.Response:
    req.authorize('placement:allocations:update')
    consumer = _consumer_uuid(req)
    body = req.json(schema.put(req.microversion))
    req.db(ops.replace, {consumer: consumer_request(req, body)})
    return app.no_content()


def post_many(req: app.Request) -> app.Response:
    req.authorize('placement:allocations:manage')
    body = req.json(schema.post(req.microversion))
    requests = {str(uuid_mod.UUID(c)): consumer_request(req, entry)
                for c, entry in body.items()}
    req.db(ops.replace, requests)
    return app.no_content()


def delete(req: app.Request) -> app.Response:
    req.authorize('placement:allocations:delete')
    req.db(ops.delete, _consumer_uuid(req))
    return app.no_content()
