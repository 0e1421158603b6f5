"""A live Placement API server for the client tests, the gabbi runs and
bench/bench_rest.py: nova_rt's ``nova-rt-placement-api`` or, to validate the
harness itself, OpenStack Placement 16 from the reference virtualenv.

The target is ``nova-rt`` unless ``NOVA_RT_CLIENTS_TARGET=placement``: every
client test was first run against Placement 16 that way, so a failure against
nova_rt is nova_rt's, not the test's. Both run with noauth2 (the token
``admin`` is the admin) on a database of their own, made by their own
``db sync``; SQLite unless a database URL is given.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[3]
HERE = pathlib.Path(__file__).resolve().parent
#: nova_rt's own virtualenv: the one running this.
VENV_BIN = pathlib.Path(sys.executable).parent
REF_VENV = pathlib.Path(os.environ.get('NOVA_RT_REF_VENV', REPO / '.venv-ref'))
TARGETS = ('nova-rt', 'placement')
ADMIN_HEADERS = {'X-Auth-Token': 'admin', 'Accept': 'application/json'}


#: kind -> an SQLite database file made by that kind's ``db sync``.
_SYNCED: dict = {}


class ServerError(Exception):
    pass


def target() -> str:
    name = os.environ.get('NOVA_RT_CLIENTS_TARGET', 'nova-rt')
    if name not in TARGETS:
        raise ServerError(f'NOVA_RT_CLIENTS_TARGET={name!r}: expected one of '
                          f'{", ".join(TARGETS)}')
    return name


def ref_bin(name: str) -> str:
    return str(REF_VENV / 'bin' / name)


def ref_missing() -> str | None:
    """Why the reference virtualenv cannot be used, or None."""
    for name in ('python', 'openstack', 'gabbi-run', 'placement-manage'):
        if not os.access(ref_bin(name), os.X_OK):
            return (f'{ref_bin(name)} not found: tools/setup-ref.sh makes the '
                    'reference virtualenv')
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Server:
    """One server process on a free loopback port, with its own database."""

    def __init__(self, kind: str | None = None, db_url: str | None = None,
                 workdir: str | None = None):
        self.kind = kind or target()
        if self.kind not in TARGETS:
            raise ServerError(f'unknown server kind {self.kind!r}')
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f'rest-clients-{self.kind}-')
        self.db_url = db_url or f'sqlite:///{self.workdir}/placement.sqlite'
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = os.path.join(self.workdir, 'server.log')
        self.proc: subprocess.Popen | None = None

    # -- configuration -----------------------------------------------------------

    def _write_config(self) -> str:
        if self.kind == 'placement':
            path = os.path.join(self.workdir, 'placement.conf')
            text = ('[DEFAULT]\ndebug = false\n[api]\nauth_strategy = noauth2\n'
                    f'[placement_database]\nconnection = {self.db_url}\n')
        else:
            path = os.path.join(self.workdir, 'nova_rt.conf')
            text = (f'[DEFAULT]\nstate_path = {self.workdir}\n'
                    '[api]\nauth_strategy = noauth2\n'
                    f'[placement_database]\nconnection = {self.db_url}\n')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def _db_sync(self, config: str) -> None:
        own_sqlite = self.db_url == f'sqlite:///{self.workdir}/placement.sqlite'
        if own_sqlite and self.kind in _SYNCED:
            # A copy of a database this session synced already: the same
            # schema, without another process start and migration run per
            # server (about half of a gabbi file's time).
            shutil.copyfile(_SYNCED[self.kind], f'{self.workdir}/placement.sqlite')
            return
        self._run_db_sync(config)
        if own_sqlite:
            template = tempfile.NamedTemporaryFile(
                prefix=f'rest-clients-{self.kind}-synced-', suffix='.sqlite',
                delete=False)
            template.close()
            shutil.copyfile(f'{self.workdir}/placement.sqlite', template.name)
            atexit.register(os.unlink, template.name)
            _SYNCED[self.kind] = template.name

    def _run_db_sync(self, config: str) -> None:
        if self.kind == 'placement':
            argv = [ref_bin('placement-manage'), '--config-file', config, 'db', 'sync']
        else:
            argv = [sys.executable, '-m', 'nova_rt.cmd.manage', '--config-file',
                    config, 'db', 'sync']
        result = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                                stdin=subprocess.DEVNULL, cwd=self.workdir)
        if result.returncode:
            raise ServerError(f'{" ".join(argv)} failed:\n{result.stderr[-3000:]}')

    def argv(self, config: str) -> list:
        if self.kind == 'placement':
            return [ref_bin('python'), str(HERE / 'refserve.py'), '--port',
                    str(self.port)]
        return [str(VENV_BIN / 'nova-rt-placement-api'), '--port', str(self.port),
                '--', '--config-file', config]

    # -- life cycle --------------------------------------------------------------

    def start(self, timeout: float = 90) -> 'Server':
        config = self._write_config()
        self._db_sync(config)
        env = {**os.environ, 'PYTHONWARNINGS': 'ignore',
               'OS_PLACEMENT_CONFIG_DIR': self.workdir}
        with open(self.log, 'w') as log:
            self.proc = subprocess.Popen(
                self.argv(config), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.workdir, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f'{self.kind} server exited with '
                                  f'{self.proc.returncode}:\n{self.log_tail()}')
            with contextlib.suppress(OSError):
                status, _ = self.request('GET', '/')
                if status == 200:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f'{self.kind} server did not answer GET / on '
                                  f'{self.url} in {timeout}s:\n{self.log_tail()}')
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._own_dir and os.environ.get('NOVA_RT_CLIENTS_KEEP') != '1':
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> 'Server':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return '(no log)'

    # -- plain HTTP, for set-up and checks ---------------------------------------

    def request(self, method: str, path: str, body=None, version: str | None = None,
                token: str = 'admin'):
        """(status, parsed JSON body or None)."""
        headers = {**ADMIN_HEADERS, 'X-Auth-Token': token}
        if version:
            headers['OpenStack-API-Version'] = f'placement {version}'
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw.strip() else None)
