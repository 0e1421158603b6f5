"""``/resource_classes`` and ``/resource_classes/{name}``."""

from __future__ import annotations

from nova_rt.placement import resource_class_ops as ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.schemas import resource_class as schema
from nova_rt.placement.rest.schemas import validation


def _url(req, name: str) -> str:
    return f'{req.script_name}/resource_classes/{name}'


def _serialize(req, name: str) -> dict:
    return {'name': name, 'links': [{'rel': 'self', 'href': _url(req, name)}]}


def list_classes(req: app.Request) -> app.Response:
    req.authorize('placement:resource_classes:list')
    return app.json_response({'resource_classes': [
        _serialize(req, name) for name in req.db(ops.list_classes)]})


def show(req: app.Request) -> app.Response:
    req.authorize('placement:resource_classes:show')
    return app.json_response(_serialize(req, req.db(ops.get,
                                                    req.urlvars['name'])))


def create(req: app.Request) -> app.Response:
    req.authorize('placement:resource_classes:create')
    name = req.json(schema.NAME)['name']
    # Placement's POST conflict carries no code of its own.
    req.db(ops.create, name, errors.DEFAULT)
    return app.Response(201, headers={'Location': _url(req, name)})


def update(req: app.Request) -> app.Response:
    req.authorize('placement:resource_classes:update')
    name = req.urlvars['name']
    if req.microversion < (1, 7):
        # 1.2-1.6: rename a custom class.
        if req.webob.content_type != app.JSON:
            raise errors.HTTPError(
                415, f'The media type {req.webob.content_type or None} is '
                     f'not supported, use {app.JSON}')
        new_name = req.json(schema.NAME)['name']
        req.db(ops.rename, name, new_name)
        return app.json_response(_serialize(req, new_name))
    # 1.7: bodiless create-or-check.
    wrong = validation.error({'name': name}, schema.NAME)
    if wrong is not None:
        raise errors.bad_request(f'JSON does not validate: {wrong}')
    created = req.db(ops.ensure, name)
    return app.Response(201 if created else 204,
                        headers={'Location': _url(req, name)})


def delete(req: app.Request) -> app.Response:
    req.authorize('placement:resource_classes:delete')
    req.db(ops.delete, req.urlvars['name'])
    return app.no_content()
