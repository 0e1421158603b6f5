"""The udev adapter: PCI discovery and the hotplug monitor (the only pyudev user).

Reads each device's sysfs attributes through libudev (so that umockdev's
testbed is honoured in tests) and the ``physfn``/``virtfnN`` links with
``os.readlink``/``os.listdir``, which umockdev's preload library redirects too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Callable, Optional

import pyudev

from nova_rt.pci import device as pcidev
from nova_rt.pci.device import PciDevice

LOG = logging.getLogger(__name__)

_ADDRESS = re.compile(r'^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')
_HEX_ID = re.compile(r'^0x[0-9a-f]{4}$')

#: callback(action, device or None, address)
EventCallback = Callable[[str, Optional[PciDevice], str], None]


class UnusableDevice(ValueError):
    """A PCI device whose sysfs facts cannot be trusted."""


def _attr(device: pyudev.Device, name: str) -> Optional[str]:
    try:
        value = device.attributes.get(name)
    except (OSError, UnicodeDecodeError):
        return None
    if value is None:
        return None
    return value.decode('utf-8', 'replace').strip()


def _hex_attr(device: pyudev.Device, name: str) -> str:
    value = _attr(device, name)
    if value is None:
        raise UnusableDevice(f'no {name} attribute')
    if not _HEX_ID.match(value.lower()):
        raise UnusableDevice(f'{name} {value!r} is not a 16-bit hex id')
    return value[2:].lower()


def _int_attr(device: pyudev.Device, name: str) -> Optional[int]:
    value = _attr(device, name)
    if value is None or value == '':
        return None
    try:
        return int(value, 10)
    except ValueError:
        raise UnusableDevice(f'{name} {value!r} is not an integer')


def _link_target(device: pyudev.Device, name: str) -> Optional[str]:
    try:
        return os.path.basename(os.readlink(os.path.join(device.sys_path, name)))
    except OSError:
        return None


def _virtfns(device: pyudev.Device) -> list[str]:
    try:
        names = os.listdir(device.sys_path)
    except OSError:
        return []
    links = sorted((n for n in names if re.fullmatch(r'virtfn\d+', n)),
                   key=lambda n: int(n[6:]))
    return [t for t in (_link_target(device, n) for n in links) if t]


def _parse(device: pyudev.Device, bus: set[str],
           devnames: dict[str, str]) -> PciDevice:
    """One PciDevice from a udev device; raise UnusableDevice when malformed."""
    address = device.sys_name
    if not _ADDRESS.match(address):
        raise UnusableDevice(f'{address!r} is not a PCI address')
    vendor_id = _hex_attr(device, 'vendor')
    product_id = _hex_attr(device, 'device')
    dev_class = _attr(device, 'class')
    if dev_class is not None:
        if not re.fullmatch(r'0x[0-9a-fA-F]{6}', dev_class):
            raise UnusableDevice(f'class {dev_class!r} is not a PCI class')
        dev_class = dev_class[2:].lower()
    numa_node = _int_attr(device, 'numa_node')
    if numa_node is not None and numa_node < 0:
        numa_node = None  # the kernel's -1: no affinity known
    total_vfs = _int_attr(device, 'sriov_totalvfs')
    num_vfs = _int_attr(device, 'sriov_numvfs')
    if total_vfs is not None and num_vfs is not None and num_vfs > total_vfs:
        raise UnusableDevice(f'sriov_numvfs {num_vfs} > sriov_totalvfs '
                             f'{total_vfs}')
    physfn = None
    if os.path.lexists(os.path.join(device.sys_path, 'physfn')):
        physfn = _link_target(device, 'physfn')
        if physfn is None or physfn not in bus:
            raise UnusableDevice(f'physfn link points to {physfn!r}, which is '
                                 f'not on the bus')
    if physfn is not None:
        dev_type, parent = pcidev.TYPE_VF, physfn
    elif total_vfs:
        dev_type, parent = pcidev.TYPE_PF, None
    else:
        dev_type, parent = pcidev.TYPE_PCI, None
    driver = device.driver or device.properties.get('DRIVER') or None
    return PciDevice(address=address, vendor_id=vendor_id,
                     product_id=product_id, dev_class=dev_class,
                     numa_node=numa_node, driver=driver, dev_type=dev_type,
                     parent_addr=parent, devname=devnames.get(address))


def _net_names(context: pyudev.Context,
               parent: Optional[pyudev.Device] = None) -> dict[str, str]:
    """PCI address -> its (first) network interface name."""
    names: dict[str, str] = {}
    devices = context.list_devices(subsystem='net')
    if parent is not None:
        devices = devices.match_parent(parent)
    for net in devices:
        pci = net.find_parent('pci')
        if pci is not None:
            current = names.get(pci.sys_name)
            if current is None or net.sys_name < current:
                names[pci.sys_name] = net.sys_name
    return names


def _warn(address: str, error: Exception) -> None:
    LOG.warning('PCI device %s is unusable and ignored: %s', address, error)


# One udev context for every discovery: creating one looks libudev up with
# ctypes.util.find_library, which forks ``ldconfig -p``, and a fork holds the
# GIL while it copies the process: a claim served meanwhile waited (every
# audit discovers).  libudev's context is not thread-safe, hence the lock.
_shared_context: Optional[pyudev.Context] = None
_shared_context_lock = threading.Lock()


def discover(context: Optional[pyudev.Context] = None) -> list[PciDevice]:
    """Every PCI function udev knows, sorted by address; malformed ones are skipped."""
    global _shared_context
    if context is not None:
        return _discover(context)
    with _shared_context_lock:
        if _shared_context is None:
            _shared_context = pyudev.Context()
        return _discover(_shared_context)


def _discover(context: pyudev.Context) -> list[PciDevice]:
    udev_devices = list(context.list_devices(subsystem='pci'))
    bus = {d.sys_name for d in udev_devices}
    devnames = _net_names(context)
    found = []
    for udev_device in udev_devices:
        try:
            found.append(_parse(udev_device, bus, devnames))
        except UnusableDevice as exc:
            _warn(udev_device.sys_name, exc)
    for dev in found:
        if dev.dev_type == pcidev.TYPE_PF:
            _check_virtfns(context, dev, bus)
    return sorted(found, key=lambda d: d.address)


def _check_virtfns(context: pyudev.Context, pf: PciDevice, bus: set[str]) -> None:
    try:
        udev_pf = pyudev.Devices.from_name(context, 'pci', pf.address)
    except pyudev.DeviceNotFoundError:
        return
    missing = [vf for vf in _virtfns(udev_pf) if vf not in bus]
    if missing:
        LOG.warning('PCI PF %s lists VFs %s that are not on the bus',
                    pf.address, missing)


def read_device(context: pyudev.Context,
                udev_device: pyudev.Device) -> Optional[PciDevice]:
    """One device as it is now (for hotplug), or None if gone or unusable."""
    parent = None
    if os.path.lexists(os.path.join(udev_device.sys_path, 'physfn')):
        parent = _link_target(udev_device, 'physfn')
    bus = {udev_device.sys_name}
    if parent is not None:
        try:
            pyudev.Devices.from_name(context, 'pci', parent)
            bus.add(parent)
        except pyudev.DeviceNotFoundError:
            pass
    try:
        return _parse(udev_device, bus, _net_names(context, udev_device))
    except UnusableDevice as exc:
        _warn(udev_device.sys_name, exc)
        return None


def _real_threading_and_select():
    """The OS-level modules even when eventlet has monkey-patched them.

    The monitor blocks in select(); under eventlet a green select would stall
    the hub thread it does not belong to.
    """
    import select
    import threading
    eventlet = sys.modules.get('eventlet')
    if eventlet is not None:
        from eventlet import patcher
        if patcher.is_monkey_patched('thread'):
            threading = patcher.original('threading')
        if patcher.is_monkey_patched('select'):
            select = patcher.original('select')
    return threading, select


class PciMonitor:
    """Watches udev for PCI ``add``/``change``/``remove`` in a real OS thread.

    ``callback(action, device, address)`` gets a fresh ``PciDevice`` for add and
    change, and None when the device is gone or unusable.  A network interface
    appearing or vanishing is reported as a ``change`` of its PCI device (its
    ``devname`` changed).  Exceptions raised by the callback are logged; the
    monitor keeps running.
    """

    def __init__(self, context: Optional[pyudev.Context] = None,
                 source: Optional[str] = None):
        self._context = context or pyudev.Context()
        # Without systemd-udevd (containers, minimal hosts) nothing is
        # rebroadcast on the 'udev' source: listen to the kernel instead.
        if source is None:
            source = 'udev' if os.path.exists('/run/udev/control') else 'kernel'
        self.source = source
        self._thread = None
        self._wakeup = None
        self._monitor = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, callback: EventCallback) -> None:
        if self.running:
            return
        threading, _select = _real_threading_and_select()
        monitor = pyudev.Monitor.from_netlink(self._context, source=self.source)
        monitor.filter_by('pci')
        monitor.filter_by('net')
        monitor.start()
        self._monitor = monitor
        self._wakeup = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(callback,),
                                        name='pci-udev-monitor', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        os.write(self._wakeup[1], b'x')
        self._thread.join(timeout)
        for fd in self._wakeup:
            os.close(fd)
        self._thread = self._wakeup = self._monitor = None

    def _run(self, callback: EventCallback) -> None:
        _threading, select = _real_threading_and_select()
        monitor, stop_fd = self._monitor, self._wakeup[0]
        while True:
            try:
                ready, _, _ = select.select([monitor.fileno(), stop_fd], [], [])
            except InterruptedError:
                continue
            if stop_fd in ready:
                return
            # pyudev's poll() uses select.poll, which eventlet removes; the
            # socket is non-blocking, so receiving directly never blocks.
            while True:
                event = monitor._receive_device()
                if event is None:
                    break
                self._dispatch(callback, event)

    def _dispatch(self, callback: EventCallback, event: pyudev.Device) -> None:
        try:
            action = event.action or 'change'
            if event.subsystem == 'net':
                pci = event.find_parent('pci')
                if pci is None:
                    return
                action, event = 'change', pci
            address = event.sys_name
            dev = None
            if action != 'remove':
                dev = read_device(self._context, event)
            callback(action, dev, address)
        except Exception:  # noqa: BLE001 - one bad event must not stop the watch
            LOG.exception('PCI hotplug event handling failed')


def hotplug_callback(apply_event: Callable[[str, Optional[PciDevice], str], bool],
                     request_audit: Callable[[], None]) -> EventCallback:
    """A PciMonitor callback: apply the event, and bring the audit forward if it changed anything.

    ``apply_event`` is typically the resource tracker's locked wrapper around
    ``PciDeviceTracker.handle_event``; ``request_audit`` must be safe to call
    from a foreign OS thread (e.g. set a ``threading.Event``).
    """
    def callback(action: str, dev: Optional[PciDevice], address: str) -> None:
        LOG.info('PCI hotplug: %s %s', action, address)
        if apply_event(action, dev, address):
            request_audit()
    return callback
