"""Live-server fixtures for the real-client tests.

They need the reference virtualenv (tools/setup-ref.sh; tools/run-tests.sh
makes it). Without it they skip with one line saying so, unless
``NOVA_RT_REQUIRE_REF=1`` (run-tests.sh sets it), where that is a failure.
"""

import os

import pytest

from tests.functional.clients import server as server_mod


@pytest.fixture(scope='session')
def ref_venv():
    missing = server_mod.ref_missing()
    if missing:
        if os.environ.get('NOVA_RT_REQUIRE_REF') == '1':
            pytest.fail(missing)
        pytest.skip(missing)
    return server_mod.REF_VENV


@pytest.fixture
def live_server(ref_venv):
    """A fresh server (the target: nova-rt unless NOVA_RT_CLIENTS_TARGET)."""
    srv = server_mod.Server().start()
    yield srv
    failed_early = srv.proc.poll() is not None
    srv.stop()
    assert not failed_early, f'the server died during the test:\n{srv.log_tail()}'
