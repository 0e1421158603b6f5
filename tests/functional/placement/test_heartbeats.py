"""Heartbeats coalesced per (host, root) and written in one statement per
flush (placement/heartbeats.py), and reports that change nothing answered
without a write."""

import datetime
import os
import uuid

import sqlalchemy as sa

from nova_rt import metrics as metrics_mod
from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import heartbeats
from nova_rt.placement import manager
from nova_rt.placement import models
from tests.functional.placement import fixtures
from tests.functional.placement.helpers import (
    CTX, Conf, add_host, compute_node, consumer, new_uuid)

RP = models.ResourceProvider
SENT_AT = '2026-12-07T10:00:00+00:00'


def _stamps(db_url) -> dict:
    with db.get_engine(db_url).connect() as conn:
        return dict(conn.execute(sa.select(RP.uuid, RP.last_heartbeat)).all())


def _forget_heartbeats(db_url) -> None:
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(RP).values(last_heartbeat=None))


def _counted(metrics, result: str) -> float:
    return metrics.registry.get_sample_value(
        'nova_rt_placement_heartbeats_total', {'result': result}) or 0.0


def test_a_burst_is_one_write_per_flush_and_one_row_per_host(mgr, db_url):
    roots = [add_host(mgr, host=f'h{i}')[0] for i in range(5)]
    _forget_heartbeats(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(db.get_engine(db_url), 60)
    base = common.utcnow()
    for round_ in range(20):
        for i, root in enumerate(roots):
            coalescer.add(f'h{i}', root,
                          now=base + datetime.timedelta(milliseconds=round_))
    assert coalescer.pending() == 5
    assert _stamps(db_url) == {root: None for root in roots}
    accepted, ignored = coalescer.flush()
    assert coalescer.writes == 1
    assert accepted == sorted((f'h{i}', r) for i, r in enumerate(roots))
    assert ignored == []
    # Each host's newest stamp, the time the last one arrived.
    assert _stamps(db_url) == {
        root: base + datetime.timedelta(milliseconds=19) for root in roots}
    assert coalescer.flush() == ([], []) and coalescer.writes == 1


def test_liveness_is_judged_by_the_time_of_receipt(mgr, db_url):
    fresh, _ = add_host(mgr, host='fresh')
    stale, _ = add_host(mgr, host='stale')
    _forget_heartbeats(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(db.get_engine(db_url), 60)
    now = common.utcnow()
    coalescer.add('fresh', fresh, now=now)
    # Received longer ago than heartbeat_timeout (60 s), flushed now.
    coalescer.add('stale', stale, now=now - datetime.timedelta(seconds=61))
    coalescer.flush()
    assert mgr.get_resource_provider(CTX, uuid=fresh)['alive'] is True
    assert mgr.get_resource_provider(CTX, uuid=stale)['alive'] is False
    cands = mgr.get_allocation_candidates(CTX, resources={'VCPU': 1})
    assert [c['root_uuid'] for c in cands] == [fresh]
    # A stamp never goes backwards: an older heartbeat flushed later (by
    # another process, say) leaves the newer one.
    coalescer.add('fresh', fresh, now=now - datetime.timedelta(seconds=30))
    coalescer.flush()
    assert _stamps(db_url)[fresh] == now


def test_a_heartbeat_for_what_the_host_does_not_own_is_ignored(mgr, db_url):
    root, gen = add_host(mgr, host='h1')
    child = new_uuid()
    mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen),
        {'uuid': child, 'name': 'h1_pf', 'parent_uuid': root,
         'generation': None,
         'inventories': {'CUSTOM_PCI_8086_10ED': {'total': 4}}}])
    _forget_heartbeats(db_url)
    metrics = metrics_mod.PlacementMetrics()
    coalescer = heartbeats.HeartbeatCoalescer(db.get_engine(db_url), 60,
                                              metrics)
    coalescer.add('h2', root)               # someone else's root
    coalescer.add('h1', child)              # not a root
    coalescer.add('h1', new_uuid())         # unknown
    accepted, ignored = coalescer.flush()
    assert accepted == [] and len(ignored) == 3
    assert _stamps(db_url) == {root: None, child: None}
    assert _counted(metrics, 'ignored') == 3
    coalescer.add('h1', root)
    assert coalescer.flush()[0] == [('h1', root)]
    assert _counted(metrics, 'accepted') == 1


def test_stop_writes_what_is_left(mgr, db_url):
    root, _ = add_host(mgr)
    _forget_heartbeats(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(db.get_engine(db_url), 3600)
    coalescer.start()
    coalescer.add('h1', root)
    assert _stamps(db_url)[root] is None
    coalescer.stop()
    assert _stamps(db_url)[root] is not None


def test_a_failed_flush_keeps_its_heartbeats(tmp_path):
    url = f'sqlite:///{tmp_path}/placement.sqlite'
    db.sync(url)
    mgr = manager.PlacementManager(db.get_engine(url), Conf)
    root, _ = add_host(mgr)
    _forget_heartbeats(url)
    broken = sa.create_engine(f'sqlite:///{tmp_path}/missing/x.sqlite')
    coalescer = heartbeats.HeartbeatCoalescer(broken, 60)
    coalescer.add('h1', root)
    coalescer._flush_logged()               # logged, not raised
    assert coalescer.pending() == 1
    coalescer.engine = db.get_engine(url)
    assert coalescer.flush()[0] == [('h1', root)]
    assert _stamps(url)[root] is not None


def test_manager_defers_heartbeats_and_unchanged_reports(db_url, conf):
    engine = db.get_engine(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(engine, 60)
    mgr = manager.PlacementManager(engine, conf, heartbeats=coalescer)
    root, gen = add_host(mgr)
    _forget_heartbeats(db_url)
    mgr.heartbeat(CTX, host='h1', root_uuid=root, sent_at=SENT_AT)
    assert _stamps(db_url)[root] is None and coalescer.pending() == 1
    coalescer.flush()
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is True

    # A report that changes nothing: the same answer, nothing written but
    # the heartbeat, which waits for the flush.
    _forget_heartbeats(db_url)
    before = _rows(engine)
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen)])
    assert gens == {root: gen}
    assert _rows(engine) == before
    assert coalescer.pending() == 1
    coalescer.flush()
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is True

    # One that changes something takes the writing path as before.
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen, vcpus=12)])
    assert gens == {root: gen + 1}
    # ...and a stale one is still a conflict, not an unchanged answer.
    error = _raises(lambda: mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen, vcpus=12)]))
    assert type(error).__name__ == 'ResourceProviderGenerationConflict'
    # Someone else's root is refused, not answered as unchanged.
    error = _raises(lambda: mgr.report_provider_tree(CTX, host='h2', providers=[
        compute_node(root, generation=gen + 1, vcpus=12)]))
    assert type(error).__name__ == 'NotAuthorized'


def test_unchanged_report_with_traits_and_children(db_url, conf):
    engine = db.get_engine(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(engine, 60)
    mgr = manager.PlacementManager(engine, conf, heartbeats=coalescer)
    root, child = new_uuid(), new_uuid()

    def tree(gens, traits):
        return [compute_node(root, generation=gens.get(root), traits=traits),
                {'uuid': child, 'name': 'h1_pf', 'parent_uuid': root,
                 'generation': gens.get(child),
                 'inventories': {'CUSTOM_PCI_8086_10ED': {'total': 4}}}]

    gens = mgr.report_provider_tree(CTX, host='h1',
                                    providers=tree({}, ['COMPUTE_NODE']))
    before = _rows(engine)
    assert mgr.report_provider_tree(
        CTX, host='h1', providers=tree(gens, ['COMPUTE_NODE'])) == gens
    assert _rows(engine) == before
    # Other traits: a change, written.
    new = mgr.report_provider_tree(CTX, host='h1',
                                   providers=tree(gens, ['CUSTOM_GOLD']))
    assert new[root] == gens[root] + 1
    assert mgr.get_resource_provider(CTX, uuid=root)['traits'] == [
        'CUSTOM_GOLD']
    # The child left out: removed, not answered as unchanged.
    new = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=new[root], traits=['CUSTOM_GOLD'])])
    assert list(new) == [root]
    assert [p['uuid'] for p in mgr.list_resource_providers(CTX, host='h1')] \
        == [root]


def test_sigterm_writes_the_heartbeats_taken(tmp_path):
    url = f'sqlite:///{tmp_path}/placement.sqlite'
    extra = '[placement]\nheartbeat_flush_interval_ms = 10000\n'
    with fixtures.running_placement(url, str(tmp_path),
                                    extra_conf=extra) as placement:
        api = placement.api
        root = str(uuid.uuid4())
        api.report_provider_tree(CTX, host='h1',
                                 providers=[compute_node(root)])
        _forget_heartbeats(url)
        for _ in range(50):
            api.heartbeat(CTX, host='h1', root_uuid=root, sent_at=SENT_AT)
        # A call behind the casts: they have been taken when it returns.
        api.get_allocations(CTX, consumer_uuid=str(uuid.uuid4()))
        assert _stamps(url)[root] is None       # the flush is 10 s away
    # The process stopped (SIGTERM, exit 0 checked by the fixture).
    assert _stamps(url)[root] is not None
    assert os.path.exists(placement.logs[0])


def _rows(engine) -> list:
    """Every row of the provider tables, with PostgreSQL's row version
    (``xmin``: a write, even of the same values, changes it)."""
    with engine.connect() as conn:
        if engine.dialect.name == 'postgresql':
            return [sorted(conn.execute(sa.text(
                f'SELECT xmin::text, xmax::text, * FROM {table}')).all(),
                key=str) for table in ('resource_providers', 'inventories')]
        return sorted(conn.execute(sa.select(RP)).all(), key=str) + sorted(
            conn.execute(sa.select(models.Inventory)).all(), key=str)


def _raises(func):
    try:
        func()
    except Exception as error:
        return error
    raise AssertionError('no error raised')


def test_unchanged_full_allocation_report_writes_nothing(db_url, conf):
    engine = db.get_engine(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(engine, 60)
    mgr = manager.PlacementManager(engine, conf, heartbeats=coalescer)
    root, gen = add_host(mgr)
    c1, c2 = new_uuid(), new_uuid()
    allocations = {c1: consumer({root: {'VCPU': 2, 'MEMORY_MB': 512}}),
                   c2: consumer({root: {'VCPU': 1, 'DISK_GB': 0}})}
    gens = mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gen, full=True,
                                  allocations=allocations)
    assert gens == {root: gen + 1}
    coalescer.flush()
    _forget_heartbeats(db_url)
    before = _rows(engine)
    # The periodic resync: the same again.
    assert mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gen + 1, full=True,
                                  allocations=allocations) == gens
    assert _rows(engine) == before and coalescer.pending() == 1
    coalescer.flush()
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is True
    # A stale generation is still a conflict; a change is still written.
    error = _raises(lambda: mgr.report_allocations(
        CTX, host='h1', root_uuid=root, generation=gen, full=True,
        allocations=allocations))
    assert type(error).__name__ == 'ResourceProviderGenerationConflict'
    error = _raises(lambda: mgr.report_allocations(
        CTX, host='h2', root_uuid=root, generation=gen + 1, full=True,
        allocations=allocations))
    assert type(error).__name__ == 'NotAuthorized'
    gens = mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gen + 1, full=True,
                                  allocations={c1: allocations[c1]})
    assert gens == {root: gen + 2}
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 2
    # Usage that drifted from the allocations is healed, not answered as
    # unchanged.
    with engine.begin() as conn:
        conn.execute(sa.update(models.Inventory)
                     .where(models.Inventory.resource_class == 'VCPU')
                     .values(used=7))
    gens = mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gen + 2, full=True,
                                  allocations={c1: allocations[c1]})
    assert gens == {root: gen + 3}
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 2


def test_unchanged_full_allocation_report_over_a_tree(db_url, conf):
    """The no-write check reads the root and its tree in one statement:
    allocations on a child are answered unchanged when they are, and a
    report that names a child, an unknown provider or another host's root
    as its root still gets its error and writes nothing."""
    engine = db.get_engine(db_url)
    coalescer = heartbeats.HeartbeatCoalescer(engine, 60)
    mgr = manager.PlacementManager(engine, conf, heartbeats=coalescer)
    root, child = new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root),
        {'uuid': child, 'name': 'h1_pf', 'parent_uuid': root,
         'generation': None,
         'inventories': {'CUSTOM_PCI_8086_10ED': {'total': 4}}}])
    other, _ = add_host(mgr, host='h2')
    c1 = new_uuid()
    allocations = {c1: consumer({root: {'VCPU': 2},
                                 child: {'CUSTOM_PCI_8086_10ED': 1}})}
    gens = mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gens[root], full=True,
                                  allocations=allocations)
    coalescer.flush()
    before = _rows(engine)
    assert mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                  generation=gens[root], full=True,
                                  allocations=allocations) == gens
    assert _rows(engine) == before and coalescer.pending() == 1
    for root_uuid, expected in ((child, 'InvalidInput'),
                                (new_uuid(), 'ResourceProviderNotFound'),
                                (other, 'NotAuthorized')):
        error = _raises(lambda root_uuid=root_uuid: mgr.report_allocations(
            CTX, host='h1', root_uuid=root_uuid, generation=gens[root],
            full=True, allocations=allocations))
        assert type(error).__name__ == expected, (root_uuid, error)
    assert _rows(engine) == before


def test_the_no_write_check_runs_outside_a_transaction(db_url, conf):
    """A report is first checked by reads in autocommit mode (no BEGIN and
    COMMIT round trips for a resync that changes nothing); one the check
    finds changed is written in its own transaction, its heartbeat with it
    rather than deferred."""
    engine = db.get_engine(db_url)
    seen = []
    checks = dict(manager._NO_WRITE_CHECKS)

    def spy(name):
        func, applies = checks[name]

        def check(session, **arguments):
            seen.append((name, _in_transaction(session)))
            return func(session, **arguments)
        return check, applies

    coalescer = heartbeats.HeartbeatCoalescer(engine, 60)
    mgr = manager.PlacementManager(engine, conf, heartbeats=coalescer)
    root, gen = add_host(mgr)
    c1 = new_uuid()
    allocations = {c1: consumer({root: {'VCPU': 1}})}
    gen = mgr.report_allocations(CTX, host='h1', root_uuid=root,
                                 generation=gen, full=True,
                                 allocations=allocations)[root]
    coalescer.flush()
    _forget_heartbeats(db_url)
    original = manager._NO_WRITE_CHECKS
    manager._NO_WRITE_CHECKS = {name: spy(name) for name in checks}
    try:
        assert mgr.report_allocations(
            CTX, host='h1', root_uuid=root, generation=gen, full=True,
            allocations=allocations) == {root: gen}
        assert mgr.report_provider_tree(CTX, host='h1', providers=[
            compute_node(root, generation=gen)]) == {root: gen}
        assert coalescer.pending() == 1 and _stamps(db_url)[root] is None
        coalescer.flush()
        _forget_heartbeats(db_url)
        # Incremental: never unchanged, so not checked.
        gen = mgr.report_allocations(
            CTX, host='h1', root_uuid=root, generation=gen, full=False,
            allocations={c1: consumer({root: {'VCPU': 2}})})[root]
        # Changed: written, with its heartbeat, nothing left deferred.
        assert mgr.report_provider_tree(CTX, host='h1', providers=[
            compute_node(root, generation=gen, vcpus=12)]) == {root: gen + 1}
    finally:
        manager._NO_WRITE_CHECKS = original
    assert seen == [('report_allocations', False),
                    ('report_provider_tree', False),
                    ('report_provider_tree', False)]
    assert coalescer.pending() == 0 and _stamps(db_url)[root] is not None


def _in_transaction(session) -> bool:
    """Whether the driver holds a transaction open on this connection."""
    session.execute(sa.text('SELECT 1'))
    dbapi = session.connection.dbapi_connection
    if hasattr(dbapi, 'info'):                        # psycopg
        import psycopg
        return (dbapi.info.transaction_status
                != psycopg.pq.TransactionStatus.IDLE)
    if hasattr(dbapi, 'get_autocommit'):              # PyMySQL
        return not dbapi.get_autocommit()
    return dbapi.in_transaction or dbapi.isolation_level is not None
