"""``POST /reshaper`` (1.30; the service role's by default)."""

from __future__ import annotations

import copy
import functools

import uuid as uuid_mod

from nova_rt.placement import reshaper_ops
from nova_rt.placement.rest import app
from nova_rt.placement.rest.handlers import allocation
from nova_rt.placement.rest.handlers import inventory
from nova_rt.placement.rest.schemas import allocation as allocation_schema
from nova_rt.placement.rest.schemas import inventory as inventory_schema


@functools.cache
def _schema(version) -> dict:
    allocations = copy.deepcopy(allocation_schema.post(version))
    allocations['minProperties'] = 0
    return {
        'type': 'object',
        'properties': {
            'inventories': {
                'type': 'object', 'minProperties': 1,
                'patternProperties': {
                    allocation_schema.UUID_PATTERN: inventory_schema.PUT_ALL},
                'additionalProperties': False},
            'allocations': allocations,
        },
        'required': ['inventories', 'allocations'],
        'additionalProperties': False,
    }


def reshape(req: app.Request) -> app.Response:
    req.authorize('placement:reshaper:reshape')
    body = req.json(_schema(req.microversion))
    inventories = {
        str(uuid_mod.UUID(rp)): (
            entry['resource_provider_generation'],
            {rc: inventory.fields_of(raw)
             for rc, raw in entry['inventories'].items()})
        for rp, entry in body['inventories'].items()}
    allocations = {str(uuid_mod.UUID(c)): allocation.consumer_request(req, entry)
                   for c, entry in body['allocations'].items()}
    req.db(reshaper_ops.reshape, inventories, allocations)
    return app.no_content()
