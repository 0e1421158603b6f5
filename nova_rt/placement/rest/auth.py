"""Authentication in front of the application, as Placement assembles it.

``[api] auth_strategy = keystone``: keystonemiddleware's ``auth_token``
(options in ``[keystone_authtoken]``) checks the token and sets the
identity headers.  ``noauth2`` (development): ``X-Auth-Token: admin`` is a
user with the admin role, any other token a user without roles, and
``user:project`` names the user and the project (else the project is the
user); an ``X-Roles`` header, if sent, is taken as the roles, and an
``X-Project-Id`` header as the project.  Without
a token: 401.  Either way the root document (``/``) is served to anyone,
so that clients can discover versions before they authenticate.
"""

from __future__ import annotations

import json
import uuid

_ROOT = ('/', '')
_IDENTITY_HEADERS = ('HTTP_X_USER_ID', 'HTTP_X_TENANT_ID',
                     'HTTP_X_PROJECT_ID', 'HTTP_X_ROLES', 'HTTP_X_USER',
                     'HTTP_X_TENANT')


def _unauthorized(environ, start_response, detail: str):
    request_id = f'req-{uuid.uuid4()}'
    body = json.dumps({'errors': [{
        'status': 401, 'title': 'Unauthorized', 'detail': detail,
        'request_id': request_id}]}).encode()
    start_response('401 Unauthorized', [
        ('Content-Type', 'application/json'),
        ('Content-Length', str(len(body))),
        ('x-openstack-request-id', request_id),
        ('WWW-Authenticate', 'Keystone uri="noauth2"')])
    return [body]


class NoAuth:
    """``noauth2``: the token names who asks; nothing is checked."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO', '') in _ROOT:
            return self.application(environ, start_response)
        token = environ.get('HTTP_X_AUTH_TOKEN')
        if not token:
            return _unauthorized(environ, start_response,
                                 'This server could not verify that you '
                                 'are authorized to access the document '
                                 'you requested.')
        user_id, _sep, project_id = token.partition(':')
        if 'HTTP_X_ROLES' in environ:
            roles = environ['HTTP_X_ROLES']
        else:
            roles = 'admin' if user_id == 'admin' else ''
        environ['HTTP_X_USER_ID'] = user_id
        if not environ.get('HTTP_OPENSTACK_SYSTEM_SCOPE'):
            # As Placement's: the token's project, unless the request names
            # one itself (X-Project-Id comes first for oslo.context).
            environ['HTTP_X_TENANT_ID'] = project_id or user_id
            environ.setdefault('HTTP_X_PROJECT_ID', project_id or user_id)
        environ['HTTP_X_ROLES'] = roles
        return self.application(environ, start_response)


class RequireUser:
    """After authentication: a request that names no user is 401, except
    the root document."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if (environ.get('PATH_INFO', '') not in _ROOT
                and not (environ.get('HTTP_X_USER_ID')
                         or environ.get('HTTP_X_USER'))):
            return _unauthorized(environ, start_response,
                                 'The request names no user.')
        return self.application(environ, start_response)


class _KeystoneRootOpen:
    """keystonemiddleware's auth_token, except for the root document."""

    def __init__(self, application, conf):
        from keystonemiddleware import auth_token
        self.application = application
        self.protected = auth_token.AuthProtocol(
            application, {'oslo_config_config': conf})

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO', '') in _ROOT:
            # Nothing a client sent may pass for an identity.
            for header in _IDENTITY_HEADERS:
                environ.pop(header, None)
            return self.application(environ, start_response)
        return self.protected(environ, start_response)


def wrap(application, conf):
    """``application`` behind the authentication ``[api] auth_strategy``
    names."""
    application = RequireUser(application)
    if conf.api.auth_strategy == 'noauth2':
        return NoAuth(application)
    return _KeystoneRootOpen(application, conf)
