"""Incremental audits (``virt/domain_cache.py``) on libvirt's test driver:
events and the cheap listing say what to read again, a slice of the rest is
read in turn, and the answer is always what a full read would give, except
for a change libvirt sent no event for, and then only until the slice
reaches that domain, within ``full_reread_interval``.

Events are "lost" by making the host's dirty marks a no-op while libvirt
delivers them: the callback still hears them, so the test knows they have
passed.
"""

import threading

import hypothesis
import libvirt
from hypothesis import strategies as st

from nova_rt import objects
from nova_rt.virt import domain_xml
from nova_rt.virt.host import STATE_NAMES
from nova_rt.virt.host import LibvirtHost
from tests.functional.virt import hostxml

INTERVAL = 90.0
SENTINEL = 999          # a domain redefined to know that events have passed


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Watched:
    """A LibvirtHost with events, a fake clock and a switch that loses the
    events of what is done under ``silently()``."""

    def __init__(self, tmp_path, n_domains=8, interval=INTERVAL):
        self.uri = hostxml.write_host_xml(tmp_path / 'host.xml',
                                          n_domains=n_domains)
        self.clock = Clock()
        self.host = LibvirtHost(self.uri, full_reread_interval=interval,
                                clock=self.clock)
        self.events = []
        self.cond = threading.Condition()
        self.losing = False
        cache = self.host._domains
        mark = cache.mark_dirty
        cache.mark_dirty = lambda uuid: None if self.losing else mark(uuid)
        self.host.start_events(self._heard)
        self.conn = self.host.connection
        self.conn.defineXML(hostxml.domain_xml(SENTINEL, hostxml.SHUTOFF))

    def _heard(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def settle(self):
        """Wait until every event of what was done so far has come
        (libvirt delivers a connection's events in order)."""
        with self.cond:
            seen = len(self.events)
        self.conn.defineXML(hostxml.domain_xml(SENTINEL, hostxml.SHUTOFF))
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(e['name'] == f'guest-{SENTINEL:05d}'
                            for e in self.events[seen:]), timeout=60)

    def silently(self, change):
        self.settle()
        self.losing = True
        try:
            change()
            self.settle()
        finally:
            self.losing = False

    def audit(self, advance=0.0) -> dict:
        self.clock.now += advance
        return {d.uuid: d for d in self.host.list_domains()}

    def full(self) -> dict:
        """What a full read gives now, straight from libvirt."""
        found = {}
        for dom in self.conn.listAllDomains(0):
            fields = domain_xml.parse_domain_xml(dom.XMLDesc(0)).fields()
            found[dom.UUIDString()] = objects.DomainInfo(
                state=STATE_NAMES[dom.state()[0]],
                active=dom.isActive() == 1, **fields)
        return found

    @property
    def reads(self) -> set:
        return set(self.host.domains_read_last)

    def stop(self):
        self.host.stop()


def _set_memory(dom, mib):
    """A change libvirt sends no event for (a shut-off domain's maximum
    memory, changed in its definition)."""
    dom.setMemoryFlags(mib * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG
                       | libvirt.VIR_DOMAIN_MEM_MAXIMUM)


def _domain(w, index):
    return w.conn.lookupByUUIDString(hostxml.domain_uuid(index))


def test_an_unchanged_host_is_not_read_again(tmp_path):
    w = Watched(tmp_path)
    try:
        first = w.audit()
        assert len(first) == 9 and len(w.reads) == 9      # a full read
        w.settle()
        w.audit()
        again = w.host.list_domains()
        assert w.reads == set()
        assert {d.uuid: d for d in again} == first == w.full()
    finally:
        w.stop()


def test_an_event_driven_change_is_seen_at_the_next_audit(tmp_path):
    w = Watched(tmp_path)
    try:
        w.audit()
        w.settle()
        w.audit()
        shut_off = hostxml.domain_uuid(4)          # every 4th is shut off
        running = hostxml.domain_uuid(1)
        # A new definition (DEFINED event) and a stop (STOPPED event).
        xml = hostxml.domain_xml(4, hostxml.SHUTOFF).replace(
            '<vcpu>1</vcpu>', '<vcpu>3</vcpu>')
        w.conn.defineXML(xml)
        _domain(w, 1).destroy()
        w.settle()
        seen = w.audit()
        assert seen[shut_off].vcpus == 3
        assert seen[running].state == 'shutoff' and not seen[running].active
        assert seen == w.full()
        # Only what the events named (and the sentinel) was read again.
        assert w.reads == {shut_off, running, hostxml.domain_uuid(SENTINEL)}
    finally:
        w.stop()


def test_a_change_without_event_is_found_by_the_slice_in_time(tmp_path):
    w = Watched(tmp_path, n_domains=8)
    try:
        order = list(w.audit())          # read order = the slice's order
        w.settle()
        w.audit()                        # the sentinel's event, read
        order.remove(hostxml.domain_uuid(SENTINEL))
        order.append(hostxml.domain_uuid(SENTINEL))
        # The shut-off domain the slice reaches last of the two.
        target = max((hostxml.domain_uuid(0), hostxml.domain_uuid(4)),
                     key=order.index)
        before = w.audit()[target]
        # No event: a shut-off domain's definition changed in place.
        _set_memory(w.conn.lookupByUUIDString(target), 96)
        assert w.full()[target].memory_mb == 96 != before.memory_mb
        step = INTERVAL / len(order)     # one domain per audit
        seen_at = None
        read = set()
        for audit in range(1, len(order) + 1):
            seen = w.audit(advance=step)
            read |= w.reads
            if target in w.reads:
                seen_at = audit
            if seen_at is None:
                assert seen[target] == before      # not before the slice
            else:
                assert seen[target] == w.full()[target]
        assert seen_at == order.index(target) + 1 > 1
        # One interval's worth of audits read every domain once.
        assert read == set(order)
    finally:
        w.stop()


def test_a_domain_not_read_for_an_interval_is_read_at_the_next_audit(tmp_path):
    w = Watched(tmp_path)
    try:
        w.audit()
        w.settle()
        w.audit(advance=1.0)
        target = hostxml.domain_uuid(0)
        _set_memory(w.conn.lookupByUUIDString(target), 96)
        # One audit after a long quiet spell: everything is due.
        seen = w.audit(advance=INTERVAL + 5)
        assert len(w.reads) == 9
        assert seen == w.full() and seen[target].memory_mb == 96
    finally:
        w.stop()


def test_changes_without_events_of_membership_and_state_are_seen_at_once(
        tmp_path):
    w = Watched(tmp_path)
    try:
        w.audit()
        w.settle()
        w.audit()
        gone_inactive = hostxml.domain_uuid(4)
        gone_running = hostxml.domain_uuid(2)
        stopped = hostxml.domain_uuid(1)
        started = hostxml.domain_uuid(0)
        restarted = hostxml.domain_uuid(3)

        def change():
            _domain(w, 4).undefine()
            running = _domain(w, 2)
            running.undefine()              # transient now ...
            running.destroy()               # ... and gone
            _domain(w, 1).destroy()
            _domain(w, 0).create()
            _domain(w, 3).destroy()
            _domain(w, 3).create()          # a new id, same state
            w.conn.defineXML(hostxml.domain_xml(50, hostxml.SHUTOFF))
            w.conn.defineXML(hostxml.domain_xml(51, hostxml.SHUTOFF)).create()

        old_id = _domain(w, 3).ID()
        w.silently(change)
        assert _domain(w, 3).ID() != old_id
        seen = w.audit()
        assert gone_inactive not in seen and gone_running not in seen
        assert not seen[stopped].active and seen[started].active
        assert hostxml.domain_uuid(50) in seen
        assert seen[hostxml.domain_uuid(51)].active
        assert seen == w.full()
        assert restarted in w.reads
    finally:
        w.stop()


def test_without_events_every_audit_reads_every_domain(tmp_path):
    uri = hostxml.write_host_xml(tmp_path / 'host.xml', n_domains=5)
    host = LibvirtHost(uri, full_reread_interval=INTERVAL)
    try:
        host.list_domains()
        host.list_domains()
        assert len(host.domains_read_last) == 5
    finally:
        host.stop()


def test_a_new_connection_reads_every_domain_again(tmp_path):
    w = Watched(tmp_path)
    try:
        w.audit()
        w.settle()
        w.audit()
        assert len(w.reads) == 1
        session = w.host._session
        w.clock.now += 10        # a connection that had lasted: no back-off
        w.host._lost(session, 'test: connection dropped')
        assert w.host.wait_for_connection(max_attempts=50)
        w.conn = w.host.connection
        seen = w.audit()
        assert len(w.reads) == len(seen) == len(w.full())
    finally:
        w.stop()


# ------------------------------------------------------------ the property

#: Changes libvirt sends no event for, lost events or not.
_WITHOUT_EVENT = ('set_memory',)
_OPS = ('define', 'undefine', 'start', 'destroy', 'suspend', 'resume',
        'redefine', 'set_memory', 'restart')


def _applies(op, dom) -> bool:
    active = dom.isActive() == 1
    state = dom.state()[0]
    return {'undefine': not active, 'start': not active, 'destroy': active,
            'suspend': state == libvirt.VIR_DOMAIN_RUNNING,
            'resume': state == libvirt.VIR_DOMAIN_PAUSED,
            'redefine': True, 'set_memory': not active,
            'restart': active}[op]


def _apply(w, op, index, pool):
    """Do ``op`` to the ``index``-th domain it applies to, if any; the uuid
    changed, or None."""
    if op == 'define':
        if not pool:
            return None
        new = pool.pop()
        w.conn.defineXML(hostxml.domain_xml(new, hostxml.SHUTOFF))
        return hostxml.domain_uuid(new)
    domains = sorted((d for d in w.conn.listAllDomains(0)
                      if d.name() != f'guest-{SENTINEL:05d}'
                      and _applies(op, d)), key=lambda d: d.name())
    if not domains:
        return None
    dom = domains[index % len(domains)]
    if op == 'undefine':
        dom.undefine()
    elif op == 'start':
        dom.create()
    elif op == 'destroy':
        dom.destroy()
    elif op == 'suspend':
        dom.suspend()
    elif op == 'resume':
        dom.resume()
    elif op == 'redefine':
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        start = xml.index('<memory')
        end = xml.index('</memory>') + len('</memory>')
        w.conn.defineXML(xml[:start] + f"<memory unit='MiB'>"
                         f"{128 * (1 + index % 5)}</memory>" + xml[end:])
    elif op == 'set_memory':
        _set_memory(dom, 64 + 32 * (index % 4))
    elif op == 'restart':
        dom.destroy()
        dom.create()
    return dom.UUIDString()


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(st.lists(st.tuples(
    st.sampled_from(_OPS), st.integers(0, 20), st.booleans(),
    st.sampled_from([0.0, 1.0, 7.0, 30.0, 90.0])), min_size=1, max_size=20))
def test_the_audit_equals_a_full_read_at_every_step(tmp_path_factory, steps):
    """After any sequence of changes, each with or without its events, the
    incremental audit gives exactly what a full read gives, save for the
    definition and the paused/running state of a domain changed without
    an event and not read since; and that only for less than the interval.
    (Not generated: an inactive domain replaced by a same-named one with
    no event; domain_cache.py says why the slice is what finds that.)"""
    w = Watched(tmp_path_factory.mktemp('prop'), n_domains=6)
    pool = list(range(100, 106))
    unseen: dict = {}        # uuid -> when changed without an event
    try:
        w.audit()
        for op, index, silent, advance in steps:
            changed = []
            if silent:
                w.silently(lambda: changed.append(_apply(w, op, index, pool)))
            else:
                changed.append(_apply(w, op, index, pool))
                w.settle()
            uuid = changed[0]
            if uuid is not None and (silent or op in _WITHOUT_EVENT):
                unseen.setdefault(uuid, w.clock.now)
            seen = w.audit(advance=advance)
            for read in w.reads:
                unseen.pop(read, None)
            full = w.full()
            assert seen.keys() == full.keys()
            for uuid, info in full.items():
                assert seen[uuid].active == info.active, uuid
                if uuid in unseen:
                    assert w.clock.now - unseen[uuid] < INTERVAL
                else:
                    assert seen[uuid] == info, uuid
    finally:
        w.stop()
