"""libvirt's lifecycle event codes as names, the native event-loop thread,
and the hand-off from native threads to the daemon's own.

The loop is process-wide (libvirt has one default event implementation per
process) and runs in a real OS thread, so that it keeps polling libvirt's
sockets even when eventlet has monkey-patched ``threading``.

What that thread (or any other native one: the reconnecting thread, eventlet's
tpool) has to tell the rest of the daemon goes through ``handoff()``: a plain
call under the threading backend, a call made by a green thread under eventlet.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Callable

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


def _green() -> bool:
    if 'eventlet' not in sys.modules:
        return False
    import eventlet.patcher
    return eventlet.patcher.is_monkey_patched('thread')


def native_threading():
    """The real ``threading`` module, even under eventlet's monkey-patching."""
    if _green():
        import eventlet.patcher
        return eventlet.patcher.original('threading')
    return threading


class Handoff:
    """Makes calls that come from native OS threads in the world that made it.

    Under the threading backend ``call`` is a plain call.  Under eventlet a
    native thread must not touch green primitives: a green ``Event`` it sets
    wakes no green thread until that thread's own timeout (which is how the
    audit loop came to see libvirt events only once a second), and a green
    lock it finds held cannot be waited for from that thread at all (logging's
    handler locks are such locks).  So the call is queued, one byte on a pipe
    wakes the hub, and a green thread makes it, in order, at once.

    Make it in the hub's thread (eventlet's main thread).  Calls made from
    that thread itself are plain calls.
    """

    def __init__(self):
        self._green = _green()
        if not self._green:
            return
        import eventlet
        import eventlet.patcher
        # The real os: the writer runs in native threads, which must not
        # trampoline on a hub that is not theirs.
        self._os = eventlet.patcher.original('os')
        self._hub_thread = native_threading().get_ident()
        self._calls: collections.deque = collections.deque()
        self._read_fd, self._write_fd = self._os.pipe()
        for fd in (self._read_fd, self._write_fd):
            self._os.set_blocking(fd, False)
        eventlet.spawn(self._run)

    def call(self, func: Callable, *args) -> None:
        """``func(*args)`` in the owner's world; exceptions are logged there."""
        if not self._green or native_threading().get_ident() == self._hub_thread:
            _invoke(func, args)
            return
        self._calls.append((func, args))     # deque appends are thread-safe
        try:
            self._os.write(self._write_fd, b'.')
        except BlockingIOError:
            pass     # a full pipe means the reader is due to wake anyway

    def _run(self) -> None:
        from eventlet.hubs import trampoline
        while True:
            trampoline(self._read_fd, read=True)
            try:
                while self._os.read(self._read_fd, 4096):
                    pass
            except BlockingIOError:
                pass
            # Drained after the byte was read: a call queued meanwhile has
            # either been taken here or left a byte for the next round.
            while self._calls:
                func, args = self._calls.popleft()
                _invoke(func, args)


def _invoke(func: Callable, args: tuple) -> None:
    try:
        func(*args)
    except Exception:  # a failing consumer must not stop the thread that delivers
        LOG.exception('callback %s failed', getattr(func, '__qualname__', func))


_handoff_lock = threading.Lock()
_handoff = None


def handoff() -> Handoff:
    """The process's ``Handoff`` (made at first use: call it first from the
    main thread, as ``LibvirtHost()`` is)."""
    global _handoff
    with _handoff_lock:
        if _handoff is None:
            _handoff = Handoff()
        return _handoff


_loop_lock = threading.Lock()
_loop_thread = None


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
