"""LibvirtHost against libvirt's real test driver, in process."""

import os
import threading

import pytest

from nova_rt import exception
from nova_rt.virt import domain_xml
from nova_rt.virt.host import LibvirtHost
from tests.functional.virt import hostxml

DEFAULT_DOMAIN_UUID = '6695eb01-f6a4-8304-79aa-97f2502e193f'


@pytest.fixture
def default_host(tmp_path):
    host = LibvirtHost('test:///default', instances_path=str(tmp_path / 'not' / 'there'))
    yield host
    host.stop()


@pytest.fixture(scope='module')
def big_host_uri(tmp_path_factory):
    path = tmp_path_factory.mktemp('libvirt') / 'host.xml'
    return hostxml.write_host_xml(str(path), n_domains=1000)


def test_capabilities_are_parsed_again_only_when_they_change(default_host,
                                                             monkeypatch):
    from nova_rt.virt import capabilities
    parsed = []
    real = capabilities.parse_capabilities

    def counting(xml):
        parsed.append(xml)
        return real(xml)

    monkeypatch.setattr(capabilities, 'parse_capabilities', counting)
    first = default_host.get_host_info()
    assert default_host.get_host_info() == first
    assert len(parsed) == 1
    # Other capabilities (new hardware, another libvirt): parsed anew.
    xml = parsed[0].replace('<cell id=\'1\'>', '<cell id=\'7\'>', 1)
    assert xml != parsed[0]
    monkeypatch.setattr(default_host, '_connection', _returning_caps(
        default_host._connection(), xml))
    changed = default_host.get_host_info()
    assert len(parsed) == 2
    assert [c.id for c in changed.numa_cells] == [0, 7]


def _returning_caps(conn, xml):
    """The connection, answering ``getCapabilities`` with ``xml``."""
    class Conn:
        def __getattr__(self, name):
            return getattr(conn, name)

        def getCapabilities(self):      # noqa: N802 (libvirt's name)
            return xml
    return lambda: Conn()


def test_default_host_info(default_host, tmp_path):
    info = default_host.get_host_info()
    assert default_host.connected
    assert info.hypervisor_type == 'TEST'
    assert info.hostname
    assert info.uri == 'test:///default'
    assert info.memory_mb == 3072
    assert len(info.numa_cells) == 2
    assert [c.cpus for c in info.numa_cells] == [frozenset(range(8)), frozenset(range(8, 16))]
    assert info.online_cpus == frozenset(range(16))
    assert [c.memory_mb for c in info.numa_cells] == [2048, 4096]
    assert info.numa_cells[0].mempages[0].size_kb == 4
    assert info.numa_cells[0].mempages[0].total == 524288
    # Disk comes from the nearest existing parent of instances_path, created nowhere.
    stat = os.statvfs(tmp_path)
    assert info.disk_total_gb == stat.f_blocks * stat.f_frsize // 1024 ** 3
    assert not (tmp_path / 'not').exists()
    assert info.to_dict()['numa_cells'][1]['cpus'] == list(range(8, 16))


def test_disk_from_storage_pool():
    host = LibvirtHost('test:///default', disk_pool='default-pool')
    info = host.get_host_info()
    assert (info.disk_total_gb, info.disk_used_gb) == (100, 0)
    host.stop()


def test_unknown_storage_pool_is_config_error():
    host = LibvirtHost('test:///default', disk_pool='nope')
    with pytest.raises(exception.ConfigError, match=r"\[libvirt\] disk_pool.*'nope'"):
        host.get_host_info()
    host.stop()


def test_check_disk_pool_names_the_pools_there_are(tmp_path):
    host = LibvirtHost('test:///default', disk_pool='nosuchpool')
    with pytest.raises(exception.ConfigError) as caught:
        host.check_disk_pool()
    assert str(caught.value) == (
        "Invalid configuration: [libvirt] disk_pool: no storage pool "
        "'nosuchpool' on test:///default (its pools: default-pool)")
    host.stop()
    # A host XML defines no pool at all.
    uri = hostxml.write_host_xml(str(tmp_path / 'host.xml'), n_domains=0)
    host = LibvirtHost(uri, disk_pool='nosuchpool')
    with pytest.raises(exception.ConfigError, match=r'\(its pools: none\)$'):
        host.check_disk_pool()
    host.stop()
    for pool in ('default-pool', None):
        host = LibvirtHost('test:///default', disk_pool=pool)
        host.check_disk_pool()
        host.stop()


def test_disk_pool_checked_when_libvirt_connects_if_away_at_start(tmp_path, caplog):
    path = tmp_path / 'host.xml'                  # not there yet: libvirt away
    host = LibvirtHost(f'test://{path}', disk_pool='nosuchpool',
                       reconnect_max_interval=0.01)
    try:
        with caplog.at_level('WARNING', logger='nova_rt.virt.host'):
            host.check_disk_pool()                # not refused
        warned = [r for r in caplog.records if 'not checked' in r.getMessage()]
        assert warned and warned[0].levelname == 'WARNING', caplog.text
        assert not [r for r in caplog.records if r.levelname == 'ERROR']
        hostxml.write_host_xml(str(path), n_domains=0)
        caplog.clear()
        with caplog.at_level('WARNING', logger='nova_rt.virt.host'):
            assert host.wait_for_connection(max_attempts=50)
        errors = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
        assert errors == ["Invalid configuration: [libvirt] disk_pool: no storage "
                          f"pool 'nosuchpool' on test://{path} (its pools: none)"]
    finally:
        host.stop()


def test_default_domain(default_host):
    (dom,) = default_host.list_domains()
    assert dom.uuid == DEFAULT_DOMAIN_UUID
    assert dom.name == 'test'
    assert (dom.state, dom.active) == ('running', True)
    assert (dom.vcpus, dom.memory_mb) == (2, 8192)


def test_thousand_domains(big_host_uri):
    host = LibvirtHost(big_host_uri)
    try:
        info = host.get_host_info()
        domains = host.list_domains()
    finally:
        host.stop()
    want = hostxml.expected(1000)
    assert info.numa_cells == ()
    assert info.online_cpus == frozenset(range(8))
    assert info.memory_mb == 64 * 1024
    assert len(domains) == want['domains']
    running = [d for d in domains if d.state == 'running']
    assert len(running) == want['running']
    assert all(d.active for d in running)
    shutoff = [d for d in domains if d.state == 'shutoff']
    assert len(shutoff) == want['shutoff'] and not any(d.active for d in shutoff)
    assert sum(d.vcpus for d in running) == want['running_vcpus']
    assert sum(d.memory_mb for d in running) == want['running_memory_mb']
    by_uuid = {d.uuid: d for d in domains}
    assert by_uuid[hostxml.domain_uuid(0)].state == 'shutoff'
    guest = by_uuid[hostxml.domain_uuid(6)]          # 3 vCPUs pinned to 6, 7, 0
    assert guest.cpu_pinning == {0: {6}, 1: {7}, 2: {0}}


def test_paused_domain(tmp_path):
    path = tmp_path / 'host.xml'
    path.write_text(
        "<node><cpu><active>4</active></cpu><memory>4194304</memory>"
        + hostxml.domain_xml(1, state=hostxml.PAUSED) + "</node>")
    host = LibvirtHost(f'test://{path}')
    (dom,) = host.list_domains()
    assert (dom.state, dom.active) == ('paused', True)
    host.stop()


def test_unparseable_domain_is_logged_and_skipped(big_host_uri, monkeypatch, caplog):
    # libvirt itself never returns XML we cannot read, so one document is
    # spoiled on its way to the parser.
    real_parse = domain_xml.parse_domain_xml
    victim = hostxml.domain_uuid(5)

    def parse(xml):
        return real_parse(xml.replace('</domain>', '<broken></domain>')
                          if victim in xml else xml)

    monkeypatch.setattr(domain_xml, 'parse_domain_xml', parse)
    host = LibvirtHost(big_host_uri)
    domains = host.list_domains()
    host.stop()
    assert len(domains) == 999
    assert victim not in {d.uuid for d in domains}
    (record,) = [r for r in caplog.records if 'skipping domain' in r.getMessage()]
    assert victim in record.getMessage() and 'guest-00005' in record.getMessage()


LIFECYCLE_XML = """<domain type='test'><name>evented</name>
<uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid><memory unit='MiB'>64</memory>
<vcpu>1</vcpu><os><type>hvm</type></os></domain>"""


def test_lifecycle_events(tmp_path):
    path = tmp_path / 'host.xml'
    hostxml.write_host_xml(str(path), n_domains=2)
    received, arrived = [], threading.Event()

    def callback(event):
        received.append(event)
        if event['event'] == 'stopped':
            arrived.set()

    host = LibvirtHost(f'test://{path}')
    host.get_host_info()                 # opened before start_events: events registered on it
    host.start_events(callback)
    conn = host.connection               # the test driver's state is per connection
    dom = conn.defineXML(LIFECYCLE_XML)
    dom.create()
    dom.destroy()
    assert arrived.wait(5), received
    host.stop()
    mine = [(e['event'], e['detail']) for e in received
            if e['uuid'] == '1b4e28ba-2fa1-11d2-883f-0016d3cca427']
    assert mine == [('defined', 'added'), ('started', 'booted'), ('stopped', 'destroyed')]
    assert all(type(e) is dict and e['name'] == 'evented' for e in received)
    assert all(type(v) is str for e in received for v in e.values())


def test_no_events_after_stop(tmp_path):
    path = tmp_path / 'host.xml'
    hostxml.write_host_xml(str(path), n_domains=1)
    received = []
    host = LibvirtHost(f'test://{path}')
    host.start_events(received.append)
    host.connection.defineXML(hostxml.domain_xml(7))
    host.stop()
    assert not host.connected
    got_one = len(received)
    # A later call reopens a plain connection: the old callback is gone.
    host.connection.defineXML(LIFECYCLE_XML).create()
    threading.Event().wait(0.5)
    assert len(received) == got_one
    host.stop()


def test_failing_callback_does_not_stop_delivery(tmp_path, caplog):
    path = tmp_path / 'host.xml'
    hostxml.write_host_xml(str(path), n_domains=1)
    seen = threading.Event()
    calls = []

    def callback(event):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError('consumer bug')
        seen.set()

    host = LibvirtHost(f'test://{path}')
    host.start_events(callback)
    dom = host.connection.defineXML(LIFECYCLE_XML)
    dom.create()
    assert seen.wait(5)
    host.stop()
    assert 'lifecycle event callback failed' in caplog.text
