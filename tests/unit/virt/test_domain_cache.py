"""What an incremental audit reads again (``virt/domain_cache.py``)."""

from nova_rt import objects
from nova_rt.virt import domain_cache


def _info(n, active=True, name=None):
    return objects.DomainInfo(uuid=f'u{n}', name=name or f'd{n}',
                              state='running' if active else 'shutoff',
                              active=active, vcpus=1, memory_mb=64)


def _entry(n, now, active=True, dom_id=None, name=None):
    return domain_cache.Entry(
        info=_info(n, active, name), xml=f'<domain>{n}</domain>',
        dom_id=(dom_id if dom_id is not None else n) if active else -1,
        read_at=now)


def _filled(count=10, interval=100.0, now=0.0):
    cache = domain_cache.DomainCache(interval)
    session = object()
    cache.reset(session, trusted=True)
    cache.fill([_entry(n, now, active=n % 2 == 0) for n in range(count)], now)
    return cache, session


def _listing(count=10):
    ids = [n for n in range(count) if n % 2 == 0]
    names = [f'd{n}' for n in range(count) if n % 2]
    return ids, names


def test_nothing_to_read_when_nothing_changed_and_no_time_passed():
    cache, _ = _filled()
    plan = cache.plan(*_listing(), now=0.0)
    assert plan == domain_cache.Plan(uuids=[], ids=[], names=[])


def test_dirty_suspect_and_new_domains_are_read():
    cache, _ = _filled()
    cache.mark_dirty('u3')
    cache.mark_dirty('u77')               # unknown: the listing finds it
    ids, names = _listing()
    ids.remove(4)                         # stopped or gone
    ids.append(40)                        # started: a new id
    names.remove('d5')                    # started or gone
    names.append('d55')                   # defined
    plan = cache.plan(ids, names, now=0.0)
    assert sorted(plan.uuids) == ['u3', 'u4', 'u5']
    assert plan.ids == [40] and plan.names == ['d55']
    # The marks were taken: the next audit does not read u3 again.
    assert cache.plan(ids, names, now=0.0).uuids == ['u4', 'u5']


def test_the_slice_reads_in_proportion_to_time_oldest_first():
    cache, _ = _filled(count=10, interval=100.0)
    listing = _listing()
    read = []
    for audit in range(1, 11):            # one tenth of the interval each
        plan = cache.plan(*listing, now=10.0 * audit)
        assert len(plan.uuids) == 1
        read += plan.uuids
        cache.commit([_entry(int(u[1:]), 10.0 * audit,
                             active=int(u[1:]) % 2 == 0)
                      for u in plan.uuids], (), 10.0 * audit)
    assert read == [f'u{n}' for n in range(10)]


def test_a_domain_older_than_the_interval_is_always_read():
    cache, _ = _filled(count=10, interval=100.0)
    listing = _listing()
    plan = cache.plan(*listing, now=1.0)        # a tenth of a domain's worth
    assert plan.uuids == []
    plan = cache.plan(*listing, now=100.5)
    assert sorted(plan.uuids) == sorted(f'u{n}' for n in range(10))


def test_commit_keeps_the_same_answer_while_nothing_changed():
    cache, _ = _filled()
    first = cache.commit([], (), 1.0)
    again = cache.commit([_entry(2, 2.0)], (), 2.0)       # read, unchanged
    assert again is first
    assert cache.last_reads == ('u2',)
    changed = cache.commit([_entry(2, 3.0, active=False)], ['u3'], 3.0)
    assert changed is not first
    assert {d.uuid for d in changed} == {f'u{n}' for n in range(10)} - {'u3'}


def test_an_entry_moves_between_the_indexes_when_it_stops():
    cache, _ = _filled()
    cache.commit([_entry(2, 1.0, active=False)], (), 1.0)
    ids, names = _listing()
    ids.remove(2)
    names.append('d2')
    assert cache.plan(ids, names, now=1.0).uuids == []


def test_usable_only_on_the_same_trusted_connection():
    cache, session = _filled()
    assert cache.usable(session, True)
    assert not cache.usable(object(), True)
    assert not cache.usable(session, False)
    cache.reset(session, trusted=False)
    assert not cache.usable(session, True)
    off = domain_cache.DomainCache(0)
    off.reset(session, True)
    off.fill([], 0.0)
    assert not off.usable(session, True)      # 0: read everything each time
