import pytest

from nova_rt import objects
from nova_rt.virt.domain_xml import InvalidXML, memory_bytes, parse_domain_xml
from tests.unit.virt.fixtures import read


def test_pinned_numa_hugepages_hostdevs():
    dom = parse_domain_xml(read('domain_pinned_numa_hugepages_hostdevs.xml'))
    assert dom.uuid == 'b3c1a2d4-5e6f-4789-8abc-def012345678'
    assert dom.name == 'instance-0000002a'
    assert dom.vcpus == 4
    assert dom.memory_mb == 4096
    assert dom.cpu_pinning == {0: frozenset({4}), 1: frozenset({12}),
                               2: frozenset({5}), 3: frozenset({13})}
    assert dom.numa_memory_nodes == frozenset({1})
    assert dom.hugepage_kb == 1048576
    # Document order; the SR-IOV interface counts, the USB hostdev does not.
    assert dom.hostdev_addresses == ('0000:81:10.2', '0000:81:00.1', '0001:3b:1f.7')


def test_plain_domain():
    dom = parse_domain_xml(read('domain_plain.xml'))
    assert dom.memory_mb == 512
    assert dom.vcpus == 1            # current='1' of a maximum of 2
    # A domain-wide <vcpu cpuset> is floating placement, not pinning.
    assert dom.cpu_pinning == {}
    assert dom.numa_memory_nodes == frozenset()
    assert dom.hugepage_kb is None
    assert dom.hostdev_addresses == ()


def test_fields_build_domain_info():
    dom = parse_domain_xml(read('domain_plain.xml'))
    info = objects.DomainInfo(state='running', active=True, **dom.fields())
    assert info.uuid == '0f0e0d0c-0b0a-4908-8706-050403020100'
    assert info.memory_mb == 512


def _domain(memory="<memory unit='KiB'>1048576</memory>", extra=''):
    return (f"<domain type='kvm'><name>d</name><uuid>u-1</uuid>{memory}{extra}"
            "</domain>")


@pytest.mark.parametrize('memory, expected_mb', [
    ("<memory>2097152</memory>", 2048),                        # KiB by default
    ("<memory unit='KiB'>1048576</memory>", 1024),
    ("<memory unit='MiB'>300</memory>", 300),
    ("<memory unit='M'>300</memory>", 300),
    ("<memory unit='GiB'>2</memory>", 2048),
    ("<memory unit='G'>1</memory>", 1024),
    ("<memory unit='bytes'>536870912</memory>", 512),
    ("<memory unit='b'>536870913</memory>", 513),               # rounded up
    ("<memory unit='MB'>1000</memory>", 954),                   # decimal units
])
def test_memory_units(memory, expected_mb):
    assert parse_domain_xml(_domain(memory)).memory_mb == expected_mb


@pytest.mark.parametrize('backing, expected_kb', [
    ('<memoryBacking><hugepages/></memoryBacking>', 2048),
    ("<memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking>",
     2048),
    ("<memoryBacking><hugepages><page size='2' unit='M'/></hugepages></memoryBacking>", 2048),
    ("<memoryBacking><hugepages><page size='1' unit='G'/></hugepages></memoryBacking>",
     1048576),
    ("<memoryBacking><hugepages><page size='1048576'/></hugepages></memoryBacking>", 1048576),
    ('<memoryBacking><nosharepages/></memoryBacking>', None),
])
def test_hugepages(backing, expected_kb):
    assert parse_domain_xml(_domain(extra=backing)).hugepage_kb == expected_kb


def test_vcpupin_ranges_and_memnodes():
    dom = parse_domain_xml(_domain(extra=(
        "<vcpu>2</vcpu><cputune><vcpupin vcpu='0' cpuset='0-3,^1'/>"
        "<vcpupin vcpu='1' cpuset='8'/></cputune>"
        "<numatune><memory nodeset='0'/><memnode cellid='1' nodeset='2-3'/></numatune>")))
    assert dom.cpu_pinning == {0: frozenset({0, 2, 3}), 1: frozenset({8})}
    assert dom.numa_memory_nodes == frozenset({0, 2, 3})
    assert dom.vcpus == 2


def test_no_vcpu_element_means_one():
    assert parse_domain_xml(_domain()).vcpus == 1


@pytest.mark.parametrize('xml, message', [
    (read('domain_malformed.xml'), 'mismatched tag'),
    ('<capabilities/>', 'not <domain>'),
    ("<domain><name>d</name><memory>1</memory></domain>", 'uuid'),
    (_domain(memory=''), 'no <memory>'),
    (_domain(memory="<memory unit='parsecs'>1</memory>"), "unknown unit 'parsecs'"),
    (_domain(memory="<memory>lots</memory>"), 'not an integer'),
    (_domain(extra="<vcpu>0</vcpu>"), 'at least 1'),
    (_domain(extra="<cputune><vcpupin vcpu='0' cpuset='4-2'/></cputune>"), 'vcpupin 0'),
    (_domain(extra="<cputune><vcpupin cpuset='4'/></cputune>"), "'vcpu'"),
    (_domain(extra="<numatune><memory nodeset='x'/></numatune>"), 'nodeset'),
    (_domain(extra="<devices><hostdev mode='subsystem' type='pci'><source>"
                   "<address domain='0x0000' bus='0x100' slot='0x00' function='0x0'/>"
                   "</source></hostdev></devices>"), 'out of range'),
    (_domain(extra="<devices><hostdev mode='subsystem' type='pci'><source>"
                   "<address domain='0x0000' bus='0x01' function='0x0'/>"
                   "</source></hostdev></devices>"), "no 'slot'"),
])
def test_bad_domain_xml(xml, message):
    with pytest.raises(InvalidXML, match=message):
        parse_domain_xml(xml)


def test_entity_expansion_refused():
    bomb = ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            '<domain><name>&b;</name><uuid>u</uuid><memory>1</memory></domain>')
    with pytest.raises(InvalidXML):
        parse_domain_xml(bomb)


def test_memory_bytes_unknown_unit():
    assert memory_bytes(3, 'KB') == 3000
    with pytest.raises(InvalidXML):
        memory_bytes(3, 'furlongs')
