"""Moves at the edges the ledger closes (issue 14, items 9-11): one active
move per instance, the source of a cross-host move that finished elsewhere,
and a bounded memory of ended migrations."""

import pytest

from nova_rt import exception
from nova_rt.compute import ledger as ledger_mod
from tests.unit.compute import helpers as h
from tests.unit.compute.helpers import FLAVOR_1, FLAVOR_2


@pytest.fixture
def rt():
    return h.make_tracker()


# -- item 9: no acknowledged claim that holds nothing ---------------------------

def test_a_second_active_move_of_an_instance_is_refused_and_names_the_first(rt):
    inst = h.running_instance(rt)
    first = h.migration(inst, FLAVOR_1)
    rt.resize_claim(instance=inst, migration=first)
    before = rt.get_host_state()
    second = h.migration(inst, FLAVOR_2)
    with pytest.raises(exception.ClaimConflict) as err:
        rt.resize_claim(instance=inst, migration=second)
    assert first['uuid'] in str(err.value)
    after = rt.get_host_state()
    assert (after['vcpus_used'], after['migrations']) == \
        (before['vcpus_used'], before['migrations'])
    # The same migration repeated is the same claim, not a conflict.
    assert rt.resize_claim(instance=inst, migration=first)['migration_uuid'] \
        == first['uuid']
    # Once the conductor aborts the first, the second fits.
    rt.abort_move_claim(migration_uuid=first['uuid'])
    rt.resize_claim(instance=inst, migration=second)
    assert h.used(rt) == (1 + 2, 128 + 256, 1 + 5)


def test_a_move_after_one_in_error_supersedes_it(rt):
    inst = h.running_instance(rt)
    failed = h.migration(inst, FLAVOR_2, source='src')
    rt.resize_claim(instance=inst, migration=failed)
    rt.update_migration(migration_uuid=failed['uuid'], status='error')
    # Evacuating the instance after a failed resize still works.
    evac = h.migration(inst, inst['flavor'], source='src',
                       migration_type='evacuation')
    rt.rebuild_claim(instance=inst, migration=evac)
    state = rt.get_host_state()
    assert set(state['migrations']) == {failed['uuid'], evac['uuid']}
    _, view = rt.placement_view()
    assert failed['uuid'] not in view['allocations']
    assert view['allocations'][evac['uuid']]['resources']['VCPU'] == 1


# -- item 11: the source of a cross-host move ----------------------------------

def _departed(rt):
    inst = h.running_instance(rt, FLAVOR_2)
    mig = h.migration(inst, FLAVOR_1, source=h.HOST, dest='dest-host',
                      migration_type='resize', status='finished')
    rt.update_migration(migration_uuid=mig['uuid'], status='finished',
                        migration=mig)
    return inst, mig


def test_the_source_hears_finished_and_counts_only_the_old_flavor(rt):
    inst, mig = _departed(rt)
    state = rt.get_host_state()
    # As Nova: the instance left (running_vms, instances), the outbound
    # migration holds the old flavor under its own consumer.
    assert state['running_vms'] == 0 and state['instances'] == []
    assert state['migrations'] == [mig['uuid']]
    assert h.used(rt) == (2, 256, 5)
    _, view = rt.placement_view()
    assert list(view['allocations']) == [mig['uuid']]
    # Heard again: nothing changes.
    rt.update_migration(migration_uuid=mig['uuid'], status='finished',
                        migration=mig)
    assert rt.get_host_state()['migrations'] == [mig['uuid']]


def test_confirm_at_the_source_frees_the_old_flavor(rt):
    _, mig = _departed(rt)
    rt.drop_move_claim_at_source(migration=mig)
    assert h.used(rt) == (0, 0, 0)
    assert rt.get_host_state()['migrations'] == []
    rt.drop_move_claim_at_source(migration=mig)      # idempotent
    assert h.used(rt) == (0, 0, 0)


@pytest.mark.parametrize('undo', ['revert', 'abort'])
def test_revert_or_abort_at_the_source_brings_the_instance_back(rt, undo):
    inst, mig = _departed(rt)
    if undo == 'revert':
        rt.update_migration(migration_uuid=mig['uuid'], status='reverted')
    else:
        rt.abort_move_claim(migration_uuid=mig['uuid'])
    state = rt.get_host_state()
    assert state['instances'] == [inst['uuid']] and state['running_vms'] == 1
    assert state['migrations'] == [] and h.used(rt) == (2, 256, 5)
    _, view = rt.placement_view()
    assert list(view['allocations']) == [inst['uuid']]


def test_an_untracked_migration_without_its_payload_is_still_not_found(rt):
    h.running_instance(rt)
    with pytest.raises(exception.MigrationNotFound):
        rt.update_migration(migration_uuid=h.migration(
            h.instance(), source=h.HOST, dest='d')['uuid'], status='finished')


def test_the_source_of_an_instance_it_does_not_track_knows_no_migration(rt):
    stranger = h.instance(FLAVOR_1)
    mig = h.migration(stranger, source=h.HOST, dest='dest-host')
    with pytest.raises(exception.MigrationNotFound):
        rt.update_migration(migration_uuid=mig['uuid'], status='finished',
                            migration=mig)
    assert h.used(rt) == (0, 0, 0)


def test_the_departed_state_survives_a_restart(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    rt = h.make_tracker(path)
    inst, mig = _departed(rt)
    rt.store.close()
    again = h.make_tracker(path)
    state = again.get_host_state()
    assert state['instances'] == [] and state['migrations'] == [mig['uuid']]
    again.update_migration(migration_uuid=mig['uuid'], status='reverted')
    assert again.get_host_state()['instances'] == [inst['uuid']]


# -- item 10: ended migrations are bounded ----------------------------------------

def test_ended_migrations_are_bounded_by_count_and_age(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_mod, 'ENDED_MAX', 20)
    monkeypatch.setattr('nova_rt.compute.tracker._PRUNE_SLACK', 5)
    now = [1_000_000.0]
    path = str(tmp_path / 'compute.sqlite')
    rt = h.make_tracker(path)
    rt.clock = lambda: now[0]
    ended = []
    for _ in range(60):
        inst = h.instance(FLAVOR_1)
        mig = h.migration(inst, FLAVOR_1, source='src')
        rt.resize_claim(instance=inst, migration=mig)
        rt.abort_move_claim(migration_uuid=mig['uuid'])
        ended.append(mig['uuid'])
        now[0] += 1
    remembered = [m['migration']['uuid'] for m in rt.store.load()[1]]
    assert len(remembered) <= 20 + 5
    # The newest are the ones remembered: repeating their end is harmless
    # and a new claim under their uuid is still a conflict.
    assert set(ended[-20:]) <= set(remembered)
    rt.abort_move_claim(migration_uuid=ended[-1])
    # Past the age bound, an audit forgets them all.
    now[0] += ledger_mod.ENDED_TTL + 1
    rt.run_audit()
    assert rt.store.load()[1] == []
