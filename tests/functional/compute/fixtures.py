"""Real nova-rt-compute processes (and placement) for functional tests.

- ``ComputeProcess``: ``python -m nova_rt.cmd.compute --config-file ...`` on a
  temp ``state_path``, ``[libvirt] connection_uri = test:///default`` and the
  exchange it is given; start, wait until it serves, SIGTERM/SIGKILL/SIGHUP.
- ``RabbitProxy``: a TCP relay in front of the local RabbitMQ, so that a test
  can take "RabbitMQ" away from one daemon and give it back without stopping
  the broker every other test on this machine uses.
- ``compute_client(exchange)``: a ``ComputeAPI`` on that exchange whose errors
  come back as ``nova_rt.exception`` classes.
- pytest fixtures ``compute_stack`` (placement + compute + client, one per
  module and backend) and ``in_process_compute`` (the service in this process,
  with an injectable libvirt host).

Use from another test package::

    from tests.functional.compute.fixtures import compute_stack  # noqa: F401
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.functional.placement import fixtures as placement_fixtures
from tests.functional.virt import hostxml

RABBIT_HOST, RABBIT_PORT = '127.0.0.1', 5672
RABBIT_URL = placement_fixtures.RABBIT_URL
SESSION_TAG = uuid.uuid4().hex[:8]


def unique_exchange(prefix='nova_rt_compute_test') -> str:
    return f'{prefix}_{SESSION_TAG}_{uuid.uuid4().hex[:6]}'


def compute_client(exchange: str, timeout: float = 15, url: str = RABBIT_URL,
                   plain: bool = False):
    """(ComputeAPI, transport) on ``exchange``; the caller cleans up the transport.

    ``plain``: a transport that does not rebuild our exception classes, so
    errors arrive as ``RemoteError`` (what a client outside the project sees).
    """
    import oslo_messaging as messaging

    from nova_rt import conf as nova_conf
    from nova_rt.compute import rpcapi
    conf = nova_conf.CONF
    if 'control_exchange' not in conf:
        messaging.get_rpc_transport(conf, url=url).cleanup()
    conf.set_override('control_exchange', exchange)
    try:
        transport = messaging.get_rpc_transport(
            conf, url=url,
            allowed_remote_exmods=[] if plain else rpcapi.ALLOWED_REMOTE_EXMODS)
    finally:
        conf.clear_override('control_exchange')
    return rpcapi.ComputeAPI(transport, timeout=timeout), transport


def transport_url_of(placement) -> str:
    """The vhost placement runs on: topic queues are named after the topic
    only, so runs sharing a vhost would consume each other's calls."""
    return getattr(placement, 'transport_url', RABBIT_URL)


class ComputeProcess:
    """One real daemon.  ``extra`` is appended to its ``[DEFAULT]`` section."""

    def __init__(self, workdir: str, host: str, exchange: str,
                 backend: str = 'threading', transport_url: str = RABBIT_URL,
                 extra: str = '', sections: str = '',
                 connection_uri: str | None = None):
        self.workdir = workdir
        self.host = host
        self.exchange = exchange
        self.backend = backend
        self.state_path = os.path.join(workdir, f'state-{host}')
        self.config_file = os.path.join(workdir, f'compute-{host}.conf')
        self.log_path = os.path.join(workdir, f'compute-{host}.log')
        self.proc = None
        self.transport_url = transport_url
        # test:///default runs a domain that fills its small host; an empty
        # 8-CPU, 64 GiB test host leaves room for claims.
        self.connection_uri = connection_uri or hostxml.write_host_xml(
            os.path.join(workdir, f'host-{host}.xml'), n_domains=0)
        self.write_config(extra, sections)

    def write_config(self, extra: str = '', sections: str = '') -> None:
        with open(self.config_file, 'w') as f:
            f.write(f'[DEFAULT]\nhost = {self.host}\n'
                    f'transport_url = {self.transport_url}\n'
                    f'control_exchange = {self.exchange}\n'
                    f'state_path = {self.state_path}\n'
                    f'concurrency_backend = {self.backend}\n'
                    'rpc_response_timeout = 5\n'
                    'update_resources_interval = 60\n'
                    'heartbeat_interval = 2\n'
                    'reserved_host_memory_mb = 512\n'
                    f'{extra}\n'
                    f'[libvirt]\nconnection_uri = {self.connection_uri}\n'
                    f'{sections}\n')

    def start(self, wait: bool = True, timeout: float = 90,
              env: dict | None = None) -> 'ComputeProcess':
        self._log_offset = os.path.getsize(self.log_path) \
            if os.path.exists(self.log_path) else 0
        log = open(self.log_path, 'a')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_rt.cmd.compute', '--config-file',
             self.config_file], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore', **(env or {})})
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def log_text(self, since_start: bool = False) -> str:
        with open(self.log_path) as f:
            if since_start:
                f.seek(self._log_offset)
            return f.read()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if 'ready in' in self.log_text(since_start=True):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f'nova-rt-compute exited {self.proc.returncode}:\n'
                                   + self.log_text()[-3000:])
            time.sleep(0.1)
        raise RuntimeError('nova-rt-compute did not start:\n' + self.log_text()[-3000:])

    def signal(self, signo) -> None:
        self.proc.send_signal(signo)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and the exit code (the daemon must exit on its own)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RabbitProxy:
    """TCP relay to RabbitMQ that a test can cut (``down()``) and restore."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self._listener.listen(64)
        self._up = True
        self._conns: list = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url_for(self, transport_url: str) -> str:
        """``transport_url`` (same vhost) through this relay."""
        return transport_url.replace(f'{RABBIT_HOST}:{RABBIT_PORT}',
                                     f'127.0.0.1:{self.port}')

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                upstream = socket.create_connection((RABBIT_HOST, RABBIT_PORT))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        """Like a stopped broker: connections drop, new ones are refused."""
        self._up = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def up(self) -> None:
        self._up = True

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()


@dataclasses.dataclass
class ComputeStack:
    compute: ComputeProcess
    api: object            # ComputeAPI
    placement: object      # PlacementHandle (api: PlacementAPI)
    host: str
    backend: str

    def ctx(self, **extra) -> dict:
        return {'request_id': 'req-' + str(uuid.uuid4()), 'user_id': 'u1',
                'project_id': 'p1', **extra}


@contextlib.contextmanager
def running_compute_stack(workdir: str, backend: str = 'threading',
                          proxy: 'RabbitProxy | None' = None, extra: str = '',
                          placement=None, client_timeout: float = 15):
    """placement (``placement`` if given, else a new one) + one
    nova-rt-compute (through ``proxy`` if given) + a client."""
    if placement is None:
        url = f'sqlite:///{workdir}/placement.sqlite'
        with placement_fixtures.running_placement(url, workdir) as placement:
            with running_compute_stack(workdir, backend, proxy, extra, placement,
                                       client_timeout) as stack:
                yield stack
        return
    vhost_url = transport_url_of(placement)
    host = f'cmp-{backend}-{uuid.uuid4().hex[:6]}'
    compute = ComputeProcess(
        workdir, host, placement.exchange, backend, extra=extra,
        transport_url=proxy.url_for(vhost_url) if proxy else vhost_url)
    compute.start()
    api, transport = compute_client(placement.exchange, url=vhost_url,
                                    timeout=client_timeout)
    try:
        yield ComputeStack(compute, api, placement, host, backend)
    finally:
        code = compute.terminate()
        transport.cleanup()
    assert code == 0, compute.log_text()[-3000:]


@pytest.fixture(scope='session')
def compute_placement(tmp_path_factory):
    """One real placement (on a vhost of its own) for the compute tests:
    every daemon has its own host name, so they can share it."""
    workdir = str(tmp_path_factory.mktemp('compute-placement'))
    url = f'sqlite:///{workdir}/placement.sqlite'
    with placement_fixtures.running_placement(url, workdir) as placement:
        yield placement


@pytest.fixture(scope='module', params=['threading', 'eventlet'])
def compute_stack(request, tmp_path_factory, compute_placement):
    """placement + nova-rt-compute (each backend) + a conductor-side client."""
    workdir = str(tmp_path_factory.mktemp(f'compute-{request.param}'))
    with running_compute_stack(workdir, request.param,
                               placement=compute_placement) as stack:
        yield stack


@pytest.fixture
def in_process_compute(tmp_path):
    """Factory: ``make(host_source=None, placement=None, transport_url=...,
    exchange=None, **conf_overrides)``; ``host_source`` may be a callable that
    gets the test host's libvirt URI.

    Runs ``ComputeService`` in this process against RabbitMQ on a unique
    exchange; the service is stopped at the end of the test.
    """
    from nova_rt import conf as nova_conf
    from nova_rt import log
    from nova_rt.compute import service as service_mod
    made = []

    def make(host_source=None, placement=None, transport_url=RABBIT_URL,
             exchange=None, **overrides):
        # The global CONF, as the daemon uses: oslo.messaging registers some
        # of its options (tracing, metrics) there only.
        conf = nova_conf.CONF
        # Another test (the CLI's main, say) may have parsed it already;
        # CLI options can only be registered on an unparsed object.
        conf.clear()
        log.register_options(conf)
        path = tmp_path / 'compute.conf'
        host = f'inproc-{uuid.uuid4().hex[:6]}'
        uri = hostxml.write_host_xml(tmp_path / 'host.xml', n_domains=0)
        path.write_text(f'[DEFAULT]\nhost = {host}\nstate_path = {tmp_path}/state\n'
                        f'transport_url = {transport_url}\n'
                        f'control_exchange = {exchange or unique_exchange()}\n'
                        'rpc_response_timeout = 3\n'
                        f'[libvirt]\nconnection_uri = {uri}\n')
        conf(['--config-file', str(path)], project='nova_rt',
             default_config_files=[], default_config_dirs=[])
        for name, value in overrides.items():
            group, _, opt = name.rpartition('__')
            conf.set_override(opt, value, group=group or None)
        svc = service_mod.ComputeService(conf, host_source=host_source(uri)
                                         if callable(host_source) else host_source,
                                         pci_source=lambda: [],
                                         placement=placement)
        made.append(svc)
        return svc

    try:
        yield make
    finally:
        for svc in made:
            if svc.rpc_server is not None:
                svc.stop()
        nova_conf.CONF.reset()
