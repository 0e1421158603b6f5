"""get_allocation_candidates: filters, order, liveness, one SQL statement."""

import datetime

import psycopg
import pytest
import sqlalchemy as sa

from nova_rt import exception
from nova_rt.placement import db
from nova_rt.placement import models
from nova_rt.placement import query_ops
from tests.functional.placement.helpers import (
    CTX, add_host, compute_node, consumer, new_uuid)


def _use(mgr, root, gen, host, vcpus):
    # Instances of 4 vCPUs each (max_unit is 8).
    return mgr.report_allocations(
        CTX, host=host, root_uuid=root, generation=gen, full=True,
        allocations={new_uuid(): consumer({root: {'VCPU': 4}})
                     for _ in range(vcpus // 4)})[root]


@pytest.fixture
def three_hosts(mgr):
    hosts = {}
    for name, used in (('h1', 28), ('h2', 4), ('h3', 12)):
        root, gen = add_host(mgr, host=name)          # VCPU capacity 32
        hosts[name] = (root, _use(mgr, root, gen, name, used))
    return hosts


def _hosts(candidates):
    return [c['host'] for c in candidates]


def test_spread_emptiest_first_with_free_and_allocation(mgr, three_hosts):
    cands = mgr.get_allocation_candidates(CTX, resources={'VCPU': 4})
    assert _hosts(cands) == ['h2', 'h3', 'h1']
    root = three_hosts['h2'][0]
    assert cands[0] == {'root_uuid': root, 'host': 'h2',
                        'allocation': {root: {'VCPU': 4}},
                        'free': {'VCPU': 28}}


def test_pack_fullest_first(mgr, conf, three_hosts):
    conf.placement.candidate_order = 'pack'
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 4})) == ['h1', 'h3', 'h2']


def test_capacity_and_limit(mgr, three_hosts):
    # h1 has 4 of 32 free.
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 5})) == ['h2', 'h3']
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 1}, limit=1)) == ['h2']
    assert len(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 1, 'MEMORY_MB': 3584})) == 3
    assert mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 1, 'MEMORY_MB': 3585}) == []


def test_unit_constraints(mgr, three_hosts):
    # max_unit of VCPU is the total, 8: a 9-vCPU request fits nowhere.
    assert mgr.get_allocation_candidates(CTX, resources={'VCPU': 9}) == []


def test_traits_and_aggregates(mgr, three_hosts):
    root, gen = three_hosts['h3']
    agg = new_uuid()
    gen = mgr.set_traits(CTX, uuid=root, traits=['CUSTOM_SSD'],
                         generation=gen)[root]
    mgr.set_aggregates(CTX, uuid=root, aggregates=[agg], generation=gen)
    req = {'VCPU': 1}
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, required=['CUSTOM_SSD'])) == ['h3']
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, forbidden=['CUSTOM_SSD'])) == ['h2', 'h1']
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, member_of=[agg, new_uuid()])) == ['h3']
    assert mgr.get_allocation_candidates(
        CTX, resources=req, required=['CUSTOM_SSD', 'CUSTOM_NVME']) == []
    with pytest.raises(exception.InvalidInput):
        mgr.get_allocation_candidates(CTX, resources=req,
                                      required=['CUSTOM_SSD'],
                                      forbidden=['CUSTOM_SSD'])


def test_dead_hosts_not_offered(mgr, db_url, three_hosts):
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) \
        - datetime.timedelta(seconds=61)
    with db.get_engine(db_url).begin() as conn:
        conn.execute(sa.update(models.ResourceProvider)
                     .where(models.ResourceProvider.host == 'h2')
                     .values(last_heartbeat=old))
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 1})) == ['h3', 'h1']
    root = three_hosts['h2'][0]
    mgr.heartbeat(CTX, host='h2', root_uuid=root,
                  sent_at=datetime.datetime.now(datetime.UTC).isoformat())
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 1})) == ['h2', 'h3', 'h1']


@pytest.mark.parametrize('resources', [{}, {'VCPU': 0}, {'vcpu': 1},
                                       {'VCPU': '1'}])
def test_bad_request_is_invalid_input(mgr, resources):
    with pytest.raises(exception.InvalidInput):
        mgr.get_allocation_candidates(CTX, resources=resources)


def test_one_statement_whatever_the_number_of_providers(mgr, db_url,
                                                        monkeypatch):
    for i in range(30):
        add_host(mgr, host=f'h{i}')
    engine = db.get_engine(db_url)
    statements = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith('SELECT'):
            statements.append(statement)
    if engine.dialect.name in ('postgresql', 'mysql'):
        # The query runs on the driver's cursor itself (common.Direct).
        import pymysql.cursors
        cursor_class = (psycopg.Cursor if engine.dialect.name == 'postgresql'
                        else pymysql.cursors.Cursor)
        execute = cursor_class.execute

        def counted(cursor, query, *args, **kwargs):
            count(None, cursor, str(query))
            return execute(cursor, query, *args, **kwargs)
        monkeypatch.setattr(cursor_class, 'execute', counted)
    else:
        sa.event.listen(engine, 'before_cursor_execute', count)
    try:
        for _ in range(2):
            statements.clear()
            cands = mgr.get_allocation_candidates(
                CTX, resources={'VCPU': 1, 'MEMORY_MB': 128, 'DISK_GB': 1},
                forbidden=['CUSTOM_NONE'])
            assert len(cands) == 30
            assert len(statements) == 1   # SET LOCAL is not a query
    finally:
        if engine.dialect.name == 'sqlite':
            sa.event.remove(engine, 'before_cursor_execute', count)


def test_every_required_trait_is_needed(mgr, three_hosts):
    # One semi-join per required trait: a host with only some is left out.
    for name, traits in (('h1', ['CUSTOM_SSD']),
                         ('h3', ['CUSTOM_SSD', 'CUSTOM_NVME', 'HW_CPU_X86_AVX'])):
        root, gen = three_hosts[name]
        mgr.set_traits(CTX, uuid=root, traits=traits, generation=gen)
    req = {'VCPU': 1}
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, required=['CUSTOM_SSD', 'CUSTOM_NVME'])) == ['h3']
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, required=['CUSTOM_SSD'])) == ['h3', 'h1']
    assert _hosts(mgr.get_allocation_candidates(
        CTX, resources=req, required=['CUSTOM_SSD', 'CUSTOM_UNKNOWN'])) == []
    assert [p['name'] for p in mgr.list_resource_providers(
        CTX, required=['CUSTOM_NVME', 'CUSTOM_SSD'])] == ['h3']


def _pci_child(uuid, parent, name, vfs, rc='CUSTOM_PCI_8086_1520',
               generation=None):
    return {'uuid': uuid, 'name': name, 'parent_uuid': parent,
            'generation': generation, 'traits': None,
            'inventories': {rc: {'total': vfs}}}


def test_pci_class_from_a_child_provider(mgr, db_url):
    """A class a child provider holds is found in its tree, the rest on the
    root; with two PFs of free VFs, one candidate per PF (as Placement)."""
    plain, _ = add_host(mgr, host='plain')
    root, pf0, pf1 = new_uuid(), new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='sriov', providers=[
        compute_node(root, 'sriov'), _pci_child(pf0, root, 'sriov_pf0', 1),
        _pci_child(pf1, root, 'sriov_pf1', 2)])
    req = {'VCPU': 2, 'CUSTOM_PCI_8086_1520': 1}
    cands = mgr.get_allocation_candidates(CTX, resources=req)
    assert sorted(cands, key=lambda c: c['free']['CUSTOM_PCI_8086_1520']) == [
        {'root_uuid': root, 'host': 'sriov',
         'allocation': {root: {'VCPU': 2}, pf0: {'CUSTOM_PCI_8086_1520': 1}},
         'free': {'CUSTOM_PCI_8086_1520': 1, 'VCPU': 32}},
        {'root_uuid': root, 'host': 'sriov',
         'allocation': {root: {'VCPU': 2}, pf1: {'CUSTOM_PCI_8086_1520': 1}},
         'free': {'CUSTOM_PCI_8086_1520': 2, 'VCPU': 32}}]
    # Both PFs entirely free: the tie goes to the older provider.  The plain
    # host has no such device.
    assert pf0 in cands[0]['allocation']
    assert plain not in {c['root_uuid'] for c in cands}
    assert len(mgr.get_allocation_candidates(CTX, resources=req,
                                             limit=1)) == 1

    # Using PF0's only VF leaves PF1 as the one candidate; the plain host
    # still answers a request without the device.
    mgr.report_allocations(CTX, host='sriov', root_uuid=root,
                           generation=gens[root], full=True, allocations={
                               new_uuid(): consumer({
                                   root: {'VCPU': 1},
                                   pf0: {'CUSTOM_PCI_8086_1520': 1}})})
    cands = mgr.get_allocation_candidates(CTX, resources=req)
    assert [c['allocation'] for c in cands] == [
        {root: {'VCPU': 2}, pf1: {'CUSTOM_PCI_8086_1520': 1}}]
    assert {c['root_uuid'] for c in mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 2})} == {plain, root}
    assert mgr.get_allocation_candidates(
        CTX, resources={'VCPU': 2, 'CUSTOM_PCI_8086_1520': 3}) == []


def test_child_moved_to_another_tree_is_found_there(mgr):
    """A provider re-parented under another root of the host takes its
    inventory along (inventories.root_provider_id follows)."""
    a, b, pf = new_uuid(), new_uuid(), new_uuid()
    gens = mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(a, 'node-a'), compute_node(b, 'node-b'),
        _pci_child(pf, a, 'pf', 1)])
    req = {'VCPU': 1, 'CUSTOM_PCI_8086_1520': 1}
    assert [c['root_uuid'] for c in mgr.get_allocation_candidates(
        CTX, resources=req)] == [a]
    mgr.report_provider_tree(CTX, host='h1', providers=[
        compute_node(a, 'node-a', generation=gens[a]),
        compute_node(b, 'node-b', generation=gens[b]),
        _pci_child(pf, b, 'pf', 1, generation=gens[pf])])
    assert [c['root_uuid'] for c in mgr.get_allocation_candidates(
        CTX, resources=req)] == [b]


def test_same_shape_of_request_with_other_values(mgr, three_hosts):
    # The statement is built once per shape (classes, how many required
    # traits, forbidden or member_of or not, limited or not); the amounts,
    # trait names, aggregates and limit are parameters, never the values of
    # the first request of that shape.
    for name, trait in (('h1', 'CUSTOM_SSD'), ('h3', 'CUSTOM_NVME')):
        root, gen = three_hosts[name]
        mgr.set_traits(CTX, uuid=root, traits=[trait], generation=gen)
    agg = new_uuid()
    root, gen = three_hosts['h2']
    mgr.set_aggregates(CTX, uuid=root, aggregates=[agg], generation=gen)

    def hosts(**kwargs):
        return _hosts(mgr.get_allocation_candidates(CTX, **kwargs))
    for _ in range(2):
        assert hosts(resources={'VCPU': 4}) == ['h2', 'h3', 'h1']
        assert hosts(resources={'VCPU': 8}) == ['h2', 'h3']
        assert hosts(resources={'VCPU': 4}, required=['CUSTOM_SSD']) == ['h1']
        assert hosts(resources={'VCPU': 4},
                     required=['CUSTOM_NVME']) == ['h3']
        assert hosts(resources={'VCPU': 4},
                     forbidden=['CUSTOM_SSD']) == ['h2', 'h3']
        assert hosts(resources={'VCPU': 4},
                     forbidden=['CUSTOM_NVME']) == ['h2', 'h1']
        assert hosts(resources={'VCPU': 4}, member_of=[agg]) == ['h2']
        assert hosts(resources={'VCPU': 4}, member_of=[new_uuid()]) == []
        assert hosts(resources={'VCPU': 4}, limit=1) == ['h2']
        assert hosts(resources={'VCPU': 4}, limit=2) == ['h2', 'h3']


@pytest.mark.parametrize('width', range(1, 7))
def test_free_amounts_of_a_row_whatever_the_number_of_classes(width):
    classes = tuple(f'CUSTOM_C{i}' for i in range(width))
    row = ('uuid', 'host', *range(10, 10 + width), *[None] * width)
    assert query_ops._free_of(classes)(row) == {
        rc: 10 + i for i, rc in enumerate(classes)}
