"""What the audit last read of each domain, and which domains it must read
again (pure bookkeeping: no libvirt here).

Reading a domain's XML and parsing it is most of what listing 1,000 domains
costs, and between two audits almost none of them change.  So an audit reads
again only the domains that may have changed:

- *dirty* ones: a libvirt event (lifecycle, device added or removed, tunable)
  named them since the last audit;
- *suspect* ones: the cheap listing (ids of the active domains, names of the
  inactive ones) no longer shows them where they were: stopped, started,
  restarted (a new id), renamed or gone; a lookup by uuid then tells which;
- *new* ones: an id or a name the cache does not know;
- a *slice* of the rest, oldest read first: ``reread_interval`` seconds'
  worth of the domains in proportion to the time since the last audit, and
  every domain read longer ago than ``reread_interval``.  A change libvirt
  sends no event for (``setVcpusFlags`` on a shut-off domain's definition,
  vCPU pinning, live vCPU changes) is therefore seen at the latest at the
  first audit after ``reread_interval`` seconds.

The one change the listing cannot tell from no change, and only the slice
finds: an inactive domain undefined and another defined under the same name
between two audits with neither event reaching us.  (A running domain is
known by its id, which libvirt never gives to another domain while it runs.)

Everything is thrown away when the connection changes (events were missed in
between) and the caller then reads every domain; so does a caller that has
no events to go by (``trusted`` false).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from typing import Iterable, Optional

from nova_rt import objects


@dataclasses.dataclass
class Entry:
    """One domain as last read."""
    info: objects.DomainInfo
    xml: str
    dom_id: int          # libvirt's id while it runs, -1 when it does not
    read_at: float


@dataclasses.dataclass
class Plan:
    """What one audit has to read."""
    uuids: list          # dirty, suspect and slice: look up by uuid
    ids: list            # active domains the cache does not know
    names: list          # inactive domains the cache does not know


class DomainCache:
    """``reread_interval``: seconds within which every domain is read again
    (0: every audit reads every domain)."""

    def __init__(self, reread_interval: float, lock=None):
        self.reread_interval = reread_interval
        self.session = None          # the connection the entries came from
        self.trusted = False         # events were registered on it
        # Oldest read first: a domain read again moves to the end.
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._by_id: dict = {}       # id -> uuid of the running domains
        self._by_name: dict = {}     # name -> uuid of the others
        self._dirty: set = set()
        # Taken by libvirt's event thread too: a native lock under eventlet.
        self._lock = lock or threading.Lock()
        self._read_at: Optional[float] = None
        self._credit = 0.0
        self._domains: Optional[list] = None     # the last answer, kept
        #: What the last audit read, for tests and the debug log.
        self.last_reads: tuple = ()

    def __len__(self) -> int:
        return len(self._entries)

    def mark_dirty(self, uuid: str) -> None:
        """An event named this domain: read it at the next audit."""
        with self._lock:
            self._dirty.add(uuid)

    def reset(self, session, trusted: bool) -> None:
        """The caller reads every domain from ``session`` next (``fill``).

        The entries stay until then: what is read again is parsed again
        only if its XML changed.
        """
        with self._lock:
            self._dirty.clear()
        self._read_at = None
        self._domains = None
        self._credit = 0.0
        self.session, self.trusted = session, trusted

    def usable(self, session, trusted: bool) -> bool:
        """Whether an incremental audit may go by this cache."""
        return (self.session is session and self.trusted and trusted
                and self.reread_interval > 0 and self._read_at is not None)

    def cached(self, uuid: str) -> Optional[Entry]:
        return self._entries.get(uuid)

    def plan(self, active_ids: Iterable[int], inactive_names: Iterable[str],
             now: float) -> Plan:
        """What to read, given libvirt's listing now; the dirty marks are
        taken (an event after this is for the next audit)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        ids, names = set(active_ids), set(inactive_names)
        by_id, by_name = self._by_id, self._by_name
        # Set operations on the indexes, not a walk over every entry: this
        # runs at every audit and most of the time finds nothing.
        wanted = dict.fromkeys(u for u in dirty if u in self._entries)
        wanted.update(dict.fromkeys(by_id[i] for i in by_id.keys() - ids))
        wanted.update(dict.fromkeys(by_name[n]
                                    for n in by_name.keys() - names))
        wanted.update(dict.fromkeys(self._slice(now)))
        # A dirty domain the cache does not know is new: the listing finds it.
        return Plan(uuids=list(wanted), ids=sorted(ids - by_id.keys()),
                    names=sorted(names - by_name.keys()))

    def _slice(self, now: float) -> list:
        count = len(self._entries)
        elapsed = min(max(0.0, now - self._read_at), self.reread_interval)
        self._credit = min(count, self._credit
                           + count * elapsed / self.reread_interval)
        take = math.floor(self._credit + 1e-9)     # 0.999... is one
        self._credit -= take
        due = now - self.reread_interval
        chosen = []
        for uuid, entry in self._entries.items():
            if len(chosen) >= take and entry.read_at > due:
                break
            chosen.append(uuid)
        return chosen

    def commit(self, read: Iterable[Entry], gone: Iterable[str],
               now: float) -> tuple:
        """Put what was read in place, drop what is gone; the domains now
        (the very same tuple as last time when nothing changed)."""
        changed = False
        reads = []
        for uuid in gone:
            changed = self._drop(uuid) is not None or changed
        for entry in read:
            uuid = entry.info.uuid
            old = self._drop(uuid)
            self._entries[uuid] = entry
            if entry.dom_id != -1:
                self._by_id[entry.dom_id] = uuid
            else:
                self._by_name[entry.info.name] = uuid
            reads.append(uuid)
            changed = changed or old is None or old.info != entry.info
        self._read_at = now
        self.last_reads = tuple(reads)
        if changed or self._domains is None:
            self._domains = tuple(e.info for e in self._entries.values())
        return self._domains

    def _drop(self, uuid: str) -> Optional[Entry]:
        entry = self._entries.pop(uuid, None)
        if entry is not None:
            if self._by_id.get(entry.dom_id) == uuid:
                del self._by_id[entry.dom_id]
            if self._by_name.get(entry.info.name) == uuid:
                del self._by_name[entry.info.name]
        return entry

    def fill(self, read: Iterable[Entry], now: float) -> tuple:
        """After a full read: exactly these domains."""
        self._entries.clear()
        self._by_id.clear()
        self._by_name.clear()
        self._domains = None
        self._credit = 0.0
        return self.commit(read, (), now)
