"""How it runs: the pbr WSGI script serves after tools/setup.sh, the
configuration decides the authentication."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import webtest

from nova_rt.placement.rest import wsgi

SCRIPT = pathlib.Path(sys.executable).parent / 'nova-rt-placement-api'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _config(tmp_path, strategy='noauth2') -> pathlib.Path:
    path = tmp_path / 'nova-rt.conf'
    path.write_text(
        f'[DEFAULT]\nstate_path = {tmp_path}\n'
        f'[api]\nauth_strategy = {strategy}\n'
        f'[placement_database]\nconnection = sqlite:///{tmp_path}/p.sqlite\n'
        'sync_on_startup = true\n'
        # Where clients are told to get a token (nothing is asked of it
        # for a request that has none).
        '[keystone_authtoken]\nwww_authenticate_uri = http://127.0.0.1:9/\n')
    return path


def _get(url, token=None):
    request = urllib.request.Request(url, headers={
        'X-Auth-Token': token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b'null')


@pytest.mark.skipif(not SCRIPT.exists(),
                    reason='run tools/setup.sh: it writes the WSGI script')
def test_the_wsgi_script_serves(tmp_path):
    port = _free_port()
    log = open(tmp_path / 'server.log', 'w')
    conf = _config(tmp_path)
    conf.write_text(conf.read_text().replace(
        '[DEFAULT]\n', '[DEFAULT]\ndebug = true\n'))
    proc = subprocess.Popen(
        [str(SCRIPT), '--host', '127.0.0.1', '--port', str(port), '--',
         '--config-file', str(conf)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f'http://127.0.0.1:{port}/')
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / 'server.log').read_text()
                assert time.monotonic() < deadline, 'the server never answered'
                time.sleep(0.2)
        assert status == 200 and body['versions'][0]['status'] == 'CURRENT'
        status, body = _get(f'http://127.0.0.1:{port}/resource_providers',
                            token='admin')
        assert (status, body) == (200, {'resource_providers': []})
        status, _body = _get(f'http://127.0.0.1:{port}/resource_providers')
        assert status == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    # As the RPC service, collections skip what the start-up made.
    assert re.search(r'\b[1-9][0-9]* start-up objects exempted from garbage '
                     'collection', (tmp_path / 'server.log').read_text())


def test_keystone_strategy_wants_a_token_but_not_for_the_root(tmp_path):
    conf = wsgi.load_config(['--config-file',
                             str(_config(tmp_path, 'keystone'))])
    client = webtest.TestApp(wsgi.deploy(conf))
    assert client.get('/').status_int == 200
    resp = client.get('/resource_providers', status=401)
    assert resp.status_int == 401
    # An identity header sent by the client is never taken for one.
    client.get('/resource_providers', headers={'X-User-Id': 'admin',
                                               'X-Roles': 'admin'},
               status=401)


def test_a_database_behind_the_schema_is_refused(tmp_path):
    path = tmp_path / 'behind.conf'
    path.write_text(
        f'[DEFAULT]\nstate_path = {tmp_path}\n[api]\nauth_strategy = noauth2\n'
        f'[placement_database]\nconnection = sqlite:///{tmp_path}/e.sqlite\n')
    conf = wsgi.load_config(['--config-file', str(path)])
    with pytest.raises(Exception, match='nova-rt-manage db sync'):
        wsgi.deploy(conf)


def test_config_files_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(wsgi.ENV_CONFIG_FILES, f' {tmp_path}/a.conf, b.conf ,')
    assert wsgi.config_files() == [f'{tmp_path}/a.conf', 'b.conf']
