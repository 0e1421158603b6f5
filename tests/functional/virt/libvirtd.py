"""A real libvirtd with QEMU for the tests marked ``libvirtd``.

- ``URI``, ``unavailable_reason()``: ``qemu:///system``, and why it cannot be
  used here (``None`` when it answers).
- ``domain_xml(name, dom_uuid, vcpus, memory_mib)``: a diskless guest that
  idles in the firmware, which is all "running" needs.
- ``start_domain(conn, vcpus, memory_mib)`` / ``remove_domain(dom)``: define
  and start one (named ``nova-rt-test-…``); destroy and undefine it, whatever
  state it is in.
- ``restart_unavailable_reason()``, ``stop_libvirtd()``, ``start_libvirtd()``:
  whether this test run may take libvirtd away and bring it back, and doing
  so the way tools/setup-libvirtd.sh runs it (``libvirtd -d``, no systemd).
  Running guests survive: QEMU does not depend on libvirtd.

Domains on ``qemu:///system`` are the machine's, not the test's: whatever a
test starts, a finalizer must remove, or later runs see it as unmanaged.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from typing import Optional

URI = 'qemu:///system'
NAME_PREFIX = 'nova-rt-test-'


def unavailable_reason() -> Optional[str]:
    """Why no real libvirtd can be used here; ``None`` when one answers."""
    try:
        import libvirt
    except ImportError as exc:
        return f'libvirt-python is not installed ({exc})'
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        return f'no libvirtd answers on {URI} ({exc.get_error_message()})'
    try:
        # A libvirtd without its QEMU driver answers but cannot run a guest.
        if conn.getType() != 'QEMU':
            return f'{URI} is {conn.getType()}, not QEMU'
    finally:
        conn.close()
    return None


def domain_xml(name: str, dom_uuid: str, vcpus: int = 1,
               memory_mib: int = 32) -> str:
    # KVM when this machine has it, else TCG: the guest idles in the
    # firmware either way.
    virt_type = 'kvm' if os.access('/dev/kvm', os.R_OK | os.W_OK) else 'qemu'
    return f"""<domain type='{virt_type}'>
      <name>{name}</name><uuid>{dom_uuid}</uuid>
      <memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices><graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
        <memballoon model='none'/></devices>
    </domain>"""


def start_domain(conn, vcpus: int = 1, memory_mib: int = 32):
    """A running domain of that size (a ``virDomain``)."""
    dom_uuid = str(uuid.uuid4())
    dom = conn.defineXML(domain_xml(NAME_PREFIX + dom_uuid[:8], dom_uuid,
                                    vcpus, memory_mib))
    try:
        dom.create()
    except Exception:
        dom.undefine()
        raise
    return dom


def remove_domain(dom) -> None:
    import libvirt
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError as exc:
        # Already gone (the test removed it itself): nothing left to do.
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def pids() -> list:
    found = subprocess.run(['pgrep', '-x', 'libvirtd'], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def restart_unavailable_reason() -> Optional[str]:
    """Why this run may not stop and start libvirtd; ``None`` when it may."""
    if os.geteuid() != 0:
        return 'stopping libvirtd needs root'
    if shutil.which('libvirtd') is None:
        return 'no libvirtd binary on PATH'
    if not pids():
        return 'libvirtd is not running as a process of its own'
    if os.path.isdir('/run/systemd/system'):
        # systemd (and its sockets) would start it again on its own.
        return 'libvirtd is managed by systemd here'
    return None


def answers() -> bool:
    import libvirt
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError:
        return False
    return True


def signal_libvirtd(signo: int) -> float:
    """Send ``signo`` to libvirtd; the ``time.monotonic()`` it was sent."""
    running = pids()
    if not running:
        raise RuntimeError('libvirtd is not running')
    sent = time.monotonic()
    for pid in running:
        os.kill(pid, signo)
    return sent


def wait_exited(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while pids():
        if time.monotonic() > deadline:
            raise RuntimeError(f'libvirtd did not exit within {timeout}s')
        time.sleep(0.02)


def stop_libvirtd(signo: int = signal.SIGTERM, timeout: float = 30) -> float:
    """Signal libvirtd and wait until it has exited; returns the
    ``time.monotonic()`` at which the signal was sent."""
    sent = signal_libvirtd(signo)
    wait_exited(timeout)
    return sent


def daemon_environment() -> dict:
    """This process's environment without umockdev's: the tests run under
    umockdev-wrapper, and a libvirtd started with its preload deadlocks in
    the child it forks to set security labels, so that every later domain
    start (and every call waiting behind it) hangs for ever."""
    return {name: value for name, value in os.environ.items()
            if name != 'LD_PRELOAD' and not name.startswith('UMOCKDEV')}


def preloads(pid: int) -> list:
    """The libraries preloaded into process ``pid`` (its ``LD_PRELOAD``)."""
    with open(f'/proc/{pid}/environ', 'rb') as environ:
        for entry in environ.read().split(b'\0'):
            if entry.startswith(b'LD_PRELOAD='):
                return entry.split(b'=', 1)[1].decode().split()
    return []


def start_libvirtd(timeout: float = 30) -> float:
    """Start libvirtd as tools/setup-libvirtd.sh does, without this
    process's preload; returns the ``time.monotonic()`` at which it first
    answered on ``URI``."""
    if not pids():
        subprocess.run(['libvirtd', '-d'], check=True, env=daemon_environment())
    deadline = time.monotonic() + timeout
    while not answers():
        if time.monotonic() > deadline:
            raise RuntimeError(f'libvirtd did not answer within {timeout}s')
        time.sleep(0.01)
    return time.monotonic()
