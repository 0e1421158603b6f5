"""The tracker with group commit, on a real SQLite file.

To line claims up behind a commit, a test holds the store's own lock (as a
compaction does for a few ms, or a slow disk): the first claim's commit
waits for it, the claims after it queue.  Failures are SQLite's own: a
read-only connection (``PRAGMA query_only``) or a full database
(``PRAGMA max_page_count``).
"""

import threading
import time

import pytest

from nova_rt import exception
from tests.unit.compute import helpers as h

BIG_HOST = dict(vcpus=64, memory_mb=1 << 20, disk_gb=1 << 20)


def tracker(path):
    return h.make_tracker(str(path), host=h.host_info(**BIG_HOST))


def stored_instances(path):
    """What a restart would find."""
    again = tracker(path)
    try:
        return set(again.get_host_state()['instances'])
    finally:
        again.store.close()


def claim_in_thread(rt, inst, outcome):
    def run():
        try:
            outcome[inst['uuid']] = rt.instance_claim(instance=inst)
        except Exception as exc:
            outcome[inst['uuid']] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.001)


def line_up(rt, count):
    """``count`` claims in threads, with the store held: the first one's
    commit waits, the others queue behind it.  (threads, outcome, insts)"""
    outcome = {}
    insts = [h.instance(h.FLAVOR_1) for _ in range(count)]
    threads = [claim_in_thread(rt, insts[0], outcome)]
    wait_for(lambda: rt.commits.pending() is not None
             and rt.commits.queued() == 0)      # the first one leads
    threads += [claim_in_thread(rt, inst, outcome) for inst in insts[1:]]
    wait_for(lambda: rt.commits.queued() == count - 1)
    return threads, outcome, insts


def test_claims_made_during_a_commit_share_the_next_one(tmp_path):
    path = tmp_path / 'compute.sqlite'
    rt = tracker(path)
    commits_before = rt.commits.commits
    with rt.store._lock:
        threads, outcome, insts = line_up(rt, 16)
        time.sleep(0.05)
        # Nobody was told yes before the commit.
        assert outcome == {}
    for thread in threads:
        thread.join(10)
    assert all(isinstance(v, dict) for v in outcome.values()), outcome
    assert rt.commits.commits - commits_before == 2
    assert rt.get_host_state()['vcpus_used'] == 16
    rt.store.close()
    assert stored_instances(path) == {i['uuid'] for i in insts}


def test_serial_claims_commit_once_each(tmp_path):
    rt = tracker(tmp_path / 'compute.sqlite')
    before = rt.commits.commits
    for _ in range(10):
        inst = h.instance(h.FLAVOR_1)
        rt.instance_claim(instance=inst)
        rt.abort_instance_claim(instance_uuid=inst['uuid'])
    assert rt.commits.commits - before == 20


def _read_only(rt):
    rt.store._db.execute('PRAGMA query_only=ON')
    return lambda: rt.store._db.execute('PRAGMA query_only=OFF')


def _full(rt):
    pages = rt.store._db.execute('PRAGMA page_count').fetchone()[0]
    rt.store._db.execute(f'PRAGMA max_page_count={pages}')
    return lambda: rt.store._db.execute('PRAGMA max_page_count=1000000')


@pytest.mark.parametrize('breaking,hint', [(_read_only, 'writable'),
                                           (_full, 'free space')])
def test_a_failed_commit_refuses_every_claim_in_it_and_undoes_them(
        tmp_path, breaking, hint):
    path = tmp_path / 'compute.sqlite'
    rt = tracker(path)
    kept = h.instance(h.FLAVOR_1)
    rt.instance_claim(instance=kept)
    moving = h.running_instance(rt)
    before = rt.get_host_state()
    big = dict(h.FLAVOR_1, extra_specs={f'k{n}': 'v' * 200 for n in range(40)})
    with rt.store._lock:
        outcome = {}
        # An abort, a move and claims of big records, all in flight at once.
        threads = [claim_in_thread(rt, h.instance(big), outcome)]
        wait_for(lambda: rt.commits.pending() is not None)
        others = [h.instance(big) for _ in range(10)]
        threads += [claim_in_thread(rt, inst, outcome) for inst in others]
        aborted = threading.Thread(target=lambda: outcome.setdefault(
            'abort', _call(rt.abort_instance_claim,
                           instance_uuid=kept['uuid'])))
        resized = threading.Thread(target=lambda: outcome.setdefault(
            'resize', _call(rt.resize_claim, instance=moving,
                            migration=h.migration(moving, h.FLAVOR_2))))
        aborted.start()
        resized.start()
        threads += [aborted, resized]
        wait_for(lambda: rt.commits.queued() == 12)
        during = rt._ledger      # memory runs ahead of the store
        assert kept['uuid'] not in during.instances
        repair = breaking(rt)
    for thread in threads:
        thread.join(10)
    assert len(outcome) == 13
    for value in outcome.values():
        assert isinstance(value, exception.ComputeResourcesUnavailable), value
        assert hint in str(value)
    # Memory is what the store holds, and what it held before.
    after = rt.get_host_state()
    for key in ('instances', 'vcpus_used', 'memory_mb_used', 'local_gb_used',
                'migrations'):
        assert after[key] == before[key], key
    assert rt.commits.failed == 13
    repair()
    rt.store.close()
    assert stored_instances(path) == set(before['instances'])
    # Room again: the same calls go through.
    rt = tracker(path)
    rt.abort_instance_claim(instance_uuid=kept['uuid'])
    assert kept['uuid'] not in rt.get_host_state()['instances']


def _call(method, **kwargs):
    try:
        return method(**kwargs)
    except Exception as exc:
        return exc


def test_a_retried_claim_is_answered_once_the_first_is_durable(tmp_path):
    rt = tracker(tmp_path / 'compute.sqlite')
    inst = h.instance(h.FLAVOR_1)
    with rt.store._lock:
        first, retry = {}, {}
        threads = [claim_in_thread(rt, inst, first)]
        wait_for(lambda: rt.commits.pending() is not None)
        threads.append(claim_in_thread(rt, inst, retry))
        time.sleep(0.05)
        # The retry found the claim in memory, but may not say so yet.
        assert retry == {} and first == {}
    for thread in threads:
        thread.join(10)
    assert first[inst['uuid']] == retry[inst['uuid']]
    assert rt.commits.committed >= 1


def test_a_retry_of_a_claim_whose_commit_fails_hears_the_error(tmp_path):
    rt = tracker(tmp_path / 'compute.sqlite')
    inst = h.instance(h.FLAVOR_1)
    with rt.store._lock:
        first, retry = {}, {}
        threads = [claim_in_thread(rt, inst, first)]
        wait_for(lambda: rt.commits.pending() is not None)
        threads.append(claim_in_thread(rt, inst, retry))
        time.sleep(0.05)
        _read_only(rt)
    for thread in threads:
        thread.join(10)
    assert isinstance(first[inst['uuid']], exception.ComputeResourcesUnavailable)
    assert isinstance(retry[inst['uuid']], exception.ComputeResourcesUnavailable)
    assert inst['uuid'] not in rt.get_host_state()['instances']


def test_a_reader_sees_a_claim_only_once_it_is_durable(tmp_path):
    rt = tracker(tmp_path / 'compute.sqlite')
    inst = h.instance(h.FLAVOR_1)
    states = []
    with rt.store._lock:
        outcome = {}
        claimer = claim_in_thread(rt, inst, outcome)
        wait_for(lambda: rt.commits.pending() is not None)
        reader = threading.Thread(
            target=lambda: states.append(rt.get_host_state()))
        reader.start()
        reader.join(0.1)
        assert reader.is_alive() and states == []
        _read_only(rt)
    claimer.join(10)
    reader.join(10)
    # The claim failed: the reader read again and never saw it.
    assert isinstance(outcome[inst['uuid']],
                      exception.ComputeResourcesUnavailable)
    assert inst['uuid'] not in states[0]['instances']
    assert states[0]['vcpus_used'] == 0
