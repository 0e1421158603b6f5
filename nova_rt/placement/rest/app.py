"""The WSGI application: request, response, dispatch, errors.

One request goes: request id, microversion (400/406), route (404/405,
version bounds), Accept and Content-Type checks (406/415), the handler,
then the microversion header, ``Vary`` and the request id on the answer,
whatever it is.  Errors are Placement's JSON bodies (``errors.body``);
an exception of the contract (``nova_rt.exception``) is mapped to its HTTP
status here, so that handlers just call operations.  Authentication
wraps this application (``auth.wrap``); policy is checked by each handler
(``req.authorize``), as in Placement.

Handler interface: ``handler(req: Request) -> Response``.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import uuid as uuid_mod

import webob
from oslo_context import context as oslo_context

from nova_rt import exception
from nova_rt import validation as rpc_validation
from nova_rt.placement import transaction
from nova_rt.placement.rest import errors
from nova_rt.placement.rest import microversion
from nova_rt.placement.rest import policy as policy_mod
from nova_rt.placement.rest.schemas import validation

LOG = logging.getLogger(__name__)
JSON = 'application/json'
REQUEST_ID_HEADER = 'x-openstack-request-id'
_REQUEST_ID = re.compile(
    r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
#: From this microversion, GET answers say ``Cache-Control: no-cache`` and
#: carry ``Last-Modified``.
_CACHE_HEADERS = (1, 15)
class Options:
    """The options of this process that operations take."""

    def __init__(self, heartbeat_timeout: int = 60,
                 candidate_order: str = 'spread'):
        self.heartbeat_timeout = heartbeat_timeout
        self.candidate_order = candidate_order


class Context(oslo_context.RequestContext):
    """Who asks (``user_id``, ``project_id``, ``roles``, ``is_admin``, from
    the auth middleware's headers) and the ``request_id``."""


class Response:
    """What a handler returns: a status, a JSON-able body or none, headers."""

    def __init__(self, status: int = 200, body=None, headers=None,
                 content_type: str | None = JSON, cache_headers=None):
        self.status = status
        #: From 1.15, ``Cache-Control``/``Last-Modified``: Placement sends
        #: them with every representation (200, or 201 with a body), and
        #: with a trait's 201/204.
        self.cache_headers = (status in (200, 201) and body is not None
                              if cache_headers is None else cache_headers)
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type if body is not None else None

    def encoded(self) -> bytes:
        if self.body is None:
            return b''
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def json_response(body, status: int = 200, headers=None) -> Response:
    return Response(status, body, headers)


def no_content(headers=None) -> Response:
    return Response(204, None, headers)


class Request:
    """What a handler gets."""

    def __init__(self, environ: dict, app: PlacementApp,
                 version: microversion.Version, context: Context,
                 urlvars: dict, route_name: str):
        self.environ = environ
        self.webob = webob.Request(environ)
        self.app = app
        self.microversion = version
        self.context = context
        self.urlvars = urlvars
        self.route_name = route_name

    @property
    def method(self) -> str:
        return self.environ['REQUEST_METHOD']

    @property
    def params(self):
        """The query string: a multidict (``getall``, ``getone``, ``items``)."""
        return self.webob.GET

    @property
    def headers(self):
        return self.webob.headers

    @property
    def options(self) -> Options:
        return self.app.options

    @property
    def script_name(self) -> str:
        """The mount point, for links (``/placement`` under a prefix)."""
        return self.environ.get('SCRIPT_NAME', '')

    def json(self, schema: dict | None = None):
        """The body, parsed and checked against ``schema`` (400 if not)."""
        try:
            # NaN and +-Infinity are not JSON (RFC 8259), though Python's
            # parser takes them; no number of Placement's can be one.
            data = json.loads(self.webob.body, parse_constant=_not_json)
        except ValueError as error:
            raise errors.bad_request(f'Malformed JSON: {error}') from None
        if schema is not None:
            wrong = validation.error(data, schema)
            if wrong is not None:
                raise errors.bad_request(f'JSON does not validate: {wrong}')
        return data

    def db(self, func, *args, **kwargs):
        """``func(conn, *args, **kwargs)`` in one transaction, with the
        retries and error mapping the RPC manager uses."""
        return self.app.transactions.run(
            f'rest:{self.route_name}',
            lambda conn: func(conn, *args, **kwargs), {},
            lost_race=_lost_race)

    def authorize(self, action: str, target: dict | None = None) -> None:
        """403 (nothing done) unless policy allows ``action``."""
        self.app.policy.authorize(self.context, action, target)


def _lost_race() -> exception.Conflict:
    """A write that lost a race the operation does not name itself (a row
    created or removed at the same moment by another request)."""
    return exception.Conflict(
        reason='Another request changed the same data concurrently; '
               'nothing was changed. Retry the request.',
        code=errors.CONCURRENT_UPDATE)


def _not_json(constant: str):
    raise ValueError(f'{constant} is not a JSON number')


#: A contract exception's HTTP status (and Placement's code).
_STATUS = [
    (exception.NotFound, 404, None),
    (exception.Conflict, 409, None),
    (exception.ResourceProviderNotFound, 404, None),
    (exception.ResourceProviderGenerationConflict, 409,
     errors.CONCURRENT_UPDATE),
    (exception.ConsumerGenerationConflict, 409, errors.CONCURRENT_UPDATE),
    (exception.InventoryInUse, 409, errors.INVENTORY_INUSE),
    (exception.AllocationCapacityExceeded, 409, None),
    (exception.NotAuthorized, 409, None),
    (exception.InvalidAllocation, 400, None),
    (exception.InvalidInput, 400, None),
]


#: What an API client is told of a database that cannot be used: the
#: driver's reason names the server, its port and the role (logged, with
#: the request id, by ``_http_error``).
UNAVAILABLE = ('The placement database cannot be used now; nothing was '
               'changed. Retry later.')


def _http_error(error: exception.NovaRtException,
                request_id: str) -> errors.HTTPError:
    if isinstance(error, exception.HypervisorUnavailable):
        LOG.error('Placement API 503 (request %s): %s', request_id, error)
        return errors.HTTPError(503, UNAVAILABLE)
    for cls, status, code in _STATUS:
        if isinstance(error, cls):
            return errors.HTTPError(status, str(error),
                                    error.kwargs.get('code') or code)
    return errors.HTTPError(500, str(error))


class PlacementApp:
    """The application (without authentication: see ``auth.wrap``)."""

    def __init__(self, engine, options: Options | None = None,
                 enforcer: policy_mod.Policy | None = None,
                 db_retries=None):
        self.transactions = transaction.Transactions(engine, db_retries)
        self.options = options or Options()
        self.policy = enforcer or policy_mod.Policy()
        # (Here: the table names the handlers, which use this module.)
        from nova_rt.placement.rest import routes
        self.table = routes.TABLE

    def __call__(self, environ, start_response):
        request_id = _request_id(environ)
        environ['openstack.request_id'] = request_id
        version = None
        try:
            version = _negotiate(environ)
            response = self._dispatch(environ, version, request_id)
        except errors.HTTPError as error:
            response = _error_response(error, request_id, version,
                                       environ.get('HTTP_ACCEPT', ''))
        except Exception:
            LOG.exception('Placement API unexpected error (request %s)',
                          request_id)
            response = _error_response(
                errors.HTTPError(500, 'An unexpected error occurred; the '
                                      'service log has the details.'),
                request_id, version)
        return _send(response, environ, start_response, request_id, version)

    def _dispatch(self, environ, version, request_id) -> Response:
        method = environ['REQUEST_METHOD']
        route, urlvars = self.table.match(environ.get('PATH_INFO', ''),
                                          method)
        if route is None:
            allowed = self.table.allowed(environ.get('PATH_INFO', ''))
            if not allowed:
                raise errors.not_found('The resource could not be found.')
            raise errors.HTTPError(
                405, f'The method {method} is not allowed for this resource.'
                     '\n\n The method specified is not allowed for this '
                     'resource.', headers={'Allow': ', '.join(allowed)})
        if not route.min_version <= version <= route.max_version:
            raise errors.HTTPError(route.too_old_status,
                                   'The resource could not be found.'
                                   if route.too_old_status == 404 else
                                   'The method specified is not allowed '
                                   'for this resource.')
        _check_content(environ, route)
        context = Context.from_environ(environ, request_id=request_id)
        context.is_admin = 'admin' in context.roles
        req = Request(environ, self, version, context, urlvars, route.name)
        try:
            return route.handler(req)
        except exception.NovaRtException as error:
            raise _http_error(error, request_id) from None
        except policy_mod.Forbidden as error:
            raise errors.HTTPError(403, str(error)) from None


def _request_id(environ) -> str:
    # As oslo.middleware: a caller's well-formed id is kept (a scheduler
    # and placement then log the same one).
    given = environ.get('HTTP_X_OPENSTACK_REQUEST_ID', '')
    if _REQUEST_ID.match(given):
        return given
    return f'req-{uuid_mod.uuid4()}'


def _negotiate(environ) -> microversion.Version:
    try:
        return microversion.negotiate(
            environ.get('HTTP_OPENSTACK_API_VERSION'))
    except microversion.Malformed as error:
        raise errors.bad_request(f'Invalid microversion: {error}') from None
    except microversion.Unacceptable as error:
        raise errors.HTTPError(
            406, f'Invalid microversion: {error}',
            extra={'max_version': str(microversion.MAX),
                   'min_version': str(microversion.MIN)}) from None


#: The largest request body taken (bytes).
MAX_BODY = rpc_validation.REPORT.chars


def _check_content(environ, route) -> None:
    length = environ.get('CONTENT_LENGTH')
    try:
        has_body = bool(length) and int(length) > 0
    except ValueError:
        raise errors.bad_request(
            'content-length header must be an integer') from None
    if has_body and int(length) > MAX_BODY:
        # Refused before a byte of it is read: the RPC API's bound on a
        # report, so that no body parsed here is larger than one it takes.
        raise errors.HTTPError(
            413, f'Request body of {int(length)} bytes is larger than '
                 f'{MAX_BODY} bytes')
    content_type = environ.get('CONTENT_TYPE', '')
    if has_body and not content_type:
        raise errors.bad_request(
            'content-type header required when content-length > 0')
    if route.takes_body:
        given = content_type.split(';')[0].strip().lower()
        if given != JSON:
            raise errors.HTTPError(
                415, f'The media type {given or None} is not supported, '
                     f'use {JSON}')
    elif route.method == 'GET' and environ.get('HTTP_ACCEPT'):
        accept = webob.acceptparse.create_accept_header(
            environ['HTTP_ACCEPT'])
        if not accept.acceptable_offers([JSON]):
            raise errors.HTTPError(406, f'Only {JSON} is provided')


def _error_response(error: errors.HTTPError, request_id, version,
                    accept: str = '') -> Response:
    if error.status >= 500:
        LOG.error('Placement API %d (request %s): %s', error.status,
                  request_id, error.detail)
    else:
        LOG.debug('Placement API returning %d: %s', error.status,
                  error.detail)
    kind = _error_media_type(accept)
    if kind == JSON:
        return Response(error.status, errors.body(error, request_id, version),
                        error.headers)
    return Response(error.status, errors.text(error, kind).encode(),
                    error.headers, content_type=f'{kind}; charset=UTF-8')


def _error_media_type(accept: str) -> str:
    """JSON unless the client asks for HTML or plain text only (webob's
    choice for Placement's errors)."""
    if not accept:
        return JSON
    offers = webob.acceptparse.create_accept_header(accept).acceptable_offers(
        [JSON, 'text/html', 'text/plain'])
    return offers[0][0] if offers else JSON


def _send(response: Response, environ, start_response, request_id,
          version):
    body = response.encoded()
    location = response.headers.get('Location')
    if location and location.startswith('/'):
        # Absolute, as webob makes Placement's.
        response.headers['Location'] = webob.Request(environ).host_url + \
            location
    headers = [(k, str(v)) for k, v in response.headers.items()]
    if response.content_type:
        headers.append(('Content-Type', response.content_type))
    headers.append(('Content-Length', str(len(body))))
    headers.append((REQUEST_ID_HEADER, request_id))
    if version is not None:
        headers.append((microversion.HEADER,
                        microversion.response_header(version)))
        headers.append(('Vary', microversion.HEADER))
        if (version >= _CACHE_HEADERS and response.cache_headers
                and response.status < 300):
            headers.append(('Cache-Control', 'no-cache'))
            headers.append(('Last-Modified', _http_date()))
    status = f'{response.status} {errors.HTTPError(response.status, "").title}'
    start_response(status, headers)
    return [body]


def _http_date() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime('%a, %d %b %Y %H:%M:%S GMT')
