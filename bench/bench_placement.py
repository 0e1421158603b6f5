"""Benchmark of the placement service.

    .venv/bin/python bench/bench_placement.py [--backends sqlite,postgresql]
        [--providers 1000,10000] [--hosts 100] [--seconds 5] [--no-rpc]

Measures, on each backend:

- ``get_allocation_candidates`` for one resource request (VCPU, MEMORY_MB,
  DISK_GB, one required trait) over N providers (populated in bulk), without
  a limit and with ``limit`` 1000 and 100 (the scheduler passes one), p50/p99
  in milliseconds, in-process (manager: validation + one transaction, with
  the start-up objects frozen as the service does) and, unless ``--no-rpc``,
  over RabbitMQ through one ``nova-rt-placement``.
- report throughput: concurrent simulated hosts (threads) sending
  provider-tree and full allocation reports, each of which changes something
  ("changed"), then the periodic full resync where nothing changed
  ("unchanged"): reports per second, p50/p99 latency, and the CPU per report
  of the serving process and of the PostgreSQL server, in-process (4 threads)
  and over RPC to one placement process (8 threads).  Over RPC a trivial
  call (``get_allocations`` of an unknown consumer) is measured too: the
  floor that oslo.messaging sets whatever the database does.

The machine (CPUs, load average before and after) is printed first: other
work on it moves every figure.

PostgreSQL runs on a fresh ``nova_rt_test_<random>`` database on
127.0.0.1:5432, dropped afterwards.  Targets (issue 6): candidates over 10,000
providers under 50 ms p50 on PostgreSQL; at least 500 reports/s from one
placement process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
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

from nova_rt import gcutil  # noqa: E402
from nova_rt.placement import db  # noqa: E402
from nova_rt.placement import manager  # noqa: E402
from nova_rt.placement import models  # noqa: E402
from tests.functional.placement import fixtures  # noqa: E402
from tests.functional.placement import helpers  # noqa: E402

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
        helpers.empty_tables(conn)
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
                             'root_provider_id': rp['id'],
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


def percentile(sorted_samples: list, fraction: float) -> float:
    index = min(len(sorted_samples) - 1, int(len(sorted_samples) * fraction))
    return sorted_samples[index]


def timed(func, runs: int) -> tuple[float, float, int]:
    samples, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = len(func())
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), percentile(samples, 0.99), count


def bench_candidates(label, api, runs=40):
    for limit in (None, 1000, 100):
        p50, p99, count = timed(lambda: api.get_allocation_candidates(
            CTX, limit=limit, **REQUEST), runs)
        print(f'  candidates {label:10s} limit={str(limit):5s} '
              f'p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({count} candidates)')


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


def one_report(api, sim, change: bool = True) -> None:
    """A tree report or a full allocation report; ``change``: each one
    changes something, else the same as last time (the periodic resync)."""
    with sim['lock']:
        sim['n'] += 1
        n = sim['n']
        if n % 2:
            reserved = n % 7 if change else 0
            gens = api.report_provider_tree(CTX, host=sim['host'], providers=[{
                'uuid': sim['root'], 'name': sim['host'],
                'generation': sim['gen'], 'inventories': _inventory(reserved)}])
        else:
            if change:
                sim['consumers'][n % 10] = str(uuid.uuid4())
            gens = api.report_allocations(
                CTX, host=sim['host'], root_uuid=sim['root'],
                generation=sim['gen'], full=True, allocations={
                    c: {'project_id': 'p', 'user_id': 'u', 'resources': {
                        sim['root']: {'VCPU': 2, 'MEMORY_MB': 2048,
                                      'DISK_GB': 20}}}
                    for c in sim['consumers']})
        sim['gen'] = gens[sim['root']]


def no_op(api, _sim) -> None:
    api.get_allocations(CTX, consumer_uuid=str(uuid.uuid4()))


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


def postgres_server_pid(url):
    """The postmaster's pid (its children are the backends), or None."""
    engine = db.get_engine(url)
    if engine.dialect.name != 'postgresql':
        return None
    with engine.connect() as conn:
        backend = conn.execute(sa.text('SELECT pg_backend_pid()')).scalar()
    try:
        with open(f'/proc/{backend}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except OSError:
        return None


def bench_reports(label, api, sims, seconds: float, threads: int,
                  server_pids=(), pg_pid=None, kind='changed'):
    report = {'changed': one_report, 'unchanged': functools.partial(
        one_report, change=False), 'trivial call': no_op}[kind]
    if kind == 'unchanged':
        for sim in sims:
            # Once with nothing changed from the last report of each kind.
            report(api, sim)
            report(api, sim)
    stop = time.monotonic() + seconds
    cpu0 = (_cpu_seconds(server_pids) if server_pids
            else time.process_time())
    pg0 = _cpu_seconds([pg_pid]) if pg_pid else 0.0
    latencies = [[] for _ in range(threads)]

    def worker(i):
        rng = random.Random(i)
        while time.monotonic() < stop:
            start = time.perf_counter()
            report(api, rng.choice(sims))
            latencies[i].append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - start
    cpu = (_cpu_seconds(server_pids) if server_pids
           else time.process_time()) - cpu0
    pg_cpu = _cpu_seconds([pg_pid]) - pg0 if pg_pid else 0.0
    samples = sorted(x for per_thread in latencies for x in per_thread)
    done = len(samples)
    # CPU per report of the serving process: what one idle core would do,
    # whatever else the machine runs meanwhile.  In-process the bench's own
    # client side (building the payloads) is in that figure too.
    where = 'placement process' if server_pids else 'bench process'
    pg = f', PostgreSQL {pg_cpu / done * 1000:.2f} ms' if pg_pid else ''
    print(f'  reports    {label:10s} {kind:12s} {done / elapsed:6.0f}/s '
          f'p50 {statistics.median(samples):6.1f} ms '
          f'p99 {percentile(samples, 0.99):6.1f} ms ({done} in '
          f'{elapsed:.1f} s, {threads} threads, {len(sims)} hosts); CPU per '
          f'report: {where} {cpu / done * 1000:.2f} ms{pg}')


def run_backend(backend, url, args, workdir):
    print(f'== {backend}')
    db.sync(url)
    mgr = manager.PlacementManager(db.get_engine(url), _Conf)
    for n in args.providers:
        t0 = time.perf_counter()
        populate(url, n)
        print(f' {n} providers (populated in {time.perf_counter() - t0:.1f} s)')
        # As nova-rt-placement does once started (nova_rt/gcutil.py).
        gcutil.freeze_startup_objects()
        bench_candidates('in-process', mgr)
        if args.rpc:
            with fixtures.running_placement(url, workdir) as placement:
                bench_candidates('rpc', placement.api)
    pg_pid = postgres_server_pid(url)
    populate(url, 0)
    sims = add_hosts(mgr, args.hosts)
    for kind in ('changed', 'unchanged'):
        bench_reports('in-process', mgr, sims, args.seconds, 4, pg_pid=pg_pid,
                      kind=kind)
    if args.rpc:
        populate(url, 0)
        with fixtures.running_placement(url, workdir,
                                        extra_conf=args.extra_conf) as placement:
            sims = add_hosts(placement.api, args.hosts)
            for kind in ('changed', 'unchanged', 'trivial call'):
                bench_reports('rpc', placement.api, sims, args.seconds, 8,
                              [p.pid for p in placement.processes],
                              pg_pid=pg_pid, kind=kind)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backends', default='sqlite,postgresql')
    parser.add_argument('--providers', default='1000,10000',
                        type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--seconds', type=float, default=5)
    parser.add_argument('--no-rpc', dest='rpc', action='store_false')
    parser.add_argument('--extra-conf', default='',
                        help='lines added to the [DEFAULT] section of the '
                             'placement process config, e.g. '
                             '"executor_thread_pool_size = 8"')
    args = parser.parse_args(argv)
    args.extra_conf = args.extra_conf.replace('\\n', '\n')
    print(f'{os.cpu_count()} CPUs, load average {_load()} at start; '
          f'request {REQUEST}')
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
    print(f'load average {_load()} at the end')


def _load() -> str:
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


if __name__ == '__main__':
    main()
