"""``/resource_providers/{uuid}/usages`` and ``/usages`` (1.9)."""

from __future__ import annotations

import functools

from nova_rt.placement import usage_ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest.handlers import util

_ID = {'type': 'string', 'minLength': 1, 'maxLength': 255}


@functools.cache
def _query(version) -> dict:
    properties = {'project_id': _ID, 'user_id': _ID}
    if version >= (1, 38):
        properties['consumer_type'] = {
            'type': 'string', 'pattern': '^[A-Z0-9_]+$|^all$|^unknown$',
            'minLength': 1, 'maxLength': 255}
    return {'type': 'object', 'properties': properties,
            'required': ['project_id'], 'additionalProperties': False}


def provider_usages(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:usages')

    generation, usages = req.db(util.provider_read, req.urlvars['uuid'],
                                usage_ops.of_provider)
    return app.json_response({'resource_provider_generation': generation,
                              'usages': usages})


def total_usages(req: app.Request) -> app.Response:
    req.authorize('placement:usages',
                  {'project_id': req.params.get('project_id')})
    query = util.query(req, _query(req.microversion))
    if req.microversion >= (1, 38):
        usages = req.db(usage_ops.by_consumer_type, query['project_id'],
                        query.get('user_id'), query.get('consumer_type'))
    else:
        usages = req.db(usage_ops.of_project, query['project_id'],
                        query.get('user_id'))
    return app.json_response({'usages': usages})
