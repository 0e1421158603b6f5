#!/usr/bin/env python3
"""Benchmark the tracker: audit wall time and claim latency, with and without
audits running back to back.

    .venv/bin/python bench/bench_tracker.py [--domains 1000] [--migrations 100]
        [--vfs 512] [--claims 2000] [--audits 15]

The host is libvirt's test driver with a generated node file (``--domains``
running and shut-off domains, each tracked as an instance), ``--migrations``
incoming moves in progress and ``--vfs`` SR-IOV VFs given to the tracker as
plain PCI device data (udev discovery is measured by bench_pci.py).  The local
store is a real SQLite file with synchronous=FULL.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid as uuidlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from nova_rt.compute import store as store_mod  # noqa: E402
from nova_rt.compute import tracker as tracker_mod  # noqa: E402
from nova_rt.pci import device as pcidev  # noqa: E402
from nova_rt.pci import spec as pci_spec  # noqa: E402
from nova_rt.virt.host import LibvirtHost  # noqa: E402
from tests.functional.virt import hostxml  # noqa: E402

FLAVOR = {'name': 'bench', 'vcpus': 1, 'memory_mb': 64, 'root_gb': 0,
          'ephemeral_gb': 0, 'swap': 0, 'extra_specs': {}}


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def summary(seconds):
    ms = [s * 1000 for s in seconds]
    return {'n': len(ms), 'p50_ms': round(statistics.median(ms), 3),
            'p99_ms': round(percentile(ms, 99), 3),
            'max_ms': round(max(ms), 3)}


def vfs(count):
    devices = []
    pfs = max(1, count // 64)
    for pf in range(pfs):
        pf_addr = f'0000:{0x81 + pf:02x}:00.0'
        devices.append(pcidev.PciDevice(pf_addr, '8086', '10fb',
                                        dev_type=pcidev.TYPE_PF,
                                        numa_node=pf % 2))
        for vf in range(count // pfs):
            devices.append(pcidev.PciDevice(
                f'0000:{0x81 + pf:02x}:{0x10 + vf // 8:02x}.{vf % 8}', '8086',
                '10ed', dev_type=pcidev.TYPE_VF, parent_addr=pf_addr,
                numa_node=pf % 2))
    return devices


def instance(uuid, vm_state='active', flavor=None):
    return {'uuid': uuid, 'project_id': f'p{hash(uuid) % 50}', 'user_id': 'u',
            'flavor': dict(flavor or FLAVOR), 'vm_state': vm_state,
            'task_state': None, 'os_type': 'linux', 'is_volume_backed': False}


def build(args, workdir):
    uri = hostxml.write_host_xml(os.path.join(workdir, 'host.xml'),
                                 n_domains=args.domains, cpus=256,
                                 memory_kib=4 * 1024 ** 3)
    host = LibvirtHost(uri, instances_path=workdir)
    devices = vfs(args.vfs)
    config = tracker_mod.TrackerConfig(
        host='bench', node='bench', reserved_host_memory_mb=0,
        allocation_ratios={'VCPU': 64.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0},
        pci_specs=tuple(pci_spec.parse_device_specs(['{"vendor_id": "8086"}'])))
    store = store_mod.ClaimStore(os.path.join(workdir, 'compute.sqlite'))
    rt = tracker_mod.ResourceTracker(config, store, host_source=host,
                                     pci_source=lambda: devices)
    rt.load()
    rt.run_audit()
    for dom in host.list_domains():
        flavor = dict(FLAVOR, vcpus=dom.vcpus, memory_mb=dom.memory_mb)
        state = 'active' if dom.active else 'stopped'
        rt.instance_claim(instance=instance(dom.uuid, flavor=flavor))
        rt.update_instance(instance_uuid=dom.uuid, vm_state=state)
    for i in range(args.migrations):
        inst = instance(str(uuidlib.uuid4()))
        rt.resize_claim(instance=inst, migration={
            'uuid': str(uuidlib.uuid4()), 'instance_uuid': inst['uuid'],
            'migration_type': 'resize', 'status': 'migrating',
            'source_compute': 'other', 'source_node': 'other',
            'dest_compute': 'bench', 'dest_node': 'bench',
            'old_flavor': dict(FLAVOR), 'new_flavor': dict(FLAVOR)})
    return rt


def claim_latencies(rt, count):
    latencies = []
    for _ in range(count):
        inst = instance(str(uuidlib.uuid4()), vm_state='building')
        started = time.perf_counter()
        rt.instance_claim(instance=inst)
        latencies.append(time.perf_counter() - started)
        rt.abort_instance_claim(instance_uuid=inst['uuid'])
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--migrations', type=int, default=100)
    parser.add_argument('--vfs', type=int, default=512)
    parser.add_argument('--claims', type=int, default=2000)
    parser.add_argument('--audits', type=int, default=15)
    parser.add_argument('--switch-interval', type=float, default=0.0,
                        help='sys.setswitchinterval() in seconds (0: Python\'s '
                             'own 0.005, as nova-rt-compute runs)')
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory() as workdir:
        rt = build(args, workdir)
        rt.run_audit()      # warm: XML parsed once, cached after
        audits = []
        for _ in range(args.audits):
            started = time.perf_counter()
            summary_ = rt.run_audit()
            audits.append(time.perf_counter() - started)
        alone = claim_latencies(rt, args.claims)

        stop = threading.Event()
        during_audits = []

        def audit_loop():
            while not stop.is_set():
                started = time.perf_counter()
                rt.run_audit()
                during_audits.append(time.perf_counter() - started)

        auditor = threading.Thread(target=audit_loop)
        auditor.start()
        try:
            during = claim_latencies(rt, args.claims)
        finally:
            stop.set()
            auditor.join()
        result = {
            'machine': f'{os.cpu_count()} CPUs, Python {sys.version.split()[0]}',
            'switch_interval_s': sys.getswitchinterval(),
            'domains': args.domains, 'instances': summary_['instances'],
            'migrations': summary_['migrations'],
            'pci_devices': summary_['pci_devices'],
            'unmanaged_domains': summary_['unmanaged_domains'],
            'audit_ms': summary(audits),
            'claim_alone': summary(alone),
            'claim_during_audits': summary(during),
            'audits_during_claims': len(during_audits),
        }
        print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
