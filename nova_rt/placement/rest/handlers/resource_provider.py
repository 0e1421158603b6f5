"""``/resource_providers`` and ``/resource_providers/{uuid}``."""

from __future__ import annotations

import uuid as uuid_mod

from nova_rt.placement import provider_rest_ops as ops
from nova_rt.placement import resource_class_ops
from nova_rt.placement import trait_ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest import errors
from nova_rt.placement.rest import params
from nova_rt.placement.rest.handlers import util
from nova_rt.placement.rest.schemas import resource_provider as schema


def _links(req, uuid: str) -> list:
    url = util.provider_url(req, uuid)
    rels = ['inventories', 'usages']
    if req.microversion >= (1, 1):
        rels.append('aggregates')
    if req.microversion >= (1, 6):
        rels.append('traits')
    if req.microversion >= (1, 11):
        rels.append('allocations')
    return [{'rel': 'self', 'href': url}] + [
        {'rel': rel, 'href': f'{url}/{rel}'} for rel in rels]


def serialize(req, row) -> dict:
    data = {'uuid': row.uuid, 'name': row.name, 'generation': row.generation,
            'links': _links(req, row.uuid)}
    if req.microversion >= (1, 14):
        data['parent_provider_uuid'] = row.parent_uuid
        data['root_provider_uuid'] = row.root_uuid
    return data


def _filters(req) -> dict:
    query = util.query(req, schema.list_query(req.microversion))
    filters = {key: query[key] for key in ('name', 'uuid') if key in query}
    if 'in_tree' in query:
        filters['in_tree'] = params.in_tree(query['in_tree'])
    if 'member_of' in query:
        filters['member_of'], filters['forbidden_aggregates'] = (
            params.member_of(req))
    if 'required' in query:
        filters['required'], filters['forbidden_traits'] = (
            params.required(req))
    if 'resources' in query:
        filters['resources'] = params.resources(query['resources'])
    return filters


def _checked_list(conn, filters: dict) -> list:
    names = set().union(*filters.get('required', ()),
                        filters.get('forbidden_traits', ()))
    unknown = trait_ops.missing(conn, sorted(names))
    if unknown:
        raise errors.bad_request(
            'Invalid trait(s) in "required" parameter: No such trait(s): '
            f'{", ".join(unknown)}.')
    for rc in filters.get('resources', {}):
        if not resource_class_ops.exists(conn, rc):
            raise errors.bad_request(
                'Invalid resource class in resources parameter: No such '
                f'resource class {rc}.')
    return ops.list_providers(conn, **filters)


def list_providers(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:list')
    rows = req.db(_checked_list, _filters(req))
    return app.json_response(
        {'resource_providers': [serialize(req, row) for row in rows]})


def show(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:show')
    return app.json_response(serialize(req, req.db(ops.get,
                                                   req.urlvars['uuid'])))


def create(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:create')
    body = req.json(schema.post(req.microversion))
    uuid = str(uuid_mod.UUID(body['uuid'])) if body.get('uuid') else str(
        uuid_mod.uuid4())
    row = req.db(ops.create, body['name'], uuid,
                 body.get('parent_provider_uuid'))
    headers = {'Location': util.provider_url(req, uuid)}
    if req.microversion >= (1, 20):
        return app.json_response(serialize(req, row), headers=headers)
    return app.Response(201, headers=headers)


def update(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:update')
    req.db(ops.get, req.urlvars['uuid'])           # 404 before the body
    body = req.json(schema.put(req.microversion))
    parent = body.get('parent_provider_uuid', ...)
    row = req.db(ops.update, req.urlvars['uuid'], body['name'], parent,
                 reparent=req.microversion >= (1, 37))
    return app.json_response(serialize(req, row))


def delete(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:delete')
    req.db(ops.delete, req.urlvars['uuid'])
    return app.no_content()
