import logging
import os
import subprocess
import sys

import pytest

from nova_rt.pci import manager, spec, udev
from nova_rt.pci import report as pci_report

from tests.fixtures.pci import records
from tests.functional.pci.conftest import SRIOV_HOST

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_sriov_host_is_discovered(sriov_testbed, caplog):
    caplog.set_level(logging.WARNING, logger='nova_rt.pci.udev')
    devices = {d.address: d for d in udev.discover()}
    pf = devices[records.PF1]
    assert (pf.dev_type, pf.vendor_id, pf.product_id, pf.numa_node, pf.driver,
            pf.devname, pf.dev_class) == ('type-PF', '8086', '10fb', 0, 'ixgbe',
                                          'ens1f0', '020000')
    vfs = [d for d in devices.values() if d.parent_addr == records.PF1]
    assert sorted(v.address for v in vfs) == records.PF1_VFS
    assert {(v.dev_type, v.product_id, v.numa_node) for v in vfs} == \
        {('type-VF', '10ed', 0)}
    assert devices['0000:81:10.0'].devname == 'ens1f0v0'
    assert devices['0000:81:11.6'].driver == 'vfio-pci'
    pf2 = devices[records.PF2]
    assert (pf2.dev_type, pf2.numa_node) == ('type-PF', 1)
    assert [d.parent_addr for a, d in devices.items() if a in records.PF2_VFS] == \
        [records.PF2, records.PF2]
    assert [devices[g].numa_node for g in records.GPUS] == [0, 1]
    assert [devices[a].numa_node for a in records.NO_NUMA] == [None, None]
    # Unusable devices are left out, with a warning naming them; the rest goes on.
    assert records.GARBAGE not in devices
    assert records.DANGLING_VF not in devices
    text = caplog.text
    assert records.GARBAGE in text and "'0xZZZZ'" in text
    assert records.DANGLING_VF in text and 'physfn' in text
    assert len(devices) == 21


@pytest.mark.parametrize('attrs,words', [
    (['vendor', '0x10de', 'device', '0x1eb8', 'numa_node', 'one'], 'numa_node'),
    (['vendor', '0x10de'], 'no device'),
    (['vendor', '10de', 'device', '0x1eb8'], 'vendor'),
    (['vendor', '0x10de', 'device', '0x1eb8', 'class', 'gpu'], 'class'),
    (['vendor', '0x8086', 'device', '0x10fb', 'sriov_totalvfs', '4',
      'sriov_numvfs', '9'], 'sriov_numvfs'),
])
def test_malformed_attributes_make_one_device_unusable(testbed, caplog, attrs, words):
    testbed.add_device('pci', '0000:05:00.0', None, attrs, [])
    testbed.add_device('pci', '0000:06:00.0', None,
                       ['vendor', '0x10de', 'device', '0x1eb8', 'numa_node', '-1'], [])
    found = udev.discover()
    assert [d.address for d in found] == ['0000:06:00.0']
    assert found[0].numa_node is None
    assert '0000:05:00.0' in caplog.text and words in caplog.text


def test_tracker_pools_from_udev(sriov_testbed):
    specs = spec.parse_device_specs([
        '{"address": "0000:81:00.0", "physical_network": "physnet1", '
        '"product_id": "10ed"}',
        '{"vendor_id": "10de", "product_id": "1eb8"}'])
    tracker = manager.PciDeviceTracker(specs)
    assert tracker.set_devices(udev.discover())
    pools = sorted((p['product_id'], p['numa_node'], p['dev_type'], p['count'],
                    p['tags'].get('physical_network')) for p in tracker.pools())
    assert pools == [('10ed', 0, 'type-VF', 8, 'physnet1'),
                     ('1eb8', 0, 'type-PCI', 1, None),
                     ('1eb8', 1, 'type-PCI', 1, None)]
    aliases = spec.parse_aliases(['{"name": "nic", "product_id": "10ed", '
                                  '"vendor_id": "8086", "numa_policy": "required"}'])
    reqs = spec.requests_from_flavor({'pci_passthrough:alias': 'nic:2'}, aliases)
    assert tracker.select(reqs, numa_nodes={1}) is None
    chosen = tracker.select(reqs, numa_nodes={0})
    assert chosen == records.PF1_VFS[:2]
    assert [v['parent_addr'] for v in tracker.allocate('i1', 'i1', chosen)] == \
        [records.PF1] * 2


def test_tree_printout(sriov_testbed):
    tree = pci_report.format_tree(udev.discover())
    lines = tree.splitlines()
    assert lines[0] == 'PCI devices: 21 (2 PF, 10 VF, 9 other)'
    pf_line = next(i for i, line in enumerate(lines) if line.startswith(records.PF1))
    assert all(records.PF1_VFS[k] in lines[pf_line + 1 + k] for k in range(8))
    assert lines[pf_line + 8].startswith('  `-- 0000:81:11.6 8086:10ed type-VF')


def test_cli_under_umockdev_run():
    """What an operator runs: the fixture via umockdev-run, no preload needed here."""
    if not os.path.exists('/usr/bin/umockdev-run'):
        pytest.skip('umockdev is not installed')
    out = subprocess.run(
        ['umockdev-run', '-d', str(SRIOV_HOST), '--', sys.executable, '-m',
         'nova_rt.pci', '--device-spec', '{"vendor_id": "8086", "product_id": "10ed"}'],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    assert 'PCI devices: 21 (2 PF, 10 VF, 9 other)' in out.stdout
    assert '8086:10ed type-VF numa=0 pf=0000:81:00.0 count=8' in out.stdout
    assert 'PCI pools (1 device_spec entries):' in out.stdout
    assert records.GARBAGE in out.stderr


def test_cli_rejects_bad_spec():
    out = subprocess.run([sys.executable, '-m', 'nova_rt.pci', '--device-spec',
                          '{"address": "0000:81:00.0", "devname": "eth0"}'],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2
    assert '"address" and "devname" cannot both be given' in out.stderr
