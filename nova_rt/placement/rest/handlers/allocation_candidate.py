"""``GET /allocation_candidates`` (microversion 1.10 and later).

The query string is parsed by ``candidate_request`` (Placement's checks and
error texts per microversion), the candidates found by ``candidates`` in
one transaction, the answer shaped for the requested microversion there.
"""

from __future__ import annotations

from nova_rt.placement import candidate_request
from nova_rt.placement import candidates
from nova_rt.placement.rest import app
from nova_rt.placement.rest import errors


def list_allocation_candidates(req: app.Request) -> app.Response:
    req.authorize('placement:allocation_candidates:list')
    version = tuple(req.microversion)
    try:
        params = req.params.items()
    except UnicodeDecodeError as error:
        raise errors.bad_request(
            f'Invalid query string parameters: {error}') from None
    try:
        request = candidate_request.parse(params, version)
        # Written as JSON by the engine (``candidate_answer``): a thousand
        # candidates as dicts, then encoded, took twice as long.
        body = req.db(candidates.encoded_allocation_candidates, request,
                      version, req.options.heartbeat_timeout,
                      req.options.candidate_order)
    except candidate_request.BadQuery as error:
        raise errors.bad_request(error.detail, error.code) from None
    return app.Response(200, body)
