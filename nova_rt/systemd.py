"""systemd's notify protocol for both daemons: READY, STATUS, WATCHDOG, STOPPING.

The units are ``Type=notify`` with ``NotifyAccess=main`` and ``WatchdogSec``:
systemd starts the unit's dependents only on ``READY=1``, shows ``STATUS=`` in
``systemctl status``, and kills (then, with ``Restart=on-failure``, restarts)
a service that stops sending ``WATCHDOG=1``.  So pinging must mean "this
process still makes progress", not "a thread is alive": ``Watchdog`` pings
only while every one of its probes says the part it watches moved recently.

A probe is a callable returning None when all is well, else why the service
is wedged.  Probes never block: they look at what happened since the last
look, so that a wedged part cannot stop the watchdog thread itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping, Optional

LOG = logging.getLogger(__name__)

Probe = Callable[[], Optional[str]]


class Notifier:
    """Sends notify messages to ``$NOTIFY_SOCKET``; does nothing without it."""

    def __init__(self, environ: Mapping[str, str] = os.environ):
        name = environ.get('NOTIFY_SOCKET') or ''
        # '@' is systemd's spelling of an abstract socket address.
        self._address = '\0' + name[1:] if name.startswith('@') else name
        self._lock = threading.Lock()
        self._status: Optional[str] = None
        self._sock = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        if self._sock is None:
            return False
        message = '\n'.join(fields).encode()
        try:
            with self._lock:
                self._sock.sendto(message, self._address)
        except OSError as exc:
            # systemd restarted, or the socket is gone: nothing to do but
            # say so; the service itself is fine.
            LOG.debug('sd_notify %r failed: %s', message, exc)
            return False
        return True

    def status(self, text: str) -> None:
        """``STATUS=text``, only when it changed (``systemctl status``)."""
        text = _one_line(text)
        with self._lock:
            if text == self._status:
                return
            self._status = text
        self.send(f'STATUS={text}')

    def ready(self, status: str) -> None:
        self._status = _one_line(status)
        self.send('READY=1', f'STATUS={self._status}')

    def stopping(self, status: str) -> None:
        self._status = _one_line(status)
        self.send('STOPPING=1', f'STATUS={self._status}')

    def ping(self) -> None:
        self.send('WATCHDOG=1')

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return ' '.join(str(text).split())


def watchdog_usec(environ: Mapping[str, str] = os.environ) -> Optional[int]:
    """``WATCHDOG_USEC`` if the watchdog is meant for this process
    (sd_watchdog_enabled's rules), else None."""
    usec, pid = environ.get('WATCHDOG_USEC'), environ.get('WATCHDOG_PID')
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        LOG.warning('WATCHDOG_USEC=%r is not a number: no watchdog pings', usec)
        return None
    return value if value > 0 else None


#: How often STATUS is refreshed when systemd wants no watchdog pings.
STATUS_INTERVAL = 5.0


class Watchdog:
    """A thread that sends ``WATCHDOG=1`` every half ``WATCHDOG_USEC``
    while every probe answers None, and keeps ``STATUS`` current.

    ``probes(limit)`` gives the probes, by name.  One that saw no progress
    for ``limit`` seconds (``WATCHDOG_USEC`` itself) makes the pings stop;
    systemd kills the service ``WatchdogSec`` after the last one.
    """

    def __init__(self, notifier: Notifier,
                 probes: Callable[[Optional[float]], Mapping[str, Probe]],
                 status: Callable[[], str],
                 environ: Mapping[str, str] = os.environ):
        self.notifier = notifier
        usec = watchdog_usec(environ) if notifier.enabled else None
        self.limit = usec / 1e6 if usec else None
        self.pinging = usec is not None
        self.interval = self.limit / 2 if usec else STATUS_INTERVAL
        self.probes = dict(probes(self.limit))
        self.status = status
        self.wedged: Optional[str] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def check(self) -> Optional[str]:
        for name, probe in self.probes.items():
            try:
                problem = probe()
            except Exception as exc:   # a broken probe is a wedge we can see
                problem = f'probe failed: {type(exc).__name__}: {exc}'
            if problem:
                return f'{name}: {problem}'
        return None

    def tick(self) -> bool:
        """One round: probes, then a ping if they all pass."""
        problem = self.check()
        if problem and problem != self.wedged:
            LOG.error('Watchdog: %s; no more WATCHDOG=1 pings, systemd will '
                      'restart this service unless it recovers', problem)
            self.notifier.status(f'wedged: {problem}')
        elif not problem and self.wedged:
            LOG.warning('Watchdog: recovered; pinging systemd again')
        self.wedged = problem
        if not problem:
            self.notifier.status(self.status())
            if self.pinging:
                self.notifier.ping()
        return not problem

    def start(self) -> None:
        if not self.notifier.enabled:
            return
        if self.pinging:
            LOG.info('systemd watchdog: WATCHDOG=1 every %.1fs while the '
                     'service makes progress', self.interval)
        self._thread = threading.Thread(target=self._loop, name='watchdog',
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            started = time.monotonic()
            self.tick()
            if self._stop.wait(max(0.0, self.interval
                                   - (time.monotonic() - started))):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Heartbeat:
    """Progress of a loop: the loop calls ``beat()`` each round."""

    def __init__(self, limit: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self.clock()

    def __call__(self) -> Optional[str]:
        age = self.clock() - self._last
        if self.limit is not None and age > self.limit:
            return f'no progress for {age:.0f}s'
        return None


class TaskProbe:
    """Runs ``task`` now and then through ``submit`` and reports a wedge
    when one run has not ended after ``limit`` seconds.

    ``submit(fn)`` is, e.g., an RPC server's worker pool (all workers stuck
    means no call can be served) or a plain thread (a database query that
    hangs).  A task that fails quickly is not a wedge: the service answers,
    with an error, and a restart would not help; ``last_error`` keeps it.
    """

    def __init__(self, submit: Callable[[Callable[[], None]], object],
                 task: Callable[[], object], limit: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.submit = submit
        self.task = task
        self.limit = limit
        self.clock = clock
        self.last_error: Optional[str] = None
        self._running_since: Optional[float] = None
        self._done = threading.Event()
        self._done.set()

    def _run(self) -> None:
        try:
            self.task()
            self.last_error = None
        except Exception as exc:
            self.last_error = f'{type(exc).__name__}: {_one_line(exc)}'
        finally:
            self._done.set()

    def __call__(self) -> Optional[str]:
        now = self.clock()
        if not self._done.is_set():
            age = now - self._running_since
            if self.limit is not None and age > self.limit:
                return f'a probe has not ended after {age:.0f}s'
            return None
        self._done.clear()
        self._running_since = now
        try:
            self.submit(self._run)
        except Exception as exc:   # e.g. a pool already shut down
            self._done.set()
            return f'cannot run a probe: {type(exc).__name__}'
        return None


def in_thread(fn: Callable[[], None]) -> None:
    """``submit`` for a ``TaskProbe`` whose task may block for ever."""
    threading.Thread(target=fn, name='watchdog-probe', daemon=True).start()


def rpc_pool_probe(server, limit: Optional[float]) -> Optional[Probe]:
    """A probe of an oslo.messaging server's worker pool, or None if this
    oslo.messaging does not show it."""
    executor = getattr(server, '_work_executor', None)
    if executor is None or not hasattr(executor, 'submit'):
        LOG.debug('oslo.messaging server has no worker pool to probe')
        return None
    return TaskProbe(executor.submit, lambda: None, limit)
