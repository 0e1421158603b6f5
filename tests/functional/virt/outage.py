"""libvirtd taken away under a running nova-rt-compute and brought back, timed
(no pytest imports: bench/bench_reconnect.py uses it too).

- ``ClaimFlow(api, host)``: a thread that claims and aborts one small
  instance after another, counting what succeeded and what did not.
- ``libvirtd_outage(api, host, down_for)``: stop libvirtd (SIGTERM, or
  ``signo``), keep it down ``down_for`` seconds, start it again; returns how
  long ``get_host_state()["hypervisor"]["connected"]`` took to turn false
  after the signal and true again after libvirtd answered.
- ``libvirtd_hang(api, host, hang_for)``: the same with SIGSTOP/SIGCONT, a
  libvirtd that is there but does not answer: only keepalive can tell.

Times are ``time.monotonic()`` differences, measured by polling
``get_host_state`` over RPC every ``POLL`` seconds, so they include one RPC
round trip (a few milliseconds here).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
import uuid
from typing import Optional

from tests.functional.virt import libvirtd

POLL = 0.01


def ctx() -> dict:
    return {'request_id': 'req-' + str(uuid.uuid4()), 'user_id': 'u1',
            'project_id': 'p-outage'}


def small_instance() -> dict:
    return {'uuid': str(uuid.uuid4()), 'project_id': 'p-outage', 'user_id': 'u1',
            'flavor': {'name': 'outage.tiny', 'vcpus': 1, 'memory_mb': 16,
                       'root_gb': 0, 'ephemeral_gb': 0, 'swap': 0,
                       'extra_specs': {}},
            'vm_state': 'building', 'task_state': None, 'os_type': 'linux',
            'is_volume_backed': False}


class ClaimFlow(threading.Thread):
    """Claim then abort, over and over, until ``stop()``."""

    def __init__(self, api, host: str, pause: float = 0.005):
        super().__init__(name='claim-flow', daemon=True)
        self.api, self.host, self.pause = api, host, pause
        self.succeeded = 0
        self.failures: list = []          # (monotonic time, repr of the error)
        self.latencies: list = []         # seconds, each claim's round trip
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            instance = small_instance()
            started = time.monotonic()
            try:
                self.api.instance_claim(ctx(), self.host, instance=instance)
                self.latencies.append(time.monotonic() - started)
                self.api.abort_instance_claim(ctx(), self.host,
                                              instance_uuid=instance['uuid'])
            except Exception as exc:      # counted, not raised: the test judges
                self.failures.append((time.monotonic(), repr(exc)))
            else:
                self.succeeded += 1
            self._stopping.wait(self.pause)

    def stop(self) -> None:
        self._stopping.set()
        self.join(30)


def connected(api, host: str) -> bool:
    return api.get_host_state(ctx(), host)['hypervisor']['connected']


def wait_connected(api, host: str, wanted: bool, timeout: float) -> Optional[float]:
    """The ``time.monotonic()`` at which ``connected`` was first seen equal
    to ``wanted``; None if not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connected(api, host) is wanted:
            return time.monotonic()
        time.sleep(POLL)
    return None


@dataclasses.dataclass
class Outage:
    disconnect_s: Optional[float]     # signal sent -> connected false
    reconnect_s: Optional[float]      # libvirtd answers -> connected true
    down_s: float                     # signal sent -> libvirtd answers again


def libvirtd_outage(api, host: str, down_for: float, cap: float,
                    signo: int = signal.SIGTERM) -> Outage:
    """One outage; libvirtd runs again when this returns, whatever happened."""
    try:
        killed = libvirtd.signal_libvirtd(signo)
        # libvirtd takes a second or so to exit after SIGTERM; it has closed
        # its clients' sockets by then.
        seen_down = wait_connected(api, host, False, timeout=10)
        libvirtd.wait_exited()
        time.sleep(max(0.0, killed + down_for - time.monotonic()))
    finally:
        back = libvirtd.start_libvirtd()
    seen_up = wait_connected(api, host, True, timeout=cap + 30)
    return Outage(disconnect_s=None if seen_down is None else seen_down - killed,
                  reconnect_s=None if seen_up is None else max(0.0, seen_up - back),
                  down_s=back - killed)


def libvirtd_hang(api, host: str, hang_for: float, cap: float) -> Outage:
    """libvirtd stopped (SIGSTOP) rather than gone, then continued: only
    keepalive can tell that it does not answer."""
    try:
        frozen = libvirtd.signal_libvirtd(signal.SIGSTOP)
        seen_down = wait_connected(api, host, False, timeout=hang_for)
        time.sleep(max(0.0, frozen + hang_for - time.monotonic()))
    finally:
        libvirtd.signal_libvirtd(signal.SIGCONT)
        back = time.monotonic()
    seen_up = wait_connected(api, host, True, timeout=cap + 30)
    return Outage(disconnect_s=None if seen_down is None else seen_down - frozen,
                  reconnect_s=None if seen_up is None else seen_up - back,
                  down_s=back - frozen)
