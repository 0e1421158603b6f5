"""The placement database connection: what happens when PostgreSQL drops it."""

import datetime

import psycopg
import pytest
import sqlalchemy as sa

from nova_rt.placement import db
from nova_rt.placement import manager
from tests.functional.placement import fixtures
from tests.functional.placement import helpers
from tests.functional.placement.helpers import (
    CTX, Conf, add_host, consumer, new_uuid)


def _drop_connections(name: str) -> int:
    """Terminate every server connection to database ``name``."""
    with psycopg.connect(fixtures.PG_ADMIN, autocommit=True) as conn:
        return len(conn.execute(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
            'WHERE datname = %s AND pid <> pg_backend_pid()',
            (name,)).fetchall())


def _kill_mysql_connections(name: str) -> int:
    import pymysql
    conn = pymysql.connect(**fixtures.MYSQL_ADMIN, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute('SELECT id FROM information_schema.processlist '
                           'WHERE db = %s AND id <> CONNECTION_ID()', (name,))
            ids = [row[0] for row in cursor.fetchall()]
            for connection_id in ids:
                cursor.execute(f'KILL {int(connection_id)}')
        return len(ids)
    finally:
        conn.close()


_DROP_CONNECTIONS = {'postgresql': _drop_connections,
                     'mysql': _kill_mysql_connections}


@pytest.mark.parametrize('backend', list(_DROP_CONNECTIONS))
def test_calls_survive_the_server_dropping_pooled_connections(backend):
    # The pool does not ping before every transaction (a round trip per
    # report): a dropped connection must cost a retry, not a failed call.
    # A database of its own: terminating the shared one's connections would
    # break the other tests' pooled engines.
    with fixtures.own_engine(backend) as engine:
        mgr = manager.PlacementManager(engine, Conf)
        host = f'h-{new_uuid()[:8]}'
        root, gen = add_host(mgr, host=host)
        with engine.connect() as conn:
            # A pooled connection that the server will drop.
            assert conn.execute(sa.text('SELECT 1')).scalar() == 1
        assert engine.pool.checkedin() >= 1
        assert _DROP_CONNECTIONS[backend](engine.url.database) >= 1

        c = new_uuid()
        gens = mgr.report_allocations(
            CTX, host=host, root_uuid=root, generation=gen, full=True,
            allocations={c: consumer({root: {'VCPU': 1}})})
        assert gens == {root: gen + 1}
        assert mgr.get_allocations(CTX, consumer_uuid=c) == {root: {'VCPU': 1}}


def test_direct_statements_answer_as_sqlalchemy_does(direct_db_url):
    db_url = direct_db_url
    """common.Direct (psycopg straight on PostgreSQL, SQLAlchemy elsewhere):
    same rows by name and position, literals SQLAlchemy bound itself
    (``generation + 1``) included, IN lists, rowcounts, executemany with
    and without RETURNING, and a transaction
    that rolls back takes the direct writes with it."""
    from nova_rt.placement import common
    from nova_rt.placement import models
    rp = models.ResourceProvider
    bump = common.Direct(
        sa.update(rp).where(rp.uuid == sa.bindparam('b_uuid'))
        .values(generation=rp.generation + 1).returning(rp.id, rp.generation))
    rename = common.Direct(sa.update(rp).where(rp.id == sa.bindparam('b_id'))
                           .values(name=sa.bindparam('b_name')))
    add_traits = common.Direct(
        sa.insert(models.Trait).values(name=sa.bindparam('b_name'))
        .returning(models.Trait.id, models.Trait.name))
    named = common.Direct(sa.select(rp.host).where(
        rp.uuid.in_(sa.bindparam('b_uuids', expanding=True)))
        .order_by(rp.host))
    mgr = manager.PlacementManager(db.get_engine(db_url), Conf)
    a, _ = add_host(mgr, host='h1')
    b, _ = add_host(mgr, host='h2')
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        rows = bump.rows(conn, {'b_uuid': a})
        assert [(r.generation, r[1]) for r in rows] == [(2, 2)]
        assert bump.rows(conn, {'b_uuid': new_uuid()}) == []
        ids = [rows[0].id, bump.rows(conn, {'b_uuid': b})[0].id]
        # An expanding IN list, of any length (PostgreSQL: = ANY(array)).
        assert [r.host for r in named.rows(
            conn, {'b_uuids': [a, new_uuid(), b]})] == ['h1', 'h2']
        assert named.rows(conn, {'b_uuids': []}) == []
        # A list: every execution's rows (executemany), or the one's.
        assert sorted(r.name for r in add_traits.rows(
            conn, [{'b_name': 'CUSTOM_A'}, {'b_name': 'CUSTOM_B'}])) == [
                'CUSTOM_A', 'CUSTOM_B']
        assert [r.name for r in add_traits.rows(
            conn, [{'b_name': 'CUSTOM_C'}])] == ['CUSTOM_C']
        assert rename.run(conn, {'b_id': ids[0], 'b_name': 'x'}) == 1
        rename.run(conn, [{'b_id': i, 'b_name': 'y'} for i in ids])
    with engine.connect() as conn:
        assert conn.execute(sa.select(rp.name, rp.generation)
                            .order_by(rp.id)).all() == [('y', 2), ('y', 2)]
    try:
        with engine.begin() as conn:
            rename.run(conn, {'b_id': ids[0], 'b_name': 'gone'})
            raise RuntimeError('rolled back')
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(sa.select(rp.name).where(rp.id == ids[0])
                            ).scalar() == 'y'
    # The driver's errors as SQLAlchemy's: the manager turns a unique
    # violation into a conflict and retries deadlocks and lost connections.
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            add_traits.rows(conn, {'b_name': 'CUSTOM_A'})


def test_direct_plain_rows_answer_as_sqlalchemy_does(db_url):
    """Plain-row queries (the candidates'), which run on the driver's
    cursor on PostgreSQL and MySQL: the same tuples as SQLAlchemy's for
    ints, strings, NULLs, a datetime parameter, a ``%`` in the SQL and an
    IN list of any length (MySQL has no empty ``IN ()``: SQLAlchemy's
    way); the driver's errors are SQLAlchemy's."""
    from nova_rt.placement import common
    from nova_rt.placement import models
    rp = models.ResourceProvider
    mgr = manager.PlacementManager(db.get_engine(db_url), Conf)
    a, _ = add_host(mgr, host='h1')
    b, _ = add_host(mgr, host='h2')
    stmt = (sa.select(rp.uuid, rp.host, rp.generation % sa.bindparam('m'),
                      sa.func.nullif(rp.id, rp.id))
            .where(rp.uuid.in_(sa.bindparam('uuids', expanding=True)),
                   rp.last_heartbeat > sa.bindparam('cutoff'))
            .order_by(rp.host))
    plain = common.Direct(stmt, plain_rows=True)
    cutoff = common.utcnow() - datetime.timedelta(hours=1)
    engine = db.get_engine(db_url)
    with engine.connect() as conn:
        for uuids in ([a, new_uuid(), b], [b], []):
            params = {'uuids': uuids, 'm': 1000, 'cutoff': cutoff}
            expected = [tuple(r) for r in conn.execute(stmt, params)]
            rows = plain.rows(conn, params)
            assert [tuple(r) for r in rows] == expected
            assert len(expected) == len(set(uuids) & {a, b})
        assert plain.rows(conn, {'uuids': [a], 'm': 1000,
                                 'cutoff': common.utcnow()
                                 + datetime.timedelta(hours=1)}) == []
    broken = common.Direct(sa.select(sa.column('x')).select_from(
        sa.table('no_such_table')), plain_rows=True)
    with pytest.raises(sa.exc.DBAPIError):
        with engine.connect() as conn:
            broken.rows(conn, {})


def test_mysql_direct_statements_answer_as_sqlalchemy_does(mysql_url):
    """On MySQL ``common.Direct`` runs on PyMySQL's cursor: rows by name
    and position as SQLAlchemy's, literals SQLAlchemy bound itself,
    rowcounts of one execution and of several (a many-row INSERT), and a
    rolled-back transaction takes the direct writes with it."""
    from nova_rt.placement import common
    from nova_rt.placement import models
    rp = models.ResourceProvider
    engine = db.get_engine(mysql_url)
    with engine.begin() as conn:
        helpers.empty_tables(conn)
    mgr = manager.PlacementManager(engine, Conf)
    a, _ = add_host(mgr, host='h1')
    b, _ = add_host(mgr, host='h2')
    select = (sa.select(rp.id, rp.host, rp.generation.label('gen'))
              .where(rp.uuid.in_(sa.bindparam('b_uuids', expanding=True)))
              .order_by(rp.host))
    named = common.Direct(select)
    bump = common.Direct(sa.update(rp).where(rp.uuid == sa.bindparam('b_uuid'))
                         .values(generation=rp.generation + 1))
    add_traits = common.Direct(sa.insert(models.Trait).values(
        name=sa.bindparam('b_name')))
    with engine.begin() as conn:
        params = {'b_uuids': [a, new_uuid(), b]}
        expected = conn.execute(select, params).all()
        rows = named.rows(conn, params)
        assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
        assert [(r.host, r.gen) for r in rows] == [('h1', 1), ('h2', 1)]
        assert named.rows(conn, {'b_uuids': []}) == []
        assert bump.run(conn, {'b_uuid': a}) == 1
        assert bump.run(conn, {'b_uuid': new_uuid()}) == 0
        assert bump.run(conn, [{'b_uuid': a}, {'b_uuid': b}]) == 2
        assert add_traits.run(conn, [{'b_name': 'CUSTOM_A'},
                                     {'b_name': 'CUSTOM_B'}]) == 2
        assert [r.gen for r in named.rows(conn, params)] == [3, 2]
    try:
        with engine.begin() as conn:
            bump.run(conn, {'b_uuid': a})
            raise RuntimeError('rolled back')
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(sa.select(rp.generation).where(rp.uuid == a)
                            ).scalar() == 3
    with pytest.raises(Exception) as duplicate:
        with engine.begin() as conn:
            add_traits.run(conn, {'b_name': 'CUSTOM_A'})
    assert db.is_duplicate(duplicate.value)


def test_mysql_lock_conflicts_on_direct_statements_are_retried(mysql_url):
    """A deadlock or a lock wait timeout MySQL reports to a statement run on
    PyMySQL itself (which oslo.db's filters, naming both DBDeadlock, never
    see) is one the manager retries."""
    import threading
    from nova_rt.placement import common
    from nova_rt.placement import models
    engine = db.get_engine(mysql_url)
    trait = models.Trait.__table__
    with engine.begin() as conn:
        helpers.empty_tables(conn)
        conn.execute(sa.insert(trait), [{'name': 'CUSTOM_A'},
                                        {'name': 'CUSTOM_B'}])
    rename = common.Direct(sa.update(trait).where(
        trait.c.name == sa.bindparam('b_name')).values(
            name=sa.func.concat(trait.c.name, sa.literal_column("''"))))
    errors, both_locked = [], threading.Barrier(2, timeout=10)

    def cross(first, second):
        try:
            with engine.begin() as conn:
                rename.run(conn, {'b_name': first})
                both_locked.wait()
                rename.run(conn, {'b_name': second})
        except Exception as error:
            errors.append(error)
    threads = [threading.Thread(target=cross, args=pair) for pair in
               (('CUSTOM_A', 'CUSTOM_B'), ('CUSTOM_B', 'CUSTOM_A'))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1, errors             # the victim; the other won
    assert 'Deadlock' in str(errors[0])
    assert db.is_retryable(errors[0])

    with engine.begin() as holder:
        rename.run(holder, {'b_name': 'CUSTOM_A'})
        with engine.connect() as waiter:
            waiter.exec_driver_sql('SET SESSION innodb_lock_wait_timeout = 1')
            try:
                with pytest.raises(sa.exc.DBAPIError) as timeout:
                    rename.run(waiter, {'b_name': 'CUSTOM_A'})
            finally:
                waiter.rollback()
                waiter.exec_driver_sql(
                    'SET SESSION innodb_lock_wait_timeout = DEFAULT')
    assert 'Lock wait timeout' in str(timeout.value)
    assert db.is_retryable(timeout.value)


def test_mysql_rolls_back_on_return_only_what_is_open(mysql_url, monkeypatch):
    """No ROLLBACK round trip for a connection that committed; one for a
    transaction left open, whichever way it was left: the next user of the
    connection must not inherit its locks or its writes."""
    import pymysql.connections
    from nova_rt.placement import models
    sent = []
    rollback = pymysql.connections.Connection.rollback

    def counted(conn):
        sent.append(conn)
        return rollback(conn)
    monkeypatch.setattr(pymysql.connections.Connection, 'rollback', counted)
    engine = db.get_engine(mysql_url)
    with engine.begin() as conn:
        helpers.empty_tables(conn)
    trait = models.Trait.__table__
    with engine.begin() as conn:
        conn.execute(sa.insert(trait).values(name='CUSTOM_KEPT'))
    assert sent == []
    # A transaction ended by an error: rolled back once, by SQLAlchemy.
    with pytest.raises(Exception) as duplicate:
        with engine.begin() as conn:
            conn.execute(sa.insert(trait).values(name='CUSTOM_KEPT'))
    assert db.is_duplicate(duplicate.value)
    assert len(sent) == 1
    # Left open on a raw connection after a committed one (a lock only, no
    # write that would show in the server's status): rolled back on return.
    with engine.begin() as conn:
        conn.execute(sa.select(trait.c.id).where(trait.c.name == 'CUSTOM_KEPT')
                     .with_for_update())
    sent.clear()
    raw = engine.raw_connection()
    with raw.cursor() as cursor:
        cursor.execute('SELECT id FROM traits FOR UPDATE')
    raw.close()
    assert len(sent) == 1
    sent.clear()
    with engine.connect() as conn:
        conn.execute(sa.insert(trait).values(name='CUSTOM_GONE'))
    assert len(sent) == 1                # closed without a commit
    with engine.connect() as conn:
        assert conn.execute(sa.select(trait.c.name)).scalars().all() == [
            'CUSTOM_KEPT']


def test_direct_several_rows(direct_db_url):
    """A list of parameters: an INSERT's rows in one statement (``ON
    CONFLICT``'s literals kept, ``RETURNING`` every row), a few executions
    of another statement one by one, more as executemany, and as many rows
    changed as SQLAlchemy counts; a unique violation among the rows is
    SQLAlchemy's error and takes the transaction with it."""
    from nova_rt.placement import allocation_ops
    from nova_rt.placement import common
    from nova_rt.placement import models
    trait, consumer = models.Trait, models.Consumer
    add = common.Direct(sa.insert(trait).values(name=sa.bindparam('b_name'))
                        .returning(trait.id, trait.name))
    rename = common.Direct(sa.update(trait).where(
        trait.name == sa.bindparam('b_old')).values(name=sa.bindparam('b_new')))
    engine = db.get_engine(direct_db_url)
    dialect = engine.dialect.name
    upsert = allocation_ops._consumer_upsert(dialect)
    names = [f'CUSTOM_{i}' for i in range(common.ONE_BY_ONE + 3)]
    with engine.begin() as conn:
        rows = add.rows(conn, [{'b_name': n} for n in names])
        assert sorted(r.name for r in rows) == sorted(names)
        assert len({r.id for r in rows}) == len(names)
        # Two, then more than ONE_BY_ONE executions of an UPDATE.
        assert rename.run(conn, [{'b_old': n, 'b_new': n + '_X'}
                                 for n in names[:2]]) == 2
        assert rename.run(conn, [{'b_old': n, 'b_new': n + '_X'}
                                 for n in names[2:]]) == len(names) - 2
        first = dict(upsert.rows(conn, [
            {'uuid': u, 'project_id': 'p', 'user_id': 'u', 'generation': 0}
            for u in ('c1', 'c2')]))
        again = dict(upsert.rows(conn, [
            {'uuid': u, 'project_id': 'q', 'user_id': 'u', 'generation': 0}
            for u in ('c2', 'c3')]))
    assert again['c2'] == first['c2'] and set(again) == {'c2', 'c3'}
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.select(trait.name)).scalars()) == sorted(
            n + '_X' for n in names)
        assert dict(conn.execute(sa.select(
            consumer.uuid, consumer.generation)).all()) == {
                'c1': 0, 'c2': 1, 'c3': 0}
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            add.run(conn, [{'b_name': 'CUSTOM_NEW'},
                           {'b_name': names[0] + '_X'}])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            trait)).scalar() == len(names)


@pytest.mark.parametrize('url', [
    'postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nowhere',
    'mysql+pymysql://root:s3cret@127.0.0.1:1/nowhere'])
def test_a_database_away_is_a_contract_error(url, caplog):
    """Nothing answers where the database should be: a read and a write
    are HypervisorUnavailable naming the placement database, not the
    driver's OperationalError, and no password reaches the message or the
    log."""
    from nova_rt import exception
    engine = db.create_engine(url)
    try:
        mgr = manager.PlacementManager(engine, Conf)
        with pytest.raises(exception.HypervisorUnavailable) as read:
            mgr.get_allocations(CTX, consumer_uuid=new_uuid())
        with pytest.raises(exception.HypervisorUnavailable):
            add_host(mgr, host='h-away')
    finally:
        engine.dispose()
    assert 'placement database' in str(read.value)
    assert exception.HypervisorUnavailable in exception.RPC_ERRORS
    assert 's3cret' not in str(read.value) + caplog.text
