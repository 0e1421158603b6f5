"""Back-off and log-once behaviour, on URIs that really fail to open."""

import logging
import threading
import time

import libvirt
import pytest

from nova_rt import exception
from nova_rt.virt.host import STABLE_AFTER, Backoff, LibvirtHost, mask_uri
from tests.functional.virt import hostxml


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _warnings(caplog, text):
    return [r for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


def test_backoff_doubles_up_to_cap():
    backoff = Backoff(maximum=10)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_unreachable_backs_off_and_logs_once(caplog):
    fake = FakeTime()
    caplog.set_level(logging.DEBUG, logger='nova_rt.virt')
    host = LibvirtHost('test:///nonexistent/path.xml', reconnect_max_interval=60,
                       clock=fake.clock, sleep=fake.sleep)
    assert host.wait_for_connection(max_attempts=9) is False
    assert fake.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]
    assert not host.connected
    assert len(_warnings(caplog, 'cannot connect to test:///nonexistent/path.xml')) == 1
    assert len(caplog.records) == 1


def test_calls_between_attempts_fail_fast_without_trying(caplog):
    fake = FakeTime()
    host = LibvirtHost('test:///nonexistent/path.xml', clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(exception.HypervisorUnavailable, match='cannot connect'):
        host.get_host_info()
    fake.now += 0.5
    with pytest.raises(exception.HypervisorUnavailable, match='next attempt in'):
        host.list_domains()
    fake.now += 0.5
    with pytest.raises(exception.HypervisorUnavailable, match='cannot connect'):
        host.get_host_info()
    # the second real attempt failed: the next one is 2s away
    fake.now += 1.5
    with pytest.raises(exception.HypervisorUnavailable, match='next attempt'):
        host.get_host_info()
    assert len(_warnings(caplog, 'cannot connect')) == 1


def test_lost_then_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger='nova_rt.virt')
    fake = FakeTime()
    path = tmp_path / 'host.xml'
    uri = hostxml.write_host_xml(str(path), n_domains=3)
    host = LibvirtHost(uri, reconnect_max_interval=4, clock=fake.clock, sleep=fake.sleep)
    assert len(host.list_domains()) == 3
    assert host.connected

    # libvirt goes away: the live connection dies and the host file is gone.
    host.connection.close()
    saved = path.read_text()
    path.unlink()
    with pytest.raises(exception.HypervisorUnavailable):
        host.list_domains()
    # (Known at the first call: the test driver has no close callback, and
    # ``connected`` never asks libvirt.)
    assert not host.connected
    assert host.wait_for_connection(max_attempts=5) is False
    assert fake.sleeps == [1, 2, 4, 4]

    path.write_text(saved)
    assert host.wait_for_connection() is True
    assert len(host.get_host_info().online_cpus) == 8
    messages = [r.getMessage() for r in caplog.records if r.name == 'nova_rt.virt.host']
    assert [m.split(',')[0].split(' to ')[0] for m in messages] == [
        'connected', 'lost connection', 'connected']
    host.stop()


def test_disconnect_error_drops_the_connection(tmp_path, caplog):
    fake = FakeTime()
    host = LibvirtHost('test:///default', clock=fake.clock, sleep=fake.sleep)
    conn = host.connection
    fake.now += STABLE_AFTER             # a connection that had proved itself
    dead = libvirt.open('test:///default')
    dead.close()
    with pytest.raises(libvirt.libvirtError) as err:
        dead.listAllDomains(0)           # a real VIR_ERR_INVALID_CONN
    assert err.value.get_error_code() == libvirt.VIR_ERR_INVALID_CONN
    failure = host._failed(err.value, 'listing domains')
    assert isinstance(failure, exception.HypervisorUnavailable)
    assert 'listing domains on test:///default failed' in str(failure)
    assert not host.connected
    assert host.connection is not conn   # reopened at once
    assert len(_warnings(caplog, 'lost connection to test:///default')) == 1
    host.stop()


def test_a_connection_lost_at_once_goes_on_backing_off(tmp_path):
    # A libvirtd that accepts and drops every client must not be reopened in
    # a tight loop: only a connection that lasted STABLE_AFTER starts the
    # back-off over.
    fake = FakeTime()
    host = LibvirtHost('test:///default', reconnect_max_interval=8,
                       clock=fake.clock, sleep=fake.sleep)
    waits = []
    for _ in range(5):
        conn = host.connection
        conn.close()
        with pytest.raises(exception.HypervisorUnavailable) as err:
            host.list_domains()
        assert 'next attempt in' in str(err.value)
        waits.append(host._retry_at - fake.now)
        fake.now = host._retry_at
    assert waits == [1, 2, 4, 8, 8]
    conn = host.connection
    fake.now += STABLE_AFTER
    conn.close()
    assert host.list_domains()           # reopened at once
    assert host.connection is not conn
    assert host._backoff.next_delay() == 1
    host.stop()


def test_stop_ends_waiting():
    fake = FakeTime()
    host = LibvirtHost('test:///nonexistent/path.xml', clock=fake.clock,
                       sleep=lambda s: host.stop())
    assert host.wait_for_connection() is False


@pytest.mark.parametrize('uri, masked', [
    ('qemu+tcp://admin:s3cret@host/system', 'qemu+tcp://admin:***@host/system'),
    ('qemu:///system', 'qemu:///system'),
    ('qemu+ssh://root@host/system', 'qemu+ssh://root@host/system'),
])
def test_mask_uri(uri, masked):
    assert mask_uri(uri) == masked


def test_password_never_logged(caplog):
    host = LibvirtHost('test://user:hunter2@/nonexistent/x.xml',
                       clock=FakeTime().clock, sleep=lambda s: None)
    with pytest.raises(exception.HypervisorUnavailable) as err:
        host.get_host_info()
    assert 'hunter2' not in caplog.text
    assert 'hunter2' not in str(err.value)


# --- the keeper: reconnection in the background (from start_events on) ------

def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class KeeperTime(FakeTime):
    """Fake time for the keeper's thread: each pause is recorded and taken
    at once (with a real millisecond, so that the test thread runs too)."""

    def sleep(self, seconds):
        super().sleep(seconds)
        time.sleep(0.001)


def test_keeper_backs_off_to_the_cap_and_registers_events_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger='nova_rt.virt')
    fake = KeeperTime()
    path = tmp_path / 'host.xml'
    uri = hostxml.write_host_xml(str(path), n_domains=1)
    host = LibvirtHost(uri, reconnect_max_interval=8, clock=fake.clock,
                       sleep=fake.sleep)
    received, connects = [], []
    host.start_events(received.append, on_connect=lambda: connects.append(fake.now))
    try:
        first = host.connection
        fake.now += STABLE_AFTER
        # libvirt goes away: the connection dies, and reopening fails.
        saved = path.read_text()
        path.unlink()
        first.close()
        with pytest.raises(exception.HypervisorUnavailable):
            host.list_domains()
        assert not host.connected
        assert _until(lambda: len(fake.sleeps) >= 7)
        # Immediate first attempt, then 1, 2, 4 ... never more than the cap.
        assert fake.sleeps[:7] == [1, 2, 4, 8, 8, 8, 8]
        # Meanwhile calls fail fast: only the keeper tries.
        with pytest.raises(exception.HypervisorUnavailable, match='next attempt in'):
            host.get_host_info()
        assert connects == []

        path.write_text(saved)
        assert _until(lambda: connects), 'the keeper never reconnected'
        assert host.connected
        second = host.connection
        assert second is not first
        # Events come from the new connection (the test driver's state is
        # per connection: only its own changes are seen).
        del received[:]
        second.defineXML(hostxml.domain_xml(7)).create()
        assert _until(lambda: len(received) >= 2), received
        assert [e['event'] for e in received] == ['defined', 'started']
        assert len(connects) == 1
    finally:
        host.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == 'nova_rt.virt.host']
    assert [m.split(',')[0].split(' to ')[0] for m in messages] == [
        'connected', 'lost connection', 'connected']


def test_close_callback_marks_disconnected_at_once(caplog):
    # The test driver never closes on its own: its close callback is called
    # here as libvirt's event thread calls it when libvirtd goes away (the
    # real thing: test_libvirtd_reconnect.py).
    host = LibvirtHost('test:///default', reconnect_max_interval=1)
    back = threading.Event()
    host.start_events(lambda event: None, on_connect=back.set)
    try:
        session = host._session
        assert host.connected
        closer = threading.Thread(target=host._on_close, args=(
            session.conn, libvirt.VIR_CONNECT_CLOSE_REASON_EOF, session))
        closer.start()
        closer.join()
        assert not host.connected
        with pytest.raises(exception.HypervisorUnavailable, match='libvirtd went away'):
            host.get_host_info()
        # A connection this young does not restart the back-off: 1s.
        assert back.wait(3)
        assert host.connected
        assert host.get_host_info().hypervisor_type == 'TEST'
    finally:
        host.stop()
    assert len(_warnings(caplog, 'lost connection to test:///default, retrying: '
                                 'closed by libvirt (end of file')) == 1


def test_stop_ends_the_keeper():
    fake = KeeperTime()
    host = LibvirtHost('test:///nonexistent/path.xml', clock=fake.clock,
                       sleep=fake.sleep)
    host.start_events(lambda event: None)
    assert _until(lambda: len(fake.sleeps) >= 2)
    keeper = host._keeper
    host.stop()
    assert _until(lambda: not keeper.is_alive())


def test_configured_uri_is_known_before_any_connection():
    host = LibvirtHost('qemu+tcp://admin:s3cret@nowhere.invalid/system',
                       clock=FakeTime().clock, sleep=lambda s: None)
    assert host.uri == 'qemu+tcp://admin:***@nowhere.invalid/system'
    assert not host.connected


def test_uri_quoted_by_libvirt_is_masked():
    host = LibvirtHost('test://user:hunter2@/nonexistent/x.xml',
                       clock=FakeTime().clock, sleep=lambda s: None)
    error = libvirt.libvirtError(
        'no connection driver available for test://user:hunter2@/nonexistent/x.xml')
    failure = host._failed(error, 'reading the host')
    assert 'hunter2' not in str(failure)
    assert 'test://user:***@/nonexistent/x.xml' in str(failure)
