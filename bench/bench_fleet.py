"""Fleet benchmark: thousands of simulated hosts against nova-rt-placement.

    .venv/bin/python bench/bench_fleet.py [--quick] [--hosts 1000,5000,10000]
        [--processes 1,2] [--seconds 60] [--compress 1] [--plot lag.png]
    .venv/bin/python bench/bench_fleet.py --saturate [--hosts 1000]

Each run (hosts x placement processes) gets a fresh PostgreSQL database
(``nova_rt_fleet_<random>``, dropped afterwards) filled in bulk with one
compute node per host (inventories as ``bench_placement``'s hosts, 10
instances each, the COMPUTE_NODE trait), a fresh RabbitMQ vhost and that many
real ``nova-rt-placement`` processes.  Then, for ``--seconds`` after a
warm-up, every simulated host sends what nova-rt-compute's reporter sends,
over the real RPC (``amqp_caller``: oslo.messaging's wire format, many
messages in flight from one thread, so that the hosts cost little CPU):

- an audit every ``--audit-interval`` s (60), at a random phase per host:
  a change report (``report_allocations`` with ``full=false``: one instance
  gone, one new), and every ``--full-every``-th audit (10) the periodic
  resync instead (``report_provider_tree`` then ``report_allocations`` with
  ``full=true``, both unchanged);
- a ``heartbeat`` cast every ``--heartbeat-interval`` s (10).

``--compress C`` divides both intervals by C (C times the rate: a fleet C
times as large, as far as placement is concerned).  Meanwhile a
scheduler-like client asks for allocation candidates (VCPU, MEMORY_MB,
DISK_GB, ``limit`` 1000) every ``--candidates-interval`` s.

Printed per run:

- report lag p50/p99: from the moment a host's change happens (the audit's
  scheduled time) to placement's answer, which comes after the commit: when
  placement's view holds the change.  A host with a report still in flight
  when its next audit comes has that audit folded into the next (counted);
- heartbeat lag p50/p99: from the cast to the moment a watcher (polling the
  providers every ``--poll`` s) sees the root's ``last_heartbeat`` at or past
  the time it was sent, i.e. placement's view of the host's liveness (poll
  granularity included: about half a poll on average);
- candidates p50/p99 under that load, as the scheduler's client sees them;
- placement CPU per message (``/proc/<pid>/stat`` of the placement
  processes over the measured window, divided by the messages sent in it),
  and the CPU they used per second of wall time;
- the database size at the end, and the load average before and after the
  run (the machine is shared: other work moves every figure);
- the backlog in RabbitMQ's queue (small: oslo.messaging's consumers
  prefetch without limit, so a backlog mostly sits inside the placement
  processes), how long placement took after the window to work off what was
  sent (at most ``--drain`` s, then the rest is purged and counted), and a
  process killed because it was still busy 30 s after SIGTERM.

``--plot FILE`` (default ``fleet-lag.png`` in the current directory) draws
the lags against the fleet size, one line per process count, if matplotlib
can be imported (not a nova_rt dependency: ``pip install matplotlib`` into
the virtualenv); without it the figures are printed only.

``--saturate``: how many messages one placement process absorbs, with
``--hosts`` hosts (1,000 by default): a burst of heartbeat casts (sent as
fast as one thread can, then one call behind them, whose answer means they
have all been taken) and, through ``bench_placement``'s lean caller, change
and resync reports with 16 in flight for ``--seconds``; each with the
placement process's CPU per message.  Then the floor in the same run: the
same burst of casts and a stream of do-nothing calls (16 in flight) against
an oslo.messaging server that does nothing (``oslo_floor_server``: same
transport, executor and threads), and a table of placement's figures beside
the floor's with their ratios.

Placement's code is whatever ``nova_rt`` the placement processes import: run
from another checkout with ``PYTHONPATH`` (and that checkout as the current
directory) to measure it, e.g. the code before a change.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import heapq
import io
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sqlalchemy as sa  # noqa: E402

import amqp_caller  # noqa: E402
import bench_placement  # noqa: E402
import oslo_floor_server  # noqa: E402
from nova_rt import rpc  # noqa: E402
from nova_rt.placement import db  # noqa: E402
from nova_rt.placement import provider_ops  # noqa: E402
from tests.functional.placement import fixtures  # noqa: E402

CTX = {'request_id': 'req-bench-fleet'}
CONSUMERS_PER_HOST = 10
REQUEST = {'resources': {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20},
           'required': ['COMPUTE_NODE'], 'limit': 1000}


def load() -> str:
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def pct(samples: list, fraction: float) -> float:
    if not samples:
        return float('nan')
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def p50_p99(samples: list, scale: float = 1.0) -> str:
    if not samples:
        return 'n/a'
    return (f'p50 {statistics.median(samples) * scale:7.1f}  '
            f'p99 {pct(samples, 0.99) * scale:7.1f}')


# -- the database -----------------------------------------------------------

def fresh_database() -> str:
    import psycopg
    name = f'nova_rt_fleet_{uuid.uuid4().hex[:12]}'
    with psycopg.connect(fixtures.PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE {name}')
    return fixtures.PG_URL.format(name=name)


def _inventories() -> dict:
    wire = bench_placement._inventory(0)
    return {rc: provider_ops.normalise_inventory(rc, raw, 'bench')
            for rc, raw in wire.items()}


def _copy(cursor, table: str, columns: tuple, rows) -> None:
    with cursor.copy(f'COPY {table} ({", ".join(columns)}) FROM STDIN') as cp:
        for row in rows:
            cp.write_row(row)


def populate(url: str, n: int) -> list:
    """n hosts in bulk (COPY), as if each had reported its tree and its 10
    instances once: the simulated hosts' state, each a dict."""
    db.sync(url)
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    invs = _inventories()
    sims = []
    for i in range(n):
        host = f'fleet-{i:05d}'
        sims.append({'id': i + 1, 'host': host, 'root': str(uuid.uuid4()),
                     'gen': 2, 'n': 0,
                     'consumers': [str(uuid.uuid4())
                                   for _ in range(CONSUMERS_PER_HOST)]})
    per = {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}
    raw = db.get_engine(url).raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        _copy(cursor, 'resource_providers',
              ('id', 'uuid', 'name', 'host', 'generation',
               'parent_provider_id', 'root_provider_id', 'last_heartbeat'),
              ((s['id'], s['root'], s['host'], s['host'], s['gen'], None,
                s['id'], now) for s in sims))
        _copy(cursor, 'inventories',
              ('resource_provider_id', 'root_provider_id', 'resource_class',
               'total', 'reserved', 'min_unit', 'max_unit', 'step_size',
               'allocation_ratio', 'capacity', 'used'),
              ((s['id'], s['id'], rc, inv['total'], inv['reserved'],
                inv['min_unit'], inv['max_unit'], inv['step_size'],
                inv['allocation_ratio'], inv['capacity'],
                per[rc] * CONSUMERS_PER_HOST)
               for s in sims for rc, inv in sorted(invs.items())))
        _copy(cursor, 'consumers',
              ('id', 'uuid', 'project_id', 'user_id', 'generation'),
              ((i * CONSUMERS_PER_HOST + j + 1, c, 'p', 'u', 0)
               for i, s in enumerate(sims)
               for j, c in enumerate(s['consumers'])))
        _copy(cursor, 'allocations',
              ('resource_provider_id', 'consumer_id', 'resource_class',
               'used'),
              ((s['id'], i * CONSUMERS_PER_HOST + j + 1, rc, amount)
               for i, s in enumerate(sims)
               for j in range(CONSUMERS_PER_HOST)
               for rc, amount in sorted(per.items())))
        cursor.execute("INSERT INTO traits (id, name) "
                       "VALUES (1, 'COMPUTE_NODE')")
        _copy(cursor, 'resource_provider_traits',
              ('resource_provider_id', 'trait_id'),
              ((s['id'], 1) for s in sims))
        for table, count in (('resource_providers', n),
                             ('consumers', n * CONSUMERS_PER_HOST),
                             ('traits', 1)):
            cursor.execute(f"SELECT setval('{table}_id_seq', %s)",
                           (max(count, 1),))
        raw.commit()
    finally:
        raw.close()
    with db.get_engine(url).connect().execution_options(
            isolation_level='AUTOCOMMIT') as conn:
        conn.execute(sa.text('VACUUM ANALYZE'))
    return sims


def database_size(url: str) -> int:
    with db.get_engine(url).connect() as conn:
        return conn.execute(sa.text(
            'SELECT pg_database_size(current_database())')).scalar()


# -- the simulated hosts ----------------------------------------------------

def _allocation(sim) -> dict:
    return {'project_id': 'p', 'user_id': 'u', 'resources': {
        sim['root']: {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20}}}


def change_report(sim) -> tuple:
    """One instance gone, one new: the incremental report after it."""
    sim['n'] += 1
    slot = sim['n'] % CONSUMERS_PER_HOST
    gone, new = sim['consumers'][slot], str(uuid.uuid4())
    sim['consumers'][slot] = new
    return 'report_allocations', {
        'host': sim['host'], 'root_uuid': sim['root'],
        'generation': sim['gen'], 'full': False,
        'allocations': {gone: {'project_id': 'p', 'user_id': 'u',
                               'resources': {}},
                        new: _allocation(sim)}}


def resync_reports(sim) -> list:
    """The periodic full resync: the tree, then every allocation (both
    unchanged).  The generation of the second is filled in when the first
    is answered."""
    tree = ('report_provider_tree', {'host': sim['host'], 'providers': [{
        'uuid': sim['root'], 'name': sim['host'], 'generation': None,
        'inventories': bench_placement._inventory(0)}]})
    allocations = ('report_allocations', {
        'host': sim['host'], 'root_uuid': sim['root'], 'generation': None,
        'full': True,
        'allocations': {c: _allocation(sim) for c in sim['consumers']}})
    return [tree, allocations]


def _with_generation(method: str, kwargs: dict, gen: int) -> dict:
    if method == 'report_provider_tree':
        kwargs['providers'][0]['generation'] = gen
    else:
        kwargs['generation'] = gen
    return kwargs


class Caster(amqp_caller.Caller):
    """The lean caller, with what the fleet bench watches on the queue."""

    def backlog(self) -> int:
        """Messages waiting in placement's topic queue (not yet taken)."""
        return self.channel.queue_declare(self.topic, passive=True)[1]

    def pump(self, until: float) -> None:
        """Handle replies until ``until`` (monotonic)."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                self.conn.drain_events(timeout=left)
            except TimeoutError:
                return


def _utc_naive(wall: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).replace(
        tzinfo=None)


class HeartbeatWatcher(threading.Thread):
    """Polls the roots' ``last_heartbeat``; a heartbeat sent at wall time t
    is seen at the first poll where its root's stamp is at or past t."""

    def __init__(self, url: str, sims: list, poll: float):
        super().__init__(daemon=True, name='fleet-watcher')
        self.url, self.poll = url, poll
        self.by_id = {s['id']: s for s in sims}
        self.sent: dict = {}            # id -> [wall times not seen yet]
        self.lags: list = []
        self.lock = threading.Lock()
        self.measure = False
        self.stopping = threading.Event()

    def sent_heartbeat(self, sim, wall: float) -> None:
        with self.lock:
            self.sent.setdefault(sim['id'], []).append(wall)

    def run(self) -> None:
        engine = db.create_engine(self.url)
        try:
            with engine.connect() as conn:
                while not self.stopping.wait(self.poll):
                    rows = conn.execute(sa.text(
                        'SELECT id, last_heartbeat FROM resource_providers '
                        'WHERE parent_provider_id IS NULL')).all()
                    conn.commit()
                    seen = time.time()
                    self._seen(rows, seen)
        finally:
            engine.dispose()

    def _seen(self, rows, seen: float) -> None:
        with self.lock:
            for rp_id, stamp in rows:
                waiting = self.sent.get(rp_id)
                if not waiting or stamp is None:
                    continue
                stamp_wall = stamp.replace(
                    tzinfo=datetime.UTC).timestamp()
                keep = [t for t in waiting if t > stamp_wall]
                if self.measure:
                    self.lags.extend(seen - t for t in waiting
                                     if t <= stamp_wall)
                self.sent[rp_id] = keep

    def unseen(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.sent.values())


class Scheduler(threading.Thread):
    """Asks for candidates every ``interval`` s, one call at a time."""

    def __init__(self, placement, interval: float):
        super().__init__(daemon=True, name='fleet-scheduler')
        self.placement, self.interval = placement, interval
        self.latencies: list = []
        self.counts: list = []
        self.errors: list = []
        self.measure = False
        self.calls = 0
        self.timeouts = 0
        self.timeout = 30.0
        self.stopping = threading.Event()

    def run(self) -> None:
        caller = amqp_caller.Caller(
            self.placement.transport_url, self.placement.exchange,
            rpc.PLACEMENT_TOPIC, rpc.RPC_VERSION, CTX)
        try:
            while not self.stopping.is_set():
                start = time.perf_counter()

                def on_reply(result, error, start=start):
                    if error is not None:
                        self.errors.append(error)
                    elif self.measure:
                        self.latencies.append(time.perf_counter() - start)
                        self.counts.append(len(result))
                caller.call('get_allocation_candidates', dict(REQUEST),
                            on_reply)
                try:
                    caller.wait(timeout=self.timeout)
                except TimeoutError:
                    # Behind a backlog: counted as one at the timeout.
                    caller.pending.clear()
                    if self.measure:
                        self.latencies.append(self.timeout)
                        self.timeouts += 1
                if self.measure:
                    self.calls += 1
                self.stopping.wait(max(
                    0.0, self.interval - (time.perf_counter() - start)))
        finally:
            caller.close()


class Fleet:
    """The simulated hosts, driven from one thread."""

    def __init__(self, placement, sims, args, watcher):
        self.caller = Caster(placement.transport_url, placement.exchange,
                             rpc.PLACEMENT_TOPIC, rpc.RPC_VERSION, CTX)
        self.sims, self.args, self.watcher = sims, args, watcher
        self.audit = args.audit_interval / args.compress
        self.beat = args.heartbeat_interval / args.compress
        self.report_lags: list = []
        self.send_delays: list = []
        self.errors: list = []
        self.folded = 0
        self.messages = 0
        self.measure = False
        self.backlogs: list = []
        self.next_sample = 0.0
        self.drained_s = 0.0
        self.purged = 0

    def _schedule(self, start: float) -> list:
        rng = random.Random(len(self.sims))
        heap = []
        for i, sim in enumerate(self.sims):
            sim['busy'] = False
            sim['audits'] = rng.randrange(self.args.full_every)
            heap.append((start + rng.uniform(0, self.audit), i, 'audit'))
            heap.append((start + rng.uniform(0, self.beat), i, 'beat'))
        heapq.heapify(heap)
        return heap

    def run(self, warmup: float, seconds: float) -> None:
        start = time.monotonic()
        measure_from, end = start + warmup, start + warmup + seconds
        heap = self._schedule(start)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if not self.measure and now >= measure_from:
                self.measure = self.watcher.measure = True
                self.on_measure()
            while heap[0][0] <= now:
                due, i, kind = heapq.heappop(heap)
                sim = self.sims[i]
                if kind == 'beat':
                    self._heartbeat(sim, due)
                    heapq.heappush(heap, (due + self.beat, i, kind))
                else:
                    self._audit(sim, due)
                    heapq.heappush(heap, (due + self.audit, i, kind))
            self.caller.pump(min(heap[0][0], end))
            if self.measure and now >= self.next_sample:
                self.backlogs.append(self.caller.backlog())
                self.next_sample = now + 1.0
        self.measure = False
        self.window = (measure_from, time.monotonic())
        self.drain(self.args.drain)
        self.unanswered = sum(1 for sim in self.sims if sim['busy'])

    def drain(self, limit: float) -> None:
        """Wait up to ``limit`` s for placement to take what was sent (the
        time it took is part of the figures), then purge the rest so that
        the processes stop promptly."""
        start = time.monotonic()
        # (oslo.messaging prefetches without limit: most of a backlog sits
        # in the placement processes, not in RabbitMQ; the heartbeats not
        # yet seen say how much of it is left.)
        while time.monotonic() - start < limit and (
                self.caller.pending or self.caller.backlog()
                or self.watcher.unseen()):
            self.caller.pump(time.monotonic() + 0.2)
        self.drained_s = time.monotonic() - start
        self.purged = self.caller.backlog()
        if self.purged:
            self.caller.channel.queue_purge(self.caller.topic)
        self.caller.pending.clear()

    def on_measure(self) -> None:
        """Called once when the measured window opens."""

    def _count(self) -> None:
        if self.measure:
            self.messages += 1

    def _heartbeat(self, sim, due: float) -> None:
        wall = time.time()
        self.caller.cast('heartbeat', {
            'host': sim['host'], 'root_uuid': sim['root'],
            'sent_at': _utc_naive(wall).isoformat() + '+00:00'})
        self.watcher.sent_heartbeat(sim, wall)
        self._count()

    def _audit(self, sim, due: float) -> None:
        if sim['busy']:
            self.folded += self.measure
            return
        sim['busy'] = True
        sim['audits'] += 1
        if self.measure:
            self.send_delays.append(time.monotonic() - due)
        if sim['audits'] % self.args.full_every == 0:
            steps = resync_reports(sim)
        else:
            steps = [change_report(sim)]
        self._send(sim, due, steps, self.measure)

    def _send(self, sim, due: float, steps: list, measured: bool) -> None:
        method, kwargs = steps[0]
        kwargs = _with_generation(method, kwargs, sim['gen'])

        def on_reply(result, error):
            if error is not None:
                self.errors.append(f'{sim["host"]} {method}: {error}')
                sim['busy'] = False
                return
            sim['gen'] = result[sim['root']]
            if len(steps) > 1:
                self._send(sim, due, steps[1:], measured)
                return
            sim['busy'] = False
            if measured:
                self.report_lags.append(time.monotonic() - due)
        self.caller.call(method, kwargs, on_reply)
        self._count()

    def close(self) -> None:
        self.caller.close()


@contextlib.contextmanager
def _tolerating_kill(stopped: dict):
    """A placement process still busy with a backlog 30 s after SIGTERM is
    killed by the fixture, which then fails its exit-code check: noted."""
    try:
        yield
    except AssertionError as error:
        stopped['note'] = str(error)


def run_fleet(n_hosts: int, processes: int, args, workdir: str) -> dict:
    load_before = load()
    stopped: dict = {}
    url = fresh_database()
    try:
        t0 = time.monotonic()
        sims = populate(url, n_hosts)
        filled = time.monotonic() - t0
        with _tolerating_kill(stopped), fixtures.running_placement(
                url, workdir, processes=processes,
                extra_conf=args.extra_conf) as placement:
            pids = [p.pid for p in placement.processes]
            watcher = HeartbeatWatcher(url, sims, args.poll)
            scheduler = Scheduler(placement, args.candidates_interval)
            fleet = Fleet(placement, sims, args, watcher)
            cpu = {}

            def on_measure():
                scheduler.measure = True
                cpu['start'] = (bench_placement._cpu_seconds(pids),
                                time.monotonic())
            fleet.on_measure = on_measure
            watcher.start()
            scheduler.start()
            try:
                fleet.run(args.warmup, args.seconds)
            finally:
                scheduler.measure = False
                cpu['end'] = (bench_placement._cpu_seconds(pids),
                              time.monotonic())
                scheduler.stopping.set()
                scheduler.join(30)
                fleet.close()
            # The last heartbeats: seen within a flush and a poll or two.
            fixtures.wait_until(lambda: watcher.unseen() == 0, timeout=5)
            watcher.stopping.set()
            watcher.join(10)
            size = database_size(url)
    finally:
        db.dispose_engines()
        fixtures.drop_pg_database(url)
    # CPU from the window's start to the end of the drain: the work for the
    # messages sent in the window; the rate over the window itself.
    cpu_s = cpu['end'][0] - cpu['start'][0]
    wall = fleet.window[1] - fleet.window[0]
    messages = fleet.messages + scheduler.calls
    result = {
        'hosts': n_hosts, 'processes': processes, 'seconds': wall,
        'load_before': load_before, 'load_after': load(),
        'populated_s': filled,
        'messages_per_s': messages / wall,
        'report_lag_p50_s': statistics.median(fleet.report_lags)
        if fleet.report_lags else None,
        'report_lag_p99_s': pct(fleet.report_lags, 0.99),
        'reports': len(fleet.report_lags),
        'send_delay_p99_s': pct(fleet.send_delays, 0.99),
        'folded_audits': fleet.folded,
        'heartbeat_lag_p50_s': statistics.median(watcher.lags)
        if watcher.lags else None,
        'heartbeat_lag_p99_s': pct(watcher.lags, 0.99),
        'heartbeats_seen': len(watcher.lags),
        'heartbeats_unseen': watcher.unseen(),
        'candidates_p50_ms': statistics.median(scheduler.latencies) * 1000
        if scheduler.latencies else None,
        'candidates_p99_ms': pct(scheduler.latencies, 0.99) * 1000,
        'candidates_calls': len(scheduler.latencies),
        'candidates_returned': statistics.median(scheduler.counts)
        if scheduler.counts else 0,
        'cpu_ms_per_message': cpu_s / messages * 1000 if messages else None,
        'cpu_per_wall_s': cpu_s / (cpu['end'][1] - cpu['start'][1]),
        'unanswered_reports': fleet.unanswered,
        'database_mb': size / 1e6,
        'backlog_max': max(fleet.backlogs, default=0),
        'backlog_end': fleet.backlogs[-1] if fleet.backlogs else 0,
        'drained_s': fleet.drained_s, 'purged': fleet.purged,
        'candidates_timeouts': scheduler.timeouts,
        'errors': (fleet.errors + [str(e) for e in scheduler.errors])[:5],
        'stop': stopped.get('note', 'clean (exit 0)'),
    }
    _print_run(result)
    return result


def _print_run(r: dict) -> None:
    print(f"== {r['hosts']} hosts, {r['processes']} placement process(es): "
          f"{r['messages_per_s']:.0f} messages/s for {r['seconds']:.0f} s "
          f"(load {r['load_before']} -> {r['load_after']}; populated in "
          f"{r['populated_s']:.1f} s)")
    print(f"  report lag (s)      p50 {_f(r['report_lag_p50_s'], 3)}  "
          f"p99 {_f(r['report_lag_p99_s'], 3)}  ({r['reports']} reports; "
          f"sender late p99 {_f(r['send_delay_p99_s'], 3)} s; "
          f"{r['folded_audits']} audits folded into the next, "
          f"{r['unanswered_reports']} never answered)")
    print(f"  heartbeat lag (s)   p50 {_f(r['heartbeat_lag_p50_s'], 3)}  "
          f"p99 {_f(r['heartbeat_lag_p99_s'], 3)}  "
          f"({r['heartbeats_seen']} seen, {r['heartbeats_unseen']} unseen "
          f"at the end)")
    print(f"  candidates (ms)     p50 {_f(r['candidates_p50_ms'], 1)}  "
          f"p99 {_f(r['candidates_p99_ms'], 1)}  ({r['candidates_calls']} "
          f"calls, {r['candidates_returned']:.0f} candidates each)")
    print(f"  placement CPU       {_f(r['cpu_ms_per_message'], 3)} ms per "
          f"message, {r['cpu_per_wall_s']:.2f} CPU-s per s; database "
          f"{r['database_mb']:.0f} MB")
    print(f"  queue backlog       max {r['backlog_max']}, at the end "
          f"{r['backlog_end']} messages; drained in {r['drained_s']:.1f} s"
          + (f", {r['purged']} purged" if r['purged'] else '')
          + (f"; {r['candidates_timeouts']} candidate calls timed out"
             if r['candidates_timeouts'] else ''))
    if r['stop'] != 'clean (exit 0)':
        print(f"  placement stop: {r['stop']} (killed 30 s after SIGTERM, "
              f"still working off its backlog)")
    if r['errors']:
        print(f"  ERRORS: {r['errors']}")


def _f(value, digits: int) -> str:
    if value is None or value != value:
        return 'n/a'
    return f'{value:.{digits}f}'


def plot(results: list, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError:
        print(f'(no plot: matplotlib is not installed; pip install '
              f'matplotlib into {sys.prefix} for {path})')
        return
    figure, (reports, beats) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    series = sorted({(r.get('label', ''), r['processes']) for r in results})
    for n, (label, processes) in enumerate(series):
        rows = sorted((r for r in results if r['processes'] == processes
                       and r.get('label', '') == label),
                      key=lambda r: r['hosts'])
        hosts = [r['hosts'] for r in rows]
        name = f'{label} ' if label else ''
        for axis, key in ((reports, 'report_lag'), (beats, 'heartbeat_lag')):
            for stat, style in (('p50', '-o'), ('p99', '--s')):
                axis.plot(hosts, [r[f'{key}_{stat}_s'] for r in rows], style,
                          color=f'C{n}',
                          label=f'{name}{processes} process(es), {stat}')
    for axis, title in ((reports, 'report lag'), (beats, 'heartbeat lag')):
        axis.set_xlabel('simulated hosts')
        axis.set_ylabel('seconds')
        axis.set_title(title)
        axis.set_yscale('log')
        axis.grid(True, which='both', alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle('nova-rt-placement lag against fleet size '
                    '(bench/bench_fleet.py)')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f'plot written to {path}')


# -- saturation -------------------------------------------------------------

def saturate(args, workdir: str) -> None:
    """How many heartbeats and reports one placement process absorbs, and
    beside it, in the same run, the floor: what an oslo.messaging server
    that does nothing (``oslo_floor_server``: same transport, executor and
    threads) takes from the same senders."""
    hosts = args.hosts[0]
    url = fresh_database()
    try:
        sims = populate(url, hosts)
        with fixtures.running_placement(url, workdir,
                                        extra_conf=args.extra_conf) as pl:
            pids = [p.pid for p in pl.processes]
            print(f'== saturation, 1 placement process, {hosts} hosts '
                  f'(load {load()})')
            placement = {'heartbeat': _burst(pl, sims, pids, args.burst)}
            for kind in ('changed', 'resync'):
                lean = bench_placement.add_hosts(pl.api, 100)
                placement[kind] = {}
                bench_placement.bench_reports_lean(
                    pl, lean, args.seconds, 16, kind=kind,
                    out=placement[kind])
            with bench_placement.floor_server(pl, workdir) as proc:
                print(f'== the floor: an oslo.messaging server that does '
                      f'nothing, same senders (load {load()})')
                floor = {'heartbeat': _burst(pl, sims, [proc.pid],
                                             args.burst, floor=True),
                         'call': {}}
                bench_placement.bench_reports_lean(
                    pl, lean, args.seconds, 16, kind='trivial call',
                    topic=oslo_floor_server.TOPIC, server=proc,
                    out=floor['call'])
            _print_against_floor(placement, floor)
            print(f'  (load {load()} at the end)')
    finally:
        db.dispose_engines()
        fixtures.drop_pg_database(url)


def _burst(placement, sims, pids, count: int, floor: bool = False) -> dict:
    """Two bursts of heartbeat casts (the first warms up): the second's
    figures."""
    topic = oslo_floor_server.TOPIC if floor else rpc.PLACEMENT_TOPIC
    for _ in range(2):
        rate, cpu, publish = _heartbeat_burst(placement, sims, pids, count,
                                              topic)
    who = 'empty server' if floor else 'placement process'
    print(f'  heartbeats          {rate:6.0f}/s absorbed '
          f'({count} casts; the sender alone {publish:.0f}/s); '
          f'CPU per heartbeat: {who} {cpu:.3f} ms')
    return {'rate': rate, 'cpu_ms': cpu}


def _print_against_floor(placement: dict, floor: dict) -> None:
    print('== placement against the floor (same run)')
    print(f'  {"":22s} {"placement":>18s} {"floor":>18s}  '
          f'rate/floor  CPU/floor  CPU above floor')
    rows = (('heartbeat casts', placement['heartbeat'], floor['heartbeat']),
            ('reports changed', placement['changed'], floor['call']),
            ('reports resync', placement['resync'], floor['call']))
    for name, mine, base in rows:
        print(f'  {name:22s} {mine["rate"]:6.0f}/s {mine["cpu_ms"]:5.2f} ms '
              f'{base["rate"]:6.0f}/s {base["cpu_ms"]:5.2f} ms  '
              f'{mine["rate"] / base["rate"]:9.2f}x '
              f'{mine["cpu_ms"] / base["cpu_ms"]:9.2f}x '
              f'{mine["cpu_ms"] - base["cpu_ms"]:+9.2f} ms')
    print('  (floor of a heartbeat: a do-nothing cast; of a report: a '
          'do-nothing call; CPU: the server process\'s, per message)')


def _heartbeat_burst(placement, sims, pids, count: int,
                     topic: str = rpc.PLACEMENT_TOPIC):
    caster = Caster(placement.transport_url, placement.exchange,
                    topic, rpc.RPC_VERSION, CTX)
    try:
        sent_at = _utc_naive(time.time()).isoformat() + '+00:00'
        cpu0 = bench_placement._cpu_seconds(pids)
        start = time.perf_counter()
        for i in range(count):
            sim = sims[i % len(sims)]
            caster.cast('heartbeat', {'host': sim['host'],
                                      'root_uuid': sim['root'],
                                      'sent_at': sent_at})
        published = time.perf_counter() - start
        done = {}
        caster.call('get_allocations', {'consumer_uuid': str(uuid.uuid4())},
                    lambda result, error: done.setdefault('at',
                                                          time.perf_counter()))
        caster.wait(timeout=120)
        cpu = bench_placement._cpu_seconds(pids) - cpu0
    finally:
        caster.close()
    elapsed = done['at'] - start
    return count / elapsed, cpu / count * 1000, count / published


# -- main -------------------------------------------------------------------

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', default=None,
                        type=lambda s: [int(x) for x in s.split(',')],
                        help='fleet sizes (default 1000,5000,10000)')
    parser.add_argument('--processes', default=[1, 2],
                        type=lambda s: [int(x) for x in s.split(',')])
    parser.add_argument('--seconds', type=float, default=60,
                        help='measured seconds per run')
    parser.add_argument('--warmup', type=float, default=10)
    parser.add_argument('--audit-interval', type=float, default=60)
    parser.add_argument('--heartbeat-interval', type=float, default=10)
    parser.add_argument('--full-every', type=int, default=10,
                        help='every this many audits a full resync')
    parser.add_argument('--compress', type=float, default=1.0,
                        help='divide both intervals by this')
    parser.add_argument('--candidates-interval', type=float, default=0.5)
    parser.add_argument('--drain', type=float, default=90,
                        help='seconds to wait for a backlog after a run')
    parser.add_argument('--poll', type=float, default=0.25,
                        help='seconds between the watcher\'s polls')
    parser.add_argument('--plot', default='fleet-lag.png')
    parser.add_argument('--json', help='write every run\'s figures here')
    parser.add_argument('--label', default='',
                        help='name of this code in --json and the plot')
    parser.add_argument('--replot', default=None,
                        type=lambda s: s.split(','),
                        help='only draw --plot from these --json files')
    parser.add_argument('--extra-conf', default='',
                        help='lines for the placement config, e.g. '
                             '"[placement]\\nheartbeat_flush_interval_ms = 1000"')
    parser.add_argument('--quick', action='store_true',
                        help='1,000 and 10,000 hosts, 1 process, 20 s each')
    parser.add_argument('--saturate', action='store_true')
    parser.add_argument('--burst', type=int, default=20000,
                        help='heartbeat casts per burst (--saturate)')
    args = parser.parse_args(argv)
    args.extra_conf = args.extra_conf.replace('\\n', '\n')
    if args.quick:
        args.hosts = args.hosts or [1000, 10000]
        args.processes, args.seconds, args.warmup = [1], 20, 5
    if args.saturate:
        args.hosts = args.hosts or [1000]
        if args.seconds == 60:
            args.seconds = 5
    args.hosts = args.hosts or [1000, 5000, 10000]
    if args.replot:
        plot([r for path in args.replot for r in json.load(open(path))],
             args.plot)
        return
    fixtures.require_pg()
    print(f'{os.cpu_count()} CPUs, load average {load()} at start; audits '
          f'every {args.audit_interval / args.compress:g} s, heartbeats '
          f'every {args.heartbeat_interval / args.compress:g} s per host')
    with tempfile.TemporaryDirectory() as workdir:
        if args.saturate:
            saturate(args, workdir)
            return
        results = []
        for processes in args.processes:
            for hosts in args.hosts:
                try:
                    results.append({'label': args.label, **run_fleet(
                        hosts, processes, args, workdir)})
                except Exception as error:      # the next run still runs
                    print(f'== {hosts} hosts, {processes} process(es): '
                          f'FAILED: {type(error).__name__}: {error}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if len(args.hosts) > 1:
        plot(results, args.plot)
    print(f'load average {load()} at the end')


if __name__ == '__main__':
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    main()
