"""What an audit does under the tracker's lock, and what it does not redo."""

import uuid

from nova_rt.compute import reconcile
from nova_rt.compute import tracker as tracker_mod
from nova_rt.compute import view as view_mod
from tests.unit.compute import helpers as h
from tests.unit.compute.recovery_fakes import domain


def _tracker_with_domains(count=3):
    doms = [domain(str(uuid.uuid4()), vcpus=1, memory_mb=64)
            for _ in range(count)]
    rt = h.make_tracker(host=h.host_info(vcpus=16, memory_mb=8192),
                        domains=doms)
    return rt, doms


def _claiming_during_judgements(monkeypatch, rt, doms, claims: int):
    """Each of the first ``claims`` judgements claims the instance of one of
    ``doms`` while it runs (a call served during the audit), as a
    conductor's claim arriving then would."""
    real = reconcile.reconcile
    calls = []

    def judging(ledger, *args, **kwargs):
        if len(calls) < claims:
            dom = doms[len(calls)]
            rt.instance_claim(instance=h.instance(uuid_=dom.uuid))
        calls.append(ledger)
        return real(ledger, *args, **kwargs)

    monkeypatch.setattr(reconcile, 'reconcile', judging)
    return calls


def test_a_claim_during_the_judgement_is_judged_again_without_the_lock(
        monkeypatch):
    rt, doms = _tracker_with_domains()
    assert len(rt.get_host_state()['unmanaged_domains']) == 3
    calls = _claiming_during_judgements(monkeypatch, rt, doms, claims=1)
    rt.run_audit()
    assert len(calls) == 2 and calls[0] is not calls[1]
    assert rt.reconciled_under_lock == 0
    # The claimed instance's domain is explained, the other two are not.
    unmanaged = {d['uuid'] for d in rt.get_host_state()['unmanaged_domains']}
    assert unmanaged == {doms[1].uuid, doms[2].uuid}
    assert h.used(rt)[0] == 1 + 2        # the claim + the two unmanaged


def test_a_ledger_that_keeps_moving_is_judged_under_the_lock(monkeypatch):
    rt, doms = _tracker_with_domains()
    attempts = tracker_mod._JUDGE_ATTEMPTS
    calls = _claiming_during_judgements(monkeypatch, rt, doms,
                                        claims=attempts)
    rt.run_audit()
    assert len(calls) == attempts + 1
    assert rt.reconciled_under_lock == 1
    # Judged under the lock on the ledger as it is: every domain explained.
    assert rt.get_host_state()['unmanaged_domains'] == []
    assert h.used(rt)[0] == 3


def test_the_placement_view_is_built_once_per_change(monkeypatch):
    rt, _ = _tracker_with_domains(0)
    built = []
    real = view_mod.placement_view

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(view_mod, 'placement_view', counting)
    first = rt.placement_view()
    rt.run_audit()                   # nothing changed
    assert rt.placement_view() is first
    assert len(built) == 1
    rt.instance_claim(instance=h.instance())
    version, view = rt.placement_view()
    assert len(built) == 2 and version > first[0]
    assert len(view['allocations']) == 1
