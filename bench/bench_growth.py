#!/usr/bin/env python3
"""Does the tracker stay bounded under churn?  (issue 14, item 10)

    .venv/bin/python bench/bench_growth.py [--ops 60000]

Drives one in-process tracker (real SQLite store, synchronous=FULL) through
``--ops`` claim, move and abort operations in cycles of five: claim an
instance, claim an incoming resize of another, finish it, revert it (the
instance leaves), abort the first claim.  Every cycle ends one migration, so
the remembered ended migrations grow unless they are bounded.  Everything is
freed at the end.  Prints one JSON object: store size (database + WAL) and
the process's RSS before and after, the ended migrations remembered, and
the time per operation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from nova_rt.compute import store as store_mod  # noqa: E402
from nova_rt.compute import tracker as tracker_mod  # noqa: E402
from tests.unit.compute import helpers as h  # noqa: E402

FLAVOR = {'name': 'bench', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


def rss_mb() -> float:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def store_mb(path: str) -> float:
    return sum(os.path.getsize(p) for p in (path, path + '-wal')
               if os.path.exists(p)) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--ops', type=int, default=60000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'compute.sqlite')
        config = tracker_mod.TrackerConfig(host=h.HOST, node=h.HOST,
                                           reserved_host_memory_mb=0)
        rt = tracker_mod.ResourceTracker(
            config, store_mod.ClaimStore(path),
            host_source=h.StaticHost(h.host_info(vcpus=64, memory_mb=65536,
                                                 disk_gb=1000)))
        rt.load()
        rt.run_audit()
        before = {'store_mb': round(store_mb(path), 2), 'rss_mb': round(rss_mb(), 1)}
        started = time.perf_counter()
        done = 0
        while done < args.ops:
            a, b = h.instance(FLAVOR), h.instance(FLAVOR)
            mig = h.migration(b, FLAVOR, source='src')
            rt.instance_claim(instance=a)
            rt.resize_claim(instance=b, migration=mig)
            rt.finish_move(migration_uuid=mig['uuid'])
            rt.drop_move_claim_at_dest(migration_uuid=mig['uuid'])
            rt.abort_instance_claim(instance_uuid=a['uuid'])
            done += 5
        elapsed = time.perf_counter() - started
        rt.run_audit()
        state = rt.get_host_state()
        remembered = len(rt.store.load()[1])
        after = {'store_mb': round(store_mb(path), 2), 'rss_mb': round(rss_mb(), 1)}
        rt.store.close()
    print(json.dumps({
        'ops': done, 'seconds': round(elapsed, 1),
        'ms_per_op': round(elapsed / done * 1000, 3),
        'before': before, 'after': after,
        'ended_migrations_remembered': remembered,
        'left_held': {'vcpus_used': state['vcpus_used'],
                      'instances': len(state['instances'])},
    }, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
