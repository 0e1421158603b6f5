"""SIGKILL a process that is making claims at random moments; after each
restart every acknowledged claim is there and nothing is half-applied."""

import os
import random
import signal
import subprocess
import sys
import time

from tests.unit.compute import helpers as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _run_child(path, start, kill_after, threads=None):
    extra = [str(threads)] if threads else []
    child = subprocess.Popen(
        [sys.executable, '-m', 'tests.functional.tracker.crash_child', path,
         str(start), *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    acks = []
    deadline = time.monotonic() + 60
    while len(acks) < kill_after and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acks.append(line.split()[1:])
    # Let it run on a little so that the kill lands mid-claim.
    time.sleep(random.uniform(0, 0.01))
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()      # ACKs written before the kill count too
    child.wait()
    acks.extend(line.split()[1:] for line in rest.splitlines() if line)
    return acks


def _check_consistent(rt):
    held = h.held_resources(rt)
    state = rt.get_host_state()
    assert state['vcpus_used'] == held.get('VCPU', 0)


def test_sigkill_loses_no_acknowledged_claim(tmp_path):
    rng = random.Random(int(os.environ.get('NOVA_RT_CRASH_SEED', '7')))
    random.seed(rng.random())
    path = str(tmp_path / 'compute.sqlite')
    told = {}          # instance uuid -> what the client was last told
    finished = set()
    start = 0
    history = []
    for round_ in range(6):
        acks = _run_child(path, start, kill_after=rng.randint(5, 60))
        assert acks, 'the child said nothing'
        for kind, uuid in acks:
            if kind == 'claim':
                told[uuid] = 'claimed'
            elif kind == 'abort':
                told[uuid] = 'aborted'
            elif kind == 'finish':
                finished.add(uuid)
        rt = h.make_tracker(path, host=h.host_info(vcpus=64, memory_mb=1 << 20,
                                                   disk_gb=1 << 20))
        state = rt.get_host_state()
        present = set(state['instances'])
        # The call in flight at the kill may have landed unacknowledged: an
        # abort of the last claimed instance (the child aborts every 5th).
        last = [u for k, u in acks if k in ('claim', 'abort')][-1]
        in_flight_abort = (told[last] == 'claimed'
                           and int(last.rsplit('-', 1)[1]) % 5 == 0)
        if in_flight_abort and last not in present:
            told[last] = 'aborted'
        history.append(acks[-4:])
        for uuid, status in told.items():
            if status == 'claimed':
                assert uuid in present, f'acknowledged claim {uuid} lost: {history}'
            else:
                assert uuid not in present, f'aborted {uuid} came back: {history}'
        # at most the one call in flight may have landed without an ACK
        assert len(present - {u for u, s in told.items() if s == 'claimed'}) <= 1
        stored = {m['migration']['uuid']: m for m in rt.store.load()[1]}
        for mig_uuid in finished:
            assert stored[mig_uuid]['finished'], mig_uuid
        _check_consistent(rt)
        rt.store.close()
        start = max(int(u.rsplit('-', 1)[1]) for u in told) + 1


def test_sigkill_amid_concurrent_claims_loses_no_acknowledged_one(tmp_path):
    """Eight threads claiming at once, so that claims share commits; the
    kill lands in the middle of a group: every claim acknowledged is there,
    every abort acknowledged is not, and at most the calls in flight (one
    per thread) landed without an acknowledgement."""
    threads = 8
    rng = random.Random(int(os.environ.get('NOVA_RT_CRASH_SEED', '7')))
    random.seed(rng.random())
    path = str(tmp_path / 'compute.sqlite')
    told = {}
    start = 0
    for round_ in range(4):
        acks = _run_child(path, start, rng.randint(20, 200), threads)
        assert acks, 'the child said nothing'
        for kind, uuid in acks:
            told[uuid] = 'claimed' if kind == 'claim' else 'aborted'
        rt = h.make_tracker(path, host=h.host_info(vcpus=64, memory_mb=1 << 20,
                                                   disk_gb=1 << 20))
        present = set(rt.get_host_state()['instances'])
        for uuid, status in told.items():
            if status == 'claimed':
                # An abort in flight at the kill may have landed.
                if uuid not in present:
                    assert int(uuid.rsplit('-', 1)[1]) % 5, \
                        f'acknowledged claim {uuid} lost'
                    told[uuid] = 'aborted'
            else:
                assert uuid not in present, f'aborted {uuid} came back'
        unacknowledged = present - {u for u, s in told.items()
                                    if s == 'claimed'}
        assert len(unacknowledged) <= threads
        # Durable now, if unacknowledged: the next rounds must keep them.
        told.update(dict.fromkeys(unacknowledged, 'claimed'))
        _check_consistent(rt)
        rt.store.close()
        start = max(int(u.rsplit('-', 1)[1]) for u in told) + 1
