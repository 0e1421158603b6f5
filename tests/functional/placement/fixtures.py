"""Reusable helpers for tests that need a placement database or a real
``nova-rt-placement`` process on RabbitMQ.

- ``pg_answers()``, ``require_pg()``: PostgreSQL on 127.0.0.1:5432; tests skip
  only when nothing answers there AND ``NOVA_RT_REQUIRE_PG`` is unset.
- ``fresh_pg_database()`` / ``drop_pg_database(url)``: a new database
  ``nova_rt_test_<random>`` (user postgres, trust auth) and its removal.
- ``mysql_answers()``, ``require_mysql()``, ``fresh_mysql_database()``,
  ``drop_mysql_database(url)``: the same for MySQL/MariaDB on
  127.0.0.1:3306 (user root without password, as tools/setup.sh leaves it;
  ``NOVA_RT_REQUIRE_MYSQL`` makes its absence a failure).
- ``fresh_database(backend)`` / ``drop_database(url)``: either of them.
- ``rabbit_vhost()``: a context manager giving a transport URL on a fresh
  RabbitMQ vhost, deleted afterwards.  A unique ``control_exchange`` alone does
  NOT isolate test runs: oslo.messaging names the topic queue after the topic
  only (``nova-rt-placement``), and RabbitMQ queue names are per vhost, so two
  runs on one vhost consume each other's calls whatever their exchanges.
- ``running_placement(db_url, workdir, processes=1, transport_url=None)``: a
  context manager that syncs the schema, starts that many real
  ``nova-rt-placement`` processes on a temp config, a fresh vhost (or the
  ``transport_url`` given, to share it with a compute daemon) and a unique
  ``control_exchange``, waits until they serve, and yields a
  ``PlacementHandle`` (``.api`` is a ``PlacementAPI``; ``.transport_url`` and
  ``.exchange`` are what a compute daemon's config needs); SIGTERM and exit
  code 0 are checked on the way out.
- ``placement_rpc`` (pytest fixture): the same on a temp SQLite database.

Use from another test package::

    from tests.functional.placement.fixtures import placement_rpc  # noqa: F401
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

RABBIT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
PG_ADMIN = 'host=127.0.0.1 port=5432 user=postgres dbname=test'
PG_URL = 'postgresql+psycopg://postgres@127.0.0.1:5432/{name}'
MYSQL_ADMIN = {'host': '127.0.0.1', 'port': 3306, 'user': 'root',
               'password': ''}
MYSQL_URL = 'mysql+pymysql://root@127.0.0.1:3306/{name}'


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1):
            return True
    except OSError:
        return False


def pg_answers() -> bool:
    return _answers(5432)


def mysql_answers() -> bool:
    return _answers(3306)


def _require(port: int, variable: str) -> None:
    """Skip when the server is genuinely absent, unless CI requires it."""
    if not _answers(port) and not os.environ.get(variable):
        pytest.skip(f'nothing answers on 127.0.0.1:{port} (set {variable} '
                    'to make this a failure)')


def require_pg() -> None:
    _require(5432, 'NOVA_RT_REQUIRE_PG')


def require_mysql() -> None:
    _require(3306, 'NOVA_RT_REQUIRE_MYSQL')


def require_rabbit() -> None:
    if not _answers(5672):
        pytest.fail('RabbitMQ does not answer on 127.0.0.1:5672')


def fresh_pg_database() -> str:
    import psycopg
    name = _test_database_name()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE {name}')
    return PG_URL.format(name=name)


def drop_pg_database(url: str) -> None:
    import psycopg
    from nova_rt.placement import db
    db.dispose_engines()
    name = url.rsplit('/', 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def _test_database_name() -> str:
    return f'nova_rt_test_{uuid.uuid4().hex[:12]}'


def _mysql_admin(statement: str) -> None:
    import pymysql
    conn = pymysql.connect(**MYSQL_ADMIN, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def fresh_mysql_database() -> str:
    name = _test_database_name()
    _mysql_admin(f'CREATE DATABASE {name} CHARACTER SET utf8mb4')
    return MYSQL_URL.format(name=name)


def drop_mysql_database(url: str) -> None:
    from nova_rt.placement import db
    db.dispose_engines()
    _mysql_admin(f'DROP DATABASE IF EXISTS {url.rsplit("/", 1)[1]}')


def fresh_database(backend: str) -> str:
    """A new empty database on ``postgresql`` or ``mysql``: its URL."""
    if backend == 'mysql':
        return fresh_mysql_database()
    return fresh_pg_database()


def drop_database(url: str) -> None:
    if url.startswith('mysql'):
        drop_mysql_database(url)
    else:
        drop_pg_database(url)


@contextlib.contextmanager
def own_engine(backend: str = 'postgresql'):
    """A synced database of its own on that server and a private engine on
    it (not the process-wide one): for tests that disturb its connections
    or judge its statistics.  Both are gone afterwards."""
    from nova_rt.placement import db
    if backend == 'mysql':
        require_mysql()
    else:
        require_pg()
    url = fresh_database(backend)
    engine = None
    try:
        db.sync(url)
        engine = db.create_engine(url)
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        drop_database(url)


def own_pg_engine():
    return own_engine('postgresql')


def wait_until(predicate, timeout: float = 30, interval: float = 0.1):
    """Poll ``predicate`` until it is true or ``timeout`` is up; its last
    value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def _rabbitmqctl(*args) -> bool:
    try:
        subprocess.run(['rabbitmqctl', *args], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


@contextlib.contextmanager
def rabbit_vhost():
    """Transport URL on a fresh vhost (the default vhost if rabbitmqctl
    cannot be used here, e.g. not root)."""
    name = f'nova_rt_test_{uuid.uuid4().hex[:10]}'
    if not (_rabbitmqctl('add_vhost', name) and _rabbitmqctl(
            'set_permissions', '-p', name, 'guest', '.*', '.*', '.*')):
        yield RABBIT_URL
        return
    try:
        yield f'{RABBIT_URL}{name}'
    finally:
        _rabbitmqctl('delete_vhost', name)


def make_transport(exchange: str, url: str = RABBIT_URL):
    """An RPC transport on the local RabbitMQ at ``url`` using ``exchange``."""
    import oslo_messaging as messaging

    from nova_rt import conf as nova_conf
    conf = nova_conf.CONF
    if 'control_exchange' not in conf:
        # oslo.messaging registers its options on first use.
        messaging.get_rpc_transport(conf, url=url).cleanup()
    # The driver reads control_exchange when the transport is made.
    conf.set_override('control_exchange', exchange)
    try:
        return messaging.get_rpc_transport(conf, url=url)
    finally:
        conf.clear_override('control_exchange')


@dataclasses.dataclass
class PlacementHandle:
    api: object
    transport: object
    transport_url: str
    exchange: str
    db_url: str
    config_file: str
    processes: list
    logs: list

    def log_text(self) -> str:
        return ''.join(open(path).read() for path in self.logs)


def write_config(path, db_url: str, exchange: str, state_path: str,
                 extra: str = '', transport_url: str = RABBIT_URL) -> str:
    with open(path, 'w') as f:
        f.write(f'[DEFAULT]\ntransport_url = {transport_url}\n'
                f'control_exchange = {exchange}\nstate_path = {state_path}\n'
                f'{extra}\n[placement_database]\nconnection = {db_url}\n')
    return str(path)


def start_process(config_file: str, log_path: str) -> subprocess.Popen:
    log = open(log_path, 'w')
    return subprocess.Popen(
        [sys.executable, '-m', 'nova_rt.cmd.placement', '--config-file',
         config_file], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, 'PYTHONWARNINGS': 'ignore'})


def wait_serving(proc: subprocess.Popen, log_path: str, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 'serving topic' in open(log_path).read():
            return
        if proc.poll() is not None:
            raise RuntimeError(f'nova-rt-placement exited {proc.returncode}:\n'
                               + open(log_path).read()[-2000:])
        time.sleep(0.1)
    raise RuntimeError('nova-rt-placement did not start:\n'
                       + open(log_path).read()[-2000:])


def stop_process(proc: subprocess.Popen, timeout=30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def running_placement(db_url: str, workdir, processes: int = 1,
                      timeout: float = 30, extra_conf: str = '',
                      transport_url: str | None = None):
    """Real ``nova-rt-placement`` process(es) on a vhost of their own."""
    require_rabbit()
    if transport_url is None:
        with rabbit_vhost() as url:
            with running_placement(db_url, workdir, processes, timeout,
                                   extra_conf, url) as handle:
                yield handle
        return
    from nova_rt.placement import db
    from nova_rt.placement import rpcapi
    db.sync(db_url)
    exchange = f'nova_rt_test_{uuid.uuid4().hex[:10]}'
    config = write_config(os.path.join(workdir, 'placement.conf'), db_url,
                          exchange, os.path.join(workdir, 'state'), extra_conf,
                          transport_url)
    logs = [os.path.join(workdir, f'placement-{i}.log')
            for i in range(processes)]
    procs = [start_process(config, log) for log in logs]
    transport = None
    try:
        for proc, log in zip(procs, logs):
            wait_serving(proc, log)
        transport = make_transport(exchange, transport_url)
        api = rpcapi.PlacementAPI(transport, timeout=timeout)
        yield PlacementHandle(api, transport, transport_url, exchange, db_url,
                              config, procs, logs)
    finally:
        for proc in procs:          # all stop at once, then each is awaited
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [stop_process(proc) for proc in procs]
        if transport is not None:
            transport.cleanup()
    assert codes == [0] * processes, f'exit codes {codes}'


@pytest.fixture
def placement_rpc(tmp_path):
    """A real nova-rt-placement on a temp SQLite database: PlacementHandle."""
    url = f'sqlite:///{tmp_path}/placement.sqlite'
    with running_placement(url, str(tmp_path)) as handle:
        yield handle
