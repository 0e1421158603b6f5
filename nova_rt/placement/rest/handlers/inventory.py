"""``/resource_providers/{uuid}/inventories[/{resource_class}]``."""

from __future__ import annotations

from nova_rt.placement import inventory_rest_ops as ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest.handlers import util
from nova_rt.placement.rest.schemas import inventory as schema


def fields_of(body: dict) -> dict:
    return {k: v for k, v in body.items() if k in ops.FIELDS}


def _one(generation: int, inventory: dict) -> dict:
    return {'resource_provider_generation': generation, **inventory}


def _reserved_can_be_total(req) -> bool:
    return req.microversion >= (1, 26)


def list_inventories(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:list')
    generation, inventories = req.db(ops.read_all, req.urlvars['uuid'])
    return app.json_response({'resource_provider_generation': generation,
                              'inventories': inventories})


def show(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:show')
    return app.json_response(_one(*req.db(
        ops.read_one, req.urlvars['uuid'], req.urlvars['resource_class'])))


def create(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:create')
    req.db(util.provider, req.urlvars['uuid'])     # 404 before the body
    body = req.json(schema.POST)
    uuid, rc = req.urlvars['uuid'], body['resource_class']
    generation, inventory = req.db(ops.create_one, uuid, rc, fields_of(body),
                                   _reserved_can_be_total(req))
    return app.json_response(_one(generation, inventory), 201, headers={
        'Location': f'{util.provider_url(req, uuid)}/inventories/{rc}'})


def set_all(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:update')
    req.db(util.provider, req.urlvars['uuid'])
    body = req.json(schema.PUT_ALL)
    generation, inventories = req.db(
        ops.set_all, req.urlvars['uuid'],
        body['resource_provider_generation'],
        {rc: fields_of(raw) for rc, raw in body['inventories'].items()},
        _reserved_can_be_total(req))
    return app.json_response({'resource_provider_generation': generation,
                              'inventories': inventories})


def update(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:update')
    req.db(util.provider, req.urlvars['uuid'])
    body = req.json(schema.BASE)
    return app.json_response(_one(*req.db(
        ops.update_one, req.urlvars['uuid'], req.urlvars['resource_class'],
        body['resource_provider_generation'], fields_of(body),
        _reserved_can_be_total(req))))


def delete(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:delete')
    req.db(ops.delete_one, req.urlvars['uuid'], req.urlvars['resource_class'])
    return app.no_content()


def delete_all(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:inventories:delete')
    req.db(ops.delete_all, req.urlvars['uuid'])
    return app.no_content()
