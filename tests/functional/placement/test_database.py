"""The placement database connection: what happens when PostgreSQL drops it."""

import psycopg
import sqlalchemy as sa

from nova_rt.placement import db
from nova_rt.placement import manager
from tests.functional.placement import fixtures
from tests.functional.placement.helpers import CTX, add_host, consumer, new_uuid


class _Conf:
    class placement:
        heartbeat_timeout = 60
        candidate_order = 'spread'


def _drop_connections(url: str) -> int:
    """Terminate every server connection to the database of ``url``."""
    name = url.rsplit('/', 1)[1]
    with psycopg.connect(fixtures.PG_ADMIN, autocommit=True) as conn:
        return len(conn.execute(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
            'WHERE datname = %s AND pid <> pg_backend_pid()',
            (name,)).fetchall())


def test_calls_survive_the_server_dropping_pooled_connections():
    # The pool does not ping before every transaction (a round trip per
    # report): a dropped connection must cost a retry, not a failed call.
    # A database of its own: terminating the shared one's connections would
    # break the other tests' pooled engines.
    fixtures.require_pg()
    url = fixtures.fresh_pg_database()
    engine = None
    try:
        db.sync(url)
        engine = db.create_engine(url)
        mgr = manager.PlacementManager(engine, _Conf)
        host = f'h-{new_uuid()[:8]}'
        root, gen = add_host(mgr, host=host)
        with engine.connect() as conn:
            # A pooled connection that the server will drop.
            assert conn.execute(sa.text('SELECT 1')).scalar() == 1
        assert engine.pool.checkedin() >= 1
        assert _drop_connections(url) >= 1

        c = new_uuid()
        gens = mgr.report_allocations(
            CTX, host=host, root_uuid=root, generation=gen, full=True,
            allocations={c: consumer({root: {'VCPU': 1}})})
        assert gens == {root: gen + 1}
        assert mgr.get_allocations(CTX, consumer_uuid=c) == {root: {'VCPU': 1}}
    finally:
        if engine is not None:
            engine.dispose()
        fixtures.drop_pg_database(url)
