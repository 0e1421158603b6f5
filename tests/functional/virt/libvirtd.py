"""A real libvirtd with QEMU for the tests marked ``libvirtd``.

- ``URI``, ``unavailable_reason()``: ``qemu:///system``, and why it cannot be
  used here (``None`` when it answers).
- ``domain_xml(name, dom_uuid, vcpus, memory_mib)``: a diskless guest that
  idles in the firmware, which is all "running" needs.
- ``start_domain(conn, vcpus, memory_mib)`` / ``remove_domain(dom)``: define
  and start one (named ``nova-rt-test-…``); destroy and undefine it, whatever
  state it is in.

Domains on ``qemu:///system`` are the machine's, not the test's: whatever a
test starts, a finalizer must remove, or later runs see it as unmanaged.
"""

from __future__ import annotations

import os
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
