"""Back-off and log-once behaviour, on URIs that really fail to open."""

import logging

import libvirt
import pytest

from nova_rt import exception
from nova_rt.virt.host import Backoff, LibvirtHost, mask_uri
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
    assert not host.connected
    with pytest.raises(exception.HypervisorUnavailable):
        host.list_domains()
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
    host = LibvirtHost('test:///default')
    conn = host.connection
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
