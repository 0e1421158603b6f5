"""Writers of the REST API racing each other and the RPC path, on
PostgreSQL (READ COMMITTED: what one writer read can change before it
commits unless a row lock or a compare-and-swap says otherwise); each race
forced into its worst interleaving (``races.interleave``)."""

import pytest

from nova_rt.placement import consumer_ops
from nova_rt.placement import db
from nova_rt.placement import inventory_rest_ops
from nova_rt.placement import provider_rest_ops
from tests.functional.placement import helpers as pl_helpers
from tests.functional.placement.rest import races
from tests.functional.placement.rest.helpers import new_uuid


@pytest.fixture
def engine(pg_url):
    engine = db.get_engine(pg_url)
    with engine.begin() as conn:
        pl_helpers.empty_tables(conn)
    return engine


def _tree(engine, inventories):
    """A REST-created root with one child holding ``inventories``."""
    root, child = new_uuid(), new_uuid()
    with engine.begin() as conn:
        provider_rest_ops.create(conn, 'root', root)
        provider_rest_ops.create(conn, 'child', child, root)
        inventory_rest_ops.set_all(conn, child, 0, inventories, True)
    return root, child


def _claim(rp, resources, consumer=None, **request):
    request.setdefault('consumer_generation', None)
    return lambda conn: consumer_ops.replace(conn, {
        consumer or new_uuid(): {'allocations': {rp: resources},
                                 'project_id': 'p', 'user_id': 'u',
                                 **request}})


@pytest.mark.parametrize('remove', [
    lambda conn, rp: inventory_rest_ops.delete_one(conn, rp, 'VCPU'),
    lambda conn, rp: inventory_rest_ops.delete_all(conn, rp),
    lambda conn, rp: inventory_rest_ops.set_all(
        conn, rp, 1, {'DISK_GB': {'total': 10}}, True),
], ids=['delete_one', 'delete_all', 'set_all'])
def test_inventory_removed_while_a_claim_checks_it(monkeypatch, engine,
                                                   remove):
    # Review bug 1: the claim had read the child's VCPU inventory; its
    # removal committed in between; both committed.
    _root, child = _tree(engine, {'VCPU': {'total': 4},
                                  'DISK_GB': {'total': 10}})
    outcomes = races.interleave(
        monkeypatch, engine, consumer_ops, '_inventories',
        _claim(child, {'VCPU': 2}), lambda conn: remove(conn, child))
    assert [k for k, v in outcomes.items() if v is not None] != [
        'first', 'second'], outcomes
    with engine.connect() as conn:
        assert races.accounting_errors(conn) == []
