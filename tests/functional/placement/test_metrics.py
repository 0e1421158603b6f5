"""Placement's metrics of its own database: transactions run again."""

import sqlalchemy as sa

from nova_rt.placement import manager
from tests.functional.placement import fixtures
from tests.functional.placement.helpers import (
    CTX, Conf, add_host, consumer, new_uuid)
from tests.functional.placement.test_database import _drop_connections


def _retries(mgr, method: str) -> float:
    return mgr.metrics.registry.get_sample_value(
        'nova_rt_placement_db_retries_total', {'method': method}) or 0.0


def test_a_transaction_run_again_after_a_lost_connection_is_counted():
    with fixtures.own_engine('postgresql') as engine:
        mgr = manager.PlacementManager(engine, Conf)
        host = f'h-{new_uuid()[:8]}'
        root, gen = add_host(mgr, host=host)
        assert _retries(mgr, 'report_allocations') == 0
        with engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))     # pooled, then dropped
        assert _drop_connections(engine.url.database) >= 1
        mgr.report_allocations(
            CTX, host=host, root_uuid=root, generation=gen, full=True,
            allocations={new_uuid(): consumer({root: {'VCPU': 1}})})
        assert _retries(mgr, 'report_allocations') == 1
        # A transaction that went through at once adds nothing.
        mgr.get_usages(CTX, uuid=root)
        assert _retries(mgr, 'get_usages') == 0
        assert _retries(mgr, 'report_allocations') == 1
