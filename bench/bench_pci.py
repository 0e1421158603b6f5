"""Time PCI discovery of 1,024 SR-IOV VFs on a umockdev testbed.

    .venv/bin/python bench/bench_pci.py [--vfs 1024] [--repeat 5]

Re-executes itself under ``umockdev-wrapper`` (libudev must see the testbed).
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _records():
    path = os.path.join(REPO, 'tests', 'fixtures', 'pci', 'records.py')
    module_spec = importlib.util.spec_from_file_location('pci_records', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--vfs', type=int, default=1024)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    if 'libumockdev-preload' not in os.environ.get('LD_PRELOAD', ''):
        os.execvp('umockdev-wrapper',
                  ['umockdev-wrapper', sys.executable] + sys.argv)

    import gi
    gi.require_version('UMockdev', '1.0')
    from gi.repository import UMockdev

    from nova_rt.pci import manager, spec, udev

    bed = UMockdev.Testbed.new()
    start = time.perf_counter()
    assert bed.add_from_string(_records().many_vfs_host(args.vfs))
    build = time.perf_counter() - start

    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        devices = udev.discover()
        timings.append(time.perf_counter() - start)
    n_vfs = sum(1 for d in devices if d.dev_type == 'type-VF')
    assert n_vfs == args.vfs, n_vfs

    tracker = manager.PciDeviceTracker(spec.parse_device_specs(['{}']))
    start = time.perf_counter()
    tracker.set_devices(devices)
    reconcile = time.perf_counter() - start
    start = time.perf_counter()
    pools = tracker.pools()
    pools_s = time.perf_counter() - start
    aliases = spec.parse_aliases(['{"name": "vf", "device_type": "type-VF"}'])
    requests = spec.requests_from_alias_counts({'vf': 4}, aliases)
    start = time.perf_counter()
    chosen = tracker.select(requests, numa_nodes={1})
    select_s = time.perf_counter() - start
    assert chosen and len(chosen) == 4

    print(f'testbed: {len(devices)} PCI devices ({n_vfs} VFs), built in {build:.2f}s')
    print(f'discover(): median {statistics.median(timings):.3f}s, '
          f'min {min(timings):.3f}s, max {max(timings):.3f}s over {args.repeat} runs')
    print(f'set_devices(): {reconcile * 1000:.1f} ms; pools(): {pools_s * 1000:.1f} ms '
          f'({len(pools)} pools); select 4 VFs: {select_s * 1000:.1f} ms')
    print(f'cpus: {os.cpu_count()}')


if __name__ == '__main__':
    main()
