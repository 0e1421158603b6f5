import pytest

from nova_rt import objects
from nova_rt.virt import capabilities
from nova_rt.virt.capabilities import InvalidXML, parse_capabilities
from tests.unit.virt.fixtures import read


@pytest.fixture(scope='module')
def smt_host():
    return parse_capabilities(read('caps_2socket_smt_hugepages.xml'))


def test_host_identity_and_cpu(smt_host):
    assert smt_host.uuid == '4c4c4544-0042-3510-8052-b3c04f4e3732'
    assert smt_host.arch == 'x86_64'
    assert smt_host.cpu_model == 'Skylake-Server-IBRS'
    assert smt_host.cpu_vendor == 'Intel'
    assert smt_host.cpu_features == {'ss', 'vmx', 'pdcm', 'pdpe1gb', 'invtsc'}


def test_cells_cpus_sockets_memory(smt_host):
    cell0, cell1 = smt_host.numa_cells
    assert (cell0.id, cell1.id) == (0, 1)
    assert cell0.cpus == {0, 1, 2, 3, 8, 9, 10, 11}
    assert cell1.cpus == {4, 5, 6, 7, 12, 13, 14, 15}
    assert (cell0.socket_id, cell1.socket_id) == (0, 1)
    assert cell0.memory_mb == 65844012 // 1024
    assert cell1.memory_mb == 64512


def test_siblings_are_smt_pairs_inside_the_cell(smt_host):
    cell0, cell1 = smt_host.numa_cells
    assert cell0.siblings == (frozenset({0, 8}), frozenset({1, 9}),
                              frozenset({2, 10}), frozenset({3, 11}))
    assert cell1.siblings[0] == frozenset({4, 12})
    assert all(isinstance(s, frozenset) for s in cell1.siblings)


def test_page_pools_smallest_first(smt_host):
    cell0, cell1 = smt_host.numa_cells
    assert cell0.mempages == (objects.MemPagePool(4, 15937771),
                              objects.MemPagePool(2048, 512),
                              objects.MemPagePool(1048576, 2))
    assert [p.total for p in cell1.mempages] == [15991632, 1024, 0]


def test_offline_cpu_is_listed_without_topology():
    caps = parse_capabilities(read('caps_dedicated_host.xml'))
    (cell,) = caps.numa_cells
    assert cell.cpus == frozenset(range(8))
    assert caps.cpus_without_topology == {7}
    online = capabilities.restrict_to_cpus(caps.numa_cells, range(7))
    assert online[0].cpus == frozenset(range(7))
    assert frozenset({7}) not in online[0].siblings
    assert len(online[0].siblings) == 7


def test_mixed_sockets_give_no_socket():
    xml = """<capabilities><host><topology><cells num='1'><cell id='3'>
      <memory unit='MiB'>1024</memory><cpus num='2'>
      <cpu id='0' socket_id='0' core_id='0' siblings='0'/>
      <cpu id='1' socket_id='1' core_id='0' siblings='1'/>
      </cpus></cell></cells></topology></host></capabilities>"""
    (cell,) = parse_capabilities(xml).numa_cells
    assert cell.socket_id is None
    assert cell.memory_mb == 1024
    assert cell.id == 3


def test_no_cells_means_no_topology():
    caps = parse_capabilities(
        "<capabilities><host><cpu><arch>i686</arch></cpu>"
        "<topology><cells num='0'></cells></topology></host></capabilities>")
    assert caps.numa_cells == ()
    assert caps.cpu_model is None


@pytest.mark.parametrize('xml, message', [
    (read('caps_malformed.xml'), 'mismatched tag'),
    ('', 'capabilities XML'),
    ('<domain/>', 'not <capabilities>'),
    ('<capabilities/>', 'no <host>'),
    ("<capabilities><host><topology><cells><cell id='x'/></cells></topology></host>"
     "</capabilities>", "'x' is not an integer"),
    ("<capabilities><host><topology><cells><cell id='0'><cpus>"
     "<cpu id='0' socket_id='0' siblings='0-a'/></cpus></cell></cells></topology>"
     "</host></capabilities>", 'siblings'),
    ("<capabilities><host><topology><cells><cell id='0'/><cell id='0'/></cells>"
     "</topology></host></capabilities>", 'duplicate'),
])
def test_bad_xml_is_invalid_xml(xml, message):
    with pytest.raises(InvalidXML, match=message):
        parse_capabilities(xml)


def test_entities_and_dtds_are_refused():
    bomb = ('<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
            '<capabilities><host><uuid>&lol2;</uuid></host></capabilities>')
    with pytest.raises(InvalidXML):
        parse_capabilities(bomb)
    external = ('<!DOCTYPE c SYSTEM "http://example.invalid/x.dtd">'
                '<capabilities><host/></capabilities>')
    with pytest.raises(InvalidXML):
        parse_capabilities(external)


def test_invalid_xml_is_a_value_error():
    assert issubclass(InvalidXML, ValueError)
    with pytest.raises(ValueError):
        parse_capabilities(None)
