"""What several handlers need: query string checks, provider lookups, the
ownership rule, links."""

from __future__ import annotations

import uuid as uuid_mod

import sqlalchemy as sa

from nova_rt.placement import common
from nova_rt.placement.rest import errors
from nova_rt.placement.rest.schemas import validation


def query(req, schema: dict) -> dict:
    """The query string as a dict (last value of a repeated key), checked
    against ``schema`` (400 ``Invalid query string parameters``)."""
    params = dict(req.params.items())
    wrong = validation.error(params, schema)
    if wrong is not None:
        raise errors.bad_request(f'Invalid query string parameters: {wrong}')
    return params


def is_uuid(value) -> bool:
    try:
        uuid_mod.UUID(str(value))
    except ValueError:
        return False
    return True


def provider(conn, uuid: str, what: str = 'resource provider'):
    """The provider's row (id, uuid, name, host, generation, parent, root)
    or 404."""
    RP = common.RP
    row = conn.execute(sa.select(
        RP.id, RP.uuid, RP.name, RP.host, RP.generation,
        RP.parent_provider_id, RP.root_provider_id).where(
            RP.uuid == uuid)).first()
    if row is None:
        raise errors.not_found(f'No {what} with uuid {uuid} found',
                               errors.RESOURCE_PROVIDER_NOT_FOUND)
    return row


def provider_read(conn, uuid: str, of):
    """``(generation, of(conn, provider id))`` of the provider, or 404: a
    sub-resource read with the generation it was read at."""
    rp = provider(conn, uuid)
    return rp.generation, of(conn, rp.id)


def refuse_host_owned(row, doing: str) -> None:
    """409 for a write that a host's report owns (DESIGN principle 3)."""
    if row.host is not None:
        raise errors.conflict(
            f'Resource provider {row.uuid} belongs to host {row.host}, whose '
            f'own reports are the authority for it: {doing} is refused '
            'through the REST API (use the host\'s configuration, or '
            'nova-rt provider delete once the host is gone).')


def check_generation(row, given: int) -> None:
    if row.generation != given:
        raise errors.conflict(
            "Resource provider's generation already changed. Please update "
            f'the generation and try again. (Provider {row.uuid} is at '
            f'generation {row.generation}, not {given}.)',
            errors.CONCURRENT_UPDATE)


def provider_url(req, uuid: str) -> str:
    return f'{req.script_name}/resource_providers/{uuid}'
