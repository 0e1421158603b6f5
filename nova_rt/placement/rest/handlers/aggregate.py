"""``/resource_providers/{uuid}/aggregates`` (1.1; generations from 1.19)."""

from __future__ import annotations

import sqlalchemy as sa

from nova_rt.placement import models
from nova_rt.placement import provider_ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest.handlers import util

_AGGREGATES = {'type': 'array', 'uniqueItems': True,
               'items': {'type': 'string', 'format': 'uuid'}}
_PUT_1_19 = {'type': 'object',
             'properties': {'aggregates': _AGGREGATES,
                            'resource_provider_generation': {
                                'type': 'integer'}},
             'required': ['aggregates', 'resource_provider_generation'],
             'additionalProperties': False}


def _of(conn, rp_id: int) -> list:
    return sorted(conn.execute(sa.select(models.Aggregate.uuid).join(
        models.ProviderAggregate,
        models.ProviderAggregate.aggregate_id == models.Aggregate.id).where(
            models.ProviderAggregate.resource_provider_id == rp_id)).scalars())


def _body(req, generation: int, aggregates: list) -> dict:
    body = {'aggregates': aggregates}
    if req.microversion >= (1, 19):
        body['resource_provider_generation'] = generation
    return body


def show(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:aggregates:list')

    return app.json_response(_body(req, *req.db(
        util.provider_read, req.urlvars['uuid'], _of)))


def update(req: app.Request) -> app.Response:
    req.authorize('placement:resource_providers:aggregates:update')
    # As Placement: an unknown provider is 404 whatever the body.
    req.db(util.provider, req.urlvars['uuid'])
    if req.microversion >= (1, 19):
        body = req.json(_PUT_1_19)
        aggregates, given = body['aggregates'], body[
            'resource_provider_generation']
    else:
        aggregates, given = req.json(_AGGREGATES), None

    def write(conn, uuid):
        rp = util.provider(conn, uuid)
        if given is None:
            # Before 1.19 Placement neither checks nor moves the generation.
            provider_ops.replace_aggregates(conn, rp.id, aggregates)
            return rp.generation, list(aggregates)
        util.check_generation(rp, given)
        generation = provider_ops.set_aggregates(
            conn, uuid, aggregates, rp.generation)[uuid]
        # The list as given, in its order, as Placement answers.
        return generation, list(aggregates)

    return app.json_response(_body(req, *req.db(write, req.urlvars['uuid'])))
