"""The demo (tools/demo): its inventory report and table from plain host
data, and its arguments."""

import pytest

from nova_rt import exception
from nova_rt import objects
from tools.demo import inventory as demo
from tools.demo import main


def _host():
    cells = (
        objects.HostNumaCell(id=0, cpus=frozenset(range(0, 4)), memory_mb=1024,
                             mempages=(objects.MemPagePool(4, 262144),
                                       objects.MemPagePool(2048, 16))),
        objects.HostNumaCell(id=1, cpus=frozenset(range(4, 8)), memory_mb=1024),
    )
    return objects.HostInfo(
        hostname='h1', hypervisor_type='QEMU', hypervisor_version=8002000,
        uri='qemu:///system', online_cpus=frozenset(range(8)), memory_mb=2048,
        disk_total_gb=100, disk_used_gb=7, numa_cells=cells)


def test_every_online_cpu_is_a_vcpu_without_cpu_sets():
    report = demo.inventory_report(_host())
    assert report['inventory'] == {'VCPU': 8, 'MEMORY_MB': 2048, 'DISK_GB': 100}
    assert [c['cpuset'] for c in report['numa_cells']] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert report['numa_cells'][0]['mempages'] == [
        {'size_kb': 4, 'total': 262144}, {'size_kb': 2048, 'total': 16}]


def test_dedicated_cpus_become_pcpu_per_cell():
    report = demo.inventory_report(_host(), shared_set='0-1', dedicated_set='2-3,6-7')
    assert report['inventory']['VCPU'] == 2
    assert report['inventory']['PCPU'] == 4
    assert report['numa_cells'][1]['cpuset'] == []
    assert report['numa_cells'][1]['pcpuset'] == [6, 7]


def test_cpu_set_naming_offline_cpus_is_a_config_error():
    with pytest.raises(exception.ConfigError, match='cpu_dedicated_set'):
        demo.inventory_report(_host(), dedicated_set='6-9')


def test_table_lists_classes_and_cells():
    table = demo.inventory_table(demo.inventory_report(_host(), dedicated_set='4-7'))
    lines = table.splitlines()
    assert lines[0] == 'Host h1 (QEMU, qemu:///system)'
    assert any(line.split() == ['PCPU', '4'] for line in lines)
    assert any(line.split()[:4] == ['1', '-', '4-7', '1024'] for line in lines)


def test_demo_arguments_default_to_the_system_demo():
    parser = main.build_parser()
    assert parser.parse_args(['run', '--ci']).exit_after_show
    assert parser.parse_args(['run', '--keep-running']).keep_running
    assert parser.parse_args(['stop', '/tmp/x']).workdir == '/tmp/x'
    assert parser.parse_args(['inventory']).uri == demo.DEFAULT_URI
