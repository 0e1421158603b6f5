"""The libvirt adapter: one connection, turned into plain data.

``LibvirtHost`` opens its connection lazily, reopens it with a capped
exponential back-off when it fails or dies, and answers with
``objects.HostInfo`` / ``objects.DomainInfo``.  Parsing is done by the pure
modules ``virt.capabilities`` and ``virt.domain_xml``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from typing import Callable, Optional

import libvirt

from nova_rt import exception
from nova_rt import objects
from nova_rt.virt import capabilities
from nova_rt.virt import domain_xml
from nova_rt.virt import events

LOG = logging.getLogger(__name__)
# How many domains list_domains reads between two give_way() calls.
_GIVE_WAY_EVERY = 4

GiB = 1024 ** 3

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: 'nostate',
    libvirt.VIR_DOMAIN_RUNNING: 'running',
    libvirt.VIR_DOMAIN_BLOCKED: 'blocked',
    libvirt.VIR_DOMAIN_PAUSED: 'paused',
    libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
    libvirt.VIR_DOMAIN_CRASHED: 'crashed',
    libvirt.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended',
}

# Errors after which the connection is not worth keeping (as Nova).
_DISCONNECT_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN))


def mask_uri(uri: str) -> str:
    """The URI with any password replaced: qemu+ssh://u:secret@h -> u:***@h."""
    return re.sub(r'(//[^/:@]*):[^/@]*@', r'\1:***@', uri)


class Backoff:
    """Delays 1, 2, 4 ... capped at ``maximum`` seconds; ``reset`` starts over."""

    def __init__(self, maximum: float, initial: float = 1.0):
        self.maximum, self.initial = maximum, initial
        self._next = initial

    def next_delay(self) -> float:
        delay = min(self._next, self.maximum)
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


def _auth_callback(credentials, _opaque):
    # Only credential-free URIs (local socket, SASL-less TLS, test driver).
    return 0 if not credentials else -1


class LibvirtHost:
    """The hypervisor of this host, as libvirt shows it.

    ``clock`` and ``sleep`` are injectable so that back-off can be tested
    without waiting.  Nothing returned holds a libvirt object.
    """

    def __init__(self, uri: str, instances_path: Optional[str] = None,
                 disk_pool: Optional[str] = None, reconnect_max_interval: float = 60,
                 *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.uri = uri
        self.instances_path = instances_path
        self.disk_pool = disk_pool
        self._clock, self._sleep = clock, sleep
        self._backoff = Backoff(reconnect_max_interval)
        self._lock = threading.RLock()
        self._conn = None
        self._conn_has_event_impl = False
        self._closed_by_libvirt = False
        self._state: Optional[str] = None       # None, 'connected', 'disconnected'
        self._retry_at = 0.0
        self._last_error = ''
        self._event_callback = None
        # Called between domains while listing them (compute/gate.py), so
        # that the calls being served go first.
        self.give_way: Optional[Callable[[], object]] = None
        self._event_ids: list = []
        self._stopped = False
        self._xml_cache: dict = {}              # uuid -> (xml, parsed fields)
        # Without this libvirt prints every error to stderr on its own.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    # --- connection ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not self._closed_by_libvirt and _alive(conn)

    @property
    def connection(self) -> 'libvirt.virConnect':
        """The live connection (opening it if needed); for tests and tools."""
        return self._connection()

    def _connection(self):
        with self._lock:
            if self._conn is not None and (self._closed_by_libvirt or not _alive(self._conn)):
                self._lost('the connection was closed')
            if self._conn is not None:
                return self._conn
            now = self._clock()
            if now < self._retry_at:
                raise exception.HypervisorUnavailable(reason=(
                    f"not connected to {mask_uri(self.uri)} (next attempt in "
                    f"{self._retry_at - now:.0f}s): {self._last_error}"))
            try:
                conn = libvirt.openAuth(self.uri, [[libvirt.VIR_CRED_AUTHNAME],
                                                   _auth_callback, None], 0)
            except libvirt.libvirtError as exc:
                self._retry_at = now + self._backoff.next_delay()
                self._last_error = exc.get_error_message() or str(exc)
                self._set_state('disconnected')
                raise exception.HypervisorUnavailable(
                    reason=f"cannot connect to {mask_uri(self.uri)}: {self._last_error}"
                ) from exc
            self._conn, self._closed_by_libvirt = conn, False
            self._conn_has_event_impl = events.event_impl_registered()
            self._backoff.reset()
            self._set_state('connected')
            self._register_callbacks(conn)
            return conn

    def wait_for_connection(self, max_attempts: Optional[int] = None) -> bool:
        """Block, retrying with back-off, until connected; False if given up or stopped."""
        attempts = 0
        while not self._stopped:
            try:
                self._connection()
                return True
            except exception.HypervisorUnavailable:
                attempts += 1
                if max_attempts is not None and attempts >= max_attempts:
                    return False
                self._sleep(max(0.0, self._retry_at - self._clock()))
        return False

    def _set_state(self, state: str) -> None:
        # Logged once per change, never once per attempt: a libvirtd that is
        # down for an hour must not fill the log.
        if state == self._state:
            return
        uri = mask_uri(self.uri)
        if state == 'connected':
            LOG.info("connected to %s", uri)
        elif self._state == 'connected':
            LOG.warning("lost connection to %s, retrying: %s", uri, self._last_error)
        else:
            LOG.warning("cannot connect to %s, retrying: %s", uri, self._last_error)
        self._state = state

    def _lost(self, reason: str) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            self._event_ids = []
            self._last_error = reason
            self._retry_at = 0.0     # the first attempt after a loss is immediate
            self._set_state('disconnected')
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def _failed(self, exc: 'libvirt.libvirtError', doing: str):
        """The exception to raise for a libvirt error; drops a dead connection."""
        message = exc.get_error_message() or str(exc)
        if exc.get_error_code() in _DISCONNECT_ERRORS:
            self._lost(message)
        return exception.HypervisorUnavailable(
            reason=f"{doing} on {mask_uri(self.uri)} failed: {message}")

    def _on_close(self, _conn, reason, _opaque) -> None:
        # Runs in the event thread: only flag it; the next call reconnects.
        self._closed_by_libvirt = True
        self._last_error = f"closed by libvirt (reason {reason})"

    # --- host ---------------------------------------------------------------

    def get_host_info(self) -> objects.HostInfo:
        conn = self._connection()
        try:
            hv_type = conn.getType()
            caps = capabilities.parse_capabilities(conn.getCapabilities())
            info = conn.getInfo()
            online = self._online_cpus(conn, hv_type, caps, info)
            host_info = dict(hostname=conn.getHostname(), hypervisor_type=hv_type,
                             hypervisor_version=conn.getVersion(),
                             memory_mb=info[1])
            disk_total, disk_used = self._disk_gb(conn)
        except libvirt.libvirtError as exc:
            raise self._failed(exc, 'reading the host') from exc
        except capabilities.InvalidXML as exc:
            raise exception.HypervisorUnavailable(reason=str(exc)) from exc
        return objects.HostInfo(
            uri=self.uri, online_cpus=online, disk_total_gb=disk_total,
            disk_used_gb=disk_used,
            numa_cells=capabilities.restrict_to_cpus(caps.numa_cells, online),
            cpu_model=caps.cpu_model, cpu_features=caps.cpu_features, **host_info)

    @staticmethod
    def _online_cpus(conn, hv_type, caps, info) -> frozenset:
        if hv_type == 'TEST':
            # The test driver's getCPUMap() is a fixed 8-CPU map that
            # contradicts its own capabilities and getInfo().
            cells = [c.cpus for c in caps.numa_cells]
            return frozenset().union(*cells) if cells else frozenset(range(info[2]))
        _count, cpumap, _online = conn.getCPUMap()
        return frozenset(i for i, online in enumerate(cpumap) if online)

    def _disk_gb(self, conn) -> tuple[int, int]:
        if self.disk_pool:
            try:
                pool = conn.storagePoolLookupByName(self.disk_pool)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                    raise
                raise exception.ConfigError(reason=(
                    f"[libvirt] disk_pool: no storage pool {self.disk_pool!r} on "
                    f"{mask_uri(self.uri)}")) from exc
            _state, capacity, allocation, _available = pool.info()
            return capacity // GiB, allocation // GiB
        if not self.instances_path:
            return 0, 0
        stat = os.statvfs(_nearest_existing(self.instances_path))
        # As Nova: used counts blocks not free, including root's reserve.
        return (stat.f_blocks * stat.f_frsize // GiB,
                (stat.f_blocks - stat.f_bfree) * stat.f_frsize // GiB)

    # --- domains ------------------------------------------------------------

    def list_domains(self) -> list[objects.DomainInfo]:
        """Every domain, active or not; one whose XML does not parse is logged and skipped."""
        conn = self._connection()
        try:
            # Two calls give every domain with its state and the active set;
            # only the XML needs one round trip per domain.
            stats = self._domain_states(conn)
            active = {d.UUIDString() for d in
                      conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        except libvirt.libvirtError as exc:
            raise self._failed(exc, 'listing domains') from exc
        domains = []
        seen = {}
        for index, (dom, record) in enumerate(stats):
            if self.give_way is not None and index % _GIVE_WAY_EVERY == 0:
                self.give_way()
            uuid = dom.UUIDString()
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue        # undefined since it was listed
                raise self._failed(exc, f'reading domain {uuid}') from exc
            state = STATE_NAMES.get(record.get('state.state'), 'nostate')
            is_active = uuid in active
            cached = self._xml_cache.get(uuid)
            if cached is not None and cached[0] == xml:
                # Domain XML rarely changes between audits: parse it only
                # when it did (parsing is most of an audit's gathering), and
                # keep the same DomainInfo while the state is the same too.
                info = cached[1]
                if info.state != state or info.active != is_active:
                    info = dataclasses.replace(info, state=state, active=is_active)
            else:
                try:
                    fields = domain_xml.parse_domain_xml(xml).fields()
                except domain_xml.InvalidXML as exc:
                    LOG.warning("skipping domain %s (%s): %s", uuid, dom.name(), exc)
                    continue
                info = objects.DomainInfo(state=state, active=is_active, **fields)
            seen[uuid] = (xml, info)
            domains.append(info)
        self._xml_cache = seen
        return domains

    @staticmethod
    def _domain_states(conn) -> list:
        try:
            return conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
        return [(dom, {'state.state': dom.state()[0]}) for dom in conn.listAllDomains(0)]

    # --- events -------------------------------------------------------------

    def start_events(self, callback: Callable[[dict], None]) -> None:
        """Deliver lifecycle events to ``callback`` as plain dicts.

        ``callback({'uuid', 'name', 'event', 'detail'})`` runs in libvirt's
        native event thread: it should hand the event off and return quickly.
        If libvirt is unreachable now, registration happens on reconnection.
        """
        events.ensure_event_loop()
        with self._lock:
            self._event_callback = callback
            if self._conn is not None and not self._conn_has_event_impl:
                # Opened before the event implementation existed: reopen.
                conn, self._conn = self._conn, None
                conn.close()
            elif self._conn is not None:
                self._register_callbacks(self._conn)
                return
        try:
            self._connection()
        except exception.HypervisorUnavailable as exc:
            LOG.debug("events will be registered on reconnection: %s", exc)

    def _register_callbacks(self, conn) -> None:
        if not self._conn_has_event_impl:
            return
        try:
            conn.registerCloseCallback(self._on_close, None)
        except libvirt.libvirtError:
            pass   # drivers without it (the test driver) never close on their own
        if self._event_callback is not None and not self._event_ids:
            self._event_ids.append(conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))

    def _on_lifecycle(self, _conn, dom, event, detail, _opaque) -> None:
        callback = self._event_callback
        if callback is None:
            return
        try:
            callback(events.lifecycle_event(dom.UUIDString(), dom.name(), event, detail))
        except Exception:  # a failing consumer must not stop the event thread
            LOG.exception("lifecycle event callback failed")

    def stop(self) -> None:
        """Deregister events and close the connection."""
        with self._lock:
            self._stopped = True
            self._event_callback = None
            conn, self._conn = self._conn, None
            event_ids, self._event_ids = self._event_ids, []
            self._state = None
        if conn is None:
            return
        for event_id in event_ids:
            try:
                conn.domainEventDeregisterAny(event_id)
            except libvirt.libvirtError:
                pass
        if self._conn_has_event_impl:
            try:
                conn.unregisterCloseCallback()
            except libvirt.libvirtError:
                pass
        conn.close()


def _alive(conn) -> bool:
    try:
        return conn.isAlive() == 1
    except libvirt.libvirtError:
        return False


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path
