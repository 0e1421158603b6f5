"""Group commit: writes that arrive while one commit is on its way to disk
share the next one.

The tracker changes its memory under its lock and hands the write here
(``submit``, still under the lock, so that writes are queued in the order
their changes were made); then, without the lock, its caller waits until the
write is durable (``wait``) and only then hears yes.  There is no thread of
its own and no timer: a waiter whose write is not durable yet and finds no
commit under way becomes the leader, takes every write queued so far and
commits them in one transaction (``write``); the others wait for it.  So a
lone write is committed at once, by its own caller, and writes that arrive
during a commit (one fsync, about a millisecond) go together in the next
one, however many there are.

Commits are made in the order of submission, one at a time: a write is
durable only once every write submitted before it is.  When a commit fails
(a full disk, a read-only file), every write not yet durable fails with it:
the leader's group and every write queued behind it, which may have been
computed on top of the failed ones.  ``on_failed`` is then called with all
of them under ``guard`` (the lock every ``submit`` is made under), so that
the caller puts its memory back to what is durable before anything new is
submitted, and every waiter of those writes gets the commit's error.

A reader of the memory (or a call that changed nothing but answered from
it) must not tell anyone of a write that is not durable yet: it takes
``pending()`` under ``guard`` with what it read, and waits for that.
Because a failure fails everything not yet durable, the newest write is
durable exactly when everything the reader saw is.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, Sequence


class Ticket:
    """One submitted write: ``seq`` in submission order, the caller's
    ``item``, and the commit's ``error`` once it failed."""

    __slots__ = ('seq', 'item', 'error')

    def __init__(self, seq: int, item):
        self.seq = seq
        self.item = item
        self.error: Optional[BaseException] = None


class GroupCommit:
    """``write(items)`` makes ``items`` durable in one transaction or raises
    and makes none of them durable; ``guard`` is the lock every ``submit``
    is made under.  ``on_durable(items)`` runs once a group is durable,
    before any of its waiters returns; ``on_failed(items, error)`` runs
    under ``guard`` for every write a failed commit leaves not durable,
    before any of their waiters raises.

    ``commits`` and ``committed`` count transactions and the writes in them.
    """

    def __init__(self, write: Callable[[Sequence], None], guard,
                 on_durable: Optional[Callable[[Sequence], None]] = None,
                 on_failed: Optional[Callable[[Sequence, BaseException],
                                              None]] = None):
        self._write = write
        self._guard = guard
        self._on_durable = on_durable
        self._on_failed = on_failed
        self._cond = threading.Condition()
        self._queue: list = []          # submitted, not taken by a leader
        self._newest: Optional[Ticket] = None
        self._seq = 0
        self._decided = 0               # every seq up to here is durable or failed
        self._leading = False
        self.commits = 0
        self.committed = 0
        self.failed = 0

    def submit(self, item) -> Ticket:
        """Queue ``item``; call it holding ``guard``."""
        with self._cond:
            self._seq += 1
            ticket = self._newest = Ticket(self._seq, item)
            self._queue.append(ticket)
        return ticket

    def pending(self) -> Optional[Ticket]:
        """The newest write not yet durable (None: all are); call it
        holding ``guard``, with the read that depends on it."""
        with self._cond:
            newest = self._newest
            if newest is None or newest.seq <= self._decided:
                return None
            return newest

    def queued(self) -> int:
        """Writes waiting for a commit that has not started (for tests and
        metrics: the next group's size so far)."""
        with self._cond:
            return len(self._queue)

    def wait(self, ticket: Ticket) -> None:
        """Return once ``ticket``'s write is durable, leading the commit
        that makes it so when none is under way; raise the commit's error
        if it failed.  Never call it holding ``guard``."""
        with self._cond:
            while ticket.seq > self._decided and self._leading:
                self._cond.wait()
            if ticket.seq > self._decided:
                # No commit under way, so ours is still queued: lead.
                group, self._queue = self._queue, []
                self._leading = True
            else:
                group = None
        if group:
            self._commit(group)
        if ticket.error is not None:
            # One error for the whole group, raised in each member's thread:
            # without the leader's frames.
            raise ticket.error.with_traceback(None)

    def _commit(self, group: list) -> None:
        items = [t.item for t in group]
        try:
            self._write(items)
        except BaseException as exc:
            self._fail(group, exc)
            return
        with self._cond:
            self.commits += 1
            self.committed += len(group)
            try:
                if self._on_durable is not None:
                    self._on_durable(items)
            finally:
                self._decided = group[-1].seq
                self._leading = False
                self._cond.notify_all()

    def _fail(self, group: list, exc: BaseException) -> None:
        # The guard first (the order submit takes them in): nothing new is
        # submitted on top of the failed writes while they are undone.
        with self._guard, self._cond:
            failed = group + self._queue
            self._queue = []
            for ticket in failed:
                ticket.error = exc
            self.failed += len(failed)
            try:
                if self._on_failed is not None:
                    self._on_failed([t.item for t in failed], exc)
            finally:
                self._decided = failed[-1].seq
                self._leading = False
                self._cond.notify_all()
