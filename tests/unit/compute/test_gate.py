"""The audit gives way to the calls being served (``compute/gate.py``)."""

import threading
import time

from nova_rt.compute import gate as gate_mod
from nova_rt.compute import manager as manager_mod


def test_an_idle_gate_lets_the_audit_through_at_once():
    gate = gate_mod.CallGate(grace=0.002, max_wait=1.0)
    assert not gate.busy()
    assert gate.give_way() == 0.0


def test_the_audit_waits_for_the_call_and_its_grace():
    gate = gate_mod.CallGate(grace=0.05, max_wait=5.0)
    entered, leave = threading.Event(), threading.Event()

    def call():
        with gate.serving():
            entered.set()
            leave.wait()

    thread = threading.Thread(target=call)
    thread.start()
    entered.wait()
    assert gate.busy()
    timer = threading.Timer(0.1, leave.set)
    timer.start()
    waited = gate.give_way()
    thread.join()
    # The call's 0.1 s, then the grace for its reply: not the 5 s cap.
    assert 0.14 <= waited < 2.0
    assert not gate.busy()


def test_a_stream_of_calls_slows_the_audit_but_never_stops_it():
    gate = gate_mod.CallGate(grace=0.0, max_wait=0.05)
    with gate.serving():
        start = time.monotonic()
        waited = gate.give_way()
        assert 0.05 <= waited < 1.0
        assert time.monotonic() - start < 1.0


class _Tracker:
    def __init__(self, gate):
        self.gate = gate
        self.seen = []

    def get_host_state(self):
        self.seen.append(self.gate.busy())
        return {}


def test_served_calls_are_marked_and_the_audit_call_is_not():
    gate = gate_mod.CallGate(grace=0.0)
    tracker = _Tracker(gate)
    audits = []
    mgr = manager_mod.ComputeManager(
        tracker, run_audit=lambda: audits.append(gate.busy()) or {},
        gate=gate)
    mgr.get_host_state({})
    mgr.run_audit({})
    # The audit is no call to give way to: it would wait for itself.
    assert tracker.seen == [True] and audits == [False]
    assert not gate.busy()
