"""list_domains() reuses what it parsed while a domain's XML is unchanged,
and still sees every change of state or definition."""

from nova_rt.virt.host import LibvirtHost
from tests.functional.virt import hostxml


def test_state_and_xml_changes_are_seen_through_the_cache(tmp_path):
    uri = hostxml.write_host_xml(tmp_path / 'host.xml', n_domains=3)
    host = LibvirtHost(uri)
    first = {d.uuid: d for d in host.list_domains()}
    again = {d.uuid: d for d in host.list_domains()}
    running = hostxml.domain_uuid(1)
    assert first[running].active and first[running].state == 'running'
    # unchanged: the very same objects come back (nothing parsed again)
    assert all(again[u] is first[u] for u in first)

    dom = host.connection.lookupByUUIDString(running)
    dom.destroy()
    after = {d.uuid: d for d in host.list_domains()}
    assert after[running].state == 'shutoff' and not after[running].active
    assert after[running].vcpus == first[running].vcpus

    dom.setVcpusFlags(1, 0)     # a change of definition: parsed again
    changed = {d.uuid: d for d in host.list_domains()}
    assert changed[running].vcpus == 1
