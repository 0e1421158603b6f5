"""``/traits``, ``/traits/{name}``, ``/resource_providers/{uuid}/traits``."""

from __future__ import annotations

import re

from nova_rt import exception
from nova_rt.placement import provider_ops
from nova_rt.placement import trait_ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.handlers import util
from nova_rt.placement.rest.schemas import trait as schema

_CUSTOM = re.compile(schema.CUSTOM_TRAIT_PATTERN)


def _name_filter(value: str) -> dict:
    op, sep, rest = value.partition(':')
    if not sep:
        raise errors.bad_request(
            'Badly formatted name parameter. Expected name query string '
            'parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. '
            f'Got: "{value}"')
    if op == 'in':
        return {'names': rest.split(',')}
    if op == 'startswith':
        return {'prefix': rest}
    return {}


def list_traits(req: app.Request) -> app.Response:
    req.authorize('placement:traits:list')
    params = util.query(req, schema.LIST_TRAITS)
    filters = _name_filter(params['name']) if 'name' in params else {}
    if 'associated' in params:
        value = params['associated'].lower()
        if value not in ('true', 'false'):
            raise errors.bad_request('The query parameter "associated" only '
                                     'accepts "true" or "false"')
        filters['associated'] = value == 'true'
    return app.json_response(
        {'traits': req.db(trait_ops.list_traits, **filters)})


def show(req: app.Request) -> app.Response:
    req.authorize('placement:traits:show')
    name = req.urlvars['name']
    if not req.db(trait_ops.exists, name):
        raise errors.not_found(f'No such trait(s): {name}.')
    return app.Response(204, cache_headers=True)


def create(req: app.Request) -> app.Response:
    req.authorize('placement:traits:update')
    name = req.urlvars['name']
    if len(name) > 255 or not _CUSTOM.match(name):
        raise errors.bad_request(
            'The trait is invalid. A valid trait must be no longer than 255 '
            'characters, start with the prefix "CUSTOM_" and use following '
            'characters: "A"-"Z", "0"-"9" and "_"')
    created = req.db(trait_ops.create, name)
    return app.Response(201 if created else 204, headers={
        'Location': f'{req.script_name}/traits/{name}'}, cache_headers=True)


def delete(req: app.Request) -> app.Response:
    req.authorize('placement:traits:delete')
    req.db(trait_ops.delete, req.urlvars['name'])
    return app.no_content()


def provider_traits(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:traits:list')

    generation, names = req.db(util.provider_read, req.urlvars['uuid'],
                               trait_ops.of_provider)
    return app.json_response({'traits': names,
                              'resource_provider_generation': generation})


def _set(conn, uuid: str, names: list, generation: int | None) -> int:
    rp = util.provider(conn, uuid)
    if generation is not None:
        util.check_generation(rp, generation)
    unknown = trait_ops.missing(conn, names)
    if unknown:
        raise errors.bad_request(f'No such trait(s): {", ".join(unknown)}')
    try:
        result = provider_ops.set_traits(conn, uuid, names, rp.generation)
    except exception.InvalidInput as error:
        raise errors.bad_request(str(error)) from None
    return result[uuid]


def set_provider_traits(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:traits:update')
    body = req.json(schema.SET_TRAITS_FOR_RP)
    uuid = req.urlvars['uuid']
    generation = req.db(_set, uuid, body['traits'],
                        body['resource_provider_generation'])
    return app.json_response({'traits': sorted(set(body['traits'])),
                              'resource_provider_generation': generation})


def delete_provider_traits(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:traits:delete')
    req.db(_set, req.urlvars['uuid'], [], None)
    return app.no_content()
