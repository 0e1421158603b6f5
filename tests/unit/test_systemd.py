"""The notify protocol's pieces over a real datagram socket: what a wedged
part does to the pings, and the start-up's cancellation."""

import socket
import threading

import pytest

from nova_rt import daemon
from nova_rt import systemd


@pytest.fixture
def receiver(tmp_path):
    path = str(tmp_path / 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)

    def received():
        messages = []
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                return messages
    yield path, received
    sock.close()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_notifier_messages_and_status_only_when_changed(receiver):
    path, received = receiver
    notifier = systemd.Notifier({'NOTIFY_SOCKET': path})
    notifier.status('opening\nthe store')
    notifier.status('opening the store')
    notifier.ready('serving')
    notifier.ping()
    notifier.stopping('stopping (SIGTERM)')
    assert received() == ['STATUS=opening the store', 'READY=1\nSTATUS=serving',
                          'WATCHDOG=1',
                          'STOPPING=1\nSTATUS=stopping (SIGTERM)']


def test_abstract_socket_address():
    name = f'@nova-rt-test-{id(object())}'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind('\0' + name[1:])
    sock.settimeout(1)
    try:
        systemd.Notifier({'NOTIFY_SOCKET': name}).ping()
        assert sock.recv(64) == b'WATCHDOG=1'
    finally:
        sock.close()


def test_no_socket_no_watchdog():
    assert not systemd.Notifier({}).send('READY=1')
    assert systemd.watchdog_usec({'WATCHDOG_USEC': '4000000',
                                  'WATCHDOG_PID': '1'}) is None
    assert systemd.watchdog_usec({'WATCHDOG_USEC': 'soon'}) is None
    assert systemd.watchdog_usec({'WATCHDOG_USEC': '4000000'}) == 4000000


def test_watchdog_stops_pinging_while_a_part_is_wedged(receiver):
    path, received = receiver
    clock = Clock()
    loop = systemd.Heartbeat(clock=clock)
    watchdog = systemd.Watchdog(
        systemd.Notifier({'NOTIFY_SOCKET': path}),
        lambda limit: {'audit loop': _limited(loop, limit)}, lambda: 'serving',
        environ={'WATCHDOG_USEC': '4000000'})
    assert (watchdog.limit, watchdog.interval) == (4.0, 2.0)
    assert loop.limit == 4.0
    assert watchdog.tick()
    assert received() == ['STATUS=serving', 'WATCHDOG=1']
    clock.now += 5          # the loop has not turned for longer than the limit
    assert not watchdog.tick()
    assert received() == ['STATUS=wedged: audit loop: no progress for 5s']
    loop.beat()
    assert watchdog.tick()
    assert received() == ['STATUS=serving', 'WATCHDOG=1']


def _limited(probe, limit):
    probe.limit = limit
    return probe


def test_task_probe_wedged_only_by_a_task_that_does_not_end():
    clock = Clock()
    release = threading.Event()
    ran = []

    def task():
        ran.append(1)
        if not release.wait(5):
            raise RuntimeError('never released')

    probe = systemd.TaskProbe(systemd.in_thread, task, limit=4, clock=clock)
    assert probe() is None            # submitted
    clock.now += 3
    assert probe() is None            # still running, within the limit
    clock.now += 2
    assert probe() == 'a probe has not ended after 5s'
    release.set()
    probe._done.wait(5)
    assert probe() is None and len(ran) == 2

    def refused():
        raise ConnectionRefusedError('database down')
    failing = systemd.TaskProbe(lambda fn: fn(), refused, limit=4, clock=clock)
    assert failing() is None          # an error is an answer, not a wedge
    assert failing.last_error == 'ConnectionRefusedError: database down'


def test_start_up_cancelled_at_its_next_step_or_pause():
    startup = daemon.StartUp(systemd.Notifier({}))
    startup.phase('connecting to the message bus')
    startup.cancelled.set()
    with pytest.raises(daemon.StartCancelled):
        startup.sleep(30)             # returns at once, not after 30 s
    with pytest.raises(daemon.StartCancelled):
        startup.phase('opening the store')
    assert startup.doing == 'connecting to the message bus'


def test_backoff_doubles_to_the_cap():
    pauses = daemon.backoff(1, 30)
    assert [next(pauses) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
