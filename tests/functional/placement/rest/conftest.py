"""The REST API in process (webtest) on the placement database of each
backend that ``direct_db_url`` gives (SQLite, PostgreSQL), emptied for
every test, behind noauth2 as ``[api] auth_strategy = noauth2`` sets it."""

import types

import pytest
import webtest

from nova_rt.placement import db
from nova_rt.placement import manager
from nova_rt.placement.rest import app as app_mod
from nova_rt.placement.rest import auth
from tests.functional.placement.helpers import Conf

ADMIN = {'X-Auth-Token': 'admin'}
LATEST = {'X-Auth-Token': 'admin', 'OpenStack-API-Version': 'placement latest'}


def version(v: str, token: str = 'admin') -> dict:
    return {'X-Auth-Token': token, 'OpenStack-API-Version': f'placement {v}'}


class Client(webtest.TestApp):
    """webtest with Placement's habits: admin token, a microversion."""

    def call(self, method: str, path: str, body=None, v='latest',
             token='admin', status=None, headers=None):
        # webtest checks no status at all with expect_errors, so the
        # expected one is checked here.
        kwargs = {'headers': {**version(v, token), **(headers or {})},
                  'status': '*', 'expect_errors': True}
        method = method.lower()
        if body is not None:
            resp = getattr(self, f'{method}_json')(path, body, **kwargs)
        else:
            resp = getattr(self, method)(path, **kwargs)
        if status is not None and resp.status_int != status:
            raise AssertionError(
                f'{method.upper()} {path}: expected {status}, got '
                f'{resp.status}: {resp.text[:500]}')
        return resp


@pytest.fixture
def rest_engine(direct_db_url):
    return db.get_engine(direct_db_url)


@pytest.fixture
def client(rest_engine):
    conf = types.SimpleNamespace(api=types.SimpleNamespace(
        auth_strategy='noauth2'))
    application = app_mod.PlacementApp(rest_engine, app_mod.Options())
    return Client(auth.wrap(application, conf))


@pytest.fixture
def rpc(rest_engine):
    """The RPC manager on the same database."""
    return manager.PlacementManager(rest_engine, Conf)
