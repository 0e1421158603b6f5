"""Vacuuming the churned placement tables on the real PostgreSQL
(``nova_rt.placement.housekeeping``), alone, in its thread, and in a running
``nova-rt-placement``."""

import logging
import time

import pytest
import sqlalchemy as sa

from nova_rt.placement import db
from nova_rt.placement import housekeeping
from nova_rt.placement import manager
from tests.functional.placement import fixtures
from tests.functional.placement.helpers import (
    CTX, Conf, add_host, consumer, new_uuid)


@pytest.fixture
def pg_engine():
    """A database of its own: the thresholds are judged on statistics that
    other tests' rows would move."""
    with fixtures.own_pg_engine() as engine:
        yield engine


def _stats(engine) -> dict:
    """``table -> (dead rows, manual vacuums)``, as PostgreSQL counts them."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            'SELECT relname, n_dead_tup, vacuum_count FROM pg_stat_user_tables'
        )).all()
    return {name: (dead, vacuums) for name, dead, vacuums in rows}


def _wait_for(predicate, timeout=15.0):
    assert fixtures.wait_until(predicate, timeout), 'not within the time allowed'


def _churn(engine, dead_allocations: int) -> None:
    """That many dead allocation rows (inserted then deleted, as reports
    do), and PostgreSQL's statistics told of them (or a vacuum that a
    running housekeeper made of them meanwhile)."""
    vacuums = _stats(engine)['allocations'][1]
    mgr = manager.PlacementManager(engine, Conf)
    host = f'h-{new_uuid()[:8]}'
    root, gen = add_host(mgr, host=host, vcpus=dead_allocations)
    for _ in range(dead_allocations // 100):
        allocations = {new_uuid(): consumer({root: {'VCPU': 1}})
                       for _ in range(100)}
        gen = mgr.report_allocations(CTX, host=host, root_uuid=root,
                                     generation=gen, full=True,
                                     allocations=allocations)[root]
    mgr.report_allocations(CTX, host=host, root_uuid=root, generation=gen,
                           full=True, allocations={})
    with engine.connect() as conn:
        # A backend sends its counts at most once a second, when idle.
        conn.execute(sa.text('SELECT pg_stat_force_next_flush()'))
    # A housekeeper running meanwhile may vacuum them before the counts
    # reach the total (it judges by the same statistics).
    _wait_for(lambda: _stats(engine)['allocations'][0] >= dead_allocations
              or _stats(engine)['allocations'][1] > vacuums)


def test_due_tables_are_vacuumed_and_the_others_left(pg_engine):
    _churn(pg_engine, 1200)
    before = _stats(pg_engine)
    assert before['inventories'][0] < housekeeping.MIN_DEAD_ROWS

    vacuumed = housekeeping.vacuum_churned_tables(pg_engine)

    assert vacuumed == ['allocations', 'consumers']
    after = _stats(pg_engine)
    for table in ('allocations', 'consumers'):
        assert after[table][1] == before[table][1] + 1
        assert after[table][0] == 0
    for table in ('inventories', 'resource_providers', 'traits'):
        assert after[table][1] == before[table][1]
    # Nothing is due any more.
    assert housekeeping.vacuum_churned_tables(pg_engine) == []


def test_one_process_at_a_time(pg_engine):
    _churn(pg_engine, 1000)
    before = _stats(pg_engine)['allocations']
    with pg_engine.connect() as other:
        # Another placement process is vacuuming: this one does not wait.
        assert other.execute(sa.text('SELECT pg_try_advisory_lock(:k)'),
                             {'k': housekeeping.LOCK_KEY}).scalar()
        assert housekeeping.vacuum_churned_tables(pg_engine) == []
        assert _stats(pg_engine)['allocations'] == before
        other.execute(sa.text('SELECT pg_advisory_unlock(:k)'),
                      {'k': housekeeping.LOCK_KEY})
    assert 'allocations' in housekeeping.vacuum_churned_tables(pg_engine)
    # The lock was given back: the next round may take it again.
    with pg_engine.connect() as other:
        assert other.execute(sa.text('SELECT pg_try_advisory_lock(:k)'),
                             {'k': housekeeping.LOCK_KEY}).scalar()
        other.execute(sa.text('SELECT pg_advisory_unlock_all()'))


def test_tables_the_user_does_not_own_are_left_alone(pg_engine):
    _churn(pg_engine, 1000)
    role = f'nova_rt_test_{new_uuid()[:8]}'
    with pg_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE ROLE {role}'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public '
                             f'TO {role}'))
        conn.commit()
    try:
        @sa.event.listens_for(pg_engine, 'connect')
        def as_role(dbapi_conn, _record):
            with dbapi_conn.cursor() as cursor:
                cursor.execute(f'SET SESSION AUTHORIZATION {role}')
            dbapi_conn.commit()
        pg_engine.dispose()
        before = _stats(pg_engine)['allocations']
        assert housekeeping.vacuum_churned_tables(pg_engine) == []
        assert _stats(pg_engine)['allocations'] == before
    finally:
        sa.event.remove(pg_engine, 'connect', as_role)
        pg_engine.dispose()
        with pg_engine.connect() as conn:
            conn.execute(sa.text(f'DROP OWNED BY {role}'))
            conn.execute(sa.text(f'DROP ROLE {role}'))
            conn.commit()


def test_the_thread_vacuums_until_stopped(pg_engine):
    keeper = housekeeping.Housekeeper(pg_engine, 0.2)
    assert keeper.enabled
    keeper.start()
    try:
        _churn(pg_engine, 1000)
        _wait_for(lambda: _stats(pg_engine)['allocations'][1] >= 1)
    finally:
        keeper.stop()
    assert keeper._thread is None
    vacuums = _stats(pg_engine)['allocations'][1]
    _churn(pg_engine, 1000)
    time.sleep(0.6)
    assert _stats(pg_engine)['allocations'][1] == vacuums


def test_a_database_away_is_logged_once_without_secrets(caplog):
    engine = db.create_engine(
        'postgresql+psycopg://nova:s3cr3tpw@127.0.0.1:1/placement')
    keeper = housekeeping.Housekeeper(engine, 10)
    with caplog.at_level(logging.DEBUG, logger=housekeeping.__name__):
        assert keeper.run_once() == []
        assert keeper.run_once() == []
    records = [r for r in caplog.records if r.name == housekeeping.__name__]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG]
    assert 'Vacuum of the placement tables failed' in records[0].getMessage()
    assert 's3cr3tpw' not in caplog.text


def test_nothing_on_sqlite(tmp_path):
    engine = db.create_engine(f'sqlite:///{tmp_path}/p.sqlite')
    keeper = housekeeping.Housekeeper(engine, 0.1)
    assert not keeper.enabled
    keeper.start()
    assert keeper._thread is None
    assert housekeeping.vacuum_churned_tables(engine) == []


def test_a_running_placement_vacuums_what_its_reports_churn(tmp_path,
                                                            pg_engine):
    url = pg_engine.url.render_as_string(hide_password=False)
    extra = '\n[placement_database]\nvacuum_interval = 1\n'
    with fixtures.running_placement(url, str(tmp_path),
                                    extra_conf=extra) as placement:
        api = placement.api
        host = f'h-{new_uuid()[:8]}'
        root = new_uuid()
        gen = api.report_provider_tree(CTX, host=host, providers=[{
            'uuid': root, 'name': host, 'generation': None,
            'inventories': {'VCPU': {'total': 2000}}}])[root]
        for _ in range(12):
            allocations = {new_uuid(): consumer({root: {'VCPU': 1}})
                           for _ in range(100)}
            gen = api.report_allocations(
                CTX, host=host, root_uuid=root, generation=gen, full=True,
                allocations=allocations)[root]
        _wait_for(lambda: _stats(pg_engine)['allocations'][1] >= 1)
