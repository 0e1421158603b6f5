"""The audit's PCI discovery, made only when it may find something new.

Enumerating the PCI bus through udev is most of what an audit costs once its
domains are read incrementally (about 1 ms for a handful of devices, more
with hundreds of VFs), and hotplug is applied as the udev monitor reports
it.  So the audit discovers again only when the monitor is not running, when
it has reported anything since the last discovery, or when the last
discovery is ``interval`` seconds old (``[compute]
audit_full_reread_interval``), which bounds what a lost uevent (a full
netlink buffer) can hide.  Otherwise it answers the last discovery, the
very same list.
"""

from __future__ import annotations

import time
from typing import Callable, Optional


class Rediscovery:
    """``Rediscovery(discover, monitor, interval)()`` is ``discover()`` or
    its last answer; ``changed()`` (any uevent) makes the next call
    discover."""

    def __init__(self, discover: Callable[[], list], monitor,
                 interval: float, clock: Callable[[], float] = time.monotonic):
        self._discover = discover
        self._monitor = monitor
        self.interval = interval
        self._clock = clock
        self._last: Optional[list] = None
        self._at = 0.0
        self._changed = True

    def changed(self) -> None:
        """From the monitor's thread: a plain flag, no lock needed."""
        self._changed = True

    def __call__(self) -> list:
        now = self._clock()
        running = self._monitor is not None and self._monitor.running
        if (self._last is not None and running and not self._changed
                and self.interval > 0 and now - self._at < self.interval):
            return self._last
        # Cleared first: a uevent during the discovery makes the next one.
        self._changed = False
        try:
            found = self._discover()
        except BaseException:
            self._changed = True
            raise
        self._last, self._at = found, now
        return found
