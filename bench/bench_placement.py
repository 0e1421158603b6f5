"""Benchmark of the placement service.

    .venv/bin/python bench/bench_placement.py [--backends sqlite,postgresql]
        [--providers 1000,10000] [--hosts 100] [--seconds 5] [--no-rpc]

Measures, on each backend:

- ``get_allocation_candidates`` for one resource request (VCPU, MEMORY_MB,
  DISK_GB, one required trait) over N providers (populated in bulk), p50/p95
  in milliseconds, in-process (manager: validation + one transaction) and,
  unless ``--no-rpc``, over RabbitMQ through one ``nova-rt-placement``.
- report throughput: simulated hosts sending provider-tree and full
  allocation reports (each one changes something), reports per second
  in-process (4 threads) and over RPC to one placement process (8 threads).

PostgreSQL runs on a fresh ``nova_rt_test_<random>`` database on
127.0.0.1:5432, dropped afterwards.  Targets (issue 6): candidates over 10,000
providers under 50 ms p50 on PostgreSQL; at least 500 reports/s from one
placement process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402

from nova_rt.placement import db  # noqa: E402
from nova_rt.placement import manager  # noqa: E402
from nova_rt.placement import models  # noqa: E402
from tests.functional.placement import fixtures  # noqa: E402

CTX = {'request_id': 'req-bench'}
REQUEST = {'resources': {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20},
           'required': ['COMPUTE_NODE']}


class _Conf:
    class placement:
        heartbeat_timeout = 600
        candidate_order = 'spread'


def populate(url: str, n: int) -> None:
    """n compute nodes with inventories, traits and 0-3 instances each."""
    engine = db.get_engine(url)
    rng = random.Random(n)
    now = fixtures_now()
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            if table.name == 'resource_providers':
                conn.execute(table.update().values(parent_provider_id=None,
                                                   root_provider_id=None))
            conn.execute(table.delete())
        if not n:
            return
        rps = [{'id': i + 1, 'uuid': str(uuid.uuid4()), 'name': f'bench-{i}',
                'host': f'bench-{i}', 'generation': 1,
                'parent_provider_id': None, 'root_provider_id': i + 1,
                'last_heartbeat': now} for i in range(n)]
        conn.execute(sa.insert(models.ResourceProvider), rps)
        invs, consumers, allocs = [], [], []
        for rp in rps:
            used = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}
            for _ in range(rng.randint(0, 3)):
                cid = len(consumers) + 1
                consumers.append({'id': cid, 'uuid': str(uuid.uuid4()),
                                  'project_id': 'p', 'user_id': 'u',
                                  'generation': 1})
                for rc, amount in (('VCPU', 4), ('MEMORY_MB', 8192),
                                   ('DISK_GB', 40)):
                    used[rc] += amount
                    allocs.append({'resource_provider_id': rp['id'],
                                   'consumer_id': cid, 'resource_class': rc,
                                   'used': amount})
            for rc, total, ratio in (('VCPU', 32, 4.0),
                                     ('MEMORY_MB', 131072, 1.0),
                                     ('DISK_GB', 1000, 1.0)):
                invs.append({'resource_provider_id': rp['id'],
                             'resource_class': rc, 'total': total,
                             'reserved': 0, 'min_unit': 1, 'max_unit': total,
                             'step_size': 1, 'allocation_ratio': ratio,
                             'capacity': int(total * ratio),
                             'used': used[rc]})
        conn.execute(sa.insert(models.Inventory), invs)
        if consumers:
            conn.execute(sa.insert(models.Consumer), consumers)
            conn.execute(sa.insert(models.Allocation), allocs)
        conn.execute(sa.insert(models.Trait), [{'id': 1, 'name': 'COMPUTE_NODE'}])
        conn.execute(sa.insert(models.ProviderTrait), [
            {'resource_provider_id': rp['id'], 'trait_id': 1} for rp in rps])
    if engine.dialect.name == 'postgresql':
        with engine.connect() as conn:
            conn.execute(sa.text(
                "SELECT setval('resource_providers_id_seq', :n)"), {'n': n})
            conn.execute(sa.text(
                "SELECT setval('consumers_id_seq', :n)"),
                {'n': max(len(consumers), 1)})
            conn.execute(sa.text("SELECT setval('traits_id_seq', 1)"))
            conn.commit()
        with engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            conn.execute(sa.text('ANALYZE'))


def fixtures_now():
    from nova_rt.placement import common
    return common.utcnow()


def timed(func, runs: int) -> tuple[float, float, int]:
    samples, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = len(func())
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return (statistics.median(samples),
            samples[int(len(samples) * 0.95) - 1], count)


def bench_candidates(label, api, runs=30):
    for limit in (None, 1000):
        p50, p95, count = timed(lambda: api.get_allocation_candidates(
            CTX, limit=limit, **REQUEST), runs)
        print(f'  candidates {label:10s} limit={str(limit):5s} '
              f'p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({count} candidates)')


def add_hosts(api, count: int) -> list:
    hosts = []
    for i in range(count):
        host, root = f'sim-{uuid.uuid4().hex[:8]}', str(uuid.uuid4())
        gens = api.report_provider_tree(CTX, host=host, providers=[{
            'uuid': root, 'name': host, 'generation': None,
            'inventories': _inventory(0)}])
        hosts.append({'host': host, 'root': root, 'gen': gens[root],
                      'consumers': [str(uuid.uuid4()) for _ in range(10)],
                      'lock': threading.Lock(), 'n': 0})
    return hosts


def _inventory(reserved):
    return {'VCPU': {'total': 64, 'allocation_ratio': 4.0},
            'MEMORY_MB': {'total': 262144, 'reserved': 512 + reserved},
            'DISK_GB': {'total': 2000}}


def one_report(api, sim) -> None:
    """A tree report or a full allocation report that changes something."""
    with sim['lock']:
        sim['n'] += 1
        n = sim['n']
        if n % 2:
            gens = api.report_provider_tree(CTX, host=sim['host'], providers=[{
                'uuid': sim['root'], 'name': sim['host'],
                'generation': sim['gen'], 'inventories': _inventory(n % 7)}])
        else:
            sim['consumers'][n % 10] = str(uuid.uuid4())
            gens = api.report_allocations(
                CTX, host=sim['host'], root_uuid=sim['root'],
                generation=sim['gen'], full=True, allocations={
                    c: {'project_id': 'p', 'user_id': 'u', 'resources': {
                        sim['root']: {'VCPU': 2, 'MEMORY_MB': 2048,
                                      'DISK_GB': 20}}}
                    for c in sim['consumers']})
        sim['gen'] = gens[sim['root']]


def _cpu_seconds(pids) -> float:
    """User+system CPU of these processes and their children (/proc)."""
    ticks = os.sysconf('SC_CLK_TCK')
    stats = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            # fields: state, ppid, ..., utime (11), stime (12)
            stats[int(entry)] = (int(fields[1]),
                                 (int(fields[11]) + int(fields[12])) / ticks)
    wanted, total = set(pids), 0.0
    for pid, (ppid, cpu) in stats.items():
        if pid in wanted or ppid in wanted:
            total += cpu
    return total


def bench_reports(label, api, hosts: int, seconds: float, threads: int,
                  server_pids=()):
    sims = add_hosts(api, hosts)
    stop = time.monotonic() + seconds
    cpu0 = (_cpu_seconds(server_pids) if server_pids
            else time.process_time())
    done = [0] * threads

    def worker(i):
        rng = random.Random(i)
        while time.monotonic() < stop:
            one_report(api, rng.choice(sims))
            done[i] += 1

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - start
    cpu = (_cpu_seconds(server_pids) if server_pids
           else time.process_time()) - cpu0
    # CPU per report of the serving process: what one idle core would do,
    # whatever else the machine runs meanwhile.
    print(f'  reports    {label:10s} {sum(done) / elapsed:7.0f} reports/s '
          f'({sum(done)} in {elapsed:.1f} s, {threads} threads, '
          f'{hosts} hosts); {cpu / sum(done) * 1000:.2f} ms CPU per report '
          f'in the {"placement process" if server_pids else "bench process"}')


def run_backend(backend, url, args, workdir):
    print(f'== {backend}')
    db.sync(url)
    mgr = manager.PlacementManager(db.get_engine(url), _Conf)
    for n in args.providers:
        t0 = time.perf_counter()
        populate(url, n)
        print(f' {n} providers (populated in {time.perf_counter() - t0:.1f} s)')
        bench_candidates('in-process', mgr)
        if args.rpc:
            with fixtures.running_placement(url, workdir) as placement:
                bench_candidates('rpc', placement.api)
    populate(url, 0)
    bench_reports('in-process', mgr, args.hosts, args.seconds, 4)
    if args.rpc:
        populate(url, 0)
        with fixtures.running_placement(url, workdir) as placement:
            bench_reports('rpc', placement.api, args.hosts, args.seconds, 8,
                          [p.pid for p in placement.processes])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backends', default='sqlite,postgresql')
    parser.add_argument('--providers', default='1000,10000',
                        type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--seconds', type=float, default=5)
    parser.add_argument('--no-rpc', dest='rpc', action='store_false')
    args = parser.parse_args(argv)
    print(f'{os.cpu_count()} CPUs; request {REQUEST}')
    with tempfile.TemporaryDirectory() as workdir:
        for backend in args.backends.split(','):
            if backend == 'sqlite':
                run_backend(backend, f'sqlite:///{workdir}/bench.sqlite', args,
                            workdir)
            else:
                url = fixtures.fresh_pg_database()
                try:
                    run_backend(backend, url, args, workdir)
                finally:
                    fixtures.drop_pg_database(url)
            db.dispose_engines()


if __name__ == '__main__':
    main()
