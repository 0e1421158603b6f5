"""Both daemons under a notify socket of the test's own, as systemd runs them
(``Type=notify``, ``WatchdogSec``): READY after start, WATCHDOG=1 at half of
WATCHDOG_USEC, STATUS lines, STOPPING then exit 0 on SIGTERM, in every phase
of start-up; and a Guru Meditation Report on SIGUSR2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

from oslo_service import backend as _backend

try:
    _backend.init_backend(_backend.BackendType.THREADING)
except Exception:   # another package of the run chose it first: fine
    pass

import pytest  # noqa: E402

from nova_rt.placement import db  # noqa: E402
from tests.functional.compute import fixtures  # noqa: E402
from tests.functional.placement import fixtures as placement_fixtures  # noqa: E402

#: 1 s: pings every 0.5 s, so a few seconds show the cadence.
WATCHDOG_USEC = 1_000_000


class NotifySocket:
    """What systemd would receive: (monotonic time, message) pairs."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list = []
        self._closed = False
        threading.Thread(target=self._receive, daemon=True).start()

    def env(self, watchdog_usec: int = WATCHDOG_USEC) -> dict:
        return {'NOTIFY_SOCKET': self.path,
                'WATCHDOG_USEC': str(watchdog_usec)}

    def _receive(self):
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def fields(self, name: str) -> list:
        """(time, value) of every ``name=value`` received."""
        found = []
        for at, message in list(self.messages):
            for line in message.split('\n'):
                key, _, value = line.partition('=')
                if key == name:
                    found.append((at, value))
        return found

    def wait_for(self, name: str, timeout: float, count: int = 1,
                 proc: subprocess.Popen | None = None) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.fields(name)
            if len(found) >= count:
                return found
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f'{count} {name} not received within {timeout}s; '
                             f'got {self.messages}')

    def wait_for_status(self, prefix: str, proc: subprocess.Popen,
                        timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(value.startswith(prefix)
                      for _, value in self.fields('STATUS')):
            assert time.monotonic() < deadline, self.messages
            assert proc.poll() is None, f'exited {proc.returncode}'
            time.sleep(0.05)

    def close(self):
        self._closed = True
        self.sock.close()


@pytest.fixture(scope='module')
def compute_placement(tmp_path_factory):
    """One placement (on a vhost of its own) for this module's computes."""
    workdir = str(tmp_path_factory.mktemp('sd-placement'))
    with placement_fixtures.running_placement(
            f'sqlite:///{workdir}/placement.sqlite', workdir) as placement:
        yield placement


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path / 'notify.sock')
    yield sock
    sock.close()


def _sigterm_exit(proc: subprocess.Popen, notify: NotifySocket,
                  bound: float) -> float:
    """SIGTERM, then the seconds until exit; STOPPING=1 and exit 0 checked."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f'no exit within {bound}s of SIGTERM') from None
    took = time.monotonic() - sent
    assert code == 0
    assert notify.fields('STOPPING'), notify.messages
    return took


def _check_watchdog(notify: NotifySocket, pings: int, proc) -> list:
    got = notify.wait_for('WATCHDOG', timeout=20, count=pings, proc=proc)
    times = [at for at, _ in got]
    gaps = [b - a for a, b in zip(times, times[1:])]
    half = WATCHDOG_USEC / 2e6
    # At half of WATCHDOG_USEC: never late enough for systemd to kill, and
    # not a busy loop either.
    assert max(gaps) < WATCHDOG_USEC / 1e6, gaps
    assert sum(gaps) / len(gaps) == pytest.approx(half, rel=0.3), gaps
    return gaps


def _guru_report(log_text, proc, since: int) -> str:
    proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log_text()[since:]
        if '====                            Threads' in text:
            return text
        time.sleep(0.1)
    raise AssertionError('no Guru Meditation Report after SIGUSR2')


# --------------------------------------------------------------- placement


def _start_placement(tmp_path, url, notify, transport_url):
    db_url = f'sqlite:///{tmp_path}/placement.sqlite'
    db.sync(db_url)
    exchange = f'nova_rt_test_{uuid.uuid4().hex[:10]}'
    config = placement_fixtures.write_config(
        tmp_path / 'placement.conf', db_url, exchange, str(tmp_path / 'state'),
        transport_url=transport_url)
    log_path = tmp_path / 'placement.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_rt.cmd.placement', '--config-file',
             config], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore', **notify.env()})
    return proc, log_path, exchange


def test_placement_ready_watchdog_status_stopping_and_report(tmp_path, notify):
    placement_fixtures.require_rabbit()
    with placement_fixtures.rabbit_vhost() as url:
        started = time.monotonic()
        proc, log_path, _ = _start_placement(tmp_path, url, notify, url)
        try:
            ready = notify.wait_for('READY', timeout=60, proc=proc)[0][0]
            gaps = _check_watchdog(notify, 6, proc)
            statuses = [value for _, value in notify.fields('STATUS')]
            assert statuses[0].startswith('connecting to the message bus')
            assert 'guest:***@' in statuses[0]
            assert any(s.startswith('serving topic nova-rt-placement')
                       for s in statuses), statuses
            report = _guru_report(log_path.read_text, proc, 0)
            assert 'nova_rt/daemon.py' in report   # the main thread's stack
            took = _sigterm_exit(proc, notify, bound=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f'\nplacement: READY {ready - started:.2f}s after exec, watchdog '
          f'gaps {min(gaps):.3f}-{max(gaps):.3f}s (half of WATCHDOG_USEC: '
          f'{WATCHDOG_USEC / 2e6}s), exit {took:.2f}s after SIGTERM')


def test_placement_sigterm_while_broker_unreachable(tmp_path, notify):
    placement_fixtures.require_rabbit()
    proxy = fixtures.RabbitProxy()
    proxy.down()
    try:
        with placement_fixtures.rabbit_vhost() as url:
            proc, log_path, _ = _start_placement(tmp_path, url, notify,
                                                 proxy.url_for(url))
            try:
                notify.wait_for('STATUS', timeout=60, count=2, proc=proc)
                waiting = notify.fields('STATUS')[-1][1]
                assert waiting.startswith('waiting for the message bus')
                took = _sigterm_exit(proc, notify, bound=5)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert not notify.fields('READY')
        assert 'unreachable (attempt 1' in log_path.read_text()
    finally:
        proxy.close()
    print(f'\nplacement, broker unreachable: exit {took:.2f}s after SIGTERM')


# ----------------------------------------------------------------- compute


def test_compute_ready_watchdog_status_stopping_and_report(
        tmp_path, notify, compute_placement):
    placement = compute_placement
    compute = fixtures.ComputeProcess(
        str(tmp_path), f'sd-{uuid.uuid4().hex[:6]}', placement.exchange,
        transport_url=fixtures.transport_url_of(placement))
    started = time.monotonic()
    compute.start(wait=False, env=notify.env())
    try:
        ready = notify.wait_for('READY', timeout=60, proc=compute.proc)[0][0]
        assert 'ready in' in compute.log_text()
        gaps = _check_watchdog(notify, 6, compute.proc)
        statuses = [value for _, value in notify.fields('STATUS')]
        for step in ('connecting to the message bus',
                     'opening the local state store', 'connecting to libvirt',
                     'first audit and report to placement',
                     'starting the RPC server', f'serving host {compute.host}'):
            assert any(s.startswith(step) for s in statuses), (step, statuses)
        assert statuses[-1].endswith('placement up to date'), statuses
        report = _guru_report(compute.log_text, compute.proc, 0)
        assert 'audit-loop' in report or '_audit_loop' in report
        took = _sigterm_exit(compute.proc, notify, bound=10)
    finally:
        compute.kill()
    print(f'\ncompute: READY {ready - started:.2f}s after exec, watchdog gaps '
          f'{min(gaps):.3f}-{max(gaps):.3f}s, exit {took:.2f}s after SIGTERM')


def test_compute_sigterm_while_broker_unreachable(tmp_path, notify,
                                                   compute_placement):
    """A known host (its store holds its root provider) restarted while
    RabbitMQ is away waits for it, retrying, until SIGTERM."""
    proxy = fixtures.RabbitProxy()
    compute = fixtures.ComputeProcess(
        str(tmp_path), f'sd-{uuid.uuid4().hex[:6]}', compute_placement.exchange,
        transport_url=proxy.url_for(fixtures.transport_url_of(compute_placement)))
    try:
        compute.start()
        assert compute.terminate() == 0
        proxy.down()
        compute.start(wait=False, env=notify.env())
        notify.wait_for_status('waiting for the message bus', compute.proc)
        took = _sigterm_exit(compute.proc, notify, bound=5)
        assert not notify.fields('READY')
        assert 'unreachable (attempt 1' in compute.log_text(since_start=True)
    finally:
        compute.kill()
        proxy.close()
    print(f'\ncompute, broker unreachable: exit {took:.2f}s after SIGTERM')


def test_compute_waits_for_placement_then_sigterm(tmp_path, notify):
    """A new host asks placement before its first report; no placement
    serves this vhost: the wait gives way to SIGTERM."""
    placement_fixtures.require_rabbit()
    with placement_fixtures.rabbit_vhost() as url:
        compute = fixtures.ComputeProcess(
            str(tmp_path), f'sd-{uuid.uuid4().hex[:6]}',
            f'nova_rt_test_{uuid.uuid4().hex[:10]}', transport_url=url)
        try:
            compute.start(wait=False, env=notify.env())
            notify.wait_for_status('checking the local state store',
                                   compute.proc)
            time.sleep(2)
            took = _sigterm_exit(compute.proc, notify, bound=5)
            assert not notify.fields('READY')
        finally:
            compute.kill()
    print(f'\ncompute, placement not serving: exit {took:.2f}s after SIGTERM')


def test_compute_ready_soon_after_placement_appears(tmp_path, notify):
    """A new host started before placement's queue exists: its calls come
    back at once (``mandatory``) and are retried; none waits out a timeout."""
    placement_fixtures.require_rabbit()
    db_url = f'sqlite:///{tmp_path}/placement.sqlite'
    db.sync(db_url)
    exchange = f'nova_rt_test_{uuid.uuid4().hex[:10]}'
    log_path = str(tmp_path / 'placement.log')
    placement = None
    with placement_fixtures.rabbit_vhost() as url:
        config = placement_fixtures.write_config(
            tmp_path / 'placement.conf', db_url, exchange,
            str(tmp_path / 'state'), transport_url=url)
        compute = fixtures.ComputeProcess(
            str(tmp_path), f'sd-{uuid.uuid4().hex[:6]}', exchange,
            transport_url=url)
        try:
            compute.start(wait=False, env=notify.env())
            notify.wait_for('STATUS', timeout=60, proc=compute.proc)
            time.sleep(2)
            assert not notify.fields('READY')
            placement = placement_fixtures.start_process(config, log_path)
            placement_fixtures.wait_serving(placement, log_path)
            serving = time.monotonic()
            ready = notify.wait_for('READY', timeout=30,
                                    proc=compute.proc)[0][0]
            took = _sigterm_exit(compute.proc, notify, bound=10)
        finally:
            compute.kill()
            if placement is not None:
                assert placement_fixtures.stop_process(placement) == 0
    after = ready - serving
    # The store check asks again every 5 s; before, the lost call waited out
    # the whole rpc_response_timeout (5 s here, 30 s by default) first.
    assert after < 6.5, after
    print(f'\ncompute: READY {after:.2f}s after placement began serving, '
          f'exit {took:.2f}s after SIGTERM')
