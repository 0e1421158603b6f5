"""ledger.back_to: the change that undoes writes whose commit failed."""

import dataclasses

from nova_rt.compute import ledger as ledger_mod
from tests.unit.compute import helpers as h


def records():
    """Real records: three instances (one moving) and the move."""
    rt = h.make_tracker(host=h.host_info(vcpus=16, memory_mb=8192,
                                         disk_gb=100))
    insts = [h.instance(h.FLAVOR_1) for _ in range(3)]
    for inst in insts:
        rt.instance_claim(instance=inst)
    rt.update_instance(instance_uuid=insts[2]['uuid'], vm_state='active')
    rt.resize_claim(instance=insts[2], migration=h.migration(insts[2]))
    ledger = rt._ledger
    return ledger, [ledger.instances[i['uuid']] for i in insts], \
        list(ledger.migrations.values())


def test_back_to_undoes_puts_drops_and_moves_in_any_mix():
    ledger, (a, b, c), (move,) = records()
    durable = ledger_mod.Ledger.from_records([a, b], [move])
    changed_b = dataclasses.replace(b, instance=dataclasses.replace(
        b.instance, vm_state='active'))
    ended = dataclasses.replace(move, ended_at=123.0)
    changes = [ledger_mod.Change(drop_instances=(a.uuid,)),
               ledger_mod.Change(put_instances=(c,)),
               ledger_mod.Change(put_instances=(changed_b,)),
               ledger_mod.Change(put_migrations=(ended,)),
               ledger_mod.Change(put_instances=(a,)),      # back, then gone
               ledger_mod.Change(drop_instances=(a.uuid,),
                                 drop_migrations=(move.uuid,))]
    current = durable
    for change in changes:
        current = current.apply(change)
    assert set(current.instances) == {b.uuid, c.uuid}
    back = ledger_mod.back_to(durable, changes)
    restored = current.apply(back)
    assert dict(restored.instances) == dict(durable.instances)
    assert dict(restored.migrations) == dict(durable.migrations)


def test_back_to_nothing_changed_is_no_change():
    ledger, _, _ = records()
    assert not ledger_mod.back_to(ledger, [])
    assert not ledger_mod.back_to(ledger, [ledger_mod.Change(result=1)])


def test_back_to_moves_usage_back_as_a_rebuild_counts_it(tmp_path):
    # Through the tracker: a failed group leaves usage equal to a count
    # from the durable records (the same check as a restart).
    rt = h.make_tracker(str(tmp_path / 'compute.sqlite'),
                        host=h.host_info(vcpus=16, memory_mb=8192,
                                         disk_gb=100))
    kept = h.running_instance(rt)
    rt.store._db.execute('PRAGMA query_only=ON')
    for call in (lambda: rt.instance_claim(instance=h.instance(h.FLAVOR_2)),
                 lambda: rt.abort_instance_claim(instance_uuid=kept['uuid']),
                 lambda: rt.resize_claim(instance=kept,
                                         migration=h.migration(kept))):
        try:
            call()
        except Exception as exc:
            assert 'writable' in str(exc)
        else:
            raise AssertionError('a write went through a read-only store')
    held = dict(rt._usage.resources)
    rt._usage.rebuild(rt._ledger)
    assert dict(rt._usage.resources) == held
    assert h.used(rt) == (1, 128, 1)
