#!/usr/bin/env python3
"""Benchmark the local store: file size and time per write over many
claim/abort cycles, with and without keeping ended records bounded; and
claims from concurrent threads through the tracker (group commit).

    .venv/bin/python bench/bench_store.py [--cycles 20000] [--move-every 3]
        [--compact-every 1000] [--keep 1000] [--modes bounded,unbounded]
        [--threads 1,4,16] [--seconds 5]

Each cycle is what the tracker writes for one claim and its abort: an
instance record of realistic size (a flavor with extra specs, a claim, a
NUMA topology on every fourth) put, then deleted.  Every ``--move-every``-th
cycle is a move as well: its migration record put in progress, then put
again ended (as the tracker remembers it).  ``bounded`` prunes the ended
migrations to the ``--keep`` newest and calls ``compact()`` every
``--compact-every`` cycles, as the audit does; ``unbounded`` does neither
(the store before issue 14: ended migrations kept until the next start).
Every claim is freed at the end, so what is left is what the store keeps
for nothing.  Each mode runs on a new SQLite file with synchronous=FULL
under ``--dir`` (default: a temporary directory).  Prints one JSON object.

Mode ``threads`` (issue 19): for each of ``--threads``, that many threads
claim and abort through a ``ResourceTracker`` on a SQLite file for
``--seconds``, in this process (no RPC, so that what is measured is the
tracker and the disk): writes per second, the claim's p50/p99, and fsyncs
per write (``perf stat`` on this process, when allowed).  The floor, in the
same run: the same threads calling ``abort_instance_claim`` for instances
never claimed (the same lock and transition, no write).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid as uuidlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nova_rt import objects  # noqa: E402
from nova_rt.compute import claims  # noqa: E402
from nova_rt.compute import store as store_mod  # noqa: E402

FLAVOR = objects.Flavor(
    name='m1.medium.numa', vcpus=4, memory_mb=8192, root_gb=40,
    ephemeral_gb=0, swap=0,
    extra_specs={'hw:numa_nodes': '1', 'hw:mem_page_size': 'large',
                 'hw:cpu_policy': 'dedicated', 'quota:disk_read_bytes_sec':
                 '104857600', 'aggregate_instance_extra_specs:ssd': 'true'})
TOPOLOGY = {'cells': [{'id': 0, 'cpuset': [0, 1, 2, 3],
                       'cpu_pinning': {'0': 4, '1': 5, '2': 6, '3': 7},
                       'memory_mb': 8192, 'pagesize_kb': 2048}]}


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1,
                       int(round(pct / 100 * (len(ordered) - 1))))]


def summary(seconds):
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {'n': 0}
    return {'n': len(ms), 'mean_ms': round(statistics.fmean(ms), 3),
            'p50_ms': round(statistics.median(ms), 3),
            'p99_ms': round(percentile(ms, 99), 3),
            'max_ms': round(max(ms), 3)}


def instance_record(index: int) -> claims.InstanceRecord:
    inst = objects.Instance(
        uuid=str(uuidlib.uuid4()), project_id=uuidlib.uuid4().hex,
        user_id=uuidlib.uuid4().hex, flavor=FLAVOR, vm_state='building',
        os_type='linux')
    claim = claims.Claim(
        claim_id=str(uuidlib.uuid4()), instance_uuid=inst.uuid,
        migration_uuid=None, flavor=FLAVOR,
        resources={'PCPU': 4, 'MEMORY_MB': 8192, 'DISK_GB': 40},
        numa_topology=TOPOLOGY if index % 4 == 0 else None)
    return claims.InstanceRecord(instance=inst, claim=claim)


def migration_record(rec: claims.InstanceRecord, seq: int, status: str,
                     ended_at=None) -> claims.MigrationRecord:
    mig = objects.Migration(
        uuid=str(uuidlib.uuid5(uuidlib.UUID(rec.uuid), 'move')),
        instance_uuid=rec.uuid, migration_type='resize', status=status,
        source_compute='bench-src', source_node='bench-src',
        dest_compute='bench', dest_node='bench', old_flavor=FLAVOR,
        new_flavor=FLAVOR)
    claim = None if ended_at is not None else rec.claim
    return claims.MigrationRecord(migration=mig, instance=rec.instance,
                                  seq=seq, claim=claim, ended_at=ended_at)


def run(mode: str, args, directory: str) -> dict:
    path = os.path.join(directory, f'{mode}.sqlite')
    store = store_mod.ClaimStore(path)
    bounded = mode == 'bounded'
    writes, prunes, compactions = [], [], []
    size_start = store.stats()['bytes']
    largest = size_start
    started = time.perf_counter()
    for index in range(args.cycles):
        rec = instance_record(index)
        steps = [('put', rec)]
        if index % args.move_every == 0:
            steps += [('move', migration_record(rec, index, 'pre-migrating')),
                      ('move', migration_record(rec, index, 'failed',
                                                ended_at=time.time()))]
        steps.append(('delete', rec.uuid))
        for kind, item in steps:
            changes = store_mod.Changes()
            if kind == 'put':
                changes.put_instance(item)
            elif kind == 'move':
                changes.put_migration(item)
            else:
                changes.delete_instance(item)
            t0 = time.perf_counter()
            store.apply(changes)
            writes.append(time.perf_counter() - t0)
        if (index + 1) % args.compact_every == 0:
            largest = max(largest, store.stats()['bytes'])
            if bounded:
                t0 = time.perf_counter()
                store.prune_ended_migrations(before=time.time() - 7 * 86400,
                                             keep=args.keep)
                t1 = time.perf_counter()
                store.compact()
                prunes.append(t1 - t0)
                compactions.append(time.perf_counter() - t1)
    elapsed = time.perf_counter() - started
    end = store.stats()
    largest = max(largest, end['bytes'])
    store.close()
    return {'writes': summary(writes), 'ops_per_s': round(len(writes) / elapsed),
            'prune': summary(prunes), 'compact': summary(compactions),
            'bytes_at_start': size_start, 'largest_bytes': largest,
            'bytes_at_end': end['bytes'],
            'ended_migrations_at_end': end['ended_migrations'],
            'instances_at_end': end['instances'],
            'free_pages_at_end': end['freelist_count']}


def tracker_threads(threads: int, seconds: float, directory: str) -> dict:
    """Mode ``threads`` at one concurrency (module docstring)."""
    import threading

    import claim_stream
    from tests.unit.compute import helpers as h
    path = os.path.join(directory, f'threads-{threads}.sqlite')
    rt = h.make_tracker(path, host=h.host_info(vcpus=64, memory_mb=1 << 20,
                                                disk_gb=1 << 20))

    def run(kind):
        stop = time.monotonic() + seconds
        claims, calls = [], [0] * threads

        def worker(index):
            while time.monotonic() < stop:
                inst = h.instance(h.FLAVOR_1)
                if kind == 'floor':
                    rt.abort_instance_claim(instance_uuid=inst['uuid'])
                    calls[index] += 1
                    continue
                t0 = time.perf_counter()
                rt.instance_claim(instance=inst)
                claims.append(time.perf_counter() - t0)
                rt.abort_instance_claim(instance_uuid=inst['uuid'])
                calls[index] += 2
        workers = [threading.Thread(target=worker, args=(i,))
                   for i in range(threads)]
        started = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(calls), time.perf_counter() - started, claims

    calls, elapsed, _ = run('floor')
    floor = {'calls_per_s': round(calls / elapsed)}
    counter = (claim_stream.FsyncCounter(os.getpid())
               if claim_stream.FsyncCounter.available() else None)
    if counter:
        counter.__enter__()
    try:
        writes, elapsed, claims = run('claims')
    finally:
        if counter:
            counter.__exit__(None, None, None)
    result = {'threads': threads, 'floor': floor,
              'writes_per_s': round(writes / elapsed),
              'claims': summary(claims)}
    if counter and counter.count is not None:
        result['fsyncs_per_write'] = round(counter.count / writes, 3)
    commits = getattr(rt, 'commits', None)
    if commits is not None:
        result['commits_per_write'] = round(commits.commits
                                            / max(commits.committed, 1), 3)
    rt.store.close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cycles', type=int, default=20000)
    parser.add_argument('--move-every', type=int, default=3)
    parser.add_argument('--compact-every', type=int, default=1000)
    parser.add_argument('--keep', type=int,
                        default=store_mod.KEEP_ENDED_MIGRATIONS)
    parser.add_argument('--modes', default='bounded,unbounded')
    parser.add_argument('--dir', help='where the SQLite files go')
    parser.add_argument('--threads', default='1,4,16')
    parser.add_argument('--seconds', type=float, default=5.0)
    args = parser.parse_args()
    size = len(json.dumps(instance_record(0).to_dict()))
    result = {'cycles': args.cycles, 'instance_record_bytes': size,
              'synchronous': 'FULL'}
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for mode in args.modes.split(','):
            if mode == 'threads':
                result[mode] = [
                    tracker_threads(int(n), args.seconds, directory)
                    for n in args.threads.split(',')]
                with open('/proc/loadavg') as f:
                    result['loadavg'] = f.read().split()[:3]
            else:
                result[mode] = run(mode, args, directory)
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
