"""report_allocations, usages and allocations: atomic, capacity-checked."""

import pytest
import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import db
from nova_rt.placement import models
from tests.functional.placement.helpers import (
    CTX, add_host, compute_node, consumer, new_uuid)


def _report(mgr, root, gen, allocations, full=True, host='h1'):
    return mgr.report_allocations(CTX, host=host, root_uuid=root,
                                  generation=gen, allocations=allocations,
                                  full=full)


def test_full_report_replaces_and_bumps(mgr):
    root, gen = add_host(mgr)
    a, b, c = new_uuid(), new_uuid(), new_uuid()
    gens = _report(mgr, root, gen, {
        a: consumer({root: {'VCPU': 2, 'MEMORY_MB': 512}}),
        b: consumer({root: {'VCPU': 1, 'DISK_GB': 0}}, project_id='p2')})
    assert gens == {root: gen + 1}
    assert mgr.get_usages(CTX, uuid=root) == {'VCPU': 3, 'MEMORY_MB': 512,
                                              'DISK_GB': 0}
    # DISK_GB 0 is "none of it": not stored.
    assert mgr.get_allocations(CTX, consumer_uuid=b) == {root: {'VCPU': 1}}
    gens = _report(mgr, root, gens[root], {c: consumer({root: {'VCPU': 4}})})
    assert mgr.get_allocations(CTX, consumer_uuid=a) == {}
    assert mgr.get_allocations(CTX, consumer_uuid=c) == {root: {'VCPU': 4}}
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 4
    assert mgr.get_usages(CTX, project_id='p2') == {}


def test_partial_report_upserts_and_empty_deletes(mgr):
    root, gen = add_host(mgr)
    a, b = new_uuid(), new_uuid()
    gen = _report(mgr, root, gen, {a: consumer({root: {'VCPU': 1}})})[root]
    gen = _report(mgr, root, gen, {b: consumer({root: {'VCPU': 2}})},
                  full=False)[root]
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 3
    gen = _report(mgr, root, gen, {a: consumer({})}, full=False)[root]
    assert mgr.get_allocations(CTX, consumer_uuid=a) == {}
    assert mgr.get_allocations(CTX, consumer_uuid=b) == {root: {'VCPU': 2}}
    assert mgr.get_usages(CTX, project_id='p1') == {'VCPU': 2}


def test_stale_generation_conflict(mgr):
    root, gen = add_host(mgr)
    _report(mgr, root, gen, {})
    with pytest.raises(exception.ResourceProviderGenerationConflict):
        _report(mgr, root, gen, {new_uuid(): consumer({root: {'VCPU': 1}})})
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 0


@pytest.mark.parametrize('amounts, error', [
    ({'VCPU': 9}, exception.InvalidAllocation),            # max_unit 8
    ({'CUSTOM_X': 1}, exception.InvalidAllocation),        # no inventory
    ({'DISK_GB': 101}, exception.InvalidAllocation),       # max_unit 100
])
def test_invalid_amounts(mgr, amounts, error):
    root, gen = add_host(mgr)
    ok = new_uuid()
    with pytest.raises(error):
        _report(mgr, root, gen, {ok: consumer({root: {'VCPU': 1}}),
                                 new_uuid(): consumer({root: amounts})})
    assert mgr.get_allocations(CTX, consumer_uuid=ok) == {}
    assert mgr.get_resource_provider(CTX, uuid=root)['generation'] == gen


def test_step_size_and_min_unit(mgr):
    root = new_uuid()
    gen = mgr.report_provider_tree(CTX, host='h1', providers=[
        {'uuid': root, 'name': 'h1', 'inventories': {
            'MEMORY_MB': {'total': 4096, 'min_unit': 256, 'max_unit': 2048,
                          'step_size': 256}}}])[root]
    for bad in (128, 300, 2304):
        with pytest.raises(exception.InvalidAllocation):
            _report(mgr, root, gen, {new_uuid(): consumer(
                {root: {'MEMORY_MB': bad}})})
    gens = _report(mgr, root, gen, {new_uuid(): consumer(
        {root: {'MEMORY_MB': 512}})})
    assert gens[root] == gen + 1


def test_capacity_exceeded_writes_nothing(mgr):
    root, gen = add_host(mgr, vcpus=2)      # capacity 8
    a = new_uuid()
    gen = _report(mgr, root, gen, {a: consumer({root: {'VCPU': 2}})})[root]
    many = {new_uuid(): consumer({root: {'VCPU': 2}}) for _ in range(4)}
    with pytest.raises(exception.AllocationCapacityExceeded) as err:
        _report(mgr, root, gen, many, full=False)
    assert 'VCPU' in str(err.value) and 'capacity 8' in str(err.value)
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 2
    assert all(mgr.get_allocations(CTX, consumer_uuid=c) == {} for c in many)


def test_shrunk_inventory_still_accepts_smaller_report(mgr):
    root, gen = add_host(mgr, vcpus=2)
    a, b = new_uuid(), new_uuid()
    gen = _report(mgr, root, gen, {a: consumer({root: {'VCPU': 2}}),
                                   b: consumer({root: {'VCPU': 2}})})[root]
    node = compute_node(root, generation=gen, vcpus=2)
    node['inventories']['VCPU']['allocation_ratio'] = 1.0   # capacity 2
    gen = mgr.report_provider_tree(CTX, host='h1', providers=[node])[root]
    # Over capacity now; reporting the same or less is still accepted.
    gen = _report(mgr, root, gen, {a: consumer({root: {'VCPU': 2}}),
                                   b: consumer({root: {'VCPU': 2}})})[root]
    assert _report(mgr, root, gen, {a: consumer({root: {'VCPU': 2}})})


def test_child_provider_allocations_bump_child(mgr):
    root, child = new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root),
        {'uuid': child, 'name': 'pci', 'parent_uuid': root,
         'inventories': {'CUSTOM_PCI': {'total': 2}}}])
    a = new_uuid()
    new = _report(mgr, root, gens[root], {a: consumer(
        {root: {'VCPU': 1}, child: {'CUSTOM_PCI': 2}})})
    assert new == {root: gens[root] + 1, child: gens[child] + 1}
    assert mgr.get_allocations(CTX, consumer_uuid=a) == {
        root: {'VCPU': 1}, child: {'CUSTOM_PCI': 2}}


def test_allocation_on_foreign_tree_refused(mgr):
    r1, g1 = add_host(mgr, host='h1')
    r2, g2 = add_host(mgr, host='h2')
    with pytest.raises(exception.NotAuthorized):
        _report(mgr, r1, g1, {new_uuid(): consumer({r2: {'VCPU': 1}})})
    with pytest.raises(exception.InvalidAllocation):
        _report(mgr, r1, g1, {new_uuid(): consumer({new_uuid(): {'VCPU': 1}})})
    assert mgr.get_usages(CTX, uuid=r2)['VCPU'] == 0
    assert mgr.get_resource_provider(CTX, uuid=r1)['generation'] == g1


def test_consumer_across_two_hosts(mgr):
    """A move: the same consumer on source and destination trees."""
    r1, g1 = add_host(mgr, host='h1')
    r2, g2 = add_host(mgr, host='h2')
    c = new_uuid()
    g1 = _report(mgr, r1, g1, {c: consumer({r1: {'VCPU': 1}})})[r1]
    _report(mgr, r2, g2, {c: consumer({r2: {'VCPU': 2}})}, host='h2')
    assert mgr.get_allocations(CTX, consumer_uuid=c) == {
        r1: {'VCPU': 1}, r2: {'VCPU': 2}}
    _report(mgr, r1, g1, {})
    assert mgr.get_allocations(CTX, consumer_uuid=c) == {r2: {'VCPU': 2}}


def test_usages_need_a_filter(mgr):
    with pytest.raises(exception.InvalidInput):
        mgr.get_usages(CTX)
    with pytest.raises(exception.ResourceProviderNotFound):
        mgr.get_usages(CTX, uuid=new_uuid())


def test_a_report_heals_drifted_usage(mgr, db_url):
    # inventories.used is what candidates read; a report sets it from the
    # allocations it has just read under the root's lock, wherever it differs.
    root, gen = add_host(mgr)
    a = new_uuid()
    allocations = {a: consumer({root: {'VCPU': 2, 'MEMORY_MB': 256}})}
    gen = _report(mgr, root, gen, allocations)[root]
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(models.Inventory).values(used=99))
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 99
    gens = _report(mgr, root, gen, allocations)     # nothing changed
    assert gens == {root: gen + 1}
    assert mgr.get_usages(CTX, uuid=root) == {'VCPU': 2, 'MEMORY_MB': 256,
                                              'DISK_GB': 0}


def test_incremental_report_counts_the_consumers_it_does_not_name(mgr):
    """full=false reads only its own consumers: the others' usage comes from
    the stored total, for the capacity check as for the usage it writes."""
    root, gen = add_host(mgr, vcpus=2)      # capacity 8, max_unit 2
    a, b, c, d, e = (new_uuid() for _ in range(5))
    gen = _report(mgr, root, gen, {x: consumer({root: {'VCPU': 2}})
                                   for x in (a, b, c)})[root]
    # 6 used by a, b, c: d may take 2; then e may not, unless c goes.
    gen = _report(mgr, root, gen, {d: consumer({root: {'VCPU': 2}})},
                  full=False)[root]
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 8
    with pytest.raises(exception.AllocationCapacityExceeded):
        _report(mgr, root, gen, {e: consumer({root: {'VCPU': 1}})},
                full=False)
    gen = _report(mgr, root, gen, {c: consumer({}),
                                   e: consumer({root: {'VCPU': 2}})},
                  full=False)[root]
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 8
    assert mgr.get_allocations(CTX, consumer_uuid=a) == {root: {'VCPU': 2}}
    assert mgr.get_allocations(CTX, consumer_uuid=c) == {}
    # A full report of the same, after that, agrees with the stored usage.
    _report(mgr, root, gen, {x: consumer({root: {'VCPU': 2}})
                             for x in (a, b, d, e)})
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 8


def test_a_report_sets_the_used_of_many_classes(mgr, db_url):
    # More classes than one statement sets (usage_ops.USED_PER_STATEMENT):
    # drift healed on every one, then an incremental change on every one.
    from nova_rt.placement import usage_ops
    root = new_uuid()
    node = compute_node(root)
    custom = [f'CUSTOM_R{i}' for i in range(usage_ops.USED_PER_STATEMENT)]
    node['inventories'].update({rc: {'total': 100} for rc in custom})
    gen = mgr.report_provider_tree(CTX, host='h1', providers=[node])[root]
    amounts = {'VCPU': 2, 'MEMORY_MB': 256, 'DISK_GB': 5,
               **{rc: i + 1 for i, rc in enumerate(custom)}}
    a, b = new_uuid(), new_uuid()
    allocations = {a: consumer({root: amounts})}
    gen = _report(mgr, root, gen, allocations)[root]
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(models.Inventory).values(used=99))
    gen = _report(mgr, root, gen, allocations)[root]    # nothing changed
    assert mgr.get_usages(CTX, uuid=root) == amounts
    _report(mgr, root, gen, {b: consumer({root: amounts})}, full=False)
    assert mgr.get_usages(CTX, uuid=root) == {
        rc: 2 * n for rc, n in amounts.items()}
