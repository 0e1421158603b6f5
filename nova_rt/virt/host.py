"""The libvirt adapter: one connection, turned into plain data.

``LibvirtHost`` opens its connection lazily, knows at once when libvirt closes
it (close callback, keepalive), reopens it in the background with a capped
exponential back-off, and answers with ``objects.HostInfo`` /
``objects.DomainInfo``.  Parsing is done by the pure modules
``virt.capabilities`` and ``virt.domain_xml``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
import traceback
from typing import Callable, Optional

import libvirt

from nova_rt import exception
from nova_rt import objects
from nova_rt.virt import capabilities
from nova_rt.virt import domain_cache
from nova_rt.virt import domain_xml
from nova_rt.virt import events

LOG = logging.getLogger(__name__)

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

#: Events that say a domain's XML changed without a lifecycle change (device
#: hot-plug, vCPU pinning and other tunables): (event id, name).
_XML_EVENTS = (
    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, 'device_added'),
    (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, 'device_removed'),
    (libvirt.VIR_DOMAIN_EVENT_ID_TUNABLE, 'tunable'),
)

# Errors after which the connection is not worth keeping (as Nova).
_DISCONNECT_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN))


_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: 'I/O error',
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: 'end of file: libvirtd went away',
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: 'keepalive timeout',
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: 'closed by this client',
}


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


#: libvirt's keepalive on every connection.  A libvirtd that is killed or
#: restarted closes the socket and is noticed at once without it; one that
#: stops answering (hung, its host cut off) is given up after about
#: INTERVAL * (COUNT + 1) seconds, instead of libvirt's default of 30, and
#: any call stuck on it fails then.
KEEPALIVE_INTERVAL = 3
KEEPALIVE_COUNT = 3
#: ``[compute] audit_full_reread_interval``'s default: every domain's XML
#: is read again within this many seconds even without an event.
DEFAULT_FULL_REREAD_INTERVAL = 600.0
#: A connection lost sooner than this after it was opened did not prove
#: libvirtd back: the back-off goes on rather than starting over, so that a
#: libvirtd that accepts and drops every client (max_clients reached, a crash
#: loop) is not reopened in a tight loop.
STABLE_AFTER = 5.0


class _Session:
    """One opened connection and what was registered on it."""

    __slots__ = ('conn', 'opened_at', 'event_ids', 'closed')

    def __init__(self, conn, opened_at: float):
        self.conn = conn
        self.opened_at = opened_at
        self.event_ids: list = []
        # Set by libvirt's close callback, which may run before the session
        # is in place.
        self.closed = False


class LibvirtHost:
    """The hypervisor of this host, as libvirt shows it.

    Until ``start_events`` the connection is opened lazily by the calls that
    need it, at most as often as the back-off allows.  From ``start_events``
    on, a thread of its own keeps it: a connection that libvirt closes (or a
    call finds dead) is given up at once, so that ``connected`` is false at
    once, and reopened with back-off capped at ``reconnect_max_interval``;
    the calls in between fail fast with ``HypervisorUnavailable``.

    ``list_domains`` reads again only what may have changed once events
    come, and every domain within ``full_reread_interval`` seconds (0: every
    domain at every call); see ``virt/domain_cache.py``.

    ``clock`` and ``sleep`` are injectable so that back-off and the
    re-reading can be tested without waiting.  Nothing returned holds a libvirt object.  Callbacks
    are made through ``events.handoff()``, so that under eventlet they run
    in green threads, not in libvirt's.
    """

    def __init__(self, uri: str, instances_path: Optional[str] = None,
                 disk_pool: Optional[str] = None, reconnect_max_interval: float = 60,
                 full_reread_interval: float = DEFAULT_FULL_REREAD_INTERVAL, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], None]] = None):
        self._uri = uri
        self.instances_path = instances_path
        self.disk_pool = disk_pool
        self._clock, self._sleep = clock, sleep
        self._backoff = Backoff(reconnect_max_interval)
        native = events.native_threading()
        # A native lock, never held across a libvirt call: it is taken by
        # libvirt's event thread, the keeper, eventlet's tpool threads and
        # green threads alike.
        self._lock = native.Lock()
        self._stop_event = native.Event()
        self._wakeup = native.Event()         # the keeper: the connection was lost
        self._handoff = events.handoff()
        self._session: Optional[_Session] = None
        self._stale: list = []                # lost sessions still to close
        self._state: Optional[str] = None     # None, 'connected', 'disconnected'
        self._retry_at = 0.0
        self._last_error = ''
        self._event_callback = None
        self._on_connect = None
        self._keeper = None
        self._keeping = False                 # from start_events to stop
        self._stopped = False
        self._domains = domain_cache.DomainCache(full_reread_interval,
                                                 lock=native.Lock())
        # check_disk_pool found libvirt away: check on the next connection.
        self._pool_unchecked = False
        # (capabilities XML, parsed): the host's XML changes only with its
        # hardware or libvirt, and parsing it was a fifth of a steady audit.
        self._capabilities: Optional[tuple] = None
        # Without this libvirt prints every error to stderr on its own.
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

    # --- connection ---------------------------------------------------------

    @property
    def uri(self) -> str:
        """The configured URI, password masked: what may be shown and logged."""
        return mask_uri(self._uri)

    @property
    def connected(self) -> bool:
        """Whether a connection is held, as last known: a flag, never a
        libvirt call (``isAlive`` would wait behind any call in flight)."""
        return self._session is not None

    @property
    def connection(self) -> 'libvirt.virConnect':
        """The live connection (opening it if needed); for tests and tools."""
        return self._connection()

    def _connection(self):
        session = self._session
        if session is not None:
            if _alive(session.conn):
                return session.conn
            # Closed under us without a word (the test driver has no close
            # callback).
            self._lost(session, 'the connection was closed')
        with self._lock:
            if self._session is not None:
                return self._session.conn
            now = self._clock()
            if self._keeping or now < self._retry_at:
                # With a keeper, only the keeper opens: a caller would only
                # repeat its attempt and the back-off it keeps.
                raise exception.HypervisorUnavailable(reason=(
                    f"not connected to {self.uri} (next attempt in "
                    f"{max(0.0, self._retry_at - now):.0f}s): {self._last_error}"))
        return self._connect()

    def _connect(self, keeper: bool = False):
        """Open, set up and put in place a connection (the one place that opens)."""
        # Before any open: libvirt binds a connection to the event
        # implementation that exists when it is opened, and without one there
        # is no close callback, no keepalive and no events.
        events.ensure_event_loop()
        with self._lock:
            stale, self._stale = self._stale, []
        for old in stale:
            _dispose(old)
        session = error = None
        try:
            session = _Session(libvirt.openAuth(
                self._uri, [[libvirt.VIR_CRED_AUTHNAME], _auth_callback, None], 0),
                self._clock())
            self._set_up(session)
        except libvirt.libvirtError as exc:
            error = exc
        if error is not None:
            # Out of the except block: oslo.log would append the exception to
            # the warning that says so already.
            if session is not None:
                _dispose(session)
            raise self._attempt_failed(self._message(error)) from error
        with self._lock:
            current = self._session
            refused = session.closed or (keeper and self._stopped)
            if current is None and not refused:
                self._session = session
        if current is not None or refused:
            _dispose(session)
            if current is not None:
                return current.conn          # another caller was quicker
            raise self._attempt_failed('closed by libvirt while being set up')
        self._set_state('connected')
        self._check_pool_on_connect(session.conn)
        return session.conn

    def _set_up(self, session: _Session) -> None:
        conn = session.conn
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError as exc:
            # Local drivers (the test driver) have no socket to keep alive.
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
        conn.registerCloseCallback(self._on_close, session)
        if self._event_callback is not None:
            self._register_events(session)

    def _register_events(self, session: _Session) -> None:
        conn = session.conn
        session.event_ids.append(conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
        # Changes of a domain's XML that are not lifecycle changes.  Without
        # them the audit's slice still finds the change (domain_cache.py).
        for event_id, name in _XML_EVENTS:
            try:
                session.event_ids.append(conn.domainEventRegisterAny(
                    None, event_id, self._on_domain_changed, name))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT,
                                                libvirt.VIR_ERR_INVALID_ARG):
                    raise

    def _message(self, exc: 'libvirt.libvirtError') -> str:
        # libvirt may quote the URI it was given, password and all.
        return (exc.get_error_message() or str(exc)).replace(self._uri, self.uri)

    def _attempt_failed(self, message: str) -> exception.HypervisorUnavailable:
        with self._lock:
            self._retry_at = self._clock() + self._backoff.next_delay()
            self._last_error = message
        self._set_state('disconnected')
        return exception.HypervisorUnavailable(
            reason=f"cannot connect to {self.uri}: {message}")

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
                delay = self._retry_at - self._clock()
                # (Not due yet, but failing: the keeper is in an attempt.)
                self._pause(delay if delay > 0 else 0.1)
        return False

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop_event.wait(seconds)       # native: ends at stop()

    def _set_state(self, state: str) -> None:
        # Logged once per change, never once per attempt: a libvirtd that is
        # down for an hour must not fill the log.
        with self._lock:
            before, self._state = self._state, state
            reason = self._last_error
        if state == before:
            return
        if state == 'connected':
            self._handoff.call(LOG.info, "connected to %s", self.uri)
        elif before == 'connected':
            self._handoff.call(LOG.warning, "lost connection to %s, retrying: %s",
                               self.uri, reason)
        else:
            self._handoff.call(LOG.warning, "cannot connect to %s, retrying: %s",
                               self.uri, reason)

    def _drop(self, session: _Session, reason: str, close_later: bool = False) -> bool:
        """Give ``session`` up if it is the current one; False if it was not.

        ``close_later``: leave closing it to the keeper (or the next open).
        """
        with self._lock:
            if self._session is not session:
                return False
            self._session = None
            if close_later:
                self._stale.append(session)
            self._last_error = reason
            now = self._clock()
            if now - session.opened_at >= STABLE_AFTER:
                self._backoff.reset()
                self._retry_at = now    # the first attempt after a loss is immediate
            else:
                self._retry_at = now + self._backoff.next_delay()
        self._set_state('disconnected')
        self._wakeup.set()
        return True

    def _lost(self, session: _Session, reason: str) -> None:
        if self._drop(session, reason):
            _dispose(session)

    def _failed(self, exc: 'libvirt.libvirtError', doing: str):
        """The exception to raise for a libvirt error; drops a dead connection."""
        message = self._message(exc)
        session = self._session
        if exc.get_error_code() in _DISCONNECT_ERRORS and session is not None:
            self._lost(session, message)
        return exception.HypervisorUnavailable(
            reason=f"{doing} on {self.uri} failed: {message}")

    def _on_close(self, _conn, reason, session: _Session) -> None:
        # libvirt's event thread: no libvirt call here (closing the connection
        # from its own callback is not allowed); the keeper closes it.
        session.closed = True
        self._drop(session, f"closed by libvirt ({_CLOSE_REASONS.get(reason, reason)})",
                   close_later=True)

    def _keep(self) -> None:
        """The keeper thread: reopen whenever the connection is lost."""
        while not self._stopped:
            self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                stale, self._stale = self._stale, []
            for session in stale:
                _dispose(session)
            while self._session is None and not self._stopped:
                delay = self._retry_at - self._clock()
                if delay > 0:
                    self._pause(delay)
                    continue
                try:
                    self._connect(keeper=True)
                except exception.HypervisorUnavailable:
                    continue
                except Exception:  # a bug here must not end reconnecting for good
                    self._handoff.call(
                        LOG.error, "reconnecting to %s failed: %s", self.uri,
                        traceback.format_exc().replace(self._uri, self.uri))
                    self._attempt_failed('unexpected error, see the log')
                    continue
                on_connect = self._on_connect
                if on_connect is not None:
                    self._handoff.call(on_connect)

    # --- host ---------------------------------------------------------------

    def get_host_info(self) -> objects.HostInfo:
        conn = self._connection()
        try:
            hv_type = conn.getType()
            caps = self._parsed_capabilities(conn.getCapabilities())
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

    def _parsed_capabilities(self, xml: str):
        kept = self._capabilities
        if kept is not None and kept[0] == xml:
            return kept[1]
        caps = capabilities.parse_capabilities(xml)
        self._capabilities = (xml, caps)
        return caps

    @staticmethod
    def _online_cpus(conn, hv_type, caps, info) -> frozenset:
        if hv_type == 'TEST':
            # The test driver's getCPUMap() is a fixed 8-CPU map that
            # contradicts its own capabilities and getInfo().
            cells = [c.cpus for c in caps.numa_cells]
            return frozenset().union(*cells) if cells else frozenset(range(info[2]))
        _count, cpumap, _online = conn.getCPUMap()
        return frozenset(i for i, online in enumerate(cpumap) if online)

    def check_disk_pool(self) -> None:
        """Refuse a ``[libvirt] disk_pool`` that libvirt does not have, at start.

        Raises ``ConfigError`` naming the pool and the pools there are.
        With libvirt unreachable nothing is refused (the daemon serves from
        its last known inventory): a warning now, and the check is made on
        the next connection, where a missing pool is logged at ERROR.
        """
        if not self.disk_pool:
            return
        try:
            conn = self._connection()
            try:
                self._pool(conn)
            except libvirt.libvirtError as exc:
                raise self._failed(exc, 'looking up the disk pool') from exc
        except exception.HypervisorUnavailable as exc:
            self._pool_unchecked = True
            LOG.warning("[libvirt] disk_pool %r not checked, libvirt is "
                        "unreachable; checking it when libvirt connects: %s",
                        self.disk_pool, exc)

    def _check_pool_on_connect(self, conn) -> None:
        if not self._pool_unchecked:
            return
        self._pool_unchecked = False
        try:
            self._pool(conn)
        except exception.ConfigError as exc:
            self._handoff.call(LOG.error, "%s", exc)
        except libvirt.libvirtError:
            pass     # the next audit meets it and says so

    def _pool(self, conn):
        try:
            return conn.storagePoolLookupByName(self.disk_pool)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise
            error = exc
        pools = sorted(p.name() for p in conn.listAllStoragePools(0))
        raise exception.ConfigError(reason=(
            f"[libvirt] disk_pool: no storage pool {self.disk_pool!r} on "
            f"{self.uri} (its pools: {', '.join(pools) or 'none'})")) from error

    def _disk_gb(self, conn) -> tuple[int, int]:
        if self.disk_pool:
            pool = self._pool(conn)
            _state, capacity, allocation, _available = pool.info()
            return capacity // GiB, allocation // GiB
        if not self.instances_path:
            return 0, 0
        stat = os.statvfs(_nearest_existing(self.instances_path))
        # As Nova: used counts blocks not free, including root's reserve.
        return (stat.f_blocks * stat.f_frsize // GiB,
                (stat.f_blocks - stat.f_bfree) * stat.f_frsize // GiB)

    # --- domains ------------------------------------------------------------

    def list_domains(self) -> tuple:
        """Every domain, active or not; one whose XML does not parse is
        logged and skipped.

        With events coming (``start_events``), only the domains that may
        have changed are read again (``virt/domain_cache.py``); otherwise,
        and on a new connection, every domain is.
        """
        conn = self._connection()
        session = self._session
        if session is None or session.conn is not conn:
            session = None           # lost meanwhile: trust nothing
        trusted = session is not None and bool(session.event_ids)
        cache = self._domains
        now = self._clock()
        try:
            if cache.usable(session, trusted):
                return self._list_changed(conn, now)
            cache.reset(session, trusted)
            return cache.fill(self._read_all(conn, now), now)
        except libvirt.libvirtError as exc:
            # The dirty marks taken are lost with this audit: the next one
            # reads every domain.
            cache.reset(None, False)
            raise self._failed(exc, 'listing domains') from exc
        except BaseException:
            cache.reset(None, False)
            raise

    @property
    def domains_read_last(self) -> tuple:
        """The uuids of the domains the last ``list_domains`` read (XML and
        state); the others came from what it read before."""
        return self._domains.last_reads

    def _read_all(self, conn, now: float) -> list:
        # Two calls give every domain with its state and the active set;
        # only the XML needs one round trip per domain.
        stats = self._domain_states(conn)
        active = {d.UUIDString() for d in
                  conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
        entries = []
        for dom, record in stats:
            uuid = dom.UUIDString()
            xml = self._xml(dom, uuid)
            if xml is None:
                continue            # undefined since it was listed
            is_active = uuid in active
            entry = self._entry(dom, uuid, xml, record.get('state.state'),
                                is_active, now)
            if entry is not None:
                entries.append(entry)
        return entries

    def _list_changed(self, conn, now: float) -> tuple:
        """The incremental audit: the cheap listing, then only the domains
        it, the events and the slice name (``DomainCache.plan``)."""
        cache = self._domains
        plan = cache.plan(conn.listDomainsID(), conn.listDefinedDomains(), now)
        read: dict = {}
        gone = []
        for uuid in plan.uuids:
            dom = _lookup(conn.lookupByUUIDString, uuid)
            entry = self._read(dom, now) if dom is not None else None
            if entry is None:
                gone.append(uuid)    # undefined, or its XML no longer parses
            else:
                read[uuid] = entry
        for lookup, keys in ((conn.lookupByID, plan.ids),
                             (conn.lookupByName, plan.names)):
            for key in keys:
                dom = _lookup(lookup, key)
                if dom is None or dom.UUIDString() in read:
                    continue         # gone since it was listed, or read
                entry = self._read(dom, now)
                if entry is not None:
                    read[entry.info.uuid] = entry
        return cache.commit(read.values(), gone, now)

    def _read(self, dom, now: float) -> Optional[domain_cache.Entry]:
        uuid = dom.UUIDString()
        try:
            state = dom.state()[0]
            is_active = dom.isActive() == 1
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise
        xml = self._xml(dom, uuid)
        if xml is None:
            return None
        return self._entry(dom, uuid, xml, state, is_active, now)

    def _xml(self, dom, uuid: str) -> Optional[str]:
        try:
            return dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise self._failed(exc, f'reading domain {uuid}') from exc

    def _entry(self, dom, uuid: str, xml: str, state_code, is_active: bool,
               now: float) -> Optional[domain_cache.Entry]:
        state = STATE_NAMES.get(state_code, 'nostate')
        cached = self._domains.cached(uuid)
        if cached is not None and cached.xml == xml:
            # Domain XML rarely changes between audits: parse it only when
            # it did (parsing is most of reading a domain), and keep the
            # same DomainInfo while the state is the same too.
            info = cached.info
            if info.state != state or info.active != is_active:
                info = dataclasses.replace(info, state=state, active=is_active)
        else:
            try:
                fields = domain_xml.parse_domain_xml(xml).fields()
            except domain_xml.InvalidXML as exc:
                self._handoff.call(LOG.warning, "skipping domain %s (%s): %s",
                                   uuid, dom.name(), exc)
                return None
            info = objects.DomainInfo(state=state, active=is_active, **fields)
        # The id is known client-side; the cache finds a running domain by it.
        dom_id = dom.ID() if is_active else -1
        return domain_cache.Entry(info=info, xml=xml, dom_id=dom_id,
                                  read_at=now)

    @staticmethod
    def _domain_states(conn) -> list:
        try:
            return conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                raise
        return [(dom, {'state.state': dom.state()[0]}) for dom in conn.listAllDomains(0)]

    # --- events ---------------------------------------------------------

    def start_events(self, callback: Callable[[dict], None],
                     on_connect: Optional[Callable[[], None]] = None) -> None:
        """Deliver lifecycle events to ``callback`` as plain dicts, and keep
        the connection from now on.

        ``callback({'uuid', 'name', 'event', 'detail'})`` and ``on_connect()``
        (after every connection the keeper opens: what happened meanwhile was
        not seen) are made through ``events.handoff()`` and should return
        quickly.  If libvirt is unreachable now, events are registered on the
        connection the keeper opens.
        """
        events.ensure_event_loop()
        with self._lock:
            self._event_callback, self._on_connect = callback, on_connect
            self._stopped = False
            self._stop_event.clear()
            session = self._session
        if session is not None and not session.event_ids:
            try:
                self._register_events(session)
            except libvirt.libvirtError as exc:
                # The keeper registers them on the next connection.
                self._failed(exc, 'registering for events')
        elif session is None:
            try:
                self._connection()     # once now, as the back-off allows
            except exception.HypervisorUnavailable as exc:
                LOG.debug("events will be registered on reconnection: %s", exc)
        with self._lock:
            self._keeping = True
            keeper = None
            if self._keeper is None or not self._keeper.is_alive():
                keeper = self._keeper = events.native_threading().Thread(
                    target=self._keep, name='libvirt-keeper', daemon=True)
        if keeper is not None:
            keeper.start()
        if self._session is None:
            self._wakeup.set()

    def _on_lifecycle(self, _conn, dom, event, detail, _opaque) -> None:
        # libvirt's event thread; the uuid and name are known client-side.
        # Marked here, before the callback can bring an audit forward.
        uuid = dom.UUIDString()
        self._domains.mark_dirty(uuid)
        self._handoff.call(self._deliver, events.lifecycle_event(
            uuid, dom.name(), event, detail))

    def _on_domain_changed(self, _conn, dom, detail, name) -> None:
        uuid = dom.UUIDString()
        self._domains.mark_dirty(uuid)
        self._handoff.call(self._deliver, {
            'uuid': uuid, 'name': dom.name(), 'event': name,
            'detail': detail if isinstance(detail, str) else ''})

    def _deliver(self, event: dict) -> None:
        callback = self._event_callback
        if callback is None:
            return
        try:
            callback(event)
        except Exception:  # a failing consumer must not stop event delivery
            LOG.exception("lifecycle event callback failed")

    def stop(self) -> None:
        """Stop the keeper, deregister events and close the connection."""
        with self._lock:
            self._stopped = True
            self._keeping = False
            self._event_callback = self._on_connect = None
            session, self._session = self._session, None
            stale, self._stale = self._stale, []
            self._state = None
        self._stop_event.set()
        self._wakeup.set()
        for old in stale + ([session] if session is not None else []):
            _dispose(old)


def _dispose(session: _Session) -> None:
    """Deregister what was registered on ``session`` and close it, quietly:
    it is usually dead already."""
    conn = session.conn
    for event_id in session.event_ids:
        try:
            conn.domainEventDeregisterAny(event_id)
        except libvirt.libvirtError:
            pass
    session.event_ids = []
    try:
        conn.unregisterCloseCallback()
    except libvirt.libvirtError:
        pass
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


def _lookup(lookup, key):
    """The domain ``lookup(key)`` finds; None if there is none."""
    try:
        return lookup(key)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


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
