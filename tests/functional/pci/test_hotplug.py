import os
import queue
import subprocess
import sys
import textwrap

import pytest

from nova_rt.pci import manager, spec, udev

from tests.fixtures.pci import records

GPU_ATTRS = ['vendor', '0x10de', 'device', '0x1eb8', 'class', '0x030200',
             'numa_node', '1']
TIMEOUT = 10


@pytest.fixture(params=['udev', 'kernel'])
def events(sriov_testbed, request):
    got = queue.Queue()
    monitor = udev.PciMonitor(source=request.param)
    monitor.start(lambda action, dev, address: got.put((action, dev, address)))
    yield got
    monitor.stop()
    assert not monitor.running


def next_event(events, address, action=None):
    """The next event about ``address`` (umockdev repeats add on add_device)."""
    while True:
        event = events.get(timeout=TIMEOUT)
        if event[2] == address and action in (None, event[0]):
            return event


def tracker_with_specs():
    tracker = manager.PciDeviceTracker(spec.parse_device_specs(
        ['{"vendor_id": "10de"}', '{"vendor_id": "8086", "product_id": "10ed"}']))
    tracker.set_devices(udev.discover())
    return tracker


def test_added_device_becomes_available(sriov_testbed, events):
    tracker = tracker_with_specs()
    path = sriov_testbed.add_device('pci', '0000:5e:00.0', None, GPU_ATTRS,
                                    ['PCI_SLOT_NAME', '0000:5e:00.0'])
    action, dev, address = next_event(events, '0000:5e:00.0', 'add')
    assert (dev.address, dev.vendor_id, dev.numa_node) == ('0000:5e:00.0', '10de', 1)
    assert tracker.handle_event(action, dev, address) is True
    assert tracker.get('0000:5e:00.0').status == 'available'

    sriov_testbed.set_attribute(path, 'numa_node', '0')
    sriov_testbed.uevent(path, 'change')
    action, dev, address = next_event(events, '0000:5e:00.0', 'change')
    assert tracker.handle_event(action, dev, address) is True
    assert tracker.get('0000:5e:00.0').numa_node == 0

    sriov_testbed.uevent(path, 'remove')
    sriov_testbed.remove_device(path)
    action, dev, address = next_event(events, '0000:5e:00.0', 'remove')
    assert dev is None
    assert tracker.handle_event(action, dev, address) is True
    assert tracker.get('0000:5e:00.0') is None


def test_device_removed_while_allocated_is_never_reused(sriov_testbed, events):
    tracker = tracker_with_specs()
    vf = records.PF1_VFS[3]
    tracker.allocate('inst-1', 'inst-1', [vf])
    tracker.mark_allocated('inst-1')
    path = f'/sys/devices/pci0000:80/0000:80:03.0/{vf}'
    sriov_testbed.uevent(path, 'remove')
    sriov_testbed.remove_device(path)
    assert tracker.handle_event(*next_event(events, vf, 'remove')) is True
    held = tracker.get(vf)
    assert (held.status, held.instance_uuid) == ('removed', 'inst-1')
    # The next audit sees the same bus: still removed, still owned.
    assert tracker.set_devices(udev.discover()) is False
    aliases = spec.parse_aliases(['{"name": "vf", "product_id": "10ed", '
                                  '"vendor_id": "8086"}'])
    chosen = tracker.select(spec.requests_from_alias_counts({'vf': 7}, aliases))
    assert chosen is not None and vf not in chosen
    assert tracker.select(spec.requests_from_alias_counts({'vf': 10}, aliases)) is None
    assert tracker.free(instance_uuid='inst-1') == [vf]
    assert tracker.get(vf) is None


def test_garbage_device_added_is_reported_unusable(sriov_testbed, events):
    sriov_testbed.add_device('pci', '0000:5f:00.0', None,
                             ['vendor', 'nonsense', 'device', '0x1eb8'], [])
    action, dev, address = next_event(events, '0000:5f:00.0', 'add')
    assert dev is None
    tracker = tracker_with_specs()
    assert tracker.handle_event(action, dev, address) is False


def test_new_net_interface_is_a_change_of_its_pci_device(sriov_testbed, events):
    gpu_path = sriov_testbed.add_device('pci', '0000:5e:00.0', None, GPU_ATTRS, [])
    next_event(events, '0000:5e:00.0', 'add')
    sriov_testbed.add_device('net', 'eth7', gpu_path, ['address', '02:00:00:00:00:07'],
                             ['INTERFACE', 'eth7'])
    _action, dev, _address = next_event(events, '0000:5e:00.0', 'change')
    assert dev.devname == 'eth7'


def test_hotplug_callback_brings_audit_forward_only_on_change(sriov_testbed):
    tracker = tracker_with_specs()
    audits = []
    callback = udev.hotplug_callback(tracker.handle_event, lambda: audits.append(1))
    gpu = next(d for d in udev.discover() if d.address == records.GPUS[0])
    callback('add', gpu, gpu.address)  # already known: nothing changes
    assert audits == []
    callback('remove', None, records.GPUS[0])
    assert audits == [1]


def test_monitor_thread_is_real_under_eventlet(tmp_path):
    """The eventlet backend: the monitor must still run in an OS thread."""
    pytest.importorskip('eventlet')
    if not os.path.exists('/usr/bin/umockdev-wrapper'):
        pytest.skip('umockdev is not installed')
    script = textwrap.dedent('''
        import eventlet
        eventlet.monkey_patch()
        import queue, gi
        gi.require_version('UMockdev', '1.0')
        from gi.repository import UMockdev
        from nova_rt.pci import udev
        real_queue = eventlet.patcher.original('queue')
        got = real_queue.Queue()
        bed = UMockdev.Testbed.new()
        monitor = udev.PciMonitor()
        monitor.start(lambda a, d, addr: got.put((a, addr, d.vendor_id)))
        bed.add_device('pci', '0000:5e:00.0', None,
                       ['vendor', '0x10de', 'device', '0x1eb8'], [])
        print(got.get(timeout=10))
        monitor.stop()
        print('stopped', monitor.running)
    ''')
    out = subprocess.run(['umockdev-wrapper', sys.executable, '-c', script],
                         capture_output=True, text=True, timeout=60,
                         cwd=str(records.__file__).rsplit('/tests/', 1)[0])
    assert out.returncode == 0, out.stderr
    assert "('add', '0000:5e:00.0', '10de')" in out.stdout
    assert 'stopped False' in out.stdout
