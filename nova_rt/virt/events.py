"""libvirt's lifecycle event codes as names, and the native event-loop thread.

The loop is process-wide (libvirt has one default event implementation per
process) and runs in a real OS thread, so that it keeps polling libvirt's
sockets even when eventlet has monkey-patched ``threading``.
"""

from __future__ import annotations

import logging
import sys
import threading

import libvirt

LOG = logging.getLogger(__name__)

EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: 'defined',
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: 'undefined',
    libvirt.VIR_DOMAIN_EVENT_STARTED: 'started',
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: 'suspended',
    libvirt.VIR_DOMAIN_EVENT_RESUMED: 'resumed',
    libvirt.VIR_DOMAIN_EVENT_STOPPED: 'stopped',
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: 'pmsuspended',
    libvirt.VIR_DOMAIN_EVENT_CRASHED: 'crashed',
}

# The details worth a name; others are passed on as their number.
_DETAIL_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: ('added', 'updated', 'renamed', 'from_snapshot'),
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: ('removed', 'renamed'),
    libvirt.VIR_DOMAIN_EVENT_STARTED: ('booted', 'migrated', 'restored', 'from_snapshot',
                                       'wakeup'),
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: ('paused', 'migrated', 'ioerror', 'watchdog',
                                         'restored', 'from_snapshot', 'api_error',
                                         'postcopy', 'postcopy_failed'),
    libvirt.VIR_DOMAIN_EVENT_RESUMED: ('unpaused', 'migrated', 'from_snapshot', 'postcopy'),
    libvirt.VIR_DOMAIN_EVENT_STOPPED: ('shutdown', 'destroyed', 'crashed', 'migrated',
                                       'saved', 'failed', 'from_snapshot'),
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: ('finished', 'guest', 'host'),
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: ('memory', 'disk'),
    libvirt.VIR_DOMAIN_EVENT_CRASHED: ('panicked', 'crashloaded'),
}


def lifecycle_event(uuid: str, name: str, event: int, detail: int) -> dict:
    """A lifecycle event as plain data: uuid, name, event name, detail name."""
    details = _DETAIL_NAMES.get(event, ())
    return {'uuid': uuid, 'name': name,
            'event': EVENT_NAMES.get(event, str(event)),
            'detail': details[detail] if 0 <= detail < len(details) else str(detail)}


def native_threading():
    """The real ``threading`` module, even under eventlet's monkey-patching."""
    if 'eventlet' in sys.modules:
        import eventlet.patcher
        if eventlet.patcher.is_monkey_patched('thread'):
            return eventlet.patcher.original('threading')
    return threading


_loop_lock = threading.Lock()
_loop_thread = None


def event_impl_registered() -> bool:
    return _loop_thread is not None


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it, once per process.

    Connections opened before this cannot deliver events or close callbacks
    (libvirt binds them to the event implementation at open time).
    """
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        thread = native_threading().Thread(target=_run_loop, name='libvirt-event-loop',
                                           daemon=True)
        thread.start()
        _loop_thread = thread


def _run_loop() -> None:
    pause = native_threading().Event()   # a sleep that stays native under eventlet
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # one bad iteration must not end event delivery
            LOG.exception("libvirt event loop iteration failed")
            pause.wait(1)
