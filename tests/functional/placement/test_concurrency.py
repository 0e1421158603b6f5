"""Writers racing on one provider, in one process and across several
nova-rt-placement processes: every acknowledged write is in the database,
no usage exceeds capacity, every loser got a conflict."""

import concurrent.futures
import threading

import pytest

from nova_rt import exception
from tests.functional.placement.fixtures import running_placement
from tests.functional.placement.helpers import CTX, add_host, consumer, new_uuid


def _exc_name(error):
    # In-process: the class; over RPC: RemoteError.exc_type.
    return getattr(error, 'exc_type', None) or type(error).__name__


def test_same_generation_exactly_one_wins(mgr):
    root, gen = add_host(mgr)
    writers = 8
    barrier = threading.Barrier(writers)
    consumers = [new_uuid() for _ in range(writers)]

    def write(i):
        barrier.wait()
        try:
            mgr.report_allocations(
                CTX, host='h1', root_uuid=root, generation=gen, full=False,
                allocations={consumers[i]: consumer({root: {'VCPU': 1}})})
            return 'ok'
        except exception.ResourceProviderGenerationConflict:
            return 'conflict'

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        results = list(pool.map(write, range(writers)))
    assert results.count('ok') == 1
    assert results.count('conflict') == writers - 1
    winner = consumers[results.index('ok')]
    assert mgr.get_usages(CTX, uuid=root)['VCPU'] == 1
    assert mgr.get_allocations(CTX, consumer_uuid=winner) == {root: {'VCPU': 1}}
    assert mgr.get_resource_provider(CTX, uuid=root)['generation'] == gen + 1


def race(api, root, writers, per_writer, host='h1'):
    """Each writer adds consumers one at a time, refreshing the generation
    after a conflict; returns (acknowledged, outcome counts)."""
    acked, counts, lock = [], {}, threading.Lock()
    # Everyone's first write names the same generation: a guaranteed race.
    first = threading.Barrier(writers)

    def note(name):
        with lock:
            counts[name] = counts.get(name, 0) + 1

    def writer(_):
        waited = False
        for _n in range(per_writer):
            c = new_uuid()
            while True:
                gen = api.get_resource_provider(CTX, uuid=root)['generation']
                if not waited:
                    waited = True
                    first.wait(timeout=60)
                try:
                    api.report_allocations(
                        CTX, host=host, root_uuid=root, generation=gen,
                        full=False,
                        allocations={c: consumer({root: {'VCPU': 1}})})
                except Exception as error:
                    name = _exc_name(error)
                    note(name)
                    if name == 'ResourceProviderGenerationConflict':
                        continue
                    if name == 'AllocationCapacityExceeded':
                        return
                    raise
                note('ok')
                with lock:
                    acked.append(c)
                break

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    return acked, counts


def _check(api, root, acked, counts, capacity):
    usage = api.get_usages(CTX, uuid=root)['VCPU']
    assert usage == len(acked) == counts['ok']
    assert usage <= capacity
    for c in acked:
        assert api.get_allocations(CTX, consumer_uuid=c) == {root: {'VCPU': 1}}
    assert set(counts) <= {'ok', 'ResourceProviderGenerationConflict',
                           'AllocationCapacityExceeded'}


def test_many_writers_in_process(mgr):
    root, _ = add_host(mgr, vcpus=6)             # capacity 24
    acked, counts = race(mgr, root, writers=8, per_writer=4)
    _check(mgr, root, acked, counts, 24)
    assert len(acked) == 24
    assert counts.get('ResourceProviderGenerationConflict', 0) > 0


@pytest.mark.parametrize('backend', ['sqlite', 'postgresql', 'mysql'])
def test_several_processes_over_rabbitmq(backend, request, tmp_path):
    url = (f'sqlite:///{tmp_path}/multi.sqlite' if backend == 'sqlite'
           else request.getfixturevalue(
               {'postgresql': 'pg_url', 'mysql': 'mysql_url'}[backend]))
    with running_placement(url, str(tmp_path), processes=3,
                           extra_conf='debug = true') as placement:
        api = placement.api
        # The database may be shared by the session: a host of its own.
        root, host = new_uuid(), f'multi-{new_uuid()}'
        api.report_provider_tree(CTX, host=host, providers=[
            {'uuid': root, 'name': host, 'inventories': {
                'VCPU': {'total': 20, 'max_unit': 20}}}])
        acked, counts = race(api, root, writers=8, per_writer=3, host=host)
        _check(api, root, acked, counts, 20)
        assert len(acked) == 20
        assert counts.get('ResourceProviderGenerationConflict', 0) > 0
        served = [open(log).read().count(f'Allocations of host {host}')
                  for log in placement.logs]
        # Competing consumers: more than one process took writes.
        assert sum(1 for n in served if n) >= 2, served
        assert sum(served) == counts['ok']
