"""A database that cannot be used: 503, and the client is not told where
the database is (review bug 8); the service's log says it."""

import logging
import types

import pytest

from nova_rt.placement import db
from nova_rt.placement.rest import app as app_mod
from nova_rt.placement.rest import auth
from tests.functional.placement import fixtures
from tests.functional.placement.rest.conftest import Client


@pytest.fixture
def broken_client():
    fixtures.require_pg()
    # A real server refusing a role that does not exist.
    engine = db.create_engine('postgresql+psycopg://nova_rt_rest_fix_nobody'
                              '@127.0.0.1:5432/nova_rt_rest_fix_nowhere')
    conf = types.SimpleNamespace(api=types.SimpleNamespace(
        auth_strategy='noauth2'))
    yield Client(auth.wrap(app_mod.PlacementApp(engine, app_mod.Options()),
                           conf))
    engine.dispose()


def test_503_names_no_host_port_or_role(broken_client, caplog):
    caplog.set_level(logging.ERROR)
    resp = broken_client.call('GET', '/resource_providers', status=503)
    detail = resp.json['errors'][0]['detail']
    for secret in ('127.0.0.1', '5432', 'nova_rt_rest_fix_nobody',
                   'nova_rt_rest_fix_nowhere'):
        assert secret not in detail, detail
    assert 'retry' in detail.lower()
    # The operator still learns why, from the log, with the request id.
    request_id = resp.json['errors'][0]['request_id']
    assert any('nova_rt_rest_fix_nobody' in r.getMessage()
               and request_id in r.getMessage() for r in caplog.records)
