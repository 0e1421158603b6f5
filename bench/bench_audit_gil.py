#!/usr/bin/env python3
"""In process: claim latency without audits and while another thread runs
incremental audits back to back, at Python's thread switch interval and at
0.2 ms, in interleaved rounds.

    .venv/bin/python bench/bench_audit_gil.py [--domains 1000] [--rounds 4]
        [--claims 400]

The tracker, its SQLite store (synchronous=FULL) and a libvirt test-driver
host with events, as nova-rt-compute runs them, without RPC: what is left
is the claims' and the audit's turns on the GIL.  This is what decided that
nova-rt-compute no longer tunes the switch interval nor makes the audit
give way to calls (doc/source/semantics.rst, "Scheduling threads").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from nova_rt.compute import store as store_mod  # noqa: E402
from nova_rt.compute import tracker as tracker_mod  # noqa: E402
from nova_rt.virt.host import LibvirtHost  # noqa: E402
from tests.functional.virt import hostxml  # noqa: E402

FLAVOR = {'name': 'b', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 0,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}
INTERVALS = (sys.getswitchinterval(), 0.0002)


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1,
                       int(round(pct / 100 * (len(ordered) - 1))))]


def claims(rt, count):
    latencies = []
    for _ in range(count):
        inst = {'uuid': str(uuid.uuid4()), 'project_id': 'p', 'user_id': 'u',
                'flavor': dict(FLAVOR), 'vm_state': 'building',
                'task_state': None}
        started = time.perf_counter()
        rt.instance_claim(instance=inst)
        latencies.append(time.perf_counter() - started)
        rt.abort_instance_claim(instance_uuid=inst['uuid'])
    return latencies


def during_audits(rt, count):
    stop = threading.Event()
    audits = [0]

    def loop():
        while not stop.is_set():
            rt.run_audit()
            audits[0] += 1

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        return claims(rt, count), audits[0]
    finally:
        stop.set()
        thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--claims', type=int, default=400)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='bench-gil-')
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=args.domains, cpus=256,
                                 memory_kib=4 * 1024 ** 3)
    host = LibvirtHost(uri, instances_path=workdir)
    host.start_events(lambda event: None)
    config = tracker_mod.TrackerConfig(
        host='bench', node='bench', reserved_host_memory_mb=0,
        allocation_ratios={'VCPU': 64.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0})
    store = store_mod.ClaimStore(os.path.join(workdir, 'compute.sqlite'))
    rt = tracker_mod.ResourceTracker(config, store, host_source=host,
                                     pci_source=lambda: [])
    rt.load()
    rt.run_audit()
    totals = {s: {'alone': [], 'during': [], 'audits': 0} for s in INTERVALS}
    print(f'{os.cpu_count()} CPUs, load {os.getloadavg()}')
    for _ in range(args.rounds):
        for interval in INTERVALS:
            sys.setswitchinterval(interval)
            total = totals[interval]
            total['alone'] += claims(rt, args.claims)
            during, audits = during_audits(rt, args.claims)
            total['during'] += during
            total['audits'] += audits
    for interval, total in totals.items():
        alone, during = total['alone'], total['during']
        print(f'switch interval {interval * 1000:.1f} ms: claim p50 '
              f'{percentile(alone, 50) * 1000:.2f} ms, p99 '
              f'{percentile(alone, 99) * 1000:.2f} ms; during audits p50 '
              f'{percentile(during, 50) * 1000:.2f} ms, p99 '
              f'{percentile(during, 99) * 1000:.2f} ms = '
              f'{percentile(during, 99) / percentile(alone, 99):.2f}x; '
              f'{total["audits"]} audits meanwhile')
    print(f'load {os.getloadavg()}')
    host.stop()


if __name__ == '__main__':
    main()
