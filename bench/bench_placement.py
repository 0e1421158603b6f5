"""Benchmark of the placement service.

    .venv/bin/python bench/bench_placement.py [--backends sqlite,postgresql,mysql]
        [--providers 1000,10000] [--hosts 100] [--seconds 5] [--no-rpc]
        [--sustained 6] [--parts candidates,reports]

Measures, on each backend:

- ``get_allocation_candidates`` for one resource request (VCPU, MEMORY_MB,
  DISK_GB, one required trait) over N providers (populated in bulk), without
  a limit and with ``limit`` 1000 and 100 (the scheduler passes one), p50/p99
  in milliseconds, in-process (manager: validation + one transaction, with
  the start-up objects frozen as the service does) and, unless ``--no-rpc``,
  over RabbitMQ through one ``nova-rt-placement``.
- report throughput: concurrent simulated hosts (threads) sending
  provider-tree and allocation reports as nova-rt-compute's reporter does
  (``one_report``): after claims ("changed": the new inventory, or only the
  consumers that changed), the periodic full resync where nothing changed
  ("resync"), and full replaces that change one consumer ("replace", as after
  a restart): reports per second, p50/p99 latency, and the CPU per report
  of the serving process and of the database server, in-process (4 threads)
  and over RPC to one placement process: from oslo.messaging's own client (8
  threads), then from a lean AMQP caller in the same wire format
  (``amqp_caller``: 16 reports in flight from one thread, about 0.25 ms of
  CPU per call where oslo.messaging's client spends 0.7 ms), so that on a
  small machine the placement process, not its callers, is what saturates.
  Each caller starts from emptied, vacuumed tables.  A trivial call
  (``get_allocations`` of an unknown consumer) is measured too: the floor
  that oslo.messaging sets whatever the database does.  Last, ``--sustained``
  rounds of 5 s of incremental reports in a row: whether the rate holds
  while the tables churn (on PostgreSQL it depends on vacuuming: the
  placement process's own, ``[placement_database] vacuum_interval``).
  And the trivial call once more, answered by an oslo.messaging server that
  does nothing (``oslo_floor_server``: same transport, executor and
  threads): what one server process can answer at all on this machine, and
  its CPU per call, which the placement service's own work adds to.

The machine (CPUs, load average before and after) is printed first: other
work on it moves every figure.

PostgreSQL runs on a fresh ``nova_rt_test_<random>`` database on
127.0.0.1:5432, MySQL/MariaDB on one on 127.0.0.1:3306, dropped afterwards;
the server's CPU per report is that of the postmaster's children or of
``mariadbd``.  Targets (issue 6): candidates over 10,000
providers under 50 ms p50 on PostgreSQL; at least 500 reports/s from one
placement process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402

import amqp_caller  # noqa: E402
import oslo_floor_server  # noqa: E402
from nova_rt import gcutil  # noqa: E402
from nova_rt import rpc  # noqa: E402
from nova_rt.placement import db  # noqa: E402
from nova_rt.placement import manager  # noqa: E402
from nova_rt.placement import models  # noqa: E402
from tests.functional.placement import fixtures  # noqa: E402
from tests.functional.placement import helpers  # noqa: E402

CTX = {'request_id': 'req-bench'}
REPORT_KINDS = ('changed', 'resync', 'replace')
REQUEST = {'resources': {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20},
           'required': ['COMPUTE_NODE']}


class _Conf:
    class placement:
        heartbeat_timeout = 600
        candidate_order = 'spread'


def populate(url: str, n: int) -> None:
    """Empty the tables, then n compute nodes (``_insert_providers``)."""
    engine = db.get_engine(url)
    rng = random.Random(n)
    now = fixtures_now()
    with engine.begin() as conn:
        helpers.empty_tables(conn)
        if n:
            _insert_providers(conn, n, rng, now)
    if engine.dialect.name == 'postgresql':
        with engine.connect() as conn:
            for table, count in (('resource_providers', n),
                                 ('consumers', _count(conn, 'consumers')),
                                 ('traits', 1)):
                conn.execute(sa.text(f"SELECT setval('{table}_id_seq', "
                                     ':n)'), {'n': max(count, 1)})
            conn.commit()
        # A clean start for what is measured next: without it the reports
        # measured after the 10,000-provider candidates paid for that
        # many deleted rows (dead index entries, autovacuum) in PostgreSQL's
        # CPU per report.
        with engine.connect().execution_options(
                isolation_level='AUTOCOMMIT') as conn:
            conn.execute(sa.text('VACUUM ANALYZE'))
    elif engine.dialect.name == 'mysql':
        # InnoDB's statistics of tables just filled in bulk still describe
        # them empty: measured, the candidates over 1,000 providers then
        # took 3.5 times as long as over 10,000.
        with engine.connect() as conn:
            conn.execute(sa.text('ANALYZE TABLE ' + ', '.join(
                t.name for t in models.Base.metadata.sorted_tables)))


def _count(conn, table: str) -> int:
    return conn.execute(sa.text(f'SELECT count(*) FROM {table}')).scalar()


def _insert_providers(conn, n: int, rng, now) -> None:
    """n compute nodes with inventories, the COMPUTE_NODE trait and 0-3
    instances each."""
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


def _resources(sim):
    return {'project_id': 'p', 'user_id': 'u', 'resources': {
        sim['root']: {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}}}


def next_report(sim, mode: str = 'changed') -> tuple[str, dict]:
    """The next report of a simulated host, alternately of its provider tree
    and of its allocations, as nova-rt-compute's reporter sends them:
    ``(method, kwargs)``.

    - ``changed``: what follows a claim: the tree with a new ``reserved``,
      or the consumers that changed only (``full=false``: one instance
      gone, one new);
    - ``resync``: the periodic full resync where nothing changed;
    - ``replace``: a full replace that changes one consumer (the reporter
      sends one after a restart or a conflict).
    """
    sim['n'] += 1
    n = sim['n']
    if n % 2:
        reserved = n % 7 if mode != 'resync' else 0
        return 'report_provider_tree', {
            'host': sim['host'], 'providers': [{
                'uuid': sim['root'], 'name': sim['host'],
                'generation': sim['gen'],
                'inventories': _inventory(reserved)}]}
    if mode == 'changed':
        slot = n % len(sim['consumers'])
        gone, new = sim['consumers'][slot], str(uuid.uuid4())
        sim['consumers'][slot] = new
        allocations = {gone: {'project_id': 'p', 'user_id': 'u',
                              'resources': {}},
                       new: _resources(sim)}
    else:
        if mode == 'replace':
            sim['consumers'][n % 10] = str(uuid.uuid4())
        allocations = {c: _resources(sim) for c in sim['consumers']}
    return 'report_allocations', {
        'host': sim['host'], 'root_uuid': sim['root'],
        'generation': sim['gen'], 'full': mode != 'changed',
        'allocations': allocations}


def one_report(api, sim, mode: str = 'changed') -> None:
    """Send ``next_report`` through ``api`` and keep the new generation."""
    with sim['lock']:
        method, kwargs = next_report(sim, mode)
        sim['gen'] = getattr(api, method)(CTX, **kwargs)[sim['root']]


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


def server_pid(url):
    """The database server's pid: PostgreSQL's postmaster (its children are
    the backends) or mariadbd/mysqld (threads); None for SQLite or a server
    out of reach of /proc."""
    engine = db.get_engine(url)
    try:
        if engine.dialect.name == 'mysql':
            with engine.connect() as conn:
                pid_file = conn.execute(sa.text('SELECT @@pid_file')).scalar()
            with open(pid_file) as f:
                return int(f.read().strip())
        if engine.dialect.name != 'postgresql':
            return None
        with engine.connect() as conn:
            backend = conn.execute(sa.text('SELECT pg_backend_pid()')).scalar()
        with open(f'/proc/{backend}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[1])
    except OSError:
        return None


def bench_reports(label, api, sims, seconds: float, threads: int,
                  server_pids=(), pg_pid=None, kind='changed'):
    report = (no_op if kind == 'trivial call'
              else functools.partial(one_report, mode=kind))
    if kind == 'resync':
        for sim in sims:
            # Once with nothing changed from the last report of each kind.
            report(api, sim)
            report(api, sim)
    latencies = [[] for _ in range(threads)]

    def worker(i, stop):
        rng = random.Random(i)
        while time.monotonic() < stop:
            start = time.perf_counter()
            report(api, rng.choice(sims))
            latencies[i].append((time.perf_counter() - start) * 1000)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        # One unmeasured second first: the first calls of a kind pay for
        # compiling and preparing its statements.
        stop = time.monotonic() + 1.0
        list(pool.map(worker, range(threads), [stop] * threads))
        for samples in latencies:
            samples.clear()
        cpu0 = (_cpu_seconds(server_pids) if server_pids
                else time.process_time())
        pg0 = _cpu_seconds([pg_pid]) if pg_pid else 0.0
        start = time.perf_counter()
        stop = time.monotonic() + seconds
        list(pool.map(worker, range(threads), [stop] * threads))
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
    pg = f', database {pg_cpu / done * 1000:.2f} ms' if pg_pid else ''
    print(f'  reports    {label:10s} {kind:12s} {done / elapsed:6.0f}/s '
          f'p50 {statistics.median(samples):6.1f} ms '
          f'p99 {percentile(samples, 0.99):6.1f} ms ({done} in '
          f'{elapsed:.1f} s, {threads} threads, {len(sims)} hosts); CPU per '
          f'report: {where} {cpu / done * 1000:.2f} ms{pg}')


def bench_reports_lean(placement, sims, seconds: float, in_flight: int,
                       pg_pid=None, kind='changed', quiet=False,
                       topic=rpc.PLACEMENT_TOPIC, server=None,
                       out=None) -> float:
    """Reports from the lean caller (``amqp_caller``): ``in_flight`` hosts
    with a report under way at every moment, each host one at a time (as its
    reporter), from one thread; the server is what saturates.  ``topic`` and
    ``server`` (a process): another server than the placement's.  ``out``
    (a dict): given the rate and the server's CPU per report (ms), for a
    caller that sets figures side by side."""
    caller = amqp_caller.Caller(placement.transport_url, placement.exchange,
                                topic, rpc.RPC_VERSION, CTX)
    rng = random.Random(7)
    idle = list(sims)
    rng.shuffle(idle)
    latencies, errors = [], []
    state = {'stop': 0.0, 'measure': False}

    def send(sim):
        if kind == 'trivial call':
            method, kwargs = 'get_allocations', {
                'consumer_uuid': str(uuid.uuid4())}
        else:
            method, kwargs = next_report(sim, kind)
        start = time.perf_counter()

        def on_reply(result, error):
            if error is not None:
                errors.append(error)
            elif kind != 'trivial call':
                sim['gen'] = result[sim['root']]
            if state['measure']:
                latencies.append((time.perf_counter() - start) * 1000)
            idle.append(sim)
            if time.monotonic() < state['stop']:
                send(idle.pop(rng.randrange(len(idle))))
        caller.call(method, kwargs, on_reply)

    def run(duration):
        state['stop'] = time.monotonic() + duration
        for _ in range(in_flight):
            send(idle.pop(rng.randrange(len(idle))))
        caller.wait()

    try:
        if kind == 'resync':
            # Twice per host: the same as its last report of each kind.
            for sim in sims:
                for _ in range(2):
                    method, kwargs = next_report(sim, kind)
                    sim['gen'] = getattr(placement.api, method)(
                        CTX, **kwargs)[sim['root']]
        run(1.0)          # unmeasured: statements compiled and prepared
        pids = ([server.pid] if server else
                [p.pid for p in placement.processes])
        cpu0, own0 = _cpu_seconds(pids), time.process_time()
        pg0 = _cpu_seconds([pg_pid]) if pg_pid else 0.0
        state['measure'] = True
        start = time.perf_counter()
        run(seconds)
        elapsed = time.perf_counter() - start
        cpu, own = _cpu_seconds(pids) - cpu0, time.process_time() - own0
        pg_cpu = _cpu_seconds([pg_pid]) - pg0 if pg_pid else 0.0
    finally:
        caller.close()
    if errors:
        raise RuntimeError(f'{len(errors)} reports failed, first: '
                           f'{errors[0]}')
    samples = sorted(latencies)
    done = len(samples)
    if out is not None:
        out.update(rate=done / elapsed, cpu_ms=cpu / done * 1000)
    if quiet:
        return done / elapsed
    pg = f', database {pg_cpu / done * 1000:.2f} ms' if pg_pid else ''
    who = 'empty server' if server else 'placement process'
    print(f'  reports    {"rpc lean":10s} {kind:12s} {done / elapsed:6.0f}/s '
          f'p50 {statistics.median(samples):6.1f} ms '
          f'p99 {percentile(samples, 0.99):6.1f} ms ({done} in '
          f'{elapsed:.1f} s, {in_flight} in flight, {len(sims)} hosts); CPU '
          f'per report: {who} {cpu / done * 1000:.2f} ms{pg}, '
          f'caller {own / done * 1000:.2f} ms')
    return done / elapsed


def bench_sustained(placement, sims, rounds: int, pg_pid=None):
    """Incremental reports from the lean caller, ``rounds`` times 5 s in a
    row: whether the rate holds while the tables churn."""
    rates = []
    for _ in range(rounds):
        rates.append(bench_reports_lean(placement, sims, 5.0, 16,
                                        pg_pid=pg_pid, kind='changed',
                                        quiet=True))
    if rates:
        print(f'  reports    {"rpc lean":10s} {"sustained":12s} '
              + ', '.join(f'{r:.0f}' for r in rates)
              + f'/s in {len(rates)} successive 5 s rounds of "changed"')


def run_backend(backend, url, args, workdir):
    print(f'== {backend}')
    db.sync(url)
    mgr = manager.PlacementManager(db.get_engine(url), _Conf)
    for n in (args.providers if 'candidates' in args.parts else ()):
        t0 = time.perf_counter()
        populate(url, n)
        print(f' {n} providers (populated in {time.perf_counter() - t0:.1f} s)')
        # As nova-rt-placement does once started (nova_rt/gcutil.py).
        gcutil.freeze_startup_objects()
        bench_candidates('in-process', mgr)
        if args.rpc:
            with fixtures.running_placement(url, workdir) as placement:
                bench_candidates('rpc', placement.api)
    if 'reports' not in args.parts:
        return
    pg_pid = server_pid(url)
    populate(url, 0)
    sims = add_hosts(mgr, args.hosts)
    for kind in REPORT_KINDS:
        bench_reports('in-process', mgr, sims, args.seconds, 4, pg_pid=pg_pid,
                      kind=kind)
    if args.rpc:
        with fixtures.running_placement(url, workdir,
                                        extra_conf=args.extra_conf) as placement:
            # Each caller from the same clean start: within a series the
            # kinds measured later run on tables that earlier ones churned
            # (PostgreSQL's autovacuum comes round once a minute).
            populate(url, 0)
            sims = add_hosts(placement.api, args.hosts)
            for kind in (*REPORT_KINDS, 'trivial call'):
                bench_reports('rpc', placement.api, sims, args.seconds, 8,
                              [p.pid for p in placement.processes],
                              pg_pid=pg_pid, kind=kind)
            populate(url, 0)
            sims = add_hosts(placement.api, args.hosts)
            for kind in (*REPORT_KINDS, 'trivial call'):
                bench_reports_lean(placement, sims, args.seconds, 16,
                                   pg_pid=pg_pid, kind=kind)
            bench_sustained(placement, sims, args.sustained, pg_pid)
            bench_floor(placement, sims, args.seconds, workdir)


def bench_floor(placement, sims, seconds, workdir):
    """The trivial call again, answered by an oslo.messaging server that
    does nothing (``oslo_floor_server``, same transport, executor and
    threads): the most one server process gets through on this machine
    whatever the placement service does."""
    with floor_server(placement, workdir) as proc:
        bench_reports_lean(placement, sims, seconds, 16, kind='trivial call',
                           topic=oslo_floor_server.TOPIC, server=proc)


@contextlib.contextmanager
def floor_server(placement, workdir):
    """``oslo_floor_server`` running with ``placement``'s configuration
    (transport, exchange, executor, threads): its process."""
    log_path = os.path.join(workdir, 'floor.log')
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__),
                                          'oslo_floor_server.py'),
             '--config-file', placement.config_file],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    try:
        fixtures.wait_serving(proc, log_path)
        yield proc
    finally:
        fixtures.stop_process(proc)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backends', default='sqlite,postgresql,mysql')
    parser.add_argument('--providers', default='1000,10000',
                        type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--seconds', type=float, default=5)
    parser.add_argument('--no-rpc', dest='rpc', action='store_false')
    parser.add_argument('--sustained', type=int, default=6,
                        help='rounds of 5 s of incremental reports in a row '
                             '(0: none)')
    parser.add_argument('--extra-conf', default='',
                        help='lines added to the [DEFAULT] section of the '
                             'placement process config, e.g. '
                             '"executor_thread_pool_size = 8"')
    parser.add_argument('--parts', default='candidates,reports',
                        type=lambda s: set(s.split(',')),
                        help='what to measure: candidates, reports or both')
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
                url = fixtures.fresh_database(backend)
                try:
                    run_backend(backend, url, args, workdir)
                finally:
                    fixtures.drop_database(url)
            db.dispose_engines()
    print(f'load average {_load()} at the end')


def _load() -> str:
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


if __name__ == '__main__':
    main()
