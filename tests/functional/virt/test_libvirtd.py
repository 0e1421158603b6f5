"""A real libvirtd with QEMU (tools/setup-libvirtd.sh): the adapter against it."""

import threading
import uuid

import pytest

from nova_rt.virt.host import LibvirtHost
from tests.functional.virt import libvirtd

pytestmark = pytest.mark.libvirtd

URI = libvirtd.URI


def test_diskless_domain_seen_running_through_the_adapter():
    dom_uuid = str(uuid.uuid4())
    name = f'{libvirtd.NAME_PREFIX}{dom_uuid[:8]}'
    received, started, stopped = [], threading.Event(), threading.Event()

    def callback(event):
        if event['uuid'] == dom_uuid:
            received.append(event['event'])
            {'started': started, 'stopped': stopped}.get(event['event'],
                                                         threading.Event()).set()

    host = LibvirtHost(URI, instances_path='/var/lib/nova_rt/instances')
    host.start_events(callback)
    conn = host.connection
    dom = conn.defineXML(libvirtd.domain_xml(name, dom_uuid))
    try:
        dom.create()
        assert started.wait(10), received
        seen = {d.uuid: d for d in host.list_domains()}
        assert seen[dom_uuid].name == name
        assert (seen[dom_uuid].state, seen[dom_uuid].active) == ('running', True)
        assert (seen[dom_uuid].vcpus, seen[dom_uuid].memory_mb) == (1, 32)
        info = host.get_host_info()
        assert info.hypervisor_type == 'QEMU'
        assert info.online_cpus and info.memory_mb > 0 and info.disk_total_gb > 0
        assert info.numa_cells and info.cpu_model
        dom.destroy()
        assert stopped.wait(10), received
        after = {d.uuid: d for d in host.list_domains()}
        assert (after[dom_uuid].state, after[dom_uuid].active) == ('shutoff', False)
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        host.stop()
    check = LibvirtHost(URI)
    assert dom_uuid not in {d.uuid for d in check.list_domains()}
    check.stop()
