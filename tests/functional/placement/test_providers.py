"""Provider trees, inventories, traits, aggregates: Placement's semantics."""

import pytest
import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import db
from nova_rt.placement import models
from tests.functional.placement.helpers import (
    CTX, add_host, compute_node, consumer, new_uuid)


def test_tree_created_with_capacity_and_generation(mgr):
    root, child = new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, traits=['COMPUTE_NODE', 'CUSTOM_GOLD']),
        {'uuid': child, 'name': 'h1_0000:81:00.0', 'parent_uuid': root,
         'generation': None,
         'inventories': {'CUSTOM_PCI_8086_10ED': {'total': 4}}}])
    assert gens == {root: 1, child: 1}
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert rp['inventories']['VCPU']['capacity'] == 32
    # int((4096 - 512) * 1.0)
    assert rp['inventories']['MEMORY_MB']['capacity'] == 3584
    assert rp['traits'] == ['COMPUTE_NODE', 'CUSTOM_GOLD']
    assert rp['usages'] == {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}
    assert rp['alive'] is True and rp['root_uuid'] == root
    kid = mgr.get_resource_provider(CTX, uuid=child)
    assert (kid['parent_uuid'], kid['root_uuid'], kid['host']) == (root, root, 'h1')


def test_capacity_truncates_like_placement(mgr):
    root = new_uuid()
    mgr.report_provider_tree(CTX, host='h1', providers=[
        {'uuid': root, 'name': 'h1', 'inventories': {
            'VCPU': {'total': 10, 'reserved': 1, 'allocation_ratio': 1.55}}}])
    inv = mgr.get_resource_provider(CTX, uuid=root)['inventories']['VCPU']
    assert inv['capacity'] == int((10 - 1) * 1.55) == 13


def test_unchanged_report_keeps_generation_changed_bumps(mgr):
    root, gen = add_host(mgr)
    same = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen)])
    assert same == {root: gen}
    changed = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen, vcpus=16)])
    assert changed == {root: gen + 1}
    assert mgr.get_resource_provider(
        CTX, uuid=root)['inventories']['VCPU']['total'] == 16


def test_changed_and_unchanged_reports_are_heartbeats(mgr, db_url):
    # A changed root's generation bump carries the heartbeat; an unchanged
    # report writes only the heartbeat.
    root, gen = add_host(mgr)

    def forget_heartbeat():
        with db.get_engine(db_url).begin() as conn:
            conn.execute(sa.update(models.ResourceProvider)
                         .values(last_heartbeat=None))
        assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is False

    forget_heartbeat()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen)])
    assert gens == {root: gen}
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is True
    forget_heartbeat()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen, vcpus=12)])
    assert gens == {root: gen + 1}
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert rp['alive'] is True and rp['generation'] == gen + 1


def test_stale_generation_is_a_conflict_and_writes_nothing(mgr):
    root, gen = add_host(mgr)
    with pytest.raises(exception.ResourceProviderGenerationConflict) as err:
        mgr.report_provider_tree(CTX, host='h1', providers=[
            compute_node(root, generation=gen - 1, vcpus=2)])
    assert err.value.kwargs['current'] == gen
    with pytest.raises(exception.ResourceProviderGenerationConflict):
        # null means "new": the provider exists, so the reporter is stale.
        mgr.report_provider_tree(CTX, host='h1', providers=[
            compute_node(root, generation=None, vcpus=2)])
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert rp['generation'] == gen and rp['inventories']['VCPU']['total'] == 8


def test_other_hosts_provider_refused(mgr):
    root, gen = add_host(mgr, host='h1')
    with pytest.raises(exception.NotAuthorized):
        mgr.report_provider_tree(CTX, host='h2', providers=[
            compute_node(root, name='h2', generation=gen, vcpus=1)])
    with pytest.raises(exception.NotAuthorized):
        mgr.report_allocations(CTX, host='h2', root_uuid=root, generation=gen,
                               allocations={}, full=True)
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert (rp['host'], rp['name'], rp['generation']) == ('h1', 'h1', gen)


def test_removing_allocated_inventory_or_provider_refused(mgr):
    root, child = new_uuid(), new_uuid()
    pci = {'uuid': child, 'name': 'pci', 'parent_uuid': root,
           'generation': None, 'inventories': {'CUSTOM_PCI': {'total': 2}}}
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root), pci])
    gens = mgr.report_allocations(
        CTX, host='h1', root_uuid=root, generation=gens[root], full=True,
        allocations={new_uuid(): consumer({root: {'VCPU': 1},
                                           child: {'CUSTOM_PCI': 1}})})
    node = compute_node(root, generation=gens[root])
    del node['inventories']['VCPU']
    with pytest.raises(exception.InventoryInUse):
        mgr.report_provider_tree(CTX, host='h1', providers=[
            node, {**pci, 'generation': gens[child]}])
    with pytest.raises(exception.InventoryInUse):
        mgr.report_provider_tree(CTX, host='h1', providers=[
            compute_node(root, generation=gens[root])])
    with pytest.raises(exception.InventoryInUse):
        mgr.delete_resource_provider(CTX, uuid=root)
    assert {p['uuid'] for p in mgr.list_resource_providers(CTX, host='h1')} \
        == {root, child}
    assert 'VCPU' in mgr.get_resource_provider(CTX, uuid=root)['inventories']


def test_unlisted_free_child_removed_and_delete_tree(mgr):
    root, child = new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root),
        {'uuid': child, 'name': 'pci', 'parent_uuid': root,
         'inventories': {'CUSTOM_PCI': {'total': 1}}}])
    mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gens[root])])
    with pytest.raises(exception.ResourceProviderNotFound):
        mgr.get_resource_provider(CTX, uuid=child)
    mgr.delete_resource_provider(CTX, uuid=root)
    assert mgr.list_resource_providers(CTX) == []
    with pytest.raises(exception.ResourceProviderNotFound):
        mgr.delete_resource_provider(CTX, uuid=root)


def test_traits_and_aggregates_are_generation_checked(mgr):
    root, gen = add_host(mgr)
    agg = new_uuid()
    gens = mgr.set_traits(CTX, uuid=root, traits=['HW_CPU_X86_AVX2',
                                                  'CUSTOM_FAST'],
                          generation=gen)
    assert gens == {root: gen + 1}
    with pytest.raises(exception.ResourceProviderGenerationConflict):
        mgr.set_aggregates(CTX, uuid=root, aggregates=[agg], generation=gen)
    gens = mgr.set_aggregates(CTX, uuid=root, aggregates=[agg],
                              generation=gen + 1)
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert rp['traits'] == ['CUSTOM_FAST', 'HW_CPU_X86_AVX2']
    assert rp['aggregates'] == [agg] and rp['generation'] == gen + 2
    # A report that leaves traits out keeps the operator's.
    mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(root, generation=gen + 2, vcpus=4)])
    assert mgr.get_resource_provider(CTX, uuid=root)['traits'] == [
        'CUSTOM_FAST', 'HW_CPU_X86_AVX2']


@pytest.mark.parametrize('traits', [['NOT_A_TRAIT'], ['custom_lower'],
                                    ['CUSTOM_']])
def test_bad_traits_are_invalid_input(mgr, traits):
    root, gen = add_host(mgr)
    with pytest.raises(exception.InvalidInput):
        mgr.set_traits(CTX, uuid=root, traits=traits, generation=gen)
    assert mgr.get_resource_provider(CTX, uuid=root)['generation'] == gen


@pytest.mark.parametrize('providers, field', [
    ([{'uuid': 'nope', 'name': 'x'}], 'providers[0].uuid'),
    ([{'uuid': '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f', 'name': 'x',
       'inventories': {'VCPU': {'total': -1}}}],
     'providers[0].inventories.VCPU.total'),
    ([{'uuid': '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f', 'name': 'x',
       'inventories': {'VCPU': {'total': 4, 'reserved': 5}}}],
     'providers[0].inventories.VCPU'),
    ([{'uuid': '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f', 'name': 'x',
       'parent_uuid': '7d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f'}],
     'providers[0].parent_uuid'),
    ([{'uuid': '6d3e0c5e-4b8a-4b7c-9f1e-0a1b2c3d4e5f', 'name': 'x',
       'colour': 'red'}], 'providers[0]'),
])
def test_invalid_tree_names_field_and_writes_nothing(mgr, providers, field):
    with pytest.raises(exception.InvalidInput) as err:
        mgr.report_provider_tree(CTX, host='h1', providers=providers)
    assert field in str(err.value)
    assert mgr.list_resource_providers(CTX) == []


def test_missing_argument_is_invalid_input(mgr):
    with pytest.raises(exception.InvalidInput) as err:
        mgr.report_provider_tree(CTX, host='h1')
    assert 'providers' in str(err.value)


def test_list_filters(mgr):
    r1, g1 = add_host(mgr, host='h1', traits=['CUSTOM_A'])
    r2, g2 = add_host(mgr, host='h2', vcpus=1)
    agg = new_uuid()
    mgr.set_aggregates(CTX, uuid=r2, aggregates=[agg], generation=g2)
    names = lambda **kw: sorted(p['name'] for p in  # noqa: E731
                                mgr.list_resource_providers(CTX, **kw))
    assert names() == ['h1', 'h2']
    assert names(name='h2') == ['h2']
    assert names(host='h1') == ['h1']
    assert names(in_tree=r2) == ['h2']
    assert names(member_of=[agg]) == ['h2']
    assert names(required=['CUSTOM_A']) == ['h1']
    assert names(resources={'VCPU': 5}) == ['h1']


def test_heartbeat_only_from_owner(mgr, db_url):
    root, _ = add_host(mgr)
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(models.ResourceProvider)
                     .values(last_heartbeat=None))
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is False
    mgr.heartbeat(CTX, host='h2', root_uuid=root,
                  sent_at='2026-01-01T00:00:00Z')
    assert mgr.get_resource_provider(CTX, uuid=root)['alive'] is False
    mgr.heartbeat(CTX, host='h1', root_uuid=root,
                  sent_at='2026-01-01T00:00:00+00:00')
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert rp['alive'] is True and rp['last_heartbeat']
    # A heartbeat is not a provider write.
    assert rp['generation'] == 1


def test_every_answer_is_plain_json_on_every_backend(mgr):
    # MySQL's DOUBLE read back as a Decimal once: no JSON type, and no
    # canonical form, so placement's signed answers went out unsigned.
    from nova_rt.identity import canonical
    root = new_uuid()
    mgr.report_provider_tree(CTX, host='h1', providers=[
        {'uuid': root, 'name': 'h1', 'inventories': {
            'VCPU': {'total': 10, 'reserved': 1, 'allocation_ratio': 1.55}}}])
    rp = mgr.get_resource_provider(CTX, uuid=root)
    assert type(rp['inventories']['VCPU']['allocation_ratio']) is float
    for answer in (rp, mgr.list_resource_providers(CTX),
                   mgr.get_usages(CTX, uuid=root),
                   mgr.get_allocation_candidates(CTX, resources={'VCPU': 1})):
        canonical.dumps(answer)         # ValueError for a type JSON lacks
