"""Group commit on its own: who commits, what goes together, what a failure
takes with it.  The writer here records the groups it is given and can be
held (a commit that takes its time) or made to fail."""

import threading
import time

import pytest

from nova_rt.compute import groupcommit


class Writer:
    def __init__(self):
        self.groups = []
        self.threads = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_with = None

    def __call__(self, items):
        self.entered.set()
        self.hold.wait(10)
        self.threads.append(threading.current_thread())
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        self.groups.append(list(items))


@pytest.fixture
def rig():
    guard = threading.Lock()
    writer = Writer()
    durable, undone = [], []

    def on_failed(items, error):
        # Called with the guard held: nothing new can be submitted.
        assert guard.locked()
        undone.append((list(items), error))

    commits = groupcommit.GroupCommit(writer, guard,
                                      on_durable=durable.append,
                                      on_failed=on_failed)
    return commits, guard, writer, durable, undone


def submit(commits, guard, item):
    with guard:
        return commits.submit(item)


def in_thread(commits, guard, item, outcome):
    def run():
        try:
            commits.wait(submit(commits, guard, item))
            outcome[item] = 'durable'
        except Exception as exc:
            outcome[item] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.001)


def test_a_lone_write_is_committed_at_once_by_its_caller(rig):
    commits, guard, writer, durable, _ = rig
    ticket = submit(commits, guard, 'a')
    assert commits.pending() is ticket
    commits.wait(ticket)
    assert writer.groups == [['a']]
    assert writer.threads == [threading.current_thread()]
    assert commits.pending() is None
    assert (commits.commits, commits.committed) == (1, 1)
    assert durable == [['a']]


def test_serial_writes_are_one_commit_each(rig):
    commits, guard, writer, _, _ = rig
    for item in range(10):
        commits.wait(submit(commits, guard, item))
    assert writer.groups == [[i] for i in range(10)]
    assert commits.commits == 10


def test_writes_made_during_a_commit_share_the_next_one(rig):
    commits, guard, writer, durable, _ = rig
    writer.hold.clear()
    outcome = {}
    first = in_thread(commits, guard, 'first', outcome)
    assert writer.entered.wait(5)
    others = [in_thread(commits, guard, n, outcome) for n in range(15)]
    wait_for(lambda: commits.queued() == 15)
    # Nobody hears yes while their write is not on disk.
    assert outcome == {}
    writer.hold.set()
    for thread in [first] + others:
        thread.join(10)
    assert set(outcome.values()) == {'durable'}
    assert len(writer.groups) == 2 and writer.groups[0] == ['first']
    assert sorted(writer.groups[1]) == list(range(15))
    assert (commits.commits, commits.committed) == (2, 16)
    assert durable == writer.groups


def test_a_failed_commit_fails_its_group_and_those_queued_behind_it(rig):
    commits, guard, writer, durable, undone = rig
    writer.hold.clear()
    error = RuntimeError('disk full')
    writer.fail_with = error
    outcome = {}
    first = in_thread(commits, guard, 'first', outcome)
    assert writer.entered.wait(5)
    others = [in_thread(commits, guard, n, outcome) for n in range(7)]
    wait_for(lambda: commits.queued() == 7)
    writer.hold.set()
    for thread in [first] + others:
        thread.join(10)
    assert len(outcome) == 8
    assert all(value is error for value in outcome.values())
    assert len(undone) == 1
    items, told = undone[0]
    assert told is error and items[0] == 'first'
    assert sorted(items[1:]) == list(range(7))
    assert durable == [] and commits.failed == 8 and commits.commits == 0
    assert commits.pending() is None
    # The next write is not hurt by the last failure.
    commits.wait(submit(commits, guard, 'after'))
    assert writer.groups == [['after']]


def test_groups_keep_the_order_of_submission(rig):
    commits, guard, writer, _, _ = rig
    writer.hold.clear()
    outcome = {}
    first = in_thread(commits, guard, 'first', outcome)
    assert writer.entered.wait(5)
    tickets = [submit(commits, guard, n) for n in range(5)]
    writer.hold.set()
    commits.wait(tickets[-1])
    first.join(5)
    assert writer.groups == [['first'], [0, 1, 2, 3, 4]]
    assert [t.seq for t in tickets] == sorted(t.seq for t in tickets)


def test_a_reader_waits_for_what_it_saw(rig):
    commits, guard, writer, _, _ = rig
    writer.hold.clear()
    outcome = {}
    writer_thread = in_thread(commits, guard, 'claim', outcome)
    assert writer.entered.wait(5)
    with guard:
        seen = commits.pending()
    assert seen is not None and seen.item == 'claim'
    read = threading.Thread(target=commits.wait, args=(seen,))
    read.start()
    read.join(0.1)
    assert read.is_alive(), 'a reader heard of a write not yet durable'
    writer.hold.set()
    read.join(5)
    writer_thread.join(5)
    assert not read.is_alive() and outcome == {'claim': 'durable'}
    with guard:
        assert commits.pending() is None
